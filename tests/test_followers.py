"""Several independent followers: the problem they make, their evaluations counted per follower, their results,
determinism across n_jobs, checkpoints, and a problem with a closed-form optimum solved to 1e-3."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import evobilevel as eb
from evobilevel.algorithms import BLEAQ, Nested
from evobilevel.evaluator import Evaluator
from evobilevel.loading import load_problem
from evobilevel.problem import ProblemDefinitionError
from evobilevel.runner import load_checkpoint

MF1 = eb.benchmarks.get("MF1")
SUPPLY_CHAIN = Path(__file__).resolve().parents[1] / "problems" / "supply_chain.py"


def _leader(X, Y):
    return (X[:, 0] - 1.0) ** 2 + (Y ** 2).sum(axis=1)


def _tracker(X, Y):
    return ((Y - X[:, :1]) ** 2).sum(axis=1)


def _budget(X, Y):
    return (Y.sum(axis=1) - 1.0)[:, None]


def _two_followers(**kwargs):
    return eb.Problem(_leader, followers=[
        eb.Follower(_tracker, ([-2.0], [2.0]), name="one"),
        eb.Follower(_tracker, ([-2.0, -2.0], [2.0, 2.0]), constraints=_budget, name="two", **kwargs),
    ], ul_bounds=([0.0], [2.0]), vectorized=True, name="pair")


# ------------------------------------------------------------------------------------------- the problem
def test_followers_make_one_lower_level_of_their_blocks():
    p = _two_followers()
    assert p.ll_dim == 3 and p.n_ll_constraints == 1 and [f.name for f in p.followers] == ["one", "two"]
    np.testing.assert_array_equal(p.ll_bounds[0], [-2.0, -2.0, -2.0])
    X, Y = np.array([[1.0], [0.5]]), np.array([[0.0, 1.0, 2.0], [0.5, 0.5, 0.5]])
    f, g = p.lower(X, Y)
    np.testing.assert_allclose(f, [1.0 + 0.0 + 1.0, 0.0])  # sum of the followers' values
    np.testing.assert_allclose(g[:, 0], [2.0, 0.0])  # follower two's constraint
    assert eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3).followers == ()


@pytest.mark.parametrize("build, words", [
    (lambda: eb.Problem(_leader, _tracker, ul_bounds=[(0, 1)], followers=[eb.Follower(_tracker, [(0, 1)])]),
     "with followers=.*not lower="),
    (lambda: eb.Problem(_leader, followers=[], ul_bounds=[(0, 1)]), "non-empty list"),
    (lambda: eb.Problem(_leader, followers=[_tracker], ul_bounds=[(0, 1)]), r"followers\[0\] must be"),
    (lambda: eb.Problem(_leader, followers=[eb.Follower(_tracker, [(0, 1)], name="a")] * 2, ul_bounds=[(0, 1)],
                        vectorized=True),
     "two followers are named 'a'"),
    (lambda: eb.Problem(_leader, followers=[eb.Follower(lambda x, y: y[2], [(0, 1), (0, 1)], name="b")],
                        ul_bounds=[(0, 1)]),
     r"follower 1 \('b'\): its bounds give it 2 variable\(s\), but its functions failed .*IndexError"),
    (lambda: eb.Problem(_leader, followers=[eb.Follower(lambda X, Y: Y[:, 3] ** 2, [(0, 1)] * 3, name="c")],
                        ul_bounds=[(0, 1)], vectorized=True),
     r"follower 1 \('c'\): its bounds give it 3 variable"),
    (lambda: eb.Problem(_leader, followers=[eb.Follower(_tracker, [(0, 1)], integrality=[True, True])],
                        ul_bounds=[(0, 1)]),
     "ll_integrality has length 2, expected 1"),
    (lambda: eb.Problem(_leader, followers=[eb.Follower(lambda X, Y: Y, [(0, 1)] * 2, name="d")],
                        ul_bounds=[(0, 1)], vectorized=True),
     r"follower 1 \('d'\): lower returned shape \(1, 2\)"),
])
def test_bad_followers_are_refused_with_the_follower_named(build, words):
    with pytest.raises(ProblemDefinitionError, match=words):
        build()


def test_evaluations_are_counted_per_follower():
    p = _two_followers()
    ev = Evaluator(p)
    ev.lower(np.zeros((4, 1)), np.zeros((4, 3)))
    assert ev.n_ll_evals == 8 and [c.n_evals for c in ev.followers] == [4, 4]
    ev.follower_lower(1, np.zeros((3, 1)), np.zeros((3, 2)))
    assert ev.n_ll_evals == 11 and [c.n_evals for c in ev.followers] == [4, 7]


def test_a_failing_follower_fails_the_point_and_is_counted_for_itself():
    def fragile(x, y):
        if y[0] > 1.5:
            raise RuntimeError("no data above 1.5")
        return (y[0] - x[0]) ** 2

    p = eb.Problem(lambda x, y: 0.0, followers=[eb.Follower(lambda x, y: y[0] ** 2, [(-2, 2)]),
                                                eb.Follower(fragile, [(-2, 2)])], ul_bounds=[(0, 2)])
    ev = Evaluator(p)
    out = ev.lower(np.zeros((3, 1)), np.array([[0.0, 0.0], [0.0, 1.8], [1.0, 1.9]]))
    assert out.failed.tolist() == [False, True, True] and np.isinf(out.values[1]) and np.isinf(out.cv[1])
    assert ev.followers[1].n_failed == 2 and ev.followers[0].n_failed == 0 and ev.ll.n_failed == 2
    assert "no data above 1.5" in ev.ll.first_error


# ------------------------------------------------------------------------------------------- solving
def test_closed_form_multi_follower_problem_is_solved_to_1e_3():
    r = eb.solve(MF1, seed=0, target=1e-3)
    assert r.success and r.feasible
    assert abs(r.F - MF1.optimum.F) < 1e-3 and abs(r.f - MF1.optimum.f) < 1e-3
    np.testing.assert_allclose(r.x, MF1.optimum.x, atol=1e-2)
    np.testing.assert_allclose(r.y, MF1.ll_response(r.x), atol=1e-3)
    names = [part.name for part in r.followers]
    assert names == ["follower 1", "follower 2", "follower 3"]
    # Each follower's part: its block of y, its value, its evaluations and its own gap.
    blocks = np.split(r.y, [1, 3])
    for part, block in zip(r.followers, blocks):
        np.testing.assert_array_equal(part.y, block)
        assert part.feasible and part.ll_gap <= 1e-3 and part.n_ll_evals > 0
    assert math.isclose(sum(part.f for part in r.followers), r.f, rel_tol=1e-12, abs_tol=1e-12)
    assert sum(part.n_ll_evals for part in r.followers) == r.n_ll_evals
    assert sum(part.n_ll_evals_check for part in r.followers) == r.n_ll_evals_check
    assert r.ll_gap == max(part.ll_gap for part in r.followers)


def test_nested_solves_the_followers_one_by_one():
    r = eb.solve(MF1, algorithm=Nested(pop_size=12), seed=0, max_ul_evals=120)
    assert r.feasible and sum(part.n_ll_evals for part in r.followers) == r.n_ll_evals
    np.testing.assert_allclose(r.y, MF1.ll_response(r.x), atol=1e-3)  # every follower answered
    assert r.ll_gap < 1e-6


def test_the_lower_level_budget_holds_for_all_followers_together():
    r = eb.solve(MF1, seed=0, max_ll_evals=3000)
    assert r.n_ll_evals <= 3000 and "lower-level budget" in r.message


def test_results_are_identical_for_any_n_jobs():
    supply_chain = load_problem(str(SUPPLY_CHAIN))
    for problem, algorithm in ((MF1, BLEAQ()), (supply_chain, BLEAQ()), (MF1, Nested(pop_size=8))):
        runs = [eb.solve(problem, algorithm=algorithm, seed=2, n_jobs=n_jobs, max_ul_evals=100) for n_jobs in (1, 2)]
        a, b = runs
        assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y) and a.F == b.F and a.f == b.f
        assert (a.n_ul_evals, a.n_ll_evals, a.ll_gap) == (b.n_ul_evals, b.n_ll_evals, b.ll_gap)
        assert [p.n_ll_evals for p in a.followers] == [p.n_ll_evals for p in b.followers]


def test_resumed_run_with_followers_and_integers_equals_the_uninterrupted_run(tmp_path):
    problem = load_problem(str(SUPPLY_CHAIN))
    path = tmp_path / "run.ckpt"
    full = eb.solve(problem, seed=1, max_ul_evals=160)
    eb.solve(problem, seed=1, max_ul_evals=160, checkpoint=path, callback=lambda record: record["generation"] == 4)
    saved = load_checkpoint(path)
    counts = saved["context"]["follower_counts"]  # stored per follower, adding up to the run's count
    assert len(counts) == 3 and sum(c.n_evals for c in counts) == saved["context"]["ll_counts"].n_evals > 0
    assert saved["arguments"]["problem"]["followers"][2] == {"name": "retailer 3", "ll_dim": 1}
    rest = eb.solve(problem, seed=1, max_ul_evals=160, resume=path)
    assert np.array_equal(full.x, rest.x) and np.array_equal(full.y, rest.y) and full.F == rest.F
    assert (full.n_ul_evals, full.n_ll_evals) == (rest.n_ul_evals, rest.n_ll_evals)
    assert [p.n_ll_evals for p in full.followers] == [p.n_ll_evals for p in rest.followers]


def test_followers_survive_the_json_round_trip(tmp_path):
    r = eb.solve(MF1, seed=0, max_ul_evals=60)
    r.to_json(tmp_path / "run.json")
    back = eb.load_result(tmp_path / "run.json")
    assert [p.name for p in back.followers] == [p.name for p in r.followers]
    for a, b in zip(r.followers, back.followers):
        np.testing.assert_array_equal(a.y, b.y)
        assert (a.f, a.ll_gap, a.n_ll_evals, a.n_ll_evals_check) == (b.f, b.ll_gap, b.n_ll_evals, b.n_ll_evals_check)
    assert "follower 3: y" in back.summary()


def test_command_line_solves_the_supply_chain_and_shows_each_retailer(tmp_path):
    out = tmp_path / "run.json"
    done = subprocess.run([sys.executable, "-m", "evobilevel.cli", "solve", str(SUPPLY_CHAIN), "--seed", "0",
                           "--max-ul-evals", "100", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for i in (1, 2, 3):
        assert f"retailer {i}: y [" in done.stdout
    saved = eb.load_result(out)
    assert saved.integrality == {"ul": [False, False, False, True], "ll": [True, True, True]}
    assert np.array_equal(saved.y, np.round(saved.y)) and saved.x[3] == np.round(saved.x[3])


def test_bench_and_report_take_mixed_integer_and_multi_follower_problems(tmp_path):
    from evobilevel.experiment import Grid, run_grid
    from evobilevel.report import write_report

    grid = Grid("MI1,MF1", algorithms=["bleaq"], runs=2, target=1e-2, max_ul_evals=400)
    summary = run_grid(grid, tmp_path)
    assert summary.count("done") == 4 and not summary.failed
    stored = eb.load_result(tmp_path / "MF1_2x5" / "bleaq" / "run0.json")
    assert [p.name for p in stored.followers] == ["follower 1", "follower 2", "follower 3"]
    assert eb.load_result(tmp_path / "MI1_1x1" / "bleaq" / "run1.json").integrality == {"ul": [True], "ll": [True]}
    files = write_report(tmp_path, plots=False)
    rows = {row.problem: row for row in files.rows}
    assert set(rows) == {"MI1", "MF1"} and rows["MI1"].n_success == 2 and rows["MF1"].n_success == 2
    assert "| MF1 | bleaq | 2 | 2/2 |" in files.markdown.read_text()
