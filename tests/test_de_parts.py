"""The DE's parts solved in one run: the results of one solve per part, in fewer evaluator calls; and the engine's
chunks of a DE solved that way in one process (the nested algorithm's generations)."""

from __future__ import annotations

import numpy as np
import pytest
from lower_cases import case, engine_chunks_together_and_one_by_one, perturbed, solve_parts_and_alone

import evobilevel as eb
from evobilevel.lower import DifferentialEvolution
from evobilevel.parallel.engine import LowerEngine

FIELDS = ("Y", "f", "cv", "success", "n_evals", "curvature")


def parts_of(problem, X, Y_star, seed):
    """Parts (X, rng, Y0, caps) of 3, 1 and 3 rows: two warm starts per row near the optimum (one row with none), the
    single row's part without warm starts, and caps on some rows (one below a population)."""
    Y0 = np.stack([perturbed(problem, Y_star, 1e-2, seed=seed), perturbed(problem, Y_star, 1e-1, seed=seed + 1)],
                  axis=1)
    Y0[1] = np.nan
    caps = np.array([np.inf, np.inf, 300, np.inf, 9, np.inf, 2000])
    return [(X[a:b], np.random.default_rng(seed + a), None if b - a == 1 else Y0[a:b], caps[a:b])
            for a, b in ((0, 3), (3, 4), (4, 7))]


def assert_same(alone, together):
    for field in FIELDS:
        np.testing.assert_array_equal(getattr(alone, field), getattr(together, field), err_msg=field)


@pytest.mark.parametrize("name", ["SMD1", "SMD10", "SMD12", "TP6"])
def test_parts_solved_together_give_what_each_part_s_own_solve_gives(name):
    problem, X, Y_star, _ = case(name, (5, 5) if name.startswith("SMD") else None, n=7, seed=21)
    together, together_calls, alone_calls = solve_parts_and_alone(
        DifferentialEvolution(), problem, lambda: parts_of(problem, X, Y_star, 22), FIELDS)
    assert np.all(together[2].n_evals <= [9, np.inf, 2000])
    # One call for every part's initial population, one per generation of the longest run, then the polish's rounds.
    assert together_calls < sum(alone_calls)


def test_an_all_integer_follower_s_parts_are_each_enumerated_or_searched_as_alone():
    problem = eb.benchmarks.get("MI2")
    X = np.random.default_rng(3).uniform(*problem.ul_bounds, size=(4, problem.ul_dim))
    solver = DifferentialEvolution()
    lattice = solver._small_lattice(problem, np.full(1, np.inf)).shape[0]
    assert lattice > 2  # the second part's cap is below it: that part is searched, the first enumerated

    def parts():
        return [(X[:2], np.random.default_rng(0), None, None), (X[2:], np.random.default_rng(1), None, 2)]

    together = solver.solve_parts(eb.evaluator.Evaluator(problem), parts())
    for part, solution in zip(parts(), together):
        assert_same(solver.solve(eb.evaluator.Evaluator(problem), *part), solution)
    np.testing.assert_array_equal(together[0].n_evals, [lattice, lattice])
    assert np.all(together[1].n_evals <= 2)


def test_the_engine_solves_its_de_chunks_together_with_the_results_of_one_by_one():
    problem, X, Y_star, _ = case("SMD10", (5, 5), n=9, seed=23)
    Y0 = perturbed(problem, Y_star, 1e-2, seed=24)[:, None, :]
    together, one_by_one = engine_chunks_together_and_one_by_one(DifferentialEvolution(), problem, X, Y0, 25, FIELDS)
    assert together < one_by_one / 2  # one generation evaluates every chunk's trial vectors


class OwnDE(DifferentialEvolution):
    """A user's DE that changes ``solve`` only: the engine must call it, chunk by chunk."""

    calls = 0

    def solve(self, ev, X, rng, Y0=None, max_evals=None):
        type(self).calls += 1
        return super().solve(ev, X, rng, Y0=Y0, max_evals=max_evals)


def test_a_de_subclass_that_changes_solve_is_called_for_every_chunk():
    problem, X, _, _ = case("SMD1", (5, 5), n=5, seed=26)
    engine = LowerEngine(n_jobs=1, chunk_size=2)
    OwnDE.calls = 0
    solution, _ = engine.run(engine.tasks(problem, OwnDE(), X, np.random.SeedSequence(27)))
    assert OwnDE.calls == 3 and solution.f.shape == (5,)


def test_row_tasks_carry_one_bundle_of_chunks_per_worker_where_points_are_cheap():
    from evobilevel.parallel.engine import BUNDLE_BELOW

    engine = LowerEngine(n_jobs=2, chunk_size=1)
    tasks = list(range(5))  # bundling looks at the number of tasks only
    assert engine.bundles(tasks) == [[0, 1, 2], [3, 4]]  # cost not measured yet: as a cheap function
    engine.seconds_per_point["lower"] = BUNDLE_BELOW / 10
    assert engine.bundles(tasks) == [[0, 1, 2], [3, 4]]
    assert engine.bundles(tasks[:2]) == [[0], [1]]  # no more chunks than workers
    engine.seconds_per_point["lower"] = BUNDLE_BELOW
    assert engine.bundles(tasks) == [[0], [1], [2], [3], [4]]  # the workers take costly chunks as they come free


@pytest.mark.parametrize("cost", [None, 1.0])
def test_bundled_and_single_row_tasks_give_the_inline_result(cost):
    problem, X, Y_star, _ = case("SMD10", (5, 5), n=9, seed=28)
    Y0 = perturbed(problem, Y_star, 1e-2, seed=29)[:, None, :]
    with LowerEngine(n_jobs=1, chunk_size=2) as engine:
        inline, inline_counts = engine.solve(problem, DifferentialEvolution(), X, np.random.SeedSequence(30), Y0=Y0)
    with LowerEngine(n_jobs=2, chunk_size=2, tasks="rows") as engine:
        engine.seconds_per_point["lower"] = cost
        assert len(engine.bundles(engine.tasks(problem, DifferentialEvolution(), X, np.random.SeedSequence(30)))) \
            == (2 if cost is None else 5)
        rows, rows_counts = engine.solve(problem, DifferentialEvolution(), X, np.random.SeedSequence(30), Y0=Y0)
    for field in FIELDS:
        np.testing.assert_array_equal(getattr(inline, field), getattr(rows, field), err_msg=field)
    assert inline_counts["ll"].n_evals == rows_counts["ll"].n_evals == inline.n_evals.sum()
