"""Local refinement of lower-level points with scipy's quasi-Newton methods and batched finite differences.

Each row runs one ``scipy.optimize.minimize``: L-BFGS-B with the box bounds when the lower level has no
constraints, SLSQP with the bounds and ``g(x, y) <= 0`` when it has. Gradients are forward differences whose
d (or d + 1) points are evaluated in one ``ev.lower`` call, so a gradient costs one evaluator call. Used to
polish the result of a global search and to verify a warm start cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, minimize, nnls

from ..blas import single_blas_thread
from ..budget import BudgetExhausted, RowBudget
from ..differences import PENALTY, forward_steps
from ..evaluator import Evaluator
from ..integrality import integer_mask
from .base import LowerSolution, LowerSolver, better, prepare
from .integer import refine_integer

__all__ = ["LocalRefinement", "StartValues"]

# A constraint counts as active in the optimality check when g >= -_ACTIVE_TOL.
_ACTIVE_TOL = 1e-6


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


@dataclass
class LocalRefinement(LowerSolver):
    """Gradient-based local search per row, from the best warm start.

    ``success`` means that the returned point is feasible and that scipy reported convergence or the point
    passes a first-order (KKT) test: multipliers >= 0 of the active constraints and bounds cancel the
    finite-difference gradient of f up to ``gtol * max(1, |grad f|)``. The test is tried at the start first,
    so a warm start at the optimum is verified by one gradient (ll_dim + 1 evaluations in one call;
    2 * ll_dim + 1 in two calls when only central differences show it, as on steep lower levels).

    Parameters
    ----------
    maxiter : int
        Iterations of L-BFGS-B / SLSQP per row.
    ftol : float
        Stopping tolerance on the change of f, absolute: scipy sees f minus its value at the start.
    gtol : float
        Tolerance of the first-order test; also L-BFGS-B's projected-gradient tolerance.
    fd_step : float
        Forward-difference step as a fraction of each variable's range; the step is flipped to stay in bounds.
    constraint_margin : float
        SLSQP is given ``g + margin <= 0`` so that its final point satisfies ``g <= 0`` exactly rather than
        within rounding; the objective changes by about ``margin * |grad f|``.
    evaluate_starts : bool
        With several warm starts per row, evaluate them all (one batch) and start from the best; otherwise
        start from the first one present.
    """

    maxiter: int = 100
    ftol: float = 1e-10
    gtol: float = 1e-5
    fd_step: float = 1e-9
    constraint_margin: float = 1e-9
    evaluate_starts: bool = True

    def solve(
        self,
        ev: Evaluator,
        X: np.ndarray,
        rng: np.random.Generator,
        Y0: np.ndarray | None = None,
        max_evals: np.ndarray | int | None = None,
    ) -> LowerSolution:
        """Refine from the warm starts (a uniform random point for rows without); see :class:`LowerSolver`."""
        X, Y0, caps = prepare(ev, X, Y0, max_evals)
        budget = RowBudget(ev, X, caps)
        rows = np.arange(X.shape[0])
        starts, values = self._starts(budget, Y0, rng)
        Y, f, cv, converged = self.refine(budget, rows, starts, values)
        return LowerSolution(Y=Y, f=f, cv=cv, success=converged & (cv <= 0), n_evals=budget.used.copy())

    def _starts(self, budget: RowBudget, Y0, rng) -> tuple[np.ndarray, StartValues]:
        """(n, ll_dim) start points and whatever is known about them."""
        lo, hi = budget.ev.problem.ll_bounds
        n, d = budget.X.shape[0], lo.shape[0]
        values = StartValues.unknown(n, 0)
        starts = lo + rng.random((n, d)) * (hi - lo)
        if Y0 is None:
            return starts, values
        valid = ~np.isnan(Y0[:, :, 0])  # (n, k)
        has = valid.any(axis=1)
        first = np.argmax(valid, axis=1)
        starts[has] = Y0[has, first[has]]
        if not self.evaluate_starts or Y0.shape[1] == 1:
            return starts, values
        # Several candidates: evaluate the first `granted` present ones of each row in one batch.
        several = np.flatnonzero(valid.sum(axis=1) > 1)
        granted = budget.grant(several, valid[several].sum(axis=1))
        rank_in_row = np.cumsum(valid[several], axis=1) - 1
        chosen = valid[several] & (rank_in_row < granted[:, None])  # (len(several), k)
        pick_rows, pick_k = np.nonzero(chosen)
        rows = several[pick_rows]
        f, g, cv = budget.evaluate(rows, Y0[rows, pick_k])
        values = StartValues.unknown(n, g.shape[1])
        for j in range(rows.shape[0]):
            r = rows[j]
            if not values.known[r] or better(f[j], cv[j], values.f[r], values.cv[r]):
                values.known[r] = True
                values.f[r], values.g[r], values.cv[r] = f[j], g[j], cv[j]
                starts[r] = Y0[r, pick_k[j]]
        return starts, values

    def refine(
        self,
        budget: RowBudget,
        rows: np.ndarray,
        starts: np.ndarray,
        values: StartValues | None = None,
        verify: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Run the local search on ``rows`` of ``budget`` from ``starts`` (len(rows), ll_dim).

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

        Where the lower level has integer variables, the search is :func:`~evobilevel.lower.integer.refine_integer`
        (integer variables moved by whole steps only).

        Returns
        -------
        Y : ndarray, shape (r, ll_dim)
            Best point seen per row (the start if nothing could be evaluated).
        f, cv : ndarray, shape (r,)
        converged : ndarray of bool, shape (r,)
        """
        mask = integer_mask(budget.ev.problem)
        if mask is not None:
            return refine_integer(self, budget, rows, starts, values, mask, verify)
        lo, hi = budget.ev.problem.ll_bounds
        steps = self.fd_step * (hi - lo)
        out_Y = np.array(starts, dtype=float)
        out_f = np.full(rows.shape[0], np.inf)
        out_cv = np.full(rows.shape[0], np.inf)
        converged = np.zeros(rows.shape[0], bool)
        with single_blas_thread():
            for i, row in enumerate(rows):
                known = None
                if values is not None and values.known[i]:
                    known = (values.f[i], values.g[i], values.cv[i])
                y0 = np.clip(starts[i], lo, hi)
                target = _RowTarget(budget, int(row), lo, hi, steps, self.constraint_margin, y0, known)
                converged[i] = self._search(target, y0, verify)
                if target.best_y is not None:
                    out_Y[i], out_f[i], out_cv[i] = target.best_y, target.best_f, target.best_cv
        return out_Y, out_f, out_cv, converged

    def _search(self, target: _RowTarget, y0: np.ndarray, verify: bool) -> bool:
        """Run scipy on one row from y0; whether it converged. The best point seen stays in ``target``."""
        try:
            # The gradient at the start first: if the start is already a feasible first-order point (a warm
            # start at the optimum), that one evaluator call verifies it. Otherwise scipy reuses it.
            target.gradients(y0)
        except BudgetExhausted:
            try:
                target.values(y0)  # not enough left for a gradient: at least report the start's values
            except BudgetExhausted:
                pass
            return False
        if target.best_cv <= 0 and target.stationary(self.gtol, verify):
            return True
        lo, hi = target.lo, target.hi
        try:
            # Asked after the first evaluation, so that the problem knows its constraint count by then.
            if target.budget.n_constraints > 0:
                result = minimize(
                    target.fun,
                    y0,
                    jac=target.jac,
                    method="SLSQP",
                    bounds=Bounds(lo, hi),
                    constraints=[{"type": "ineq", "fun": target.con, "jac": target.con_jac}],
                    options={"maxiter": self.maxiter, "ftol": self.ftol},
                )
            else:
                result = minimize(
                    target.fun_and_jac,
                    y0,
                    jac=True,
                    method="L-BFGS-B",
                    bounds=Bounds(lo, hi),
                    options={"maxiter": self.maxiter, "ftol": self.ftol, "gtol": self.gtol},
                )
        except BudgetExhausted:
            return target.stationary(self.gtol, verify=False)
        # With finite differences scipy often ends on a failed line search at a point that is optimal up to
        # the gradient noise; the first-order test on the forward slopes accepts those.
        return bool(result.success) or target.stationary(self.gtol, verify=False)


class _RowTarget:
    """One row's objective and constraints for scipy.

    Evaluates through the row budget, caches values and slopes of recent points (scipy asks for f, g and their
    gradients at the same point separately) and keeps the best point seen by Deb's rules.
    """

    def __init__(self, budget: RowBudget, row: int, lo, hi, steps, margin: float, start, known=None):
        self.budget = budget
        self.row = int(row)
        self.lo, self.hi = lo, hi
        self.steps = steps
        self.margin = margin
        self.cache: dict[bytes, tuple] = {}
        self.slopes: dict[bytes, tuple] = {}
        self.offset: float | None = None
        self.best_y = None
        self.best_f = np.inf
        self.best_cv = np.inf
        if known is not None:
            # The start point's values came with it: no need to evaluate it again.
            f, g, cv = known
            self.best_y, self.best_f, self.best_cv = start.copy(), f, cv
            self._remember(start, f, g)

    # ------------------------------------------------------------ evaluations
    def _evaluate(self, Y: np.ndarray):
        f, g, cv = self.budget.evaluate_row(self.row, Y)  # BudgetExhausted at the row's cap ends its search
        for j in range(Y.shape[0]):
            if self.best_y is None or better(f[j], cv[j], self.best_f, self.best_cv):
                self.best_y, self.best_f, self.best_cv = Y[j].copy(), f[j], cv[j]
        return f, g, cv

    def _remember(self, y: np.ndarray, f, g) -> None:
        _put(self.cache, y.tobytes(), (f, g))

    def values(self, y: np.ndarray) -> tuple[float, np.ndarray]:
        """f and g at y (ll_dim,), evaluated unless cached."""
        y = np.clip(y, self.lo, self.hi)
        key = y.tobytes()
        if key not in self.cache:
            f, g, _ = self._evaluate(y[None, :])
            self._remember(y, f[0], g[0])
        return self.cache[key]

    def gradients(self, y: np.ndarray):
        """f, g and their forward-difference gradients at y: (float, (m,), (d,), (m, d)).

        One evaluator call (a second one only when a neighbour failed); none when y's slopes are known (SLSQP
        asks for the objective's and the constraints' gradients at the same point separately).
        """
        y = np.clip(y, self.lo, self.hi)
        key = y.tobytes()
        if key in self.slopes:
            return self.slopes[key][:4]
        h = forward_steps(y, self.steps, self.hi)
        shifted = y + np.diag(h)
        if key in self.cache:
            f_shift, g_shift, _ = self._evaluate(shifted)
            f0, g0 = self.cache[key]
        else:
            f_all, g_all, _ = self._evaluate(np.vstack([y[None, :], shifted]))
            f0, g0 = f_all[0], g_all[0]
            f_shift, g_shift = f_all[1:], g_all[1:]
            self._remember(y, f0, g0)
        failed = np.flatnonzero(~np.isfinite(f_shift) & np.isfinite(f0))
        if failed.size:
            # A neighbour failed (y is next to a failing region): try the other side, in one more call.
            h = h.copy()
            h[failed] = -h[failed]
            try:
                f_back, g_back, _ = self._evaluate(np.clip(y + np.diag(h)[failed], self.lo, self.hi))
                f_shift, g_shift = f_shift.copy(), g_shift.copy()
                f_shift[failed], g_shift[failed] = f_back, g_back
            except BudgetExhausted:
                pass
        with np.errstate(invalid="ignore", divide="ignore"):
            df = (f_shift - f0) / h
            dg = ((g_shift - g0) / h[:, None]).T
        # A failed neighbour (or a zero-width variable) gives no slope information in that direction.
        df = np.where(np.isfinite(df), df, 0.0)
        dg = np.where(np.isfinite(dg), dg, 0.0)
        _put(self.slopes, key, (f0, g0, df, dg, h))
        return f0, g0, df, dg

    def stationary(self, tol: float, verify: bool = True) -> bool:
        """Whether the best point is a first-order (KKT) point up to ``tol``; see :func:`_first_order`.

        Forward differences are tried first. Where they do not show it and ``verify`` is set, the slopes are
        computed if missing and refined to central differences (d more evaluations, one call): the forward
        error ``h f''/2`` hides the optimum of steep lower levels (SMD's ``tan`` near pi/2), the central one
        rarely does.
        """
        if self.best_y is None or not np.isfinite(self.best_f):
            return False
        y = self.best_y
        key = y.tobytes()
        try:
            if key not in self.slopes:
                if not verify:
                    return False
                self.gradients(y)
            f0, g0, df, dg, h = self.slopes[key]
            forward = _first_order(y, g0, df, dg, self.lo, self.hi, tol)
            if forward or not verify:
                return forward
            # Central differences: average the forward slopes with backward ones where y - h is in the box.
            inside = np.flatnonzero((y - h >= self.lo) & (y - h <= self.hi) & (h != 0))
            f_back, g_back, _ = self._evaluate(y - np.diag(h)[inside])
        except BudgetExhausted:
            return False
        with np.errstate(invalid="ignore"):
            back_df = (f0 - f_back) / h[inside]
            back_dg = ((g0 - g_back) / h[inside, None]).T
        df, dg = df.copy(), dg.copy()
        ok = np.isfinite(back_df)
        df[inside[ok]] = 0.5 * (df[inside[ok]] + back_df[ok])
        ok_g = np.isfinite(back_dg)
        dg_inside = dg[:, inside]
        dg[:, inside] = np.where(ok_g, 0.5 * (dg_inside + back_dg), dg_inside)
        return _first_order(y, g0, df, dg, self.lo, self.hi, tol)

    # ------------------------------------------------------- scipy adaptors
    def fun_and_jac(self, y):
        f, _, df, _ = self.gradients(y)
        return self._shifted(f), df

    def fun(self, y):
        return self._shifted(self.values(y)[0])

    def _shifted(self, f: float) -> float:
        """f minus its value at the start, as scipy sees it.

        L-BFGS-B's stopping test is relative to ``max(|f|, 1)``: an additive constant in f (terms that depend
        on x only) would stop it early. Shifting by the start value makes ``ftol`` an absolute tolerance.
        """
        if not np.isfinite(f):
            return PENALTY
        if self.offset is None:
            self.offset = float(f)
        return float(f) - self.offset

    def jac(self, y):
        return self.gradients(y)[2]

    def con(self, y):
        return np.clip(-(self.values(y)[1] + self.margin), -PENALTY, PENALTY)

    def con_jac(self, y):
        return -self.gradients(y)[3]


def _put(cache: dict, key: bytes, value, size: int = 16) -> None:
    """Insert into a small first-in-first-out cache."""
    if len(cache) >= size:
        del cache[next(iter(cache))]
    cache[key] = value


def _first_order(y, g, df, dg, lo, hi, tol: float) -> bool:
    """KKT test at y (ll_dim,) from its constraint values g (m,) and slopes df (d,), dg (m, d).

    True when multipliers >= 0 of the active constraints and bounds cancel the objective's slope up to
    ``tol * max(1, max |df|)`` (a nonnegative least-squares fit).
    """
    eps_bound = 1e-9 * (hi - lo)
    eye = np.eye(y.shape[0])
    # Gradients of the active inequalities, each written as c(y) <= 0: constraints near 0, then the bounds.
    A = np.vstack([dg[g >= -_ACTIVE_TOL], -eye[y <= lo + eps_bound], eye[y >= hi - eps_bound]]).T  # (d, k)
    if A.shape[1] == 0:
        residual = np.abs(df).max()
    else:
        multipliers, _ = nnls(A, -df)
        residual = np.abs(df + A @ multipliers).max()
    return bool(residual <= tol * max(1.0, np.abs(df).max()))
