"""Quality of a leader's Pareto front against the known one: pymoo's IGD and hypervolume indicators.

pymoo is imported when these are first called, never by ``import evobilevel``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FrontQuality", "front_quality", "known_front"]

#: Points of the known front the indicators compare with: dense enough that IGD measures the found front's gaps,
#: not the reference's.
REFERENCE_POINTS = 1000


@dataclass(frozen=True)
class FrontQuality:
    """How well a found front matches the known one.

    Attributes
    ----------
    igd : float
        Inverted generational distance: the mean distance from a point of the known front to the nearest found
        point (0 is perfect; a missing stretch of the front raises it).
    hv : float
        Hypervolume of the found front up to the problem's reference point (larger is better).
    hv_known : float
        Hypervolume of the known front up to the same point, the most ``hv`` can be.
    """

    igd: float
    hv: float
    hv_known: float

    @property
    def hv_ratio(self) -> float:
        """``hv / hv_known``: the share of the known front's hypervolume the found front reaches."""
        return self.hv / self.hv_known if self.hv_known > 0 else float("nan")


def known_front(problem) -> np.ndarray | None:
    """The problem's Pareto front (m, k) when it is known (``problem.pareto_front``), else None."""
    method = getattr(problem, "pareto_front", None)
    return None if method is None else np.asarray(method(REFERENCE_POINTS), dtype=float)


def front_quality(F: np.ndarray, problem) -> FrontQuality | None:
    """IGD and hypervolume of the found front F (n, k) on ``problem`` (a benchmark with a known front).

    Returns
    -------
    FrontQuality or None
        None when the problem's front is not known. An empty front has infinite IGD and no hypervolume.
    """
    reference = known_front(problem)
    if reference is None:
        return None
    from pymoo.indicators.hv import HV
    from pymoo.indicators.igd import IGD

    hv = HV(ref_point=problem.hv_reference)
    F = np.asarray(F, dtype=float).reshape(-1, reference.shape[1])
    if F.shape[0] == 0:
        return FrontQuality(igd=float("inf"), hv=0.0, hv_known=float(hv(reference)))
    return FrontQuality(igd=float(IGD(reference)(F)), hv=float(hv(F)), hv_known=float(hv(reference)))
