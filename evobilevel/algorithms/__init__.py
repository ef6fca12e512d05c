"""Bilevel algorithms: one per module, each a configurable :class:`~evobilevel.algorithms.base.Algorithm`, the
registry that ``solve(..., algorithm=name)`` looks names up in, and the wrapping of pymoo algorithms
(:class:`PymooLeader`) that ``solve(..., algorithm=<pymoo algorithm>)`` uses."""

from __future__ import annotations

from collections.abc import Callable

from .base import Algorithm, AlgorithmState, Candidate
from .bleaq import BLEAQ
from .followers import Followers
from .nested import Nested
from .population import Population
from .pymoo_leader import PymooLeader, is_pymoo_algorithm

__all__ = ["Algorithm", "AlgorithmState", "Candidate", "Population", "BLEAQ", "Nested", "PymooLeader", "Followers",
           "names", "make_algorithm", "register", "default_algorithm", "check_objectives"]

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
    """An algorithm object from a name (default settings), an already configured object, or a pymoo algorithm
    object (wrapped in :class:`PymooLeader`)."""
    if isinstance(algorithm, Algorithm):
        return algorithm
    if is_pymoo_algorithm(algorithm):
        return PymooLeader(algorithm)
    if isinstance(algorithm, str):
        key = algorithm.strip().lower()
        if key in _REGISTRY:
            made = _REGISTRY[key]()
            if not isinstance(made, Algorithm):
                raise TypeError(f"the factory registered as {key!r} returned {type(made).__name__}, not an Algorithm")
            return made
        raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(names())}")
    raise TypeError(f"algorithm must be a name, an Algorithm or a pymoo Algorithm object, got "
                    f"{type(algorithm).__name__}")


def default_algorithm(problem) -> Algorithm:
    """The algorithm ``solve`` uses when none is given: BLEAQ, or for a leader with several objectives pymoo's
    NSGA-II (its default population of 100) for :data:`NSGA2_GENERATIONS` generations."""
    if problem.n_objectives == 1:
        return BLEAQ()
    from pymoo.algorithms.moo.nsga2 import NSGA2

    return PymooLeader(NSGA2(), termination=("n_gen", NSGA2_GENERATIONS))


#: Generations of the default NSGA-II: pymoo's own default rule waits for the front to stop moving, which NSGA-II's
#: front, reshuffled every generation, seldom does (docs/design.md).
NSGA2_GENERATIONS = 100


def check_objectives(algorithm: Algorithm, problem) -> None:
    """Raise ValueError when ``algorithm`` cannot serve ``problem``'s leader (several objectives, an algorithm
    for one)."""
    k = problem.n_objectives
    if k > 1 and not algorithm.multi_objective:
        raise ValueError(
            f"{algorithm.name} optimises a leader with one objective, and {problem.name} has {k}; use a "
            "multi-objective pymoo algorithm, e.g. algorithm=NSGA2() (NSGA-II is the default when no algorithm is "
            "given)")
