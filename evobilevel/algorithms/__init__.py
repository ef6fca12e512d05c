"""Bilevel algorithms: one per module, each a configurable :class:`~evobilevel.algorithms.base.Algorithm`, and the
registry that ``solve(..., algorithm=name)`` looks names up in."""

from __future__ import annotations

from collections.abc import Callable

from .base import Algorithm, AlgorithmState, Candidate
from .bleaq import BLEAQ
from .nested import Nested
from .population import Population

__all__ = ["Algorithm", "AlgorithmState", "Candidate", "Population", "BLEAQ", "Nested", "names", "make_algorithm",
           "register"]

_REGISTRY: dict[str, Callable[[], Algorithm]] = {"bleaq": BLEAQ, "nested": Nested}


def names() -> list[str]:
    """Names accepted by ``solve(..., algorithm=name)``."""
    return list(_REGISTRY)


def register(name: str, factory: Callable[[], Algorithm], replace: bool = False) -> None:
    """Make an algorithm available by name to :func:`evobilevel.solve`, the command line and benchmark grids.

    Parameters
    ----------
    name : str
        Looked up case-insensitively.
    factory : callable
        Called without arguments for a configured :class:`~evobilevel.algorithms.base.Algorithm` (its class, or a
        function that sets some of its options).
    replace : bool
        Allow a name that is already registered to be given another factory.

    Raises
    ------
    ValueError
        The name is empty or already taken (without ``replace``), or ``factory`` is not callable.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"an algorithm's name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise ValueError(f"register({name!r}, ...) needs a callable that returns an Algorithm, got {factory!r}")
    key = name.strip().lower()
    if key in _REGISTRY and not replace:
        raise ValueError(f"an algorithm named {key!r} is already registered; pass replace=True to replace it")
    _REGISTRY[key] = factory


def make_algorithm(algorithm) -> Algorithm:
    """An algorithm object from a name (default settings) or an already configured object."""
    if isinstance(algorithm, Algorithm):
        return algorithm
    if isinstance(algorithm, str):
        key = algorithm.strip().lower()
        if key in _REGISTRY:
            made = _REGISTRY[key]()
            if not isinstance(made, Algorithm):
                raise TypeError(f"the factory registered as {key!r} returned {type(made).__name__}, not an Algorithm")
            return made
        raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(names())}")
    raise TypeError(f"algorithm must be a name or an Algorithm object, got {type(algorithm).__name__}")
