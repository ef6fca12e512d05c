"""The independent check of a result's lower level: how far the follower's answer is from the follower's optimum at
the final ``x``, measured by a stronger solve than the run's (``ll_gap``), and per follower where there are several.

A lower level whose variables are all integer, with few enough points, is checked exhaustively: every point is
evaluated. Others are checked by :func:`evobilevel.lower.check_solver`, a larger and more patient batched DE.
"""

from __future__ import annotations

import math

import numpy as np

from .budget import RowBudget
from .evaluator import Evaluator
from .followers import FollowerResult
from .integrality import integer_mask, lattice, lattice_size
from .lower import check_solver
from .lower.base import LowerSolution
from .lower.integer import enumerate_lattice

__all__ = ["EXHAUSTIVE_POINTS", "check_lower", "follower_answers", "solve_exactly_or_check"]

#: A lower level with only integer variables and at most this many points is checked by evaluating all of them:
#: about what the check solver spends on a hard lower level, and no doubt left.
EXHAUSTIVE_POINTS = 20_000


def follower_answers(problem, y: np.ndarray, counts) -> list[FollowerResult] | None:
    """Each follower's block of ``y`` (ll_dim,) and its evaluations (``counts``: one LevelCounts per follower);
    None for a problem with one follower."""
    followers = problem.follower_set
    if followers is None:
        return None
    return [FollowerResult(name, np.asarray(y[block], dtype=float), n_ll_evals=c.n_evals)
            for name, block, c in zip(followers.names, followers.blocks, counts)]


def check_lower(problem, x: np.ndarray, y: np.ndarray, f: float, ll_cv: float, seed: np.random.SeedSequence,
                followers: list[FollowerResult] | None = None) -> tuple[float, int]:
    """The lower-level gap of the answer ``y`` (value ``f``, violation ``ll_cv``) at ``x``.

    Parameters
    ----------
    problem : Problem
    x : ndarray, shape (ul_dim,)
    y : ndarray, shape (ll_dim,)
    f, ll_cv : float
    seed : SeedSequence
        The check's random stream.
    followers : list of FollowerResult, optional
        For a problem with several followers (from :func:`follower_answers`): each is checked on its own problem
        and its ``f``, ``feasible``, ``ll_gap`` and ``n_ll_evals_check`` are filled in.

    Returns
    -------
    gap : float
        ``f(x, y) - f(x, y_check)`` clipped at 0 (the largest follower's gap with several); ``inf`` when the
        answer is infeasible at the lower level but the check found a feasible point, 0 when neither is feasible.
    n_evals : int
        Lower-level evaluations of the check.
    """
    if followers is None:
        return _gap(problem, x, f, ll_cv, seed)
    gaps, total = [], 0
    for follower, sub, block, s in zip(followers, problem.follower_set.problems, problem.follower_set.blocks,
                                       seed.spawn(len(followers))):
        answer = Evaluator(sub).lower(x[None, :], y[None, block])
        follower.f, follower.feasible = float(answer.values[0]), bool(answer.cv[0] == 0)
        follower.ll_gap, n_evals = _gap(sub, x, follower.f, float(answer.cv[0]), s)
        follower.n_ll_evals_check = n_evals + 1
        gaps.append(follower.ll_gap)
        total += follower.n_ll_evals_check
    return max(gaps), total


def _gap(problem, x: np.ndarray, f: float, ll_cv: float, seed: np.random.SeedSequence) -> tuple[float, int]:
    evaluator = Evaluator(problem)
    solution = solve_exactly_or_check(evaluator, x, seed)
    f_check, cv_check = float(solution.f[0]), float(solution.cv[0])
    if ll_cv > 0:
        gap = math.inf if cv_check == 0 else 0.0
    elif cv_check > 0:
        gap = 0.0
    else:
        gap = max(0.0, f - f_check)
    return gap, evaluator.n_ll_evals


def solve_exactly_or_check(evaluator: Evaluator, x: np.ndarray, seed: np.random.SeedSequence) -> LowerSolution:
    """The lower level at ``x`` (ul_dim,) solved exhaustively when it is small and all integer, else by the check
    solver (with ``seed``'s stream); one row."""
    problem = evaluator.problem
    mask = integer_mask(problem)
    if mask is not None and mask.all() and lattice_size(problem.ll_bounds) <= EXHAUSTIVE_POINTS:
        return _exhaustive(evaluator, x)
    return check_solver().solve(evaluator, x[None, :], np.random.default_rng(seed))


def _exhaustive(evaluator: Evaluator, x: np.ndarray) -> LowerSolution:
    """Every integer point of the lower level at ``x`` evaluated; the best one by Deb's rules."""
    points = lattice(evaluator.problem.ll_bounds)
    budget = RowBudget(evaluator, x[None, :], np.array([np.inf]))
    Y, f, cv = enumerate_lattice(budget, points)
    return LowerSolution(Y=Y, f=f, cv=cv, success=cv <= 0, n_evals=budget.used.copy())
