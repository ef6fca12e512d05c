"""Shared parts of the lower-level solvers: the result record, the solver interface, the check of its arguments
and the feasibility-first comparison (per-row budgets are :class:`evobilevel.budget.RowBudget`).

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
from ..integrality import integer_mask, round_integral

__all__ = ["LowerSolution", "LowerSolver", "better", "rank", "prepare", "join_parts"]


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
    curvature : ndarray, shape (n, ll_dim)
        Each variable's curvature of f that a local refinement learnt at the row's answer (the diagonal of its
        quasi-Newton model), NaN where none was learnt; a refinement of a nearby problem can start from it
        (:meth:`~evobilevel.lower.refinement.Refinement.solve`). All NaN when omitted.
    """

    Y: np.ndarray
    f: np.ndarray
    cv: np.ndarray
    success: np.ndarray
    n_evals: np.ndarray
    curvature: np.ndarray | None = None

    def __post_init__(self):
        if self.curvature is None:
            self.curvature = np.full(np.shape(self.Y), np.nan)

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

    def split(self, sizes: list[int]) -> list[LowerSolution]:
        """The rows in consecutive solutions of ``sizes`` rows each (the inverse of :meth:`concat`)."""
        ends = np.cumsum(sizes)
        return [self.take(slice(end - n, end)) for n, end in zip(sizes, ends)]

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


_FIELDS = ("Y", "f", "cv", "success", "n_evals", "curvature")


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
        Warm starts clipped into the lower-level bounds (and rounded in integer variables); rows without one
        are NaN.
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
        Y0 = round_integral(np.clip(Y0, lo, hi), integer_mask(problem))  # NaN stays NaN
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


def join_parts(ev: Evaluator, parts: list[tuple]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, list[int]]:
    """The arguments of the parts of a ``solve_parts`` call (``(X, rng, Y0, max_evals, ...)`` each), validated as
    :func:`prepare` validates them and stacked.

    Returns
    -------
    X : ndarray, shape (N, ul_dim)
    Y0 : ndarray, shape (N, k, ll_dim), or None
        NaN where a part has no warm starts or fewer than the most; None where no part has any.
    caps : ndarray of float, shape (N,)
    sizes : list of int
        Each part's number of rows.
    """
    prepared = [prepare(ev, part[0], part[2], part[3]) for part in parts]
    sizes = [X.shape[0] for X, _, _ in prepared]
    Y0 = _joined_starts([Y0 for _, Y0, _ in prepared], sizes, ev.problem.ll_dim)
    return (np.concatenate([X for X, _, _ in prepared]), Y0, np.concatenate([caps for _, _, caps in prepared]),
            sizes)


def _joined_starts(parts: list, sizes: list[int], d: int) -> np.ndarray | None:
    """The warm starts of several parts (each (n_i, k_i, d) or None) as one array (sum n_i, max k_i, d), NaN where
    a part has none or fewer; None where no part has any."""
    k = max((Y0.shape[1] for Y0 in parts if Y0 is not None), default=0)
    if k == 0:
        return None
    out = np.full((sum(sizes), k, d), np.nan)
    first = 0
    for Y0, n in zip(parts, sizes):
        if Y0 is not None:
            out[first:first + n, :Y0.shape[1]] = Y0
        first += n
    return out
