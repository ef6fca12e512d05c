"""The independent check of a result's lower level: how far the follower's answer is from the follower's optimum at
the final ``x``, measured by a stronger solve than the run's (``ll_gap``), and per follower where there are several.

A lower level whose variables are all integer, with few enough points, is checked exhaustively: every point is
evaluated. Others are checked by :func:`evobilevel.lower.check_solver`, a larger and more patient batched DE.
"""

from __future__ import annotations

import math

import numpy as np

from .evaluator import Evaluator
from .followers import FollowerResult
from .integrality import integer_mask, lattice_size
from .lower import check_solver
from .lower.integer import LatticeEnumeration

__all__ = ["EXHAUSTIVE_POINTS", "check_lower", "follower_answers", "check_solver_for", "ll_gaps"]

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


def check_lower(engine, problem, best, seed: np.random.SeedSequence, max_evals: int | None = None,
                followers: list[FollowerResult] | None = None) -> tuple[float, int]:
    """The lower-level gap of a result's answer ``best.y`` (value ``best.f``, violation ``best.ll_cv``) at ``best.x``.

    Parameters
    ----------
    engine : LowerEngine
        The run's engine: the check's solves go through it (in parallel for ``n_jobs`` other than 1).
    problem : Problem
    best : Candidate
    seed : SeedSequence
        The check's random stream.
    max_evals : int, optional
        Most evaluations the check may spend (with several followers, shared evenly, one of each follower's share
        going to the value of its answer).
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
    x = np.asarray(best.x, dtype=float)
    if followers is None:
        return _gap(engine, problem, x, best.f, best.ll_cv, seed, max_evals)
    share = None if max_evals is None else max(1, max_evals // len(followers) - 1)
    gaps, total = [], 0
    own = problem.follower_set
    for follower, sub, block, s in zip(followers, own.problems, own.blocks, seed.spawn(len(followers))):
        answer = Evaluator(sub).lower(x[None, :], np.asarray(best.y, dtype=float)[None, block])
        follower.f, follower.feasible = float(answer.values[0]), bool(answer.cv[0] == 0)
        follower.ll_gap, n_evals = _gap(engine, sub, x, follower.f, float(answer.cv[0]), s, share)
        follower.n_ll_evals_check = n_evals + 1
        gaps.append(follower.ll_gap)
        total += follower.n_ll_evals_check
    return max(gaps), total


def _gap(engine, problem, x: np.ndarray, f: float, ll_cv: float, seed: np.random.SeedSequence,
         max_evals: int | None) -> tuple[float, int]:
    caps = None if max_evals is None else np.array([max_evals])
    solution, counts = engine.solve(problem, check_solver_for(problem, max_evals), x[None, :], seed, max_evals=caps)
    f_check, cv_check = float(solution.f[0]), float(solution.cv[0])
    if ll_cv > 0:
        gap = math.inf if cv_check == 0 else 0.0
    elif cv_check > 0:
        gap = 0.0
    else:
        gap = max(0.0, f - f_check)
    return gap, counts["ll"].n_evals


def check_solver_for(problem, max_evals: int | None = None):
    """The check's solver: every point of a small all-integer lower level (when the check may spend that many),
    else :func:`evobilevel.lower.check_solver`."""
    mask = integer_mask(problem)
    if mask is not None and mask.all():
        size = lattice_size(problem.ll_bounds)
        if size <= EXHAUSTIVE_POINTS and (max_evals is None or size <= max_evals):
            return LatticeEnumeration()
    return check_solver()


def ll_gaps(problem, X: np.ndarray, f: np.ndarray, ll_cv: np.ndarray, seed: np.random.SeedSequence,
            engine=None) -> tuple[np.ndarray, int]:
    """``f(x, y) - f(x, y_check)`` clipped at 0 for every row, ``y_check`` from one batched check solve (the pairs
    of a leader with several objectives).

    Parameters
    ----------
    problem : Problem
    X : ndarray, shape (n, ul_dim)
        The leader's choices.
    f, ll_cv : ndarray, shape (n,)
        The lower-level value and violation of each follower's answer.
    seed : SeedSequence
        The check's own random stream (independent of the run's).
    engine : LowerEngine, optional
        The run's engine, through which the check's solves go; inline without one.

    Returns
    -------
    gaps : ndarray, shape (n,)
        0 where the check found no feasible answer either, ``inf`` where the answer is infeasible but the check
        found a feasible one.
    n_evals : int
        Lower-level evaluations of the check.
    """
    if X.shape[0] == 0:
        return np.empty(0), 0
    if engine is None:
        from .parallel import LowerEngine

        engine = LowerEngine(n_jobs=1)
    solution, counts = engine.solve(problem, check_solver_for(problem), X, seed)
    f_check, cv_check = solution.f, solution.cv
    gaps = np.where(cv_check > 0, 0.0, np.maximum(0.0, f - f_check))
    gaps = np.where(ll_cv > 0, np.where(cv_check == 0, np.inf, 0.0), gaps)
    return gaps.astype(float), counts["ll"].n_evals
