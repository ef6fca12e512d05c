"""What an algorithm sees during a run: counted evaluation, budgeted lower-level solves, its random streams."""

from __future__ import annotations

import numpy as np

from .budget import Budget
from .evaluator import Evaluation, Evaluator, LevelCounts
from .followers import solve_followers
from .lower.base import LowerSolution
from .parallel import LowerEngine

__all__ = ["RunContext"]


class RunContext:
    """The services a run gives its algorithm.

    Every evaluation goes through it: it is counted by the run's :class:`~evobilevel.evaluator.Evaluator` and
    paid for from the run's :class:`~evobilevel.budget.Budget`, which raises
    :class:`~evobilevel.budget.BudgetExhausted` when it cannot pay (the run then ends with its best so far).

    Parameters
    ----------
    problem : Problem
    engine : LowerEngine
    seed : SeedSequence
        The run's only source of randomness: spawned into the upper-level generator and the lower-level streams.
    max_ul_evals, max_ll_evals : int, optional
        Budgets; never exceeded.
    """

    def __init__(self, problem, engine: LowerEngine, seed: np.random.SeedSequence, max_ul_evals=None,
                 max_ll_evals=None):
        self.problem = problem
        self.engine = engine
        self.evaluator = Evaluator(problem)
        self.budget = Budget(self.evaluator, max_ul_evals, max_ll_evals)
        ul_seed, self._ll_seed = seed.spawn(2)
        #: The algorithm's own generator for upper-level operators.
        self.rng = np.random.default_rng(ul_seed)

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
            next lower-level solve gets the same stream as in an uninterrupted run).
        """
        counts = self.evaluator.counts()
        state = {
            "ul_counts": counts["ul"],
            "ll_counts": counts["ll"],
            "rng": self.rng.bit_generator.state,
            "ll_seed": dict(self._ll_seed.state),
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

    def evaluate_upper(self, X: np.ndarray, Y: np.ndarray) -> Evaluation:
        """Counted ``F, G`` at X (n, ul_dim), Y (n, ll_dim)."""
        self.budget.check("upper", X.shape[0])
        return self.evaluator.upper(X, Y)

    def evaluate_lower(self, X: np.ndarray, Y: np.ndarray) -> Evaluation:
        """Counted ``f, g`` at X (n, ul_dim), Y (n, ll_dim), in this process (for a handful of points)."""
        self.budget.check("lower", X.shape[0])
        return self.evaluator.lower(X, Y)

    def solve_lower(self, X: np.ndarray, solver, Y0: np.ndarray | None = None,
                    max_evals_per_row: int | None = None) -> LowerSolution:
        """Solve the lower level at every row of X (n, ul_dim) with ``solver``, through the engine.

        Parameters
        ----------
        X : ndarray, shape (n, ul_dim)
        solver : LowerSolver
        Y0 : ndarray, shape (n, k, ll_dim), optional
            Warm starts.
        max_evals_per_row : int, optional
            The caller's cap per row; the lower-level budget left is also split evenly over the rows.

        With several followers, each follower's problem is solved on its own (one engine call per follower, each
        with its own random stream), and the answers are joined (see
        :func:`~evobilevel.followers.solve_followers`).

        Raises
        ------
        BudgetExhausted
            When the lower-level budget left cannot give every row at least one evaluation.
        """
        if getattr(self.problem, "follower_set", None) is not None:
            return solve_followers(self, X, solver, Y0, max_evals_per_row)
        caps = self.budget.row_caps(X.shape[0], max_evals_per_row)
        solution, counts = self.engine.solve(self.problem, solver, X, self.ll_stream(), Y0=Y0, max_evals=caps)
        self.evaluator.merge(counts)
        return solution

    def ll_stream(self) -> np.random.SeedSequence:
        """A new random stream for one batch of lower-level solves (spawned from the run's lower-level seed)."""
        return self._ll_seed.spawn(1)[0]
