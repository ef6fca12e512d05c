"""The extension points, exactly as docs/extending.md shows them: its code blocks run here, in order."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import evobilevel as eb

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


@pytest.fixture(scope="module")
def namespace():
    """The names the page's code defines, after running all of its Python blocks."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 4
    names: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), names)  # noqa: S102 - our own documentation
    yield names
    eb.algorithms._REGISTRY.pop("golden", None)


def test_a_solver_of_ones_own_solves_lower_levels_within_their_caps(namespace):
    from evobilevel.evaluator import Evaluator

    problem = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)
    X = np.array([[0.5, -1.0], [2.0, 1.0], [-3.0, 4.0]])
    ev = Evaluator(problem)
    solution = namespace["CompassSearch"]().solve(ev, X, np.random.default_rng(0), max_evals=[2000, 2000, 30])
    assert solution.n_evals.tolist()[2] <= 30 and max(solution.n_evals) <= 2000
    assert ev.n_ll_evals == solution.n_evals.sum()
    exact = problem.ll_response(X[:2])
    np.testing.assert_allclose(solution.Y[:2], exact, atol=1e-4)
    assert solution.success[:2].all() and not solution.success[2]  # the third row ran out of evaluations


def test_a_solver_of_ones_own_serves_the_nested_algorithm(namespace):
    nested = namespace["nested"]
    assert nested.success and nested.ll_gap < 1e-2 and nested.ul_error < 1e-2 and nested.ll_error < 1e-2
    assert nested.algorithm_settings["lower_solver"]["type"] == "CompassSearch"
    # Every lower-level evaluation went through the solver's row budgets and was counted once.
    assert nested.n_ll_evals > 20 * nested.n_ul_evals


def test_an_algorithm_of_ones_own_is_registered_and_solves_by_name(namespace):
    assert "golden" in eb.algorithms.names()
    result = namespace["result"]
    assert result.algorithm == "golden" and result.success and "bracket narrower" in result.message
    assert abs(result.x[0] - 1) < 1e-5 and abs(result.y[0] - 1) < 1e-5 and result.F < 1e-9
    # Two points per generation, each counted at the upper level; their lower levels at the lower level.
    assert result.n_ul_evals == 2 * (len(result.history) - 1)
    assert result.n_ll_evals > result.n_ul_evals
    again = eb.solve(namespace["toy"], algorithm="GOLDEN", seed=0)
    assert np.array_equal(again.x, result.x) and again.n_ll_evals == result.n_ll_evals


def test_registering_checks_its_arguments(namespace):
    with pytest.raises(ValueError, match="already registered"):
        eb.algorithms.register("golden", namespace["GoldenSection"])
    with pytest.raises(ValueError, match="non-empty string"):
        eb.algorithms.register(" ", namespace["GoldenSection"])
    with pytest.raises(ValueError, match="callable"):
        eb.algorithms.register("other", 3)
    eb.algorithms.register("golden-coarse", lambda: namespace["GoldenSection"](xtol=1e-2))
    try:
        coarse = eb.solve(namespace["toy"], algorithm="golden-coarse", seed=0, check_ll=False)
        assert abs(coarse.x[0] - 1) < 1e-2 and len(coarse.history) < len(namespace["result"].history)
    finally:
        eb.algorithms._REGISTRY.pop("golden-coarse")
    eb.algorithms.register("not-an-algorithm", dict)
    try:
        with pytest.raises(TypeError, match="not an Algorithm"):
            eb.solve(namespace["toy"], algorithm="not-an-algorithm")
    finally:
        eb.algorithms._REGISTRY.pop("not-an-algorithm")


def test_a_checkpoint_of_ones_own_algorithm_is_its_state(namespace, tmp_path):
    from evobilevel.checkpoint import load_checkpoint

    toy = namespace["toy"]
    full = eb.solve(toy, algorithm="golden", seed=0)
    eb.solve(toy, algorithm="golden", seed=0, checkpoint=tmp_path / "c", callback=lambda r: r["generation"] == 5)
    state = load_checkpoint(tmp_path / "c")["algorithm_state"]
    assert type(state).__name__ == "GoldenState" and state.generation == 5
    rest = eb.solve(toy, algorithm="golden", seed=0, resume=tmp_path / "c")
    assert np.array_equal(rest.x, full.x) and rest.n_ll_evals == full.n_ll_evals
