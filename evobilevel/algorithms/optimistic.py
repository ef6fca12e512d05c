"""The leader's choice among the follower's optimal answers (the optimistic tie-break).

Where the lower level has a set of optimal answers for one ``x`` (SMD11 and SMD12: a sphere; SMD6: lines), the
point a lower-level solver returns is arbitrary, yet the upper level's value and feasibility may depend on it:
on SMD11 exactly one point of the sphere satisfies the upper-level constraints. The optimistic formulation lets
the leader choose::

    minimise_y  F(x, y)   subject to   G(x, y) <= 0,   g(x, y) <= 0,   f(x, y) <= f_limit

with ``f_limit`` the follower's optimal value plus a small tolerance. :func:`choose_for_leader` solves that
with SLSQP and forward differences; each gradient costs ``ll_dim + 1`` evaluations of both levels, in one
batch per level. The answers within ``f_limit`` are a thin shell around the follower's optima, which SLSQP's
iterates often miss by a hair: :func:`choose_feasible` (a member that violates the leader's constraints) and
:func:`choose_confirmed` (a feasible one) then take its final point, refined by the follower's own solver.
Where the follower's free variables are known, :func:`choose_along_optima` does without the shell: it descends on
``F`` in those variables and lets the follower's refinement bring every step back to its optima.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, minimize

from ..blas import single_blas_thread
from ..differences import PENALTY, forward_steps
from ..integrality import integer_mask
from ..space import widths

__all__ = ["LeaderChoice", "choose_along_optima", "choose_confirmed", "choose_feasible", "choose_for_leader"]

#: A confirmed choice keeps at least this share of the gain the loose search found: on a set of optima the
#: follower's refinement stays where the leader chose, at a unique optimum it takes the gain back.
KEPT_GAIN_SHARE = 0.5
#: A gain of F below this (relative) is a rounding difference, not a better answer.
ROUNDING = 1e-9
#: SLSQP's tolerance on the leader's objective: tight, since the choices differ in the digits the tolerance on f
#: leaves free.
CHOICE_FTOL = 1e-12
#: Points whose values and slopes the search remembers (SLSQP asks for each several times).
CACHE_SIZE = 32
#: :func:`choose_along_optima`'s first step, as a share of each variable's range; a step taken doubles the next, so
#: that the steps find the scale of the follower's set of optima in a few refinements from either side.
FIRST_STEP = 0.05
#: ... and its smallest by default: psi's default accuracy (``BLEAQ.psi_tol``), below which the run does not tell
#: answers apart (BLEAQ passes its own ``psi_tol``).
MIN_STEP = 1e-3
#: Refinements it may run: as many as the SLSQP iterations of the other choices.
MAX_TRIALS = 30
#: The share of the decrease the slope predicts for a move that the move must deliver (Armijo's usual value).
ARMIJO = 1e-4
#: How far above the start's value (relative to ``1 + |f|``) a refined answer's ``f`` may lie and still be on the
#: follower's set of optima: a hundred times the refinement's own ``ftol`` (1e-10). Where the optimum is unique but
#: ill-conditioned, the refinement stops along its valley with ``f`` above that, and the leader gains nothing there.
FLAT_TOL = 1e-8

@dataclass
class LeaderChoice:
    """The best pair found by :func:`choose_for_leader`.

    Attributes
    ----------
    y : ndarray, shape (ll_dim,)
    F, ul_cv, f : float
        The follower's answer is always feasible at the lower level.
    G : ndarray, shape (n_ul_constraints,)
        The upper-level constraint values (``G <= 0`` is feasible).
    """

    y: np.ndarray
    F: float
    ul_cv: float
    f: float
    G: np.ndarray

    def key(self) -> tuple[float, float]:
        """Order of preference for the leader: feasibility first, then F (smaller is better)."""
        return (self.ul_cv, self.F if self.ul_cv == 0 else 0.0)


def choose_for_leader(ctx, x: np.ndarray, start: LeaderChoice, f_limit: float, maxiter: int = 30,
                      fd_step: float = 1e-8, margin: float = 1e-9,
                      moves_with_y: np.ndarray | None = None) -> LeaderChoice:
    """Search the follower's ``f_limit``-optimal answers at ``x`` for the one the leader prefers.

    Parameters
    ----------
    ctx : RunContext
        Evaluations go through it and are counted at both levels.
    x : ndarray, shape (ul_dim,)
    start : LeaderChoice
        The follower's answer (feasible at the lower level) and its values.
    f_limit : float
        Largest lower-level objective accepted (the optimal value plus a tolerance).
    maxiter : int
        SLSQP iterations.
    fd_step : float
        Forward-difference step as a fraction of each lower-level variable's range.
    margin : float
        SLSQP is given ``c + margin <= 0`` for every constraint so that its final point satisfies them exactly
        (a constraint closer than that to its bound at ``start`` is given the slack it has there).
    moves_with_y : ndarray of bool, shape (n_ul_constraints,), optional
        Updated in place: the upper-level constraints whose first gradient (taken when ``start`` is infeasible)
        showed a dependence on ``y`` are set True.

    Returns
    -------
    LeaderChoice
        The best point seen that satisfies the lower-level constraints and ``f <= f_limit`` (``start`` if none
        is better by :meth:`LeaderChoice.key`).
    """
    search = _leader_search(ctx, x, start, f_limit, maxiter, fd_step, margin, moves_with_y)
    return start if search is None else search.best


def _leader_search(ctx, x: np.ndarray, start: LeaderChoice, f_limit: float, maxiter: int = 30,
                   fd_step: float = 1e-8, margin: float = 1e-9, moves_with_y: np.ndarray | None = None,
                   components: np.ndarray | None = None) -> _Search | None:
    """The search of :func:`choose_for_leader` after SLSQP has run, moving the variables marked in ``components``
    (ll_dim,) bool (all by default): its best admissible point and SLSQP's final one (None where none of them is
    continuous)."""
    free = _movable(ctx.problem, components)
    if not free.size:
        return None
    search = _Search(ctx, x, start, f_limit, fd_step, free)
    lo, hi = search.lo, search.hi
    z0 = start.y[free]
    with single_blas_thread():
        # One gradient first: if a violated upper-level constraint does not move with y, no choice of the
        # follower's answer can make the member feasible (SMD10's constraints bind x alone, SMD12's cubic ones
        # too); stop at the cost of that gradient.
        if start.ul_cv > 0:
            n_G = ctx.problem.n_ul_constraints
            _, C0, _, dC = search.at(z0, slopes=True)
            moves = np.any(dC[:n_G] != 0, axis=1)
            if moves_with_y is not None:
                moves_with_y |= moves
            if np.any((C0[:n_G] > 0) & ~moves):
                return search
        # A constraint satisfied within the margin at the start keeps only the slack it has: one that y cannot
        # move (SMD12's cubic constraints at x*, active there) could never meet the margin, and SLSQP would give up
        # at once. A violated one gets the whole margin, so that the search ends strictly inside it.
        C0 = search.constraints(z0)
        margins = np.where(C0 > 0, margin, np.minimum(margin, np.maximum(-C0, 0.0)))
        res = minimize(search.fun, z0, jac=search.jac, method="SLSQP", bounds=Bounds(lo, hi),
                       constraints=[{"type": "ineq", "fun": lambda y: -(search.constraints(y) + margins),
                                     "jac": lambda y: -search.constraint_jac(y)}],
                       options={"maxiter": maxiter, "ftol": CHOICE_FTOL})
    search.finish(res.x)
    return search


def choose_feasible(ctx, x: np.ndarray, start: LeaderChoice, f_limit: float, refine,
                    moves_with_y: np.ndarray | None = None) -> LeaderChoice:
    """:func:`choose_for_leader` for a member that violates the leader's constraints, with the search's end as a
    proposal where no admissible point it visited is better.

    The answers within ``f_limit`` form a thin shell around the follower's set of optima, and SLSQP's iterates
    towards the feasible part of it often lie a hair outside (as in :func:`choose_confirmed`). Its final point is then
    refined by the follower's own local solver, and the refined answer is taken where it is admissible (within
    ``f_limit``, feasible at the lower level) and violates the leader's constraints less than ``start``.

    Parameters
    ----------
    ctx : RunContext
    x : ndarray, shape (ul_dim,)
    start : LeaderChoice
    f_limit : float
    refine : LowerSolver
        The follower's local solver.
    moves_with_y : ndarray of bool, shape (n_ul_constraints,), optional
        As in :func:`choose_for_leader`.

    Returns
    -------
    LeaderChoice
    """
    search = _leader_search(ctx, x, start, f_limit, moves_with_y=moves_with_y)
    if search is None:
        return start
    if search.best is not start:
        return search.best
    final = search.final()
    if final is None:
        return start
    refined = _refined(ctx, x, final[0], refine, f_limit)
    return refined if refined is not None and refined.key() < start.key() else start


def choose_confirmed(ctx, x: np.ndarray, start: LeaderChoice, tol: float, refine,
                     components: np.ndarray | None = None) -> LeaderChoice:
    """The leader's choice for a member feasible at both levels, kept only where the follower is indifferent.

    Searches with ``f <= f + tol * (1 + |f|)``; if that lowers ``F``, the follower's own local solver refines
    the chosen answer, and the refined answer is taken if it keeps at least half of the gain (``start``
    otherwise). Where the follower has a set of optima, the chosen answer is one of them and the refinement
    stays there; where the gain came from the tolerance at a unique optimum, the refinement returns to that
    optimum and the gain goes (an ill-conditioned lower level makes such gains large).

    Parameters
    ----------
    ctx : RunContext
    x : ndarray, shape (ul_dim,)
    start : LeaderChoice
        The member's pair (feasible at both levels) and its values.
    tol : float
        Relative tolerance on the follower's value for the search.
    refine : LowerSolver
        The follower's local solver.
    components : ndarray of bool, shape (ll_dim,), optional
        The variables the search moves (the follower's free ones, where known); all by default.

    Returns
    -------
    LeaderChoice
    """
    search = _leader_search(ctx, x, start, start.f + tol * (1 + abs(start.f)), components=components)
    if search is None:
        return start
    y_loose, F_loose = search.best.y, search.best.F
    if search.best is start:
        # Where the follower's optima form a set (SMD12's sphere), the answers within the tolerance are a thin
        # shell around it, and SLSQP often ends a hair outside (f just above the limit, or a lower-level
        # constraint violated by 1e-11) with no admissible point it visited better than the start. Its final
        # point is then the proposal: the follower's refinement below brings it back to the set, or to the
        # unique optimum, and the gain it keeps decides.
        final = search.final()
        if final is None or not final[1] < start.F:
            return start
        y_loose, F_loose = final
    refined = _refined(ctx, x, y_loose, refine)
    if refined is None:
        return start
    gain = start.F - refined.F
    kept = (refined.ul_cv == 0 and gain >= KEPT_GAIN_SHARE * (start.F - F_loose)
            and gain > ROUNDING * (1 + abs(start.F)))
    return refined if kept else start


def choose_along_optima(ctx, x: np.ndarray, start: LeaderChoice, refine, components: np.ndarray,
                        min_step: float = MIN_STEP, fd_step: float = 1e-8) -> LeaderChoice:
    """The leader's choice for a member feasible at both levels whose follower is free in the variables
    ``components``: a descent on ``F`` in those variables whose every step the follower's own local solver brings
    back to its optima.

    A step against the forward-difference gradient of ``F`` (one upper-level evaluation per free variable) leaves
    the follower's optima; its refinement from the step's end returns to them, near the step, and the refined answer
    is taken where it is feasible at both levels, its ``f`` within ``FLAT_TOL`` of the start's (on the set of optima,
    not up a valley) and its ``F`` lower by the Armijo share of what the gradient predicts for the move the
    refinement made. A step taken doubles the next one (up to a whole range); one refused is shortened to the
    minimum of the parabola through ``F`` at the start, its slope and the refused value (between a tenth and a half
    of it, a quarter where the refinement failed). The descent ends when the steps fall below ``min_step`` of the
    ranges, after ``MAX_TRIALS`` refinements, or where the gradient is flat or not finite.

    Parameters
    ----------
    ctx : RunContext
    x : ndarray, shape (ul_dim,)
    start : LeaderChoice
        The member's pair (feasible at both levels) and its values.
    refine : LowerSolver
        The follower's local solver.
    components : ndarray of bool, shape (ll_dim,)
        The variables the descent moves (its integer ones never); the others keep their values, up to what the
        refinement changes.
    min_step : float
        The smallest step, as a share of each variable's range: the accuracy to which the run places answers.
    fd_step : float
        Forward-difference step as a share of each variable's range.

    Returns
    -------
    LeaderChoice
        The last answer taken (``start`` if none).
    """
    lo, hi = ctx.problem.ll_bounds
    w = widths((lo, hi))
    free = _movable(ctx.problem, components)
    if not free.size:
        return start
    f_limit = start.f + FLAT_TOL * (1 + abs(start.f))
    best, step, trials, slopes = start, FIRST_STEP, 0, None
    while trials < MAX_TRIALS and step >= min_step:
        if slopes is None:
            slopes = _slopes(ctx, x, best, free, w, fd_step)  # dF per range of each free variable
            norm = float(np.linalg.norm(slopes))
            if not np.isfinite(norm) or norm == 0:
                break
        y = best.y.copy()
        y[free] = np.clip(best.y[free] - step * slopes / norm * w[free], lo[free], hi[free])
        trials += 1
        candidate = _refined(ctx, x, y, refine, f_limit)
        F_new = np.inf if candidate is None or candidate.ul_cv > 0 else candidate.F
        # What the slopes predict for the move the refinement made (the step's part along the optima).
        predicted = np.inf if candidate is None else float(slopes @ ((candidate.y[free] - best.y[free]) / w[free]))
        if predicted < 0 and F_new < best.F - ROUNDING * (1 + abs(best.F)) and F_new <= best.F + ARMIJO * predicted:
            best, step, slopes = candidate, min(1.0, 2 * step), None
        else:
            excess = F_new - best.F + norm * step
            guess = norm * step**2 / (2 * excess) if np.isfinite(F_new) and excess > 0 else 0.25 * step
            step = min(0.5 * step, max(0.1 * step, guess))
    return best


def _movable(problem, components: np.ndarray | None) -> np.ndarray:
    """The indices of the follower's variables a choice may move: those marked in ``components`` (ll_dim,) bool (all
    by default) that are continuous. Integer variables keep their values: the leader chooses among the follower's
    answers by moving the continuous ones (a follower whose variables are all integer leaves nothing to choose this
    way)."""
    movable = np.ones(problem.ll_dim, bool) if components is None else np.asarray(components, bool).copy()
    mask = integer_mask(problem)
    if mask is not None:
        movable &= ~mask
    return np.flatnonzero(movable)


def _slopes(ctx, x: np.ndarray, at: LeaderChoice, free: np.ndarray, w: np.ndarray, fd_step: float) -> np.ndarray:
    """Forward-difference slopes (len(free),) of F at the answer ``at`` in the variables ``free``, per range
    ``w[free]`` of each (one upper-level evaluation per variable, in one batch)."""
    hi = ctx.problem.ll_bounds[1]
    h = forward_steps(at.y[free], fd_step * w[free], hi[free])
    Y = np.repeat(at.y[None, :], free.size, axis=0)
    Y[np.arange(free.size), free] += h
    upper = ctx.evaluate_upper(np.repeat(x[None, :], free.size, axis=0), Y)
    return (upper.values - at.F) / h * w[free]


def _refined(ctx, x: np.ndarray, y: np.ndarray, refine, f_limit: float = np.inf) -> LeaderChoice | None:
    """The follower's own refinement of the answer y (ll_dim,) at x, with its values; None where it ends infeasible
    at the lower level, at a value that is not finite or above ``f_limit``, or where the leader's evaluation fails."""
    sol = ctx.solve_lower(x[None, :], refine, Y0=y[None, None, :])
    if sol.cv[0] > 0 or not np.isfinite(sol.f[0]) or sol.f[0] > f_limit:
        return None
    upper = ctx.evaluate_upper(x[None, :], sol.Y)
    if upper.failed[0]:
        return None
    return LeaderChoice(sol.Y[0].copy(), float(upper.values[0]), float(upper.cv[0]), float(sol.f[0]),
                        upper.constraints[0].copy())


class _Search:
    """Values and forward-difference slopes of ``F`` and of the stacked constraints ``[G, g, f - f_limit]``, as
    functions of the variables ``free`` of ``y`` (the others keep their values at the start)."""

    def __init__(self, ctx, x, start: LeaderChoice, f_limit: float, fd_step: float, free: np.ndarray):
        self.ctx, self.x, self.f_limit = ctx, np.asarray(x, float), f_limit
        lo, hi = ctx.problem.ll_bounds
        self.free, self.start_y = free, start.y.copy()
        self.lo, self.hi = lo[free], hi[free]
        self.steps = fd_step * widths((lo, hi))[free]
        self.best = start
        self.final_z = None
        self.cache: dict[bytes, tuple] = {}

    def finish(self, z: np.ndarray) -> None:
        """Record the search's final point ``z`` (the free variables)."""
        self.final_z = np.clip(z, self.lo, self.hi)

    def final(self) -> tuple[np.ndarray, float] | None:
        """The final point as a whole answer and its ``F`` (evaluated unless SLSQP's last call did), or None."""
        if self.final_z is None:
            return None
        y = self.start_y.copy()
        y[self.free] = self.final_z
        return y, self.fun(self.final_z)

    def _evaluate(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """F (n,) and the constraint stack (n, k) at the rows of Z (n, len(free)), counted at both levels."""
        Y = np.repeat(self.start_y[None, :], Z.shape[0], axis=0)
        Y[:, self.free] = Z
        X = np.repeat(self.x[None, :], Y.shape[0], axis=0)
        upper = self.ctx.evaluate_upper(X, Y)
        lower = self.ctx.evaluate_lower(X, Y)
        C = np.hstack([upper.constraints, lower.constraints, (lower.values - self.f_limit)[:, None]])
        for j in range(Y.shape[0]):
            admissible = lower.cv[j] == 0 and lower.values[j] <= self.f_limit and not upper.failed[j]
            if admissible:
                candidate = LeaderChoice(Y[j].copy(), float(upper.values[j]), float(upper.cv[j]),
                                         float(lower.values[j]), upper.constraints[j].copy())
                if candidate.key() < self.best.key():
                    self.best = candidate
        F = np.where(np.isfinite(upper.values), upper.values, PENALTY)
        C = np.clip(np.where(np.isnan(C), PENALTY, C), -PENALTY, PENALTY)
        return F, C

    def at(self, y: np.ndarray, slopes: bool) -> tuple:
        """``F``, constraints (k,) and, with ``slopes``, their gradients (len(free),), (k, len(free)) at the free
        variables' values y."""
        y = np.clip(y, self.lo, self.hi)
        key = y.tobytes()
        entry = self.cache.get(key)
        if entry is not None and (entry[2] is not None or not slopes):
            return entry
        h = forward_steps(y, self.steps, self.hi)
        # The point itself (unless known) and, for slopes, its neighbours, in one batch per level.
        Y = np.vstack(([] if entry is not None else [y]) + ([y + np.diag(h)] if slopes else []))
        F, C = self._evaluate(Y)
        if entry is not None:
            F0, C0 = entry[0], entry[1]
        else:
            F0, C0, F, C = F[0], C[0], F[1:], C[1:]
        dF = dC = None
        if slopes:
            dF = (F - F0) / h
            dC = ((C - C0) / h[:, None]).T
        if len(self.cache) > CACHE_SIZE:
            self.cache.clear()
        entry = self.cache[key] = (F0, C0, dF, dC)
        return entry

    def fun(self, y):
        return float(self.at(y, False)[0])

    def jac(self, y):
        return self.at(y, True)[2]

    def constraints(self, y):
        return self.at(y, False)[1]

    def constraint_jac(self, y):
        return self.at(y, True)[3]
