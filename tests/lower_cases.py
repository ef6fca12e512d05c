"""Lower-level problems of the benchmark suites with their exact optima, and warm starts near them: the cases on which
the local refinements are compared (``tests/test_lockstep.py``, ``tests/perf/lockstep_speed.py``).

Not a test module. SMD9 and SMD12 give no ``ll_response``; their optima are built here where they are known:
SMD9's unconstrained minimiser where it satisfies the lower-level constraint, and on SMD12's sphere of optima the
point ``x_u2 - tan x_l2 = sign(x_u2) / sqrt(r)``.
"""

from __future__ import annotations

import numpy as np

import evobilevel as eb
from evobilevel.evaluator import Evaluator

SMD = [f"SMD{i}" for i in range(1, 13)]
TP = [f"TP{i}" for i in range(1, 11)]


def optimum(problem, X: np.ndarray) -> np.ndarray:
    """The exact lower-level optima (n, ll_dim) at X (n, ul_dim); NaN rows where unknown."""
    Y = problem.ll_response(X)
    if Y is not None:
        return Y
    p, q = problem.split.p, problem.split.q
    if problem.name.startswith("SMD9"):
        return np.hstack([np.zeros((X.shape[0], q)), np.expm1(X[:, p:])])
    if problem.name.startswith("SMD12"):
        D = np.where(X[:, p:] >= 0, 1.0, -1.0) / np.sqrt(problem.split.r)
        return np.array([problem._optimal_answer(x, d) for x, d in zip(X, D)])
    return np.full((X.shape[0], problem.ll_dim), np.nan)


def problem_of(name: str, size: tuple[int, int] | None = None):
    """An SMD problem at (ul_dim, ll_dim) = size, or a TP problem at its own size."""
    return eb.benchmarks.get(name, **({} if size is None else {"ul_dim": size[0], "ll_dim": size[1]}))


def case(name: str, size: tuple[int, int] | None = None, n: int = 8, seed: int = 0):
    """n upper-level points X (uniform in the bounds) whose lower-level optimum Y* is known and feasible.

    Returns
    -------
    problem, X (n, ul_dim), Y_star (n, ll_dim), f_star (n,)
    """
    problem = problem_of(name, size)
    lo, hi = problem.ul_bounds
    X = lo + np.random.default_rng(seed).random((8 * n, problem.ul_dim)) * (hi - lo)
    Y = optimum(problem, X)
    known = np.isfinite(Y).all(axis=1)
    Y[~known] = problem.ll_bounds[0]
    values = Evaluator(problem).lower(X, Y)
    keep = np.flatnonzero(known & (values.cv <= 0) & np.isfinite(values.values))[:n]
    return problem, X[keep], Y[keep], values.values[keep]


def perturbed(problem, Y: np.ndarray, scale: float, seed: int = 1) -> np.ndarray:
    """Y moved by Gaussian noise of ``scale`` times each variable's range, clipped into the bounds."""
    lo, hi = problem.ll_bounds
    return np.clip(Y + scale * (hi - lo) * np.random.default_rng(seed).normal(size=Y.shape), lo, hi)


def bleaq_ll_evals(problem, seeds) -> int:
    """The LL evaluations of BLEAQ runs of ``problem`` to the target 1e-2 (the (5, 5) grid's budgets), summed over
    ``seeds`` (one run's path is a draw); every run must succeed."""
    results = [eb.solve(problem, seed=s, target=1e-2, max_ul_evals=20_000, max_ll_evals=1_000_000) for s in seeds]
    assert all(r.success for r in results)
    return sum(r.n_ll_evals for r in results)


class CallCounter(Evaluator):
    """An evaluator that also counts its lower-level calls, and keeps the number of points of each (``sizes``)."""

    def __init__(self, problem):
        super().__init__(problem)
        self.ll_calls = 0
        self.sizes: list[int] = []

    def lower(self, X, Y):
        self.ll_calls += 1
        self.sizes.append(len(Y))
        return super().lower(X, Y)


def solve_parts_and_alone(solver, problem, parts, fields) -> tuple[list, int, list[int]]:
    """``solver.solve_parts`` on ``parts()`` (a factory: each call gives fresh generators), and each part's own
    ``solve``: asserts that they agree in ``fields`` and in the evaluations counted; returns the solutions together,
    their evaluator's call count and each part's alone."""
    together_ev = CallCounter(problem)
    together = solver.solve_parts(together_ev, parts())
    alone_calls = []
    for part, solution in zip(parts(), together):
        ev = CallCounter(problem)
        alone = solver.solve(ev, *part)
        alone_calls.append(ev.ll_calls)
        for field in fields:
            np.testing.assert_array_equal(getattr(alone, field), getattr(solution, field), err_msg=field)
    assert together_ev.n_ll_evals == sum(s.n_evals.sum() for s in together)
    return together, together_ev.ll_calls, alone_calls


def engine_chunks_together_and_one_by_one(solver, problem, X, Y0, seed, fields) -> tuple[int, int]:
    """The chunks of two rows of a batch (X (n, ul_dim), warm starts Y0 (n, k, ll_dim)) solved by an inline engine,
    and one by one: asserts that they agree in ``fields`` and in the counts; returns the evaluator calls of each
    way (together, one by one)."""
    from evobilevel.parallel.engine import LowerEngine, _solve_chunk

    engine = LowerEngine(n_jobs=1, chunk_size=2)
    tasks = engine.tasks(problem, solver, X, np.random.SeedSequence(seed), Y0=Y0)
    assert len(tasks) == (X.shape[0] + 1) // 2
    calls = []
    evaluate_batch = problem.evaluate_batch
    problem.evaluate_batch = lambda *args, **kw: calls.append(1) or evaluate_batch(*args, **kw)
    solution, counts = engine.run(tasks)
    together_calls = len(calls)
    one_by_one = [_solve_chunk(*task) for task in tasks]
    for field in fields:
        np.testing.assert_array_equal(np.concatenate([getattr(r.solution, field) for r in one_by_one]),
                                      getattr(solution, field), err_msg=field)
    assert counts["ll"].n_evals == sum(r.counts["ll"].n_evals for r in one_by_one) == solution.n_evals.sum()
    return together_calls, len(calls) - together_calls
