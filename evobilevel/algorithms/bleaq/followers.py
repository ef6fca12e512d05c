"""BLEAQ with several followers: each follower's response is modelled and settled on its own.

Every follower has its own archive of optima ``(x, y_i*, f_i*)``, its own psi/phi models fitted on it, and its own
record of hopeless searches; a candidate's follower i is settled by prediction, refinement or global search
whatever its other followers needed (:class:`~.settlement.LowerSettlement` on the follower's own problem, through
a :class:`~evobilevel.followers.FollowerContext`). The rest of BLEAQ (upper-level search, re-checks, the leader's
choice) sees the followers together: ``y`` their answers side by side, ``f`` the sum of their values, and a
joint archive of the pairs at which every follower's answer was feasible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...followers import FollowerContext
from ..archive import SolutionArchive
from .ledger import Ledger
from .response import Predictions, ResponseModel
from .settlement import Answers, LowerSettlement
from .state import SearchRecord

__all__ = ["FollowerLowerState", "FollowerArchives", "FollowerResponse", "FollowerSettlement"]


@dataclass
class FollowerLowerState:
    """What one follower's settlement keeps between generations (the part of a BLEAQ state it reads and writes).

    Attributes
    ----------
    archive : SolutionArchive
        The follower's optima.
    stuck, suspects : SearchRecord
    counts : dict
        The run's counters, shared by all followers (a row settled for three followers counts three times).
    ll_evals : dict
        The run's lower-level evaluations by phase, shared by all followers.
    lower_linear : bool or None
        Whether the follower's constraints have passed every test of linearity in y so far.
    lower_convex : None
        Never tested: several followers' lower levels are solved from scratch by their global searches
        (:meth:`FollowerSettlement.resolve`).
    probes, fallbacks : SearchRecord
    objective_first : bool or None
        The follower's probes of refinements from the minimum of its f alone and their fallbacks, and the verdict
        they gave (:mod:`~.objective_first`).
    """

    archive: SolutionArchive
    stuck: SearchRecord
    suspects: SearchRecord
    counts: dict
    ll_evals: dict
    lower_linear: bool | None = None
    lower_convex: bool | None = None
    probes: SearchRecord = field(default_factory=SearchRecord)
    fallbacks: SearchRecord = field(default_factory=SearchRecord)
    objective_first: bool | None = None


class FollowerArchives(SolutionArchive):
    """The joint archive ``(x, y, sum_i f_i)`` of a problem with several followers, with each follower's own.

    Parameters
    ----------
    ul_bounds : (ndarray, ndarray)
    blocks : sequence of slice
        Each follower's columns of ``y``.
    capacity : int
    """

    def __init__(self, ul_bounds, blocks, capacity: int):
        super().__init__(ul_bounds, blocks[-1].stop, capacity)
        self.blocks = tuple(blocks)
        self.parts = [SolutionArchive(ul_bounds, block.stop - block.start, capacity) for block in blocks]

    def replace(self, x: np.ndarray, y: np.ndarray, f: float, f_parts: np.ndarray | None = None) -> None:
        """Correct the entries stored for exactly ``x``, in the joint archive and in each follower's.

        ``f_parts`` (k,) are the followers' values at ``y``; without them (a leader's choice, which keeps each
        follower within its tolerance of its optimum) each follower's stored value stays.
        """
        super().replace(x, y, f)
        for i, (part, block) in enumerate(zip(self.parts, self.blocks)):
            part.replace(x, y[block], None if f_parts is None else f_parts[i])


class FollowerResponse:
    """The followers' psi/phi predictions side by side, for what looks at the whole lower level (the leader's
    test of whether a follower is free to choose, the re-checks' distance between answers).

    Parameters
    ----------
    parts : list of ResponseModel
        One per follower.
    blocks : sequence of slice
    """

    def __init__(self, parts: list[ResponseModel], blocks):
        self.parts, self.blocks = parts, tuple(blocks)
        self.psi_tol = parts[0].psi_tol
        self.y_widths = np.concatenate([part.y_widths for part in parts])

    def predict(self, archive: FollowerArchives, X: np.ndarray, rng: np.random.Generator) -> Predictions | None:
        """Every follower's predictions for the rows of X (n, ul_dim), joined (None while any follower's archive
        is too small): ``Y`` side by side, ``phi`` and ``f_bound`` added, ``trusted`` where every follower's is."""
        parts = [part.predict(own, X, rng) for part, own in zip(self.parts, archive.parts)]
        if any(p is None for p in parts):
            return None
        return Predictions(
            Y=np.hstack([p.Y for p in parts]), phi=np.sum([p.phi for p in parts], axis=0),
            trusted=np.all([p.trusted for p in parts], axis=0), determined=np.hstack([p.determined for p in parts]),
            f_bound=np.sum([p.f_bound for p in parts], axis=0), psi_error=np.hstack([p.psi_error for p in parts]))


class FollowerSettlement:
    """Settles the lower levels of a problem with several followers, each follower on its own (see the module's
    description); the same interface as :class:`~.settlement.LowerSettlement`.

    Parameters
    ----------
    problem : Problem
        With ``follower_set``.
    accept_tol, psi_tol, refine_tol : float
        See :class:`~.response.ResponseModel`.
    local_solver, global_solver : LowerSolver
    infeasible_evals : int, optional
        Evaluations of a capped search (each follower's default: 40 per variable of its own).
    ledger : Ledger, optional
        Counts the followers' lower-level evaluations by phase.
    certify_infeasible : bool
        See :class:`~.settlement.LowerSettlement` (each follower's constraints are tested on their own).
    """

    def __init__(self, problem, accept_tol: float, psi_tol: float, refine_tol: float, local_solver, global_solver,
                 infeasible_evals: int | None, ledger: Ledger | None = None, certify_infeasible: bool = True):
        followers = problem.follower_set
        self.blocks = followers.blocks
        self.parts = [
            LowerSettlement(ResponseModel(problem.ul_bounds, own.ll_bounds, accept_tol, psi_tol, refine_tol),
                            local_solver, global_solver, infeasible_evals, ledger, certify_infeasible)
            for own in followers.problems
        ]
        self.response = FollowerResponse([part.response for part in self.parts], self.blocks)

    @staticmethod
    def new_archive(problem, capacity: int) -> FollowerArchives:
        return FollowerArchives(problem.ul_bounds, problem.follower_set.blocks, capacity)

    @staticmethod
    def new_states(archive: FollowerArchives, counts: dict, ll_evals: dict) -> list[FollowerLowerState]:
        return [FollowerLowerState(part, SearchRecord(), SearchRecord(), counts, ll_evals)
                for part in archive.parts]

    def settle(self, ctx, state, X: np.ndarray, starts: np.ndarray | None, allow_prediction: bool = True) -> Answers:
        """Each follower's answers for the rows of X, settled on its own and archived in its archive; joined, and
        added to the joint archive (see :meth:`~.settlement.LowerSettlement.settle`)."""
        parts = [part.settle(FollowerContext(ctx, i), state.followers[i], X, _block(starts, block), allow_prediction)
                 for i, (part, block) in enumerate(zip(self.parts, self.blocks))]
        joined = _join(X, parts)
        LowerSettlement.archive(state, joined)
        return joined

    def resolve(self, ctx, state, X: np.ndarray, away: np.ndarray | None = None) -> Answers:
        """The global searches of every follower at the rows of X, joined; not archived (no follower is tested for
        convexity: see :meth:`~.settlement.LowerSettlement.resolve`)."""
        return self.search(ctx, state, X, None)

    def search(self, ctx, state, X: np.ndarray, Y0: np.ndarray | None, capped: np.ndarray | None = None) -> Answers:
        """Each follower's global search at the rows of X, joined; not archived."""
        return _join(X, [part.search(FollowerContext(ctx, i), state.followers[i], X, _block(Y0, block), capped)
                         for i, (part, block) in enumerate(zip(self.parts, self.blocks))])

    def archive(self, state, settled: Answers) -> None:
        """Add the feasible answers of ``settled`` to the joint archive and each follower's to its own."""
        LowerSettlement.archive(state, settled)
        for i, block in enumerate(self.blocks):
            own = Answers(settled.X, settled.Y[:, block], settled.f_parts[:, i], settled.cv_parts[:, i],
                          curvature=settled.curvature[:, block])
            LowerSettlement.archive(state.followers[i], own)


def _block(Y: np.ndarray | None, block: slice) -> np.ndarray | None:
    return None if Y is None else Y[..., block]


def _join(X: np.ndarray, parts: list[Answers]) -> Answers:
    """The followers' answers to the same candidates as one, each one's value and violation kept."""
    f_parts = np.column_stack([p.f for p in parts])
    cv_parts = np.column_stack([p.ll_cv for p in parts])
    return Answers(X, np.hstack([p.Y for p in parts]), f_parts.sum(axis=1), cv_parts.sum(axis=1),
                   f_parts=f_parts, cv_parts=cv_parts, curvature=np.hstack([p.curvature for p in parts]))
