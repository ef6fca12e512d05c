"""When BLEAQ lets the leader choose among the follower's optimal answers (see
:mod:`~evobilevel.algorithms.optimistic` for how it chooses).

Where the follower has a set of optimal answers at ``x`` (a sphere, a line), the one a lower-level solver returns
is arbitrary, yet the leader's value and feasibility may depend on it. The leader chooses

- for the best member when every upper-level constraint it violates may move with ``y`` (one that does not binds
  ``x``: no answer of the follower makes the member feasible);
- for a best member feasible at both levels whose follower is known to be free, once it has held for a while or
  the population has converged on it. Where psi's error showed the follower free, the choice descends in the
  variables psi cannot place, each step refined back onto the follower's optima; where a re-check did, it searches
  all variables and keeps its answer only where the follower's own refinement confirms it.

Each member is chosen for once; attempts that miss are spaced out exponentially. A choice that gains is recorded
(:meth:`~.state.LeaderState.holds_choice`): while its member is the best, BLEAQ's children start their lower level
from its answer in the variables the choice moved.
"""

from __future__ import annotations

import numpy as np

from ...lower import LowerSolver
from ..optimistic import LeaderChoice, choose_along_optima, choose_confirmed, choose_feasible
from ..population import Population
from .response import ResponseModel
from .state import BLEAQState, LeaderState

__all__ = ["LeaderPolicy", "remember"]

#: After k attempts in a row that missed, the leader waits 2 ** min(k, MAX_BACKOFF_DOUBLINGS) generations: an
#: attempt costs upper-level evaluations, and where the violated constraints hardly depend on y it buys nothing.
MAX_BACKOFF_DOUBLINGS = 6


def remember(keys: dict, key: bytes, capacity: int) -> None:
    """Add ``key`` to the insertion-ordered set ``keys``, forgetting the oldest beyond ``capacity``."""
    keys[key] = None
    if len(keys) > capacity:
        del keys[next(iter(keys))]


class LeaderPolicy:
    """Decides when the leader chooses, and records what it learns in a :class:`~.state.LeaderState`.

    Parameters
    ----------
    tol : float
        The leader chooses among answers within ``tol * (1 + |f|)`` of the follower's value.
    free_tol : float
        psi's held-out error, as a fraction of a variable's range, above which the follower counts as free.
    held_generations : int
        Generations a feasible best member must have held before the leader chooses for it.
    memory : int
        Members remembered as tried or free.
    response : ResponseModel
    local_solver : LowerSolver
        Confirms a choice for a feasible member.
    """

    def __init__(self, tol: float, free_tol: float, held_generations: int, memory: int, response: ResponseModel,
                 local_solver: LowerSolver):
        self.tol, self.free_tol, self.held_generations, self.memory = tol, free_tol, held_generations, memory
        self.response, self.local_solver = response, local_solver

    def after_generation(self, ctx, state: BLEAQState, best: int) -> None:
        """The leader's choice for the best member ``best`` after a generation, when one is due."""
        leader, population = state.leader, state.population
        if state.generation < leader.next_generation:
            return
        if population.ul_cv[best] > 0 and self._repairable_by_y(leader, population, best):
            self.choose(ctx, state, best)
        elif _unchanged(state.best_history, self.held_generations):
            # A feasible best member that has held for a while: what its follower's free directions can give the
            # leader, before the population spends a stall window on finding it by selection.
            free = self.free_components(ctx, state, best)
            if free is not None:
                self.choose(ctx, state, best, confirm=True, components=free)

    def at_convergence(self, ctx, state: BLEAQState, best: int) -> None:
        """The confirmed choice for the converged population's best member, where its follower is free."""
        free = self.free_components(ctx, state, best)
        if free is not None:
            self.choose(ctx, state, best, confirm=True, components=free)

    def _record_choice(self, leader: LeaderState, x: np.ndarray, moved: np.ndarray) -> None:
        """Record a choice that gained for the member at ``x``: its x, and the variables it moved (``moved``
        (ll_dim,), absolute) by more than psi's accuracy (``psi_tol`` of the range), along which the follower is
        free, added to those earlier choices moved."""
        leader.chosen_x = x.tobytes()
        chosen = moved > self.response.psi_tol * self.response.y_widths
        if leader.chosen_components is None:
            leader.chosen_components = chosen
        else:
            leader.chosen_components |= chosen

    @staticmethod
    def _repairable_by_y(leader: LeaderState, population: Population, i: int) -> bool:
        """Whether y alone may make member i feasible: every upper-level constraint it violates has been seen to
        move with y (or none has been looked at yet). One that does not move binds x, and the member stays
        infeasible whatever the follower answers."""
        if leader.G_moves_with_y is None:
            return True
        violated = population.G[i] > 0
        return bool(np.all(leader.G_moves_with_y[violated]))

    def free_components(self, ctx, state: BLEAQState, i: int) -> np.ndarray | None:
        """The variables (ll_dim,) bool along which member i's follower is free to choose, or None where it is not
        known to be free or the member is not feasible at both levels.

        The follower is free where a global re-solve at its x found another optimal answer far from its own (all
        variables may move then), or where psi cannot place part of its answer at all (held-out error above
        ``free_tol`` of the range) while phi places its value (a trusted prediction), the sign of a set of
        lower-level optima; there the variables psi does not determine are the free ones, and the others keep the
        values the follower's optimum gives them. Where phi cannot place the value either, the models do not fit the
        follower's response there (a multimodal or piecewise follower), which says nothing of a set of optima.
        """
        population = state.population
        x = population.X[i]
        if population.ul_cv[i] != 0 or population.ll_cv[i] != 0 or x.tobytes() in state.leader.tried:
            return None
        if x.tobytes() in state.leader.seen_free:
            return np.ones(ctx.problem.ll_dim, bool)
        predictions = self.response.predict(state.archive, x[None, :], ctx.rng)
        if (predictions is None or not predictions.trusted[0]
                or not np.any(predictions.psi_error[0] > self.free_tol)):
            return None
        return ~predictions.determined[0]

    def choose(self, ctx, state: BLEAQState, i: int, confirm: bool = False,
               components: np.ndarray | None = None) -> None:
        """Let the leader pick member i's answer among the follower's near-optimal ones, once per member.

        With ``confirm`` (a member already feasible), only a gain that does not come from the follower's
        tolerance is taken: a descent along the follower's optima in the variables marked in ``components``
        (ll_dim,) bool where they are some of them (:func:`~evobilevel.algorithms.optimistic.choose_along_optima`),
        the confirmed search otherwise (:func:`~evobilevel.algorithms.optimistic.choose_confirmed`).
        """
        population, leader = state.population, state.leader
        x = population.X[i]
        if population.ll_cv[i] != 0 or not np.isfinite(population.f[i]) or x.tobytes() in leader.tried:
            return
        remember(leader.tried, x.tobytes(), self.memory)
        state.counts["leader_choices"] += 1
        start = LeaderChoice(population.Y[i].copy(), float(population.F[i]), float(population.ul_cv[i]),
                             float(population.f[i]), population.G[i].copy())
        if confirm:
            if components is not None and not components.all():
                # psi has told the free variables from the ones the follower's optimum fixes: descend along them.
                choice = choose_along_optima(ctx, x, start, self.local_solver, components,
                                             min_step=self.response.psi_tol)
            else:
                choice = choose_confirmed(ctx, x, start, self.tol, self.local_solver)
        else:
            if leader.G_moves_with_y is None:
                leader.G_moves_with_y = np.zeros(ctx.problem.n_ul_constraints, bool)
            f_limit = start.f + self.tol * (1 + abs(start.f))
            choice = choose_feasible(ctx, x, start, f_limit, self.local_solver, moves_with_y=leader.G_moves_with_y)
        # A confirmed member's attempt misses when it gains nothing, an infeasible one's when it stays infeasible.
        missed = choice is start if confirm else choice.ul_cv > 0
        leader.misses = leader.misses + 1 if missed else 0
        wait = 2 ** min(leader.misses, MAX_BACKOFF_DOUBLINGS) if leader.misses else 0
        leader.next_generation = state.generation + wait
        if choice is start:
            return
        state.counts["leader_improvements"] += 1
        self._record_choice(leader, x, np.abs(choice.y - population.Y[i]))
        population.Y[i], population.F[i], population.ul_cv[i] = choice.y, choice.F, choice.ul_cv
        population.f[i], population.G[i] = choice.f, choice.G
        state.archive.replace(x, choice.y, choice.f)


def _unchanged(best_history: list, n: int) -> bool:
    """Whether the best feasible F has stayed the same over the last n generations."""
    return len(best_history) > n and np.isfinite(best_history[-1]) and best_history[-1 - n] == best_history[-1]
