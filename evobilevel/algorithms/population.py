"""An upper-level population of ``(x, y)`` pairs and the feasibility-first order the algorithms select by."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .base import Candidate

__all__ = ["Population", "rank_key", "child_wins", "stalled", "better_candidate", "TARGET_MARGIN", "tolerance_cap"]

#: With a target, attempts converge to this fraction of it at least: an answer that only just meets the target
#: would leave no room for the lower level's error, and restarts could not do better than attempts that stop short.
TARGET_MARGIN = 10


def tolerance_cap(target: float | None) -> float:
    """The largest tolerance of F an attempt may converge to in a run with ``target`` (inf without one)."""
    return np.inf if target is None else target / TARGET_MARGIN


@dataclass
class Population:
    """Members ``(x, y)`` whose ``y`` the algorithm takes for the follower's answer to ``x``, with their values.

    Rows are members.

    Attributes
    ----------
    X : ndarray, shape (n, ul_dim)
    Y : ndarray, shape (n, ll_dim)
    F : ndarray, shape (n,)
    G : ndarray, shape (n, n_ul_constraints)
    ul_cv : ndarray, shape (n,)
        Upper-level constraint violation (0 feasible, inf failed).
    f : ndarray, shape (n,)
    ll_cv : ndarray, shape (n,)
        Lower-level constraint violation of ``y``.
    """

    X: np.ndarray
    Y: np.ndarray
    F: np.ndarray
    G: np.ndarray
    ul_cv: np.ndarray
    f: np.ndarray
    ll_cv: np.ndarray

    def __len__(self) -> int:
        return self.F.shape[0]

    def take(self, idx) -> Population:
        """The members ``idx`` (indices, a slice or a boolean mask), copied."""
        return Population(*(np.array(getattr(self, fl.name)[idx]) for fl in fields(self)))

    def put(self, idx, other: Population) -> None:
        """Overwrite the members ``idx`` with the members of ``other``, in place."""
        for fl in fields(self):
            getattr(self, fl.name)[idx] = getattr(other, fl.name)

    @staticmethod
    def concat(parts: list[Population]) -> Population:
        """The members of several populations, in order."""
        return Population(*(np.concatenate([getattr(p, fl.name) for p in parts]) for fl in fields(Population)))

    @property
    def feasible(self) -> np.ndarray:
        """(n,) bool: feasible at both levels."""
        return (self.ul_cv == 0) & (self.ll_cv == 0)

    def ranks(self, eps: float = 0.0) -> np.ndarray:
        """Feasibility-first ranks (n,), 0 best; upper-level violations up to ``eps`` count as none."""
        ul_cv = self.ul_cv if eps == 0 else np.where(self.ul_cv <= eps, 0.0, self.ul_cv)
        return rank_key(self.F, ul_cv, self.ll_cv)

    def best(self) -> Candidate:
        """The best member, feasibility first."""
        return self.candidate(int(np.argmin(self.ranks())))

    def candidate(self, i: int) -> Candidate:
        """Member i as a :class:`~evobilevel.algorithms.base.Candidate` (copied)."""
        return Candidate(self.X[i].copy(), self.Y[i].copy(), float(self.F[i]), float(self.f[i]),
                         float(self.ul_cv[i]), float(self.ll_cv[i]))


def rank_key(F: np.ndarray, ul_cv: np.ndarray, ll_cv: np.ndarray) -> np.ndarray:
    """Feasibility-first ranks (n,) of upper-level candidates, 0 best: feasible points by ``F``, then infeasible
    ones by total violation."""
    cv = ul_cv + ll_cv
    order = np.lexsort((np.where(cv > 0, 0.0, F), cv))
    ranks = np.empty(len(F), dtype=int)
    ranks[order] = np.arange(len(F))
    return ranks


def child_wins(parents: Population, children: Population, ranks=Population.ranks) -> np.ndarray:
    """One-to-one survivor selection: whether child j ranks strictly better than parent j (ties keep the parent).

    Parameters
    ----------
    parents, children : Population
        k members each, row j of one facing row j of the other.
    ranks : callable
        Ranks of a population (smaller is better); feasibility first by default.

    Returns
    -------
    ndarray of bool, shape (k,)
    """
    k = len(parents)
    r = ranks(Population.concat([parents, children]))
    return r[k:] < r[:k]


def stalled(best_history: list[float], population: Population, ftol: float, window: int,
            cap: float = np.inf, gathered: bool = False) -> bool:
    """Whether the search has converged: the best feasible ``F`` improved by less than ``ftol * (1 + |F|)`` (at
    most ``cap``) over ``window`` generations, and either the feasible members' ``F`` lie within that tolerance of
    each other, or the population is known to have ``gathered`` around its best member, or the stall has lasted
    twice as long.

    Parameters
    ----------
    best_history : list of float
        Best feasible ``F`` after each generation (``inf`` while there is none).
    population : Population
    gathered : bool
        The population has come back to an answer that an earlier attempt converged to (a restart that took the
        kept answer back): its members, around that answer, need not agree on their values to show that a whole
        window passed without a gain on it.
    """
    if len(best_history) <= window or not np.isfinite(best_history[-1]):
        return False
    now = best_history[-1]
    tol = min(ftol * (1 + abs(now)), cap)
    if best_history[-1 - window] - now >= tol:
        return False
    feasible = population.feasible
    spread = np.ptp(population.F[feasible]) if feasible.any() else np.inf
    return bool(gathered or spread < tol
                or (len(best_history) > 2 * window and best_history[-1 - 2 * window] - now < tol))


def stalled_infeasible(violation_history: list[float], window: int, max_generations: int) -> bool:
    """Whether a search without a feasible member has stopped closing in on the feasible set: the least violation
    fell by less than ``window / max_generations`` of itself over ``window`` generations. At that pace, kept up, it
    would not reach zero within the generation limit (the lower-level DE's rule for an infeasible row, at the upper
    level).

    Parameters
    ----------
    violation_history : list of float
        The best member's total violation after each generation (0 once it is feasible).
    """
    if len(violation_history) <= window or violation_history[-1] <= 0:
        return False
    return not violation_history[-1] < violation_history[-1 - window] * (1 - window / max_generations)


def infeasible_stall_message(window: int, max_generations: int) -> str:
    """Why an attempt ended by :func:`stalled_infeasible`, for the run's message."""
    return (f"no member is feasible, and the least violation fell by less than {window / max_generations:.1%} of "
            f"itself in {window} generations")


def better_candidate(a: Candidate | None, b: Candidate) -> Candidate:
    """The better of two candidates, feasibility first (``a`` may be None; a tie keeps ``a``)."""
    if a is None:
        return b
    ranks = rank_key(np.array([a.F, b.F]), np.array([a.ul_cv, b.ul_cv]), np.array([a.ll_cv, b.ll_cv]))
    return a if ranks[0] == 0 else b
