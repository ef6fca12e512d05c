"""The counting evaluator every algorithm evaluates through.

It counts evaluated points per level (one row = one evaluation) and turns failures
of a black box (an exception, a NaN or infinite objective, a NaN constraint) into *infeasible* points with an
infinite constraint violation, so that a failing point can never become the best one. Failures are counted and
the first message is kept for the result. Budgets are not its job (see :mod:`evobilevel.budget`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .problem import FailureLog, Problem

__all__ = ["Evaluator", "Evaluation", "LevelCounts", "violation"]


@dataclass(frozen=True)
class Evaluation:
    """Values of one level for a batch of n points.

    Attributes
    ----------
    values : ndarray, shape (n,), or (n, k) for the upper level of a leader with k objectives
        Objective values; ``inf`` where the evaluation failed (every objective of a failed point).
    constraints : ndarray, shape (n, m)
        Constraint values (feasible where ``<= 0``); ``inf`` where the evaluation failed.
    cv : ndarray, shape (n,)
        Total constraint violation ``sum(max(g, 0))``; 0 means feasible, ``inf`` means failed.
    failed : ndarray of bool, shape (n,)
    """

    values: np.ndarray
    constraints: np.ndarray
    cv: np.ndarray
    failed: np.ndarray


@dataclass
class LevelCounts:
    """Evaluations spent at one level, and the failures among them."""

    n_evals: int = 0
    n_failed: int = 0
    first_error: str | None = None

    def add(self, other: LevelCounts) -> None:
        self.n_evals += other.n_evals
        self.n_failed += other.n_failed
        if self.first_error is None:
            self.first_error = other.first_error


def violation(constraints: np.ndarray) -> np.ndarray:
    """Total constraint violation per row: ``sum(max(g, 0))`` over the columns of ``constraints`` (n, m)."""
    if constraints.shape[1] == 0:
        return np.zeros(constraints.shape[0])
    return np.maximum(constraints, 0.0).sum(axis=1)


@dataclass
class Evaluator:
    """Counts and sanitises evaluations of a :class:`~evobilevel.problem.Problem`.

    Parameters
    ----------
    problem : Problem
    """

    problem: Problem
    ul: LevelCounts = field(default_factory=LevelCounts)
    ll: LevelCounts = field(default_factory=LevelCounts)

    @property
    def n_ul_evals(self) -> int:
        return self.ul.n_evals

    @property
    def n_ll_evals(self) -> int:
        return self.ll.n_evals

    def upper(self, X: np.ndarray, Y: np.ndarray) -> Evaluation:
        """Evaluate ``F, G`` on X (n, ul_dim), Y (n, ll_dim); counts n upper-level evaluations."""
        return self._evaluate("upper", X, Y, self.ul)

    def lower(self, X: np.ndarray, Y: np.ndarray) -> Evaluation:
        """Evaluate ``f, g`` on X (n, ul_dim), Y (n, ll_dim); counts n lower-level evaluations."""
        return self._evaluate("lower", X, Y, self.ll)

    def _evaluate(self, level: str, X, Y, counts: LevelCounts) -> Evaluation:
        X, Y = self.problem.check_points(X, Y)
        n = X.shape[0]
        log = FailureLog(np.zeros(n, bool))
        values, constraints = self.problem.evaluate_batch(level, X, Y, log)
        counts.n_evals += n
        finite = np.isfinite(values) if values.ndim == 1 else np.isfinite(values).all(axis=1)
        failed = log.failed | ~finite | np.isnan(constraints).any(axis=1)
        if failed.any():
            counts.n_failed += int(failed.sum())
            if counts.first_error is None:
                counts.first_error = log.first_error or _describe_non_finite(
                    level, X, Y, values, constraints, failed
                )
            values = np.where(failed if values.ndim == 1 else failed[:, None], np.inf, values)
            constraints = np.where(failed[:, None], np.inf, constraints)
            # A failed point is infeasible even on a level without constraints.
            return Evaluation(values, constraints, np.where(failed, np.inf, violation(constraints)), failed)
        return Evaluation(values, constraints, violation(constraints), failed)

    def counts(self) -> dict[str, LevelCounts]:
        """A snapshot of both levels' counts, to be merged by another evaluator with :meth:`merge`."""
        return {"ul": LevelCounts(**vars(self.ul)), "ll": LevelCounts(**vars(self.ll))}

    def merge(self, counts: dict[str, LevelCounts]) -> None:
        """Add counts gathered elsewhere (a worker process) to this evaluator's."""
        self.ul.add(counts["ul"])
        self.ll.add(counts["ll"])


def _describe_non_finite(level, X, Y, values, constraints, failed) -> str:
    i = int(np.flatnonzero(failed)[0])
    what = "objective" if not np.isfinite(values[i]).all() else "constraint"
    shown = np.asarray(values[i]).tolist() if what == "objective" else constraints[i].tolist()
    return f"{level}-level {what} returned {shown} at x={X[i].tolist()}, y={Y[i].tolist()}"
