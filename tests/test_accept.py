"""A refinement's accepted values (``f_accept``): a row ends at its first feasible point at or below the value its
caller accepts as optimal (BLEAQ's phi prediction with its tolerance), without the gradient that would show it
converged; through the engine's chunks and BLEAQ's settlement."""

from __future__ import annotations

import numpy as np
import pytest
from lower_cases import CallCounter, case, perturbed

from evobilevel.lower import LocalRefinement
from evobilevel.lower.lockstep import LockstepRefinement
from evobilevel.parallel.engine import LowerEngine

NEAR = 1e-3


def accepted(f_star: np.ndarray) -> np.ndarray:
    """The values a caller that knows f* (n,) to BLEAQ's default tolerance accepts."""
    return f_star + 1e-6 * (1 + np.abs(f_star))


def solve(problem, X, Y0, f_accept=None, solver=None):
    ev = CallCounter(problem)
    solution = (solver or LockstepRefinement()).solve(ev, X, np.random.default_rng(0), Y0=Y0, f_accept=f_accept)
    assert solution.n_evals.sum() == ev.n_ll_evals
    return solution


# SMD1's follower is unconstrained (the box method), SMD10's and SMD12's are constrained (SQP); SMD5's Rosenbrock
# term takes the box method several iterations.
@pytest.mark.parametrize("name", ["SMD1", "SMD5", "SMD10", "SMD12"])
def test_a_row_ends_at_its_first_point_that_meets_its_accepted_value(name):
    problem, X, Y_star, f_star = case(name, (5, 5), n=6, seed=21)
    Y0 = perturbed(problem, Y_star, NEAR, seed=22)
    free = solve(problem, X, Y0)
    assert np.all(free.success)
    bound = accepted(f_star)
    assert np.all(free.f <= bound)  # the rows meet the bound anyway ...
    ended = solve(problem, X, Y0, f_accept=bound)
    assert np.all(ended.success) and np.all(ended.cv == 0)
    assert np.all(ended.f <= bound)
    # ... and, ending there, spare at least the gradient that would have shown them converged, every row.
    assert np.all(ended.n_evals <= free.n_evals - problem.ll_dim)


def test_a_start_that_meets_its_accepted_value_costs_its_evaluation_alone():
    problem, X, Y_star, f_star = case("SMD10", (5, 5), n=5, seed=23)
    far = perturbed(problem, Y_star, 0.05, seed=24)
    Y0 = np.stack([far, Y_star], axis=1)  # the second start is the optimum
    ended = solve(problem, X, Y0, f_accept=accepted(f_star))
    assert np.all(ended.success)
    np.testing.assert_array_equal(ended.n_evals, 2)  # the two starts, evaluated to choose between them
    np.testing.assert_array_equal(ended.Y, Y_star)
    # Without an accepted value the optimal start is verified by a gradient.
    assert np.all(solve(problem, X, Y0).n_evals > 2 + problem.ll_dim - 1)


def test_values_that_accept_nothing_change_nothing():
    problem, X, Y_star, f_star = case("SMD12", (5, 5), n=6, seed=25)
    Y0 = perturbed(problem, Y_star, 1e-2, seed=26)
    free = solve(problem, X, Y0)
    below = f_star - 1.0  # below every row's optimum: never met
    below[0] = -np.inf
    below[1] = np.nan
    for f_accept in (np.full(6, -np.inf), below):
        other = solve(problem, X, Y0, f_accept=f_accept)
        for field in ("Y", "f", "cv", "success", "n_evals"):
            np.testing.assert_array_equal(getattr(other, field), getattr(free, field), err_msg=field)


def test_scipy_s_searches_ignore_accepted_values():
    problem, X, Y_star, f_star = case("SMD1", (5, 5), n=3, seed=27)
    Y0 = perturbed(problem, Y_star, NEAR, seed=28)
    free = solve(problem, X, Y0, solver=LocalRefinement())
    ended = solve(problem, X, Y0, f_accept=accepted(f_star), solver=LocalRefinement())
    np.testing.assert_array_equal(ended.n_evals, free.n_evals)


def test_a_wrong_shape_is_named():
    problem, X, Y_star, f_star = case("SMD1", (5, 5), n=3, seed=29)
    with pytest.raises(ValueError, match="f_accept must have shape \\(3,\\)"):
        solve(problem, X, Y_star, f_accept=f_star[:2])


def test_the_engine_gives_each_chunk_its_rows_accepted_values():
    problem, X, Y_star, f_star = case("SMD10", (5, 5), n=7, seed=31)
    Y0 = perturbed(problem, Y_star, NEAR, seed=32)[:, None, :]
    bound = accepted(f_star)
    bound[::2] = -np.inf  # every other row accepts nothing
    seed = np.random.SeedSequence(33)
    chunked, _ = LowerEngine(n_jobs=1, chunk_size=2).solve(problem, LockstepRefinement(), X, seed, Y0=Y0,
                                                          f_accept=bound)
    whole, _ = LowerEngine(n_jobs=1, chunk_size=100).solve(problem, LockstepRefinement(), X, seed, Y0=Y0,
                                                          f_accept=bound)
    free, _ = LowerEngine(n_jobs=1, chunk_size=2).solve(problem, LockstepRefinement(), X, seed, Y0=Y0)
    for field in ("Y", "f", "n_evals"):
        np.testing.assert_array_equal(getattr(chunked, field), getattr(whole, field), err_msg=field)
    np.testing.assert_array_equal(chunked.n_evals[::2], free.n_evals[::2])
    assert np.all(chunked.n_evals[1::2] < free.n_evals[1::2])
