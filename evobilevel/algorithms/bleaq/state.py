"""Everything of a BLEAQ run that changes from one generation to the next: a checkpoint is this object."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..archive import RingBuffer, SolutionArchive
from ..base import AlgorithmState
from ..population import Population
from ..restarts import RestartState
from .ledger import LL_PHASES

__all__ = ["BLEAQState", "LeaderState", "RecheckState", "SearchRecord", "COUNTERS", "SUSPECT_GAIN"]

#: A second answer for a row has found a lower value when it beats the first by more than this, relative to
#: ``1 + |f|``: the default global search's own convergence tolerance (``DifferentialEvolution.ftol_abs``); less is
#: two searches ending at the same optimum, or at another one as good, which is the leader's to choose among.
SUSPECT_GAIN = 1e-4

#: Per-run counters reported in every history record: how the lower levels were settled (predicted by the models,
#: refined locally, searched globally, capped, suspected local optima kept without a search or settled by a
#: refinement from the minimum of f alone, rows refined so because the run's refinements were found trapped, stuck
#: rows certified infeasible, solves from scratch replaced by a refinement where the follower is certified convex),
#: how often the upper-level model proposed a candidate, the re-checks of the best member and what they corrected,
#: the leader's choices and those that gained.
COUNTERS = ("predicted", "refined", "global", "model_candidates", "rechecks", "recheck_corrections",
            "leader_choices", "leader_improvements", "capped_global", "suspects_kept", "suspects_refined",
            "objective_first", "certified_infeasible", "certified_convex")


@dataclass
class LeaderState:
    """What the leader's choice among the follower's optima has learnt.

    Attributes
    ----------
    tried : dict
        ``x.tobytes()`` of the members the leader has chosen for (once per ``x``), oldest first.
    seen_free : dict
        ``x.tobytes()`` of members at which a global re-solve found another answer as good as theirs, far away.
    next_generation : int
        The first generation at which the leader may choose again (misses space the attempts out).
    misses : int
        Attempts in a row that did not help their member.
    G_moves_with_y : ndarray of bool, shape (n_ul_constraints,), or None
        Upper-level constraints seen to depend on ``y`` (None until the first gradient).
    chosen_components : ndarray of bool, shape (ll_dim,), or None
        Variables of ``y`` that the choices which gained have moved (None until one has): the follower is free
        along them, and the leader prefers some of its answers there.
    chosen_x : bytes or None
        ``x.tobytes()`` of the member whose answer the last choice that gained has set.
    """

    tried: dict = field(default_factory=dict)
    seen_free: dict = field(default_factory=dict)
    next_generation: int = 0
    misses: int = 0
    G_moves_with_y: np.ndarray | None = None
    chosen_components: np.ndarray | None = None
    chosen_x: bytes | None = None

    def holds_choice(self, x: np.ndarray) -> bool:
        """Whether the member at ``x`` (ul_dim,) holds the answer of the last choice that gained."""
        return self.chosen_x is not None and x.tobytes() == self.chosen_x


@dataclass
class RecheckState:
    """Schedule of the global re-checks of the best member's lower level.

    Attributes
    ----------
    last : int
        Generation of the last re-check.
    interval : int
        Generations from one re-check to the next (halved after a correction; doubled after a confirmation, up to
        ``recheck_every`` once any re-check of the run has corrected an answer).
    checked_x : ndarray or None
        ``x`` of the member whose answer the last re-check confirmed (not checked again while it stays best).
    """

    last: int
    interval: int
    checked_x: np.ndarray | None = None


@dataclass
class SearchRecord:
    """How one kind of global search has fared in a run, for the rules that decide how many rows get one.

    BLEAQ keeps two: ``stuck``, for rows whose local refinement ended infeasible (a search pays when it finds a
    feasible answer), and ``suspects``, for rows whose refinement ended feasible but above phi's bound (a search pays
    when it finds a lower value); and two more for refinements from the minimum of f alone (``probes``,
    ``fallbacks``: :mod:`~.objective_first`).

    Attributes
    ----------
    tried : int
    paid : int
        The searches that found what they were made for.
    credit : float
        Searches owed to the rows passed over while only a share of them is searched (see
        :meth:`~.settlement.LowerSettlement.sample_stuck` and :meth:`~.settlement.LowerSettlement.sample_suspects`).
    """

    tried: int = 0
    paid: int = 0
    credit: float = 0.0

    def count(self, paid: np.ndarray) -> None:
        """Record searches, ``paid`` (k,) bool saying which of them found what they were made for."""
        self.tried += int(paid.size)
        self.paid += int(paid.sum())

    def owed(self, share: float, n: int) -> np.ndarray:
        """Which of n rows get a search (n,) bool when a ``share`` of them is owed one: the share accumulates in
        ``credit``, carried over from call to call, and a row gets a search whenever the credit reaches one."""
        take = np.zeros(n, bool)
        for i in range(n):
            self.credit += share
            if self.credit >= 1.0:
                take[i], self.credit = True, self.credit - 1.0
        return take


@dataclass
class BLEAQState(AlgorithmState):
    """A BLEAQ run between two generations.

    Attributes
    ----------
    population : Population or None
        The current attempt's members (None before the first is evaluated).
    archive : SolutionArchive
        Lower-level optima ``(x, y*, f*)`` for warm starts and the psi/phi models.
    evaluated : RingBuffer
        ``X, F, G`` of the settled pairs evaluated at the upper level, for the upper-level model.
    best_history : list of float
        Best feasible ``F`` after each generation of the current attempt (the stall test's window only).
    violation_history : list of float
        The best member's total violation after each generation of the current attempt, 0 once it is feasible (the
        window of the stall test for a population without a feasible member).
    eps0, eps_start : float, int
        The current attempt's starting epsilon level and the generation it started at.
    restarts, recheck, leader : RestartState, RecheckState, LeaderState
    stuck, suspects, probes, fallbacks : SearchRecord
        ``probes``: the refinements of a settled row from the minimum of f alone, paid when they found a lower
        answer (:meth:`~.objective_first.ObjectiveFirst.probe`); ``fallbacks``: where refinements start from there,
        those from the warm starts of rows that did not settle so, paid when they found a better answer
        (:meth:`~.objective_first.ObjectiveFirst.route`).
    counts : dict
        The :data:`COUNTERS`.
    ll_evals : dict
        Lower-level evaluations by phase (:data:`~.ledger.LL_PHASES`).
    certified : int
        Generations in a row whose model certified the best member as a local optimum.
    outclassed : int
        Generations in a row whose model showed that the restart's basin, away from the kept answer, cannot beat it.
    single_basin : bool
        The first attempt's model certified its answer over most of the box (no restart needed).
    kept_member : Population or None
        The restarts' kept answer as a member (one row), to be taken back by a restart that comes back to it.
    kept_stalled : bool
        The kept answer's attempt ended by the stall rule (no model certificate).
    took_back : bool
        The current attempt's population gathered around the kept answer and took it back.
    followers : list of FollowerLowerState, optional
        With several followers, what each one's settlement keeps (its archive is a part of ``archive``).
    lower_linear : bool or None
        Whether the follower's constraints have passed every test of linearity in y so far (None before the first;
        see :meth:`~.settlement.LowerSettlement._drop_infeasible`).
    lower_convex : bool or None
        Whether the follower's problem has passed every test of convexity so far (None before the first; see
        :meth:`~.settlement.LowerSettlement.convex_rows`).
    objective_first : bool or None
        Whether the run's refinements start from the minimum of f alone (None until the probes decide; see
        :mod:`~.objective_first`).
    """

    archive: SolutionArchive | None = None
    evaluated: RingBuffer | None = None
    population: Population | None = None
    best_history: list = field(default_factory=list)
    violation_history: list = field(default_factory=list)
    eps0: float = 0.0
    eps_start: int = 0
    restarts: RestartState = field(default_factory=RestartState)
    recheck: RecheckState | None = None
    leader: LeaderState = field(default_factory=LeaderState)
    stuck: SearchRecord = field(default_factory=SearchRecord)
    suspects: SearchRecord = field(default_factory=SearchRecord)
    probes: SearchRecord = field(default_factory=SearchRecord)
    fallbacks: SearchRecord = field(default_factory=SearchRecord)
    counts: dict = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    ll_evals: dict = field(default_factory=lambda: dict.fromkeys(LL_PHASES, 0))
    certified: int = 0
    outclassed: int = 0
    single_basin: bool = False
    kept_member: Population | None = None
    kept_stalled: bool = False
    took_back: bool = False
    followers: list | None = None
    lower_linear: bool | None = None
    lower_convex: bool | None = None
    objective_first: bool | None = None

    def new_attempt(self) -> None:
        """Forget the convergence tests' records: a new attempt's population starts."""
        self.best_history, self.violation_history = [], []
        self.certified, self.outclassed, self.took_back = 0, 0, False

    def note_best(self, best, window: int) -> float:
        """Add this generation's best member (a Candidate) to the convergence tests' records, kept to what their
        ``window`` of generations looks at; returns the best feasible ``F`` before it (inf if none)."""
        before = self.best_history[-1] if self.best_history else np.inf
        self.best_history.append(best.F if best.feasible else np.inf)
        del self.best_history[: -(2 * window + 1)]
        self.violation_history.append(0.0 if best.feasible else best.ul_cv + best.ll_cv)
        del self.violation_history[: -(window + 1)]
        return before

    def holds_stalled_kept(self, best) -> bool:
        """Whether the current attempt has taken back a kept answer whose attempt ended by the stall rule, and that
        answer (a Candidate, ``best`` this generation's best member) is still its best member."""
        kept = self.restarts.kept
        return self.took_back and self.kept_stalled and np.array_equal(best.x, kept.x) and best.F == kept.F
