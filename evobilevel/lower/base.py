"""Shared parts of the lower-level solvers: the result record, the solver interface, per-row budgets and
the feasibility-first comparison.

A lower-level solver receives a batch of upper-level points ``X`` (n, ul_dim) and solves the n problems

    min_y f(x_i, y)   subject to   g(x_i, y) <= 0,   ll_bounds[0] <= y <= ll_bounds[1]

together. Every evaluation goes through the counting :class:`~evobilevel.evaluator.Evaluator`, and no row ever
spends more than its cap ``max_evals[i]``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..evaluator import Evaluator

__all__ = ["LowerSolution", "LowerSolver", "RowBudget", "better", "rank", "prepare"]


@dataclass
class LowerSolution:
    """The best lower-level point found for each of n upper-level points.

    Attributes
    ----------
    Y : ndarray, shape (n, ll_dim)
        Best ``y`` per row. A row that got no evaluation holds its first warm start (or the centre of the
        box), with ``f = inf`` and ``cv = inf``.
    f : ndarray, shape (n,)
        ``f(x_i, Y[i])``; ``inf`` if the row was not evaluated or the evaluation failed.
    cv : ndarray, shape (n,)
        Total constraint violation at ``Y[i]``; 0 means feasible, ``inf`` not evaluated or failed.
    success : ndarray of bool, shape (n,)
        Converged by the solver's own rule and feasible.
    n_evals : ndarray of int, shape (n,)
        Lower-level evaluations spent on each row.
    """

    Y: np.ndarray
    f: np.ndarray
    cv: np.ndarray
    success: np.ndarray
    n_evals: np.ndarray

    @classmethod
    def empty(cls, n: int, ll_dim: int) -> LowerSolution:
        """n rows with no evaluation: ``Y`` NaN, ``f`` and ``cv`` inf, no success, no evaluations."""
        return cls(
            Y=np.full((n, ll_dim), np.nan),
            f=np.full(n, np.inf),
            cv=np.full(n, np.inf),
            success=np.zeros(n, bool),
            n_evals=np.zeros(n, np.int64),
        )

    @classmethod
    def concat(cls, solutions: list[LowerSolution]) -> LowerSolution:
        """Stack the rows of several solutions (in order); at least one solution is needed."""
        if not solutions:
            raise ValueError("LowerSolution.concat needs at least one solution")
        return cls(*(np.concatenate([getattr(s, name) for s in solutions]) for name in _FIELDS))

    def __len__(self) -> int:
        return self.f.shape[0]

    @property
    def feasible(self) -> np.ndarray:
        """(n,) bool: the row's best point satisfies every lower-level constraint."""
        return self.cv <= 0.0

    def take(self, idx) -> LowerSolution:
        """The rows ``idx`` (integer indices or a boolean mask) as a new solution."""
        return LowerSolution(*(getattr(self, name)[idx].copy() for name in _FIELDS))

    def put(self, idx, other: LowerSolution) -> None:
        """Overwrite the rows ``idx`` with the rows of ``other`` (in place)."""
        for name in _FIELDS:
            getattr(self, name)[idx] = getattr(other, name)

    def merge(self, other: LowerSolution) -> LowerSolution:
        """Row by row, the better point of ``self`` and ``other`` with their evaluation counts added.

        ``success`` is that of the row kept. Both must describe the same rows of the same problems.
        """
        take_other = better(other.f, other.cv, self.f, self.cv)
        out = self.take(slice(None))
        out.put(take_other, other.take(take_other))
        out.n_evals = self.n_evals + other.n_evals
        return out


_FIELDS = ("Y", "f", "cv", "success", "n_evals")


class LowerSolver(ABC):
    """Interface of a lower-level solver.

    Subclasses are dataclasses of plain settings, so that they pickle (they are sent to worker processes), and
    draw random numbers only from the ``rng`` they are given.
    """

    @abstractmethod
    def solve(
        self,
        ev: Evaluator,
        X: np.ndarray,
        rng: np.random.Generator,
        Y0: np.ndarray | None = None,
        max_evals: np.ndarray | int | None = None,
    ) -> LowerSolution:
        """Solve the lower level for every row of ``X``.

        Parameters
        ----------
        ev : Evaluator
            Counting evaluator; every lower-level evaluation goes through ``ev.lower``.
        X : ndarray, shape (n, ul_dim)
            Upper-level points.
        rng : numpy.random.Generator
            The only source of randomness.
        Y0 : ndarray, shape (n, k, ll_dim) or (n, ll_dim), optional
            Up to k warm starts per row, best first; a warm start containing NaN is absent.
        max_evals : int or ndarray of int, shape (n,), optional
            Hard cap on the evaluations spent on each row (no cap if None).

        Returns
        -------
        LowerSolution
        """


def better(f_a, cv_a, f_b, cv_b) -> np.ndarray:
    """Whether ``a`` is strictly better than ``b`` by Deb's rules.

    A feasible point beats an infeasible one, two infeasible points compare their violation, two feasible
    points their objective. A failed point (``f = cv = inf``) never beats anything.
    """
    return (cv_a < cv_b) | ((cv_a == cv_b) & (f_a < f_b))


def rank(f: np.ndarray, cv: np.ndarray) -> np.ndarray:
    """Indices that sort the last axis of ``f`` and ``cv`` (same shape) best first by Deb's rules."""
    return np.lexsort((f, cv), axis=-1)


def prepare(ev: Evaluator, X, Y0, max_evals) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Validate the arguments of :meth:`LowerSolver.solve`.

    Returns
    -------
    X : ndarray, shape (n, ul_dim)
    Y0 : ndarray, shape (n, k, ll_dim), or None
        Warm starts clipped into the lower-level bounds; rows without one are NaN.
    caps : ndarray of float, shape (n,)
        Per-row caps, ``inf`` where there is none.
    """
    problem = ev.problem
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != problem.ul_dim:
        raise ValueError(f"{problem.name}: X must have shape (n, {problem.ul_dim}), got {X.shape}")
    n, d = X.shape[0], problem.ll_dim
    if Y0 is not None:
        Y0 = np.asarray(Y0, dtype=float)
        if Y0.ndim == 2:
            Y0 = Y0[:, None, :]
        if Y0.ndim != 3 or Y0.shape[0] != n or Y0.shape[2] != d:
            raise ValueError(f"{problem.name}: Y0 must have shape ({n}, k, {d}), got {Y0.shape}")
        lo, hi = problem.ll_bounds
        Y0 = np.clip(Y0, lo, hi)  # NaN stays NaN
        Y0[np.isnan(Y0).any(axis=2)] = np.nan
        if Y0.shape[1] == 0 or np.isnan(Y0).all():
            Y0 = None
    if max_evals is None:
        caps = np.full(n, np.inf)
    else:
        caps = np.broadcast_to(np.asarray(max_evals, dtype=float), (n,)).copy()
        if np.isnan(caps).any() or (caps < 0).any():
            raise ValueError(f"{problem.name}: max_evals must be non-negative, got {max_evals!r}")
        caps = np.floor(caps)
    return X, Y0, caps


class RowBudget:
    """Evaluations of a batch of lower-level problems, counted per row against per-row caps.

    Solvers ask :meth:`grant` how many points each row may evaluate, then pass exactly those to
    :meth:`evaluate`, which makes one ``ev.lower`` call for the whole batch. Besides the row caps it honours
    the evaluator's own remaining budget, if it has one.

    Parameters
    ----------
    ev : Evaluator
    X : ndarray, shape (n, ul_dim)
    caps : ndarray, shape (n,)
        Per-row caps (``inf`` for none).
    """

    def __init__(self, ev: Evaluator, X: np.ndarray, caps: np.ndarray):
        self.ev = ev
        self.X = X
        self.cap = caps
        self.used = np.zeros(X.shape[0], np.int64)
        self._n_constraints: int | None = None

    @property
    def n_constraints(self) -> int:
        """Constraint values per point.

        Taken from the first evaluation when possible: asking the problem before its count is known would make
        it evaluate an uncounted point to learn it.
        """
        if self._n_constraints is None:
            self._n_constraints = self.ev.problem.n_ll_constraints
        return self._n_constraints

    def left(self, rows) -> np.ndarray:
        """Evaluations the rows ``rows`` may still spend (float, ``inf`` without a cap)."""
        return self.cap[rows] - self.used[rows]

    def grant(self, rows: np.ndarray, want) -> np.ndarray:
        """How many of the ``want`` points (per row of ``rows``) may be evaluated now, as ints."""
        want = np.broadcast_to(np.asarray(want), rows.shape)
        allowed = np.minimum(want, self.left(rows)).astype(np.int64)
        remaining = self.ev.ll_remaining
        if allowed.sum() > remaining:
            # The evaluator's global budget is shorter than the row caps: the first rows get what is left.
            before = np.cumsum(allowed) - allowed
            allowed = np.clip(int(remaining) - before, 0, allowed)
        return allowed

    def can_spend(self, row: int, k: int) -> bool:
        """Whether row ``row`` may evaluate ``k`` more points now (its cap and the global budget allow it);
        ``grant`` for one row, without its array work (a local search asks before every evaluation)."""
        return k <= self.cap[row] - self.used[row] and k <= self.ev.ll_remaining

    def evaluate_row(self, row: int, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Evaluate the points ``Y`` (k, ll_dim), all of row ``row``, in one call; see :meth:`evaluate`."""
        k = Y.shape[0]
        if self.used[row] + k > self.cap[row]:
            raise RuntimeError("lower-level solver asked for evaluations beyond a row's cap")  # a solver bug
        result = self.ev.lower(np.repeat(self.X[row:row + 1], k, axis=0), Y)
        self.used[row] += k
        return result.values, self._constraint_columns(result), result.cv

    def evaluate(self, rows: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Evaluate the points ``Y`` (k, ll_dim), point j belonging to row ``rows[j]``, in one call.

        Returns
        -------
        f : ndarray, shape (k,)
        g : ndarray, shape (k, n_ll_constraints)
        cv : ndarray, shape (k,)
            ``inf`` for failed points, also when the problem has no constraints.
        """
        k = rows.shape[0]
        if k == 0:
            return np.empty(0), np.empty((0, self._n_constraints or 0)), np.empty(0)
        counts = np.bincount(rows, minlength=self.used.shape[0])
        if np.any(self.used + counts > self.cap):
            raise RuntimeError("lower-level solver asked for evaluations beyond a row's cap")  # a solver bug
        result = self.ev.lower(self.X[rows], Y)
        self.used += counts
        return result.values, self._constraint_columns(result), result.cv

    def _constraint_columns(self, result) -> np.ndarray:
        """The constraint values (k, n_constraints) of an evaluation; learns the count from the first one."""
        g = result.constraints
        if self._n_constraints is None:
            if not result.failed.all():
                self._n_constraints = g.shape[1]
        elif g.shape[1] != self._n_constraints:
            # A batch that failed as a whole before the problem knew its constraint count comes back with no
            # constraint columns; its points are infeasible in every column.
            g = np.full((g.shape[0], self._n_constraints), np.inf)
        return g

    def fallback_points(self, Y0: np.ndarray | None) -> np.ndarray:
        """(n, ll_dim) points to report for rows without evaluation: the first warm start, else the centre."""
        lo, hi = self.ev.problem.ll_bounds
        Y = np.tile(0.5 * (lo + hi), (self.X.shape[0], 1))
        if Y0 is not None:
            valid = ~np.isnan(Y0[:, :, 0])
            has = valid.any(axis=1)
            first = np.argmax(valid, axis=1)
            Y[has] = Y0[has, first[has]]
        return Y
