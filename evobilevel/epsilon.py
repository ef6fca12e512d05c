"""The epsilon level of constraint violation (Takahama and Sakai's epsilon-constrained comparison), used by the
upper level of BLEAQ and by the lower-level DE: early in a search, violations up to a shrinking level count as
none, so that the population can cross infeasible gaps instead of being captured by the first feasible region
it meets.

Reference: T. Takahama, S. Sakai, "Constrained optimization by the epsilon constrained differential evolution with
an archive and gradient-based mutation", IEEE CEC 2010.
"""

from __future__ import annotations

import numpy as np

__all__ = ["epsilon_level", "EpsilonSchedule"]


def epsilon_level(eps0, elapsed, duration: int, exponent: float):
    """``eps0 * (1 - elapsed / duration) ** exponent`` while ``elapsed < duration``, 0 from then on.

    Parameters
    ----------
    eps0 : float or ndarray
        The starting level (a quantile of the first population's violations).
    elapsed : int or ndarray
        Generations since the search started.
    duration : int
        Generations until comparisons are feasibility first (positive).
    exponent : float
        How fast the level falls: a larger exponent tightens sooner.
    """
    fraction_left = np.clip(1.0 - elapsed / duration, 0.0, 1.0)
    return eps0 * fraction_left**exponent


class EpsilonSchedule:
    """An epsilon level that starts at a quantile of a first population's violations and falls to zero.

    Parameters
    ----------
    generations : int
        Generations until comparisons are feasibility first; 0 switches the epsilon level off.
    exponent : float
    quantile : float
        Which quantile of the first population's violations (among points feasible at the lower level) the
        level starts at: the best of them compete on their objective from the start.
    """

    def __init__(self, generations: int, exponent: float, quantile: float):
        self.generations, self.exponent, self.quantile = generations, exponent, quantile

    def initial_level(self, cv: np.ndarray, eligible: np.ndarray) -> float:
        """The starting level from the violations ``cv`` (n,) of the ``eligible`` (n,) bool points."""
        cv = cv[np.isfinite(cv) & eligible]
        return float(np.quantile(cv, self.quantile)) if cv.size else 0.0

    def level(self, eps0: float, elapsed: int) -> float:
        """The level ``elapsed`` generations after the start (0.0 once the schedule is over)."""
        if elapsed >= self.generations or eps0 <= 0:
            return 0.0
        return float(epsilon_level(eps0, elapsed, self.generations, self.exponent))
