"""What the local refinements of lower-level points share: their settings, the choice of the start point among a
row's warm starts, what is known at the starts, and the first-order (KKT) test that verifies a point.

:class:`~evobilevel.lower.local.LocalRefinement` runs one scipy search per row; :class:`~evobilevel.lower.lockstep.
LockstepRefinement` runs the searches of all rows together. Both are :class:`Refinement` subclasses that fill in
:meth:`Refinement.refine`.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from ..budget import ObjectiveBudget, RowBudget
from ..evaluator import Evaluator
from ..integrality import integer_mask
from .base import LowerSolution, LowerSolver, better, join_parts
from .integer import refine_integer

__all__ = ["Refinement", "StartValues", "first_order", "central_slopes", "ACTIVE_TOL"]

#: A constraint counts as active in the optimality check when g >= -ACTIVE_TOL.
ACTIVE_TOL = 1e-6


@dataclass
class StartValues:
    """Already known values at the start points, so that a refinement does not evaluate them again.

    Attributes
    ----------
    known : ndarray of bool, shape (n,)
    f : ndarray, shape (n,)
    g : ndarray, shape (n, n_ll_constraints)
    cv : ndarray, shape (n,)
    """

    known: np.ndarray
    f: np.ndarray
    g: np.ndarray
    cv: np.ndarray

    @classmethod
    def unknown(cls, n: int, n_constraints: int) -> StartValues:
        inf = np.full(n, np.inf)
        return cls(np.zeros(n, bool), inf.copy(), np.full((n, n_constraints), np.inf), inf.copy())

    def __getitem__(self, rows) -> StartValues:
        """The values of some rows (an index, mask or slice)."""
        return StartValues(self.known[rows], self.f[rows], self.g[rows], self.cv[rows])

    def __len__(self) -> int:
        return self.known.shape[0]

    @classmethod
    def concat(cls, parts: list[StartValues | None], sizes: list[int]) -> StartValues:
        """The parts' rows in order, ``sizes`` rows each; a part given as None knows none of its rows."""
        m = max((part.g.shape[1] for part in parts if part is not None), default=0)
        parts = [cls.unknown(n, m) if part is None or not part.known.any() else part for part, n in zip(parts, sizes)]
        if any(part.g.shape[1] != m for part in parts):
            raise ValueError(f"start values with {m} constraint values and with others cannot be joined")
        return cls(*(np.concatenate([getattr(part, name) for part in parts]) for name in ("known", "f", "g", "cv")))


@dataclass
class Refinement(LowerSolver):
    """A gradient-based local search per row, from the best warm start.

    ``success`` means that the returned point is feasible and that the search converged by its own rule or the
    point passes a first-order (KKT) test (:func:`first_order`), or, where the caller gave a value it accepts
    (``f_accept`` of :meth:`solve`) and the method can use it, that the point is feasible and at or below it. The
    test is tried at the start first, so a warm start at the optimum is verified by one gradient (ll_dim + 1
    evaluations in one call; 2 * ll_dim + 1 in two calls when only central differences show it, as on steep lower
    levels).

    Parameters
    ----------
    maxiter : int
        Quasi-Newton iterations per row.
    ftol : float
        Stopping tolerance on the change of f, absolute (f is compared with its value at the start).
    gtol : float
        Tolerance of the first-order test; also the tolerance on the projected gradient without constraints.
    fd_step : float
        Forward-difference step as a fraction of each variable's range; the step is flipped to stay in bounds.
    constraint_margin : float
        The search is given ``g + margin <= 0`` so that its final point satisfies ``g <= 0`` exactly rather than
        within rounding; the objective changes by about ``margin * |grad f|``.
    evaluate_starts : bool
        With several warm starts per row, evaluate them all (one batch) and start from the best; otherwise
        start from the first one present.
    objective_only : bool
        Minimise f over the box alone: the search sees no constraints (:class:`~evobilevel.budget.ObjectiveBudget`),
        starts from the warm start with the lowest f and returns the point with the lowest f it evaluated, with its
        real violation (``success`` then says that point is feasible and the search converged). Values known at the
        first warm starts (``first_values``) are not used.
    """

    maxiter: int = 100
    ftol: float = 1e-10
    gtol: float = 1e-5
    fd_step: float = 1e-9
    constraint_margin: float = 1e-9
    evaluate_starts: bool = True
    objective_only: bool = False

    def solve(
        self,
        ev: Evaluator,
        X: np.ndarray,
        rng: np.random.Generator,
        Y0: np.ndarray | None = None,
        max_evals: np.ndarray | int | None = None,
        curvature: np.ndarray | None = None,
        determined: np.ndarray | None = None,
        f_accept: np.ndarray | None = None,
        first_values: StartValues | None = None,
    ) -> LowerSolution:
        """Refine from the warm starts (a uniform random point for rows without); see :class:`LowerSolver`.

        ``curvature`` (n, ll_dim), optional: each variable's curvature of f learnt near each row's problem (a
        :attr:`LowerSolution.curvature` of a nearby one), NaN where unknown; the search's quasi-Newton model
        starts from it where the method can use it.

        ``determined`` (n, ll_dim) bool, optional: the variables whose optimal values each row's warm starts
        already hold (to a response model's accuracy); where the method can use it, the search moves the others
        alone first, then all of them (see :meth:`refine`).

        ``f_accept`` (n,), optional: a value of f per row that the caller accepts as optimal (a response model's
        prediction of the optimal value, with its tolerance); where the method can use it, a row's search ends at
        its first feasible point with f at or below it, without a convergence test (-inf or NaN: none).

        ``first_values`` (:class:`StartValues` of n rows), optional: f, g and cv already evaluated at each row's first
        warm start ``Y0[:, 0]`` where ``known`` (BLEAQ's prediction, evaluated before it was refined), used instead
        of evaluating that point again.
        """
        return self.solve_parts(ev, [(X, rng, Y0, max_evals, curvature, determined, f_accept, first_values)])[0]

    def solve_parts(self, ev: Evaluator, parts: list[tuple]) -> list[LowerSolution]:
        """Solve several batches of rows in one search, each part as :meth:`solve` would solve it alone.

        A row's search depends on its own start and values only, and each part draws its random starts from its
        own generator, so the results are those of one :meth:`solve` per part; the parts' points are evaluated
        together (fewer, larger batches).

        Parameters
        ----------
        ev : Evaluator
        parts : list of tuple
            ``(X, rng, Y0, max_evals)``, optionally followed by ``curvature``, ``determined``, ``f_accept`` and
            ``first_values``, per part, as the arguments of :meth:`solve`.

        Returns
        -------
        list of LowerSolution
            One per part, its rows in order.
        """
        parts = [tuple(part) + (None,) * (8 - len(part)) for part in parts]
        X, Y0, caps, sizes = join_parts(ev, parts)
        budget = (ObjectiveBudget if self.objective_only else RowBudget)(ev, X, caps)
        lo, hi = ev.problem.ll_bounds
        uniform = np.concatenate([lo + rng.random((n, lo.shape[0])) * (hi - lo)
                                  for n, (_, rng, *_) in zip(sizes, parts)])
        first = None
        if not self.objective_only and any(part[7] is not None for part in parts):
            first = StartValues.concat([None if part[7] is None else _checked_values(ev, part[7], n, part[2])
                                        for n, part in zip(sizes, parts)], sizes)
        starts, values = self._starts(budget, Y0, uniform, first)
        d = lo.shape[0]
        known = _joined(parts, sizes, 4, lambda n: np.full((n, d), np.nan), lambda C, n: _checked_curvature(ev, C, n))
        if known is None:
            known = np.full((X.shape[0], d), np.nan)
        held = _joined(parts, sizes, 5, lambda n: np.zeros((n, d), bool), lambda D, n: _checked_determined(ev, D, n))
        accepted = _joined(parts, sizes, 6, lambda n: np.full(n, -np.inf), lambda A, n: _checked_accept(ev, A, n))
        Y, f, cv, converged, curvature = self.refine(budget, np.arange(X.shape[0]), starts, values, curvature=known,
                                                     determined=held, f_accept=accepted)
        if self.objective_only:
            cv = budget.violation_at_best()
        solution = LowerSolution(Y=Y, f=f, cv=cv, success=converged & (cv <= 0), n_evals=budget.used.copy(),
                                 curvature=curvature)
        return solution.split(sizes)

    def refine(
        self,
        budget: RowBudget,
        rows: np.ndarray,
        starts: np.ndarray,
        values: StartValues | None = None,
        verify: bool = True,
        curvature: np.ndarray | None = None,
        determined: np.ndarray | None = None,
        f_accept: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Run the local search on ``rows`` of ``budget`` from ``starts`` (len(rows), ll_dim).

        Where the lower level has integer variables, the search is :func:`~evobilevel.lower.integer.refine_integer`
        (integer variables moved by whole steps only; this refinement's own search for the continuous ones).

        Parameters
        ----------
        budget : RowBudget
        rows : ndarray of int, shape (r,)
            Rows of the budget's batch to refine.
        starts : ndarray, shape (r, ll_dim)
        values : StartValues, optional
            What is known at the starts, one entry per element of ``rows``.
        verify : bool
            Test the start for optimality with central differences when forward ones do not show it (ll_dim
            more evaluations): a warm start at the optimum of a steep lower level is then recognised without
            a search. Polishing, which starts near but not at an optimum, skips it.
        curvature : ndarray, shape (r, ll_dim), optional
            Each variable's curvature of f learnt near each row's problem, NaN where unknown (see
            :meth:`solve`).
        determined : ndarray of bool, shape (r, ll_dim), optional
            The variables whose optimal values each start already holds: a search that can use it moves the others
            alone first, so that their slopes cost no evaluations along the determined ones, and then all of them
            from where it got, so that the answer is tested (and, where a determined value was not quite right,
            searched) in every variable. Integer lower levels ignore it.
        f_accept : ndarray, shape (r,), optional
            The value of f each row's caller accepts as optimal (-inf: none): a search that can use it ends a row at
            its first feasible point at or below it, counted as converged. Integer lower levels ignore it.

        Returns
        -------
        Y : ndarray, shape (r, ll_dim)
            Best point seen per row (the start if nothing could be evaluated).
        f, cv : ndarray, shape (r,)
        converged : ndarray of bool, shape (r,)
        curvature : ndarray, shape (r, ll_dim)
            Each variable's curvature learnt by the search (:attr:`LowerSolution.curvature`), NaN where none.
        """
        mask = integer_mask(budget.ev.problem)
        if mask is not None:
            Y, f, cv, converged = refine_integer(self, budget, rows, starts, values, mask, verify)
            return Y, f, cv, converged, np.full(Y.shape, np.nan)
        return self._refine(budget, rows, starts, values, verify, curvature, determined, f_accept)

    @abstractmethod
    def _refine(self, budget: RowBudget, rows: np.ndarray, starts: np.ndarray, values: StartValues | None,
                verify: bool, curvature: np.ndarray | None = None, determined: np.ndarray | None = None,
                f_accept: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The search itself, over continuous variables; arguments and results as in :meth:`refine`."""

    def _starts(self, budget: RowBudget, Y0, uniform: np.ndarray, known_first: StartValues | None = None
                ) -> tuple[np.ndarray, StartValues]:
        """(n, ll_dim) start points and whatever is known about them: each row's best warm start, or its point of
        ``uniform`` (n, ll_dim) where it has none. ``known_first`` holds the values already known at the first warm
        starts, which are not evaluated again."""
        n = budget.X.shape[0]
        values = StartValues.unknown(n, 0)
        starts = uniform.copy()
        if Y0 is None:
            return starts, values
        present = ~np.isnan(Y0[:, :, 0])  # (n, k)
        has = present.any(axis=1)
        first = np.argmax(present, axis=1)
        starts[has] = Y0[has, first[has]]
        known = np.zeros(n, bool)
        if known_first is not None:
            known = known_first.known & present[:, 0]
            values = StartValues.unknown(n, known_first.g.shape[1])
            values.known[known] = True
            values.f[known], values.g[known], values.cv[known] = (known_first.f[known], known_first.g[known],
                                                                   known_first.cv[known])
        if not self.evaluate_starts or Y0.shape[1] == 1:
            return starts, values
        # Several candidates: evaluate the first `granted` present ones of each row in one batch. A start equal to
        # an earlier one of its row is the same point (BLEAQ's prediction where psi determines none of the
        # variables is the candidate's own vector), evaluated once, as the earlier one.
        several = np.flatnonzero(present.sum(axis=1) > 1)
        valid = present.copy()
        for j in range(1, Y0.shape[1]):
            for i in range(j):
                valid[:, j] &= ~(present[:, i] & (Y0[:, j] == Y0[:, i]).all(axis=1))
        valid[:, 0] &= ~known  # known already: compared with the others below, in its place
        granted = budget.grant(several, valid[several].sum(axis=1))
        rank_in_row = np.cumsum(valid[several], axis=1) - 1
        chosen = valid[several] & (rank_in_row < granted[:, None])  # (len(several), k)
        pick_rows, pick_k = np.nonzero(chosen)
        rows = several[pick_rows]
        f, g, cv = budget.evaluate(rows, Y0[rows, pick_k])
        if rows.size and values.g.shape[1] != g.shape[1]:
            if known.any():
                raise ValueError(f"{budget.ev.problem.name}: the first starts' known values have "
                                 f"{values.g.shape[1]} constraint values, the problem {g.shape[1]}")
            values = StartValues.unknown(n, g.shape[1])
        for j in range(rows.shape[0]):
            r = rows[j]
            if not values.known[r] or better(f[j], cv[j], values.f[r], values.cv[r]):
                values.known[r] = True
                values.f[r], values.g[r], values.cv[r] = f[j], g[j], cv[j]
                starts[r] = Y0[r, pick_k[j]]
        return starts, values


def _joined(parts: list[tuple], sizes: list[int], index: int, missing, checked) -> np.ndarray | None:
    """The hint at position ``index`` of the parts' tuples, joined row by row: ``checked(value, n)`` for a part that
    gives it, ``missing(n)`` for one that does not; None where no part gives it."""
    if all(part[index] is None for part in parts):
        return None
    return np.concatenate([missing(n) if part[index] is None else checked(part[index], n)
                           for n, part in zip(sizes, parts)])


def _checked_values(ev: Evaluator, values: StartValues, n: int, Y0) -> StartValues:
    """``values`` of the first warm starts of n rows, as given; a ValueError names a wrong length or values known
    where a row has no warm start."""
    if len(values) != n:
        raise ValueError(f"{ev.problem.name}: first_values must have {n} rows, got {len(values)}")
    if values.known.any() and (Y0 is None or np.isnan(np.asarray(Y0)[values.known, 0, 0]).any()):
        raise ValueError(f"{ev.problem.name}: first_values are known for rows without a first warm start")
    return values


def _checked_curvature(ev: Evaluator, curvature, n: int) -> np.ndarray:
    """``curvature`` as an (n, ll_dim) float array; a ValueError names a wrong shape, and values that are not
    positive and finite count as unknown (NaN)."""
    C = np.asarray(curvature, dtype=float)
    d = ev.problem.ll_dim
    if C.shape != (n, d):
        raise ValueError(f"{ev.problem.name}: curvature must have shape ({n}, {d}), got {C.shape}")
    return np.where(np.isfinite(C) & (C > 0), C, np.nan)


def _checked_determined(ev: Evaluator, determined, n: int) -> np.ndarray:
    """``determined`` as an (n, ll_dim) bool array; a ValueError names a wrong shape."""
    D = np.asarray(determined, dtype=bool)
    d = ev.problem.ll_dim
    if D.shape != (n, d):
        raise ValueError(f"{ev.problem.name}: determined must have shape ({n}, {d}), got {D.shape}")
    return D


def _checked_accept(ev: Evaluator, f_accept, n: int) -> np.ndarray:
    """``f_accept`` as an (n,) float array, NaN read as -inf (none); a ValueError names a wrong shape."""
    A = np.asarray(f_accept, dtype=float)
    if A.shape != (n,):
        raise ValueError(f"{ev.problem.name}: f_accept must have shape ({n},), got {A.shape}")
    return np.where(np.isnan(A), -np.inf, A)


def first_order(y, g, df, dg, lo, hi, tol: float) -> bool:
    """KKT test at y (ll_dim,) from its constraint values g (m,) and slopes df (d,), dg (m, d).

    True when multipliers >= 0 of the active constraints and bounds cancel the objective's slope up to
    ``tol * max(1, max |df|)`` (a nonnegative least-squares fit).
    """
    eps_bound = 1e-9 * (hi - lo)
    eye = np.eye(y.shape[0])
    # Gradients of the active inequalities, each written as c(y) <= 0: constraints near 0, then the bounds.
    A = np.vstack([dg[g >= -ACTIVE_TOL], -eye[y <= lo + eps_bound], eye[y >= hi - eps_bound]]).T  # (d, k)
    if A.shape[1] == 0:
        residual = np.abs(df).max()
    else:
        multipliers, _ = nnls(A, -df)
        residual = np.abs(df + A @ multipliers).max()
    return bool(residual <= tol * max(1.0, np.abs(df).max()))


def central_slopes(f0, g0, df, dg, h, inside, f_back, g_back) -> tuple[np.ndarray, np.ndarray]:
    """Forward slopes at a point averaged with backward ones into central differences.

    Parameters
    ----------
    f0 : float
        f at the point.
    g0 : ndarray, shape (m,)
    df : ndarray, shape (d,)
    dg : ndarray, shape (m, d)
        Forward slopes, with steps h (d,).
    h : ndarray, shape (d,)
    inside : ndarray of int, shape (k,)
        The variables whose backward point ``y - h_i e_i`` was evaluated.
    f_back : ndarray, shape (k,)
    g_back : ndarray, shape (k, m)
        Values at the backward points; a failed one leaves that variable's forward slope.

    Returns
    -------
    df : ndarray, shape (d,)
    dg : ndarray, shape (m, d)
    """
    with np.errstate(invalid="ignore"):
        back_df = (f0 - f_back) / h[inside]
        back_dg = ((g0 - g_back) / h[inside, None]).T
    df, dg = df.copy(), dg.copy()
    ok = np.isfinite(back_df)
    df[inside[ok]] = 0.5 * (df[inside[ok]] + back_df[ok])
    ok_g = np.isfinite(back_dg)
    dg_inside = dg[:, inside]
    dg[:, inside] = np.where(ok_g, 0.5 * (dg_inside + back_dg), dg_inside)
    return df, dg
