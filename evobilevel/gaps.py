"""The lower-level gap of final answers: how far each follower's answer is from optimal, measured by an
independent, stronger lower-level solve."""

from __future__ import annotations

import numpy as np

from .evaluator import Evaluator
from .lower import check_solver

__all__ = ["ll_gaps"]


def ll_gaps(problem, X: np.ndarray, f: np.ndarray, ll_cv: np.ndarray,
            seed: np.random.SeedSequence) -> tuple[np.ndarray, int]:
    """``f(x, y) - f(x, y_check)`` clipped at 0 for every row, ``y_check`` from one batched check solve.

    Parameters
    ----------
    problem : Problem
    X : ndarray, shape (n, ul_dim)
        The leader's choices.
    f, ll_cv : ndarray, shape (n,)
        The lower-level value and violation of each follower's answer.
    seed : SeedSequence
        The check's own random stream (independent of the run's).

    Returns
    -------
    gaps : ndarray, shape (n,)
        0 where the check found no feasible answer either, ``inf`` where the answer is infeasible but the check
        found a feasible one.
    n_evals : int
        Lower-level evaluations of the check.
    """
    evaluator = Evaluator(problem)
    if X.shape[0] == 0:
        return np.empty(0), 0
    solution = check_solver().solve(evaluator, X, np.random.default_rng(seed))
    f_check, cv_check = solution.f, solution.cv
    gaps = np.where(cv_check > 0, 0.0, np.maximum(0.0, f - f_check))
    gaps = np.where(ll_cv > 0, np.where(cv_check == 0, np.inf, 0.0), gaps)
    return gaps.astype(float), evaluator.n_ll_evals
