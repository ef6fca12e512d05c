"""What every bilevel algorithm shares: the incumbent it reports and the step-wise protocol the runner drives."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields

import numpy as np

__all__ = ["Algorithm", "Candidate", "Restarts", "rank_key", "child_wins", "stalled", "population_best"]


@dataclass
class Candidate:
    """A pair ``(x, y)`` whose ``y`` the algorithm takes for the lower-level answer to ``x``.

    Attributes
    ----------
    x : ndarray, shape (ul_dim,)
    y : ndarray, shape (ll_dim,)
    F, f : float
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


def rank_key(F: np.ndarray, ul_cv: np.ndarray, ll_cv: np.ndarray) -> np.ndarray:
    """Feasibility-first order of upper-level candidates: a lexsort key (smaller is better).

    Returns an array of shape (n,) of ranks: feasible points by ``F``, then infeasible ones by total violation.
    """
    cv = ul_cv + ll_cv
    order = np.lexsort((np.where(cv > 0, 0.0, F), cv))
    ranks = np.empty(len(F), dtype=int)
    ranks[order] = np.arange(len(F))
    return ranks


def population_ranks(pop: dict) -> np.ndarray:
    """:func:`rank_key` of a population held as arrays ``F, ul_cv, ll_cv`` (and others)."""
    return rank_key(pop["F"], pop["ul_cv"], pop["ll_cv"])


def child_wins(parents: dict, children: dict, ranks=population_ranks) -> np.ndarray:
    """One-to-one survivor selection: whether child j ranks strictly better than parent j (ties keep the parent).

    Parameters
    ----------
    parents, children : dict
        Arrays of k rows each (``F``, ``ul_cv``, ``ll_cv`` and any others), row j of one facing row j of the other.
    ranks : callable
        Ranks of such a dict of arrays (smaller is better); :func:`population_ranks` by default.

    Returns
    -------
    ndarray of bool, shape (k,)
    """
    k = len(parents["F"])
    r = ranks({key: np.concatenate([parents[key], children[key]]) for key in parents})
    return r[k:] < r[:k]


def population_best(pop: dict) -> Candidate:
    """The best member of a population held as arrays ``X, Y, F, f, ul_cv, ll_cv`` (feasibility first)."""
    i = int(np.argmin(population_ranks(pop)))
    return Candidate(pop["X"][i].copy(), pop["Y"][i].copy(), float(pop["F"][i]), float(pop["f"][i]),
                     float(pop["ul_cv"][i]), float(pop["ll_cv"][i]))


def stalled(best_history: list[float], pop: dict, ftol: float, window: int) -> bool:
    """Whether the search has converged: the best feasible ``F`` improved by less than ``ftol * (1 + |F|)`` over
    ``window`` generations, and either the feasible members' ``F`` lie within that tolerance of each other or
    the stall has lasted twice as long.

    Parameters
    ----------
    best_history : list of float
        Best feasible ``F`` after each generation (``inf`` while there is none).
    pop : dict
        The population's arrays (``F``, ``ul_cv``, ``ll_cv``).
    """
    if len(best_history) <= window or not np.isfinite(best_history[-1]):
        return False
    now = best_history[-1]
    tol = ftol * (1 + abs(now))
    if best_history[-1 - window] - now >= tol:
        return False
    feasible = (pop["ul_cv"] == 0) & (pop["ll_cv"] == 0)
    spread = np.ptp(pop["F"][feasible]) if feasible.any() else np.inf
    return bool(spread < tol or (len(best_history) > 2 * window and best_history[-1 - 2 * window] - now < tol))


def better_candidate(a: Candidate | None, b: Candidate) -> Candidate:
    """The better of two candidates, feasibility first (``a`` may be None)."""
    if a is None:
        return b
    ranks = rank_key(np.array([a.F, b.F]), np.array([a.ul_cv, b.ul_cv]), np.array([a.ll_cv, b.ll_cv]))
    return a if ranks[0] == 0 else b


@dataclass
class Restarts:
    """Restarts after convergence, a guard against premature convergence on a multimodal upper level.

    The best candidate of the finished attempts is kept aside (not in the new population, whose search it
    would pull back into the same basin). Each restart doubles the population, up to ``max_growth`` times the
    first one (a larger population sees more basins before it commits to one). Restarting stops after
    ``limit`` restarts or once ``patience`` attempts in a row found nothing better by more than
    ``tol * (1 + |F|)``.
    """

    limit: int
    patience: int
    kept: Candidate | None = None
    n_restarts: int = 0
    n_fruitless: int = 0
    max_growth: int = 4
    tol: float = 1e-4

    def population_size(self, initial: int) -> int:
        """The population for the current attempt."""
        return initial * min(2**self.n_restarts, self.max_growth)

    def after_attempt(self, attempt_best: Candidate) -> bool:
        """Record a finished attempt's best; whether to restart (counted when True)."""
        kept = self.kept
        # Progress means a real gain: tiny ones (an attempt polishing the same optimum) do not reset patience.
        winner = better_candidate(kept, attempt_best)
        improved = kept is None or (winner is attempt_best and not (
            attempt_best.feasible and kept.feasible and kept.F - attempt_best.F <= self.tol * (1 + abs(kept.F))))
        self.n_fruitless = 0 if improved else self.n_fruitless + 1
        self.kept = winner
        if self.n_restarts < self.limit and self.n_fruitless < self.patience:
            self.n_restarts += 1
            return True
        return False

    def best(self, current: Candidate) -> Candidate:
        """The better of the current population's best and the kept one."""
        return better_candidate(self.kept, current)


class Algorithm(ABC):
    """Base of the bilevel algorithms.

    The runner (:func:`evobilevel.solve`) deep-copies the configured algorithm, calls :meth:`setup` once and
    :meth:`step` once per upper-level generation until :attr:`converged` is set, a budget or the target stops
    it, or a callback asks to stop. Settings are dataclass fields of the subclass; state is created in
    :meth:`setup`, so one configured object can serve many runs.
    """

    name = "algorithm"
    converged: bool = False
    stop_message: str = ""

    def settings(self) -> dict:
        """The algorithm's settings, as stored with results."""
        out = {}
        for fl in fields(self):
            value = getattr(self, fl.name)
            out[fl.name] = value.settings() if hasattr(value, "settings") else _plain(value)
        return out

    @abstractmethod
    def setup(self, ctx) -> None:
        """Initialise the run's state (population, archives); may evaluate."""

    @abstractmethod
    def step(self, ctx) -> None:
        """One upper-level generation."""

    @abstractmethod
    def best(self) -> Candidate | None:
        """The incumbent reported to the user."""

    def record(self) -> dict:
        """Extra per-generation history fields (counters of model use, population spread, ...)."""
        return {}


def _plain(value):
    if hasattr(value, "__dataclass_fields__"):
        return {"type": type(value).__name__, **{f.name: _plain(getattr(value, f.name)) for f in fields(value)}}
    return value
