"""Local search for lower levels with integer variables (see :mod:`evobilevel.integrality`).

- Every variable integer: a neighbourhood search on the integer lattice. The points one step up or down in one
  variable are the neighbours; each row's neighbours (all rows in one evaluator call) are evaluated, and the best
  one, if it is better by Deb's rules, becomes the row's point. The search ends at a point no neighbour of which
  is better: a local optimum of the lattice, which counts as converged.
- Some variables integer: the continuous ones are refined by :class:`~evobilevel.lower.local.LocalRefinement` with
  the integer ones held fixed; then the integer neighbours (continuous variables kept) are tried, and a better one
  starts another round. A row has converged when its refinement converged and no integer neighbour is better.

Either way the integer variables only ever take whole numbers: no point between two of them is evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..budget import RowBudget
from ..evaluator import Evaluator
from ..integrality import integer_mask, lattice, round_integral
from .base import LowerSolution, LowerSolver, better, prepare, rank

__all__ = ["refine_integer", "HeldIntegers", "enumerate_lattice", "LatticeEnumeration"]

#: Rounds of "refine the continuous variables, then try the integer neighbours" per row at most: each round that
#: moves changes an integer variable by one, and a refinement from a warm start rarely needs more than a few.
MAX_MIXED_ROUNDS = 10
#: Points per evaluator call when a lattice is enumerated.
LATTICE_BATCH = 4096


def refine_integer(local, budget: RowBudget, rows: np.ndarray, starts: np.ndarray, values, mask: np.ndarray,
                   verify: bool = True):
    """Local search on ``rows`` of ``budget`` from ``starts`` (r, ll_dim), integer where ``mask`` (ll_dim,) says.

    Parameters
    ----------
    local : LocalRefinement
        Refines the continuous variables (its ``maxiter`` also caps the moves of a lattice search).
    budget : RowBudget
    rows : ndarray of int, shape (r,)
    starts : ndarray, shape (r, ll_dim)
        Rounded to whole numbers in the integer variables first.
    values : StartValues or None
        What is known at the starts.
    mask : ndarray of bool, shape (ll_dim,)
    verify : bool
        Passed to the refinement of the continuous variables.

    Returns
    -------
    Y : ndarray, shape (r, ll_dim)
    f, cv : ndarray, shape (r,)
    converged : ndarray of bool, shape (r,)
        A local optimum was reached (see the module's description).
    """
    lo, hi = budget.ev.problem.ll_bounds
    points = _Points(budget, rows, round_integral(np.clip(np.asarray(starts, dtype=float), lo, hi), mask), values)
    if mask.all():
        converged = _lattice_search(points, mask, local.maxiter)
    else:
        converged = _mixed_search(local, points, mask, verify)
    return points.Y, points.f, points.cv, converged


class _Points:
    """The current point of each row of a search, with its values (inf where unknown): Y (r, d), f, cv (r,),
    g (r, m)."""

    def __init__(self, budget: RowBudget, rows: np.ndarray, Y: np.ndarray, values):
        self.budget, self.rows, self.Y = budget, rows, Y
        r = rows.shape[0]
        self.f, self.cv = np.full(r, np.inf), np.full(r, np.inf)
        known = np.zeros(r, bool) if values is None else values.known.copy()
        todo = np.flatnonzero(~known)
        todo = todo[budget.grant(rows[todo], 1) > 0]
        f, g, cv = budget.evaluate(rows[todo], Y[todo])  # one call (nothing when every start is known)
        m = values.g.shape[1] if values is not None and known.any() else budget.n_constraints
        self.g = np.full((r, m), np.inf)
        if values is not None and known.any():
            self.f[known], self.g[known], self.cv[known] = values.f[known], values.g[known], values.cv[known]
        self.f[todo], self.g[todo], self.cv[todo] = f, g, cv

    @property
    def evaluated(self) -> np.ndarray:
        return np.isfinite(self.f) | np.isfinite(self.cv)

    def take(self, idx: np.ndarray, Y: np.ndarray, f, g, cv) -> None:
        self.Y[idx], self.f[idx], self.g[idx], self.cv[idx] = Y, f, g, cv


def _lattice_search(points: _Points, mask: np.ndarray, max_moves: int) -> np.ndarray:
    """Best-neighbour moves on the integer lattice, in place; whether each row ended at a local optimum."""
    converged = np.zeros(points.rows.shape[0], bool)
    active = points.evaluated
    for _ in range(max_moves):
        idx = np.flatnonzero(active)
        if not idx.size:
            break
        moved, complete = _neighbour_step(points, idx, mask)
        converged[idx] = complete & ~moved
        active[idx] = moved
    return converged


def _mixed_search(local, points: _Points, mask: np.ndarray, verify: bool) -> np.ndarray:
    """Rounds of continuous refinement and integer neighbour moves, in place; whether each row converged."""
    from .local import StartValues

    budget, rows = points.budget, points.rows
    converged = np.zeros(rows.shape[0], bool)
    active = np.ones(rows.shape[0], bool)
    held = HeldIntegers(budget.ev.problem, mask)
    continuous = np.flatnonzero(~mask)
    for _ in range(MAX_MIXED_ROUNDS):
        idx = np.flatnonzero(active)
        if not idx.size:
            break
        part = held.budget(budget, points.Y[idx], rows[idx])
        # A point whose constraint values are not at hand is evaluated again by the refinement's first gradient.
        known = points.evaluated[idx] & np.isfinite(points.g[idx]).all(axis=1)
        start = StartValues(known, points.f[idx], points.g[idx], points.cv[idx])
        Yc, fc, cvc, refined, _ = local.refine(part, rows[idx], points.Y[idx][:, continuous], start, verify)
        budget.used += part.used
        take = better(fc, cvc, points.f[idx], points.cv[idx])
        Y = points.Y[idx[take]]
        Y[:, continuous] = Yc[take]
        # The refinement does not return g: the neighbour step needs none, and the next round evaluates it again.
        points.take(idx[take], Y, fc[take], np.full((int(take.sum()), points.g.shape[1]), np.inf), cvc[take])
        moved, complete = _neighbour_step(points, idx, mask)
        converged[idx] = refined & complete & ~moved
        active[idx] = moved
    return converged


def _neighbour_step(points: _Points, idx: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate the integer neighbours of the rows ``idx`` (one step in one integer variable, within the bounds)
    and move each row to its best neighbour where that is better; in place.

    Returns
    -------
    moved : ndarray of bool, shape (len(idx),)
    complete : ndarray of bool, shape (len(idx),)
        Every neighbour of the row was evaluated (the budget allowed it).
    """
    budget, rows = points.budget, points.rows[idx]
    lo, hi = budget.ev.problem.ll_bounds
    unit = np.eye(mask.shape[0])[mask]
    N = points.Y[idx][:, None, :] + np.vstack([unit, -unit])[None, :, :]  # (a, 2k, d)
    inside = np.all((N >= lo) & (N <= hi), axis=2)
    complete = budget.grant(rows, inside.sum(axis=1)) == inside.sum(axis=1)
    inside &= complete[:, None]  # a row that cannot pay for all its neighbours stops here
    f_n, cv_n = np.full(inside.shape, np.inf), np.full(inside.shape, np.inf)
    g_n = np.full((*inside.shape, points.g.shape[1]), np.inf)
    a, k = np.nonzero(inside)
    if a.size:
        f_n[a, k], g_n[a, k], cv_n[a, k] = budget.evaluate(rows[a], N[a, k])
    best = rank(f_n, cv_n)[:, 0]
    ar = np.arange(idx.size)
    moved = inside[ar, best] & better(f_n[ar, best], cv_n[ar, best], points.f[idx], points.cv[idx])
    j, b = ar[moved], best[moved]
    points.take(idx[moved], N[j, b], f_n[j, b], g_n[j, b], cv_n[j, b])
    return moved, complete


class HeldIntegers:
    """A lower level whose integer variables are held fixed, as a problem in its continuous variables alone.

    The held values travel as extra upper-level variables, so that one batch can hold each row at its own
    values: the view's ``x`` is ``(x, y_integer)`` and its ``y`` is ``y_continuous``. Its evaluations are the
    original problem's, counted where the evaluator it is used with counts them.

    Parameters
    ----------
    problem : Problem
    mask : ndarray of bool, shape (ll_dim,)
        The integer variables.
    """

    def __init__(self, problem, mask: np.ndarray):
        self.problem, self.mask = problem, mask
        self.name = problem.name
        lo, hi = problem.ll_bounds
        self.ll_bounds = (lo[~mask], hi[~mask])
        self.ul_dim = problem.ul_dim + int(mask.sum())
        self.ll_dim = int((~mask).sum())

    @property
    def n_ll_constraints(self) -> int:
        return self.problem.n_ll_constraints

    def check_points(self, X, Y) -> tuple[np.ndarray, np.ndarray]:
        from ..problem import Problem

        return Problem.check_points(self, X, Y)

    def evaluate_batch(self, level: str, X: np.ndarray, Y: np.ndarray, log=None):
        """The original problem's ``level`` at the points these stand for."""
        d = self.problem.ul_dim
        full = np.empty((X.shape[0], self.mask.shape[0]))
        full[:, self.mask] = X[:, d:]
        full[:, ~self.mask] = Y
        return self.problem.evaluate_batch(level, X[:, :d], full, log)

    def budget(self, budget: RowBudget, Y: np.ndarray, rows: np.ndarray) -> RowBudget:
        """A row budget over this view for the rows of ``budget``, those of ``rows`` held at the integer values of
        ``Y`` (len(rows), ll_dim); its caps are what each row has left (add its ``used`` back when done)."""
        held = np.zeros((budget.X.shape[0], int(self.mask.sum())))
        held[rows] = Y[:, self.mask]
        ev = Evaluator(self, ul=budget.ev.ul, ll=budget.ev.ll)
        return RowBudget(ev, np.hstack([budget.X, held]), budget.cap - budget.used)


def enumerate_lattice(budget: RowBudget, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate every point of ``points`` (L, ll_dim) for every row of ``budget`` (whose caps must allow L each)
    and keep each row's best by Deb's rules.

    Returns
    -------
    Y : ndarray, shape (n, ll_dim)
    f, cv : ndarray, shape (n,)
    """
    n, L = budget.X.shape[0], points.shape[0]
    f_all, cv_all = np.empty((n, L)), np.empty((n, L))
    rows_per_call = max(1, LATTICE_BATCH // L)
    for start in range(0, n, rows_per_call):
        rows = np.arange(start, min(n, start + rows_per_call))
        f, _, cv = budget.evaluate(np.repeat(rows, L), np.tile(points, (rows.size, 1)))
        f_all[rows], cv_all[rows] = f.reshape(rows.size, L), cv.reshape(rows.size, L)
    best = rank(f_all, cv_all)[:, 0]
    ar = np.arange(n)
    return points[best].copy(), f_all[ar, best], cv_all[ar, best]


@dataclass
class LatticeEnumeration(LowerSolver):
    """Every point of an all-integer lower level, evaluated: the exact optimum of each row (a check for small
    lattices; every row's cap must allow the whole lattice)."""

    def solve(self, ev: Evaluator, X: np.ndarray, rng: np.random.Generator, Y0: np.ndarray | None = None,
              max_evals: np.ndarray | int | None = None) -> LowerSolution:
        """See :class:`~evobilevel.lower.base.LowerSolver`; ``rng`` and ``Y0`` are not needed."""
        X, _, caps = prepare(ev, X, None, max_evals)
        mask = integer_mask(ev.problem)
        if mask is None or not mask.all():
            raise ValueError(f"{ev.problem.name}: LatticeEnumeration needs every lower-level variable integer")
        budget = RowBudget(ev, X, caps)
        Y, f, cv = enumerate_lattice(budget, lattice(ev.problem.ll_bounds))
        return LowerSolution(Y=Y, f=f, cv=cv, success=cv <= 0, n_evals=budget.used.copy())
