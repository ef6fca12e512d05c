"""Restarts after convergence: a guard against an attempt that converged into the wrong basin of a multimodal
upper level, paid for only as far as the evidence asks for it.

After the first attempt converges, one restart probes the box with a smaller population. An attempt whose answer is
the kept one again, as good (to the tolerance) and at the same place (within a tenth of every variable's range),
confirms it, and a run that keeps finding the same answer stops, once the kept answer has been found more often
than there are answers found only once. That count is the Good-Turing estimate of how often the next attempt
would find an answer not seen yet: where the attempts keep finding new answers, finding the kept one twice says
little about what the next attempt would find. The restarts' size follows their success: an attempt that finds
nothing better (another answer, worse or as good elsewhere, shows several basins) doubles the next population (up to
a limit), since a larger population sees more basins before it commits to one; an attempt that finds a better answer
shows that attempts of its size still find gains, and the next restart probes the new kept answer as the first
restart probed the first one, with the probe's population. Restarting stops once the kept answer is confirmed, after
``patience`` attempts in a row that found nothing better, or after ``limit`` restarts.

A restart whose whole population has gathered around the kept answer (:meth:`RestartRule.gathered`) has committed
to its basin; the algorithm may then hand it the kept answer, so that the attempt confirms it (or improves on it)
without converging again to the accuracy the kept answer already has. A restart that settles apart from the kept
answer (:meth:`RestartRule.apart`) needs only to show that it cannot beat it; BLEAQ ends such an attempt once its
quadratic model says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .base import Candidate
from .population import better_candidate

__all__ = ["RestartRule", "RestartState"]


@dataclass
class RestartState:
    """Where a run stands in its restarts.

    Attributes
    ----------
    kept : Candidate or None
        The best answer of the finished attempts, kept aside: in the new population it would pull the search back
        into the basin it came from.
    n_restarts : int
    n_fruitless : int
        Attempts in a row that found nothing better.
    scale : float
        The current attempt's population, as a multiple of the first attempt's.
    confirmed : bool
        An attempt found the kept answer again.
    found : list of [Candidate, int]
        Each feasible answer the attempts ended with (the first of its finds) and how many attempts ended with it.
    """

    kept: Candidate | None = None
    n_restarts: int = 0
    n_fruitless: int = 0
    scale: float = 1.0
    confirmed: bool = False
    found: list = field(default_factory=list)


@dataclass(frozen=True)
class RestartRule:
    """When to restart, and how large the next population is (see the module's description).

    Parameters
    ----------
    limit, patience : int
    x_widths : ndarray, shape (ul_dim,)
        The ranges of the upper-level variables.
    tol : float
        Two answers whose ``F`` differ by at most ``tol * (1 + |F|)`` are equally good (the accuracy the attempts
        converge to); a smaller gain is no progress.
    x_tol : float
        Two equally good answers further apart than this share of some variable's range are two answers, in two
        basins: a symmetric upper level has several equally good local optima, and finding one of them after
        another confirms nothing about the others. An attempt converged to ``tol`` in ``F`` has its ``x`` to about
        ``sqrt(tol)`` of the scale of the basin's curvature; a tenth of a range lies well beyond that scatter.
    probe : float
        The first restart's population as a share of the first attempt's: a probe that costs little where the
        answer is confirmed, as most answers of a single-basin upper level are.
    max_growth : int
        The largest population, as a multiple of the first attempt's.
    """

    limit: int
    patience: int
    x_widths: np.ndarray
    tol: float = 1e-4
    x_tol: float = 0.1
    probe: float = 0.5
    max_growth: int = 4

    def population_size(self, state: RestartState, initial: int, smallest: int = 4) -> int:
        """The population for the current attempt (at least ``smallest``)."""
        return max(smallest, int(round(initial * state.scale)))

    def after_attempt(self, state: RestartState, attempt_best: Candidate, persist: bool = False) -> bool:
        """Record a finished attempt's best in ``state``; whether to restart (counted when True).

        With ``persist`` (a run that ends at its target only), a confirmation or a lack of progress does not end
        the restarts, only the limit does; a confirmation then counts as an attempt that found nothing better (the
        next population doubles), and a better find sends the next restart back to the probe's size, as without it.
        """
        kept = state.kept
        # An attempt that ends without a feasible member has found no answer: it counts as no progress (below),
        # not as one more answer found once, which would put off the confirmation of the kept one.
        finds = self._record(state, attempt_best) if attempt_best.feasible else 0
        once = sum(count == 1 for _, count in state.found)
        if kept is None:
            state.kept, state.scale = attempt_best, self.probe
        elif self._same(kept, attempt_best) and finds > once and not persist:
            state.confirmed = True
            return False
        else:
            if better_candidate(kept, attempt_best) is attempt_best and self._gain(kept, attempt_best):
                state.kept, state.n_fruitless = attempt_best, 0
                state.scale = self.probe
            else:
                state.n_fruitless += 1
                state.scale = min(2 * max(state.scale, self.probe), self.max_growth)
        if state.n_restarts < self.limit and (persist or state.n_fruitless < self.patience):
            state.n_restarts += 1
            return True
        return False

    def _record(self, state: RestartState, answer: Candidate) -> int:
        """Count ``answer`` among the answers found; how many attempts have now ended with it."""
        for entry in state.found:
            if self._same(entry[0], answer):
                entry[1] += 1
                return entry[1]
        state.found.append([answer, 1])
        return 1

    def _near(self, x: np.ndarray, X: np.ndarray) -> bool:
        """Whether every point of X (n, ul_dim) or (ul_dim,) lies within ``x_tol`` of every variable's range of
        x (ul_dim,)."""
        return bool(np.all(np.abs(X - x) <= self.x_tol * self.x_widths))

    def gathered(self, state: RestartState, X: np.ndarray) -> bool:
        """Whether a restart's population X (n, ul_dim) lies within ``x_tol`` of every variable's range around the
        kept answer (feasible): the attempt has come back to it."""
        kept = state.kept
        return kept is not None and kept.feasible and self._near(kept.x, X)

    def coming_back(self, state: RestartState, best: Candidate) -> bool:
        """Whether a restart whose population has no feasible member is coming back to a feasible kept answer: its
        best member lies within ``x_tol`` of every variable's range of it. (The kept answer is the feasible point
        of that place the population is closing in on; see :meth:`gathered`.)"""
        kept = state.kept
        return kept is not None and kept.feasible and self._near(kept.x, best.x)

    def outclassed(self, state: RestartState, best: Candidate, floor) -> bool:
        """Whether a restart's feasible best member ``best``, away from the kept answer (:meth:`apart`), cannot beat
        it: ``floor()``, the lowest value the quadratic model around it promises within its reach less the model's
        largest error on its own points, lies above the kept ``F`` by more than the tolerance. ``floor`` is called
        only where the other conditions hold (it may cost a search of the model). (In the kept answer's own basin,
        a restart takes the kept answer back instead.)"""
        kept = state.kept
        return (kept is not None and best.feasible and self.apart(kept, best)
                and floor() > kept.F + self.tol * (1 + abs(kept.F)))

    def apart(self, kept: Candidate, other: Candidate) -> bool:
        """Whether two feasible answers lie at two places: apart by more than ``x_tol`` of some variable's
        range."""
        return kept.feasible and other.feasible and not self._near(kept.x, other.x)

    def _same(self, kept: Candidate, other: Candidate) -> bool:
        """Whether two feasible answers are one answer: equally good, to the tolerance, and apart by at most
        ``x_tol`` of every variable's range."""
        equal = kept.feasible and other.feasible and abs(other.F - kept.F) <= self.tol * (1 + abs(kept.F))
        return equal and not self.apart(kept, other)

    def _gain(self, kept: Candidate, other: Candidate) -> bool:
        """Whether ``other`` (ranked above ``kept``) is better by more than rounding: feasible where ``kept`` is not,
        lower ``F`` beyond the tolerance, or, neither feasible, a total violation lower by more than the tolerance
        (relative): attempts that end at the least violation of a leader infeasible everywhere find the same point
        again, to rounding, and that is no progress."""
        if kept.feasible and other.feasible:
            return kept.F - other.F > self.tol * (1 + abs(kept.F))
        if not (kept.feasible or other.feasible):
            violation = kept.ul_cv + kept.ll_cv
            return violation - (other.ul_cv + other.ll_cv) > self.tol * violation
        return True

    def reason(self, state: RestartState) -> str:
        """Why the restarts ended, for the run's message."""
        if state.confirmed:
            return f"the answer was found again by restart {state.n_restarts}"
        if state.n_fruitless >= self.patience:
            return f"{state.n_fruitless} attempts in a row found nothing better"
        return f"after {state.n_restarts} restarts (the limit)"

    @staticmethod
    def best(state: RestartState, current: Candidate) -> Candidate:
        """The better of the current population's best and the kept one."""
        return better_candidate(state.kept, current)

    @staticmethod
    def answers(state: RestartState, current: Candidate) -> list[Candidate]:
        """The better of the current population's best and the kept one, then the other (if there is one)."""
        best = better_candidate(state.kept, current)
        return [best] if state.kept is None else [best, current if best is state.kept else state.kept]
