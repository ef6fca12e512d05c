"""Running batches of lower-level solves, inline or through joblib. The only module that imports joblib.

Rows are cut into chunks of ``chunk_size`` and every chunk is solved by one task with its own random stream,
spawned from the caller's :class:`numpy.random.SeedSequence`. The chunking depends on the number of rows only,
never on ``n_jobs``, so a run gives identical results inline, on two local processes, or on a dask cluster
(``joblib.parallel_config(backend="dask")``). Each task returns its evaluation counts with its solutions, because
counters incremented inside worker processes would otherwise be lost.
"""

from __future__ import annotations

import pickle
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .evaluator import Evaluator, LevelCounts
from .lower.base import LowerSolution

__all__ = ["LowerEngine", "ProblemNotPicklable", "send_module_by_value", "run_tasks", "cluster_backend"]


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
        _check_n_jobs(n_jobs)
        if int(chunk_size) != chunk_size or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self.n_jobs = int(n_jobs)
        self.chunk_size = int(chunk_size)
        self._parallel = None
        self._checked_pickle = False

    def __enter__(self) -> LowerEngine:
        if self.n_jobs != 1:
            self._parallel = _chunk_parallel(self.n_jobs)
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
        return self.run(self.tasks(problem, solver, X, seed, Y0, max_evals))

    def tasks(self, problem, solver, X: np.ndarray, seed: np.random.SeedSequence, Y0: np.ndarray | None = None,
              max_evals: np.ndarray | None = None) -> list[tuple]:
        """The chunk tasks of :meth:`solve`, each with its own random stream: running them in any grouping (all at
        once, or some first) gives the same solutions."""
        n = X.shape[0]
        starts = range(0, n, self.chunk_size)
        seeds = seed.spawn(len(starts))
        return [
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

    def run(self, tasks: list[tuple]) -> tuple[LowerSolution, dict[str, LevelCounts]]:
        """Run chunk tasks (see :meth:`tasks`); returns the solution of their rows in order and the summed counts."""
        return self.run_groups([tasks])[0]

    def run_groups(self, groups: list[list[tuple]]) -> list[tuple[LowerSolution, dict[str, LevelCounts]]]:
        """Run the chunk tasks of several groups (of different problems: one per follower) in one call; returns
        each group's solution (its rows in order) and its summed counts."""
        tasks = [task for group in groups for task in group]
        if self.n_jobs == 1 or len(tasks) == 1:
            results = [_solve_chunk(*task) for task in tasks]
        else:
            results = self._run_parallel(tasks)
        out, first = [], 0
        for group in groups:
            part, first = results[first:first + len(group)], first + len(group)
            total = {"ul": LevelCounts(), "ll": LevelCounts()}
            for r in part:
                total["ul"].add(r.counts["ul"])
                total["ll"].add(r.counts["ll"])
            out.append((LowerSolution.concat([r.solution for r in part]), total))
        return out

    def _run_parallel(self, tasks) -> list[_ChunkResult]:
        from joblib import delayed

        if not self._checked_pickle:
            for problem in {id(task[0]): task[0] for task in tasks}.values():  # each follower's problem once
                _check_picklable(problem, tasks[0][1])
            self._checked_pickle = True
        parallel = self._parallel if self._parallel is not None else _chunk_parallel(self.n_jobs)
        return parallel(delayed(_solve_chunk)(*task) for task in tasks)


def _chunk_parallel(n_jobs: int):
    """A joblib ``Parallel`` for the chunks of a generation.

    Every chunk is its own task (``batch_size=1``): the rows are already batched into chunks, and joblib's
    automatic batching would pair chunks of one generation into fixed groups, so a worker that finished early
    could not take over the work of a slow one. All chunks are submitted at once (``pre_dispatch="all"``): with
    dask, a task submitted only when another finishes waits for the backend's completion polling (about 10 ms
    each), which idles workers at every generation.
    """
    from joblib import Parallel

    return Parallel(n_jobs=n_jobs, batch_size=1, pre_dispatch="all")


def _check_picklable(problem, solver) -> None:
    """Fail early, with the fix named, when the problem cannot travel to worker processes."""
    import cloudpickle

    # What pickling raises for an object that cannot travel (locks, files: TypeError; local classes: others).
    errors = (pickle.PicklingError, TypeError, AttributeError, ValueError, RecursionError)
    for what, obj in (("problem", problem), ("lower-level solver", solver)):
        try:
            cloudpickle.dumps(obj)
        except errors as exc:
            # Name the user function that does not pickle, when it is one of them.
            culprit = ""
            functions = obj.functions() if what == "problem" else {}
            for label, function in functions.items():
                try:
                    cloudpickle.dumps(function)
                except errors:
                    culprit = f" (its {label} function {getattr(function, '__qualname__', function)!r})"
                    break
            raise ProblemNotPicklable(
                f"the {what} {getattr(obj, 'name', type(obj).__name__)!r}{culprit} cannot be sent to worker "
                f"processes for n_jobs != 1 ({type(exc).__name__}: {exc}). Its functions must pickle with "
                "cloudpickle: module-level functions, lambdas and closures over plain data do; a function that "
                "captures a lock, an open file, a connection or a thread does not. Create such an object inside "
                "the function (or once per process, in a module-level cache), or run with n_jobs=1."
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
    _check_n_jobs(n_jobs)
    tasks = [tuple(args) for args in task_args]
    if n_jobs == 1 or len(tasks) <= 1:
        for index, args in enumerate(tasks):
            yield index, function(*args)
        return
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=int(n_jobs), return_as="generator_unordered", batch_size=1, pre_dispatch="n_jobs")
    yield from parallel(delayed(_indexed_call)(function, index, args) for index, args in enumerate(tasks))


@contextmanager
def cluster_backend(address: str):
    """Send the joblib work done inside the ``with`` block to the dask cluster whose scheduler is at ``address``.

    Connects a ``dask.distributed.Client`` and makes dask joblib's backend for the block, so that
    :func:`evobilevel.solve` with ``n_jobs != 1`` solves its lower levels on the cluster's workers and
    :func:`run_tasks` (benchmark grids) runs its tasks there. The workers need evobilevel (and the problem's
    modules) installed; problems loaded from a file travel by value.

    Parameters
    ----------
    address : str
        The scheduler's address, e.g. ``"tcp://scheduler:8786"``.

    Yields
    ------
    dask.distributed.Client

    Raises
    ------
    ImportError
        When dask.distributed is not installed (the ``distributed`` extra).
    OSError
        When no scheduler answers at ``address``.
    """
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise ImportError("running on a dask cluster needs dask.distributed, the 'distributed' extra: "
                          "pip install 'evobilevel[distributed]'") from exc
    from joblib import parallel_config

    try:
        client = Client(address, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise OSError(f"cannot connect to the dask scheduler at {address!r} ({type(exc).__name__}: {exc})") from exc
    with client, parallel_config(backend="dask", client=client):
        yield client


def _check_n_jobs(n_jobs) -> None:
    if int(n_jobs) != n_jobs or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
