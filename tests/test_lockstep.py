"""LockstepRefinement against LocalRefinement on the lower levels of the SMD and TP suites (success, optimum, agreement
of f, evaluations), and the lock step itself: one evaluator call per round for the whole batch, rows that do not
influence each other, exact caps, known start values, and the DE's polish."""

from __future__ import annotations

import numpy as np
import pytest
from lower_cases import (
    SMD,
    TP,
    CallCounter,
    case,
    engine_chunks_together_and_one_by_one,
    perturbed,
    problem_of,
    solve_parts_and_alone,
)

import evobilevel as eb
from evobilevel.budget import RowBudget
from evobilevel.evaluator import Evaluator
from evobilevel.lower import DifferentialEvolution, LocalRefinement
from evobilevel.lower.lockstep import LockstepRefinement
from evobilevel.lower.refinement import StartValues

NEAR = 1e-3  # a warm start near the optimum: a prediction of the response models
ARCHIVED = 1e-2  # an archived neighbour's answer
# On these lower levels a start 1 % of the range away can lie in another basin (SMD3's Rastrigin term, SMD9's rings
# of feasible points): where a local search ends from there is chance, for either solver.
MULTIMODAL = ("SMD3", "SMD9")
ALL_CASES = [(name, size) for size in ((5, 5), (10, 10)) for name in SMD] + [(name, None) for name in TP]


def both(name, size, scale, seed=3, n=6):
    """LocalRefinement and LockstepRefinement on the same rows and warm starts: (problem, f_star, local, lockstep),
    each solution with its evaluator's call count as ``calls``."""
    problem, X, Y_star, f_star = case(name, size, n=n, seed=seed)
    Y0 = Y_star if scale == 0 else perturbed(problem, Y_star, scale, seed=seed + 1)
    out = []
    for solver in (LocalRefinement(), LockstepRefinement()):
        ev = CallCounter(problem)
        solution = solver.solve(ev, X, np.random.default_rng(0), Y0=Y0)
        assert solution.n_evals.sum() == ev.n_ll_evals
        solution.calls = ev.ll_calls
        out.append(solution)
    return problem, f_star, out[0], out[1]


def check_against_local(name, size, scale, seed=3):
    """The lock-step solver succeeds where LocalRefinement does, reaches the optimum as often, is as close to it
    where both reach it, and spends at most 1.2 times LocalRefinement's evaluations per row (median), in fewer
    evaluator calls."""
    problem, f_star, local, lock = both(name, size, scale, seed)
    assert lock.success.sum() >= local.success.sum()
    assert np.all(lock.cv[lock.success] == 0)
    optimal_local = np.abs(local.f - f_star) <= 1e-6 * (1 + np.abs(f_star))
    optimal_lock = np.abs(lock.f - f_star) <= 1e-6 * (1 + np.abs(f_star))
    if not (scale == ARCHIVED and name in MULTIMODAL):
        assert optimal_lock.sum() >= optimal_local.sum()
    # Where both reach the optimum, the lock-step solver's f is at most 1e-8 (relative) above LocalRefinement's: the
    # same, or closer to f* where LocalRefinement stops short of it (SMD3's steep tan terms leave it 1e-5 above).
    # TP10's lower level is so flat at its optimum that both stop at the gradient tolerance up to 1e-7 above it.
    agree = local.success & lock.success & optimal_local & optimal_lock
    tol = 1e-7 if name == "TP10" else 1e-8
    assert np.all((lock.f - local.f)[agree] <= tol * (1 + np.abs(local.f[agree])))
    if not (scale == ARCHIVED and name in MULTIMODAL):
        # Where the rows end in other basins, each solver's rows run as long as their own basin takes.
        assert np.median(lock.n_evals) <= 1.2 * np.median(local.n_evals)
        assert lock.calls < local.calls


@pytest.mark.parametrize("scale", [NEAR, ARCHIVED])
@pytest.mark.parametrize("name,size", ALL_CASES)
def test_reaches_the_optimum_as_local_refinement_does(name, size, scale):
    check_against_local(name, size, scale)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 19])
@pytest.mark.parametrize("scale", [NEAR, ARCHIVED])
@pytest.mark.parametrize("name,size", ALL_CASES)
def test_reaches_the_optimum_as_local_refinement_does_at_other_points(name, size, scale, seed):
    check_against_local(name, size, scale, seed)


@pytest.mark.parametrize("name,size", [(name, (5, 5)) for name in SMD] + [(name, None) for name in TP])
def test_a_start_at_the_optimum_is_verified_with_one_gradient_as_today(name, size):
    problem, _, local, lock = both(name, size, 0.0)
    assert np.all(lock.success) and np.all(local.success)
    np.testing.assert_array_equal(lock.n_evals, local.n_evals)
    d = problem.ll_dim
    assert set(lock.n_evals.tolist()) <= {d + 1, 2 * d + 1}  # forward differences, then central ones if needed
    assert lock.calls == (1 if np.all(lock.n_evals == d + 1) else 2)


@pytest.mark.parametrize("solver", [LockstepRefinement(), LocalRefinement()])
def test_a_start_beaten_by_a_forward_neighbour_searches_without_central_differences(solver):
    # SMD1's follower is convex: a start below the optimum in one variable has a better point one forward step away.
    # It is no local optimum, whatever central differences would make of its slopes, so the d backward points of
    # central differences are not evaluated: the lock step's next call is its first line-search trial;
    # LocalRefinement tests the better neighbour, itself beaten by one of its own, then scipy takes its first step
    # (a gradient each). With central differences the calls were d + 1, d, 1 and d + 1, d + 1, d.
    problem, X, Y_star, f_star = case("SMD1", (5, 5), n=1, seed=5)
    lo, hi = problem.ll_bounds
    Y0 = Y_star.copy()
    Y0[0, 0] -= 0.01 * (hi[0] - lo[0])
    ev = CallCounter(problem)
    solution = solver.solve(ev, X, np.random.default_rng(0), Y0=Y0)
    d = problem.ll_dim
    expected = [d + 1, 1] if isinstance(solver, LockstepRefinement) else [d + 1, d + 1, d + 1]
    assert ev.sizes[:len(expected)] == expected
    assert solution.success[0]
    assert abs(solution.f[0] - f_star[0]) <= 1e-6 * (1 + abs(f_star[0]))


def solve_rows(problem, X, Y0, caps=None):
    """LockstepRefinement on the rows X from Y0: (solution, evaluator)."""
    ev = CallCounter(problem)
    solution = LockstepRefinement().solve(ev, X, np.random.default_rng(0), Y0=Y0, max_evals=caps)
    assert solution.n_evals.sum() == ev.n_ll_evals
    return solution, ev


@pytest.mark.parametrize("name", ["SMD1", "SMD8", "SMD10", "SMD12"])
def test_the_batch_makes_one_evaluator_call_per_round(name):
    # Each row alone makes one call per round; together the rows share their rounds, so the batch makes as many
    # calls as its slowest row alone.
    problem, X, Y_star, _ = case(name, (5, 5), n=6, seed=5)
    Y0 = perturbed(problem, Y_star, NEAR, seed=6)
    _, ev = solve_rows(problem, X, Y0)
    alone = [solve_rows(problem, X[i:i + 1], Y0[i:i + 1])[1].ll_calls for i in range(X.shape[0])]
    assert ev.ll_calls == max(alone)


def nan_region_problem():
    """SMD1's lower level, failing (NaN) where the first lower-level variable exceeds 0.05."""
    base = problem_of("SMD1", (5, 5))

    def f(X, Y):
        return np.where(Y[:, 0] > 0.05, np.nan, base.lower(X, Y)[0])

    return eb.Problem(lambda X, Y: np.zeros(len(X)), f, base.ul_bounds, base.ll_bounds, vectorized=True,
                      name="SMD1 with a failing region")


@pytest.mark.parametrize("name", ["SMD8", "SMD12", "TP3", "failing"])
def test_a_row_follows_the_same_path_alone_as_in_its_batch(name):
    if name == "failing":
        problem = nan_region_problem()
        _, X, Y_star, _ = case("SMD1", (5, 5), n=7, seed=7)
        Y_star[:, 0] = 0.05  # the optimum lies at the failing region's edge: neighbours fail
    else:
        problem, X, Y_star, _ = case(name, (5, 5) if name.startswith("SMD") else None, n=7, seed=7)
    Y0 = perturbed(problem, Y_star, ARCHIVED, seed=8)
    caps = np.array([np.inf, 40, 7, 300, 1, np.inf, 25])[: X.shape[0]]
    batch, ev = solve_rows(problem, X, Y0, caps)
    reverse, _ = solve_rows(problem, X[::-1], Y0[::-1], caps[::-1])
    assert (ev.ll.n_failed > 0) == (name == "failing")
    for i in range(X.shape[0]):
        alone, _ = solve_rows(problem, X[i:i + 1], Y0[i:i + 1], caps[i:i + 1])
        for field in ("Y", "f", "cv", "success", "n_evals"):
            np.testing.assert_array_equal(getattr(alone, field)[0], getattr(batch, field)[i])
            np.testing.assert_array_equal(getattr(reverse, field)[-1 - i], getattr(batch, field)[i])
    assert np.all(batch.n_evals <= caps)


def parts_of(problem, X, Y_star, seed):
    """Three parts (X, rng, Y0, caps) of 3, 1 and 3 rows: two warm starts per row (one row with none, so its start
    is drawn from its part's generator), the single row's part with none at all, and caps on some rows."""
    Y0 = np.stack([perturbed(problem, Y_star, ARCHIVED, seed=seed), perturbed(problem, Y_star, NEAR, seed=seed + 1)],
                  axis=1)
    Y0[1] = np.nan
    caps = np.array([np.inf, np.inf, 30, np.inf, 9, np.inf, 200])
    return [(X[a:b], np.random.default_rng(seed + a), None if b - a == 1 else Y0[a:b], caps[a:b])
            for a, b in ((0, 3), (3, 4), (4, 7))]


@pytest.mark.parametrize("name", ["SMD8", "SMD12", "TP3", "TP5"])
def test_parts_solved_together_give_what_each_part_s_own_solve_gives(name):
    problem, X, Y_star, _ = case(name, (5, 5) if name.startswith("SMD") else None, n=7, seed=13)
    _, together_calls, alone_calls = solve_parts_and_alone(
        LockstepRefinement(), problem, lambda: parts_of(problem, X, Y_star, 14), ("Y", "f", "cv", "success", "n_evals"))
    # One call for the starts of all parts, then the rounds of the longest search.
    assert together_calls <= max(alone_calls) + 1 < sum(alone_calls)


def test_the_engine_refines_its_chunks_together_with_the_results_of_one_by_one():
    problem, X, Y_star, _ = case("SMD10", (5, 5), n=9, seed=15)
    Y0 = perturbed(problem, Y_star, ARCHIVED, seed=16)[:, None, :]
    together, one_by_one = engine_chunks_together_and_one_by_one(
        LockstepRefinement(), problem, X, Y0, 17, ("Y", "f", "cv", "success", "n_evals"))
    assert together < one_by_one  # the chunks' rounds are shared


def test_row_caps_are_exact():
    problem, X, Y_star, _ = case("SMD1", (5, 5), n=8, seed=9)
    Y0 = perturbed(problem, Y_star, ARCHIVED, seed=10)
    caps = np.array([0, 1, 5, 6, 7, 20, 60, np.inf])
    ev = Evaluator(problem)
    lock = LockstepRefinement().solve(ev, X, np.random.default_rng(0), Y0=Y0, max_evals=caps)
    local = LocalRefinement().solve(Evaluator(problem), X, np.random.default_rng(0), Y0=Y0, max_evals=caps)
    assert lock.n_evals.sum() == ev.n_ll_evals
    assert np.all(lock.n_evals <= caps)
    # Below a gradient's price (ll_dim + 1) a row evaluates its start alone, as LocalRefinement's does.
    np.testing.assert_array_equal(lock.n_evals[:3], [0, 1, 1])
    np.testing.assert_array_equal(lock.n_evals[:3], local.n_evals[:3])
    assert np.isinf(lock.f[0]) and np.all(np.isfinite(lock.f[1:]))
    assert lock.n_evals[6] == 60 or lock.success[6]  # a row stops at its cap or by its own rule
    assert lock.success[7]


def test_known_start_values_are_not_evaluated_again():
    problem, X, Y_star, f_star = case("SMD8", (5, 5), n=3, seed=11)
    budget = RowBudget(Evaluator(problem), X, np.full(3, np.inf))
    values = Evaluator(problem).lower(X, Y_star)
    known = StartValues(np.ones(3, bool), values.values, values.constraints, values.cv)
    Y, f, cv, converged, _ = LockstepRefinement().refine(budget, np.arange(3), Y_star, known, verify=False)
    assert np.all(converged) and np.all(cv == 0)
    np.testing.assert_array_equal(budget.used, [problem.ll_dim] * 3)  # the neighbours only
    assert np.all(f <= f_star)


@pytest.mark.parametrize("solver", [LockstepRefinement(), LocalRefinement()])
def test_a_start_repeated_in_its_row_costs_nothing(solver):
    # BLEAQ's prediction is the candidate's own vector where psi determines none of the variables: the same point
    # twice among a row's starts is evaluated once, and the search is the one from the distinct starts.
    problem, X, Y_star, _ = case("SMD10", (5, 5), n=4, seed=17)
    a, b = perturbed(problem, Y_star, ARCHIVED, seed=18), perturbed(problem, Y_star, ARCHIVED, seed=19)
    distinct = solver.solve(Evaluator(problem), X, np.random.default_rng(0), Y0=np.stack([a, b], axis=1))
    repeated = solver.solve(Evaluator(problem), X, np.random.default_rng(0), Y0=np.stack([a, a, b, a], axis=1))
    for field in ("Y", "f", "cv", "success", "n_evals"):
        np.testing.assert_array_equal(getattr(repeated, field), getattr(distinct, field), err_msg=field)


@pytest.mark.parametrize("solver", [LockstepRefinement(), LocalRefinement()])
@pytest.mark.parametrize("k", [1, 3])
def test_values_known_at_the_first_starts_are_not_evaluated_again(solver, k):
    # BLEAQ evaluates a trusted prediction before it refines it (the first start): a refinement given those values
    # follows the same path for one evaluation less per known row.
    problem, X, Y_star, _ = case("SMD12", (5, 5), n=5, seed=21)
    Y0 = np.stack([perturbed(problem, Y_star, ARCHIVED, seed=22 + j) for j in range(k)], axis=1)
    at_first = Evaluator(problem).lower(X, Y0[:, 0])
    known = np.array([True, False, True, True, False])
    first = StartValues(known, at_first.values, at_first.constraints, at_first.cv)
    plain = solver.solve(Evaluator(problem), X, np.random.default_rng(0), Y0=Y0)
    given = solver.solve(Evaluator(problem), X, np.random.default_rng(0), Y0=Y0, first_values=first)
    for field in ("Y", "f", "cv", "success"):
        np.testing.assert_array_equal(getattr(given, field), getattr(plain, field), err_msg=field)
    np.testing.assert_array_equal(given.n_evals, plain.n_evals - known)


def test_known_first_values_must_fit_the_rows():
    problem, X, Y_star, _ = case("SMD1", (5, 5), n=3, seed=23)
    at = Evaluator(problem).lower(X, Y_star)
    values = StartValues(np.ones(3, bool), at.values, at.constraints, at.cv)
    with pytest.raises(ValueError, match="first_values must have 3 rows, got 2"):
        LockstepRefinement().solve(Evaluator(problem), X, np.random.default_rng(0), Y0=Y_star[:, None, :],
                                   first_values=values[:2])
    Y0 = Y_star[:, None, :].copy()
    Y0[1] = np.nan
    with pytest.raises(ValueError, match="known for rows without a first warm start"):
        LockstepRefinement().solve(Evaluator(problem), X, np.random.default_rng(0), Y0=Y0, first_values=values)


def test_the_de_polishes_with_the_lock_step_refinement():
    problem, X, _, f_star = case("SMD1", (5, 5), n=4, seed=12)
    ev = CallCounter(problem)
    solver = DifferentialEvolution(local=LockstepRefinement())
    solution = solver.solve(ev, X, np.random.default_rng(0))
    assert solution.n_evals.sum() == ev.n_ll_evals
    assert np.all(np.abs(solution.f - f_star) <= 1e-6 * (1 + np.abs(f_star)))


@pytest.mark.parametrize("constrained", [False, True])
def test_a_pinned_variable_stays_put(constrained):
    # A variable whose bounds coincide has no slope and no step; the others are refined as usual.
    def f(X, Y):
        return np.sum((Y - X) ** 2, axis=1)

    def g(X, Y):
        return (Y[:, 0] + Y[:, 2] - 1.0)[:, None]

    problem = eb.Problem(lambda X, Y: np.zeros(len(X)), f, (np.zeros(3), np.ones(3)),
                         (np.array([-2.0, 0.5, -2.0]), np.array([2.0, 0.5, 2.0])), vectorized=True, name="pinned",
                         lower_constraints=g if constrained else None, n_ll_constraints=1 if constrained else None)
    X = np.random.default_rng(0).uniform(0.6, 1.0, (4, 3))
    solution = LockstepRefinement().solve(Evaluator(problem), X, np.random.default_rng(1), Y0=np.zeros((4, 3)))
    assert np.all(solution.success) and np.all(solution.Y[:, 1] == 0.5)
    expected = X.copy()
    expected[:, 1] = 0.5
    if constrained:  # the optimum moves onto y0 + y2 = 1 (X's pair sums to more than 1)
        shift = (expected[:, 0] + expected[:, 2] - 1.0) / 2
        expected[:, 0] -= shift
        expected[:, 2] -= shift
    np.testing.assert_allclose(solution.Y, expected, atol=1e-6)


def test_a_pole_at_the_bound_halves_the_sqp_step_instead_of_crawling():
    # f = |x - tan(y)|^2 with the box at tan's poles and a constraint that never binds (so the SQP method runs):
    # from y = 0 the full steps land on the bound next to the pole, where f is about 1e16. Halving such a step
    # reaches atan(x), near the bound, in 68-91 evaluations a row; cutting it to a tenth took 146-203.
    def f(X, Y):
        return np.sum((X - np.tan(Y)) ** 2, axis=1)

    def g(X, Y):
        return (np.sum(Y, axis=1) - 100.0)[:, None]

    half_pi = np.pi / 2 - 1e-8
    problem = eb.Problem(lambda X, Y: np.zeros(len(X)), f, (np.full(3, -20.0), np.full(3, 20.0)),
                         (np.full(3, -half_pi), np.full(3, half_pi)), vectorized=True, name="pole",
                         lower_constraints=g, n_ll_constraints=1)
    X = np.array([[10.0, 8.0, 6.0], [12.0, -9.0, 5.0], [15.0, 11.0, -7.0], [6.0, 6.0, 6.0]])
    solution = LockstepRefinement().solve(Evaluator(problem), X, np.random.default_rng(0), Y0=np.zeros((4, 3)))
    assert np.all(solution.success)
    np.testing.assert_allclose(solution.Y, np.arctan(X), atol=1e-6)
    assert np.all(solution.n_evals <= 100)


def test_a_steep_variable_near_its_optimum_shows_its_curvature_in_a_short_move():
    # SMD1 (3, 3)'s follower, f = |y1|^2 + (x3 - tan(y2))^2 + const (83), from a DE's best point: y2 already within
    # 1.5e-6 of atan(x3), where f curves 5,700 times as much as along y1. Each step moves y2 by about 3e-6, under the
    # 1,000 difference steps (3e-6) that used to be needed for a secant, so the model kept y2's curvature at 1: every
    # full step overshot y2 by thousands of times its distance and the line search cut it to 1e-4, and the row ran
    # to its 100 iterations (803 evaluations) unconverged. y2's slope changes by 1,000 times its rounding error over
    # such a move, which tells its curvature: 19 evaluations now.
    problem = eb.benchmarks.get("SMD1", ul_dim=3, ll_dim=3)
    X = np.array([[6.562502454298725, 6.319868209186179, 7.228018924740427]])
    start = np.array([[-0.0011247504958635038, -0.003684884308146011, 1.4333196476684784]])
    values = Evaluator(problem).lower(X, start)
    known = StartValues(np.ones(1, bool), values.values, values.constraints, values.cv)
    budget = RowBudget(Evaluator(problem), X, np.full(1, np.inf))
    Y, f, cv, converged, _ = LockstepRefinement().refine(budget, np.arange(1), start, known, verify=False)
    assert converged[0] and budget.used[0] <= 40
    np.testing.assert_allclose(Y[0], [0.0, 0.0, np.arctan(X[0, 2])], atol=1e-6)
