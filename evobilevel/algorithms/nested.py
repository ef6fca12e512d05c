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

from ..lower import default_solver
from .base import Algorithm, Candidate, Restarts, child_wins, population_best, population_ranks, stalled
from .operators import SolutionArchive, de_current_to_pbest, repair_midpoint

__all__ = ["Nested"]


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
        Convergence: the best ``F`` improved by less than ``ftol * (1 + |F|)`` over ``stall_generations``
        generations and either the feasible members' ``F`` values lie within that tolerance or the stall has
        lasted twice as long.
    n_warm_starts : int
        Archived lower-level optima (of the nearest solved ``x``) given to each solve as starting points.
    lower_solver : LowerSolver
        Solves each candidate's lower level.
    archive_size : int
        Lower-level solutions kept for warm starts.
    restarts, restart_patience : int
        After convergence, start again from a fresh population (see :class:`~evobilevel.algorithms.base.Restarts`).
    """

    name: ClassVar[str] = "nested"

    pop_size: int | None = None
    max_generations: int = 300
    crossover_rate: float = 0.9
    p_best: float = 0.2
    ftol: float = 1e-6
    stall_generations: int = 20
    n_warm_starts: int = 2
    lower_solver: object = field(default_factory=default_solver)
    archive_size: int = 5000
    restarts: int = 12
    restart_patience: int = 5

    def setup(self, ctx) -> None:
        problem = ctx.problem
        self._lo, self._hi = problem.ul_bounds
        n = self.pop_size or max(30, 6 * problem.ul_dim)
        self._archive = SolutionArchive(problem.ul_bounds, problem.ll_dim, self.archive_size)
        self._generation = 0
        self.converged, self.stop_message = False, ""
        self._restarts = Restarts(self.restarts, self.restart_patience)
        self._initial_size = n
        self._start_population(ctx, n)

    def _start_population(self, ctx, n: int) -> None:
        X = self._lo + ctx.rng.random((n, len(self._lo))) * (self._hi - self._lo)
        self._pop = self._evaluate(ctx, X)
        self._best_history = []

    def _evaluate(self, ctx, X: np.ndarray) -> dict:
        """Solve the lower level at X (n, ul_dim), evaluate the upper level, archive the solutions."""
        Y0 = self._archive.warm_starts(X, self.n_warm_starts)
        sol = ctx.solve_lower(X, self.lower_solver, Y0=Y0)
        ul = ctx.evaluate_upper(X, sol.Y)
        solved = np.isfinite(sol.f)
        self._archive.add(X=X[solved], Y=sol.Y[solved], f=sol.f[solved])
        return {"X": X, "Y": sol.Y, "F": ul.values, "ul_cv": ul.cv, "f": sol.f, "ll_cv": sol.cv}

    def step(self, ctx) -> None:
        pop = self._pop
        ranks = population_ranks(pop)
        trial = de_current_to_pbest(pop["X"], ranks, ctx.rng, self.p_best, crossover_rate=self.crossover_rate)
        trial = repair_midpoint(trial, pop["X"], self._lo, self._hi)
        children = self._evaluate(ctx, trial)
        # One-to-one survivor selection with feasibility first.
        wins = child_wins(pop, children)
        self._pop = {k: np.where(wins.reshape((-1,) + (1,) * (pop[k].ndim - 1)), children[k], pop[k]) for k in pop}
        self._generation += 1
        self._check_convergence(ctx)

    def _check_convergence(self, ctx) -> None:
        best = population_best(self._pop)
        self._best_history.append(best.F if best.feasible else np.inf)
        del self._best_history[: -(2 * self.stall_generations + 1)]  # all the convergence test looks at
        if self._generation >= self.max_generations:
            self.converged, self.stop_message = True, f"maximum of {self.max_generations} generations"
        elif stalled(self._best_history, self._pop, self.ftol, self.stall_generations):
            if self._restarts.after_attempt(best):
                self._start_population(ctx, self._restarts.population_size(self._initial_size))
                return
            self.converged = True
            self.stop_message = (f"best F improved by less than {self.ftol:g} (relative) "
                                 f"in {self.stall_generations} generations")

    def best(self) -> Candidate | None:
        pop = getattr(self, "_pop", None)
        return None if pop is None else self._restarts.best(population_best(pop))

    def record(self) -> dict:
        if not hasattr(self, "_archive"):
            return {}
        return {"archive_size": self._archive.size, "restarts": self._restarts.n_restarts}
