"""The bridge to pymoo: a leader's problem as a pymoo ``Problem``.

Evaluating a population of ``x`` settles the followers through evobilevel (warm starts and psi/phi response models
from an archive shared across generations, lower-level solves in parallel chunks, counted per level) and returns
the leader's ``F`` and ``G``, so any pymoo algorithm can take the leader's seat: through
``evobilevel.solve(p, algorithm=<pymoo algorithm>)``, or directly with ``pymoo.optimize.minimize``:

>>> import evobilevel as eb
>>> from pymoo.algorithms.soo.nonconvex.ga import GA
>>> from pymoo.optimize import minimize
>>> from evobilevel.bridge import LeaderProblem
>>> leader = LeaderProblem(eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3), seed=0)
>>> res = minimize(leader, GA(pop_size=20), ("n_gen", 30), seed=1)          # doctest: +SKIP
>>> leader.best.x, leader.best.y, leader.n_ul_evals, leader.n_ll_evals       # doctest: +SKIP
>>> leader.front(res.opt)                                                   # doctest: +SKIP

This module imports pymoo; ``import evobilevel`` does not load it.
"""

from __future__ import annotations

import numpy as np
from pymoo.core.problem import Problem as PymooProblem

from .algorithms.base import Candidate
from .algorithms.followers import Followers
from .algorithms.population import Population, better_candidate
from .context import RunContext
from .front import Front, non_dominated
from .lowercheck import ll_gaps
from .parallel import LowerEngine

__all__ = ["LeaderProblem", "HUGE", "DATA_KEYS"]

#: What pymoo sees in place of an infinite value (a failed evaluation): finite, so that its sorting and crowding
#: distances stay defined, and so large that such a point always ranks last.
HUGE = 1e300

#: The follower's answer and both levels' violations, stored on every evaluated pymoo individual under these keys.
DATA_KEYS = ("follower_y", "follower_f", "follower_cv", "leader_cv")


class LeaderProblem(PymooProblem):
    """A bilevel problem as pymoo sees the leader's: ``x -> (F, G)``, each follower settled by evobilevel.

    Where the follower has constraints, pymoo gets one inequality constraint more than the leader has: the
    follower's constraint violation (0 where its answer is feasible), so a leader's choice that leaves the follower
    no feasible answer is infeasible. A failed evaluation gives :data:`HUGE` values; so does a failed follower of
    an unconstrained one (pymoo then sees only the leader's constraints, and algorithms that take none, such as
    MOEA/D, can serve a problem without constraints). Each evaluated individual also carries the follower's answer
    and both levels' violations (:data:`DATA_KEYS`).

    Parameters
    ----------
    problem : evobilevel.Problem
        The bilevel problem, with any number of leader objectives.
    followers : Followers, optional
        How the followers are settled (default settings by default).
    seed : int or None
        Seed of the lower-level solves and response models (pymoo's own seed is given to ``minimize``).
    n_jobs, chunk_size : int
        Lower-level solves in parallel chunks, as in :func:`evobilevel.solve`; the results do not depend on
        ``n_jobs``.
    max_ul_evals, max_ll_evals : int, optional
        Budgets; an evaluation beyond them raises :class:`~evobilevel.budget.BudgetExhausted`.
    context : RunContext, optional
        Evaluate through this run's context instead (how :func:`evobilevel.solve` uses it); the arguments from
        ``seed`` on are then ignored.

    Attributes
    ----------
    bilevel : evobilevel.Problem
    best : Candidate or None
        The best pair evaluated so far, feasibility first (a leader with one objective; None with several).
    followers_state : BLEAQState
        The archive of lower-level optima and the settlement's counters.

    Notes
    -----
    The problem pickles without its run context (a checkpoint holds it inside the pymoo algorithm); call
    :meth:`attach` before evaluating with an unpickled copy. Use it as a context manager with ``n_jobs != 1`` to
    keep one pool of worker processes for all generations.
    """

    def __init__(self, problem, followers: Followers | None = None, *, seed: int | None = 0, n_jobs: int = 1,
                 chunk_size: int = 4, max_ul_evals: int | None = None, max_ll_evals: int | None = None,
                 context: RunContext | None = None):
        lo, hi = problem.ul_bounds
        self._follower_column = problem.n_ll_constraints > 0
        super().__init__(n_var=problem.ul_dim, n_obj=problem.n_objectives,
                         n_ieq_constr=problem.n_ul_constraints + self._follower_column, xl=np.array(lo),
                         xu=np.array(hi))
        self.bilevel = problem
        self.followers = followers if followers is not None else Followers()
        self.followers_state = self.followers.new_state(problem)
        self.best: Candidate | None = None
        self._check_seed = None
        if context is None:
            run_seed, self._check_seed = np.random.SeedSequence(seed).spawn(2)
            context = RunContext(problem, LowerEngine(n_jobs=n_jobs, chunk_size=chunk_size), run_seed,
                                 max_ul_evals, max_ll_evals)
        self._ctx = context

    # ----------------------------------------------------------------- context
    def attach(self, context: RunContext) -> None:
        """Evaluate through ``context`` from now on (after unpickling, or to resume a run)."""
        self._ctx = context

    def __getstate__(self):
        state = dict(super().__getstate__())
        state["_ctx"] = None  # a run context holds worker pools and is rebuilt by whoever resumes
        return state

    def __enter__(self) -> LeaderProblem:
        self._context().engine.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._context().engine.__exit__(*exc)

    def _context(self) -> RunContext:
        if self._ctx is None:
            raise RuntimeError(f"{self.bilevel.name}: this LeaderProblem has no run context (it was unpickled); "
                               "call attach(context) first")
        return self._ctx

    @property
    def n_ul_evals(self) -> int:
        return self._context().n_ul_evals

    @property
    def n_ll_evals(self) -> int:
        return self._context().n_ll_evals

    # -------------------------------------------------------------- evaluation
    def _evaluate(self, X, out, *args, **kwargs):
        ctx = self._context()
        X = np.asarray(X, dtype=float)
        answers = self.followers.settle(ctx, self.followers_state, X)
        upper = ctx.evaluate_upper(X, answers.Y)
        batch = Population(X=X, Y=answers.Y, F=upper.values, G=upper.constraints, ul_cv=upper.cv, f=answers.f,
                           ll_cv=answers.ll_cv)
        if self.bilevel.n_objectives == 1 and len(batch):
            self.best = better_candidate(self.best, batch.best())
        if self._follower_column:
            F = upper.values
            G = np.hstack([upper.constraints, np.where(upper.failed, np.inf, answers.ll_cv)[:, None]])
        else:  # only a failure can leave an unconstrained follower without an answer
            lost = answers.ll_cv > 0
            F = np.where(lost if upper.values.ndim == 1 else lost[:, None], np.inf, upper.values)
            G = upper.constraints
        out["F"], out["G"] = _finite(F), _finite(G)
        out.update(zip(DATA_KEYS, (answers.Y, answers.f, answers.ll_cv, upper.cv)))

    # ------------------------------------------------------------------ results
    def front(self, population, check_ll: bool = False) -> Front:
        """The feasible, non-dominated members of a pymoo population (e.g. ``res.opt`` or ``algorithm.opt``).

        Parameters
        ----------
        population : pymoo Population, or None
            Individuals evaluated by this problem.
        check_ll : bool
            Measure every pair's lower-level gap with an independent, stronger solve (``Front.ll_gap``); only for a
            problem made standalone (in :func:`evobilevel.solve` the runner checks).

        Returns
        -------
        Front
            With one objective: the best pairs of the population (all of equal ``F``).
        """
        front = front_of(population, self.bilevel)
        if check_ll:
            if self._check_seed is None:
                raise ValueError("check_ll needs a LeaderProblem made standalone (with a seed, not a context)")
            front.ll_gap, _ = ll_gaps(self.bilevel, front.X, front.f, np.zeros(len(front)), self._check_seed)
        return front


def front_of(population, problem) -> Front:
    """The feasible, non-dominated individuals of a pymoo population evaluated by a :class:`LeaderProblem`."""
    k = problem.n_objectives
    empty = Front(X=np.empty((0, problem.ul_dim)), Y=np.empty((0, problem.ll_dim)), F=np.empty((0, k)),
                  f=np.empty(0))
    if population is None or len(population) == 0:
        return empty
    X, F = (np.asarray(a, dtype=float) for a in population.get("X", "F"))
    Y, f, ll_cv, ul_cv = (np.asarray(a, dtype=float) for a in population.get(*DATA_KEYS))
    keep = np.flatnonzero((ul_cv == 0) & (ll_cv == 0))
    keep = keep[non_dominated(F[keep])]
    return Front(X=X[keep], Y=Y[keep].reshape(-1, problem.ll_dim), F=F[keep].reshape(-1, k), f=f[keep])


def _finite(values: np.ndarray) -> np.ndarray:
    """``values`` with non-finite entries (failed evaluations) and beyond-huge ones replaced by ±:data:`HUGE`."""
    return np.clip(np.nan_to_num(values, nan=HUGE, posinf=HUGE, neginf=-HUGE), -HUGE, HUGE)
