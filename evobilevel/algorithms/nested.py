"""Nested evolutionary algorithm: the baseline every bilevel EA is measured against.

An upper-level differential evolution (DE/current-to-pbest/1/bin) evolves ``x``; every candidate's lower level
is solved by a lower-level solver (batched DE with local polishing by default), warm-started from the archived
lower-level optima of the nearest upper-level points already solved.

Reference: A. Sinha, P. Malo, K. Deb, "A review on bilevel optimization: from classical to evolutionary
approaches and applications", IEEE Trans. Evol. Comput. 22(2):276-295, 2018 (nested approaches, section V);
R. Storn, K. Price, "Differential evolution", J. Global Optim. 11:341-359, 1997; J. Zhang, A. C. Sanderson,
"JADE", IEEE Trans. Evol. Comput. 13(5):945-958, 2009 (current-to-pbest mutation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..integrality import integer_mask, round_integral, search_box
from ..lower import default_solver
from ..space import widths
from .archive import SolutionArchive
from .base import Algorithm, AlgorithmState, Candidate
from .operators import de_current_to_pbest, repair_midpoint
from .population import Population, child_wins, stalled, tolerance_cap
from .restarts import RestartRule, RestartState

__all__ = ["Nested", "NestedState"]

#: A population of at least this many members, and this many per upper-level variable: smaller ones converge
#: prematurely on a multimodal upper level.
MIN_POP_SIZE = 30
POP_PER_VARIABLE = 6


@dataclass
class NestedState(AlgorithmState):
    """A nested run between two generations.

    Attributes
    ----------
    population : Population or None
    archive : SolutionArchive or None
        Lower-level optima of the solved candidates, for warm starts.
    best_history : list of float
        Best feasible ``F`` after each generation of the current attempt (the stall test's window only).
    restarts : RestartState
    """

    population: Population | None = None
    archive: SolutionArchive | None = None
    best_history: list = field(default_factory=list)
    restarts: RestartState = field(default_factory=RestartState)


@dataclass
class Nested(Algorithm):
    """Nested DE: a full (warm-started) lower-level solve for every upper-level candidate.

    Parameters
    ----------
    pop_size : int, optional
        Upper-level population; default ``max(30, 6 * ul_dim)`` (smaller ones converge prematurely on SMD7).
    max_generations : int
        Upper-level generations at most.
    crossover_rate, p_best : float
        DE settings (see :func:`~evobilevel.algorithms.operators.de_current_to_pbest`).
    ftol, stall_generations : float, int
        The accuracy of ``F`` an attempt converges to, relative to ``1 + |F|``: the best ``F`` improved by less
        than ``ftol * (1 + |F|)`` over ``stall_generations``
        generations and either the feasible members' ``F`` values lie within that tolerance or the stall has
        lasted twice as long.
    n_warm_starts : int
        Archived lower-level optima (of the nearest solved ``x``) given to each solve as starting points.
    lower_solver : LowerSolver
        Solves each candidate's lower level.
    archive_size : int
        Lower-level solutions kept for warm starts.
    restarts, restart_patience : int
        After convergence, start again from a fresh population (see
        :class:`~evobilevel.algorithms.restarts.RestartRule`).
    """

    name: ClassVar[str] = "nested"

    pop_size: int | None = None
    max_generations: int = 300
    crossover_rate: float = 0.9
    p_best: float = 0.2
    ftol: float = 1e-4
    stall_generations: int = 20
    n_warm_starts: int = 2
    lower_solver: object = field(default_factory=default_solver)
    archive_size: int = 5000
    restarts: int = 12
    restart_patience: int = 5

    def setup(self, ctx) -> None:
        problem = ctx.problem
        self._build(problem)
        self.state = NestedState(archive=SolutionArchive(problem.ul_bounds, problem.ll_dim, self.archive_size))
        self._start_population(ctx, self._initial_size)

    def restore(self, ctx, state: NestedState) -> None:
        self._build(ctx.problem)
        self.state = state

    def _build(self, problem) -> None:
        """What the settings and the problem's sizes determine."""
        self._lo, self._hi = problem.ul_bounds
        # Integer variables are sampled in a box half a unit wider, and every candidate is rounded.
        self._integer = integer_mask(problem, "upper")
        self._sample_box = search_box(problem.ul_bounds, self._integer)
        self._initial_size = self.pop_size or max(MIN_POP_SIZE, POP_PER_VARIABLE * problem.ul_dim)
        self._restart_rule = RestartRule(self.restarts, self.restart_patience, widths(problem.ul_bounds), tol=self.ftol)

    def _start_population(self, ctx, n: int) -> None:
        lo, hi = self._sample_box
        X = round_integral(lo + ctx.rng.random((n, len(lo))) * (hi - lo), self._integer)
        self.state.population = self._evaluate(ctx, X)
        self.state.best_history = []

    def _evaluate(self, ctx, X: np.ndarray) -> Population:
        """Solve the lower level at X (n, ul_dim), evaluate the upper level, archive the solutions."""
        archive = self.state.archive
        Y0 = archive.warm_starts(X, self.n_warm_starts)
        sol = ctx.solve_lower(X, self.lower_solver, Y0=Y0)
        ul = ctx.evaluate_upper(X, sol.Y)
        solved = np.isfinite(sol.f)
        archive.add(X=X[solved], Y=sol.Y[solved], f=sol.f[solved])
        return Population(X=X, Y=sol.Y, F=ul.values, G=ul.constraints, ul_cv=ul.cv, f=sol.f, ll_cv=sol.cv)

    def step(self, ctx) -> None:
        state = self.state
        population = state.population
        trial = de_current_to_pbest(population.X, population.ranks(), ctx.rng, self.p_best,
                                    crossover_rate=self.crossover_rate)
        trial = round_integral(repair_midpoint(trial, population.X, self._lo, self._hi), self._integer)
        children = self._evaluate(ctx, trial)
        # One-to-one survivor selection with feasibility first.
        wins = child_wins(population, children)
        population.put(wins, children.take(wins))
        state.generation += 1
        self._check_convergence(ctx)

    def _check_convergence(self, ctx) -> None:
        state = self.state
        best = state.population.best()
        state.best_history.append(best.F if best.feasible else np.inf)
        del state.best_history[: -(2 * self.stall_generations + 1)]  # all the convergence test looks at
        if state.generation >= self.max_generations:
            state.converged, state.stop_message = True, f"maximum of {self.max_generations} generations"
        elif stalled(state.best_history, state.population, self.ftol, self.stall_generations,
                     tolerance_cap(ctx.target)):
            if self._restart_rule.after_attempt(state.restarts, best, persist=ctx.until_target):
                self._start_population(ctx, self._restart_rule.population_size(state.restarts, self._initial_size))
                return
            state.converged = True
            state.stop_message = (f"best F improved by less than {self.ftol:g} (relative) "
                                  f"in {self.stall_generations} generations")
            if self.restarts:
                state.stop_message += f"; {self._restart_rule.reason(state.restarts)}"

    def best(self) -> Candidate | None:
        if self.state is None or self.state.population is None:
            return None
        return self._restart_rule.best(self.state.restarts, self.state.population.best())

    def answers(self) -> list[Candidate]:
        if self.state is None or self.state.population is None:
            return []
        return self._restart_rule.answers(self.state.restarts, self.state.population.best())

    def record(self) -> dict:
        if self.state is None:
            return {}
        return {"archive_size": self.state.archive.size, "restarts": self.state.restarts.n_restarts}
