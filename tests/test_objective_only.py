"""The follower's objective alone: ObjectiveBudget, refinements with ``objective_only``, and BLEAQ's second local
search of a suspected local optimum (f alone, then the constrained refinement from there) before a global search."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import evobilevel as eb
from evobilevel.algorithms.bleaq.objective_first import MIN_PROBES, ObjectiveFirst
from evobilevel.algorithms.bleaq.settlement import SUSPECT_GAIN, Answers
from evobilevel.algorithms.bleaq.state import SearchRecord
from evobilevel.budget import ObjectiveBudget
from evobilevel.evaluator import Evaluator
from evobilevel.lower import LocalRefinement, LowerSolution
from evobilevel.lower.lockstep import LockstepRefinement


def outside_the_unit_circle(fail_above: float = np.inf) -> eb.Problem:
    """f = |y - x|^2 on [-2, 2]^2 subject to |y| >= 1; f fails (NaN) where y_1 > ``fail_above``."""

    def lower(X, Y):
        f = ((Y - X) ** 2).sum(axis=1)
        return np.where(Y[:, 0] > fail_above, np.nan, f)

    bounds = (np.full(2, -2.0), np.full(2, 2.0))
    return eb.Problem(lambda X, Y: (X ** 2).sum(axis=1), lower, bounds, bounds,
                      lower_constraints=lambda X, Y: (1.0 - (Y ** 2).sum(axis=1))[:, None],
                      vectorized=True, name="outside-the-unit-circle")


def test_an_objective_budget_shows_no_constraints_and_keeps_the_violation_at_the_lowest_f():
    ev = Evaluator(outside_the_unit_circle(fail_above=1.5))
    budget = ObjectiveBudget(ev, np.zeros((2, 2)), np.full(2, np.inf))
    assert budget.n_constraints == 0 and budget.known_n_constraints == 0
    Y = np.array([[0.5, 0.0], [1.2, 0.0], [1.8, 0.0], [0.0, 1.0], [0.0, -0.5]])
    f, g, cv = budget.evaluate(np.array([0, 0, 1, 1, 0]), Y)
    np.testing.assert_allclose(f[[0, 1, 3, 4]], [0.25, 1.44, 1.0, 0.25])
    assert g.shape == (5, 0)
    np.testing.assert_array_equal(cv, [0.0, 0.0, np.inf, 0.0, 0.0])  # the failed point alone
    # Row 0's lowest f is its first point (0.25, inside the circle: violation 0.75; the later equal one is not
    # taken); row 1's the one on the circle (the failed point has no value).
    np.testing.assert_allclose(budget.violation_at_best(), [0.75, 0.0])
    np.testing.assert_array_equal(budget.used, [3, 2])
    assert ev.n_ll_evals == 5


@pytest.mark.parametrize("solver", [LockstepRefinement(objective_only=True), LocalRefinement(objective_only=True)])
def test_an_objective_only_refinement_finds_the_minimum_of_f_and_reports_its_real_violation(solver):
    problem = outside_the_unit_circle()
    ev = Evaluator(problem)
    # Row 0's minimum of f (y = x) lies inside the circle, row 1's outside; the starts are feasible points, and the
    # one with the lower f comes second.
    X = np.array([[0.3, -0.2], [1.2, 0.9]])
    Y0 = np.array([[[-1.5, 1.5], [1.0, 0.0]], [[-1.0, -1.0], [1.5, 1.5]]])
    sol = solver.solve(ev, X, np.random.default_rng(0), Y0=Y0)
    np.testing.assert_allclose(sol.Y, X, atol=1e-4)
    np.testing.assert_allclose(sol.cv, [1.0 - 0.13, 0.0], atol=1e-4)
    np.testing.assert_array_equal(sol.success, [False, True])
    assert sol.n_evals.sum() == ev.n_ll_evals
    # The constrained refinement from the same starts stays on the circle for row 0.
    constrained = solver.__class__().solve(Evaluator(problem), X, np.random.default_rng(0), Y0=Y0)
    assert abs(np.hypot(*constrained.Y[0]) - 1.0) < 1e-6 and constrained.success.all()


class Stub:
    """A run context and state whose lower-level solves end at given answers, for ObjectiveFirst's rules: ``f`` and
    ``cv`` (n,) are what every solve returns, in the order of the rows it is given."""

    def __init__(self, f, cv=None, n_constraints=1):
        self.f, self.cv = np.asarray(f, float), None if cv is None else np.asarray(cv, float)
        self.calls = []
        self.problem = SimpleNamespace(n_ll_constraints=n_constraints)
        self.state = SimpleNamespace(counts={"suspects_refined": 0}, objective_first=None, probes=SearchRecord(),
                                     fallbacks=SearchRecord(), lower_linear=None, lower_convex=None,
                                     archive=SimpleNamespace(nearest_curvature=lambda X: None))

    def solve_lower(self, X, solver, Y0=None, **kwargs):
        n = X.shape[0]
        self.calls.append((solver.objective_only, Y0.shape))
        f = self.f[:n]
        cv = np.zeros(n) if self.cv is None else self.cv[:n]
        return LowerSolution(Y=np.arange(2 * n, dtype=float).reshape(n, 2) + 10.0, f=f, cv=cv, success=cv == 0,
                             n_evals=np.ones(n, np.int64))


def answers(f_refined):
    out = Answers.none(np.zeros((len(f_refined), 1)), 2)
    out.f[:], out.ll_cv[:] = f_refined, 0.0
    return out


def test_a_suspect_whose_refinement_from_f_alone_meets_phi_is_settled_and_an_answer_as_good_is_not_taken():
    # Row 0 drops below phi's bound: settled. Row 1 drops, but not to the bound: its lower answer goes on to the
    # global search. Row 2 ends within SUSPECT_GAIN of its refined value: another optimum as good (a sphere of
    # them), which is the leader's to choose, not this search's.
    ctx = Stub([0.5, 3.0, 1.0 - 0.5 * SUSPECT_GAIN * 2.0])
    out, todo = answers([5.0, 5.0, 1.0]), np.ones(3, bool)
    left = ObjectiveFirst(LockstepRefinement()).suspects(ctx, ctx.state, np.array([1.0, 1.0, 0.5]),
                                                         np.zeros((3, 2, 2)), np.arange(3), out, todo)
    # f alone from the refined answers and the starts, then the constrained search from where that ended.
    assert ctx.calls == [(True, (3, 3, 2)), (False, (3, 1, 2))]
    np.testing.assert_array_equal(left, [1, 2])
    np.testing.assert_array_equal(todo, [False, True, True])
    np.testing.assert_array_equal(out.f, [0.5, 3.0, 1.0])
    np.testing.assert_array_equal(out.Y[:2], [[10.0, 11.0], [12.0, 13.0]])
    assert np.isnan(out.Y[2]).all() and ctx.state.counts["suspects_refined"] == 1


def test_an_infeasible_end_of_the_refinement_from_f_alone_changes_nothing():
    ctx = Stub([0.5, 0.5, 0.5], cv=[0.1, np.inf, 0.0])
    out = answers([5.0, 5.0, 5.0])
    left = ObjectiveFirst(LockstepRefinement()).suspects(ctx, ctx.state, np.ones(3), None, np.arange(3), out,
                                                         np.ones(3, bool))
    np.testing.assert_array_equal(left, [0, 1])
    np.testing.assert_array_equal(out.f, [5.0, 5.0, 0.5])


@pytest.mark.parametrize("why", ["no constraints", "integer follower", "another solver", "refinements start so"])
def test_suspects_go_straight_to_the_global_search_where_the_route_does_not_apply(why):
    ctx = Stub([0.5, 0.5], n_constraints=0 if why == "no constraints" else 1)
    if why == "integer follower":
        ctx.problem.ll_integrality = np.array([True, False])
    ctx.state.objective_first = why == "refinements start so"
    solver = LocalRefinement() if why != "another solver" else SimpleNamespace(objective_only=False)
    left = ObjectiveFirst(solver).suspects(ctx, ctx.state, np.ones(2), None, np.arange(2), answers([5.0, 5.0]),
                                           np.ones(2, bool))
    np.testing.assert_array_equal(left, [0, 1])
    assert ctx.calls == []


@pytest.mark.parametrize("paying, verdict", [([1, 0, 1, 0, 1], True), ([0, 1, 0, 0, 1], False),
                                              ([1, 1, 1, 1, 1], True), ([0, 0, 0, 0, 0], False)])
def test_the_probes_decide_after_min_probes_whether_refinements_start_from_f_alone(paying, verdict):
    # Laplace's estimate (paid + 1) / (tried + 2) at least a half: three of five probes paying is enough, two not.
    assert MIN_PROBES == len(paying)
    route = ObjectiveFirst(LockstepRefinement())
    state = None
    for k, pays in enumerate(paying):
        ctx = Stub([1.0 if pays else 2.0])
        if state is not None:
            ctx.state = state
        state = ctx.state
        out = answers([2.0, 2.0])
        out.ll_cv[0] = 0.5  # the first settled row is infeasible: the probe takes the first feasible one
        route.probe(ctx, state, np.zeros((2, 1, 2)), out, np.arange(2))
        assert ctx.calls == [(True, (1, 1, 2)), (False, (1, 1, 2))]
        assert out.f[1] == (1.0 if pays else 2.0) and out.f[0] == 2.0  # a paying probe's answer is taken
        assert state.objective_first is (None if k < MIN_PROBES - 1 else verdict)
    # Decided: no more probes.
    ctx = Stub([1.0])
    ctx.state = state
    route.probe(ctx, state, None, answers([2.0]), np.arange(1))
    assert ctx.calls == [] and state.probes.tried == MIN_PROBES


def test_no_probe_without_a_feasible_settled_row():
    ctx = Stub([1.0])
    out = answers([2.0, 2.0])
    out.ll_cv[:] = [0.5, np.inf]
    ObjectiveFirst(LockstepRefinement()).probe(ctx, ctx.state, None, out, np.arange(2))
    assert ctx.calls == [] and ctx.state.probes.tried == 0


def test_rows_that_do_not_settle_from_f_alone_fall_back_to_their_warm_starts_until_the_fallbacks_pay():
    # Four rows refined from f's own minimum: row 0 settles (feasible, converged, within phi's bound); row 1 ends
    # infeasible, row 2 above the bound, row 3 feasible but not converged. Their fallbacks from the warm starts:
    # row 1 feasible (better), row 2 lower by more than SUSPECT_GAIN (better), row 3 as good (not taken).
    ctx = Stub([1.0, 2.0, 5.0, 3.0], cv=[0.0, 0.4, 0.0, 0.0])
    ctx.state.objective_first = True
    route = ObjectiveFirst(LockstepRefinement())
    first = ctx.solve_lower
    sol_first = [None]

    def solve_lower(X, solver, Y0=None, **kwargs):
        sol = first(X, solver, Y0=Y0, **kwargs)
        if not solver.objective_only:
            sol.success[3] = False
            sol_first[0] = sol
        return sol

    ctx.solve_lower = solve_lower
    asked = []

    def fallback(rows):
        asked.append(rows.tolist())
        return LowerSolution(Y=np.full((3, 2), -1.0), f=np.array([2.5, 4.0, 3.0]), cv=np.zeros(3),
                             success=np.ones(3, bool), n_evals=np.full(3, 7, np.int64))

    sol = route.route(ctx, ctx.state, np.zeros((4, 1)), np.zeros((4, 1, 2)), None, np.array([2.0, 2.0, 2.0, 9.0]),
                      fallback)
    assert asked == [[1, 2, 3]]
    np.testing.assert_array_equal(sol.f, [1.0, 2.5, 4.0, 3.0])
    np.testing.assert_array_equal(sol.cv, [0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(sol.Y[1:3], -np.ones((2, 2)))
    np.testing.assert_array_equal(sol.success, [True, True, True, False])
    np.testing.assert_array_equal(sol.n_evals, [1, 8, 8, 8])  # each row's evaluations on both routes
    assert (ctx.state.fallbacks.tried, ctx.state.fallbacks.paid) == (3, 2) and ctx.state.objective_first
    # Three more fallbacks, two of which pay: four of six paid, and the run returns to the warm starts.
    ctx.f, ctx.cv = np.array([1.0, 5.0, 5.0, 1.0]), np.array([0.0, 0.0, 0.0, 0.0])
    route.route(ctx, ctx.state, np.zeros((4, 1)), np.zeros((4, 1, 2)), None, np.array([2.0, 2.0, 2.0, 2.0]), fallback)
    assert (ctx.state.fallbacks.tried, ctx.state.fallbacks.paid) == (6, 4) and ctx.state.objective_first is False


def _run(name, size, seed, route=True, monkeypatch=None):
    """A BLEAQ run (target 1e-2), with the route of refinements from f's own minimum or without it."""
    if not route:
        monkeypatch.setattr(ObjectiveFirst, "applies", lambda self, ctx, state: False)
    kwargs = dict(ul_dim=size[0], ll_dim=size[1])
    result = eb.solve(eb.benchmarks.get(name, **kwargs), seed=seed, target=1e-2)
    if not route:
        monkeypatch.undo()
    return result


def test_where_the_probes_never_pay_the_run_keeps_its_path_and_pays_for_five_probes(monkeypatch):
    # SMD10's follower is trapped nowhere: refinements from its warm starts find its optimum, and f alone leads far
    # outside its feasible set. Its five probes find nothing lower, the run decides against the route, and every
    # upper-level step is the one it takes without the route.
    probed = _run("SMD10", (5, 5), 0)
    plain = _run("SMD10", (5, 5), 0, route=False, monkeypatch=monkeypatch)
    assert probed.success and plain.success
    assert probed.n_ul_evals == plain.n_ul_evals
    np.testing.assert_array_equal(probed.x, plain.x)
    np.testing.assert_array_equal(probed.y, plain.y)
    assert probed.history[-1]["objective_first"] == 0 and probed.history[-1]["suspects_refined"] == 0
    assert 0 < probed.n_ll_evals - plain.n_ll_evals <= MIN_PROBES * 200


@pytest.mark.slow
@pytest.mark.ci
def test_smd9_at_ten_variables_refines_from_f_alone_and_needs_a_fraction_of_the_evaluations(monkeypatch):
    # SMD9 (10, 10), solve seed 1: the probes pay, every later refinement starts from f's own minimum, and the run
    # needs less than a third of the lower-level evaluations (and upper-level ones) of the same run without it.
    routed = _run("SMD9", (10, 10), 1)
    plain = _run("SMD9", (10, 10), 1, route=False, monkeypatch=monkeypatch)
    assert routed.success and plain.success
    assert routed.history[-1]["objective_first"] > 0
    assert routed.n_ll_evals < plain.n_ll_evals / 3 and routed.n_ul_evals < plain.n_ul_evals / 3
