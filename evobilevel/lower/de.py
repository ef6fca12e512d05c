"""Differential evolution for many lower-level problems at once.

The populations of all rows form one array of shape (rows, pop_size, ll_dim); every generation evaluates the
trial vectors of all still active rows in a single ``ev.lower`` call. The variant is DE/current-to-pbest/1/bin
with JADE's per-row adaptation of the scale factor and crossover rate (why: ``docs/design.md``).
Constraints are handled by Deb's feasibility rules, relaxed to an epsilon level that shrinks to zero during
the first generations so that the population can cross infeasible gaps. A local refinement finishes each row:
DE only has to find the right basin, which is where most of the evaluations are saved.

References: J. Zhang, A. C. Sanderson, "JADE: adaptive differential evolution with optional external archive",
IEEE Trans. Evol. Comput. 13(5):945-958, 2009; K. Deb, "An efficient constraint handling method for genetic
algorithms", Comput. Methods Appl. Mech. Eng. 186:311-338, 2000; T. Takahama, S. Sakai, "Constrained
optimization by the epsilon constrained differential evolution with an archive and gradient-based mutation",
IEEE CEC 2010.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..budget import RowBudget
from ..epsilon import epsilon_level
from ..evaluator import Evaluator
from ..integrality import integer_mask, lattice, lattice_size, round_integral, search_box
from ..space import latin_hypercube
from .base import LowerSolution, LowerSolver, better, join_parts, rank
from .integer import enumerate_lattice
from .lockstep import LockstepRefinement
from .refinement import Refinement, StartValues

__all__ = ["DifferentialEvolution"]

#: An all-integer lower level with at most this many points per member of the population is enumerated instead:
#: a DE run spends about as many evaluations or more (its stagnation window alone is ``PATIENCE_EVALS`` per
#: variable, 30 to 60 generations), and enumeration is exact.
LATTICE_MEMBERS = 20
#: The default stagnation window, in evaluations per variable: the 60 generations of a population of 4 per variable.
PATIENCE_EVALS = 240
#: The default epsilon phase of a constrained lower level, in evaluations per variable: also the 60 generations of a
#: population of 4 per variable.
EPSILON_EVALS = 240


@dataclass
class DifferentialEvolution(LowerSolver):
    """Batched adaptive DE (current-to-pbest/1/bin) over the rows of a lower-level batch.

    Parameters
    ----------
    pop_size : int, optional
        Population per row; default ``clip(4 * ll_dim, 8, 50)`` (:meth:`population_size`).
    p_best : float
        Fraction of the population the "pbest" donor is drawn from (at least 2 members).
    F_init, CR_init : float
        Initial means of the adapted scale factor and crossover rate.
    adapt_rate : float
        JADE's ``c``: weight of the latest generation's successful parameters in the running means.
    max_gens : int
        Generations per row at most.
    ftol_abs, ftol_rel : float
        A row has converged when all its members are feasible and their objective values lie within
        ``ftol_abs + ftol_rel * scale`` of each other, or when its best improved by less than that tolerance
        over ``patience`` generations. ``scale`` is the median absolute deviation of f over the row's initial
        population: unlike ``|f|`` it ignores terms of f that depend on x only (SMD's ``f1(x_u)``), and
        unlike the full spread it ignores a few huge values near a singularity (SMD's ``tan``).
    cv_rtol : float
        A row none of whose members is feasible has converged when their violations lie within ``cv_rtol`` times
        the least of them of each other: the population has gathered at a least-violating point, and the
        follower is infeasible there as far as the search can tell.
    patience : int, optional
        Stagnation window in generations; default :meth:`patience_generations`, ``PATIENCE_EVALS`` (240)
        evaluations per variable: 60 generations wherever the population is the default ``4 * ll_dim``, 30 for a
        one-variable follower (whose population the floor of 8 makes larger). While a row's best
        is infeasible, it stagnates unless its violation falls by at least ``patience / max_gens`` of itself over
        the window.
    warm_fraction : float
        With warm starts, this fraction of the population is the warm starts themselves plus Gaussian
        samples around them; the rest is a Latin-hypercube sample of the box, so that a bad warm start cannot
        trap the search.
    warm_sigma : float
        Standard deviation of the samples around a warm start, as a fraction of each variable's range.
    epsilon_gens, epsilon_quantile, epsilon_exponent : int or None, float, float
        Constrained lower levels only: in the first ``epsilon_gens`` generations a violation up to
        ``eps = eps0 * (1 - gen / epsilon_gens) ** epsilon_exponent`` counts as feasible, ``eps0`` being the
        ``epsilon_quantile`` quantile of the violations in the initial population (Takahama and Sakai's
        epsilon-constrained DE, :mod:`evobilevel.epsilon`). Afterwards, and for the returned point, Deb's rules
        apply. ``epsilon_gens=0`` disables it; the default is :meth:`epsilon_generations`, ``EPSILON_EVALS`` (240)
        evaluations per variable, the same measure as the stagnation window's.
    polish : bool
        Finish each row with :attr:`local` from the DE best, within the row's remaining budget.

    A lower level whose variables are all integer is searched with its members rounded to whole numbers where
    they are evaluated; one with at most ``LATTICE_MEMBERS`` (20) points per member of the population is
    enumerated instead, when every row's cap allows it.
    local : LocalRefinement
        The refinement used to polish.
    """

    pop_size: int | None = None
    p_best: float = 0.2
    F_init: float = 0.5
    CR_init: float = 0.9
    adapt_rate: float = 0.1
    max_gens: int = 500
    ftol_abs: float = 1e-4
    ftol_rel: float = 1e-5
    cv_rtol: float = 1e-4
    patience: int | None = None
    warm_fraction: float = 0.5
    warm_sigma: float = 0.05
    epsilon_gens: int | None = None
    epsilon_quantile: float = 0.2
    epsilon_exponent: float = 5.0
    polish: bool = True
    local: Refinement = field(default_factory=LockstepRefinement)

    def population_size(self, ll_dim: int) -> int:
        """The population per row used for a lower level of ``ll_dim`` variables: ``pop_size`` if given, else
        four members per variable, at least 8 and at most 50.

        The floor is what current-to-pbest/1 needs to draw its donors from more than the bare minimum: with four
        members, the target, a pbest from the top two and two further distinct members are the whole population.
        It used to be 16, which gave the two- and three-variable followers (TP, SMD at (2, 3)) eight and five
        members per variable: each of their generations cost twice or 1.3 times what four per variable cost, to
        make their searches surer than a larger follower's are (docs/design.md, the DE's population).
        """
        if self.pop_size is not None:
            return max(4, int(self.pop_size))
        return int(np.clip(4 * ll_dim, 8, 50))

    def patience_generations(self, ll_dim: int) -> int:
        """The stagnation window in generations for a lower level of ``ll_dim`` variables: ``patience`` if given,
        else ``PATIENCE_EVALS`` evaluations per variable in generations of the population.

        A window counted in generations alone lets a small follower's search run on longer per variable than a
        larger one's: with the population's former floor of 16, 60 generations cost 480 evaluations per variable
        on a two-variable follower against 240 from four variables up. Counted per variable, the window is 60
        generations from 2 to 12 variables (population ``4 * ll_dim``), 30 at one variable and 96 at twenty (the
        population capped at 50).
        """
        if self.patience is not None:
            return max(1, int(self.patience))
        return self._generations(PATIENCE_EVALS, ll_dim)

    def epsilon_generations(self, ll_dim: int) -> int:
        """The epsilon phase in generations for a constrained lower level of ``ll_dim`` variables: ``epsilon_gens``
        if given, else ``EPSILON_EVALS`` evaluations per variable in generations of the population.

        The phase gives the population time to cross infeasible gaps between parts of the follower's feasible set
        before Deb's rules apply. Counted in generations alone, it lasted 60 generations at every size: with the
        population's former floor of 16, 480 evaluations per variable on a two-variable follower against 240 from
        four variables up. Where the follower's optimum lies on a constraint, the population gathers there only as
        the relaxation vanishes, so such searches end a few generations after the phase whatever they needed (TP6's
        follower, with 16 members: a median of 66 generations with a phase of 60, 48 with 30). As the stagnation
        window: 60 generations from 2 to 12 variables, 30 at one.
        """
        if self.epsilon_gens is not None:
            return max(0, int(self.epsilon_gens))
        return self._generations(EPSILON_EVALS, ll_dim)

    def _generations(self, evals_per_variable: int, ll_dim: int) -> int:
        """``evals_per_variable`` evaluations per variable of an ``ll_dim``-variable lower level, in generations of
        its population (at least one)."""
        return max(1, round(evals_per_variable * ll_dim / self.population_size(ll_dim)))

    def solve(
        self,
        ev: Evaluator,
        X: np.ndarray,
        rng: np.random.Generator,
        Y0: np.ndarray | None = None,
        max_evals: np.ndarray | int | None = None,
    ) -> LowerSolution:
        """Solve every row's lower level; see :class:`~evobilevel.lower.base.LowerSolver`."""
        return self.solve_parts(ev, [(X, rng, Y0, max_evals)])[0]

    def solve_parts(self, ev: Evaluator, parts: list[tuple]) -> list[LowerSolution]:
        """Solve several batches of rows in one run, each part as :meth:`solve` would solve it alone.

        A row's search depends on its own population, values and adapted parameters only, and each part draws its
        random numbers from its own generator (those of its active rows, in the order :meth:`solve` draws them),
        so the results are those of one :meth:`solve` per part; every generation evaluates the trial vectors of
        all parts in one call (the generations of the longest part instead of the sum over the parts).

        Parameters
        ----------
        ev : Evaluator
        parts : list of tuple
            ``(X, rng, Y0, max_evals)`` per part, as the arguments of :meth:`solve`.

        Returns
        -------
        list of LowerSolution
            One per part, its rows in order.
        """
        if len(parts) > 1 and self._small_lattice(ev.problem, np.full(1, np.inf)) is not None:
            # Whether a part is enumerated depends on its own rows' caps: each part as it would be alone.
            return [self.solve(ev, *part) for part in parts]
        X, Y0, caps, sizes = join_parts(ev, parts)
        budget = RowBudget(ev, X, caps)
        points = self._small_lattice(ev.problem, budget.cap)
        if points is not None:
            Y, f, cv = enumerate_lattice(budget, points)
            solution = LowerSolution(Y=Y, f=f, cv=cv, success=cv <= 0, n_evals=budget.used.copy())
        else:
            solution = self._evolve(budget, [rng for _, rng, _, _ in parts], sizes, Y0)
        return solution.split(sizes)

    def _evolve(self, budget: RowBudget, rngs: list[np.random.Generator], sizes: list[int],
                Y0: np.ndarray | None) -> LowerSolution:
        """The DE run and the polish of the budget's rows, the i-th ``sizes[i]`` rows drawing from ``rngs[i]``."""
        run = _Run(self, budget, rngs, sizes)
        run.initialise(Y0)
        while run.active.any():
            run.generation()
        Y, f, cv, g = run.best()
        curvature = np.full(Y.shape, np.nan)  # learnt by the polish
        if self.polish:
            # Rows whose DE evaluated nothing have no best to polish; the others start from known values.
            rows = np.flatnonzero(run.evaluated & (budget.left(np.arange(Y.shape[0])) > 0))
            values = StartValues(np.ones(rows.shape[0], bool), f[rows], g[rows], cv[rows])
            Yp, fp, cvp, _, learnt = self.local.refine(budget, rows, Y[rows], values, verify=False)
            improved = better(fp, cvp, f[rows], cv[rows])
            take = rows[improved]
            Y[take], f[take], cv[take] = Yp[improved], fp[improved], cvp[improved]
            curvature[rows] = learnt
        success = run.converged & (cv <= 0)
        never = ~run.evaluated
        Y[never] = budget.fallback_points(Y0)[never]
        return LowerSolution(Y=Y, f=f, cv=cv, success=success, n_evals=budget.used.copy(), curvature=curvature)

    def _small_lattice(self, problem, caps: np.ndarray) -> np.ndarray | None:
        """Every point of an all-integer lower level with at most ``LATTICE_MEMBERS`` points per member of the
        population (and within every row's cap): enumerating them costs less than the DE would spend, and is
        exact. None otherwise."""
        mask = integer_mask(problem)
        if mask is None or not mask.all():
            return None
        size = lattice_size(problem.ll_bounds)
        if size > LATTICE_MEMBERS * self.population_size(problem.ll_dim) or np.any(caps < size):
            return None
        return lattice(problem.ll_bounds)


class _Run:
    """The state of one batched DE run: populations, adapted parameters, best points, per-row termination.

    Arrays are indexed by row of the batch: ``P`` (n, NP, d) members with values ``Pf``, ``Pcv`` (n, NP) and
    ``Pg`` (n, NP, m); ``best_*`` the best point evaluated so far per row by Deb's rules (the population can
    lose it while the epsilon-level comparison is on). The rows come in parts, consecutive rows each with its own
    random generator: ``rngs[i]`` serves the ``sizes[i]`` rows from ``starts[i]``.
    """

    def __init__(self, settings: DifferentialEvolution, budget: RowBudget, rngs: list[np.random.Generator],
                 sizes: list[int]):
        self.s = settings
        self.budget = budget
        self.rngs = rngs
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        problem = budget.ev.problem
        # Integer variables move in a box half a unit wider and are rounded when evaluated (see _evaluate).
        self.integer = integer_mask(problem)
        self.lo, self.hi = search_box(problem.ll_bounds, self.integer)
        n, d = budget.X.shape[0], problem.ll_dim
        self.n, self.d = n, d
        # The number of constraints is known once the initial population is evaluated (see RowBudget).
        self.m = 0
        self.NP = NP = settings.population_size(d)
        self.patience = settings.patience_generations(d)
        self.epsilon_gens = settings.epsilon_generations(d)
        self.P = np.empty((n, NP, d))
        self.Pf = np.full((n, NP), np.inf)
        self.Pcv = np.full((n, NP), np.inf)
        self.Pg = np.full((n, NP, 0), np.inf)
        self.best_y = np.full((n, d), np.nan)
        self.best_f = np.full(n, np.inf)
        self.best_cv = np.full(n, np.inf)
        self.best_g = np.full((n, 0), np.inf)
        self.mu_F = np.full(n, settings.F_init)
        self.mu_CR = np.full(n, settings.CR_init)
        self.gen = np.zeros(n, np.int64)
        self.stall = np.zeros(n, np.int64)
        # Best f and cv at the last significant progress, for the stagnation test.
        self.ref_f = np.full(n, np.inf)
        self.ref_cv = np.full(n, np.inf)
        self.tol = np.full(n, settings.ftol_abs)
        self.eps0 = np.zeros(n)
        self.active = np.ones(n, bool)
        self.converged = np.zeros(n, bool)

    @property
    def evaluated(self) -> np.ndarray:
        """(n,) bool: the row has at least one evaluated point."""
        return ~np.isnan(self.best_y[:, 0])

    # ------------------------------------------------------------------ start
    def _part_of(self, rows: np.ndarray) -> np.ndarray:
        """The part (index into ``rngs``) of each of the (ascending) ``rows``."""
        return np.searchsorted(self.starts, rows, side="right") - 1

    def initialise(self, Y0: np.ndarray | None) -> None:
        n, NP = self.n, self.NP
        width = self.hi - self.lo
        ends = np.append(self.starts[1:], n)
        self.P = np.concatenate([latin_hypercube(rng, self.lo, self.hi, NP, batch=(end - start,))
                                 for rng, start, end in zip(self.rngs, self.starts, ends)])
        if Y0 is not None:
            # Warm starts first (they are evaluated first when the cap is smaller than the population).
            n_warm = max(1, int(round(self.s.warm_fraction * NP)))
            warm = np.flatnonzero(~np.isnan(Y0[:, :, 0]).all(axis=1))
            for i, part in zip(warm, self._part_of(warm)):
                rng = self.rngs[part]
                W = Y0[i][~np.isnan(Y0[i, :, 0])][:n_warm]
                centres = W[rng.integers(W.shape[0], size=n_warm - W.shape[0])]
                cloud = centres + rng.normal(size=centres.shape) * self.s.warm_sigma * width
                self.P[i, :n_warm] = np.vstack([W, _reflect(cloud, self.lo, self.hi)])
        rows = np.arange(n)
        granted = self.budget.grant(rows, NP)
        mask = np.arange(NP)[None, :] < granted[:, None]
        self.Pf, self.Pcv, self.Pg = self._evaluate(rows, self.P, mask, initial=True)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # rows without a finite value give NaN
            f = np.where(np.isfinite(self.Pf), self.Pf, np.nan)
            mad = np.nanmedian(np.abs(f - np.nanmedian(f, axis=1, keepdims=True)), axis=1)
            cv = np.where(np.isfinite(self.Pcv), self.Pcv, np.nan)
            eps0 = np.nanquantile(cv, self.s.epsilon_quantile, axis=1) if self.m else np.zeros(n)
        self.tol = self.s.ftol_abs + self.s.ftol_rel * np.where(np.isfinite(mad), mad, 0.0)
        self.eps0 = np.where(np.isfinite(eps0), eps0, 0.0) if self.epsilon_gens > 0 else np.zeros(n)
        self._check(rows, out_of_budget=granted < NP)

    # ------------------------------------------------------------- generation
    def generation(self) -> None:
        rows = np.flatnonzero(self.active)
        a, NP, d = rows.shape[0], self.NP, self.d
        P = self.P[rows]
        parts = self._part_of(rows)
        draws = [self._draws(self.rngs[part], rows[parts == part]) for part in np.unique(parts)]
        u, F, CR = (np.concatenate(column) for column in zip(*draws))
        old_f, old_cv = self.Pf[rows], self.Pcv[rows]
        relaxed = self._relaxation(rows)
        if relaxed is not None:
            old_cv = relaxed(old_cv)
        # Donors: a pbest member from the top p fraction, and r1 != r2, both != the target.
        n_top = max(2, int(round(self.s.p_best * NP)))
        pbest = np.take_along_axis(rank(old_f, old_cv), (u[..., 2 * d] * n_top).astype(np.intp), axis=1)
        o1 = 1 + (u[..., 2 * d + 1] * (NP - 1)).astype(np.intp)
        o2 = 1 + (u[..., 2 * d + 2] * (NP - 2)).astype(np.intp)
        o2 += o2 >= o1
        i = np.arange(NP)
        ar = np.arange(a)[:, None]
        V = P + F[..., None] * (P[ar, pbest] - P + P[ar, (i + o1) % NP] - P[ar, (i + o2) % NP])
        cross = u[..., :d] < CR[..., None]
        cross |= np.arange(d) == (u[..., 2 * d + 3, None] * d).astype(np.intp)  # at least one from the mutant
        U = np.where(cross, V, P)
        # Out of bounds: uniform between the parent and the violated bound, which keeps optima on a bound
        # reachable without piling members onto it.
        t = u[..., d : 2 * d]
        U = np.where(U > self.hi, self.hi - t * (self.hi - P), U)
        U = np.where(U < self.lo, self.lo + t * (P - self.lo), U)
        granted = self.budget.grant(rows, NP)
        mask = i < granted[:, None]
        f, cv, g = self._evaluate(rows, U, mask)
        # Selection: the trial replaces its target unless it is worse (ties move, which helps on plateaus).
        cv_cmp = cv if relaxed is None else relaxed(cv)
        replace = mask & ~better(old_f, old_cv, f, cv_cmp)
        win = mask & better(f, cv_cmp, old_f, old_cv)
        self.P[rows] = np.where(replace[..., None], U, P)
        self.Pf[rows] = np.where(replace, f, old_f)
        self.Pcv[rows] = np.where(replace, cv, self.Pcv[rows])
        if self.m:
            self.Pg[rows] = np.where(replace[..., None], g, self.Pg[rows])
        self._adapt(rows, win, F, CR)
        self.gen[rows] += 1
        self._check(rows, out_of_budget=granted < NP)

    def _draws(self, rng: np.random.Generator, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A generation's random numbers for ``rows`` (a,) of one part, from its generator: uniforms u (a, NP, 2d + 4),
        scale factors F and crossover rates CR (a, NP)."""
        a, NP, d = rows.shape[0], self.NP, self.d
        # One block of uniforms for crossover (d), bound repair (d), pbest rank, r1, r2 and the forced
        # variable: fewer generator calls per generation, which is what a small batch pays for.
        u = rng.random((a, NP, 2 * d + 4))
        # Adapted parameters: F ~ Cauchy(mu_F, 0.1) redrawn while <= 0, capped at 1; CR ~ N(mu_CR, 0.1)
        # clipped to [0, 1].
        mu_F = np.repeat(self.mu_F[rows, None], NP, axis=1)
        F = mu_F + 0.1 * rng.standard_cauchy((a, NP))
        bad = F <= 0
        while bad.any():
            F[bad] = mu_F[bad] + 0.1 * rng.standard_cauchy(int(bad.sum()))
            bad = F <= 0
        F = np.minimum(F, 1.0)
        CR = np.clip(self.mu_CR[rows, None] + 0.1 * rng.standard_normal((a, NP)), 0.0, 1.0)
        return u, F, CR

    def _relaxation(self, rows):
        """The epsilon-level view of violations for this generation of ``rows``, or None when it is off.

        Early on, violations up to eps count as feasible, so that the population can cross infeasible gaps
        between parts of a disconnected feasible set (SMD10's cubic constraints); eps reaches 0 after
        ``epsilon_gens`` generations, and Deb's rules apply from then on.
        """
        if not self.m or self.epsilon_gens <= 0:
            return None
        eps = epsilon_level(self.eps0[rows], self.gen[rows], self.epsilon_gens, self.s.epsilon_exponent)
        if not eps.any():
            return None
        return lambda cv: np.where(cv <= eps[:, None], 0.0, cv)

    def _evaluate(self, rows, U, mask, initial=False):
        """Evaluate ``U[mask]`` (U (a, NP, d), mask (a, NP)) in one call and update the best points.

        Integer variables are evaluated, and kept as best points, rounded; the members themselves keep their
        unrounded values (as in scipy's ``differential_evolution``), which lets a small range of whole numbers
        keep its diversity under recombination.

        Returns f, cv (a, NP) and g (a, NP, m), inf where not evaluated.
        """
        a, NP = mask.shape
        U = round_integral(U, self.integer)
        f_m, g_m, cv_m = self.budget.evaluate(np.broadcast_to(rows[:, None], mask.shape)[mask], U[mask])
        if initial:
            self.m = self.budget.n_constraints
            self.best_g = np.full((self.n, self.m), np.inf)
        if g_m.shape[1] != self.m:  # nothing evaluated, or all failed before the count was known
            g_m = np.full((g_m.shape[0], self.m), np.inf)
        if mask.all():  # the common case needs no scattering
            f, cv, g = f_m.reshape(a, NP), cv_m.reshape(a, NP), g_m.reshape(a, NP, self.m)
        else:
            f = np.full((a, NP), np.inf)
            cv = np.full((a, NP), np.inf)
            g = np.full((a, NP, self.m), np.inf)
            f[mask], cv[mask], g[mask] = f_m, cv_m, g_m
        j = rank(f, cv)[:, 0]
        ar = np.arange(a)
        new = mask[ar, j] & (np.isnan(self.best_y[rows, 0])
                             | better(f[ar, j], cv[ar, j], self.best_f[rows], self.best_cv[rows]))
        r, k = rows[new], j[new]
        self.best_y[r], self.best_f[r] = U[new, k], f[new, k]
        self.best_cv[r], self.best_g[r] = cv[new, k], g[new, k]
        return f, cv, g

    def _adapt(self, rows, win, F, CR) -> None:
        """JADE's update: running means towards the mean of successful CR, the Lehmer mean of successful F."""
        c = self.s.adapt_rate
        n_win = win.sum(axis=1)
        has = n_win > 0
        if not has.any():
            return
        Fw = np.where(win, F, 0.0)
        lehmer = (Fw**2).sum(axis=1)[has] / Fw.sum(axis=1)[has]
        mean_cr = np.where(win, CR, 0.0).sum(axis=1)[has] / n_win[has]
        r = rows[has]
        self.mu_F[r] = (1 - c) * self.mu_F[r] + c * lehmer
        self.mu_CR[r] = (1 - c) * self.mu_CR[r] + c * mean_cr

    def _check(self, rows, out_of_budget) -> None:
        """Per-row termination after a generation of ``rows``."""
        s = self.s
        tol = self.tol[rows]
        f_best, cv_best = self.best_f[rows], self.best_cv[rows]
        ref_f, ref_cv = self.ref_f[rows], self.ref_cv[rows]
        # A violation counts as falling only by at least patience / max_gens of itself in a patience window: at a
        # slower pace it could not reach zero within max_gens, and on a follower infeasible for this x the DE would
        # go on through ever smaller falls until its generation limit.
        shrink = 1.0 - self.patience / s.max_gens
        with np.errstate(invalid="ignore"):
            progressed = (cv_best < ref_cv * shrink) | ((cv_best == ref_cv) & (ref_f - f_best > tol))
        self.ref_f[rows] = np.where(progressed, f_best, ref_f)
        self.ref_cv[rows] = np.where(progressed, cv_best, ref_cv)
        stall = np.where(progressed, 0, self.stall[rows] + 1)
        self.stall[rows] = stall
        Pf = self.Pf[rows]
        with np.errstate(invalid="ignore"):
            Pcv = self.Pcv[rows]
            cv_max, cv_min = Pcv.max(axis=1), Pcv.min(axis=1)
            feasible_flat = (cv_max <= 0) & (Pf.max(axis=1) - Pf.min(axis=1) <= tol)
            # Relative, so that a population closing in on a feasible set of one point (TP4's follower at the
            # leader's optimum), whose violations keep falling by orders of magnitude, goes on until it holds it.
            infeasible_flat = (cv_min > 0) & np.isfinite(cv_max) & (cv_max - cv_min <= s.cv_rtol * cv_min)
            flat = feasible_flat | infeasible_flat
        converged = flat | (stall >= self.patience)
        done = converged | out_of_budget | (self.gen[rows] >= s.max_gens)
        self.converged[rows] = converged
        self.active[rows] = ~done & (self.budget.left(rows) > 0)

    # ------------------------------------------------------------------ result
    def best(self):
        """Best point evaluated per row: Y (n, d) (NaN if none), f (n,), cv (n,), g (n, m)."""
        return self.best_y.copy(), self.best_f.copy(), self.best_cv.copy(), self.best_g.copy()


def _reflect(Y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Fold points back into the box by reflection at the bounds (then clip what is still outside)."""
    Y = np.where(Y < lo, 2 * lo - Y, Y)
    Y = np.where(Y > hi, 2 * hi - Y, Y)
    return np.clip(Y, lo, hi)
