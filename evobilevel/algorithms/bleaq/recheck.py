"""Global re-checks of the best member's lower level.

Predictions and local refinements can settle a candidate on a lower-level answer that is only locally optimal.
From time to time, and always before the run stops, the best member's lower level is solved again globally, from
scratch (a search warm-started at the answer being checked tends to confirm it; where the follower is certified
convex there, by a refinement from elsewhere, :meth:`~.settlement.LowerSettlement.resolve`). A better answer
replaces the member's; an equally good one far from it shows that the follower is free to choose there.
"""

from __future__ import annotations

import numpy as np

from .leader import remember
from .settlement import LowerSettlement
from .state import BLEAQState
from .upper import UpperSearch

__all__ = ["Recheck", "distinct_answers"]

#: A correction makes the new best member be checked at once too, up to this many checks in a row.
MAX_CHECKS_IN_A_ROW = 3
#: A re-solve corrects a member whose answer it beats by more than this many ``accept_tol`` (relative): less is
#: the rounding of two searches that found the same optimum.
CORRECTION_TOLS = 10


class Recheck:
    """Schedules and runs the re-checks (see the module's description).

    Parameters
    ----------
    every : int
        The first interval between re-checks, in generations. A correction halves the interval (from at most
        ``every``); a confirmation doubles it, up to ``every`` once any re-check of the run has corrected an
        answer, without a limit before.
    accept_tol, refine_tol, free_tol : float
        See :class:`~evobilevel.algorithms.BLEAQ`.
    memory : int
        Members remembered as free.
    settlement : LowerSettlement
    upper : UpperSearch
    """

    def __init__(self, every: int, accept_tol: float, refine_tol: float, free_tol: float, memory: int,
                 settlement: LowerSettlement, upper: UpperSearch):
        self.every, self.accept_tol, self.refine_tol, self.free_tol = every, accept_tol, refine_tol, free_tol
        self.memory, self.settlement, self.upper = memory, settlement, upper

    def due(self, state: BLEAQState) -> bool:
        return state.generation - state.recheck.last >= state.recheck.interval

    def run(self, ctx, state: BLEAQState) -> None:
        """Check the best member; after a correction, the new best one too (a few at most)."""
        schedule = state.recheck
        schedule.last = state.generation
        for _ in range(MAX_CHECKS_IN_A_ROW):
            if not self._check_best(ctx, state):
                # Until a re-check has corrected an answer in this run, each confirmation is evidence that the
                # settlement's answers are the follower's optima, and the checks thin out geometrically; once one
                # has corrected, the follower is known to trap local searches and they stay at least every
                # ``every`` generations.
                doubled = 2 * schedule.interval
                schedule.interval = doubled if state.counts["recheck_corrections"] == 0 else min(self.every, doubled)
                return
            schedule.interval = max(1, min(self.every, schedule.interval) // 2)

    def _check_best(self, ctx, state: BLEAQState) -> bool:
        """Re-solve the current best member's lower level; whether its answer had to be corrected."""
        population, schedule = state.population, state.recheck
        best = int(np.argmin(population.ranks()))
        x = population.X[best]
        if schedule.checked_x is not None and np.array_equal(x, schedule.checked_x):
            return False
        state.counts["rechecks"] += 1
        found = self.settlement.resolve(ctx, state, x[None, :], away=population.Y[best][None, :])
        schedule.checked_x = x.copy()
        f_old, cv_old = population.f[best], population.ll_cv[best]
        f_new, cv_new = found.f[0], found.ll_cv[0]
        if cv_new == cv_old == 0 and distinct_answers(population.Y[best], f_old, found.Y[0], f_new,
                                                      self.settlement.response.y_widths, self.refine_tol,
                                                      self.free_tol):
            # The follower has two optimal answers here, however consistent psi looks around x (a converged
            # population inherits one answer by recombination): the leader may choose for this member.
            remember(state.leader.seen_free, x.tobytes(), self.memory)
        tol = CORRECTION_TOLS * self.accept_tol * (1 + abs(f_new))
        if not ((cv_new < cv_old) or (cv_new == cv_old == 0 and f_new < f_old - tol)):
            return False
        state.counts["recheck_corrections"] += 1
        state.archive.replace(x, found.Y[0], f_new, *([] if found.f_parts is None else [found.f_parts[0]]))
        population.put(best, self.upper.evaluate(ctx, state.evaluated, found).take(0))
        schedule.checked_x = None
        return True


def distinct_answers(y_a: np.ndarray, f_a: float, y_b: np.ndarray, f_b: float, y_widths: np.ndarray,
                     f_rtol: float, y_rtol: float) -> bool:
    """Whether two lower-level answers y_a, y_b (ll_dim,) at one x, of values f_a, f_b, are equally good
    (``|f_a - f_b| <= f_rtol * (1 + |f_a|)``) and apart by more than ``y_rtol`` of some variable's range
    (``y_widths`` (ll_dim,))."""
    equal = abs(f_a - f_b) <= f_rtol * (1 + abs(f_a))
    return bool(equal and np.any(np.abs(y_a - y_b) > y_rtol * y_widths))
