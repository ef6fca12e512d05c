"""BLEAQ in parts: the algorithm (:mod:`.algorithm`) composes the upper-level search (:mod:`.upper`), the
lower-level settlement (:mod:`.settlement`) with its response models (:mod:`.response`), the leader's choice
(:mod:`.leader`) and the re-checks (:mod:`.recheck`); :mod:`.state` holds everything that changes during a run."""

from .algorithm import BLEAQ
from .state import BLEAQState

__all__ = ["BLEAQ", "BLEAQState"]
