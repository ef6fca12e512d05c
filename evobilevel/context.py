"""What an algorithm sees during a run: counted evaluation, budgeted lower-level solves, its random streams."""

from __future__ import annotations

import numpy as np

from .budget import Budget
from .evaluator import Evaluation, Evaluator, LevelCounts
from .evidence import check_evidence
from .followers import join_solutions
from .lower.base import LowerSolution
from .lower.refinement import StartValues
from .parallel import LowerEngine

__all__ = ["RunContext"]


class RunContext:
    """The services a run gives its algorithm.

    Every evaluation goes through it: it is counted by the run's :class:`~evobilevel.evaluator.Evaluator` and
    paid for from the run's :class:`~evobilevel.budget.Budget`, which raises
    :class:`~evobilevel.budget.BudgetExhausted` when it cannot pay; once the counts show that the run cannot
    succeed (:mod:`evobilevel.evidence`), it raises :class:`~evobilevel.evidence.HopelessRun`. Either ends the run
    with its best so far.

    Parameters
    ----------
    problem : Problem
    engine : LowerEngine
    seed : SeedSequence
        The run's only source of randomness: spawned into the upper-level generator and the lower-level streams.
    max_ul_evals, max_ll_evals : int, optional
        Evaluation budgets; never exceeded.
    max_time : float, optional
        Wall-time budget in seconds, counted from ``started`` (see :class:`~evobilevel.budget.Budget`).
    started : float, optional
        ``time.perf_counter()`` at the start of the run.
    target : float, optional
        The accuracy the run is measured at (the benchmark protocol): the run ends there or at a budget only.
    """

    def __init__(self, problem, engine: LowerEngine, seed: np.random.SeedSequence, max_ul_evals=None,
                 max_ll_evals=None, max_time=None, started=None, target: float | None = None):
        self.problem = problem
        self.target = target
        self.engine = engine
        self.evaluator = Evaluator(problem, batch=engine.batch, observer=engine.observe)
        self.budget = Budget(self.evaluator, max_ul_evals, max_ll_evals, max_time, started)
        ul_seed, self._ll_seed = seed.spawn(2)
        # Upper-level points whose lower-level search ended infeasible while no feasible answer had been seen.
        self._n_x_infeasible = 0
        #: The algorithm's own generator for upper-level operators.
        self.rng = np.random.default_rng(ul_seed)

    @property
    def until_target(self) -> bool:
        """Whether the run ends at its target (or a budget) only: an algorithm's own rule should then restart where
        it would otherwise stop, and its attempts converge to well within the target."""
        return self.target is not None

    @property
    def n_ul_evals(self) -> int:
        return self.evaluator.n_ul_evals

    @property
    def n_ll_evals(self) -> int:
        return self.evaluator.n_ll_evals

    def state(self) -> dict:
        """Everything of the context that changes during a run, as plain picklable values.

        Returns
        -------
        dict
            ``ul_counts`` and ``ll_counts`` (:class:`~evobilevel.evaluator.LevelCounts`: evaluations, failures, first
            error), ``rng`` (the upper-level generator's ``bit_generator.state``) and ``ll_seed`` (the state of the
            lower-level :class:`~numpy.random.SeedSequence`, with how many children it has spawned, so that the
            next lower-level solve gets the same stream as in an uninterrupted run) and ``n_x_infeasible`` (the
            evidence of a follower infeasible everywhere, see :mod:`evobilevel.evidence`).
        """
        counts = self.evaluator.counts()
        state = {
            "ul_counts": counts["ul"],
            "ll_counts": counts["ll"],
            "rng": self.rng.bit_generator.state,
            "ll_seed": dict(self._ll_seed.state),
            "n_x_infeasible": self._n_x_infeasible,
        }
        if "followers" in counts:
            state["follower_counts"] = counts["followers"]
        return state

    def restore(self, state: dict) -> None:
        """Put the context back into a state returned by :meth:`state` (of a run of the same problem and seed)."""
        self.evaluator.ul = LevelCounts(**vars(state["ul_counts"]))
        self.evaluator.ll = LevelCounts(**vars(state["ll_counts"]))
        if "follower_counts" in state:
            self.evaluator.followers = [LevelCounts(**vars(c)) for c in state["follower_counts"]]
        self.rng.bit_generator.state = state["rng"]
        self._ll_seed = np.random.SeedSequence(**state["ll_seed"])
        self._n_x_infeasible = state["n_x_infeasible"]

    def evaluate_upper(self, X: np.ndarray, Y: np.ndarray) -> Evaluation:
        """Counted ``F, G`` at X (n, ul_dim), Y (n, ll_dim)."""
        self.budget.check("upper", X.shape[0])
        evaluation = self.evaluator.upper(X, Y)
        self._check()
        return evaluation

    def evaluate_lower(self, X: np.ndarray, Y: np.ndarray) -> Evaluation:
        """Counted ``f, g`` at X (n, ul_dim), Y (n, ll_dim), in this process (for a handful of points)."""
        self.budget.check("lower", X.shape[0])
        evaluation = self.evaluator.lower(X, Y)
        self._check()
        return evaluation

    def solve_lower(self, X: np.ndarray, solver, Y0: np.ndarray | None = None,
                    max_evals_per_row: int | None = None, curvature: np.ndarray | None = None,
                    determined: np.ndarray | None = None, f_accept: np.ndarray | None = None,
                    first_values: StartValues | None = None) -> LowerSolution:
        """Solve the lower level at every row of X (n, ul_dim) with ``solver``, through the engine.

        Parameters
        ----------
        X : ndarray, shape (n, ul_dim)
        solver : LowerSolver
        Y0 : ndarray, shape (n, k, ll_dim), optional
            Warm starts.
        max_evals_per_row : int, optional
            The caller's cap per row; the lower-level budget left is also split evenly over the rows.
        curvature : ndarray, shape (n, ll_dim), optional
            For a local refinement: each variable's curvature learnt near each row's problem (NaN: unknown).
        determined : ndarray of bool, shape (n, ll_dim), optional
            For a local refinement: the variables whose optimal values each row's warm starts already hold (see
            :meth:`~evobilevel.lower.refinement.Refinement.refine`).
        f_accept : ndarray, shape (n,), optional
            For a local refinement: the value of f each row's caller accepts as optimal; a feasible point at or
            below it ends the row's search (see :meth:`~evobilevel.lower.refinement.Refinement.solve`).
        first_values : StartValues, optional
            For a local refinement: f, g and cv already evaluated at each row's first warm start (where ``known``),
            which is not evaluated again.

        With several followers, each follower's problem is solved on its own (:meth:`solve_followers`), and the
        answers are joined (:func:`~evobilevel.followers.join_solutions`); ``f_accept``, a bound on the sum of
        their values, says nothing about each, and ``first_values`` do not tell each follower's part: neither is
        used there.

        Raises
        ------
        BudgetExhausted
            When the lower-level budget left cannot give every row at least one evaluation.
        """
        followers = getattr(self.problem, "follower_set", None)
        if followers is not None:
            starts = {i: None if Y0 is None else Y0[..., block] for i, block in enumerate(followers.blocks)}
            curvatures = {i: None if curvature is None else curvature[:, block]
                          for i, block in enumerate(followers.blocks)}
            determined_parts = {i: None if determined is None else determined[:, block]
                                for i, block in enumerate(followers.blocks)}
            return join_solutions(list(self.solve_followers(X, solver, starts, max_evals_per_row, curvatures,
                                                            determined_parts).values()))
        caps = self.budget.row_caps(X.shape[0], max_evals_per_row)
        tasks = self.engine.tasks(self.problem, solver, X, self.ll_stream(), Y0=Y0, max_evals=caps,
                                  curvature=curvature, determined=determined, f_accept=f_accept,
                                  first_values=first_values)
        # Until the follower has shown one feasible answer, a large batch goes in two steps, so that a black box
        # that fails everywhere (or a follower infeasible everywhere) is caught after one chunk, not after all.
        groups = [tasks[:1], tasks[1:]] if self.evaluator.ll.n_feasible == 0 and len(tasks) > 1 else [tasks]
        parts = []
        for group in groups:
            solution, counts = self.engine.run(group)
            self.evaluator.merge(counts)
            parts.append(solution)
            self._check(solution)
        return parts[0] if len(parts) == 1 else LowerSolution.concat(parts)

    def ll_stream(self) -> np.random.SeedSequence:
        """A new random stream for one batch of lower-level solves (spawned from the run's lower-level seed)."""
        return self._ll_seed.spawn(1)[0]

    def solve_followers(self, X: np.ndarray, solver, starts: dict, max_evals_per_row: int | None = None,
                        curvatures: dict | None = None, determined: dict | None = None,
                        f_accept: dict | None = None, first_values: dict | None = None) -> dict:
        """Solve the problems of several followers at every row of X, each on its own, all in one engine call.

        Parameters
        ----------
        X : ndarray, shape (n, ul_dim)
        solver : LowerSolver
        starts : dict
            ``{follower index: warm starts (n, k, ll_dim_i) or None}``; the followers to solve.
        max_evals_per_row : int, optional
            The caller's cap per row and follower; the lower-level budget left is split evenly over both.
        curvatures : dict, optional
            ``{follower index: curvature (n, ll_dim_i) or None}`` for a local refinement (see :meth:`solve_lower`).
        determined : dict, optional
            ``{follower index: determined variables (n, ll_dim_i) or None}``, the same way.
        f_accept : dict, optional
            ``{follower index: accepted values (n,) of f_i or None}``, the same way.
        first_values : dict, optional
            ``{follower index: values known at the first warm starts (StartValues) or None}``, the same way.

        Returns
        -------
        dict
            ``{follower index: LowerSolution}``; every follower's evaluations are counted for it.
        """
        followers, n = self.problem.follower_set, X.shape[0]
        caps = self.budget.row_caps(n * len(starts), max_evals_per_row)
        seeds = self.ll_stream().spawn(len(starts))
        curvatures, determined, f_accept, first_values = (curvatures or {}, determined or {}, f_accept or {},
                                                          first_values or {})
        groups = [self.engine.tasks(followers.problems[i], solver, X, seed, Y0=Y0,
                                    max_evals=None if caps is None else caps[j * n:(j + 1) * n],
                                    curvature=curvatures.get(i), determined=determined.get(i),
                                    f_accept=f_accept.get(i), first_values=first_values.get(i))
                  for j, ((i, Y0), seed) in enumerate(zip(starts.items(), seeds))]
        solutions = {}
        for i, (solution, counts) in zip(starts, self.engine.run_groups(groups)):
            self.evaluator.merge_follower(i, counts)
            solutions[i] = solution
        self._check(join_solutions(list(solutions.values())))
        return solutions

    def evaluate_follower(self, i: int, X: np.ndarray, Y: np.ndarray) -> Evaluation:
        """Counted ``f_i, g_i`` of follower i at X (n, ul_dim), Y (n, ll_dim_i), in this process."""
        self.budget.check("lower", X.shape[0])
        evaluation = self.evaluator.follower_lower(i, X, Y)
        self._check()
        return evaluation

    def _check(self, solution: LowerSolution | None = None) -> None:
        """Stop the run (:class:`~evobilevel.evidence.HopelessRun`) once its evaluations show it cannot succeed."""
        if solution is not None and self.evaluator.ll.n_feasible == 0:
            self._n_x_infeasible += int(np.count_nonzero(solution.cv > 0))
        check_evidence(self.evaluator.ul, self.evaluator.ll, self._n_x_infeasible)
