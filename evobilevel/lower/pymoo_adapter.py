"""Any pymoo single-objective algorithm as a lower-level solver.

Each row is one ``pymoo.optimize.minimize`` run, so this costs pymoo's per-generation overhead for every
row (the batched :class:`~evobilevel.lower.de.DifferentialEvolution` avoids that); it exists to compare
against, and to use pymoo's algorithms as they are.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymoo.core.population import Population
from pymoo.core.problem import Problem as PymooProblem
from pymoo.optimize import minimize
from pymoo.termination.collection import TerminationCollection
from pymoo.termination.default import DefaultSingleObjectiveTermination, DefaultTermination
from pymoo.termination.max_eval import MaximumFunctionCallTermination
from pymoo.util.misc import termination_from_tuple

from ..budget import RowBudget
from ..evaluator import Evaluator
from ..integrality import integer_mask, round_integral, search_box
from .base import LowerSolution, LowerSolver, better, prepare

__all__ = ["PymooSolver"]

# pymoo sees these for points it asked for beyond the row's cap; they are not evaluated and not counted.
_NOT_EVALUATED = 1e300


@dataclass
class PymooSolver(LowerSolver):
    """Wrap a pymoo algorithm instance, for example ``GA(pop_size=20)``, as a lower-level solver.

    Parameters
    ----------
    algorithm : pymoo Algorithm
        Copied for every row, never modified.
    termination : pymoo Termination or tuple, optional
        E.g. ``("n_gen", 100)``. Default: the algorithm's own, else pymoo's default single-objective
        termination (objective, design-space and violation tolerances, or 1000 generations). The row's cap
        is always added.
    warm_start : bool
        Put the row's warm starts into the initial population (the rest sampled by the algorithm's sampling).

    Notes
    -----
    Integer variables are rounded where pymoo's points are evaluated (pymoo's population keeps its values).

    Each pymoo problem carries one constraint more than the lower level: 0 for evaluated points, a huge value
    for failed points and for points not evaluated because the row's cap was reached, so that those are
    never selected. ``success`` means that the run was stopped by a convergence criterion of pymoo's default
    termination (not by its generation or evaluation limits, nor by the cap), or by the given ``termination``
    before the cap, and that the best point is feasible.
    """

    algorithm: Any
    termination: Any = None
    warm_start: bool = True

    def solve(
        self,
        ev: Evaluator,
        X: np.ndarray,
        rng: np.random.Generator,
        Y0: np.ndarray | None = None,
        max_evals: np.ndarray | int | None = None,
    ) -> LowerSolution:
        """One pymoo run per row; see :class:`~evobilevel.lower.base.LowerSolver`."""
        X, Y0, caps = prepare(ev, X, Y0, max_evals)
        budget = RowBudget(ev, X, caps)
        n, d = X.shape[0], ev.problem.ll_dim
        out = LowerSolution.empty(n, d)
        out.Y[:] = budget.fallback_points(Y0)
        seeds = rng.integers(2**31 - 1, size=n)
        for i in range(n):
            if budget.grant(np.array([i]), 1)[0] < 1:
                continue
            target = _RowProblem(budget, i)
            algorithm = copy.deepcopy(self.algorithm)
            initialization = getattr(algorithm, "initialization", None)
            if self.warm_start and Y0 is not None and callable(getattr(initialization, "sampling", None)):
                W = Y0[i][~np.isnan(Y0[i, :, 0])]
                if W.shape[0]:
                    initialization.sampling = _WarmSampling(initialization.sampling, W)
            termination = self._termination(algorithm, budget.left(i))
            result = minimize(target, algorithm, termination, seed=int(seeds[i]), verbose=False,
                              copy_algorithm=False)
            if target.best_y is not None:
                out.Y[i], out.f[i], out.cv[i] = target.best_y, target.best_f, target.best_cv
            converged = _stopped_by_convergence(result.algorithm.termination)
            out.success[i] = converged and budget.left(i) > 0 and out.cv[i] <= 0
        out.n_evals[:] = budget.used
        return out

    def _termination(self, algorithm, row_left: float):
        base = self.termination if self.termination is not None else algorithm.termination
        if base is None:
            base = DefaultSingleObjectiveTermination()
        base = termination_from_tuple(copy.deepcopy(base))
        if not np.isfinite(row_left):
            return base
        return TerminationCollection(base, MaximumFunctionCallTermination(int(row_left)))


def _stopped_by_convergence(termination) -> bool:
    """Whether the first criterion (the solver's own) stopped the run, and by convergence if it can tell."""
    if isinstance(termination, TerminationCollection):
        base, cap = termination.terminations
        if cap.has_terminated():
            return False
        termination = base
    if isinstance(termination, DefaultTermination):
        return any(c.has_terminated() for c in (termination.x, termination.cv, termination.f))
    return termination.has_terminated()


class _RowProblem(PymooProblem):
    """One row's lower level as a pymoo problem; evaluates through the row budget, keeps the best point.

    The last constraint column is huge for points not evaluated (cap reached) or failed, else 0.
    """

    def __init__(self, budget: RowBudget, row: int):
        # Integer variables: pymoo moves in a box half a unit wider, and points are evaluated rounded.
        self.integer = integer_mask(budget.ev.problem)
        lo, hi = search_box(budget.ev.problem.ll_bounds, self.integer)
        super().__init__(n_var=lo.shape[0], n_obj=1, n_ieq_constr=budget.n_constraints + 1,
                         xl=np.array(lo), xu=np.array(hi))
        self.budget = budget
        self.row = np.array([row])
        self.best_y = None
        self.best_f = np.inf
        self.best_cv = np.inf

    def _evaluate(self, Y, out, *args, **kwargs):
        Y = round_integral(Y, self.integer)
        k, m = Y.shape[0], self.n_ieq_constr - 1
        n_ok = int(self.budget.grant(self.row, k)[0])
        f = np.full(k, _NOT_EVALUATED)
        G = np.zeros((k, m + 1))
        G[n_ok:, m] = _NOT_EVALUATED
        if n_ok:
            f_ok, g_ok, cv_ok = self.budget.evaluate(np.repeat(self.row, n_ok), Y[:n_ok])
            for j in range(n_ok):
                if self.best_y is None or better(f_ok[j], cv_ok[j], self.best_f, self.best_cv):
                    self.best_y, self.best_f, self.best_cv = Y[j].copy(), f_ok[j], cv_ok[j]
            failed = ~np.isfinite(cv_ok) | ~np.isfinite(f_ok)
            f[:n_ok] = np.where(failed, _NOT_EVALUATED, f_ok)
            G[:n_ok, :m] = np.clip(g_ok, -_NOT_EVALUATED, _NOT_EVALUATED)
            G[:n_ok, m] = np.where(failed, _NOT_EVALUATED, 0.0)
        out["F"] = f[:, None]
        out["G"] = G


class _WarmSampling:
    """pymoo sampling that puts given points first and lets the wrapped sampling fill the rest."""

    def __init__(self, sampling, W: np.ndarray):
        self.sampling = sampling
        self.W = W

    def __call__(self, problem, n_samples, **kwargs):
        warm = Population.new(X=self.W[:n_samples])
        if n_samples <= self.W.shape[0]:
            return warm
        return Population.merge(warm, self.sampling(problem, n_samples - self.W.shape[0], **kwargs))
