"""Bilevel algorithms: one per module, each a configurable :class:`~evobilevel.algorithms.base.Algorithm`."""

from __future__ import annotations

from .base import Algorithm, Candidate
from .bleaq import BLEAQ
from .nested import Nested

__all__ = ["Algorithm", "Candidate", "BLEAQ", "Nested", "names", "make_algorithm"]

_REGISTRY: dict[str, type[Algorithm]] = {"bleaq": BLEAQ, "nested": Nested}


def names() -> list[str]:
    """Names accepted by ``solve(..., algorithm=name)``."""
    return list(_REGISTRY)


def make_algorithm(algorithm) -> Algorithm:
    """An algorithm object from a name (default settings) or an already configured object."""
    if isinstance(algorithm, Algorithm):
        return algorithm
    if isinstance(algorithm, str):
        key = algorithm.lower()
        if key in _REGISTRY:
            return _REGISTRY[key]()
        raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(names())}")
    raise TypeError(f"algorithm must be a name or an Algorithm object, got {type(algorithm).__name__}")
