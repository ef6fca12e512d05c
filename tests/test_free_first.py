"""Refinements that know part of the answer: where a response model determines some of the follower's variables, the
lock-step box method searches the others alone first, then all of them. What it saves, that the answers are the
same, that a determined value a little off is corrected, that constrained followers are left alone, its way through
the engine, and what it saves in a BLEAQ run."""

from __future__ import annotations

import numpy as np
import pytest
from lower_cases import bleaq_ll_evals, case, perturbed

import evobilevel as eb
from evobilevel.evaluator import Evaluator
from evobilevel.lower import DifferentialEvolution
from evobilevel.lower.lockstep import LockstepRefinement
from evobilevel.parallel.engine import LowerEngine


def starts_and_mask(name, size, scale, n=12, seed=4, off=0.0):
    """SMD rows whose starts hold the optimum in the first block of the follower's variables (``x_l1``, whose optimum
    does not depend on x; moved by ``off`` of the range) and are ``scale`` of the range away in the other block."""
    problem, X, Y_star, f_star = case(name, size, n=n, seed=seed)
    q = problem.split.q
    Y0 = perturbed(problem, Y_star, scale, seed=seed + 1)
    lo, hi = problem.ll_bounds
    Y0[:, :q] = np.clip(Y_star[:, :q] + off * (hi - lo)[:q], lo[:q], hi[:q])
    determined = np.zeros(Y0.shape, bool)
    determined[:, :q] = True
    return problem, X, Y_star, f_star, Y0, determined


def solve(problem, X, Y0, **kw):
    return LockstepRefinement().solve(Evaluator(problem), X, np.random.default_rng(0), Y0=Y0, **kw)


@pytest.mark.parametrize("name, size", [("SMD8", (5, 5)), ("SMD8", (10, 10)), ("SMD7", (5, 5)), ("SMD1", (10, 10))])
def test_searching_the_undetermined_variables_first_saves_evaluations_and_ends_where_all_at_once_ends(name, size):
    """Where both end: SMD8's ``(x_u2 - x_l2^3)^2`` is flat in x_l2 at 0, a stationary point that a start on the
    wrong side of it reaches (two rows of twelve at (5, 5), with and without the first stage); the others at the
    optimum."""
    problem, X, _, f_star, Y0, determined = starts_and_mask(name, size, 0.05)
    together = solve(problem, X, Y0)
    first = solve(problem, X, Y0, determined=determined)
    assert together.success.all() and first.success.all()
    np.testing.assert_allclose(first.f, together.f, atol=1e-7 * (1 + np.abs(f_star)).max())
    assert np.sum(np.abs(first.f - f_star) <= 1e-7 * (1 + np.abs(f_star))) >= 10
    # Each gradient of the first stage pays for the r undetermined variables instead of all q + r (measured:
    # 0.53-0.61 of the evaluations).
    assert first.n_evals.sum() < 0.7 * together.n_evals.sum()


@pytest.mark.parametrize("name, size", [("SMD8", (5, 5)), ("SMD7", (10, 10)), ("SMD1", (5, 5))])
def test_a_start_at_the_optimum_costs_one_gradient_with_the_first_stage_too(name, size):
    """The first stage measures the undetermined variables' slopes at the start and finds it optimal; the search
    over all variables then measures only the determined ones' there (the others' points are the same): d + 1
    evaluations per row, as without the first stage (1 + r + d before the slopes were reused)."""
    problem, X, Y_star, _, Y0, determined = starts_and_mask(name, size, 0.0, n=6)
    together = solve(problem, X, Y0)
    first = solve(problem, X, Y0, determined=determined)
    d = problem.ll_dim
    assert first.success.all()
    np.testing.assert_array_equal(first.Y, together.Y)
    # Rows whose forward slopes show the optimum (SMD1's steep tan terms hide it at two of its six starts, which
    # take central differences either way).
    shown = together.n_evals == d + 1
    assert shown.sum() >= 4
    np.testing.assert_array_equal(first.n_evals[shown], d + 1)


def test_a_determined_value_a_little_off_is_corrected_by_the_search_over_all_variables():
    problem, X, Y_star, f_star, Y0, determined = starts_and_mask("SMD8", (5, 5), 0.05, off=1e-3)
    q = problem.split.q
    first = solve(problem, X, Y0, determined=determined)
    assert first.success.all()
    # Held 0.015 from the Rosenbrock block's optimum in the first stage, it ends there in the second (but where
    # x_l2 stops at SMD8's stationary point 0, as in the test above).
    at_optimum = np.abs(first.f - f_star) <= 1e-7
    assert at_optimum.sum() >= 10
    np.testing.assert_allclose(first.Y[at_optimum, :q], Y_star[at_optimum, :q], atol=1e-4)


def test_rows_with_every_or_no_variable_determined_are_searched_as_before():
    problem, X, _, _, Y0, _ = starts_and_mask("SMD8", (5, 5), 0.05, n=6)
    determined = np.zeros(Y0.shape, bool)
    determined[:3] = True  # all of them: a prediction accepted outright would not be refined; nothing to free
    before, after = solve(problem, X, Y0), solve(problem, X, Y0, determined=determined)
    for field in ("Y", "f", "cv", "success", "n_evals", "curvature"):
        np.testing.assert_array_equal(getattr(after, field), getattr(before, field))


def test_a_constrained_follower_is_searched_over_all_variables_at_once():
    """The SQP method's model of the Lagrangian would start afresh for the second stage and pay again for what the
    first one learnt; it takes no ``determined``."""
    problem, X, _, _, Y0, determined = starts_and_mask("SMD10", (5, 5), 0.05, n=6)
    before, after = solve(problem, X, Y0), solve(problem, X, Y0, determined=determined)
    for field in ("Y", "f", "n_evals"):
        np.testing.assert_array_equal(getattr(after, field), getattr(before, field))


def test_determined_variables_of_the_wrong_shape_are_named():
    problem, X, _, _ = case("SMD1", (5, 5), n=3, seed=5)
    with pytest.raises(ValueError, match=r"SMD1.*determined must have shape \(3, 5\), got \(3, 4\)"):
        LockstepRefinement().solve(Evaluator(problem), X, np.random.default_rng(0), determined=np.ones((3, 4), bool))


def test_the_engine_gives_the_determined_variables_to_refinements_only():
    problem, X, _, _, Y0, determined = starts_and_mask("SMD8", (5, 5), 0.05, n=6, seed=7)
    engine = LowerEngine(chunk_size=2)

    def through(solver, **kw):
        return engine.solve(problem, solver, X, np.random.SeedSequence(3), **kw)[0]

    given = through(LockstepRefinement(), Y0=Y0, determined=determined)
    direct = LockstepRefinement().solve_parts(
        Evaluator(problem), [(X[i:i + 2], np.random.default_rng(s), Y0[i:i + 2], None, None, determined[i:i + 2])
                             for i, s in zip(range(0, 6, 2), np.random.SeedSequence(3).spawn(3))])
    for field in ("Y", "n_evals"):
        np.testing.assert_array_equal(getattr(given, field), np.concatenate([getattr(d, field) for d in direct]))
    assert given.n_evals.sum() < through(LockstepRefinement(), Y0=Y0).n_evals.sum()  # it was used
    # A DE takes none; the engine does not pass it on.
    np.testing.assert_array_equal(through(DifferentialEvolution(), determined=determined).Y,
                                  through(DifferentialEvolution()).Y)


def test_a_bleaq_run_refines_the_variables_psi_does_not_determine_first(monkeypatch):
    """SMD8 (5, 5): psi determines the Rosenbrock block (its optimum is 1 for every x) but not the cube roots near
    zero, so nearly every candidate is refined. Summed over two seeds (measured: 59.2k against 90.6k LL evaluations;
    0.62 and 0.69 of the runs without it)."""
    problem = eb.benchmarks.get("SMD8", ul_dim=5, ll_dim=5)
    first = bleaq_ll_evals(problem, range(2))
    original = LockstepRefinement._free_first
    monkeypatch.setattr(LockstepRefinement, "_free_first",
                        lambda self, budget, rows, starts, values, determined, curvature, accept:
                        original(self, budget, rows, starts, values, np.zeros_like(determined), curvature, accept))
    together = bleaq_ll_evals(problem, range(2))
    assert first < 0.8 * together


def test_where_the_constraint_count_is_not_known_yet_every_variable_is_searched_at_once():
    """Asking a problem that has not been evaluated for its constraint count makes it evaluate a point uncounted; a
    refinement given ``determined`` before then searches as without it. (A constraint function that returns none:
    the count is known only once it has been called.)"""

    def problem():
        return eb.Problem(upper=lambda x, y: x @ x + y @ y, lower=lambda x, y: ((y - x) ** 2).sum(),
                          ul_bounds=[(-1, 1)] * 2, ll_bounds=[(-1, 1)] * 2, lower_constraints=lambda x, y: np.zeros(0),
                          name="fresh")

    X = np.array([[0.3, -0.2], [0.1, 0.4]])
    Y0 = np.array([[0.3, 0.5], [0.1, -0.6]])
    determined = np.array([[True, False], [True, False]])
    fresh = problem()
    given = LockstepRefinement().solve(Evaluator(fresh), X, np.random.default_rng(0), Y0=Y0, determined=determined)
    assert fresh.known_constraint_count("lower") == 0  # learnt from the refinement's own evaluations
    without = LockstepRefinement().solve(Evaluator(problem()), X, np.random.default_rng(0), Y0=Y0)
    np.testing.assert_array_equal(given.n_evals, without.n_evals)
    np.testing.assert_allclose(given.Y, X, atol=1e-5)
    # Once it is known, the same call holds the first variable while it searches the second.
    again = LockstepRefinement().solve(Evaluator(fresh), X, np.random.default_rng(0), Y0=Y0, determined=determined)
    assert again.n_evals.sum() < given.n_evals.sum()
    np.testing.assert_allclose(again.Y, X, atol=1e-5)
