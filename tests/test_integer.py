"""Integer variables (scipy's ``integrality`` masks): validation, and exactly integral answers from every solver.

Every test that solves records the points the black box was asked for: no evaluated point, not only the answer,
may hold a fraction in an integer variable.
"""

from __future__ import annotations

import numpy as np
import pytest

import evobilevel as eb
from evobilevel.algorithms.optimistic import LeaderChoice, choose_for_leader
from evobilevel.context import RunContext
from evobilevel.evaluator import Evaluator
from evobilevel.lower import DifferentialEvolution, LocalRefinement
from evobilevel.parallel import LowerEngine
from evobilevel.problem import ProblemDefinitionError


class Recorder:
    """Vectorised functions that remember every point they were given (inline runs only)."""

    def __init__(self, F, f, g=None):
        self.X, self.Y = [], []
        self._F, self._f, self._g = F, f, g

    def F(self, X, Y):
        self.X.append(X.copy())
        self.Y.append(Y.copy())
        return self._F(X, Y)

    def f(self, X, Y):
        self.X.append(X.copy())
        self.Y.append(Y.copy())
        return self._f(X, Y)

    def g(self, X, Y):
        return self._g(X, Y)

    def assert_integral(self, ul_mask, ll_mask):
        X, Y = np.vstack(self.X), np.vstack(self.Y)
        assert X.shape[0] > 0
        assert np.array_equal(X[:, ul_mask], np.round(X[:, ul_mask])), "a leader's point with a fraction"
        assert np.array_equal(Y[:, ll_mask], np.round(Y[:, ll_mask])), "a follower's point with a fraction"


def _mixed_problem(recorder=None, **kwargs):
    """x = (integer, continuous), y = (integer, continuous): the follower tracks 1.15 x_0 in y_0 and y_0 + x_1 in
    y_1, so y_0 = round(1.15 x_0) and y_1 = y_0 + x_1."""

    def F(X, Y):
        return (X[:, 0] - 3.0) ** 2 + (X[:, 1] - 0.5) ** 2 + (Y[:, 0] - 4.0) ** 2 + (Y[:, 1] - X[:, 1]) ** 2

    def f(X, Y):
        return (Y[:, 0] - 1.15 * X[:, 0]) ** 2 + (Y[:, 1] - Y[:, 0] - X[:, 1]) ** 2

    rec = recorder or Recorder(F, f)
    rec._F, rec._f = F, f
    p = eb.Problem(rec.F, rec.f, ul_bounds=([0, -2], [6, 2]), ll_bounds=([0, -10], [10, 10]),
                   ul_integrality=[True, False], ll_integrality=[True, False], vectorized=True, name="mixed",
                   **kwargs)
    return p, rec


# ------------------------------------------------------------------------------------------- validation
def test_masks_take_scipys_forms_and_narrow_the_bounds():
    p = eb.Problem(lambda x, y: 0.0, lambda x, y: 0.0, ul_bounds=[(0.5, 3.7), (-1, 1)], ll_bounds=[(-2.2, 2.2)],
                   ul_integrality=[1, 0], ll_integrality=True)
    assert p.ul_integrality.tolist() == [True, False] and p.ll_integrality.tolist() == [True]
    np.testing.assert_array_equal(p.ul_bounds[0], [1.0, -1.0])
    np.testing.assert_array_equal(p.ul_bounds[1], [3.0, 1.0])
    np.testing.assert_array_equal(p.ll_bounds[0], [-2.0])
    q = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)
    assert not q.ul_integrality.any() and not q.ll_integrality.any()


@pytest.mark.parametrize("kwargs, words", [
    ({"ll_integrality": [True, False]}, "ll_integrality has length 2, expected 1"),
    ({"ul_integrality": [True]}, "ul_integrality has length 1, expected 2"),
    ({"ul_integrality": ["yes", "no"]}, "ul_integrality must hold booleans"),
    ({"ul_integrality": [0.5, 1]}, "ul_integrality must hold booleans"),
    ({"ll_bounds": [(0.2, 0.8)], "ll_integrality": True},
     r"ll_integrality: variable 0 is integer but its bounds \[0.2, 0.8\] hold no whole number"),
])
def test_bad_masks_are_refused_with_the_reason(kwargs, words):
    args = {"ul_bounds": [(0, 1), (0, 1)], "ll_bounds": [(0, 1)], "name": "bad", **kwargs}
    with pytest.raises(ProblemDefinitionError, match=rf"bad: {words}"):
        eb.Problem(lambda x, y: 0.0, lambda x, y: 0.0, **args)


# ------------------------------------------------------------------------------------------ solvers
def test_de_answers_an_integer_lower_level_exactly_and_evaluates_whole_numbers_only():
    # 21 x 21 lattice points: too many to enumerate (20 per member of 8), so the DE searches it.
    rec = Recorder(lambda X, Y: Y[:, 0], lambda X, Y: ((Y - X[:, :1] * np.array([1.3, -0.6])) ** 2).sum(axis=1))
    p = eb.Problem(rec.F, rec.f, ul_bounds=[(0, 5)], ll_bounds=[(-10, 10)] * 2, ll_integrality=True,
                   vectorized=True, name="lattice")
    ev = Evaluator(p)
    X = np.array([[1.0], [2.0], [4.0]])
    sol = DifferentialEvolution().solve(ev, X, np.random.default_rng(0))
    np.testing.assert_array_equal(sol.Y, [[1.0, -1.0], [3.0, -1.0], [5.0, -2.0]])
    assert sol.success.all() and sol.n_evals.sum() == ev.n_ll_evals
    rec.assert_integral(np.zeros(1, bool), np.ones(2, bool))


def test_de_enumerates_a_small_integer_lower_level():
    p = eb.benchmarks.get("MI1")
    ev = Evaluator(p)
    sol = DifferentialEvolution().solve(ev, np.array([[2.0], [8.0], [9.0]]), np.random.default_rng(0))
    np.testing.assert_array_equal(sol.Y[:2, 0], [2.0, 1.0])
    assert np.isinf(sol.f[2]) or sol.cv[2] > 0  # x = 9: the follower has no feasible point
    np.testing.assert_array_equal(sol.n_evals, [6, 6, 6])  # y in {0, ..., 5}, every point once
    assert sol.success[:2].all() and not sol.success[2]


def test_local_search_on_the_lattice_walks_to_the_integer_optimum():
    p = eb.Problem(lambda x, y: 0.0, lambda X, Y: ((Y - np.array([6.4, -3.7])) ** 2).sum(axis=1),
                   ul_bounds=[(0, 1)], ll_bounds=[(-10, 10)] * 2, ll_integrality=True, vectorized=True)
    ev = Evaluator(p)
    sol = LocalRefinement().solve(ev, np.zeros((1, 1)), np.random.default_rng(0), Y0=np.array([[[0.0, 0.0]]]))
    np.testing.assert_array_equal(sol.Y, [[6.0, -4.0]])
    assert sol.success[0]
    # The start, then four neighbours per move: 6 + 4 moves, and a last look around the optimum.
    assert sol.n_evals[0] == 1 + 4 * 11


def test_mixed_lower_level_refines_continuous_variables_and_steps_integer_ones():
    p, rec = _mixed_problem()
    ev = Evaluator(p)
    X = np.array([[2.0, 0.5], [4.0, -1.0]])
    sol = LocalRefinement().solve(ev, X, np.random.default_rng(0), Y0=np.array([[[0.0, 0.0]], [[9.0, 3.0]]]))
    # y_0 = round(1.15 x_0) (2.3 -> 2, 4.6 -> 5), y_1 = y_0 + x_1.
    np.testing.assert_allclose(sol.Y, [[2.0, 2.5], [5.0, 4.0]], atol=1e-6)
    assert sol.success.all() and sol.n_evals.sum() == ev.n_ll_evals
    rec.assert_integral(np.array([True, False]), np.array([True, False]))


def test_leader_choice_moves_continuous_variables_only():
    # The follower only cares about its integer y_0 (= 2); any y_1 is optimal, and the leader wants it at 0.7.
    p = eb.Problem(lambda X, Y: (Y[:, 1] - 0.7) ** 2 + Y[:, 0], lambda X, Y: (Y[:, 0] - 2.0) ** 2,
                   ul_bounds=[(0, 1)], ll_bounds=[(0, 5), (-1, 1)], ll_integrality=[True, False], vectorized=True)
    with LowerEngine() as engine:
        ctx = RunContext(p, engine, np.random.SeedSequence(0))
        start = LeaderChoice(np.array([2.0, -0.5]), 2.0 + 1.44, 0.0, 0.0, np.zeros(0))
        choice = choose_for_leader(ctx, np.array([0.5]), start, f_limit=1e-6)
    assert choice.y[0] == 2.0 and choice.y[1] == pytest.approx(0.7, abs=1e-5)
    assert choice.F == pytest.approx(2.0, abs=1e-9)


# ---------------------------------------------------------------------------------------- whole runs
@pytest.mark.parametrize("algorithm", ["bleaq", "nested"])
def test_runs_answer_in_whole_numbers_and_evaluate_nothing_else(algorithm):
    p, rec = _mixed_problem()
    r = eb.solve(p, algorithm=algorithm, seed=1, max_ul_evals=600)
    rec.assert_integral(np.array([True, False]), np.array([True, False]))
    assert r.x[0] == np.round(r.x[0]) and r.y[0] == np.round(r.y[0])
    # With the follower's answer, F = (x_0 - 3)^2 + (x_1 - 0.5)^2 + (y_0 - 4)^2 + y_0^2: 9 at x = (2, 0.5) (y_0 = 2),
    # against 10 at x_0 = 3 (y_0 = 3) and 14 at x_0 = 1.
    assert r.x[0] == 2.0 and r.y[0] == 2.0
    assert r.F == pytest.approx(9.0, abs=1e-3) and r.ll_gap <= 1e-6  # a run ended by its UL budget
    assert r.integrality == {"ul": [True, False], "ll": [True, False]}


def test_the_lower_level_check_of_a_small_integer_lower_level_is_exhaustive():
    r = eb.solve(eb.benchmarks.get("MI1"), seed=0, target=1e-2)
    assert r.success and r.x.tolist() == [2.0] and r.y.tolist() == [2.0] and r.F == -22.0
    assert r.n_ll_evals_check == 6 and r.ll_gap == 0.0


def test_integrality_is_stored_with_results_and_checkpoints(tmp_path):
    p = eb.benchmarks.get("MI3")
    r = eb.solve(p, seed=0, target=1e-2, checkpoint=tmp_path / "run.ckpt")
    r.to_json(tmp_path / "run.json")
    back = eb.load_result(tmp_path / "run.json")
    assert back.integrality == {"ul": [True], "ll": [True]} and back.y.tolist() == [6.0]
    saved = eb.runner.load_checkpoint(tmp_path / "run.ckpt")
    assert saved["arguments"]["problem"]["integrality"] == {"ul": [True], "ll": [True]}
    assert eb.solve(eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3), seed=0, max_ul_evals=40).integrality is None
