"""Lock-step local refinement: the local searches of all rows of a batch iterate together.

:class:`LockstepRefinement` does what :class:`~evobilevel.lower.local.LocalRefinement` does, but where that runs one
scipy search per row, here the searches of all rows advance in rounds, and every round is one evaluator call: the d
forward-difference points of each row that needs a gradient (with the point itself where its value is unknown), one
line-search trial for each row that is searching along a direction, and the backward points of the rows that try
central differences for the first-order test. A row stops on its own: when it converges, when it reaches a feasible
point at or below the value its caller accepts, when its line search fails with a fresh quasi-Newton model, or when
its budget cannot pay for its next round. Each row's arithmetic is its own (elementwise operations, reductions along
a row, one factorisation per row), so that a row follows the same path alone as in any batch.

Without lower-level constraints each row runs a projected limited-memory BFGS method for the box (Bertsekas'
two-metric projection): variables at a bound that the slope pushes outwards take diagonally scaled steepest-descent
steps, the others a quasi-Newton step on their own block, and the step is projected onto the box. The model starts
from a diagonal of each variable's own secant curvature rather than L-BFGS-B's one scale (SMD's ``tan`` terms make
curvatures differ by orders of magnitude). An Armijo line search on the values alone backtracks by quadratic
interpolation and extrapolates while f falls almost linearly (standing in for the curvature condition, which would
need slopes at every trial); without extrapolation it halves a step whose trial met a singularity (a value no
quadratic explains), such as a pole at the bound.

With constraints, an SQP method (Powell's, as SLSQP): a dense damped BFGS model of the Lagrangian's Hessian, a
quadratic subproblem per row with the linearised constraints and the box, solved as a least-distance programme by
nonnegative least squares (relaxed where the linearisation is inconsistent), and the same line search, without
extrapolation, on the L1 merit function with penalties above the multipliers.

References: D. P. Bertsekas, "Projected Newton methods for optimization problems with simple constraints", SIAM J.
Control Optim. 20(2):221-246, 1982; R. H. Byrd, J. Nocedal, R. B. Schnabel, "Representations of quasi-Newton
matrices and their use in limited memory methods", Math. Program. 63:129-156, 1994; M. J. D. Powell, "A fast
algorithm for nonlinearly constrained optimization calculations", Numerical Analysis, Lecture Notes in Mathematics
630:144-157, 1978; C. L. Lawson, R. J. Hanson, "Solving Least Squares Problems", SIAM, 1995, chapter 23
(least-distance programming).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from ..blas import single_blas_thread
from ..budget import RowBudget
from ..differences import PENALTY, forward_steps
from .base import better
from .refinement import Refinement, StartValues, central_slopes, first_order

__all__ = ["LockstepRefinement"]

# What a row does in its next round: evaluate the gradient at its iterate, one line-search trial, or the backward
# points of central differences at its iterate (for the first-order test).
_GRADIENT, _TRIAL, _CENTRAL = 0, 1, 2
_NONE = np.zeros(0, np.int64)
# Armijo's sufficient-decrease fraction of the predicted change, and the bracket of each backtracking step.
_ARMIJO = 1e-4
_SHRINK = (0.1, 0.5)
# Variables within this share of their range of a bound that the gradient pushes them against are held by their
# diagonal (Bertsekas' epsilon-active set; it shrinks with the projected gradient near a solution).
_BOUND_SHARE = 1e-3
# The merit function's penalties exceed the multipliers by this factor (at least), so that it sees the violation
# of a constraint that the step corrects (with the multiplier itself the merit is flat along its normal).
_PENALTY_FACTOR = 1.5
# A pair tells a variable's curvature when it moved the variable by more than _SECANT_STEPS difference steps, or
# when the variable's slope changed by more than _SECANT_NOISE times the rounding error of the two slopes: a steep
# variable near its optimum (SMD's ``tan`` walls) shows its curvature to within a per cent in a move of a few steps.
_SECANT_STEPS = 1e3
_SECANT_NOISE = 1e2
# A pair whose curvature along its step is this factor away from the model's diagonal is left out of the updates.
_STALE = 10.0
# The first trial step moves no variable of unknown curvature more than this share of its range.
_TRUST_SHARE = 0.01
# Weight of the relaxation variable of an inconsistent quadratic subproblem, relative to the model's curvature.
_RELAX_WEIGHT = 1e4


@dataclass
class LockstepRefinement(Refinement):
    """Gradient-based local search from the best warm start, all rows of a batch in lock step.

    The searches of all rows advance together, one evaluator call per round (a gradient or a line-search trial
    per active row); see :mod:`evobilevel.lower.lockstep` for the methods. ``success`` has the meaning of
    :class:`~evobilevel.lower.local.LocalRefinement`'s: the returned point is feasible and the row converged by
    its own rule or passes the first-order test (:func:`~evobilevel.lower.refinement.first_order`), which is
    tried at the start first, so that a warm start at the optimum costs one gradient.

    Own rules. Without constraints: the projected gradient is at most ``gtol`` (max norm); or an accepted step
    lowered f by at most ``ftol * max(1, |f - f_1|)`` (f_1: f after the first step), where a model built from earlier
    pairs must also see the first-order test pass at the new point or else start afresh; or a rejected step whose
    linear prediction is below that tolerance, with a fresh model or a passing first-order test; or a fresh model
    that finds no decrease after a used one predicted none above the tolerance (the resolution of the differences).
    With constraints (SLSQP's rules): the subproblem predicts a change of at most ``ftol`` (objective plus
    complementarity) at a point violating ``g + margin <= 0`` by at most ``ftol``, or an accepted step changed f (or
    moved y) by less than ``ftol`` and ends that close to feasible. A row whose line search fails otherwise gets the
    first-order test, with central differences where ``verify`` asks for them. Given ``f_accept``, a row also ends,
    converged, at its first feasible point at or below its value (a start, or a step as soon as its line search
    finds it), without the gradient that would test it.

    Parameters
    ----------
    maxiter, ftol, gtol, fd_step, constraint_margin, evaluate_starts
        As for :class:`~evobilevel.lower.refinement.Refinement`; ``maxiter`` counts quasi-Newton iterations
        (gradients after the start's).
    max_backtracks : int
        Line-search trials per iteration at most; a row whose line search fails resets its quasi-Newton model
        and tries once more, then stops.
    memory : int
        Pairs of steps and slope changes the limited-memory BFGS model keeps (L-BFGS-B's ``maxcor``).
    """

    max_backtracks: int = 20
    memory: int = 10

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
        """All rows' searches in lock step; see :meth:`Refinement.refine`. The box method's model starts from
        ``curvature`` where it is known and returns what it learnt; the SQP method's Lagrangian also curves with
        the constraints and their multipliers, which differ from one problem to the next, so it neither takes
        nor returns any. A row that stops before its search passes on the curvature it was given.

        The box method uses ``determined`` (:meth:`_free_first`); the SQP method does not, for the same reason:
        its search over all variables would start its model afresh, and pay again for what the first one learnt.
        """
        learnt = np.full(np.shape(starts), np.nan) if curvature is None else np.array(curvature, dtype=float)
        rows = np.asarray(rows)
        accept = np.full(rows.shape[0], -np.inf) if f_accept is None else np.asarray(f_accept, dtype=float)
        with single_blas_thread():
            # Where the constraint count is not known yet, asking for it could cost an uncounted evaluation: all
            # variables at once then.
            slopes = None
            if determined is not None and budget.known_n_constraints == 0:
                starts, values, learnt, slopes = self._free_first(budget, rows, starts, values,
                                                                  np.asarray(determined, bool), learnt, accept)
            state = _Rows(self, budget, rows, starts, values, verify, slopes, accept)
            central = state.start()
            if state.active.any():
                # Asked after the first evaluation, so that the problem knows its constraint count by then.
                if budget.n_constraints > 0:
                    _SQP(state).run(central)
                else:
                    search = _Box(state, learnt)
                    search.run(central)
                    learnt = search.model.curvature()
        if state.m > 0:
            learnt[:] = np.nan  # constrained: none taken, none returned
        return state.best_Y, state.best_F, state.best_CV, state.converged, learnt

    def _free_first(self, budget: RowBudget, rows: np.ndarray, starts: np.ndarray, values: StartValues | None,
                    determined: np.ndarray, curvature: np.ndarray, accept: np.ndarray
                    ) -> tuple[np.ndarray, StartValues | None, np.ndarray, _Slopes | None]:
        """The box method's first stage for rows whose starts hold the optimal values of some variables but not
        all (``determined`` (r, d)): those variables are held and the others searched alone, all rows that hold
        the same variables in one lock-step search. Returns the starts (r, d) for the search over all variables
        (each row's best point of this stage), their values, the curvature (r, d) learnt with what was given, and
        the forward slopes this stage measured at those starts (the free variables' of the rows whose stage ended
        at its last iterate with its gradient known there; None where no stage ran): the search over all variables
        measures only the others at its start.

        Where a response model predicts part of the follower's answer well (SMD's ``x_l1``, whose optimum does not
        depend on x) and the rest poorly (a cube root near zero, a ``tan`` near its pole), every gradient of a
        search over all variables pays for d forward points, of which only the free variables' tell it anything
        new; held, a gradient costs the free variables' points alone. The search over all variables that follows
        tests the answer in every direction (a determined value a little off is corrected there), and its model
        starts from the curvature this stage learnt. Its rows are not verified with central differences here: the
        second stage does that with all variables. A row that reaches its accepted value ``accept`` (r,) here ends
        at the second stage's start.
        """
        partial = determined.any(axis=1) & ~determined.all(axis=1)
        if not partial.any():
            return starts, values, curvature, None
        starts = np.array(starts, dtype=float)
        slopes = _Slopes.none(*starts.shape)
        values = StartValues.unknown(rows.shape[0], 0) if values is None else StartValues(
            values.known.copy(), values.f.copy(), values.g.copy(), values.cv.copy())
        curvature = curvature.copy()
        held_sets, group = np.unique(determined[partial], axis=0, return_inverse=True)
        partial_rows = np.flatnonzero(partial)
        for k, held in enumerate(held_sets):
            idx = partial_rows[group.ravel() == k]
            free = ~held
            block = np.ix_(idx, free)
            state = _Rows(self, _FreeVariables(budget, free, rows[idx], starts[idx]), rows[idx], starts[block],
                          values[idx], verify=False, accept=accept[idx])
            state.start()
            if state.active.any():
                search = _Box(state, curvature[block])
                search.run(_NONE)
                curvature[block] = search.model.curvature()
            starts[block] = state.best_Y
            values.known[idx] = state.seen & np.isfinite(state.best_F)
            values.f[idx], values.cv[idx] = state.best_F, state.best_CV
            # Slopes at the stage's last iterate hold at the row's start where that iterate is its best point.
            ended = state.sloped & (state.best_Y == state.Y).all(axis=1)
            at = np.ix_(idx[ended], free)
            slopes.known[at], slopes.DF[at], slopes.H[at] = True, state.DF[ended], state.H[ended]
        return starts, values, curvature, slopes


@dataclass
class _Slopes:
    """Forward slopes already measured at the starts of a search (``known`` (r, d)): ``DF`` (r, d) with their steps
    ``H`` (r, d), for followers without constraints."""

    known: np.ndarray
    DF: np.ndarray
    H: np.ndarray

    @classmethod
    def none(cls, n: int, d: int) -> _Slopes:
        return cls(np.zeros((n, d), bool), np.zeros((n, d)), np.zeros((n, d)))


class _FreeVariables:
    """A :class:`~evobilevel.budget.RowBudget` seen through some of the lower level's variables: its points hold
    the ``free`` ones, and each row's other variables keep their values in ``held`` (one row per row of
    ``rows``)."""

    def __init__(self, budget: RowBudget, free: np.ndarray, rows: np.ndarray, held: np.ndarray):
        self.budget, self.free = budget, free
        lo, hi = budget.ll_bounds
        self.ll_bounds = (lo[free], hi[free])
        self._held = np.zeros((budget.X.shape[0], held.shape[1]))  # indexed by the budget's rows
        self._held[rows] = held

    @property
    def n_constraints(self) -> int:
        return self.budget.n_constraints

    def grant(self, rows: np.ndarray, want) -> np.ndarray:
        return self.budget.grant(rows, want)

    def evaluate(self, rows: np.ndarray, Y: np.ndarray):
        """Evaluate the points Y (k, n_free), point j belonging to row ``rows[j]``, completed by their rows'
        held values."""
        full = self._held[rows]
        full[:, self.free] = Y
        return self.budget.evaluate(rows, full)


class _Rows:
    """The rows' iterates with their values and slopes, the best point seen per row, and their evaluations.

    Arrays are indexed by position in ``rows``: iterates ``Y`` (r, d) with values ``F``, ``CV`` (r,) and ``G``
    (r, m) where ``known``; forward slopes ``DF`` (r, d) and ``DG`` (r, m, d), with their steps ``H`` (r, d), where
    ``sloped``; the best point seen by Deb's rules ``best_Y``, ``best_F``, ``best_CV`` where ``seen`` (else the
    start). A row is ``active`` until it stops; ``converged`` says whether it converged, passed the test or reached
    the value its caller accepts (``accept`` (r,), -inf for none). The slopes ``reused`` (r, d) at a start came from
    an earlier stage (``slopes``) and are not measured there again.
    """

    def __init__(self, settings: LockstepRefinement, budget: RowBudget, rows, starts, values: StartValues | None,
                 verify: bool, slopes: _Slopes | None = None, accept: np.ndarray | None = None):
        self.s, self.budget, self.rows, self.verify = settings, budget, rows, verify
        self.lo, self.hi = budget.ll_bounds
        self.steps = settings.fd_step * (self.hi - self.lo)
        n, self.d = rows.shape[0], self.lo.shape[0]
        self.eye = np.eye(self.d)
        self.best_Y = np.array(starts, dtype=float)
        self.Y = np.clip(self.best_Y, self.lo, self.hi)
        self.m = 0 if values is None else values.g.shape[1]
        self.F, self.CV = np.full(n, np.inf), np.full(n, np.inf)
        self.G = np.full((n, self.m), np.inf)
        self.known, self.sloped, self.seen = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
        self.DF, self.H = np.zeros((n, self.d)), np.zeros((n, self.d))
        self.DG = np.zeros((n, self.m, self.d))
        # Slopes known at the starts (unconstrained followers only): the start's gradient measures the others.
        self.reused = np.zeros((n, self.d), bool)
        if slopes is not None and values is not None and self.m == 0:
            self.reused = slopes.known & values.known[:, None]
            self.DF[self.reused], self.H[self.reused] = slopes.DF[self.reused], slopes.H[self.reused]
        self.best_F, self.best_CV = np.full(n, np.inf), np.full(n, np.inf)
        self.active, self.converged = np.ones(n, bool), np.zeros(n, bool)
        self.accept = np.full(n, -np.inf) if accept is None else accept
        if values is not None:
            k = np.flatnonzero(values.known)
            self.known[k] = self.seen[k] = True
            self.F[k], self.G[k], self.CV[k] = values.f[k], values.g[k], values.cv[k]
            self.best_Y[k], self.best_F[k], self.best_CV[k] = self.Y[k], values.f[k], values.cv[k]

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, owner: np.ndarray, P: np.ndarray):
        """Evaluate the points P (k, d), point j for row ``owner[j]``, in one call; keeps the best points."""
        f, g, cv = self.budget.evaluate(self.rows[owner], P)
        if g.shape[1] != self.m:
            if self.m == 0 and np.isfinite(f).any():  # the first successful evaluation tells the count
                self.m = g.shape[1]
                self.G = np.full((self.G.shape[0], self.m), np.inf)
                self.DG = np.zeros((self.G.shape[0], self.m, self.d))
            else:  # all failed before the count was known
                g = np.full((g.shape[0], self.m), np.inf)
        # Per row the best of its points by (cv, f), the first of equals, as a point-by-point scan would keep it.
        order = np.lexsort((f, cv, owner))
        first = np.concatenate([[True], owner[order][1:] != owner[order][:-1]]) if order.size else order.astype(bool)
        j = order[first]
        i = owner[j]
        new = ~self.seen[i] | better(f[j], cv[j], self.best_F[i], self.best_CV[i])
        i, j = i[new], j[new]
        self.best_Y[i], self.best_F[i], self.best_CV[i], self.seen[i] = P[j], f[j], cv[j], True
        return f, g, cv

    def round(self, grad: np.ndarray, single: np.ndarray, S: np.ndarray, central: np.ndarray = _NONE):
        """One evaluator call: the gradients at the iterates of rows ``grad``, the points S (k, d), one for each row
        of ``single``, and the backward points at the iterates of rows ``central``. Stores the slopes (a second call
        only for failed neighbours). Returns S's f, g, cv and whether each central row passes the first-order test
        with central differences."""
        P, owner, take, H = self._gradient_points(grad)
        if central.size:
            inside = self.inside(central)
            back = (self.Y[central, None, :] - self.H[central, :, None] * self.eye)[inside]
            P, owner = np.vstack([P, S, back]), np.concatenate([owner, single, np.repeat(central, inside.sum(axis=1))])
        else:
            P, owner = np.vstack([P, S]), np.concatenate([owner, single])
        n, k = take.sum(), single.shape[0]
        f, g, cv = self.evaluate(owner, P)
        self._store_gradients(grad, take, H, f[:n], g[:n], cv[:n])
        passed = self._central_test(central, inside, f[n + k:], g[n + k:]) if central.size else _NONE.astype(bool)
        return f[n:n + k], g[n:n + k], cv[n:n + k], passed

    def _gradient_points(self, idx):
        """The iterate (where its values are unknown) and its d forward neighbours, per row of ``idx``."""
        Y = self.Y[idx]
        H = forward_steps(Y, self.steps, self.hi)
        blocks = np.concatenate([Y[:, None, :], Y[:, None, :] + H[:, :, None] * self.eye], axis=1)  # (k, d + 1, d)
        take = np.ones(blocks.shape[:2], bool)
        take[:, 0] = ~self.known[idx]
        take[:, 1:] = ~self.reused[idx]
        return blocks[take], np.repeat(idx, take.sum(axis=1)), take, H

    def _store_gradients(self, idx, take, H, f, g, cv) -> None:
        """Values at the iterates where they were unknown, and forward slopes, from the points of
        :meth:`_gradient_points`."""
        blocks = (idx.shape[0], self.d + 1)
        F, G, CV = np.full(blocks, np.inf), np.full(blocks + (self.m,), np.inf), np.full(blocks, np.inf)
        F[take], G[take], CV[take] = f, g, cv
        new = take[:, 0]
        self.F[idx[new]], self.G[idx[new]], self.CV[idx[new]] = F[new, 0], G[new, 0], CV[new, 0]
        self.known[idx] = True
        reused = self.reused[idx]
        # A reused slope's neighbour was not evaluated here, and did not fail: it is not tried on the other side.
        f_shift = np.where(reused, self.F[idx, None], F[:, 1:])
        f_shift, g_shift, H = self._retry_failed(idx, H, f_shift, G[:, 1:])
        with np.errstate(invalid="ignore", divide="ignore"):
            DF = np.where(reused, self.DF[idx], (f_shift - self.F[idx, None]) / H)
            DG = ((g_shift - self.G[idx, None, :]) / H[:, :, None]).transpose(0, 2, 1)
        H = np.where(reused, self.H[idx], H)
        self.reused[idx] = False
        # A failed neighbour (or a zero-width variable) gives no slope information in that direction.
        self.DF[idx] = np.where(np.isfinite(DF), DF, 0.0)
        self.DG[idx] = np.where(np.isfinite(DG), DG, 0.0)
        self.H[idx], self.sloped[idx] = H, True

    def _retry_failed(self, idx, H, f_shift, g_shift):
        """Where a neighbour failed next to a finite iterate (a failing region nearby), the other side, in one more
        call for all such rows that can pay for it."""
        failed = ~np.isfinite(f_shift) & np.isfinite(self.F[idx])[:, None]
        some = np.flatnonzero(failed.any(axis=1))
        if some.size == 0:
            return f_shift, g_shift, H
        want = failed[some].sum(axis=1)
        some = some[self.budget.grant(self.rows[idx[some]], want) >= want]
        if some.size == 0:
            return f_shift, g_shift, H
        redo = np.zeros_like(failed)
        redo[some] = failed[some]
        H = np.where(redo, -H, H)
        Y = self.Y[idx]
        points = np.clip(Y[:, None, :] + H[:, :, None] * self.eye, self.lo, self.hi)[redo]
        f_back, g_back, _ = self.evaluate(idx[np.nonzero(redo)[0]], points)
        f_shift, g_shift = f_shift.copy(), g_shift.copy()
        f_shift[redo], g_shift[redo] = f_back, g_back
        return f_shift, g_shift, H

    # ------------------------------------------------------------------ start and stop
    def start(self) -> np.ndarray:
        """The gradient at every start (or, where the budget cannot pay for it, the start's values alone), then
        the first-order test there with forward differences. Returns the rows whose central differences should be
        tried next (with ``verify``: the forward error ``h f''/2`` hides the optimum of steep lower levels, SMD's
        ``tan`` near pi/2; the central one rarely does), which are the feasible starts that no forward point beat:
        a start with a better point among its neighbours is not a local optimum, whatever central differences
        would make of its slopes. A start already known to meet its accepted value ends its row first."""
        idx = np.arange(self.rows.shape[0])
        self.stop(idx[self.known & self.acceptable(idx)], True)
        idx = idx[self.active]
        want = (~self.reused[idx]).sum(axis=1) + ~self.known[idx]
        granted = self.budget.grant(self.rows[idx], want)
        full = granted >= want
        alone = idx[~full & ~self.known[idx] & (granted >= 1)]
        f, g, cv, _ = self.round(idx[full], alone, self.Y[alone])
        self.F[alone], self.G[alone], self.CV[alone], self.known[alone] = f, g, cv, True
        self.stop(idx[~full | ~np.isfinite(self.F[idx])])
        idx = np.flatnonzero(self.active & (self.CV <= 0))
        self.stop(idx[self.first_order_rows(idx)], True)
        if not self.verify:
            return _NONE
        idx = np.flatnonzero(self.active & (self.CV <= 0))
        return idx[~better(self.best_F[idx], self.best_CV[idx], self.F[idx], self.CV[idx])]

    def inside(self, idx) -> np.ndarray:
        """(k, d) bool: the variables of the iterates of rows ``idx`` whose backward point lies in the box."""
        Y, H = self.Y[idx], self.H[idx]
        return (Y - H >= self.lo) & (Y - H <= self.hi) & (H != 0)

    def _central_test(self, idx, inside, f, g) -> np.ndarray:
        """The first-order test at the iterates of rows ``idx`` with central differences, from the values f, g at
        their backward points (``inside``, row by row)."""
        passed = np.zeros(idx.shape[0], bool)
        ends = np.cumsum(inside.sum(axis=1))
        for k, i in enumerate(idx):
            part = slice(ends[k] - inside[k].sum(), ends[k])
            df, dg = central_slopes(self.F[i], self.G[i], self.DF[i], self.DG[i], self.H[i],
                                    np.flatnonzero(inside[k]), f[part], g[part])
            passed[k] = first_order(self.Y[i], self.G[i], df, dg, self.lo, self.hi, self.s.gtol)
        return passed

    def acceptable(self, idx) -> np.ndarray:
        """(k,) bool: whether the iterates of rows ``idx`` are feasible and at or below their accepted values."""
        return self.accepts(idx, self.F[idx], self.CV[idx])

    def accepts(self, idx, f, cv) -> np.ndarray:
        """(k,) bool: whether points with values f, cv (k,) of rows ``idx`` meet the rows' accepted values."""
        return (cv <= 0) & (f <= self.accept[idx])

    def first_order_rows(self, idx) -> np.ndarray:
        """(k,) bool: :meth:`first_order_at` for the rows ``idx``."""
        return np.array([self.first_order_at(i) for i in idx], bool) if idx.size else np.zeros(0, bool)

    def first_order_at(self, i: int) -> bool:
        """Whether row i's iterate is feasible and a first-order point by its forward slopes."""
        return bool(self.sloped[i] and self.CV[i] <= 0 and np.isfinite(self.F[i])
                    and first_order(self.Y[i], self.G[i], self.DF[i], self.DG[i], self.lo, self.hi, self.s.gtol))

    def stop(self, idx: np.ndarray, converged: bool = False) -> None:
        """End the searches of rows ``idx``; those that did not converge by their rule get the first-order test
        (with the slopes at hand)."""
        for i in idx:
            self.active[i] = False
            self.converged[i] = converged or self.first_order_at(i)


class _Search(ABC):
    """The rounds of the rows' searches and their line searches; subclasses supply the model of the Hessian, the
    directions, the merit function and the convergence test after a step.

    Per row: the direction ``P`` (r, d) from the iterate ``prev_Y`` where it was computed (with the slopes
    ``prev_grad`` there), the trial step ``alpha``, the merit ``phi0`` at the iterate, the trials made in this line
    search and the iterations done; the best acceptable trial so far ``held_*`` while a line search extrapolates.
    """

    #: Whether a line search tries longer steps while f still falls almost linearly along the direction.
    extrapolate = False

    def __init__(self, state: _Rows, model):
        self.st, self.model = state, model
        n, d = state.rows.shape[0], state.d
        self.P, self.prev_Y, self.prev_grad = np.zeros((n, d)), np.zeros((n, d)), np.zeros((n, d))
        self.alpha, self.phi0, self.longest = np.ones(n), np.zeros(n), np.full(n, np.inf)
        self.trials, self.iters = np.zeros(n, np.int64), np.zeros(n, np.int64)
        self.phase = np.full(n, _GRADIENT)
        self.search_after = np.zeros(n, bool)
        self.doubt = np.zeros(n, bool)
        self.held = np.zeros(n, bool)
        self.held_S, self.held_f, self.held_phi = np.zeros((n, d)), np.zeros(n), np.zeros(n)
        self.held_g, self.held_cv = np.zeros((n, state.m)), np.zeros(n)

    def run(self, central: np.ndarray) -> None:
        """Iterate until every row has stopped; the rows ``central`` first try central differences at the start."""
        st = self.st
        self.phase[central], self.search_after[central] = _CENTRAL, True
        self.directions(np.flatnonzero(st.active & (self.phase != _CENTRAL)))
        while st.active.any():
            act = np.flatnonzero(st.active)
            phase = self.phase[act]
            want = np.where(phase == _GRADIENT, st.d, 1)
            if (phase == _CENTRAL).any():
                want[phase == _CENTRAL] = st.inside(act[phase == _CENTRAL]).sum(axis=1)
            afford = st.budget.grant(st.rows[act], want) >= want
            if not afford.all():
                self._stop(act[~afford])  # a row that cannot pay for its next round ends with its best point
                act, phase = act[afford], phase[afford]
            grad, trial, cen = act[phase == _GRADIENT], act[phase == _TRIAL], act[phase == _CENTRAL]
            S = np.clip(st.Y[trial] + self.alpha[trial, None] * self.P[trial], st.lo, st.hi)
            f, g, cv, passed = st.round(grad, trial, S, cen)
            if trial.size:
                self._after_trials(trial, S, f, g, cv)
            self._after_gradients(grad)
            if cen.size:
                self._after_central(cen, passed)

    def _stop(self, idx) -> None:
        """End rows ``idx`` that cannot pay for their next round; a step already found is taken first. A start
        whose central differences cannot be paid for goes on to its search."""
        go_on = (self.phase[idx] == _CENTRAL) & self.search_after[idx]
        self.directions(idx[go_on])
        idx = idx[~go_on]
        self._accept(idx[self.held[idx]])
        self.st.stop(idx[self.st.active[idx]])

    def _after_central(self, idx, passed) -> None:
        """Rows whose iterate passed the central first-order test have converged; the others search (a start) or
        stop (after a failed search)."""
        self.st.stop(idx[passed], True)
        idx = idx[~passed]
        self.directions(idx[self.search_after[idx]])
        self.st.stop(idx[~self.search_after[idx]])

    def _after_gradients(self, idx) -> None:
        """New slopes at accepted points: update the model, then the next directions (or stop at ``maxiter``)."""
        if idx.size == 0:
            return
        self.update(idx)
        self.iters[idx] += 1
        over = self.iters[idx] >= self.st.s.maxiter
        self.st.stop(idx[over])
        self.directions(idx[~over])

    def _after_trials(self, idx, S, f, g, cv) -> None:
        """Hold the trials with sufficient decrease of the merit function (the better one while extrapolating),
        try longer steps where that looks worthwhile, accept the held steps of the others and backtrack the rest."""
        phi, pred = self.merit(idx, f, g, cv), self.predicted(idx, S)
        ok = (phi <= self.phi0[idx] + _ARMIJO * np.minimum(pred, 0.0)) & (phi < self.phi0[idx])
        held = self.held[idx]
        gain = ok & (~held | (phi < self.held_phi[idx]))
        k = idx[gain]
        self.held[k], self.held_S[k], self.held_f[k], self.held_phi[k] = True, S[gain], f[gain], phi[gain]
        self.held_g[k], self.held_cv[k] = g[gain], cv[gain]
        # Wolfe's curvature condition needs slopes at the trial; with values only, a step along which f fell by
        # more than 90 % of the linear prediction counts as too short (Goldstein's test), as after a first step
        # from a steep start or with a model whose curvature is too high.
        grow = gain & (self.phi0[idx] + 0.9 * pred > phi) & (self.trials[idx] < self.st.s.max_backtracks)
        # A step to a point the caller accepts is taken at once.
        grow &= self.extrapolate & ~self.st.accepts(idx, f, cv)
        self._extrapolate(idx[grow], phi[grow], pred[grow])
        self._accept(idx[(held | gain) & ~grow])
        # A rejected step whose predicted gain is below ftol: no shorter one can gain more, so the row has converged
        # if its model is fresh or the iterate passes the first-order test; a model built on far-away curvature
        # (SMD's tan walls) can also predict that, and gets one fresh try.
        back = ~ok & ~held
        done = back & self.negligible(idx)
        ends = done & self.model.fresh(idx)
        ends[done & ~ends] = self.st.first_order_rows(idx[done & ~ends])
        self.st.stop(idx[ends], True)
        self.doubt[idx[done & ~ends]] = True
        self.fail(idx[done & ~ends])
        back &= ~done
        self._backtrack(idx[back], phi[back], pred[back])

    def _accept(self, idx) -> None:
        """Move rows ``idx`` to their held steps; their next round is the gradient there."""
        if idx.size == 0:
            return
        st = self.st
        F_old = st.F[idx]
        st.Y[idx], st.F[idx], st.G[idx], st.CV[idx] = self.held_S[idx], self.held_f[idx], self.held_g[idx], \
            self.held_cv[idx]
        st.sloped[idx], self.held[idx], self.phase[idx], self.doubt[idx] = False, False, _GRADIENT, False
        st.stop(idx[self.step_converged(idx, F_old) | st.acceptable(idx)], True)

    def _extrapolate(self, idx, phi, pred) -> None:
        """Longer steps, two to eight times the last by quadratic interpolation (eight where f curves down), up to
        the longest allowed."""
        if idx.size == 0:
            return
        a = self.alpha[idx]
        slope = pred / a
        curve = phi - self.phi0[idx] - slope * a
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(curve > 0, -slope * a * a / (2.0 * curve), 8.0 * a)
        t = np.minimum(np.clip(t, 2.0 * a, 8.0 * a), self.longest[idx])
        st = self.st
        S = np.clip(st.Y[idx] + t[:, None] * self.P[idx], st.lo, st.hi)
        # Nothing longer to try where the box or the longest step stops it.
        same = np.all(S == self.held_S[idx], axis=1) | (t <= a)
        self._accept(idx[same])
        self.alpha[idx[~same]] = t[~same]
        self.trials[idx] += 1

    def _backtrack(self, idx, phi, pred) -> None:
        """Shorter steps by quadratic interpolation of the merit function, within ``_SHRINK`` of the last one.

        Where the quadratic through the failed trial has its minimum closer to the iterate than the difference
        steps resolve, no smooth function explains the trial's value: the step met a singularity, as a full SQP
        step that lands on the bound next to SMD's ``tan`` pole does (f about 1e10). The interpolation says nothing
        about where the singularity begins, so the step is halved (bisection) rather than cut to the bracket's
        tenth, which would leave the next full step to meet it again: SMD10's rows crept towards optima near the
        pole by a tenth of the way an iteration. A search that extrapolates (the box method) wins back the length a
        tenth gives away by itself.
        """
        if idx.size == 0:
            return
        a = self.alpha[idx]
        slope = pred / a
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            t = -slope * a * a / (2.0 * (phi - self.phi0[idx] - slope * a))
            # Only where no extrapolation can win the length back (the box method's backtracks skip this).
            singular = (np.zeros(idx.size, bool) if self.extrapolate
                        else ~np.any(np.abs(t[:, None] * self.P[idx]) > self.st.steps, axis=1))
        t = np.where(np.isfinite(t), np.clip(t, _SHRINK[0] * a, _SHRINK[1] * a), _SHRINK[0] * a)
        t[singular] = 0.5 * a[singular]
        self.alpha[idx] = t
        self.trials[idx] += 1
        # A step shorter than the difference steps in every variable cannot show progress the slopes could see.
        short = ~np.any(np.abs(t[:, None] * self.P[idx]) > self.st.steps, axis=1)
        self.fail(idx[short | (self.trials[idx] >= self.st.s.max_backtracks)])

    def begin(self, idx, alpha, phi0, longest=np.inf) -> None:
        """Start the line searches of rows ``idx`` along their directions ``P``, with trial steps ``alpha`` and at
        most ``longest`` when extrapolating."""
        self.alpha[idx], self.phi0[idx], self.trials[idx], self.longest[idx] = alpha, phi0, 0, longest
        self.prev_Y[idx] = self.st.Y[idx]
        self.phase[idx] = _TRIAL

    def fail(self, idx) -> None:
        """A failed line search: with a fresh model the row stops, otherwise it resets the model and tries again
        from the same iterate (as L-BFGS-B does).

        A row whose used model predicted no gain above the tolerance (``doubt``) and whose fresh one then finds no
        decrease either has converged to the resolution of its differences (steep lower levels, where neither
        model can see further). Another row that ends so gets the central first-order test where ``verify`` asks
        for it, as a start does.
        """
        if idx.size == 0:
            return
        st = self.st
        fresh = self.model.fresh(idx)
        st.stop(idx[fresh & self.doubt[idx]], True)
        ends = idx[fresh & ~self.doubt[idx]]
        check = ends[(st.CV[ends] <= 0) & ~st.first_order_rows(ends)] if st.verify else _NONE
        self.phase[check], self.search_after[check] = _CENTRAL, False
        st.stop(np.setdiff1d(ends, check))
        again = idx[~fresh]
        self.model.reset(again)
        self.directions(again)

    # The hooks of a method: `_Box` (projected limited-memory BFGS) and `_SQP` implement each of them.
    @abstractmethod
    def directions(self, idx) -> None:
        """Set the search direction of rows ``idx`` (and start their line searches)."""

    @abstractmethod
    def update(self, idx) -> None:
        """Update the model of rows ``idx`` with their newest step."""

    @abstractmethod
    def merit(self, idx, f, g, cv) -> np.ndarray:
        """The value (len(idx),) a line search compares, from ``f``, constraints ``g`` and violation ``cv``."""

    @abstractmethod
    def predicted(self, idx, S) -> np.ndarray:
        """The first-order change of the merit (len(idx),) predicted at the trial points ``S`` (len(idx), d);
        negative for a descent."""

    @abstractmethod
    def step_converged(self, idx, F_old) -> np.ndarray:
        """Whether the last step of each row of ``idx`` met the convergence test, against merits ``F_old``."""

    @abstractmethod
    def negligible(self, idx) -> np.ndarray:
        """Whether each row's predicted change is within the tolerance of :meth:`step_converged` (nothing to gain)."""


class _Box(_Search):
    """Projected limited-memory BFGS for box bounds, with f as the merit function; ``ref`` (r,) is f after the
    first step."""

    extrapolate = True

    def __init__(self, state: _Rows, curvature: np.ndarray | None = None):
        super().__init__(state, _LimitedMemory(state.rows.shape[0], state.d, state.s.memory, state.steps))
        if curvature is not None:
            self.model.start_from(curvature)
        self.ref = np.full(state.rows.shape[0], np.nan)
        self.check = np.zeros(state.rows.shape[0], bool)

    def directions(self, idx) -> None:
        if idx.size == 0:
            return
        st = self.st
        Y, DF = st.Y[idx], st.DF[idx]
        pg = np.abs(np.clip(Y - DF, st.lo, st.hi) - Y).max(axis=1)
        st.stop(idx[pg <= st.s.gtol], True)
        keep = pg > st.s.gtol
        idx, Y, DF, pg = idx[keep], Y[keep], DF[keep], pg[keep]
        # After a step that passed the decrease test with a used model: converged if the first-order test agrees,
        # otherwise the model is suspect (too much curvature from far away) and starts afresh.
        check = self.check[idx]
        self.check[idx] = False
        passed = check.copy()
        passed[check] = st.first_order_rows(idx[check])
        st.stop(idx[passed], True)
        self.model.reset(idx[check & ~passed])
        self.doubt[idx[check & ~passed]] = True
        keep = ~passed
        idx, Y, DF, pg = idx[keep], Y[keep], DF[keep], pg[keep]
        B, informed = self.model.matrices_informed(idx)
        P, held = _projected_newton(Y, DF, B, st.lo, st.hi, pg)
        descent = (DF * P).sum(axis=1) < 0
        self.P[idx] = P
        self.prev_grad[idx] = DF
        # L-BFGS-B's first step: at most unit length along the first (steepest-descent) direction. And no variable
        # whose curvature the model does not know moves more than _TRUST_SHARE of its range in one iteration: with
        # the identity's curvature it could jump to another basin (SMD3's Rastrigin term).
        with np.errstate(divide="ignore"):
            first = np.where(self.model.fresh(idx) & ~self.model.scaled[idx],
                             np.minimum(1.0, 1.0 / np.sqrt((P * P).sum(axis=1))), 1.0)
            bounded = ~(informed | held) & (P != 0)
            reach = np.where(bounded, _TRUST_SHARE * (st.hi - st.lo) / np.abs(np.where(bounded, P, 1.0)), np.inf)
        reach = reach.min(axis=1)
        ok = idx[descent]
        self.begin(ok, np.minimum(first, reach)[descent], st.F[ok], reach[descent])
        self.fail(idx[~descent])

    def update(self, idx) -> None:
        st = self.st
        # Each forward slope is off by up to 2 eps |f| / h from rounding f; their difference by the sum.
        scale = np.abs(self.phi0[idx]) + np.abs(st.F[idx])
        with np.errstate(divide="ignore"):
            noise = 2.0 * np.finfo(float).eps * scale[:, None] / np.abs(st.H[idx])
        self.model.add(idx, st.Y[idx] - self.prev_Y[idx], st.DF[idx] - self.prev_grad[idx], noise)

    def merit(self, idx, f, g, cv) -> np.ndarray:
        return f

    def predicted(self, idx, S) -> np.ndarray:
        return (self.st.DF[idx] * (S - self.st.Y[idx])).sum(axis=1)

    def step_converged(self, idx, F_old) -> np.ndarray:
        """L-BFGS-B's test on the decrease, relative to f's change since the first step (at least 1).

        L-BFGS-B measures f from the start (LocalRefinement shifts f so); from the first step here, because a start
        next to a singularity (SMD's ``tan`` at pi/2) can have an f so large that any later decrease passes. With a
        fresh model the row has converged; with a used one the gradient at the new point decides (``check``).
        """
        F = self.st.F[idx]
        ref = np.where(np.isnan(self.ref[idx]), F, self.ref[idx])
        self.ref[idx] = ref
        scale = np.maximum(np.maximum(np.abs(F_old - ref), np.abs(F - ref)), 1.0)
        small = F_old - F <= self.st.s.ftol * scale
        fresh = self.model.fresh(idx)
        self.check[idx] = small & ~fresh
        return small & fresh

    def negligible(self, idx) -> np.ndarray:
        """The step's linear prediction (before the projection) within the tolerance of :meth:`step_converged`."""
        st = self.st
        scale = np.maximum(np.where(np.isnan(self.ref[idx]), 0.0, np.abs(st.F[idx] - self.ref[idx])), 1.0)
        return -self.alpha[idx] * (st.DF[idx] * self.P[idx]).sum(axis=1) <= st.s.ftol * scale


class _SQP(_Search):
    """SQP with a damped BFGS model of the Lagrangian's Hessian and the L1 merit function.

    Per row: multipliers ``lam`` (r, m) of the last subproblem, penalties ``rho`` (r, m), the merit's predicted
    slope ``D`` (r,) along the direction. The constraints it sees are ``g + margin <= 0``.
    """

    def __init__(self, state: _Rows):
        super().__init__(state, _DenseModel(state.rows.shape[0], state.d))
        n, m = state.rows.shape[0], state.m
        self.lam, self.rho, self.D = np.zeros((n, m)), np.zeros((n, m)), np.zeros(n)

    def _c(self, G) -> np.ndarray:
        return np.clip(G + self.st.s.constraint_margin, -PENALTY, PENALTY)

    def directions(self, idx) -> None:
        if idx.size == 0:
            return
        st = self.st
        C, Q, J = self._c(st.G[idx]), st.DF[idx], st.DG[idx]
        P, lam, ok = _sqp_steps(self.model.matrices(idx), Q, C, J, st.Y[idx], st.lo, st.hi)
        change = np.abs((Q * P).sum(axis=1)) + np.abs(lam * C).sum(axis=1)
        done = ok & (change <= st.s.ftol) & (np.maximum(C, 0.0).sum(axis=1) <= st.s.ftol)
        use = ok & ~done
        i, P, lam, C, Q, J = idx[use], P[use], lam[use], C[use], Q[use], J[use]
        rho = np.maximum(_PENALTY_FACTOR * lam, 0.5 * (self.rho[i] + _PENALTY_FACTOR * lam))
        linear = C + np.einsum("kmd,kd->km", J, P)
        D = (Q * P).sum(axis=1) + (rho * (np.maximum(linear, 0.0) - np.maximum(C, 0.0))).sum(axis=1)
        self.rho[i], self.D[i], self.P[i], self.lam[i] = rho, D, P, lam
        self.prev_grad[i] = Q + np.einsum("km,kmd->kd", lam, J)
        st.stop(idx[done], True)
        rows = i[D < 0]
        self.begin(rows, 1.0, self.merit(rows, st.F[rows], st.G[rows], st.CV[rows]))
        self.fail(np.sort(np.concatenate([idx[~ok], i[~(D < 0)]])))

    def update(self, idx) -> None:
        st = self.st
        grad = st.DF[idx] + np.einsum("km,kmd->kd", self.lam[idx], st.DG[idx])
        self.model.add(idx, st.Y[idx] - self.prev_Y[idx], grad - self.prev_grad[idx])

    def merit(self, idx, f, g, cv) -> np.ndarray:
        excess = np.maximum(g + self.st.s.constraint_margin, 0.0)
        with np.errstate(invalid="ignore"):
            phi = f + (self.rho[idx] * excess).sum(axis=1)
        return np.where(np.isfinite(cv) & np.isfinite(f), phi, np.inf)

    def predicted(self, idx, S) -> np.ndarray:
        return self.alpha[idx] * self.D[idx]

    def step_converged(self, idx, F_old) -> np.ndarray:
        """SLSQP's test: f changed (or y moved) by less than ``ftol``, at a point within ``ftol`` of feasible."""
        st = self.st
        moved = np.sqrt(((st.Y[idx] - self.prev_Y[idx]) ** 2).sum(axis=1))
        small = (np.abs(st.F[idx] - F_old) < st.s.ftol) | (moved < st.s.ftol)
        return small & (np.maximum(self._c(st.G[idx]), 0.0).sum(axis=1) < st.s.ftol)

    def negligible(self, idx) -> np.ndarray:
        """A predicted change of the merit below ``ftol`` at a point within ``ftol`` of feasible."""
        st = self.st
        small = -self.alpha[idx] * self.D[idx] <= st.s.ftol
        return small & (np.maximum(self._c(st.G[idx]), 0.0).sum(axis=1) <= st.s.ftol)


class _LimitedMemory:
    """L-BFGS-B's model of the Hessian, per row: the last ``memory`` pairs of steps and slope changes ``S``, ``R``
    (r, memory, d), newest last, ``count`` (r,) of them, and the diagonal ``base`` (r, d) the model starts from (the
    identity until a reset keeps the diagonal learnt so far, ``scaled`` says so; or the curvature a search of a
    nearby problem learnt, ``carried``). A model without pairs is fresh, unless it starts from carried curvature:
    that one is still a guess about this problem, and a search that fails with it tries again without it."""

    def __init__(self, n: int, d: int, memory: int, steps: np.ndarray):
        self.S, self.R = np.zeros((n, memory, d)), np.zeros((n, memory, d))
        self.resolved = np.zeros((n, memory, d), bool)  # slope changes well above their rounding error
        self.count = np.zeros(n, np.int64)
        self.base, self.scaled = np.ones((n, d)), np.zeros(n, bool)
        self.base_informed = np.zeros((n, d), bool)
        self.carried = np.zeros(n, bool)
        self.eye, self.steps = np.eye(d), steps
        self.pair_eye, self.below = np.eye(memory), np.tri(memory, k=-1, dtype=bool)

    def fresh(self, idx) -> np.ndarray:
        return (self.count[idx] == 0) & ~self.carried[idx]

    def start_from(self, curvature: np.ndarray) -> None:
        """Start each row's diagonal from ``curvature`` (r, d) where it is known (not NaN): the curvature a search
        of a nearby problem learnt."""
        known = ~np.isnan(curvature)
        self.base = np.where(known, curvature, self.base)
        self.base_informed = self.base_informed | known
        self.carried = known.any(axis=1)
        self.scaled = self.scaled | self.carried

    def curvature(self) -> np.ndarray:
        """(r, d): the diagonal each row's model would start from after a reset, NaN where no secant informed it."""
        idx = np.arange(self.count.shape[0])
        diag, informed = self.base.copy(), self.base_informed.copy()
        used = idx[self.count > 0]
        if used.size:
            diag[used], informed[used] = self._pairs(used)[3:]
        return np.where(informed, diag, np.nan)

    def reset(self, idx) -> None:
        """Forget the pairs but keep each variable's curvature: a model that went wrong through its pairs should
        not also lose the scale of variables whose curvatures differ by orders of magnitude. Carried curvature
        goes (it may be what went wrong; SMD's ``tan`` terms curve by orders of magnitude more near their walls
        than at a nearby problem's optimum), and the diagonal comes from the row's own pairs alone."""
        dropped = idx[self.carried[idx]]
        self.base[dropped], self.base_informed[dropped] = 1.0, False
        self.scaled[dropped], self.carried[dropped] = False, False
        used = idx[self.count[idx] > 0]
        if used.size:
            self.base[used], self.base_informed[used] = self._pairs(used)[3:]
            self.scaled[used] = True
        self.count[idx] = 0

    def add(self, idx, S, R, noise) -> None:
        """Add the pairs (k, d) with ``s'r > eps r'r`` (L-BFGS-B skips the others), dropping the oldest; ``noise``
        (k, d) bounds the rounding error of each slope change in ``R``."""
        keep = (S * R).sum(axis=1) > np.finfo(float).eps * (R * R).sum(axis=1)
        idx, S, R, noise = idx[keep], S[keep], R[keep], noise[keep]
        full = idx[self.count[idx] == self.S.shape[1]]
        self.S[full, :-1], self.R[full, :-1] = self.S[full, 1:], self.R[full, 1:]
        self.resolved[full, :-1] = self.resolved[full, 1:]
        self.count[full] -= 1
        self.S[idx, self.count[idx]], self.R[idx, self.count[idx]] = S, R
        self.resolved[idx, self.count[idx]] = np.abs(R) > _SECANT_NOISE * noise
        self.count[idx] += 1

    def _pairs(self, idx):
        """The valid pairs S, R (k, memory, d) (zeros elsewhere), their mask (k, memory), the initial diagonal (k, d)
        and where it is informed (k, d): each variable's secant curvature ``r_i / s_i`` in the newest pair that moved
        it by more than ``_SECANT_STEPS`` difference steps (a shorter move shows the rounding noise of the slopes, not
        the curvature) and saw it positive; ``base`` for the others. Where ``base`` is the identity's guess (nothing
        learnt or carried), a shorter move serves too if it changed the slope by more than ``_SECANT_NOISE`` times the
        slopes' rounding error. The newest, because the curvature of SMD's ``tan`` terms changes by orders of
        magnitude along a search: an older one would make the updates of the newer pairs couple the variables."""
        n = self.count[idx]
        valid = np.arange(self.S.shape[1]) < n[:, None]
        S, R = np.where(valid[:, :, None], self.S[idx], 0.0), np.where(valid[:, :, None], self.R[idx], 0.0)
        # A short move's secant stands in for the identity's guess only, not for curvature learnt or carried.
        resolved = valid[:, :, None] & self.resolved[idx] & ~self.base_informed[idx][:, None, :]
        usable = ((np.abs(S) > _SECANT_STEPS * self.steps) | resolved) & (S * R > 0)
        newest = np.where(usable, np.arange(S.shape[1])[None, :, None], -1).max(axis=1)  # (k, d)
        secant = newest >= 0
        k, i = np.nonzero(secant)
        diag = self.base[idx].copy()
        diag[k, i] = R[k, newest[k, i], i] / S[k, newest[k, i], i]
        return S, R, valid, diag, secant | self.base_informed[idx]

    def matrices_informed(self, idx) -> tuple[np.ndarray, np.ndarray]:
        """The models (k, d, d) and the variables whose diagonal comes from their own secants (k, d): the initial
        diagonal of :meth:`_pairs`, then the BFGS updates of the pairs in order.

        One diagonal entry per variable rather than L-BFGS-B's one scale ``r'r / s'r`` for all: SMD's lower levels
        mix variables whose curvatures differ by orders of magnitude (``tan`` near pi/2), and one scale set by the
        steep ones stalls the others. Recomputing it at every iteration and forgetting old pairs lets the model
        recover from curvature met far away. The updates are applied in the
        compact form of Byrd, Nocedal and Schnabel (1994): ``B = B0 - W' M^-1 W`` with ``W = [S B0; R]``,
        ``M = [[S B0 S', L], [L', -D]]``, L the strictly lower triangle and D the diagonal of ``S R'``; a row whose
        M is singular keeps its diagonal.
        """
        S, R, valid, diag, informed = self._pairs(idx)
        # Pairs whose curvature along their step differs from the diagonal's by more than _STALE describe a region
        # the search has left (a tan wall): their updates would couple the variables with curvature gone by.
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (S * R).sum(axis=2) / (S * S * diag[:, None, :]).sum(axis=2)
        valid = valid & (ratio < _STALE) & (ratio > 1.0 / _STALE)
        S, R = np.where(valid[:, :, None], S, 0.0), np.where(valid[:, :, None], R, 0.0)
        B0S = S * diag[:, None, :]
        SR = np.einsum("kid,kjd->kij", S, R)
        lower = np.where(self.below, SR, 0.0)
        unused = np.where(valid, 0.0, 1.0)[:, :, None] * self.pair_eye  # decouples the empty slots
        M = np.concatenate([np.concatenate([np.einsum("kid,kjd->kij", S, B0S) + unused, lower], axis=2),
                            np.concatenate([lower.transpose(0, 2, 1),
                                            -(SR * self.pair_eye) - unused], axis=2)], axis=1)
        W = np.concatenate([B0S, R], axis=1)  # (k, 2 memory, d)
        B = diag[:, :, None] * self.eye
        try:
            return B - np.einsum("kid,kie->kde", W, np.linalg.solve(M, W)), informed
        except np.linalg.LinAlgError:
            for k in range(idx.shape[0]):  # row by row: a singular M must not change the other rows' models
                try:
                    B[k] -= np.einsum("id,ie->de", W[k], np.linalg.solve(M[k], W[k]))
                except np.linalg.LinAlgError:
                    pass
            return B, informed


class _DenseModel:
    """SLSQP's model of the Lagrangian's Hessian, per row: a dense matrix ``B`` (r, d, d) from the identity, with
    Powell's damped BFGS updates; ``count`` (r,) updates since the last reset.

    The first update first raises each diagonal entry to the variable's own secant curvature where that exceeds 1:
    the curvature of a few steep directions (SMD's ``tan`` near pi/2) must not set that of the others, and flat
    ones (the sphere of optima of SMD11 and SMD12) keep the identity's.
    """

    def __init__(self, n: int, d: int):
        self.eye = np.eye(d)
        self.B = np.tile(self.eye, (n, 1, 1))
        self.count = np.zeros(n, np.int64)

    def fresh(self, idx) -> np.ndarray:
        return self.count[idx] == 0

    def reset(self, idx) -> None:
        self.B[idx], self.count[idx] = self.eye, 0

    def matrices(self, idx) -> np.ndarray:
        return self.B[idx]

    def add(self, idx, S, R) -> None:
        """Add the pairs (k, d): Powell's damping moves r towards Bs until ``s'r >= 0.2 s'Bs``, which keeps the model
        positive definite where the Lagrangian curves downwards; then the BFGS update (skipped for a zero step)."""
        B = self.B[idx]
        # Slopes of 1e150 and more (a follower's constraint far outside its range) overflow the products: such a
        # pair says nothing a model could hold, and is skipped, row by row.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            diag = np.where(S * R > 0, np.maximum(R * R / (S * R), 1.0), 1.0)
            diag = np.where(np.isfinite(diag), diag, 1.0)
            B = np.where(self.fresh(idx)[:, None, None], diag[:, :, None] * self.eye, B)
            BS = (B * S[:, None, :]).sum(axis=2)
            sBs, sr = (S * BS).sum(axis=1), (S * R).sum(axis=1)
            theta = np.where(sr >= 0.2 * sBs, 1.0, 0.8 * sBs / (sBs - sr))
            R = theta[:, None] * R + (1.0 - theta)[:, None] * BS
            ok = (sBs > 0) & ((S * R).sum(axis=1) > 0)
            updated = _bfgs_update(B, S, R)
        ok &= np.isfinite(updated).all(axis=(1, 2))
        self.B[idx] = np.where(ok[:, None, None], updated, B)
        self.count[idx] += ok


def _projected_newton(Y, DF, B, lo, hi, pg) -> tuple[np.ndarray, np.ndarray]:
    """Directions (k, d) of the two-metric projection method at Y (k, d) with slopes DF (k, d) and models B, and
    the variables held at their bounds (k, d).

    Variables within an epsilon of a bound the slope pushes them against (epsilon: ``_BOUND_SHARE`` of the range,
    at most the projected gradient's max norm ``pg`` (k,)) step by ``-slope / B_ii``; the others by the
    quasi-Newton step on their block of B. The line search projects the step onto the box.
    """
    eps = np.minimum(_BOUND_SHARE * (hi - lo), pg[:, None])
    held = ((Y - lo <= eps) & (DF > 0)) | ((hi - Y <= eps) & (DF < 0))
    free = ~held
    eye = np.eye(Y.shape[1])
    M = np.where(free[:, :, None] & free[:, None, :], B, eye)
    rhs = np.where(free, -DF, 0.0)[:, :, None]
    try:
        P = np.linalg.solve(M, rhs)[:, :, 0]
    except np.linalg.LinAlgError:  # row by row: a singular model must not change the other rows' directions
        P = -DF.copy()
        for k in range(M.shape[0]):
            try:
                P[k] = np.linalg.solve(M[k], rhs[k])[:, 0]
            except np.linalg.LinAlgError:
                pass  # steepest descent for this row
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(held, -DF / np.diagonal(B, axis1=1, axis2=2), P), held


def _bfgs_update(B, S, R) -> np.ndarray:
    """BFGS updates of the models B (k, d, d) with steps S (k, d) and slope changes R (k, d), ``s'r > 0``."""
    BS = (B * S[:, None, :]).sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (B + R[:, :, None] * R[:, None, :] / (S * R).sum(axis=1)[:, None, None]
                - BS[:, :, None] * BS[:, None, :] / (S * BS).sum(axis=1)[:, None, None])


def _sqp_steps(B, Q, C, J, Y, lo, hi):
    """The SQP steps of k rows at Y (k, d): ``min 0.5 p'Bp + q'p`` subject to ``c + J p <= 0`` and
    ``lo <= y + p <= hi``, with models B (k, d, d), slopes Q (k, d), constraint values C (k, m) and their slopes J
    (k, m, d).

    Where the linearised constraints cannot be met in the box, the violated ones are relaxed by a share delta of
    their violation, delta in [0, 1] and weighted by ``_RELAX_WEIGHT`` times the model's largest curvature (delta =
    1 and p = 0 is always feasible). Returns the steps P (k, d), the constraints' multipliers (k, m) and whether
    each row has a step (k,).
    """
    k, d = Y.shape
    m = C.shape[1]
    eye = np.broadcast_to(np.eye(d), (k, d, d))
    A = np.concatenate([J, eye, -eye], axis=1)
    b = np.concatenate([-C, hi - Y, Y - lo], axis=1)
    P, lam, ok = _qp(B, Q, A, b)
    for i in np.flatnonzero(~ok):
        relax = np.zeros((d + 1, d + 1))
        relax[:d, :d] = B[i]
        relax[d, d] = _RELAX_WEIGHT * max(1.0, np.diagonal(B[i]).max())
        column = np.concatenate([-np.maximum(C[i], 0.0), np.zeros(2 * d), [-1.0, 1.0]])
        A_i = np.hstack([np.vstack([A[i], np.zeros((2, d))]), column[:, None]])
        step, multipliers, found = _qp(relax[None], np.append(Q[i], 0.0)[None], A_i[None],
                                       np.concatenate([b[i], [0.0, 1.0]])[None])
        P[i], lam[i], ok[i] = step[0, :d], multipliers[0, : A.shape[1]], found[0]
    return P, lam[:, :m], ok


def _qp(B, q, A, b):
    """``min 0.5 p'Bp + q'p`` subject to ``A p <= b`` for k rows (B (k, d, d) positive definite, q (k, d),
    A (k, a, d), b (k, a)), as least-distance programmes.

    With ``B = L L'`` and ``z = L'p + L^-1 q`` the problem is ``min |z|`` subject to ``G z >= h``; the least-distance
    solution is a residual of the nonnegative least-squares fit of ``(0, ..., 0, 1)`` by the columns ``(G_j, h_j)``
    (Lawson and Hanson), whose coefficients give the multipliers. The rows of G are normalised and z is scaled to
    about unit length first: the fit's last residual is about ``1 / (1 + |z|^2)``, which must stay well away from
    the zero that means inconsistent constraints. The fits run row by row, the rest for all rows at once.

    Returns
    -------
    P : ndarray, shape (k, d)
    multipliers : ndarray, shape (k, a)
    ok : ndarray of bool, shape (k,)
        False where the constraints are inconsistent (or B is not positive definite); P and the multipliers are 0.
    """
    k, d = q.shape
    Linv, ok = _inverse_factors(B)
    Lq = np.einsum("kij,kj->ki", Linv, q)
    G = -np.einsum("kaj,kij->kai", A, Linv)  # -A L'^-1
    h = np.einsum("kai,ki->ka", G, Lq) - b
    norms = np.sqrt((G * G).sum(axis=2))
    norms[norms == 0] = 1.0
    G, h = G / norms[:, :, None], h / norms
    scale = np.maximum(1.0, np.abs(h).max(axis=1, initial=0.0))
    E = np.concatenate([G.transpose(0, 2, 1), (h / scale[:, None])[:, None, :]], axis=1)  # (k, d + 1, a)
    target = np.zeros(d + 1)
    target[d] = 1.0
    U = np.zeros(h.shape)
    for i in np.flatnonzero(ok):
        try:
            U[i] = nnls(E[i], target, maxiter=50 * E.shape[2])[0]
        except RuntimeError:  # no convergence: treated as inconsistent
            ok[i] = False
    r = np.einsum("kja,ka->kj", E, U) - target
    ok &= -r[:, d] > 1e-10
    with np.errstate(divide="ignore", invalid="ignore"):
        Z = scale[:, None] * (-r[:, :d] / r[:, d:])
        P = np.einsum("kji,kj->ki", Linv, Z - Lq)
        lam = scale[:, None] * U / (-r[:, d:] * norms)
    ok &= np.all(np.einsum("kad,kd->ka", A, P) <= b + 1e-8 * (1.0 + np.abs(b)), axis=1)
    P[~ok], lam[~ok] = 0.0, 0.0
    return P, lam, ok


def _inverse_factors(B):
    """The inverses (k, d, d) of the Cholesky factors of B (k, d, d), and where they exist (k,) (the identity
    elsewhere). Row by row when one fails, so that one row's model cannot change another's result."""
    ok = np.ones(B.shape[0], bool)
    try:
        L = np.linalg.cholesky(B)
    except np.linalg.LinAlgError:
        L = np.tile(np.eye(B.shape[1]), (B.shape[0], 1, 1))
        for i in range(B.shape[0]):
            try:
                L[i] = np.linalg.cholesky(B[i])
            except np.linalg.LinAlgError:
                ok[i] = False
    return np.linalg.inv(L), ok
