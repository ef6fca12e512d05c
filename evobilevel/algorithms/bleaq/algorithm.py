"""BLEAQ: bilevel evolutionary algorithm with quadratic approximations of the lower level.

One generation:

1. the upper-level search proposes offspring (DE on the joint ``(x, y)`` vector) and one candidate from a
   quadratic model of the leader's problem around the best member, its constraints met at the current epsilon
   level (and, while that level is above 0, a second that meets them exactly) (:mod:`.upper`);
2. the lower-level settlement gives each candidate its follower's answer: predicted by the psi/phi models where
   they are trusted, else refined locally, else searched globally (:mod:`.settlement`, :mod:`.response`);
3. the candidates are evaluated at the upper level and each competes with its parent, upper-level violations
   compared at the current epsilon level (:mod:`evobilevel.epsilon`);
4. the leader chooses among the follower's optimal answers for the best member where that can help
   (:mod:`.leader`);
5. from time to time the best member's lower level is re-checked globally (:mod:`.recheck`);
6. once the best ``F`` stalls, the best member is re-checked and the leader chooses for it; then the run stops
   or restarts from a fresh population (:mod:`~evobilevel.algorithms.restarts`).

The design notes (``docs/design.md``) say what each mechanism is for and which experiments chose the defaults.

Differences from BLEAQ/BLEAQ2 (Sinha et al.): DE/current-to-pbest/1 instead of PCX at the upper level, the
prediction accepted by the psi/phi consistency test instead of by a mean-squared-error threshold alone, the
model form chosen per output with that form's own coefficients, and a quasi-Newton refinement instead of a
quadratic-programming phase.

References: A. Sinha, P. Malo, K. Deb, "Evolutionary algorithm for bilevel optimization using approximations
of the lower level optimal solution mapping", Eur. J. Oper. Res. 257(2):395-411, 2017; A. Sinha, Z. Lu,
K. Deb, P. Malo, "Bilevel optimization based on iterative approximation of multiple mappings",
J. Heuristics 26:151-185, 2020.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral
from typing import ClassVar

import numpy as np

from ...epsilon import EpsilonSchedule
from ...integrality import integer_mask, round_integral, search_box
from ...lower import DifferentialEvolution, LockstepRefinement, default_solver
from ...lower.refinement import Refinement
from ...space import latin_hypercube, widths
from ..archive import RingBuffer, SolutionArchive
from ..base import Algorithm, Candidate
from ..population import Population, infeasible_stall_message, stalled, stalled_infeasible, tolerance_cap
from ..restarts import RestartRule
from .followers import FollowerSettlement
from .leader import LeaderPolicy
from .ledger import Ledger
from .recheck import Recheck
from .response import ResponseModel
from .settlement import LowerSettlement, settle_initial
from .state import BLEAQState, RecheckState
from .upper import ModelProposal, Offspring, UpperSearch

__all__ = ["BLEAQ"]

#: A population of at least this many members: fewer see too little of a multimodal upper level.
MIN_POP_SIZE = 24
#: Members per upper-level variable (plus as many more), so that the population grows with the dimension.
POP_PER_VARIABLE = 5
#: A restart's population is at least this large: DE needs a few members beyond the parents of one offspring.
MIN_RESTART_SIZE = 8
#: A feasible best member must have held for this share of the stall window before the leader chooses for it.
HELD_SHARE = 5
#: A model whose points span at least this share of every variable's range, and that certifies the best member,
#: shows the leader's problem to be one quadratic basin over most of the box: restarts are not needed.
SINGLE_BASIN_SPAN = 0.5
#: Generations in a row in which the model around the best member must certify it as a local optimum: the second
#: confirms the first with the evaluations the first one's generation added near the best member.
CERTIFIED_GENERATIONS = 2
#: Renewals of the upper-level model's points over which the epsilon level falls to 0. The phase is a path of
#: relaxed problems that the model candidate leads the population along, one step per model fitted on points near
#: the current best; counting it in renewals rather than generations makes it grow with the model (a full quadratic
#: in ``d`` variables) and shrink with the offspring a generation adds. 37 renewals are the 120 generations measured
#: at (5, 5) on SMD10 and SMD12 (design notes, "Constraint handling"): about 200 at (10, 10), 42 at two variables.
EPS_RENEWALS = 37
#: Local refinement iterations per row. A refinement stopped while still descending goes on to a global search, which
#: costs more than finishing it: 100 iterations of about ``ll_dim + 2`` evaluations each stay below the 1,000-6,000
#: evaluations of a global search at every size from (2, 3) to (10, 10), while a start far from the optimum in a
#: steep valley (SMD's tan terms) may need several times ``ll_dim`` iterations.
LOCAL_MAXITER = 100


def default_local_solver() -> Refinement:
    """BLEAQ's refinement of the follower's answers: all rows in lock step, at most ``LOCAL_MAXITER`` iterations."""
    return LockstepRefinement(maxiter=LOCAL_MAXITER)


@dataclass
class BLEAQ(Algorithm):
    """BLEAQ with psi/phi quadratic models, local refinement and global fall-back at the lower level.

    Parameters
    ----------
    pop_size : int, optional
        Upper-level population; default ``max(24, 5 * ul_dim + 5)``.
    n_offspring : int, optional
        Evolutionary offspring per generation; default ``max(2, n // 4)`` for the attempt's population of n.
    max_generations : int
    ftol, stall_generations : float, int
        The accuracy of ``F`` an attempt converges to, relative to ``1 + |F|``. An attempt has converged when the
        quadratic model around the best member, accurate there to ``ftol``, has predicted no improvement beyond it
        for two generations in a row (and none came), or when the best ``F`` improved by less than that in
        ``stall_generations`` generations and the feasible members' ``F`` values lie within it (or the stall
        lasted twice as long). The best member's lower level is then re-solved globally, and the run stops or
        restarts.
    n_initial_global : int
        Initial members whose lower level is solved from scratch; the others start from their solutions.
    accept_tol : float
        A prediction is accepted when ``f(x, psi(x)) <= phi(x) + accept_tol * (1 + |phi(x)|)`` and ``phi``'s
        held-out error is below the same tolerance.
    psi_tol : float
        A component of ``psi`` counts as determined when its held-out error is below this fraction of the
        variable's range; other components of a prediction come from the candidate's own lower-level vector.
    refine_tol : float
        A refined lower-level answer goes on to the global search when its ``f`` exceeds the ``phi`` prediction
        by more than three held-out errors plus ``refine_tol * (1 + |phi|)``.
    model_search : bool
        Propose one candidate per generation from a quadratic model of the upper level.
    recheck_every : int
        Generations between global re-solves of the best member's lower level, once one has corrected an answer
        (the interval before that doubles with each confirmation).
    eps_generations, eps_exponent, eps_quantile : int or None, float, float
        Epsilon-level comparison of upper-level constraint violations: for ``eps_generations`` generations after
        each (re)start, members whose violation is at most ``eps0 * (1 - t / eps_generations) ** eps_exponent``
        compete on ``F`` as if feasible, ``eps0`` being the ``eps_quantile`` quantile of the first population's
        violations. ``eps_generations=0`` switches it off (feasibility first throughout); by default the phase
        lasts ``EPS_RENEWALS`` renewals of the upper-level model's points by the first population's offspring
        (120 generations at ``ul_dim=5``, 201 at 10, 42 at 2).
    leader_choice : bool
        Let the leader choose among the follower's near-optimal answers (``f <= f + leader_tol * (1 + |f|)``)
        where the follower has several optimal answers (see :mod:`.leader`).
    leader_tol : float
    free_tol : float
        A member's follower counts as free to choose when psi's held-out error at its x (where phi's prediction is
        trusted), or the distance between its answer and another one as good that a global re-solve found, exceeds
        this fraction of a range.
    restarts, restart_patience : int
        When an attempt has converged, start again from a fresh sample (keeping the archive and, aside, the best
        member) until an attempt finds the kept answer again, ``restart_patience`` attempts in a row found nothing
        better, or ``restarts`` restarts were made; the size of each restart follows what the previous ones found
        (:mod:`~evobilevel.algorithms.restarts`).
    infeasible_evals : int, optional
        Evaluations of a global search for a candidate whose refinement ended infeasible at the lower level, once
        such searches have turned out hopeless in this run (see :mod:`.settlement`); by default 40 per lower-level
        variable (:func:`~.settlement.capped_evals`).
    certify_infeasible : bool
        Where a refinement ends infeasible and the follower's constraints test linear in y, solve the linear
        programme of their least violation over the box, and where that is above zero keep the row infeasible
        without a global search (:mod:`evobilevel.lower.linear`; ``ll_dim + 3`` evaluations a row, and none once
        the constraints have failed the test in the run).
    certify_convex : bool
        Where the follower's problem tests as a convex quadratic programme in y at a point whose lower level is to
        be solved from scratch (the initial population's first members, a re-check), refine it from the best point
        of the test instead of searching (:mod:`evobilevel.lower.convex`; ``(ll_dim + 1)(ll_dim + 2) / 2 + 2``
        evaluations a row, and none once the test has failed in the run).
    global_solver, local_solver : LowerSolver
    archive_size : int
        Lower-level optima kept for the models, and members remembered by the leader's choice.
    """

    name: ClassVar[str] = "bleaq"

    pop_size: int | None = None
    n_offspring: int | None = None
    max_generations: int = 1000
    ftol: float = 1e-4
    stall_generations: int = 25
    n_initial_global: int = 3
    accept_tol: float = 1e-6
    psi_tol: float = 1e-3
    refine_tol: float = 1e-3
    model_search: bool = True
    recheck_every: int = 15
    eps_generations: int | None = None
    eps_exponent: float = 4.0
    eps_quantile: float = 0.2
    leader_choice: bool = True
    leader_tol: float = 1e-6
    free_tol: float = 0.1
    restarts: int = 12
    restart_patience: int = 5
    infeasible_evals: int | None = None
    certify_infeasible: bool = True
    certify_convex: bool = True
    global_solver: DifferentialEvolution = field(default_factory=default_solver)
    local_solver: Refinement = field(default_factory=default_local_solver)
    archive_size: int = 2000

    def __post_init__(self) -> None:
        cap = self.infeasible_evals
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, Integral) or cap < 1):
            raise ValueError(f"BLEAQ: infeasible_evals must be a positive integer or None, got {cap!r}")

    # ------------------------------------------------------------------ setup
    def _build(self, problem) -> None:
        """The run's parts, derived from the settings and the problem's sizes (no state)."""
        d = problem.ul_dim
        self._integer = {level: integer_mask(problem, level) for level in ("upper", "lower")}
        self._initial_size = self.pop_size or max(MIN_POP_SIZE, POP_PER_VARIABLE * d + POP_PER_VARIABLE)
        self._upper = UpperSearch(problem.ul_bounds, problem.ll_bounds, self.n_offspring)
        eps_generations = self.eps_generations
        if eps_generations is None:
            eps_generations = round(EPS_RENEWALS * self._upper.generations_per_renewal(self._initial_size))
        self._epsilon = EpsilonSchedule(eps_generations, self.eps_exponent, self.eps_quantile)
        self._restart_rule = RestartRule(self.restarts, self.restart_patience, widths(problem.ul_bounds), tol=self.ftol)
        self._ledger = Ledger()
        # The settings both settlements take, in their parameters' order.
        shared = (self.local_solver, self.global_solver, self.infeasible_evals, self._ledger, self.certify_infeasible)
        if problem.follower_set is None:
            response = ResponseModel(problem.ul_bounds, problem.ll_bounds, self.accept_tol, self.psi_tol,
                                     self.refine_tol)
            self._settlement = LowerSettlement(response, *shared, self.certify_convex)
        else:
            self._settlement = FollowerSettlement(problem, self.accept_tol, self.psi_tol, self.refine_tol, *shared)
            response = self._settlement.response
        self._leader = LeaderPolicy(self.leader_tol, self.free_tol, self.stall_generations // HELD_SHARE,
                                    self.archive_size, response, self.local_solver)
        self._recheck = Recheck(self.recheck_every, self.accept_tol, self.refine_tol, self.free_tol,
                                self.archive_size, self._settlement, self._upper)

    def setup(self, ctx) -> None:
        problem = ctx.problem
        self._build(problem)
        with_followers = problem.follower_set is not None
        archive = (FollowerSettlement.new_archive(problem, self.archive_size) if with_followers
                   else SolutionArchive(problem.ul_bounds, problem.ll_dim, self.archive_size))
        self.state = BLEAQState(
            archive=archive,
            evaluated=RingBuffer(self.archive_size, X=problem.ul_dim, F=None, G=problem.n_ul_constraints),
            recheck=RecheckState(last=0, interval=self.recheck_every),
        )
        if with_followers:
            self.state.followers = FollowerSettlement.new_states(archive, self.state.counts, self.state.ll_evals)
        self._start_population(ctx, self._initial_size)

    def restore(self, ctx, state: BLEAQState) -> None:
        self._build(ctx.problem)
        self.state = state

    def _start_population(self, ctx, n: int) -> None:
        """A Latin-hypercube population; while the archive is empty, the lower levels of the first few members are
        solved from scratch, the others from the nearest archived optima."""
        state = self.state
        X = round_integral(latin_hypercube(ctx.rng, *search_box(ctx.problem.ul_bounds, self._integer["upper"]), n),
                           self._integer["upper"])
        with self._phase(ctx, "initial"):
            answers = settle_initial(self._settlement, ctx, state, X, self.n_initial_global)
        state.population = self._upper.evaluate(ctx, state.evaluated, answers)
        state.new_attempt()
        state.eps0 = self._epsilon.initial_level(state.population.ul_cv, state.population.ll_cv == 0)
        state.eps_start = state.generation

    # ------------------------------------------------------------------- step
    def step(self, ctx) -> None:
        state = self.state
        offspring, proposal = self._offspring(ctx)
        answers = self._settlement.settle(ctx, state, offspring.X, self._starts(offspring))
        children = self._upper.evaluate(ctx, state.evaluated, answers)
        self._upper.select(state.population, children, offspring.parents, self._ranks)
        if self.leader_choice:
            with self._phase(ctx, "leader"):
                self._leader.after_generation(ctx, state, int(np.argmin(self._ranks(state.population))))
        state.generation += 1
        if self._recheck.due(state):
            with self._phase(ctx, "recheck"):
                self._recheck.run(ctx, state)
        self._check_convergence(ctx, proposal)

    def _offspring(self, ctx) -> tuple[Offspring, ModelProposal | None]:
        """This generation's candidates: evolutionary offspring and, where the model finds one, the candidate of
        the quadratic model around the best member, its constraints met at the current epsilon level (during the
        epsilon phase, also the one that meets them exactly, once a member is feasible). Returns the offspring and
        the proposal at the current level."""
        state = self.state
        ranks = self._ranks(state.population)
        best = int(np.argmin(ranks))
        offspring = self._upper.offspring(ctx.rng, state.population, ranks)
        proposal = None
        if self.model_search:
            eps = self._eps()
            # During the epsilon phase the problem's own candidate too: where the models already see the
            # constrained optimum, the population need not wait for the level to fall.
            exact_too = eps > 0 and bool(state.population.feasible.any())
            proposal = self._upper.with_model_candidates(offspring, state.population, state.evaluated,
                                                         best, eps, exact_too)
            state.counts["model_candidates"] += int(np.sum(offspring.parents < 0))
        offspring.X = round_integral(offspring.X, self._integer["upper"])
        offspring.Y_start = round_integral(offspring.Y_start, self._integer["lower"])
        if state.leader.holds_choice(state.population.X[best]):
            # Where the follower is free, recombination carries whatever points of its optima the parents happened
            # to get, and the leader's value with them; while the best member holds the answer the leader chose,
            # every child starts there from it, and the follower's refinement keeps it near that point.
            chosen = state.leader.chosen_components
            offspring.Y_start[:, chosen] = state.population.Y[best, chosen]
        return offspring, proposal

    def _starts(self, offspring: Offspring) -> np.ndarray:
        """Starting points (k, 2, ll_dim) for the candidates' lower levels: their own recombined vector, then the
        archived optimum of the nearest solved x."""
        own = offspring.Y_start[:, None, :]
        nearest = self.state.archive.warm_starts(offspring.X, 1)  # None while no answer has been archived
        return own if nearest is None else np.concatenate([own, nearest], axis=1)

    def _ranks(self, population: Population) -> np.ndarray:
        """Ranks under the current epsilon level (violations up to it count as none)."""
        return population.ranks(self._eps())

    def _phase(self, ctx, name: str):
        """A block whose lower-level evaluations count for phase ``name`` (see :mod:`.ledger`)."""
        return self._ledger.phase(ctx, self.state.ll_evals, name)

    def _eps(self) -> float:
        """The current epsilon level of upper-level constraint violation (0: feasibility first)."""
        state = self.state
        return self._epsilon.level(state.eps0, state.generation - state.eps_start)

    # ------------------------------------------------------------ convergence
    def _check_convergence(self, ctx, proposal: ModelProposal | None = None) -> None:
        state = self.state
        if (not (ctx.until_target or state.took_back) and state.kept_member is not None
                and self._restart_rule.gathered(state.restarts, state.population.X)):
            self._take_back_kept()
        best = state.population.best()
        before = state.note_best(best, self.stall_generations)
        certified = self._certified(best, before, proposal, tolerance_cap(ctx.target))
        state.certified = state.certified + 1 if certified else 0
        # A restart's basin that cannot beat the kept answer: converging it would only say how much worse it is.
        outclassed = (not ctx.until_target and proposal is not None and self._eps() == 0 and self._restart_rule
                      .outclassed(state.restarts, best, lambda: best.F - proposal.gain - proposal.misfit))
        state.outclassed = state.outclassed + 1 if outclassed else 0
        if state.generation >= self.max_generations:
            self._finish(ctx, f"maximum of {self.max_generations} generations")
        elif self._eps() == 0 and stalled(state.best_history, state.population, self.ftol, self.stall_generations,
                                          tolerance_cap(ctx.target), gathered=state.holds_stalled_kept(best)):
            self._finish(ctx, f"best F improved by less than {self.ftol:g} (relative) in "
                              f"{self.stall_generations} generations", stalled=True)
        elif self._eps() == 0 and stalled_infeasible(state.violation_history, self.stall_generations,
                                                     self.max_generations):
            if (not ctx.until_target and state.kept_member is not None
                    and self._restart_rule.coming_back(state.restarts, best)):
                self._take_back_kept()  # (again, if the member taken back when it gathered there was lost since)
            else:
                self._finish(ctx, infeasible_stall_message(self.stall_generations, self.max_generations))
        elif state.certified >= CERTIFIED_GENERATIONS:
            self._finish(ctx, f"the best member is a local optimum of the leader's quadratic model (to {self.ftol:g}, "
                              f"relative) in {CERTIFIED_GENERATIONS} generations in a row")
        elif state.outclassed >= CERTIFIED_GENERATIONS:
            self._finish(ctx, f"the quadratic model around the restart's best member, away from the kept answer, "
                              f"promised nothing below it in {CERTIFIED_GENERATIONS} generations in a row")

    def _take_back_kept(self) -> None:
        """A restart whose population gathered around the kept answer has come back to it: the kept member
        replaces the worst one, so that the attempt ends as soon as its own rule confirms the kept answer (or
        improves on it), instead of converging again to the accuracy the kept answer already has."""
        state = self.state
        worst = int(np.argmax(self._ranks(state.population)))
        state.population.put(worst, state.kept_member.take(0))
        state.took_back = True

    def _certified(self, best: Candidate, before: float, proposal: ModelProposal | None, cap: float) -> bool:
        """Whether this generation certifies the best member as a local optimum: feasible, the best under the
        current comparisons as well (:meth:`_relaxed_agrees`), the best F improved by at most the tolerance, and
        the quadratic model around it (fitted before the generation) accurate there and predicting no improvement
        beyond the tolerance.

        During the epsilon phase the model's constraints are relaxed to the level's share, so a model that promises
        nothing there promises nothing under the exact constraints either: the member is a local optimum of the
        problem the phase leads to, and the attempt need not hold it until the level reaches zero. (At an optimum
        where the leader's constraints are active the relaxed model still promises a gain, and the attempt goes on
        as before.)

        Where that model's points span at least :data:`SINGLE_BASIN_SPAN` of every variable's range, the
        leader's problem is one quadratic basin over that much of the box, and the attempt is marked as one that
        no restart can improve on.
        """
        if proposal is None or not best.feasible or not self._relaxed_agrees():
            return False
        tol = min(self.ftol * (1 + abs(best.F)), cap)
        # The gain last: it costs an SLSQP run, asked for only where the other conditions hold.
        certified = before - best.F <= tol and proposal.error <= tol and proposal.gain <= tol
        if certified and proposal.span >= SINGLE_BASIN_SPAN:
            self.state.single_basin = True
        return certified

    def _relaxed_agrees(self) -> bool:
        """Whether the best member under the current epsilon level's comparisons is the best feasible one: no
        member whose violation the level forgives has a lower F. (Always, once the level is zero.)"""
        population = self.state.population
        return self._eps() == 0 or int(np.argmin(self._ranks(population))) == int(np.argmin(population.ranks()))

    def _finish(self, ctx, message: str, stalled: bool = False) -> None:
        """Stop or restart, after a global check of the best member's lower level and the leader's choice for it
        (either may revive the run); ``stalled``: the attempt ends by the stall rule, its answer without a model
        certificate."""
        state = self.state
        before = state.population.best()
        with self._phase(ctx, "recheck"):
            self._recheck.run(ctx, state)
        if self.leader_choice:
            with self._phase(ctx, "leader"):
                self._leader.at_convergence(ctx, state, int(np.argmin(state.population.ranks())))
        after = state.population.best()
        revived = not (np.array_equal(before.x, after.x) and before.f == after.f)
        if revived and state.generation < self.max_generations:
            state.certified = state.outclassed = 0  # a new best member: the certificates start again
            return
        if state.generation >= self.max_generations:
            state.converged, state.stop_message = True, message
        elif state.single_basin and state.restarts.kept is None and not ctx.until_target:
            state.converged = True
            state.stop_message = f"{message}; a quadratic model over most of the box certifies one basin: no restart"
        elif self._restart_rule.after_attempt(state.restarts, after, persist=ctx.until_target):
            if state.restarts.kept is after:  # this attempt's answer is the one kept
                state.kept_member = state.population.take(np.argmin(state.population.ranks(), keepdims=True))
                state.kept_stalled = stalled
            self._start_population(ctx, self._restart_rule.population_size(state.restarts, self._initial_size,
                                                                           MIN_RESTART_SIZE))
        else:
            ending = self._restart_rule.reason(state.restarts) if self.restarts else ""
            if state.restarts.confirmed and state.took_back:
                ending += ", whose population had gathered around it"
            state.converged, state.stop_message = True, f"{message}; {ending}" if ending else message

    # ------------------------------------------------------------- reporting
    def best(self) -> Candidate | None:
        if self.state is None or self.state.population is None:
            return None
        return self._restart_rule.best(self.state.restarts, self.state.population.best())

    def answers(self) -> list[Candidate]:
        if self.state is None or self.state.population is None:
            return []
        return self._restart_rule.answers(self.state.restarts, self.state.population.best())

    def record(self) -> dict:
        """The :data:`~.state.COUNTERS`, the lower-level evaluations by phase (``ll_evals_initial``, ... ; see
        :data:`~.ledger.LL_PHASES`), the restarts so far and the epsilon level (once there is a population)."""
        if self.state is None:
            return {}
        spent = {f"ll_evals_{phase}": n for phase, n in self.state.ll_evals.items()}
        out = {**self.state.counts, **spent, "restarts": self.state.restarts.n_restarts}
        if self.state.population is not None:
            out["eps_level"] = self._eps()
        return out
