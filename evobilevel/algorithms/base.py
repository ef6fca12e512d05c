"""What every bilevel algorithm shares: the step-wise protocol the runner drives, the state a checkpoint holds, and
the incumbent it reports."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from ..plain import plain

__all__ = ["Algorithm", "AlgorithmState", "Candidate"]


@dataclass
class Candidate:
    """A pair ``(x, y)`` whose ``y`` the algorithm takes for the lower-level answer to ``x``.

    Attributes
    ----------
    x : ndarray, shape (ul_dim,)
    y : ndarray, shape (ll_dim,)
    F, f : float
        ``F`` is an ndarray of shape (k,) for a leader with k objectives.
    ul_cv, ll_cv : float
        Constraint violation at each level (0 feasible, inf failed).
    """

    x: np.ndarray
    y: np.ndarray
    F: float
    f: float
    ul_cv: float
    ll_cv: float

    @property
    def feasible(self) -> bool:
        return self.ul_cv == 0 and self.ll_cv == 0


@dataclass
class AlgorithmState:
    """The part of a run's state every algorithm has; an algorithm's own state extends it.

    Attributes
    ----------
    generation : int
        Upper-level generations done.
    converged : bool
        The algorithm's own stopping rule has ended the run.
    stop_message : str
        Why it ended.
    """

    generation: int = 0
    converged: bool = False
    stop_message: str = ""


class Algorithm(ABC):
    """Base of the bilevel algorithms.

    An algorithm is its settings: the fields of a dataclass subclass, never changed by a run, so that one
    configured object can serve many runs. Everything that changes lives in :attr:`state`, an
    :class:`AlgorithmState` (or a subclass) that :meth:`setup` creates; a checkpoint is that object, and
    :meth:`restore` continues from it.

    The runner (:func:`evobilevel.solve`) deep-copies the configured algorithm, calls :meth:`setup` once (or
    :meth:`restore` when resuming), then :meth:`step` once per upper-level generation until
    ``state.converged`` is set, a budget or the target stops it, or a callback asks to stop. Everything is
    evaluated through the run context it is given (``ctx.evaluate_upper``, ``ctx.evaluate_lower``,
    ``ctx.solve_lower``), which counts the evaluations and enforces the budgets; random numbers come from
    ``ctx.rng`` only.

    To make an algorithm available by name, ``evobilevel.algorithms.register("name", MyAlgorithm)``.

    An algorithm for a leader with several objectives sets :attr:`multi_objective` and reports its non-dominated
    pairs through :meth:`front`; :meth:`best` then gives one of them.
    """

    name: ClassVar[str] = "algorithm"
    #: Whether the algorithm can serve a leader with several objectives (``Problem(..., n_objectives=k)``).
    multi_objective: ClassVar[bool] = False
    state: Any = None

    @property
    def converged(self) -> bool:
        """Whether the algorithm's own rule has ended the run."""
        return bool(self.state is not None and self.state.converged)

    @property
    def stop_message(self) -> str:
        return "" if self.state is None else self.state.stop_message

    def settings(self) -> dict:
        """The algorithm's settings, as stored with results (plain JSON values)."""
        return {fl.name: plain(getattr(self, fl.name)) for fl in fields(self)}

    @abstractmethod
    def setup(self, ctx) -> None:
        """Create :attr:`state` for a new run (the initial population, archives); may evaluate."""

    def restore(self, ctx, state) -> None:
        """Continue from a state saved by an earlier run of the same settings and problem.

        Algorithms that derive working parts from their settings and the problem (in :meth:`setup`) rebuild
        them here too.
        """
        self.state = state

    @abstractmethod
    def step(self, ctx) -> None:
        """One upper-level generation."""

    @abstractmethod
    def best(self) -> Candidate | None:
        """The incumbent reported to the user (None before there is one)."""

    def answers(self) -> list[Candidate]:
        """The answers the run holds, the incumbent (:meth:`best`) first; an algorithm that restarts also holds the
        best answer of its earlier attempts and the current attempt's best. With a target, the run ends as soon as
        any of them is within it, and reports that one."""
        best = self.best()
        return [] if best is None else [best]

    def front(self):
        """The non-dominated pairs found so far (a :class:`~evobilevel.front.Front`) for a leader with several
        objectives; None for a leader with one."""
        return None

    def record(self) -> dict:
        """Extra per-generation history fields (counters of model use, population spread, ...)."""
        return {}
