"""BLEAQ and its quadratic response models: exact fits, model selection, predictions that save evaluations."""

from __future__ import annotations

import numpy as np
import pytest

import evobilevel as eb
from evobilevel.algorithms import BLEAQ, Nested
from evobilevel.algorithms.bleaq.algorithm import EPS_RENEWALS
from evobilevel.algorithms.bleaq.response import ResponseModel
from evobilevel.algorithms.bleaq.settlement import LowerSettlement, capped_evals
from evobilevel.algorithms.bleaq.state import BLEAQState
from evobilevel.algorithms.bleaq.upper import ModelProposal
from evobilevel.algorithms.population import Population, stalled_infeasible
from evobilevel.algorithms.restarts import RestartRule
from evobilevel.lower import LocalRefinement
from evobilevel.surrogates import fit_local, fit_quadratic, n_coefficients


# ----------------------------------------------------------------------------------------- surrogates
def test_full_quadratic_is_recovered_exactly():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 3, (40, 3))
    t = 1.5 + X @ [1.0, -2.0, 0.5] + 0.7 * X[:, 0] * X[:, 1] - 0.3 * X[:, 2] ** 2
    model = fit_quadratic(X, t)
    assert model.kinds == ["quadratic"]
    Xq = rng.uniform(-2, 3, (10, 3))
    tq = 1.5 + Xq @ [1.0, -2.0, 0.5] + 0.7 * Xq[:, 0] * Xq[:, 1] - 0.3 * Xq[:, 2] ** 2
    np.testing.assert_allclose(model.predict(Xq)[:, 0], tq, atol=1e-9)


def test_form_is_chosen_per_output_and_its_own_coefficients_are_used():
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (30, 4))
    linear = 2 + X @ [1, 2, 3, 4]
    pure = X[:, 0] ** 2 + 3 * X[:, 3] ** 2 - X[:, 1]
    model = fit_quadratic(X, np.c_[linear, pure])
    assert model.kinds == ["linear", "pure_quadratic"]
    assert len(model.coefs[0]) == n_coefficients(4, "linear")
    assert len(model.coefs[1]) == n_coefficients(4, "pure_quadratic")
    Xq = rng.uniform(-1, 1, (5, 4))
    np.testing.assert_allclose(model.predict(Xq), np.c_[2 + Xq @ [1, 2, 3, 4],
                                                        Xq[:, 0] ** 2 + 3 * Xq[:, 3] ** 2 - Xq[:, 1]], atol=1e-9)


def test_too_few_points_is_a_clear_error():
    with pytest.raises(ValueError, match="too few"):
        fit_quadratic(np.zeros((3, 4)), np.zeros(3))


def test_local_model_measures_its_error_on_held_out_points_and_knows_its_box():
    rng = np.random.default_rng(2)
    X = rng.uniform(0, 1, (200, 2))
    smooth = np.c_[X[:, 0] ** 2 + X[:, 1], np.arctan(5 * X[:, 0])]
    model = fit_local(X, smooth, np.array([0.5, 0.5]), n_train=15, n_valid=5, rng=rng)
    assert model.valid_error[0] < 1e-10  # exactly quadratic
    assert 0 < model.valid_error[1] < 0.05  # smooth, not quadratic: small but not zero
    assert model.inside(np.array([0.5, 0.5]))[0] and not model.inside(np.array([5.0, 0.5]))[0]
    assert fit_local(X[:10], smooth[:10], X[0], 15, 5, rng) is None


def test_least_squares_by_gelsy_match_scipy_s_call_and_drop_dependent_columns():
    from scipy.linalg import lstsq

    from evobilevel.surrogates import _least_squares

    rng = np.random.default_rng(3)
    for n, p, m in [(31, 21, 6), (86, 66, 11), (12, 4, 1)]:
        A, T = rng.standard_normal((n, p)), rng.standard_normal((n, m))
        A[:, 1] = 0.0  # an input that did not vary
        A[:, -1] = 2.0 * A[:, 0]  # and a dependent column: the minimum-norm answer puts nothing on the zero one
        cond = np.finfo(float).eps * n
        expected = lstsq(A, T, cond=cond, lapack_driver="gelsy", check_finite=False)[0]
        coef = _least_squares(A, T)
        np.testing.assert_array_equal(coef, expected)
        assert np.all(coef[1] == 0.0)
        np.testing.assert_allclose(coef[-1], 2.0 * coef[0], rtol=1e-8)  # the shared slope split by the norm


def test_model_predictions_for_several_rows_are_each_row_s_own_to_the_bit():
    rng = np.random.default_rng(4)
    X = rng.uniform(-2, 3, (60, 4))
    T = np.c_[X[:, 0] ** 2 + X[:, 1] * X[:, 2] - 3 * X[:, 3], np.sin(X[:, 0]) + X[:, 3] ** 2, X @ [1, 2, 3, 4]]
    model = fit_quadratic(X, T)
    assert model.kinds == ["quadratic", "pure_quadratic", "linear"]  # every form
    Xq = rng.uniform(-1, 2, (7, 4))
    each = model.predict_each(Xq)
    for i in range(7):
        np.testing.assert_array_equal(each[i], model.predict(Xq[i])[0])


def test_slsqp_slopes_of_the_model_are_scipy_s_forward_differences_to_the_bit():
    from scipy.optimize._numdiff import approx_derivative

    from evobilevel.algorithms.bleaq.upper import _Remembered

    rng = np.random.default_rng(5)
    X = rng.uniform(0, 1, (40, 3))
    T = np.c_[((X - 0.3) ** 2).sum(axis=1),
              X[:, 0] + X[:, 1] - 1.2, X[:, 2] ** 2 - 0.5]
    model = _Remembered(fit_quadratic(X, T))
    lo, hi = np.zeros(3), np.ones(3)
    step = np.sqrt(np.finfo(np.float64).eps)
    # Inside, on the upper bound (the step turned back) and 0 (the step's sign).
    for x in [np.array([0.4, 0.7, 0.2]), np.array([1.0, 0.5, 1.0]), np.array([0.0, 1.0 - 1e-9, 0.3])]:
        F = approx_derivative(lambda z: model.predict(z)[0, 0], x, method="2-point", abs_step=step,
                              f0=model.predict(x)[0, 0], bounds=(lo, hi))
        np.testing.assert_array_equal(model.objective_slopes(x, lo, hi), F)
        G = approx_derivative(lambda z: 0.01 - model.predict(z)[0, 1:], x, method="2-point", abs_step=step,
                              bounds=(lo, hi))
        np.testing.assert_array_equal(model.constraint_slopes(x, 0.01, lo, hi), G)


# ---------------------------------------------------------------------------------------------- BLEAQ
def test_bleaq_reaches_the_target_with_far_fewer_lower_level_evaluations_than_nested():
    p = eb.benchmarks.get("SMD2", ul_dim=2, ll_dim=3)
    b = eb.solve(p, algorithm="bleaq", seed=0, target=1e-2)
    n = eb.solve(p, algorithm=Nested(pop_size=20), seed=0, target=1e-2)
    assert b.success and n.success
    assert b.ll_gap < 1e-2
    assert b.n_ll_evals < n.n_ll_evals / 5
    assert b.n_ul_evals < n.n_ul_evals


def test_predictions_replace_lower_level_solves_and_are_counted():
    # Without the upper-level model step the population converges by evolution, and the psi/phi models take
    # over the lower level as the archive fills.
    p = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)
    r = eb.solve(p, algorithm=BLEAQ(model_search=False), seed=3, target=1e-3)
    assert r.success, r.message
    last = r.history[-1]
    assert last["predicted"] > 0 and last["refined"] > 0 and last["global"] >= 3
    # Every settled lower level is counted once: initial population + offspring (no model candidates here).
    assert last["predicted"] + last["refined"] + last["global"] - last["rechecks"] == r.n_ul_evals
    # Predictions cost one lower-level evaluation each, so they are cheaper than the refinements around them.
    assert r.n_ll_evals < 200 * r.n_ul_evals


def test_bleaq_is_deterministic_across_n_jobs():
    p = eb.benchmarks.get("SMD6", ul_dim=2, ll_dim=3)
    a = eb.solve(p, algorithm=BLEAQ(max_generations=15), seed=5, n_jobs=1)
    b = eb.solve(p, algorithm=BLEAQ(max_generations=15), seed=5, n_jobs=2)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert (a.n_ul_evals, a.n_ll_evals, a.F, a.f) == (b.n_ul_evals, b.n_ll_evals, b.F, b.f)
    columns_a, columns_b = a.history.to_columns(), b.history.to_columns()
    del columns_a["elapsed"], columns_b["elapsed"]
    assert columns_a == columns_b


def test_bleaq_stops_by_its_own_rule_with_a_good_answer():
    p = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)
    r = eb.solve(p, algorithm="bleaq", seed=1)
    assert r.success and "local optimum of the leader's quadratic model" in r.message
    assert r.ul_error < 1e-4 and r.ll_error < 1e-4 and r.ll_gap < 1e-6
    # The first attempt ended two generations after the model found the optimum; one half-size restart found it again.
    assert "found again by restart 1" in r.message and r.n_ul_evals < 100


def test_a_restart_that_gathers_around_the_kept_answer_takes_it_back(monkeypatch):
    # SMD6's first attempt converges to the optimum; the half-size probe's population gathers around it long before
    # the probe would converge again (its follower's free directions make F noisy near the optimum), takes the kept
    # answer back and confirms it (on seed 3 the probe's own convergence test comes first, at the same answer).
    # Without the rule the probe converges again to its own certificate: on these seeds that costs more evaluations
    # in total, at each level. (SMD6's follower is convex: its solves from scratch are refinements by default, which
    # changes the runs' paths; searched, as here, the runs are those the rule was measured on.)
    p = eb.benchmarks.get("SMD6", ul_dim=2, ll_dim=3)
    seeds = range(5)
    algorithm = BLEAQ(certify_convex=False)
    runs = [eb.solve(p, algorithm=algorithm, seed=seed) for seed in seeds]
    assert sum(r.message.endswith("whose population had gathered around it") for r in runs) >= 4
    for r in runs:
        assert r.ul_error < 1e-2 and r.ll_error < 1e-4 and r.ll_gap < 1e-6
    monkeypatch.setattr(RestartRule, "gathered", lambda self, state, X: False)
    without = [eb.solve(p, algorithm=algorithm, seed=seed) for seed in seeds]
    assert not any(r.message.endswith("gathered around it") for r in without)
    assert sum(r.n_ul_evals for r in runs) < sum(r.n_ul_evals for r in without)
    assert sum(r.n_ll_evals for r in runs) < sum(r.n_ll_evals for r in without)


def test_a_restart_holding_a_stalled_kept_answer_ends_after_one_window_without_a_gain(monkeypatch):
    # TP1 seed 17 without a target: its restarts take back a kept answer that the stall rule ended, and none of
    # their members beats it; such a restart ends once a whole window passed without a gain on it, without waiting
    # for its members to agree on their values (measured: 1,010 UL and 5,302 LL evaluations in all, against 1,160
    # and 5,579 when it waits for them). The rule acts in few runs (seeds 17, 20, 30 and 33 of 0-39).
    # (TP1's follower is convex: searched from scratch, as here, not refined, the runs are those measured.)
    p, algorithm = eb.benchmarks.get("TP1"), BLEAQ(certify_convex=False)
    r = eb.solve(p, algorithm=algorithm, seed=17)
    assert r.ul_error < 1e-3 and r.ll_gap < 1e-6
    monkeypatch.setattr(BLEAQState, "holds_stalled_kept", lambda self, best: False)
    waiting = eb.solve(p, algorithm=algorithm, seed=17)
    assert waiting.ul_error < 1e-3
    assert r.n_ul_evals < waiting.n_ul_evals and r.n_ll_evals < waiting.n_ll_evals


def test_a_restart_in_a_basin_that_cannot_beat_the_kept_answer_ends_before_converging():
    # TP2 has two optimal leader points; an attempt that settles away from the kept answer, where the quadratic model
    # around its best member, less the model's largest error on its own points, stays above the kept F, ends there
    # as one that found nothing better, and the run keeps its answer. Which seeds meet that basin is chance, so the
    # test asks it of some of a handful of seeds, and asks every run that ends so to hold an optimum.
    p = eb.benchmarks.get("TP2")
    runs = [eb.solve(p, algorithm="bleaq", seed=seed) for seed in range(5, 9)]
    ended = [r for r in runs if r.message.startswith(
        "the quadratic model around the restart's best member, away from the kept answer, promised nothing below it")]
    assert ended
    for r in ended:
        assert r.message.endswith("5 attempts in a row found nothing better")
        assert r.ul_error < 1e-3 and r.ll_gap < 1e-6


def _leader_infeasible_everywhere() -> eb.Problem:
    """A leader whose constraint no point meets: its violation is least, 1, at x = (2, 2)."""
    def upper(X, Y):
        return np.sum((X - 1) ** 2, axis=1) + np.sum(Y**2, axis=1)

    def constraint(X, Y):
        return (1.0 + 0.01 * np.sum((X - 2) ** 2, axis=1))[:, None]

    def lower(X, Y):
        return np.sum((Y - X) ** 2, axis=1)

    return eb.Problem(upper=upper, lower=lower, upper_constraints=constraint, ul_bounds=([-5, -5], [5, 5]),
                      ll_bounds=([-5, -5], [5, 5]), vectorized=True, name="leader infeasible everywhere")


def test_an_attempt_that_stops_closing_in_on_the_leader_s_feasible_set_ends():
    # Its least violation falls ever more slowly towards 1: an attempt ends once it falls by less than 2.5 % of
    # itself (25 of 1,000 generations) in 25 generations, instead of crawling on to the generation limit, and the
    # restarts, which end at the same least violation, run out of patience (measured: the first attempt ends at
    # generation 42, the run after 252 generations, 3,654 UL and 9,145 LL evaluations; without the rule it ran
    # 1,000 generations, 6,543 UL and 8,601 LL evaluations, in one attempt).
    r = eb.solve(_leader_infeasible_everywhere(), algorithm="bleaq", seed=0)
    assert not r.success
    assert r.message.startswith("no member is feasible, and the least violation fell by less than 2.5% of itself")
    first_restart = next(record["generation"] for record in r.history if record["restarts"] == 1)
    assert first_restart < 100
    assert r.history[-1]["generation"] < 400 and r.n_ul_evals < 5000


def test_a_restart_closing_in_on_the_kept_answer_from_outside_the_feasible_set_takes_it_back(monkeypatch):
    # TP1's optimum lies on the leader's constraint. On seed 5 the half-size probe comes towards it from outside the
    # feasible set and stops closing in: it is coming back to the kept answer's place, and takes the kept answer
    # back, as a gathered population does, which confirms it (measured: 486 UL and 3,262 LL evaluations; ending the
    # probe there instead, as an attempt without a feasible member, costs 1,459 and 6,833, two more restarts; before
    # the stall test for such populations the probe crept on until it had gathered there, at generation 103, and
    # the run took 849 UL evaluations). TP1's follower is convex; its solves from scratch are searched here, as
    # they were when this was measured.
    p, algorithm = eb.benchmarks.get("TP1"), BLEAQ(certify_convex=False)
    came_back = []
    coming_back = RestartRule.coming_back
    monkeypatch.setattr(RestartRule, "coming_back",
                        lambda self, state, best: came_back.append(coming_back(self, state, best)) or came_back[-1])
    r = eb.solve(p, algorithm=algorithm, seed=5)
    assert came_back == [True]
    assert r.ul_error < 1e-3 and r.ll_gap < 1e-6 and r.n_ul_evals < 600
    assert r.message.endswith("found again by restart 1, whose population had gathered around it")
    monkeypatch.setattr(RestartRule, "coming_back", lambda self, state, best: False)
    ended = eb.solve(p, algorithm=algorithm, seed=5)
    assert ended.ul_error < 1e-3 and ended.n_ul_evals > 1000


def test_the_stall_test_of_a_population_without_a_feasible_member():
    window, limit = 25, 1000
    slow = [1.0 * (1 - 0.02) ** (i / window) for i in range(window + 1)]  # 2 % in a window: below 2.5 %
    fast = [1.0 * (1 - 0.03) ** (i / window) for i in range(window + 1)]
    assert stalled_infeasible(slow, window, limit) and not stalled_infeasible(fast, window, limit)
    assert not stalled_infeasible(slow[:-1], window, limit)  # not a whole window yet
    assert not stalled_infeasible(slow[:-1] + [0.0], window, limit)  # feasible now


def test_bleaq_respects_budgets():
    p = eb.benchmarks.get("SMD3", ul_dim=2, ll_dim=3)
    r = eb.solve(p, algorithm="bleaq", seed=0, max_ll_evals=3000)
    assert r.n_ll_evals <= 3000 and "budget" in r.message


@pytest.mark.slow
@pytest.mark.ci
@pytest.mark.parametrize("name", ["SMD1", "SMD6", "SMD8"])
def test_bleaq_converges_on_smd_5x5(name):
    p = eb.benchmarks.get(name, ul_dim=5, ll_dim=5)
    r = eb.solve(p, algorithm="bleaq", seed=0, target=1e-2)
    assert r.success, r.message
    assert r.ll_gap < 1e-2


@pytest.mark.slow
@pytest.mark.parametrize("name", [f"SMD{i}" for i in range(1, 9)])
def test_bleaq_converges_on_all_unconstrained_smd_5x5(name):
    p = eb.benchmarks.get(name, ul_dim=5, ll_dim=5)
    r = eb.solve(p, algorithm="bleaq", seed=1, target=1e-2)
    assert r.success, r.message


def _context(problem):
    from evobilevel.context import RunContext
    from evobilevel.parallel import LowerEngine

    return RunContext(problem, LowerEngine(n_jobs=1), np.random.SeedSequence(0))


def _start(problem, x, y):
    """The LeaderChoice of the pair (x, y), evaluated outside any run, and its lower-level value."""
    from evobilevel.algorithms.optimistic import LeaderChoice
    from evobilevel.evaluator import Evaluator

    ev = Evaluator(problem)
    upper, lower = ev.upper(x[None], y[None]), ev.lower(x[None], y[None])
    assert lower.cv[0] == 0
    f = float(lower.values[0])
    return LeaderChoice(y, float(upper.values[0]), float(upper.cv[0]), f, upper.constraints[0].copy()), f


def test_leader_choice_finds_the_one_lower_level_optimum_the_upper_level_accepts():
    # SMD11: at x* the follower's optima form a circle, z = x_u2 - log(y_l2) with |z| = 1; only z = (1, 1)/sqrt(2)
    # satisfies the leader's constraints z_i >= 1/sqrt(2). Start on the circle at 30 degrees.
    from evobilevel.algorithms.optimistic import choose_for_leader

    p = eb.benchmarks.get("SMD11", ul_dim=5, ll_dim=5)
    ctx = _context(p)
    x = p.optimum.x
    z = np.array([np.cos(np.pi / 6), np.sin(np.pi / 6)])
    y = np.concatenate([np.zeros(3), np.exp(x[3:] - z)])
    start, f0 = _start(p, x, y)
    assert start.ul_cv > 0.1 and f0 == pytest.approx(p.optimum.f)
    f_limit = f0 + 1e-6 * (1 + abs(f0))
    choice = choose_for_leader(ctx, x, start, f_limit)
    assert choice.ul_cv == 0 and choice.f <= f_limit
    assert abs(choice.F - p.optimum.F) < 1e-5
    assert np.allclose(choice.y, p.optimum.y, atol=1e-2)
    # Every point tried was evaluated at both levels and counted.
    assert ctx.n_ul_evals == ctx.n_ll_evals > 0


def test_leader_choice_gives_up_after_one_gradient_when_the_violation_does_not_depend_on_y():
    from evobilevel.algorithms.optimistic import choose_for_leader

    p = eb.benchmarks.get("SMD10", ul_dim=5, ll_dim=5)  # upper-level constraints bind x alone
    ctx = _context(p)
    x = np.full(5, 0.9)  # violates them
    start, f0 = _start(p, x, p.optimum.y)
    assert start.ul_cv > 0
    assert choose_for_leader(ctx, x, start, f0 + 1e-6) is start
    assert ctx.n_ul_evals == p.ll_dim + 1


def test_leader_choice_records_which_upper_level_constraints_move_with_y():
    from evobilevel.algorithms.optimistic import choose_for_leader

    # SMD12 (5, 5): 5 cubic constraints on x, then x_u2 - tan(x_l2) >= 0 (2 of them), which move with y.
    p = eb.benchmarks.get("SMD12", ul_dim=5, ll_dim=5, variant="bleaq2")
    x = p.optimum.x
    # On the circle (just outside, against rounding), z_1 < 0: infeasible for the leader.
    z = np.array([np.cos(np.radians(100)), np.sin(np.radians(100))]) * (1 + 1e-12)
    y = np.concatenate([p.optimum.y[:3], np.arctan(x[3:] - z)])
    start, f0 = _start(p, x, y)
    assert start.ul_cv > 0
    moves = np.zeros(p.n_ul_constraints, bool)
    choice = choose_for_leader(_context(p), x, start, f0 + 1e-6 * (1 + abs(f0)), moves_with_y=moves)
    assert moves.tolist() == [False] * 5 + [True] * 2
    assert choice.ul_cv == 0 and np.all(choice.G <= 0)



def test_leader_choice_gives_up_after_one_gradient_when_a_violated_constraint_binds_x_alone():
    from evobilevel.algorithms.optimistic import choose_for_leader

    # SMD12 (5, 5), x* with x_u1's first variable pushed below zero: the first cubic constraint (x alone) is
    # violated, and the answer on the circle at 100 degrees violates a tan constraint as well (y moves it). No
    # answer of the follower makes that member feasible: one gradient tells, where SLSQP used to run its course.
    p = eb.benchmarks.get("SMD12", ul_dim=5, ll_dim=5, variant="bleaq2")
    x = p.optimum.x.copy()
    x[0] = -0.5
    z = np.array([np.cos(np.radians(100)), np.sin(np.radians(100))]) * (1 + 1e-12)
    y = np.concatenate([p.optimum.y[:3], np.arctan(x[3:] - z)])
    start, f0 = _start(p, x, y)
    assert start.G[0] > 0 and np.any(start.G[5:] > 0)
    ctx = _context(p)
    moves = np.zeros(p.n_ul_constraints, bool)
    assert choose_for_leader(ctx, x, start, f0 + 1e-6 * (1 + abs(f0)), moves_with_y=moves) is start
    assert ctx.n_ul_evals == p.ll_dim + 1
    assert moves.tolist() == [False] * 5 + [True] * 2


def test_leader_chooses_for_an_infeasible_member_only_where_y_moves_every_violated_constraint():
    from evobilevel.algorithms.bleaq.leader import LeaderPolicy
    from evobilevel.algorithms.bleaq.state import LeaderState

    leader = LeaderState(G_moves_with_y=np.array([False, True]))
    population = Population(X=np.zeros((3, 1)), Y=np.zeros((3, 1)), F=np.zeros(3),
                            G=np.array([[-1.0, 1.0], [1.0, 1.0], [1.0, -1.0]]), ul_cv=np.ones(3), f=np.zeros(3),
                            ll_cv=np.zeros(3))
    assert [LeaderPolicy._repairable_by_y(leader, population, i) for i in range(3)] == [True, False, False]
    assert LeaderPolicy._repairable_by_y(LeaderState(), population, 1)  # nothing looked at yet


def _free_test_case(f_star):
    """A BLEAQ on SMD1 (2, 3)'s bounds whose archive holds 60 follower optima: the first variable of y anywhere in
    its range (a line of optima: psi cannot place it), the others x itself, and the optimal value ``f_star(X)``."""
    from evobilevel.algorithms.archive import SolutionArchive

    p = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)
    algorithm = BLEAQ()
    algorithm._build(p)
    rng = np.random.default_rng(1)
    (lo_x, hi_x), (lo_y, hi_y) = p.ul_bounds, p.ll_bounds
    X = rng.uniform(lo_x, hi_x, size=(60, 2))
    Y = np.column_stack([rng.uniform(lo_y[0], hi_y[0], size=60), X])
    archive = SolutionArchive(p.ul_bounds, 3)
    archive.add(X, Y, f_star(X))
    x = 0.5 * (lo_x + hi_x)
    state = BLEAQState(archive=archive, population=Population(
        X=x[None, :], Y=np.concatenate([[lo_y[0]], x])[None, :], F=np.zeros(1), G=np.zeros((1, 0)),
        ul_cv=np.zeros(1), f=f_star(x[None, :]), ll_cv=np.zeros(1)))
    return algorithm._leader, _context(p), state


def test_a_follower_counts_as_free_where_psi_cannot_place_its_answer_but_phi_its_value():
    # A line of optima: the optimal value is a smooth function of x (phi is right) while the answer is not. The
    # leader may move the one variable psi cannot place; the others are x itself, which psi determines.
    leader, ctx, state = _free_test_case(lambda X: (X ** 2).sum(axis=1))
    assert leader.free_components(ctx, state, 0).tolist() == [True, False, False]
    # Where phi cannot place the value either (a follower whose optimal value jumps between pieces, as on SMD9's
    # rings), psi's error says nothing of a set of optima: the models do not fit the response there.
    leader, ctx, state = _free_test_case(lambda X: np.floor(3 * (X ** 2).sum(axis=1)) % 2)
    assert leader.free_components(ctx, state, 0) is None


def test_choice_for_an_infeasible_member_takes_the_search_s_end_refined_by_the_follower():
    from evobilevel.algorithms.bleaq.algorithm import default_local_solver
    from evobilevel.algorithms.optimistic import choose_feasible, choose_for_leader

    # A best member of an SMD12 (10, 10) run (solve seed 0) violating one tan constraint only, whose follower's
    # optima form a sphere: SLSQP visits no admissible point (the answers within the tolerance are a thin shell),
    # so the plain search keeps the start; its final point, refined by the follower's own solver, is feasible.
    p = eb.benchmarks.get("SMD12", ul_dim=10, ll_dim=10, variant="bleaq2")
    x = np.array([0.2912262545700617, 0.2161312870225107, 0.23080526258655237, 0.23924539385580185,
                  0.22021615001621492, 0.2571027524670257, 0.21413028802463577, 0.21461881042225422,
                  0.4532070916981197, 0.2626683803767857])
    y = np.array([0.4999999995000002, 0.4999999995000006, 0.4999999995, 0.4999999995000004, 0.4999999994999999,
                  -0.0017763488241780377, 0.04914041779619295, -0.5625018050893978, 0.6796600260659473,
                  0.006348460821707697])
    start, f0 = _start(p, x, y)
    assert start.ul_cv > 0 and np.flatnonzero(start.G > 0).tolist() == [13]
    f_limit = f0 + 1e-6 * (1 + abs(f0))
    assert choose_for_leader(_context(p), x, start, f_limit).ul_cv == start.ul_cv
    choice = choose_feasible(_context(p), x, start, f_limit, default_local_solver())
    assert choice.ul_cv == 0 and np.all(choice.G <= 0) and choice.f <= f_limit

def test_confirmed_choice_moves_along_a_set_of_optima():
    # SMD12 at x*: the follower's optima form a circle; from 10 degrees on it the leader reaches its preferred
    # point (F = optimum.F_low), and the follower's own refinement of that answer keeps it.
    from evobilevel.algorithms.optimistic import choose_confirmed

    p = eb.benchmarks.get("SMD12", ul_dim=5, ll_dim=5, variant="bleaq2")
    x = p.optimum.x
    z = np.array([np.cos(np.radians(10)), np.sin(np.radians(10))]) * (1 + 1e-12)
    start, f0 = _start(p, x, np.concatenate([p.optimum.y[:3], np.arctan(x[3:] - z)]))
    assert start.ul_cv == 0 and start.F > p.optimum.F_low + 0.3
    ctx = _context(p)
    choice = choose_confirmed(ctx, x, start, 1e-6, LocalRefinement())
    assert choice.F == pytest.approx(p.optimum.F_low, abs=1e-4)
    assert choice.f <= f0 + 1e-8 * (1 + abs(f0)) and choice.ul_cv == 0  # back to the optimal value, not f0 + tol
    # The search counts at both levels, the follower's refinement at the lower level (plus one upper value).
    assert ctx.n_ll_evals > ctx.n_ul_evals > 0


def _smd12_sphere_start(p):
    """SMD12 at x*: a pair whose follower's answer lies on the sphere of its optima (y's last ``ul_dim // 2``
    variables; at 0.17 rad on the circle at (5, 5); just outside, against rounding), and its lower-level value."""
    x = p.optimum.x
    r = p.ul_dim // 2  # SMD's split: the variables of the sphere
    v = np.array([0.229, 0.015, 0.855, 0.08, 0.458]) if r == 5 else np.array([np.cos(0.17), np.sin(0.17)])
    v *= (1 + 1e-12) / np.linalg.norm(v)
    return _start(p, x, np.concatenate([p.optimum.y[:p.ll_dim - r], np.arctan(x[p.ll_dim - r:] - v)]))


def test_confirmed_choice_takes_the_search_s_end_just_outside_the_followers_tolerance():
    # SMD12 (10, 10) at x*: the follower's optima form a sphere in five dimensions. From this point on it, SLSQP
    # ends a hair outside the thin shell f <= f0 + tol, and no point it visited inside is better than the start;
    # the follower's refinement of its final point brings it back to the sphere near the leader's preferred point.
    from evobilevel.algorithms.optimistic import choose_confirmed, choose_for_leader

    p = eb.benchmarks.get("SMD12", ul_dim=10, ll_dim=10, variant="bleaq2")
    x = p.optimum.x
    start, f0 = _smd12_sphere_start(p)
    assert start.ul_cv == 0 and start.F > p.optimum.F + 0.5
    assert choose_for_leader(_context(p), x, start, f0 + 1e-6 * (1 + abs(f0))) is start
    choice = choose_confirmed(_context(p), x, start, 1e-6, LocalRefinement())
    assert choice.F == pytest.approx(p.optimum.F_low, abs=2e-3)
    assert choice.f <= f0 + 1e-8 * (1 + abs(f0)) and choice.ul_cv == 0


def test_confirmed_choice_along_the_free_components_only():
    # SMD12 (10, 10) at x*, from a point on the sphere of the follower's optima (y's last five variables; the
    # first five are fixed by x): searching those five reaches the leader's preferred point as the search over all
    # ten does, leaves the others where they were, and costs fewer evaluations of the leader's function.
    from evobilevel.algorithms.optimistic import choose_confirmed

    p = eb.benchmarks.get("SMD12", ul_dim=10, ll_dim=10, variant="bleaq2")
    x = p.optimum.x
    start, f0 = _smd12_sphere_start(p)
    every, along = _context(p), _context(p)
    choose_confirmed(every, x, start, 1e-6, LocalRefinement())
    choice = choose_confirmed(along, x, start, 1e-6, LocalRefinement(), components=np.arange(10) >= 5)
    assert choice.F == pytest.approx(p.optimum.F_low, abs=2e-3)
    assert choice.f <= f0 + 1e-8 * (1 + abs(f0)) and choice.ul_cv == 0
    assert np.allclose(choice.y[:5], start.y[:5], atol=1e-6)
    assert along.n_ul_evals < every.n_ul_evals


def test_choice_along_the_optima_reaches_the_leader_s_point_for_a_fraction_of_the_search_s_cost():
    # SMD12 at x*, from a point on the follower's set of optima (the sphere of y's last r variables): descending in
    # those variables, each step refined back onto the set, reaches the leader's preferred point (within the
    # benchmark's target at (10, 10), 1e-3 at (5, 5)) with the others where they were and f at its optimum, for under
    # half the upper-level evaluations of the SLSQP search over the same variables.
    from evobilevel.algorithms.bleaq.algorithm import default_local_solver
    from evobilevel.algorithms.optimistic import FLAT_TOL, choose_along_optima, choose_confirmed

    for dim, r, accuracy in ((10, 5, 1e-2), (5, 2, 1e-3)):
        p = eb.benchmarks.get("SMD12", ul_dim=dim, ll_dim=dim, variant="bleaq2")
        x = p.optimum.x
        start, f0 = _smd12_sphere_start(p)
        free = np.arange(dim) >= dim - r
        along, searched = _context(p), _context(p)
        choice = choose_along_optima(along, x, start, default_local_solver(), free)
        choose_confirmed(searched, x, start, 1e-6, default_local_solver(), components=free)
        assert start.F - p.optimum.F_low > 0.3
        assert choice.F == pytest.approx(p.optimum.F_low, abs=accuracy)
        assert choice.ul_cv == 0 and choice.f <= f0 + FLAT_TOL * (1 + abs(f0))
        assert np.allclose(choice.y[:dim - r], start.y[:dim - r], atol=1e-6)
        assert 0 < 2 * along.n_ul_evals < searched.n_ul_evals


def test_choice_along_the_optima_refuses_a_valley_of_a_unique_optimum():
    # The ill-conditioned follower of the test below: its refinement stops along the valley (f 2e-7 above the
    # optimum), where the leader would gain 0.04. Not on a set of optima: the start stays.
    from evobilevel.algorithms.optimistic import choose_along_optima

    p = eb.Problem(upper=lambda X, Y: -(Y[:, 0] + Y[:, 1]),
                   lower=lambda X, Y: (Y[:, 0] - Y[:, 1]) ** 2 + 1e-4 * (Y[:, 0] + Y[:, 1] - X[:, 0]) ** 2,
                   ul_bounds=([0.0], [2.0]), ll_bounds=([-3.0, -3.0], [3.0, 3.0]), vectorized=True, name="flat")
    x = np.array([1.0])
    start = _start(p, x, np.array([0.5, 0.5]))[0]
    assert choose_along_optima(_context(p), x, start, LocalRefinement(), np.ones(2, bool)) is start


def test_confirmed_choice_refuses_a_gain_bought_with_the_followers_tolerance():
    # A unique lower-level optimum y1 = y2 = x / 2, nearly flat along y1 + y2, which the leader wants large:
    # within 1e-6 of the optimal f, F drops by about 0.1, which the follower's refinement takes back.
    from evobilevel.algorithms.optimistic import choose_confirmed, choose_for_leader

    p = eb.Problem(upper=lambda X, Y: -(Y[:, 0] + Y[:, 1]),
                   lower=lambda X, Y: (Y[:, 0] - Y[:, 1]) ** 2 + 1e-4 * (Y[:, 0] + Y[:, 1] - X[:, 0]) ** 2,
                   ul_bounds=([0.0], [2.0]), ll_bounds=([-3.0, -3.0], [3.0, 3.0]), vectorized=True, name="flat")
    x = np.array([1.0])
    start, f0 = _start(p, x, np.array([0.5, 0.5]))
    loose = choose_for_leader(_context(p), x, start, f0 + 1e-6 * (1 + abs(f0)))
    assert start.F - loose.F > 0.05
    assert choose_confirmed(_context(p), x, start, 1e-6, LocalRefinement()) is start


def _smd12_circle_answer(p, degrees, radius=1.0):
    """SMD12 (5, 5) at x*: the follower's answer at ``degrees`` on the circle of its optima (radius 1)."""
    x = p.optimum.x
    z = np.array([np.cos(np.radians(degrees)), np.sin(np.radians(degrees))]) * radius * (1 + 1e-12)
    return np.concatenate([p.optimum.y[:3], np.arctan(x[3:] - z)])


def test_distinct_answers_are_equally_good_and_far_apart():
    from evobilevel.algorithms.bleaq.recheck import distinct_answers as _distinct_answers
    from evobilevel.space import widths as _ranges

    p = eb.benchmarks.get("SMD12", ul_dim=5, ll_dim=5, variant="bleaq2")
    x = p.optimum.x
    (y7, f7), (y60, f60), (y9, f9) = [(y, _start(p, x, y)[1]) for y in
                                      (_smd12_circle_answer(p, d) for d in (7, 60, 9))]
    assert _distinct_answers(y7, f7, y60, f60, _ranges(p.ll_bounds), 1e-3, 0.1)
    assert not _distinct_answers(y7, f7, y9, f9, _ranges(p.ll_bounds), 1e-3, 0.1)  # the same answer, nearly
    y_off = _smd12_circle_answer(p, 60, radius=1.01)  # off the circle: not optimal
    f_off = _start(p, x, y_off)[1]
    assert f_off > f60 + 0.01 and not _distinct_answers(y7, f7, y_off, f_off, _ranges(p.ll_bounds), 1e-3, 0.1)


def test_recheck_that_finds_another_optimal_answer_frees_the_follower():
    # A converged population at SMD12's x* shares one answer on the circle, so psi looks consistent there; the
    # global re-solve of the best member's lower level lands elsewhere on the circle, equally good.
    p = eb.benchmarks.get("SMD12", ul_dim=5, ll_dim=5, variant="bleaq2")
    algo, ctx = BLEAQ(), _context(p)
    algo.setup(ctx)
    x, y = p.optimum.x, _smd12_circle_answer(p, 60)  # far from where the re-solve lands (about 3 degrees)
    f = _start(p, x, y)[1]
    pop = algo.state.population
    pop.X[0], pop.Y[0], pop.F[0], pop.f[0] = x, y, -1e9, f  # the best member, whatever the others
    pop.ul_cv[0] = pop.ll_cv[0] = 0.0
    algo._recheck.run(ctx, algo.state)
    assert x.tobytes() in algo.state.leader.seen_free
    assert algo._leader.free_components(ctx, algo.state, 0).all()  # which variables, the re-solve does not say


def test_children_start_from_the_leader_s_chosen_answer_while_the_best_member_holds_it():
    # SMD12 (5, 5) at x*, the best member's answer at 10 degrees on the circle of the follower's optima: the
    # confirmed choice moves it along the circle (x_l2, the last two variables); while that member is the best,
    # every child starts its lower level there from its answer, and x_l1, which the choice did not move, stays
    # recombined. Once another member is the best, the children's starts are recombined again.
    p = eb.benchmarks.get("SMD12", ul_dim=5, ll_dim=5, variant="bleaq2")
    algo, ctx = BLEAQ(), _context(p)
    algo.setup(ctx)
    x, y = p.optimum.x, _smd12_circle_answer(p, 10)
    start = _start(p, x, y)[0]
    pop = algo.state.population
    pop.X[0], pop.Y[0], pop.F[0], pop.f[0], pop.G[0] = x, y, start.F, start.f, start.G
    pop.ul_cv[0] = pop.ll_cv[0] = 0.0
    assert not algo.state.leader.holds_choice(x)
    algo._leader.choose(ctx, algo.state, 0, confirm=True)
    assert pop.F[0] == pytest.approx(p.optimum.F_low, abs=1e-4)
    assert algo.state.leader.holds_choice(x)
    assert algo.state.leader.chosen_components.tolist() == [False] * 3 + [True] * 2
    pop.F[0] = -1e9  # the best member, whatever the others
    offspring, _ = algo._offspring(ctx)
    evolved = offspring.Y_start[offspring.parents >= 0]  # the model candidates start from the best member's answer
    assert len(evolved) and np.all(evolved[:, 3:] == pop.Y[0, 3:])
    assert not np.any(np.all(evolved[:, :3] == pop.Y[0, :3], axis=1))
    pop.F[1], pop.ul_cv[1], pop.ll_cv[1] = -2e9, 0.0, 0.0
    offspring, _ = algo._offspring(ctx)
    evolved = offspring.Y_start[offspring.parents >= 0]
    assert not np.any(np.all(evolved[:, 3:] == pop.Y[0, 3:], axis=1))


def test_searches_for_a_follower_without_feasible_answers_are_capped_once_they_keep_failing():
    # TP6: the follower's problem is infeasible for x above 1.889, right next to the leader's optimum, so many
    # candidates' refinements end infeasible; the global searches that follow never find a feasible answer. (Its
    # constraints are linear, which certifies those rows infeasible without a search: not here, where the rule for
    # followers that cannot be certified is tested.)
    p = eb.benchmarks.get("TP6")
    capped = eb.solve(p, algorithm=BLEAQ(certify_infeasible=False), seed=0, target=1e-2)
    full = eb.solve(p, algorithm=BLEAQ(infeasible_evals=10**9, certify_infeasible=False), seed=0, target=1e-2)
    assert capped.success and full.success
    # The same rows are searched either way (the searches find nothing, capped or not); each capped search, cut to
    # 80 evaluations (40 per variable of the two-variable follower), would have cost more than twice that in full.
    n_capped = capped.history[-1]["capped_global"]
    assert n_capped > 10 and full.n_ll_evals - capped.n_ll_evals > 80 * n_capped


def test_a_capped_search_gets_forty_evaluations_per_follower_variable():
    assert [capped_evals(d) for d in (1, 2, 3, 5, 10)] == [40, 80, 120, 200, 400]
    response = ResponseModel((np.zeros(2), np.ones(2)), (np.zeros(3), np.ones(3)), 1e-6, 1e-3, 1e-3)
    assert LowerSettlement(response, None, None).infeasible_evals == 120
    assert LowerSettlement(response, None, None, infeasible_evals=200).infeasible_evals == 200
    # TP6 and TP4 (two- and three-variable followers, infeasible beyond the leader's optimum): the capped searches
    # find nothing at either size, and the smaller probes cut the runs' LL evaluations (measured on seed 0: 10,954
    # -> 8,434 and 18,105 -> 15,625 with 200 each before, the same UL counts), without the certificates that their
    # linear constraints allow.
    for name in ("TP6", "TP4"):
        p = eb.benchmarks.get(name)
        scaled, fixed = (eb.solve(p, algorithm=BLEAQ(infeasible_evals=cap, certify_infeasible=False), seed=0,
                                  target=1e-2) for cap in (None, 200))
        assert scaled.success and fixed.success
        assert scaled.history[-1]["capped_global"] > 10
        assert scaled.n_ll_evals < 0.9 * fixed.n_ll_evals


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "200"])
def test_infeasible_evals_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="infeasible_evals must be a positive integer"):
        BLEAQ(infeasible_evals=bad)
    assert BLEAQ(infeasible_evals=None).infeasible_evals is None  # the default: per variable of the follower


def test_epsilon_level_falls_to_zero_and_can_be_switched_off():
    p = eb.benchmarks.get("SMD10", ul_dim=2, ll_dim=3)
    levels = []
    eb.solve(p, algorithm=BLEAQ(eps_generations=10, eps_exponent=2.0, restarts=0), seed=0, max_ul_evals=300,
             callback=lambda record: levels.append(record["eps_level"]))
    assert levels[0] > 0
    assert all(a >= b for a, b in zip(levels, levels[1:11]))
    assert levels[10:] and set(levels[10:]) == {0.0}
    off = []
    eb.solve(p, algorithm=BLEAQ(eps_generations=0), seed=0, max_ul_evals=100,
             callback=lambda record: off.append(record["eps_level"]))
    assert off and set(off) == {0.0}


def relaxed_case(F_other: float) -> BLEAQ:
    """A BLEAQ at the start of a 50-generation epsilon phase (level 1): member 0 feasible with F = 1, member 1
    violating the leader's constraints by 0.2 (forgiven at the level) with F = F_other."""
    algorithm = BLEAQ(eps_generations=50)
    algorithm._build(eb.benchmarks.get("SMD10", ul_dim=2, ll_dim=3))
    algorithm.state = BLEAQState(eps0=1.0)
    algorithm.state.population = Population(
        X=np.zeros((2, 2)), Y=np.zeros((2, 3)), F=np.array([1.0, F_other]), G=np.zeros((2, 1)),
        ul_cv=np.array([0.0, 0.2]), f=np.zeros(2), ll_cv=np.zeros(2))
    return algorithm


def test_during_the_epsilon_phase_a_feasible_best_is_certified_only_where_it_also_leads_under_the_level():
    promises_nothing = ModelProposal(None, error=0.0, span=0.1, misfit=0.0, promised=0.0)
    beaten = relaxed_case(F_other=0.5)  # member 1 leads while its violation is forgiven
    best = beaten.state.population.best()  # feasibility first: member 0
    assert beaten._eps() == pytest.approx(1.0) and best.F == 1.0
    assert not beaten._certified(best, best.F, promises_nothing, np.inf)
    leading = relaxed_case(F_other=2.0)
    assert leading._certified(leading.state.population.best(), 1.0, promises_nothing, np.inf)
    # Once the level is zero, member 1 is infeasible and member 0 leads under either order.
    beaten.state.generation = 50
    assert beaten._eps() == 0 and beaten._certified(best, best.F, promises_nothing, np.inf)
    # The model's other conditions still hold during the phase: a promised gain is no certificate.
    promises = ModelProposal(None, error=0.0, span=0.1, misfit=0.0, promised=0.5)
    assert not leading._certified(leading.state.population.best(), 1.0, promises, np.inf)


def test_an_attempt_whose_relaxed_model_promises_nothing_ends_before_the_epsilon_level_reaches_zero():
    # SMD11's leader is found within a few generations, and the model around it, its constraints relaxed to the
    # level's share, promises nothing: the attempt ends there instead of holding the answer through the phase
    # (120 generations at (5, 5); seeds 0 and 1 ended at 1,283 and 1,481 UL evaluations when it had to wait).
    p = eb.benchmarks.get("SMD11", ul_dim=5, ll_dim=5)
    for seed in (0, 1):
        r = eb.solve(p, algorithm=BLEAQ(restarts=0), seed=seed, max_ul_evals=5000)
        assert r.history[-1]["eps_level"] > 0
        assert "local optimum of the leader's quadratic model" in r.message
        assert r.ul_error < 1e-4 and r.ll_error < 1e-4
        assert r.n_ul_evals < 1000  # measured 217 and 727


def test_default_epsilon_phase_lasts_a_number_of_model_renewals():
    # The model of F and G in d upper-level variables is fitted on (d + 1)(d + 2) / 2 + d points; the first
    # population of max(24, 5 d + 5) adds a quarter of itself and one model candidate a generation.
    lengths = {}
    for ul_dim, pop, n_fit in [(2, 24, 8), (5, 30, 26), (10, 55, 76)]:
        algorithm = BLEAQ()
        algorithm._build(eb.benchmarks.get("SMD10", ul_dim=ul_dim, ll_dim=ul_dim + 1))
        lengths[ul_dim] = algorithm._epsilon.generations
        assert lengths[ul_dim] == round(EPS_RENEWALS * n_fit / (pop // 4 + 1))
    assert lengths == {2: 42, 5: 120, 10: 201}
    # Fewer offspring a generation renew the model more slowly; a length given is kept.
    fewer = BLEAQ(n_offspring=3)
    fewer._build(eb.benchmarks.get("SMD10", ul_dim=5, ll_dim=5))
    assert fewer._epsilon.generations == round(EPS_RENEWALS * 26 / 4)
    given = BLEAQ(eps_generations=77)
    given._build(eb.benchmarks.get("SMD10", ul_dim=10, ll_dim=10))
    assert given._epsilon.generations == 77


def _infeasible_population_and_grid():
    """Members whose upper-level constraint ``x1 + x2 - 1 <= 0`` is violated (followers feasible), and the pairs
    evaluated on a grid, for ``F = |x - (2, 2)|^2``: the models fit exactly."""
    from evobilevel.algorithms.archive import RingBuffer
    from evobilevel.algorithms.population import Population

    def values(X):
        return ((X - 2.0) ** 2).sum(axis=1), X.sum(axis=1, keepdims=True) - 1.0

    grid = np.array([[a, b] for a in range(-1, 4) for b in range(-1, 4)], dtype=float)
    evaluated = RingBuffer(100, X=2, F=None, G=1)
    F, G = values(grid)
    evaluated.add(X=grid, F=F, G=G)
    X = np.array([[1.0, 1.0], [2.0, 1.0], [2.0, 2.0], [3.0, 1.0]])
    F, G = values(X)
    n = len(X)
    population = Population(X=X, Y=np.zeros((n, 1)), F=F, G=G, ul_cv=np.maximum(G[:, 0], 0.0), f=np.zeros(n),
                            ll_cv=np.zeros(n))
    return population, evaluated


@pytest.mark.parametrize("eps, expected", [(0.0, 0.5), (0.5, 0.75)])
def test_model_candidate_meets_the_models_constraints_at_the_epsilon_level(eps, expected):
    # No member is feasible: the candidate is the lowest F the models allow at the level, ``x1 + x2 <= 1 + eps``
    # (one constraint takes the whole level): (0.5, 0.5) at level 0, a repair move; (0.75, 0.75) at 0.5.
    from evobilevel.algorithms.bleaq.upper import UpperSearch

    population, evaluated = _infeasible_population_and_grid()
    search = UpperSearch((np.full(2, -5.0), np.full(2, 5.0)), (np.zeros(1), np.ones(1)))
    proposal = search.model_candidate(population, evaluated, best=0, eps=eps)
    np.testing.assert_allclose(proposal.x, [expected, expected], atol=1e-6)


def test_the_model_s_gain_is_found_when_first_asked_for_around_the_proposal_s_own_best_member():
    # The gain costs an SLSQP run: it waits until a convergence test asks for it, after the generation's selection
    # has overwritten members in place, so the proposal keeps its own copy of the best member.
    from evobilevel.algorithms.bleaq.upper import UpperSearch

    population, evaluated = _infeasible_population_and_grid()
    search = UpperSearch((np.full(2, -5.0), np.full(2, 5.0)), (np.zeros(1), np.ones(1)))
    near = search._near_model(population, evaluated, 1)
    population.X[1] = [-4.0, -4.0]  # the member replaced in place
    np.testing.assert_array_equal(near.x_best, [2.0, 1.0])
    # With a level of 10 the constraint leaves the models' minimum (2, 2), F = 0, in reach: the member at (2, 1),
    # F = 1, gains 1.
    proposal = search._propose(near, eps=10.0)
    assert callable(proposal.promised)
    assert proposal.gain == pytest.approx(1.0, abs=1e-6) and not callable(proposal.promised)
    assert proposal.gain == search._propose(near, eps=10.0).gain  # found once, as an eager search finds it


@pytest.mark.slow
def test_bleaq_finds_the_right_part_of_smd10s_feasible_region_at_10x10():
    # Without the model candidate at the epsilon level every attempt ended at F = 41.06 (two variables near -1.5).
    # With it, 19 of 20 first attempts (seeds 0-19) end at x* = 1/3; on this seed the first attempt does not, and
    # the run goes on until an attempt finds the right part.
    p = eb.benchmarks.get("SMD10", ul_dim=10, ll_dim=10)
    r = eb.solve(p, seed=1, target=1e-2, max_ll_evals=3_000_000)
    assert r.success and r.ul_error < 1e-2 and r.feasible
    np.testing.assert_allclose(r.x, 1 / 3, atol=1e-2)


@pytest.mark.slow
@pytest.mark.ci
@pytest.mark.parametrize("name", ["SMD10", "SMD11", "SMD12"])
def test_bleaq_converges_on_constrained_smd_5x5(name):
    p = eb.benchmarks.get(name, ul_dim=5, ll_dim=5, **({"variant": "bleaq2"} if name == "SMD12" else {}))
    r = eb.solve(p, algorithm="bleaq", seed=5, target=1e-2, max_ll_evals=1_000_000)
    assert r.success, r.message
    assert r.feasible and r.ll_gap < 1e-2


def test_rechecks_thin_out_while_none_has_corrected_and_stay_every_recheck_every_generations_after_one(monkeypatch):
    from evobilevel.algorithms.bleaq.recheck import Recheck

    p = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)
    algo, ctx = BLEAQ(recheck_every=15), _context(p)
    algo.setup(ctx)
    state = algo.state
    outcomes = []  # what the next re-checks find: True for a correction
    monkeypatch.setattr(Recheck, "_check_best", lambda self, ctx, state: outcomes.pop(0))

    def check(*found):
        outcomes[:] = list(found)
        state.counts["recheck_corrections"] += sum(found)
        algo._recheck.run(ctx, state)
        assert not outcomes
        return state.recheck.interval

    assert state.recheck.interval == 15
    assert [check(False) for _ in range(3)] == [30, 60, 120]  # confirmations only: the checks thin out
    assert check(True, False) == 14  # a correction: halved from at most 15 (7), then a confirmation doubles it
    assert [check(False) for _ in range(2)] == [15, 15]  # the follower can trap local searches: every 15 at most
    assert check(True, True, False) == 6  # 15 -> 7 -> 3, confirmed: 6


def test_a_model_minimiser_left_outside_the_model_constraints_is_put_back_just_inside():
    # TP1's leader constraints G = [30 - x1 - 2 x2, x1 + x2 - 25] meet at its optimum x = (20, 5); SLSQP on the
    # models leaves its minimiser up to 1e-9 outside, where the true constraints reject it.
    from evobilevel.algorithms.bleaq.upper import _onto_constraints

    rng = np.random.default_rng(0)
    X = np.array([20.0, 5.0]) + rng.uniform(-1e-3, 1e-3, size=(12, 2))

    def G(X):
        return np.stack([30 - X[:, 0] - 2 * X[:, 1], X[:, 0] + X[:, 1] - 25], axis=1)

    F = (X[:, 0] - 30) ** 2 + (X[:, 1] - 20) ** 2
    model = fit_quadratic(X, np.hstack([F[:, None], G(X)]))
    outside = np.array([20.0 + 1e-10, 5.0 - 2e-10])  # G = [3e-10, -1e-10]: the first violated
    assert G(outside[None])[0, 0] > 0
    x = _onto_constraints(model, outside, 0.0, X.min(axis=0) - 1, X.max(axis=0) + 1)
    assert np.all(G(x[None]) <= 0) and np.max(np.abs(x - outside)) < 1e-9
    inside = np.array([19.5, 5.3])  # G = [-0.1, -0.2]: nothing exceeded, unchanged
    np.testing.assert_array_equal(_onto_constraints(model, inside, 0.0, X.min(axis=0) - 1,
                                                    X.max(axis=0) + 1), inside)


def test_tp1_s_vertex_optimum_is_reached_by_the_model_candidate():
    # Before model minimisers were put back inside the constraints, this run's candidates at the vertex were all
    # rejected (violations of 1e-11 to 4e-10), and its attempts converged up to 6e-4 from it: 20,000 UL evaluations
    # without reaching the target.
    r = eb.solve(eb.benchmarks.get("TP1"), algorithm="bleaq", seed=1372126158849198900, target=1e-2)
    assert r.success and r.n_ul_evals < 1000 and r.ul_error < 1e-4


@pytest.mark.parametrize("problem", [eb.benchmarks.get("TP4"), eb.benchmarks.get("MF1")], ids=["TP4", "MF1"])
def test_every_lower_level_evaluation_is_counted_in_one_phase(problem):
    # TP4 has infeasible followers (global searches, capped ones, re-checks); MF1 several followers, each settled
    # on its own. In every record the phases add up to the run's count; the first record, made after the initial
    # population, holds nothing else; a re-check's evaluations are the re-check's, not its global search's.
    from evobilevel.algorithms.bleaq.ledger import LL_PHASES

    r = eb.solve(problem, algorithm=BLEAQ(), seed=0, max_ul_evals=600)
    keys = [f"ll_evals_{phase}" for phase in LL_PHASES]
    for record in r.history:
        assert sum(record[k] for k in keys) == record["n_ll_evals"]
    first = r.history[0]
    assert first["ll_evals_initial"] == first["n_ll_evals"] > 0
    last = r.history[-1]
    assert last["ll_evals_predicted"] + last["ll_evals_refined"] > 0 and last["ll_evals_recheck"] > 0
    for before, after in zip(r.history, r.history[1:]):
        if after["rechecks"] == before["rechecks"]:
            assert after["ll_evals_recheck"] == before["ll_evals_recheck"]
