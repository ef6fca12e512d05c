"""Refinements that start from the minimum of the follower's objective alone, for followers whose feasible set traps
constrained searches.

A constrained local search stays in the part of the follower's feasible set it starts in. Where that set falls
apart (SMD9's rings, whose constraint jumps at their edges), a refinement from a warm start on one ring ends on that
ring, while the follower's optimum lies where f alone is least, or on the edge of the ring nearest to it. A search of
f alone over the box (the constraints hidden, :class:`~evobilevel.budget.ObjectiveBudget`), then of the constrained
problem from where it ended, finds that answer: the minimum of f itself where it is feasible, else the nearest edge of
the feasible set. Where constrained searches from warm starts do find the follower's optimum (SMD10's and SMD12's
followers, TP's), the same route costs more (f alone leads far outside the feasible set) and moves answers along a
set of optima away from the leader's choice.

So a run finds out which holds for its follower (:class:`ObjectiveFirst`):

1. *Probes.* Until the run has decided, the first settled row of each batch is refined from f's own minimum as
   well; a probe pays when it ends lower than the row's answer (by more than ``SUSPECT_GAIN``, as a global search of
   a suspect must), and its answer is then taken. After ``MIN_PROBES`` probes the run decides: refinements start from
   f's own minimum where the probes paid at least as often as not (Laplace's estimate ``(paid + 1) / (tried + 2)``
   at least a half, as for the suspects' searches), from the warm starts otherwise, for good.
2. *Fallbacks.* Where refinements start from f's own minimum, a row that does not settle so (an answer infeasible,
   not converged, or above phi's bound) is refined from its warm starts as well, and keeps the better answer. A
   fallback pays when it is better (by ``SUSPECT_GAIN`` where both are feasible); once ``MIN_PROBES`` fallbacks have
   paid at least as often as not, the run goes back to the warm starts, for good. Early probes can pay where the
   warm starts are still poor (SMD12 at (10, 10)) and not later.
3. *Suspects.* Where refinements start from the warm starts, a suspected local optimum (a refined answer above
   phi's bound) is refined from f's own minimum before its global search, at a tenth of its cost; a lower answer is
   taken, and settles the row where it meets phi's bound.

Only followers with constraints and continuous variables, not certified convex or linear: without constraints f alone
is the follower's problem, a convex or linear follower's feasible set is connected (no constrained search is trapped
in a part of it), and integer followers are left to the global search.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...integrality import integer_mask
from ...lower import LowerSolution
from ...lower.base import better
from ...lower.refinement import Refinement
from .state import SUSPECT_GAIN, BLEAQState

__all__ = ["MIN_PROBES", "ObjectiveFirst"]

#: Probes before a run decides whether its refinements start from f's own minimum: the first generations' worth, a
#: small cost next to the run's; as many as the stuck searches must have before their rate is read.
MIN_PROBES = 5


class ObjectiveFirst:
    """Refinements from the minimum of f alone (see the module's description), with BLEAQ's ``local_solver``.

    Parameters
    ----------
    local_solver : LowerSolver
        The settlement's refinement; the route needs a :class:`~evobilevel.lower.refinement.Refinement` (it runs
        it with ``objective_only``), and is never taken with another solver.
    """

    def __init__(self, local_solver):
        self.local_solver = local_solver

    def applies(self, ctx, state: BLEAQState) -> bool:
        """Whether the route is worth asking about for the run's follower: constraints, continuous variables, not
        certified convex or linear (``state.lower_convex``, ``state.lower_linear``), a Refinement."""
        return (isinstance(self.local_solver, Refinement) and ctx.problem.n_ll_constraints > 0
                and integer_mask(ctx.problem) is None and not state.lower_linear and not state.lower_convex)

    def refine(self, ctx, state: BLEAQState, X: np.ndarray, Y0: np.ndarray | None,
               f_accept: np.ndarray | None = None) -> LowerSolution:
        """Refine the rows of X (n, ul_dim): f alone from the warm starts Y0 (n, k, ll_dim) (the model starting from
        the curvature archived nearest), then the constrained problem from where that ended (``f_accept`` as for
        any refinement). The answers carry the curvature that the search of f alone learnt."""
        solver = replace(self.local_solver, objective_only=True)
        lowest = ctx.solve_lower(X, solver, Y0=Y0, curvature=state.archive.nearest_curvature(X))
        sol = ctx.solve_lower(X, self.local_solver, Y0=lowest.Y[:, None, :], f_accept=f_accept)
        return replace(sol, curvature=lowest.curvature)

    def route(self, ctx, state: BLEAQState, X: np.ndarray, Y0: np.ndarray | None, f_accept: np.ndarray | None,
              f_bound: np.ndarray | None, fallback) -> LowerSolution:
        """The refinements of the rows of X (n, ul_dim) where the run starts them from f's own minimum
        (:meth:`refine`); rows that do not settle so (infeasible, not converged, or above ``f_bound`` (n,)) are
        refined from their warm starts Y0 as well by ``fallback(rows)`` (a LowerSolution of len(rows)), and keep the
        better answer by Deb's rules. Each fallback is counted (``state.fallbacks``); once they have paid at least
        as often as not, the run starts refinements from the warm starts again (``state.objective_first`` False)."""
        sol = self.refine(ctx, state, X, Y0, f_accept)
        bad = ~sol.success | (sol.cv > 0)
        if f_bound is not None:
            bad |= sol.f > f_bound
        rows = np.flatnonzero(bad)
        if not rows.size:
            return sol
        alt, first = fallback(rows), sol.take(rows)
        # Better by Deb's rules, and where both are feasible lower by SUSPECT_GAIN (another optimum as good is not).
        paid = better(alt.f, alt.cv, first.f, first.cv) & ((alt.cv > 0) | (first.cv > 0) | _lower(alt, first.f))
        sol.put(rows[paid], alt.take(paid))
        sol.n_evals[rows] = first.n_evals + alt.n_evals
        state.fallbacks.count(paid)
        if _decided_for(state.fallbacks):
            state.objective_first = False
        return sol

    def probe(self, ctx, state: BLEAQState, starts: np.ndarray | None, out, rows: np.ndarray) -> None:
        """While the run is undecided (``state.objective_first`` None), refine the first feasible row of ``rows``
        (settled by a refinement from ``starts`` (n, k, ll_dim)) of the answers ``out`` from f's own minimum as well,
        take its answer where lower, and decide after ``MIN_PROBES`` probes."""
        if state.objective_first is not None or not self.applies(ctx, state):
            return
        feasible = rows[out.ll_cv[rows] == 0]
        if not feasible.size:
            return
        i = feasible[:1]
        sol = self.refine(ctx, state, out.X[i], None if starts is None else starts[i])
        lower = _lower(sol, out.f[i])
        out.take(i[lower], sol.take(lower))
        state.probes.count(lower)
        if state.probes.tried >= MIN_PROBES:
            state.objective_first = _decided_for(state.probes)

    def suspects(self, ctx, state: BLEAQState, f_bound: np.ndarray, starts: np.ndarray | None, suspects: np.ndarray,
                 out, todo: np.ndarray) -> np.ndarray:
        """Refine the suspected local optima ``suspects`` (rows of the answers ``out``, with phi's bounds ``f_bound``
        (len(suspects),)) from f's own minimum before their global search, from their refined answers and
        ``starts``. A lower answer is taken, and settles its row where it meets the bound (``todo`` False). Returns
        the suspects left to the global search: all of them where refinements start from f's own minimum already."""
        if not suspects.size or state.objective_first or not self.applies(ctx, state):
            return suspects
        Y0 = out.Y[suspects, None, :]
        if starts is not None:
            Y0 = np.concatenate([Y0, starts[suspects]], axis=1)
        sol = self.refine(ctx, state, out.X[suspects], Y0)
        lower = _lower(sol, out.f[suspects])
        out.take(suspects[lower], sol.take(lower))
        settled = lower & (sol.f <= f_bound)
        todo[suspects[settled]] = False
        state.counts["suspects_refined"] += int(settled.sum())
        return suspects[~settled]


def _decided_for(record) -> bool:
    """Whether the searches of ``record`` (a :class:`~.state.SearchRecord`) have been tried ``MIN_PROBES`` times and
    paid at least as often as not, by Laplace's estimate ``(paid + 1) / (tried + 2)``."""
    return record.tried >= MIN_PROBES and (record.paid + 1) / (record.tried + 2) >= 0.5


def _lower(sol: LowerSolution, f: np.ndarray) -> np.ndarray:
    """(n,) bool: where the feasible answers of ``sol`` beat the values f (n,) by more than ``SUSPECT_GAIN``."""
    return (sol.cv == 0) & (sol.f < f - SUSPECT_GAIN * (1 + np.abs(f)))

