"""BLEAQ: bilevel evolutionary algorithm with quadratic approximations of the lower level.

The upper level evolves a population of ``(x, y)`` pairs whose ``y`` is lower-level optimal for ``x``. Every
pair ever solved goes into an archive, on which local quadratic models of the lower-level optimal response
``psi: x -> y*`` and optimal value ``phi: x -> f*`` are fitted. A new candidate's lower level is then settled
by the cheapest route that can be trusted:

1. *prediction*: where the models are trustworthy (the candidate lies inside the box of the model's training
   points and ``phi`` predicted held-out points well), ``y = psi(x)`` is evaluated once and accepted if it is
   feasible and ``f(x, psi(x)) <= phi(x) + tol``: since ``f(x, y) >= f*(x)`` for every feasible ``y``, that
   proves ``y`` is ``tol``-optimal as far as ``phi`` is right;
2. *local refinement* (quasi-Newton with batched finite differences) from the prediction, from the
   recombined lower-level vectors of the parents and from the nearest archived optimum;
3. *global search* (batched differential evolution, warm-started) when the refinement fails.

A refined answer whose ``f`` lies clearly above the ``phi`` prediction is taken for a local optimum and sent on
to the global search.

Besides the evolutionary offspring, every generation proposes one point that minimises a quadratic model of
``F(x, y*(x))`` (and of the upper-level constraints) around the best member. The best member's lower level is
re-solved globally, from scratch, from time to time and always before the run ends, so that a lower-level
solution that was only locally optimal cannot stay the answer.

Upper-level constraints are handled by epsilon-level comparisons that tighten to feasibility-first ranking over
the first generations of each (re)start, so that the first feasible region found does not capture the population
(SMD10, SMD12). Where the follower has a set of optimal answers and only some of them satisfy the leader's
constraints (SMD11), the leader chooses among them (:mod:`~evobilevel.algorithms.optimistic`).

Differences from BLEAQ/BLEAQ2 (Sinha et al.): DE/current-to-pbest/1 instead of PCX at the upper level, the
prediction accepted by the psi/phi consistency test above instead of by a mean-squared-error threshold alone,
the model form chosen per output with that form's own coefficients, and a quasi-Newton refinement instead of
a quadratic-programming phase.

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
from scipy.optimize import minimize

from ..lower import DifferentialEvolution, LocalRefinement, default_solver
from ..surrogates import fit_local, fit_quadratic, n_coefficients
from .base import Algorithm, Candidate, Restarts, child_wins, population_best, population_ranks, rank_key, stalled
from .operators import RingBuffer, SolutionArchive, de_current_to_pbest, repair_midpoint
from .optimistic import LeaderChoice, choose_confirmed, choose_for_leader

__all__ = ["BLEAQ"]


def _default_local() -> LocalRefinement:
    return LocalRefinement(maxiter=40)


@dataclass
class BLEAQ(Algorithm):
    """BLEAQ with psi/phi quadratic models, local refinement and global fall-back at the lower level.

    Parameters
    ----------
    pop_size : int, optional
        Upper-level population; default ``max(24, 5 * ul_dim + 5)``.
    n_offspring : int, optional
        Evolutionary offspring per generation; default ``max(2, pop_size // 4)``.
    max_generations : int
    ftol, stall_generations : float, int
        Convergence: the best ``F`` improved by less than ``ftol * (1 + |F|)`` in ``stall_generations``
        generations and the feasible members' ``F`` values lie within that tolerance (or the stall lasted twice
        as long); the best member's lower level is re-solved globally before the run stops.
    n_initial_global : int
        Initial members whose lower level is solved from scratch; the others start from their solutions.
    accept_tol : float
        A prediction is accepted when ``f(x, psi(x)) <= phi(x) + accept_tol * (1 + |phi(x)|)`` and ``phi``'s
        held-out error is below the same tolerance.
    refine_tol : float
        A refined lower-level solution is sent on to the global search when its ``f`` exceeds the ``phi``
        prediction by more than three held-out errors plus ``refine_tol * (1 + |phi|)``.
    psi_tol : float
        A component of ``psi`` counts as determined when its held-out error is below this fraction of the
        variable's range; other components of a prediction come from the candidate's own lower-level vector.
    model_search : bool
        Propose one candidate per generation from a quadratic model of the upper level.
    recheck_every : int
        Generations between global re-solves of the best member's lower level.
    eps_generations, eps_exponent, eps_quantile : int, float, float
        Epsilon-level comparison of upper-level constraint violations (Takahama and Sakai): for
        ``eps_generations`` generations after each (re)start, members whose violation is at most
        ``eps = eps0 * (1 - t / eps_generations) ** eps_exponent`` compete on ``F`` as if feasible, ``eps0`` being
        the ``eps_quantile`` quantile of the first population's violations. Feasibility-first ranking alone lets
        the first feasible region found capture the population; on a disconnected feasible region (SMD10,
        SMD12) that is often not the one holding the optimum. ``eps_generations=0`` switches it off. On SMD12
        (5, 5) the first attempt (``restarts=0``, seeds 0-9) ended in the right region in 0/10 seeds without
        it, 3/10 with 60 generations and 10/10 with 120; SMD10 paid about 40 % more evaluations for the longer
        phase in the same comparison.
    leader_choice : bool
        When the best member is infeasible at the upper level only, through constraints that may depend on y,
        search its follower's near-optimal answers (``f <= f + leader_tol * (1 + |f|)``) for one the leader
        prefers, once per member (see :mod:`~evobilevel.algorithms.optimistic`). Needed where the lower level
        has a set of optima and only part of it is feasible for the leader (SMD11, SMD12). Attempts that leave
        the member infeasible are spaced out exponentially; constraints the first gradient shows not to move
        with y are not tried again. For a best member feasible at both levels whose follower is free (see
        ``free_tol``), the leader chooses too, once that member has held for a fifth of the stall window or the
        population has converged on it, and keeps the choice only if the follower's own refinement of it keeps
        the gain (:func:`~evobilevel.algorithms.optimistic.choose_confirmed`): on an ill-conditioned lower
        level with a unique optimum, ``F`` moves a lot where ``f`` hardly does, and an unconfirmed search would
        reward the follower's inexactness.
    leader_tol : float
    free_tol : float
        A member's follower counts as free to choose when psi's held-out error at its x, or the distance
        between its answer and another one as good (to ``refine_tol``) that a global re-solve of its lower
        level found, exceeds this fraction of a variable's range. psi alone misses it once the population has
        converged: the members inherit one answer by recombination, so psi looks consistent around x (on
        SMD12, 2 of 11 runs stalled at x* with answers the leader would not choose).
    restarts, restart_patience : int
        When the population has converged, start again from a fresh sample (keeping the archive and, aside,
        the best member), at most ``restarts`` times and until ``restart_patience`` restarts in a row found
        nothing better: a guard against premature convergence on a multimodal upper level, paid for in
        evaluations by runs that had already found the optimum.
    infeasible_evals : int
        Once the global searches for candidates whose local refinement ended infeasible at the lower level have
        found a feasible answer in at most a tenth of at least five tries, such searches get at most this many
        evaluations each. Where the leader's optimum lies on the edge of the region in which the follower's
        problem is feasible (TP4, TP6), many candidates fall beyond it, and each full search spent 1,000-4,000
        evaluations to find nothing (0 of 28-142 per run); on SMD12 such searches succeed in a third or more.
    global_solver, local_solver : LowerSolver
    archive_size : int
        Lower-level optima kept for the models.
    """

    name: ClassVar[str] = "bleaq"

    pop_size: int | None = None
    n_offspring: int | None = None
    max_generations: int = 1000
    ftol: float = 1e-6
    stall_generations: int = 25
    n_initial_global: int = 3
    accept_tol: float = 1e-6
    psi_tol: float = 1e-3
    refine_tol: float = 1e-3
    model_search: bool = True
    recheck_every: int = 15
    eps_generations: int = 120
    eps_exponent: float = 4.0
    eps_quantile: float = 0.2
    leader_choice: bool = True
    leader_tol: float = 1e-6
    free_tol: float = 0.1
    restarts: int = 12
    restart_patience: int = 5
    infeasible_evals: int = 200
    global_solver: DifferentialEvolution = field(default_factory=default_solver)
    local_solver: LocalRefinement = field(default_factory=_default_local)
    archive_size: int = 2000

    def __post_init__(self) -> None:
        if isinstance(self.infeasible_evals, bool) or not isinstance(self.infeasible_evals, Integral) \
                or self.infeasible_evals < 1:
            raise ValueError(f"BLEAQ: infeasible_evals must be a positive integer, got {self.infeasible_evals!r}")

    # ------------------------------------------------------------------ setup
    def setup(self, ctx) -> None:
        problem = ctx.problem
        d = problem.ul_dim
        self._lo, self._hi = problem.ul_bounds
        n = self.pop_size or max(24, 5 * d + 5)
        self._n_offspring = self.n_offspring or max(2, n // 4)
        # Points for a local psi/phi model: enough for the full quadratic plus slack, and d held out.
        self._n_train = n_coefficients(d, "quadratic") + 2 * d
        self._n_valid = d
        self._archive = SolutionArchive(problem.ul_bounds, problem.ll_dim, self.archive_size)
        self._width = self._archive.scale  # distances in x are measured in the unit box
        self._y_range = _ranges(problem.ll_bounds)  # psi's errors and distances in y, as fractions of these
        # Upper-level values of the evaluated pairs whose lower level was solved, for the upper-level model.
        self._evaluated = RingBuffer(self.archive_size, X=d, F=None, G=problem.n_ul_constraints)
        self._generation = 0
        self._last_recheck = 0
        self._recheck_interval = self.recheck_every
        self._checked_x: np.ndarray | None = None
        self.converged, self.stop_message = False, ""
        self._counts = {"predicted": 0, "refined": 0, "global": 0, "model_candidates": 0, "rechecks": 0,
                        "recheck_corrections": 0, "leader_choices": 0, "leader_improvements": 0, "capped_global": 0}
        # Global searches for rows whose refinement ended infeasible at the lower level: tried, found feasible.
        self._stuck_searches = [0, 0]
        self._leader_tried: dict[bytes, None] = {}
        # Members' x at which a global re-solve found another, equally good lower-level answer far away.
        self._seen_free: dict[bytes, None] = {}
        # Leader choices that do not make their member feasible are spaced out exponentially (see _leader_choice).
        self._leader_next, self._leader_misses = 0, 0
        # Upper-level constraints seen to move with y; a member violating only others is not worth a choice.
        self._G_moves_with_y: np.ndarray | None = None
        self._restarts = Restarts(self.restarts, self.restart_patience)
        self._initial_size = n
        self._start_population(ctx, n)

    def _start_population(self, ctx, n: int) -> None:
        """A Latin-hypercube population; the lower levels of the first few are solved from scratch (when the
        archive is empty), the others from the nearest archived optima."""
        X = _latin_hypercube(n, self._lo, self._hi, ctx.rng)
        first = min(n, self.n_initial_global) if self._archive.size == 0 else 0
        parts = []
        if first:
            head = self._settle_globally(ctx, X[:first], None)
            self._archive_add(head)
            parts.append(head)
        if first < n:
            Y0 = self._archive.warm_starts(X[first:], 2)
            parts.append(self._settle(ctx, X[first:], Y0, allow_prediction=False))
        self._pop = self._evaluate_upper(ctx, parts[0] if len(parts) == 1 else _concat(*parts))
        self._best_history = []
        ul_cv = self._pop["ul_cv"][np.isfinite(self._pop["ul_cv"]) & (self._pop["ll_cv"] == 0)]
        self._eps0 = float(np.quantile(ul_cv, self.eps_quantile)) if ul_cv.size else 0.0
        self._eps_start = self._generation

    def _eps(self) -> float:
        """The current epsilon level of upper-level constraint violation (0: feasibility first)."""
        t = self._generation - self._eps_start
        if t >= self.eps_generations or self._eps0 <= 0:
            return 0.0
        return self._eps0 * (1 - t / self.eps_generations) ** self.eps_exponent

    def _ranks(self, pop: dict) -> np.ndarray:
        """Ranks under the current epsilon level (violations up to it count as none)."""
        eps = self._eps()
        ul_cv = pop["ul_cv"] if eps == 0 else np.where(pop["ul_cv"] <= eps, 0.0, pop["ul_cv"])
        return rank_key(pop["F"], ul_cv, pop["ll_cv"])

    # ------------------------------------------------------------------- step
    def step(self, ctx) -> None:
        pop = self._pop
        ranks = self._ranks(pop)
        n = len(ranks)
        targets = ctx.rng.choice(n, size=min(self._n_offspring, n), replace=False)
        # DE on the joint (x, y) vector: y's part gives each child a recombined lower-level start, which carries
        # the lower level's free directions (where several y are optimal) through selection.
        joint = np.hstack([pop["X"], pop["Y"]])
        trial = de_current_to_pbest(joint, ranks, ctx.rng)[targets]
        d = ctx.problem.ul_dim
        X = repair_midpoint(trial[:, :d], pop["X"][targets], self._lo, self._hi)
        lo_y, hi_y = ctx.problem.ll_bounds
        Y_start = np.clip(trial[:, d:], lo_y, hi_y)
        parents = targets
        if self.model_search:
            best = int(np.argmin(ranks))
            x_model = self._model_candidate(ctx, best)
            if x_model is not None:
                X = np.vstack([X, x_model])
                Y_start = np.vstack([Y_start, pop["Y"][best]])
                parents = np.append(parents, -1)
                self._counts["model_candidates"] += 1
        starts = np.concatenate([Y_start[:, None, :], self._archive.warm_starts(X, 1)], axis=1)
        children = self._evaluate_upper(ctx, self._settle(ctx, X, starts))
        self._select(children, parents)
        if self.leader_choice and self._generation >= self._leader_next:
            best = int(np.argmin(self._ranks(self._pop)))
            if self._pop["ul_cv"][best] > 0 and self._repairable_by_y(best):
                self._leader_choice(ctx, best)
            elif self._best_unchanged(self.stall_generations // 5) and self._follower_free(ctx, best):
                # A feasible best member that has held for a while: what its follower's free directions can
                # give the leader, before the population spends a stall window on finding it by selection.
                self._leader_choice(ctx, best, confirm=True)
        self._generation += 1
        if self._generation - self._last_recheck >= self._recheck_interval:
            self._recheck_best(ctx)
        self._check_convergence(ctx)

    def _select(self, children: dict, parents: np.ndarray) -> None:
        """Each evolutionary child against its parent; the model candidate against the worst member."""
        pop = self._pop
        evolved = np.flatnonzero(parents >= 0)
        # The parents are distinct, so the one-to-one contests do not interact.
        wins = evolved[child_wins({k: pop[k][parents[evolved]] for k in pop},
                                  {k: children[k][evolved] for k in pop}, self._ranks)]
        for k in pop:
            pop[k][parents[wins]] = children[k][wins]
        for j in np.flatnonzero(parents < 0):
            worst = int(np.argmax(self._ranks(pop)))
            one = {k: children[k][j:j + 1] for k in pop}
            if child_wins({k: pop[k][worst:worst + 1] for k in pop}, one, self._ranks)[0]:
                for k in pop:
                    pop[k][worst] = one[k][0]

    # ------------------------------------------------------------ lower level
    def _settle(self, ctx, X: np.ndarray, starts: np.ndarray | None, allow_prediction: bool = True) -> dict:
        """Lower-level solutions for the rows of X (n, ul_dim), by the cheapest trustworthy route.

        ``starts`` (n, k, ll_dim) are starting points for the refinement, the first one the candidate's own
        (recombined) lower-level vector. Returns a dict of arrays ``X, Y, f, ll_cv``.
        """
        n = X.shape[0]
        out = {"X": X, "Y": np.full((n, ctx.problem.ll_dim), np.nan), "f": np.full(n, np.inf),
               "ll_cv": np.full(n, np.inf)}
        todo = np.ones(n, bool)
        predictions = self._predict(ctx, X) if allow_prediction else None
        if predictions is not None:
            Y_hat, phi_hat, trusted, determined, f_bound, _ = predictions
            if starts is not None:
                # Where psi does not determine y (held-out error not small: the lower level is indifferent
                # along that direction, or the model is poor), keep the candidate's own value, so that
                # the leader's selection, not the model's average, decides among equally optimal answers.
                Y_hat = np.where(determined, Y_hat, starts[:, 0])
            rows = np.flatnonzero(trusted)
            if rows.size:
                ev = ctx.evaluate_lower(X[rows], Y_hat[rows])
                ok = (ev.cv == 0) & self._meets_phi(ev.values, phi_hat[rows])
                out["Y"][rows], out["f"][rows], out["ll_cv"][rows] = Y_hat[rows], ev.values, ev.cv
                acc = rows[ok]
                todo[acc] = False
                self._counts["predicted"] += acc.size
            # The prediction is also the first refinement start where there is one.
            has = np.isfinite(Y_hat).all(axis=1)
            first = Y_hat[:, None, :].copy()
            first[~has] = np.nan
            starts = first if starts is None else np.concatenate([first, starts], axis=1)
        rows = np.flatnonzero(todo)
        if rows.size:
            sol = ctx.solve_lower(X[rows], self.local_solver, Y0=None if starts is None else starts[rows])
            good = sol.success & (sol.cv == 0)
            if predictions is not None:
                # A refinement ends at a local optimum; one clearly above what phi predicts for this x (SMD9's
                # rings, SMD12's disconnected constraint set) is sent on to the global search.
                good &= sol.f <= f_bound[rows]
                # One that meets an accurate phi as closely as an accepted prediction must is optimal by the
                # same rule, converged or not: on a lower level whose optima form a sphere (SMD12) SLSQP
                # circles at the optimal value until its iteration limit.
                good |= (sol.cv == 0) & trusted[rows] & self._meets_phi(sol.f, phi_hat[rows])
            out["Y"][rows], out["f"][rows], out["ll_cv"][rows] = sol.Y, sol.f, sol.cv
            todo[rows[good]] = False
            self._counts["refined"] += int(good.sum())
        rows = np.flatnonzero(todo)
        if rows.size:
            Y0 = np.concatenate([out["Y"][rows, None, :], starts[rows]], axis=1) if starts is not None else None
            # Rows whose refinement could not even reach the follower's feasible set: where the global search has
            # (almost) never found one for such rows in this run, the follower's problem is infeasible there.
            stuck = out["ll_cv"][rows] > 0
            glob = self._settle_globally(ctx, X[rows], Y0, capped=stuck if self._stuck_rows_hopeless() else None)
            self._stuck_searches[0] += int(stuck.sum())
            self._stuck_searches[1] += int((glob["ll_cv"][stuck] == 0).sum())
            for key in ("Y", "f", "ll_cv"):
                out[key][rows] = glob[key]
        self._archive_add(out)
        return out

    def _stuck_rows_hopeless(self) -> bool:
        """Whether the global searches for rows whose refinement ended infeasible have found a feasible answer
        in at most a tenth of at least five tries so far."""
        tried, rescued = self._stuck_searches
        return tried >= 5 and rescued <= 0.1 * tried

    def _meets_phi(self, f: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """Whether lower-level values f (n,) are optimal by phi's predictions phi (n,), to ``accept_tol``."""
        return f <= phi + self.accept_tol * (1 + np.abs(phi))

    def _settle_globally(self, ctx, X: np.ndarray, Y0: np.ndarray | None, capped: np.ndarray | None = None) -> dict:
        """Global lower-level searches for the rows of X (n, ul_dim); those marked in ``capped`` (n,) bool get at
        most ``infeasible_evals`` evaluations each."""
        self._counts["global"] += X.shape[0]
        if capped is None or not capped.any():
            sol = ctx.solve_lower(X, self.global_solver, Y0=Y0)
            return {"X": X, "Y": sol.Y, "f": sol.f, "ll_cv": sol.cv}
        out = {"X": X, "Y": np.empty((X.shape[0], ctx.problem.ll_dim)), "f": np.empty(X.shape[0]),
               "ll_cv": np.empty(X.shape[0])}
        self._counts["capped_global"] += int(capped.sum())
        for part, cap in ((~capped, None), (capped, self.infeasible_evals)):
            if part.any():
                sol = ctx.solve_lower(X[part], self.global_solver, Y0=None if Y0 is None else Y0[part],
                                      max_evals_per_row=cap)
                out["Y"][part], out["f"][part], out["ll_cv"][part] = sol.Y, sol.f, sol.cv
        return out

    def _predict(self, ctx, X: np.ndarray):
        """psi/phi predictions for the rows of X, or None while the archive is too small.

        Returns ``Y_hat`` (n, ll_dim), ``phi_hat`` (n,), ``trusted`` (n,) bool (inside the training box, phi
        accurate), ``determined`` (n, ll_dim) bool (psi's held-out error below ``psi_tol``), ``f_bound`` (n,):
        the largest lower-level value a local search may end at and still be taken for optimal (phi plus three
        held-out errors and ``refine_tol``, inside the training box; inf elsewhere) and ``psi_error``
        (n, ll_dim): psi's held-out errors as fractions of the variables' ranges.
        """
        archive = self._archive
        if archive.size < self._n_train + self._n_valid:
            return None
        lo_y, hi_y = ctx.problem.ll_bounds
        n, m = X.shape[0], ctx.problem.ll_dim
        Y_hat = np.full((n, m), np.nan)
        phi_hat = np.full(n, np.nan)
        trusted = np.zeros(n, bool)
        determined = np.zeros((n, m), bool)
        f_bound = np.full(n, np.inf)
        psi_error = np.full((n, m), np.inf)
        y_tol = self.psi_tol * (hi_y - lo_y)
        T = np.hstack([archive.Y, archive.f[:, None]])
        for i in range(n):
            model = fit_local(archive.X, T, X[i], self._n_train, self._n_valid, ctx.rng, self._width)
            t = model.predict(X[i])[0]
            Y_hat[i] = np.clip(t[:m], lo_y, hi_y)
            phi_hat[i] = t[m]
            tol = self.accept_tol * (1 + abs(t[m]))
            inside = bool(model.inside(X[i])[0])
            trusted[i] = inside and model.valid_error[m] <= tol
            determined[i] = model.valid_error[:m] <= y_tol
            psi_error[i] = model.valid_error[:m] / self._y_range
            if inside and np.isfinite(model.valid_error[m]):
                f_bound[i] = t[m] + 3 * model.valid_error[m] + self.refine_tol * (1 + abs(t[m]))
        return Y_hat, phi_hat, trusted, determined, f_bound, psi_error

    def _archive_add(self, solved: dict) -> None:
        ok = (solved["ll_cv"] == 0) & np.isfinite(solved["f"])
        self._archive.add(X=solved["X"][ok], Y=solved["Y"][ok], f=solved["f"][ok])

    # ------------------------------------------------------------ upper level
    def _evaluate_upper(self, ctx, solved: dict) -> dict:
        ul = ctx.evaluate_upper(solved["X"], solved["Y"])
        ok = (solved["ll_cv"] == 0) & ~ul.failed
        self._evaluated.add(X=solved["X"][ok], F=ul.values[ok], G=ul.constraints[ok])
        return {"X": solved["X"].copy(), "Y": solved["Y"].copy(), "F": ul.values.copy(), "ul_cv": ul.cv.copy(),
                "G": ul.constraints.copy(),
                "f": solved["f"].copy(), "ll_cv": solved["ll_cv"].copy()}

    def _model_candidate(self, ctx, best: int) -> np.ndarray | None:
        """Minimise quadratic models of F(x, y*(x)) and of the upper-level constraints near member ``best``."""
        pop = self._pop
        feasible = (pop["ul_cv"] == 0) & (pop["ll_cv"] == 0)
        d = ctx.problem.ul_dim
        n_fit = n_coefficients(d, "quadratic") + d
        if feasible.sum() == 0 or self._evaluated.size < n_fit:
            return None
        x_best = pop["X"][best]
        Xe, Fe, Ge = self._evaluated.X, self._evaluated.F, self._evaluated.G
        d2 = (((Xe - x_best) / self._width) ** 2).sum(axis=1)
        near = np.argsort(d2)[:n_fit]
        lo = np.maximum(self._lo, Xe[near].min(axis=0))
        hi = np.minimum(self._hi, Xe[near].max(axis=0))
        if np.any(hi - lo <= 1e-12 * self._width):
            return None
        model = fit_quadratic(Xe[near], np.hstack([Fe[near, None], Ge[near]]))
        constraints = []
        if Ge.shape[1]:
            constraints = [{"type": "ineq", "fun": lambda x: -model.predict(x)[0, 1:]}]
        res = minimize(lambda x: model.predict(x)[0, 0], x_best, method="SLSQP", bounds=list(zip(lo, hi)),
                       constraints=constraints, options={"maxiter": 100})
        x = np.clip(res.x, lo, hi)
        if not np.all(np.isfinite(x)) or np.allclose(x, x_best, rtol=0, atol=1e-12):
            return None
        return x

    def _best_unchanged(self, n: int) -> bool:
        """Whether the best feasible F has stayed the same over the last n generations."""
        h = self._best_history
        return len(h) > n and np.isfinite(h[-1]) and h[-1 - n] == h[-1]

    def _repairable_by_y(self, i: int) -> bool:
        """Whether member i violates an upper-level constraint that may move with y (not yet known not to)."""
        if self._G_moves_with_y is None:
            return True
        violated = self._pop["G"][i] > 0
        return bool(np.any(self._G_moves_with_y[violated]))

    def _follower_free(self, ctx, i: int) -> bool:
        """Whether member i is feasible at both levels and its follower is known to be free to choose: a global
        re-solve at its x found another optimal answer far from its own, or psi cannot place part of its answer
        at all (held-out error above ``free_tol`` of the variable's range), the sign of a set of lower-level
        optima. A model that is merely inaccurate on a curved response stays well below (SMD7: up to 0.07;
        SMD12's sphere: 0.1-0.26)."""
        pop = self._pop
        x = pop["X"][i]
        if pop["ul_cv"][i] != 0 or pop["ll_cv"][i] != 0 or x.tobytes() in self._leader_tried:
            return False
        if x.tobytes() in self._seen_free:
            return True
        predictions = self._predict(ctx, x[None, :])
        return predictions is not None and bool(np.any(predictions[5] > self.free_tol))

    def _leader_choice(self, ctx, i: int, confirm: bool = False) -> None:
        """Let the leader pick member i's lower-level answer among the follower's near-optimal ones.

        With ``confirm`` (a member already feasible), only a gain that does not come from the follower's
        tolerance is taken (see :func:`~evobilevel.algorithms.optimistic.choose_confirmed`).
        """
        pop = self._pop
        x = pop["X"][i]
        if pop["ll_cv"][i] != 0 or not np.isfinite(pop["f"][i]) or x.tobytes() in self._leader_tried:
            return
        _remember(self._leader_tried, x.tobytes(), self.archive_size)
        self._counts["leader_choices"] += 1
        start = LeaderChoice(pop["Y"][i].copy(), float(pop["F"][i]), float(pop["ul_cv"][i]), float(pop["f"][i]),
                             pop["G"][i].copy())
        if confirm:
            choice = choose_confirmed(ctx, x, start, self.leader_tol, self.local_solver)
        else:
            if self._G_moves_with_y is None:
                self._G_moves_with_y = np.zeros(ctx.problem.n_ul_constraints, bool)
            f_limit = start.f + self.leader_tol * (1 + abs(start.f))
            choice = choose_for_leader(ctx, x, start, f_limit, moves_with_y=self._G_moves_with_y)
        # Where the violated constraints hardly depend on the follower's choice (or the choice cannot satisfy
        # them yet), each attempt costs upper-level evaluations for nothing: after k misses in a row, wait 2**k
        # generations. A confirmed member's attempt misses when it gains nothing.
        missed = choice is start if confirm else choice.ul_cv > 0
        self._leader_misses = self._leader_misses + 1 if missed else 0
        self._leader_next = self._generation + (2 ** min(self._leader_misses, 6) if self._leader_misses else 0)
        if choice is start:
            return
        self._counts["leader_improvements"] += 1
        pop["Y"][i], pop["F"][i], pop["ul_cv"][i], pop["f"][i] = choice.y, choice.F, choice.ul_cv, choice.f
        pop["G"][i] = choice.G
        self._archive.replace(x, choice.y, choice.f)

    def _recheck_best(self, ctx) -> None:
        """Re-solve the best member's lower level globally; replace its y if a better one turns up.

        A correction means the cheaper routes produced a lower-level answer that was only locally optimal,
        so the new best member is checked at once too (a few times at most), and the next check comes sooner;
        a confirmation lets the interval grow back to ``recheck_every``.
        """
        self._last_recheck = self._generation
        for _ in range(3):
            if not self._recheck_once(ctx):
                self._recheck_interval = min(self.recheck_every, 2 * self._recheck_interval)
                return
            self._recheck_interval = max(1, self._recheck_interval // 2)

    def _recheck_once(self, ctx) -> bool:
        """Check the current best member; whether its lower-level answer had to be corrected."""
        pop = self._pop
        best = int(np.argmin(population_ranks(pop)))
        x = pop["X"][best]
        if self._checked_x is not None and np.array_equal(x, self._checked_x):
            return False
        self._counts["rechecks"] += 1
        # From scratch: a search warm-started at the answer being checked tends to confirm it.
        glob = self._settle_globally(ctx, x[None, :], None)
        self._checked_x = x.copy()
        f_old, cv_old = pop["f"][best], pop["ll_cv"][best]
        f_new, cv_new = glob["f"][0], glob["ll_cv"][0]
        if cv_new == cv_old == 0 and _distinct_answers(pop["Y"][best], f_old, glob["Y"][0], f_new,
                                                       self._y_range, self.refine_tol, self.free_tol):
            # The follower has two optimal answers here, however consistent psi looks around x (a converged
            # population inherits one answer by recombination, SMD12): let the leader choose for this member.
            _remember(self._seen_free, x.tobytes(), self.archive_size)
        tol = 10 * self.accept_tol * (1 + abs(f_new))
        if not ((cv_new < cv_old) or (cv_new == cv_old == 0 and f_new < f_old - tol)):
            return False
        self._counts["recheck_corrections"] += 1
        self._archive.replace(x, glob["Y"][0], f_new)
        corrected = self._evaluate_upper(ctx, glob)
        for k in pop:
            pop[k][best] = corrected[k][0]
        self._checked_x = None
        return True

    def _check_convergence(self, ctx) -> None:
        best = self._population_best()
        self._best_history.append(best.F if best.feasible else np.inf)
        del self._best_history[: -(2 * self.stall_generations + 1)]  # all the convergence test looks at
        if self._generation >= self.max_generations:
            self._finish(ctx, f"maximum of {self.max_generations} generations")
        elif self._eps() == 0 and stalled(self._best_history, self._pop, self.ftol, self.stall_generations):
            self._finish(ctx, f"best F improved by less than {self.ftol:g} (relative) in "
                              f"{self.stall_generations} generations")

    def _finish(self, ctx, message: str) -> None:
        """Stop or restart, after a global check of the best member's lower level (which may revive the run)."""
        before = self._population_best()
        self._recheck_best(ctx)
        if self.leader_choice:
            best = int(np.argmin(population_ranks(self._pop)))
            if self._follower_free(ctx, best):
                self._leader_choice(ctx, best, confirm=True)
        after = self._population_best()
        revived = not (np.array_equal(before.x, after.x) and before.f == after.f)
        if revived and self._generation < self.max_generations:
            return
        if self._generation < self.max_generations and self._restarts.after_attempt(after):
            self._start_population(ctx, self._restarts.population_size(self._initial_size))
        else:
            self.converged, self.stop_message = True, message

    # ------------------------------------------------------------- reporting
    def _population_best(self) -> Candidate:
        return population_best(self._pop)

    def best(self) -> Candidate | None:
        if getattr(self, "_pop", None) is None:
            return None
        return self._restarts.best(self._population_best())

    def record(self) -> dict:
        counts = dict(getattr(self, "_counts", {}))
        if hasattr(self, "_restarts"):
            counts["restarts"] = self._restarts.n_restarts
        if hasattr(self, "_eps0"):
            counts["eps_level"] = self._eps()
        return counts


def _distinct_answers(y_a: np.ndarray, f_a: float, y_b: np.ndarray, f_b: float, y_range: np.ndarray,
                      f_rtol: float, y_rtol: float) -> bool:
    """Whether two lower-level answers y_a, y_b (ll_dim,) at one x, of values f_a, f_b, are equally good
    (``|f_a - f_b| <= f_rtol * (1 + |f_a|)``) and apart by more than ``y_rtol`` of some variable's range
    (``y_range`` (ll_dim,), see :func:`_ranges`)."""
    equal = abs(f_a - f_b) <= f_rtol * (1 + abs(f_a))
    return bool(equal and np.any(np.abs(y_a - y_b) > y_rtol * y_range))


def _ranges(bounds) -> np.ndarray:
    """The width of each variable's box ``(lo, hi)`` (d,), 1 where it is zero (a fixed variable)."""
    lo, hi = bounds
    return np.where(hi > lo, hi - lo, 1.0)


def _remember(keys: dict, key: bytes, capacity: int) -> None:
    """Add ``key`` to the insertion-ordered set ``keys``, forgetting the oldest beyond ``capacity``."""
    keys[key] = None
    if len(keys) > capacity:
        del keys[next(iter(keys))]


def _latin_hypercube(n: int, lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """n points (n, d) in the box, one in each of n equal slices of every coordinate."""
    d = lo.shape[0]
    strata = np.argsort(rng.random((n, d)), axis=0)
    return lo + (strata + rng.random((n, d))) / n * (hi - lo)


def _concat(a: dict, b: dict) -> dict:
    return {k: np.concatenate([a[k], b[k]]) for k in a}
