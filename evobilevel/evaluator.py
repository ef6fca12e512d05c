"""The counting evaluator every algorithm evaluates through.

It counts evaluated points per level (one row = one evaluation) and turns failures
of a black box (an exception, a NaN or infinite objective, a NaN constraint) into *infeasible* points with an
infinite constraint violation, so that a failing point can never become the best one. Failures are counted and
the first message is kept for the result. Budgets are not its job (see :mod:`evobilevel.budget`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
    """Evaluations spent at one level: how many failed, how many were feasible, the first failure's message, and
    the seconds the black box took (its own calls, wherever they ran)."""

    n_evals: int = 0
    n_failed: int = 0
    first_error: str | None = None
    n_feasible: int = 0
    seconds: float = 0.0

    def add(self, other: LevelCounts) -> None:
        self.n_evals += other.n_evals
        self.n_failed += other.n_failed
        self.n_feasible += other.n_feasible
        self.seconds += other.seconds
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
    ul, ll : LevelCounts, optional
        Where the evaluations of each level are counted (new counts by default).
    followers : list of LevelCounts, optional
        For a problem with several followers, each follower's lower-level evaluations (new counts by default);
        ``ll`` counts them all.
    batch : callable, optional
        ``batch(problem, level, X, Y, log) -> (values, constraints, seconds)`` evaluates a validated batch in place
        of ``problem.evaluate_batch`` (the engine's evaluation tasks, see :mod:`evobilevel.parallel.spread`).
    observer : callable, optional
        ``observer(level, n, seconds)`` is told of every batch evaluated (the engine measures costs so).
    """

    problem: Problem
    ul: LevelCounts = field(default_factory=LevelCounts)
    ll: LevelCounts = field(default_factory=LevelCounts)
    followers: list | None = None
    batch: Callable | None = None
    observer: Callable | None = None

    def __post_init__(self):
        follower_set = getattr(self.problem, "follower_set", None)
        if follower_set is not None and self.followers is None:
            self.followers = [LevelCounts() for _ in follower_set.problems]

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
        """Evaluate ``f, g`` on X (n, ul_dim), Y (n, ll_dim); counts n lower-level evaluations (with several
        followers: n per follower, ``f`` being their sum and ``g`` their constraints side by side)."""
        if self.followers is not None:
            X, Y = self.problem.check_points(X, Y)
            blocks = self.problem.follower_set.blocks
            return _joined([self.follower_lower(i, X, Y[:, block]) for i, block in enumerate(blocks)])
        return self._evaluate("lower", X, Y, self.ll)

    def follower_lower(self, i: int, X: np.ndarray, Y: np.ndarray) -> Evaluation:
        """Evaluate follower i's ``f_i, g_i`` on X (n, ul_dim), Y (n, ll_dim_i): n evaluations, counted for the
        follower and in the lower-level total."""
        own = Evaluator(self.problem.follower_set.problems[i], ll=LevelCounts(), batch=self.batch,
                        observer=self.observer)
        result = own.lower(X, Y)
        self.followers[i].add(own.ll)
        self.ll.add(own.ll)
        return result

    def merge_follower(self, i: int, counts: dict[str, LevelCounts]) -> None:
        """Add the counts of a solve of follower i's own problem (elsewhere) to the follower's and the total."""
        self.followers[i].add(counts["ll"])
        self.merge(counts)

    def _evaluate(self, level: str, X, Y, counts: LevelCounts) -> Evaluation:
        X, Y = self.problem.check_points(X, Y)
        n = X.shape[0]
        log = FailureLog(np.zeros(n, bool))
        if self.batch is None:
            start = time.perf_counter()
            values, constraints = self.problem.evaluate_batch(level, X, Y, log)
            seconds = time.perf_counter() - start
        else:
            values, constraints, seconds = self.batch(self.problem, level, X, Y, log)
        counts.n_evals += n
        counts.seconds += seconds
        if self.observer is not None:
            self.observer(level, n, seconds)
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
            cv = np.where(failed, np.inf, violation(constraints))
        else:
            cv = violation(constraints)
        counts.n_feasible += int(np.count_nonzero(cv == 0))
        return Evaluation(values, constraints, cv, failed)

    def counts(self) -> dict[str, LevelCounts]:
        """A snapshot of both levels' counts (and, with several followers, each one's under ``"followers"``), to
        be merged by another evaluator with :meth:`merge`."""
        out = {"ul": LevelCounts(**vars(self.ul)), "ll": LevelCounts(**vars(self.ll))}
        if self.followers is not None:
            out["followers"] = [LevelCounts(**vars(c)) for c in self.followers]
        return out

    def merge(self, counts: dict[str, LevelCounts]) -> None:
        """Add counts gathered elsewhere (a worker process) to this evaluator's."""
        self.ul.add(counts["ul"])
        self.ll.add(counts["ll"])
        if self.followers is not None and "followers" in counts:
            for own, other in zip(self.followers, counts["followers"]):
                own.add(other)


def _joined(parts: list[Evaluation]) -> Evaluation:
    """The followers' evaluations of the same points as one: values added, constraints side by side, a point
    failed where any follower's evaluation failed."""
    failed = np.any([p.failed for p in parts], axis=0)
    values = np.where(failed, np.inf, np.sum([p.values for p in parts], axis=0))
    constraints = np.hstack([p.constraints for p in parts])
    cv = np.where(failed, np.inf, np.sum([p.cv for p in parts], axis=0))
    return Evaluation(values, constraints, cv, failed)


def _describe_non_finite(level, X, Y, values, constraints, failed) -> str:
    i = int(np.flatnonzero(failed)[0])
    what = "objective" if not np.isfinite(values[i]).all() else "constraint"
    shown = np.asarray(values[i]).tolist() if what == "objective" else constraints[i].tolist()
    return f"{level}-level {what} returned {shown} at x={X[i].tolist()}, y={Y[i].tolist()}"
