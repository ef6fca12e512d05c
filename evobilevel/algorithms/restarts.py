"""Restarts after convergence: a guard against premature convergence on a multimodal upper level."""

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
        The best candidate of the finished attempts, kept aside: in the new population it would pull the search
        back into the basin it came from.
    n_restarts : int
    n_fruitless : int
        Attempts in a row that found nothing better.
    """

    kept: Candidate | None = None
    n_restarts: int = 0
    n_fruitless: int = 0


@dataclass(frozen=True)
class RestartRule:
    """When to restart, and how large the next population is.

    Restarting stops after ``limit`` restarts or once ``patience`` attempts in a row found nothing better by more
    than ``tol * (1 + |F|)``.

    Parameters
    ----------
    limit, patience : int
    max_growth : int
        Each restart doubles the population, up to this multiple of the first one: a larger population sees more
        basins before it commits to one.
    tol : float
        A gain smaller than this (relative) is an attempt polishing the same optimum, not progress.
    """

    limit: int
    patience: int
    max_growth: int = 4
    tol: float = 1e-4

    def population_size(self, state: RestartState, initial: int) -> int:
        """The population for the current attempt."""
        return initial * min(2**state.n_restarts, self.max_growth)

    def after_attempt(self, state: RestartState, attempt_best: Candidate) -> bool:
        """Record a finished attempt's best in ``state``; whether to restart (counted when True)."""
        kept = state.kept
        winner = better_candidate(kept, attempt_best)
        improved = kept is None or (winner is attempt_best and not (
            attempt_best.feasible and kept.feasible and kept.F - attempt_best.F <= self.tol * (1 + abs(kept.F))))
        state.n_fruitless = 0 if improved else state.n_fruitless + 1
        state.kept = winner
        if state.n_restarts < self.limit and state.n_fruitless < self.patience:
            state.n_restarts += 1
            return True
        return False

    @staticmethod
    def best(state: RestartState, current: Candidate) -> Candidate:
        """The better of the current population's best and the kept one."""
        return better_candidate(state.kept, current)
