"""Local refinement of lower-level points with scipy's quasi-Newton methods and batched finite differences.

Each row runs one ``scipy.optimize.minimize``: L-BFGS-B with the box bounds when the lower level has no
constraints, SLSQP with the bounds and ``g(x, y) <= 0`` when it has. Gradients are forward differences whose
d (or d + 1) points are evaluated in one ``ev.lower`` call, so a gradient costs one evaluator call. Used to
polish the result of a global search and to verify a warm start cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, minimize

from ..blas import single_blas_thread
from ..budget import BudgetExhausted, RowBudget
from ..differences import PENALTY, forward_steps
from .base import better
from .refinement import Refinement, StartValues, central_slopes, first_order

__all__ = ["LocalRefinement", "StartValues"]


@dataclass
class LocalRefinement(Refinement):
    """Gradient-based local search per row with scipy, from the best warm start.

    Each row runs L-BFGS-B when the lower level has no constraints, SLSQP with them. ``success`` means that the
    returned point is feasible and that scipy reported convergence or the point passes the first-order test of
    :func:`~evobilevel.lower.refinement.first_order`; the parameters are those of :class:`Refinement`, where
    ``maxiter`` counts scipy's iterations, ``gtol`` is also L-BFGS-B's projected-gradient tolerance, scipy sees f
    minus its value at the start (so that ``ftol`` is absolute) and SLSQP sees ``g + constraint_margin``.
    """

    def _refine(
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
        """One scipy search per row; see :meth:`Refinement.refine`. scipy's searches start from their own
        models, so ``curvature`` is not used, and none is returned (NaN); each searches all variables from the
        start, so ``determined`` is not used either; scipy ends a search by its own rules, so ``f_accept`` is not
        used."""
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
        return out_Y, out_f, out_cv, converged, np.full(out_Y.shape, np.nan)

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
        """Whether the best point is a first-order (KKT) point up to ``tol`` (:func:`.refinement.first_order`).

        Forward differences are tried first. Where they do not show it and ``verify`` is set, the slopes are
        computed if missing and refined to central differences (d more evaluations, one call): the forward
        error ``h f''/2`` hides the optimum of steep lower levels (SMD's ``tan`` near pi/2), the central one
        rarely does. Not where a forward neighbour beat the point: it is no local optimum then, whatever its
        central slopes would say.
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
            forward = first_order(y, g0, df, dg, self.lo, self.hi, tol)
            if forward or not verify or not np.array_equal(self.best_y, y):
                return forward
            # Central differences: average the forward slopes with backward ones where y - h is in the box.
            inside = np.flatnonzero((y - h >= self.lo) & (y - h <= self.hi) & (h != 0))
            f_back, g_back, _ = self._evaluate(y - np.diag(h)[inside])
        except BudgetExhausted:
            return False
        df, dg = central_slopes(f0, g0, df, dg, h, inside, f_back, g_back)
        return first_order(y, g0, df, dg, self.lo, self.hi, tol)

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

