"""Running batches of lower-level solves, inline or through joblib. The only module that imports joblib.

Rows are cut into chunks of ``chunk_size`` and every chunk is solved by one task with its own random stream,
spawned from the caller's :class:`numpy.random.SeedSequence`. The chunking depends on the number of rows only,
never on ``n_jobs``, so a run gives identical results inline, on two local processes, or on a dask cluster
(``joblib.parallel_config(backend="dask")``). Each task returns its evaluation counts with its solutions, because
counters incremented inside worker processes would otherwise be lost.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import numpy as np

from .evaluator import Evaluator, LevelCounts
from .lower.base import LowerSolution

__all__ = ["LowerEngine", "ProblemNotPicklable", "send_module_by_value", "run_tasks"]


class ProblemNotPicklable(ValueError):
    """A problem (or solver) could not be sent to worker processes."""


@dataclass
class _ChunkResult:
    solution: LowerSolution
    counts: dict[str, LevelCounts]


def _solve_chunk(problem, solver, X, Y0, max_evals, seed: np.random.SeedSequence) -> _ChunkResult:
    """One task: solve the lower level for the rows ``X`` (k, ul_dim) of one chunk."""
    evaluator = Evaluator(problem)
    rng = np.random.default_rng(seed)
    solution = solver.solve(evaluator, X, rng, Y0=Y0, max_evals=max_evals)
    return _ChunkResult(solution, evaluator.counts())


class LowerEngine:
    """Solves the lower level for many upper-level points per call, in chunks, inline or in parallel.

    Parameters
    ----------
    n_jobs : int
        1 runs every chunk inline without joblib; otherwise joblib's ``n_jobs`` (-1 = all cores). The backend is
        whatever joblib is configured with (loky by default; dask inside ``joblib.parallel_config("dask")``).
    chunk_size : int
        Rows per task. Results depend on it (each chunk has its own random stream) but not on ``n_jobs``.

    Use as a context manager so that one pool of workers serves every generation of a run.
    """

    def __init__(self, n_jobs: int = 1, chunk_size: int = 4):
        if int(n_jobs) != n_jobs or n_jobs == 0 or n_jobs < -1:
            raise ValueError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
        if int(chunk_size) != chunk_size or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self.n_jobs = int(n_jobs)
        self.chunk_size = int(chunk_size)
        self._parallel = None
        self._checked_pickle = False

    def __enter__(self) -> LowerEngine:
        if self.n_jobs != 1:
            from joblib import Parallel

            self._parallel = Parallel(n_jobs=self.n_jobs)
            self._parallel.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._parallel is not None:
            self._parallel.__exit__(*exc)
            self._parallel = None

    def solve(
        self,
        problem,
        solver,
        X: np.ndarray,
        seed: np.random.SeedSequence,
        Y0: np.ndarray | None = None,
        max_evals: np.ndarray | None = None,
    ) -> tuple[LowerSolution, dict[str, LevelCounts]]:
        """Solve the lower level at every row of ``X``.

        Parameters
        ----------
        problem : Problem
        solver : LowerSolver
        X : ndarray, shape (n, ul_dim)
        seed : SeedSequence
            Spawns one child per chunk.
        Y0 : ndarray, shape (n, k, ll_dim), optional
            Warm starts per row (NaN rows: none).
        max_evals : ndarray of int, shape (n,), optional
            Per-row evaluation caps.

        Returns
        -------
        solution : LowerSolution
            Rows in the order of ``X``.
        counts : dict
            Evaluations spent, ``{"ul": LevelCounts, "ll": LevelCounts}``, summed over the chunks.
        """
        n = X.shape[0]
        starts = range(0, n, self.chunk_size)
        seeds = seed.spawn(len(starts))
        tasks = [
            (
                problem,
                solver,
                X[i : i + self.chunk_size],
                None if Y0 is None else Y0[i : i + self.chunk_size],
                None if max_evals is None else max_evals[i : i + self.chunk_size],
                s,
            )
            for i, s in zip(starts, seeds)
        ]
        if self.n_jobs == 1 or len(tasks) == 1:
            results = [_solve_chunk(*task) for task in tasks]
        else:
            results = self._run_parallel(tasks)
        total = {"ul": LevelCounts(), "ll": LevelCounts()}
        for r in results:
            total["ul"].add(r.counts["ul"])
            total["ll"].add(r.counts["ll"])
        return LowerSolution.concat([r.solution for r in results]), total

    def _run_parallel(self, tasks) -> list[_ChunkResult]:
        from joblib import Parallel, delayed

        if not self._checked_pickle:
            _check_picklable(tasks[0][0], tasks[0][1])
            self._checked_pickle = True
        parallel = self._parallel if self._parallel is not None else Parallel(n_jobs=self.n_jobs)
        return parallel(delayed(_solve_chunk)(*task) for task in tasks)


def _check_picklable(problem, solver) -> None:
    """Fail early, with the fix named, when the problem cannot travel to worker processes."""
    import cloudpickle

    for what, obj in (("problem", problem), ("lower-level solver", solver)):
        try:
            cloudpickle.dumps(obj)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise ProblemNotPicklable(
                f"the {what} {getattr(obj, 'name', type(obj).__name__)!r} cannot be sent to worker processes "
                f"for n_jobs != 1 ({type(exc).__name__}: {exc}). Define its functions at module level without "
                "open files, locks or connections, or run with n_jobs=1."
            ) from exc


def send_module_by_value(module) -> None:
    """Let worker processes receive the functions of ``module`` by value.

    A module loaded from a file path cannot be imported by name in a worker, so its functions are pickled by
    value instead of by reference.
    """
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)


def _indexed_call(function, index: int, args: tuple):
    """Run one task and tag its value with the task's position, so unordered completion can be matched up."""
    return index, function(*args)


def run_tasks(function, task_args, n_jobs: int = 1):
    """Run independent tasks ``function(*args)``, inline or through joblib, yielding each result as it finishes.

    Parameters
    ----------
    function : callable
        A module-level function (worker processes receive it by reference, or by value for file-loaded modules).
    task_args : sequence of tuple
        The positional arguments of each task.
    n_jobs : int
        1 runs the tasks inline, in order, without joblib; otherwise joblib's ``n_jobs`` (-1 = all cores), with
        whatever backend joblib is configured with.

    Yields
    ------
    index : int
        The task's position in ``task_args``.
    value
        What ``function`` returned.

    Notes
    -----
    Results arrive in completion order, so a caller can record each task as soon as it is done; tasks are sent
    to workers one at a time (``batch_size=1``) so that few tasks are in flight at once. An exception raised by a
    task stops the iteration; tasks that must not stop the others should catch their own errors.
    """
    if int(n_jobs) != n_jobs or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
    tasks = [tuple(args) for args in task_args]
    if n_jobs == 1 or len(tasks) <= 1:
        for index, args in enumerate(tasks):
            yield index, function(*args)
        return
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=int(n_jobs), return_as="generator_unordered", batch_size=1, pre_dispatch="n_jobs")
    yield from parallel(delayed(_indexed_call)(function, index, args) for index, args in enumerate(tasks))
