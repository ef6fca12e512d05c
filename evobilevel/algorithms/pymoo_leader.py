"""Any pymoo algorithm in the leader's seat (GA, DE, PSO, CMA-ES, NSGA-II, ...), the followers settled by evobilevel.

The pymoo algorithm proposes populations of ``x`` and is driven one generation per step; each population is
evaluated by the bridge (:class:`evobilevel.bridge.LeaderProblem`), which settles the followers with the archive,
response models and warm starts of :class:`~.followers.Followers` and evaluates the leader, all through the run's
context: counted per level, within the budgets, lower levels in parallel chunks. The pymoo algorithm is seeded from
the run's generator, so a run is reproducible and identical for any ``n_jobs``; its state (the pymoo algorithm,
with the bridge and the followers' archive inside) is what a checkpoint holds.

Reference: J. Blank, K. Deb, "pymoo: Multi-objective optimization in Python", IEEE Access 8:89497-89509, 2020.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..front import Front, compromise
from .base import Algorithm, AlgorithmState, Candidate
from .followers import Followers

__all__ = ["PymooLeader", "PymooLeaderState", "is_pymoo_algorithm", "describe"]

#: Attributes of a pymoo algorithm that belong to a run, not to its configuration.
_RUN_ATTRIBUTES = frozenset({"problem", "history", "pop", "off", "opt", "n_iter", "data", "is_initialized",
                             "start_time", "random_state", "display", "callback", "evaluator", "output", "archive",
                             "es", "norm", "generator", "state"})
#: Levels of nested objects described in the settings (algorithm -> mating -> crossover -> its parameters).
_DESCRIBE_DEPTH = 4


def is_pymoo_algorithm(obj) -> bool:
    """Whether ``obj`` is a pymoo Algorithm, without importing pymoo unless the object comes from it."""
    if not any(cls.__module__.split(".")[0] == "pymoo" for cls in type(obj).__mro__):
        return False
    from pymoo.core.algorithm import Algorithm as PymooAlgorithm

    return isinstance(obj, PymooAlgorithm)


def describe(obj, depth: int = _DESCRIBE_DEPTH):
    """Plain JSON values describing a pymoo object's configuration: its type and settings, nested objects to
    ``depth`` levels; what belongs to a run (population, problem, random state) is left out."""
    from ..plain import plain

    if obj is None or isinstance(obj, (bool, int, float, str, np.generic, np.ndarray)):
        return plain(obj)
    if isinstance(obj, (list, tuple)):
        return [describe(v, depth) for v in obj]
    if isinstance(obj, dict):
        return {str(k): describe(v, depth) for k, v in obj.items()}
    out = {"type": type(obj).__qualname__}
    if depth > 0 and hasattr(obj, "__dict__"):
        out.update({k: describe(v, depth - 1) for k, v in vars(obj).items()
                    if not k.startswith("_") and k not in _RUN_ATTRIBUTES})
    return out


@dataclass
class PymooLeaderState(AlgorithmState):
    """A run of a pymoo leader between two generations.

    Attributes
    ----------
    algorithm : pymoo Algorithm
        Set up on a :class:`~evobilevel.bridge.LeaderProblem`, which holds the followers' archive and the incumbent.
    """

    algorithm: Any = None


@dataclass
class PymooLeader(Algorithm):
    """A pymoo algorithm drives the leader; evobilevel settles every follower.

    Parameters
    ----------
    algorithm : pymoo Algorithm
        A configured, not yet set up pymoo algorithm, e.g. ``GA(pop_size=20)`` or ``NSGA2(pop_size=40)``; each
        run works on its own copy. Its seed is replaced by one drawn from the run's seed.
    termination : pymoo Termination or tuple, optional
        E.g. ``("n_gen", 100)``; default the algorithm's own, else pymoo's default for the number of objectives.
        The run's budgets and target apply besides.
    followers : Followers
        How the followers are settled.

    Notes
    -----
    The run ends by its own rule when the pymoo termination is met. With one leader objective the result is the
    best pair evaluated (feasibility first); with several, ``result.front`` is the feasible, non-dominated part of
    the pymoo algorithm's optimum (``algorithm.opt``). A checkpoint pickles the pymoo algorithm; pymoo's CMAES
    drops its running strategy when pickled (it lives in a generator), so its runs cannot be resumed.
    """

    algorithm: Any
    termination: Any = None
    followers: Followers = field(default_factory=Followers)

    def __post_init__(self) -> None:
        if not is_pymoo_algorithm(self.algorithm):
            raise TypeError(f"PymooLeader needs a pymoo Algorithm object, got {type(self.algorithm).__name__}")
        if self.algorithm.problem is not None:
            raise ValueError(f"the pymoo algorithm {type(self.algorithm).__name__} has already been set up on a "
                             "problem; give a fresh one (each run copies it)")

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"pymoo-{type(self.algorithm).__name__.lower()}"

    @property
    def multi_objective(self) -> bool:  # type: ignore[override]
        """Whether the pymoo algorithm can serve a leader with several objectives: all but pymoo's single-objective
        algorithms (``pymoo.algorithms.soo``), which fail on several objectives with pymoo's own errors."""
        return not any(cls.__module__.startswith("pymoo.algorithms.soo.") for cls in type(self.algorithm).__mro__)

    def settings(self) -> dict:
        """The pymoo algorithm's configuration (:func:`describe`), the termination and the followers' settings."""
        from ..plain import plain

        return {"algorithm": describe(self.algorithm), "termination": describe(self.termination),
                "followers": plain(self.followers)}

    # ------------------------------------------------------------------ the run
    def setup(self, ctx) -> None:
        from ..bridge import LeaderProblem

        leader = LeaderProblem(ctx.problem, self.followers, context=ctx)
        algorithm = copy.deepcopy(self.algorithm)
        options = {"seed": int(ctx.rng.integers(2**31 - 1)), "verbose": False}
        if self.termination is not None:
            options["termination"] = copy.deepcopy(self.termination)
        algorithm.setup(leader, **options)
        self.state = PymooLeaderState(algorithm=algorithm)
        self._advance()  # the initial population

    def restore(self, ctx, state: PymooLeaderState) -> None:
        state.algorithm.problem.attach(ctx)
        self.state = state

    def step(self, ctx) -> None:
        self._advance()
        self.state.generation += 1

    def _advance(self) -> None:
        """One pymoo generation (ask, evaluate through the bridge, tell); the run ends when pymoo's termination
        is met."""
        algorithm = self.state.algorithm
        algorithm.next()
        if not algorithm.has_next():
            self.state.converged = True
            self.state.stop_message = f"pymoo termination met ({type(algorithm.termination).__name__})"

    # ------------------------------------------------------------ reporting
    def _leader(self):
        return None if self.state is None else self.state.algorithm.problem

    def best(self) -> Candidate | None:
        leader = self._leader()
        if leader is None:
            return None
        if leader.bilevel.n_objectives == 1:
            return leader.best
        front = self.front()
        if not len(front):
            return None
        i = compromise(front.F)
        return Candidate(front.X[i].copy(), front.Y[i].copy(), front.F[i].copy(), float(front.f[i]), 0.0, 0.0)

    def front(self) -> Front | None:
        leader = self._leader()
        if leader is None or leader.bilevel.n_objectives == 1:
            return None
        from ..bridge import front_of

        return front_of(self.state.algorithm.opt, leader.bilevel)

    def record(self) -> dict:
        """How the followers' answers were found so far, and the front's size for several objectives."""
        leader = self._leader()
        if leader is None:
            return {}
        out = {f"followers_{key}": value for key, value in leader.followers.counts(leader.followers_state).items()}
        if leader.bilevel.n_objectives > 1:
            out["front_size"] = len(self.front())
        return out
