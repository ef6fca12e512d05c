"""Restarts after convergence: a guard against an attempt that converged into the wrong basin of a multimodal
upper level, paid for only as far as the evidence asks for it.

After the first attempt converges, one restart probes the box with a smaller population. An attempt whose answer is
as good as the kept one (to the tolerance) and not better confirms it: a run that keeps finding the same answer
stops. An attempt that finds a different answer, better or worse, shows that the upper level has several basins:
the next attempt's population doubles (up to a limit), since a larger population sees more basins before it
commits to one. Restarting stops once the kept answer is confirmed, after ``patience`` attempts in a row that
found nothing better, or after ``limit`` restarts.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """

    kept: Candidate | None = None
    n_restarts: int = 0
    n_fruitless: int = 0
    scale: float = 1.0
    confirmed: bool = False


@dataclass(frozen=True)
class RestartRule:
    """When to restart, and how large the next population is (see the module's description).

    Parameters
    ----------
    limit, patience : int
    tol : float
        Two answers whose ``F`` differ by at most ``tol * (1 + |F|)`` are the same answer (the accuracy the
        attempts converge to); a smaller gain is no progress.
    probe : float
        The first restart's population as a share of the first attempt's: a probe that costs little where the
        answer is confirmed, as most answers of a single-basin upper level are.
    max_growth : int
        The largest population, as a multiple of the first attempt's.
    """

    limit: int
    patience: int
    tol: float = 1e-4
    probe: float = 0.5
    max_growth: int = 4

    def population_size(self, state: RestartState, initial: int, smallest: int = 4) -> int:
        """The population for the current attempt (at least ``smallest``)."""
        return max(smallest, int(round(initial * state.scale)))

    def after_attempt(self, state: RestartState, attempt_best: Candidate, persist: bool = False) -> bool:
        """Record a finished attempt's best in ``state``; whether to restart (counted when True).

        With ``persist`` (a run that ends at its target only), a confirmation or a lack of progress does not end
        the restarts, only the limit does; attempts then grow as if each had found a different answer.
        """
        kept = state.kept
        if kept is None:
            state.kept, state.scale = attempt_best, self.probe
        elif self._same(kept, attempt_best) and not persist:
            state.confirmed = True
            return False
        else:
            if better_candidate(kept, attempt_best) is attempt_best and self._gain(kept, attempt_best):
                state.kept, state.n_fruitless = attempt_best, 0
            else:
                state.n_fruitless += 1
            state.scale = min(2 * max(state.scale, self.probe), self.max_growth)
        if state.n_restarts < self.limit and (persist or state.n_fruitless < self.patience):
            state.n_restarts += 1
            return True
        return False

    def _same(self, kept: Candidate, other: Candidate) -> bool:
        """Whether two feasible answers are equally good, to the tolerance."""
        return kept.feasible and other.feasible and abs(other.F - kept.F) <= self.tol * (1 + abs(kept.F))

    def _gain(self, kept: Candidate, other: Candidate) -> bool:
        """Whether ``other`` (ranked above ``kept``) is better by more than rounding: feasible where ``kept`` is not,
        or lower ``F`` beyond the tolerance."""
        return not kept.feasible or not other.feasible or kept.F - other.F > self.tol * (1 + abs(kept.F))

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
