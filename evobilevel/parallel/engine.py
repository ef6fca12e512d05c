"""The lower-level engine: batches of lower-level solves, inline or in parallel, as row tasks or evaluation tasks.

Rows are cut into chunks of ``chunk_size`` and every chunk has its own random stream, spawned from the caller's
:class:`numpy.random.SeedSequence`. The chunking depends on the number of rows only, never on ``n_jobs`` or on how
the work is sent out, so a run gives identical results inline, on local processes or on a dask cluster.

Two kinds of parallel task:

- *row tasks*: each chunk is solved by a worker, which returns its solutions and evaluation counts (counters
  incremented inside worker processes would otherwise be lost). Few round trips: right for cheap functions and
  for batches with at least as many chunks as workers. With more chunks than workers and a cheap function, a task
  carries one bundle of consecutive chunks per worker, solved together there (:meth:`LowerEngine.bundles`).
- *evaluation tasks*: the chunks are solved here (together, where the solver can: below), and the batches of points
  their solvers evaluate are spread over the workers (:mod:`.spread`). Right for black boxes that cost more per
  point than a round trip, in phases with fewer chunks than workers.

Chunks solved here (inline or as evaluation tasks) by a local refinement or the DE go together, in one search: their
rows are independent and each chunk draws its random numbers from its own stream, so the results are those of the
chunks one by one, with the rounds (generations) of the longest search instead of the sum over the chunks.

With ``tasks="auto"`` the engine chooses per batch, from the cost per lower-level point it has measured so far and
the round trip it measured once. A batch of one chunk (the final check, the first chunk of a run, a single global
search) is solved here as evaluation tasks: each of its batches of points is spread or evaluated here by its own
size, the cost being learnt batch by batch (a level's first batch times its first point here, which decides where
the others go).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..evaluator import Evaluator, LevelCounts
from ..lower.base import LowerSolution
from ..lower.refinement import Refinement, StartValues
from .tasks import check_n_jobs, check_picklable

__all__ = ["LowerEngine", "TASK_KINDS"]

TASK_KINDS = ("auto", "rows", "evaluations")
#: Seconds per lower-level point below which row tasks carry several chunks each (one bundle per worker), solved
#: together in the worker. The solvers' own work per point is a few to a dozen microseconds, and solving chunks
#: together cuts it several-fold (a DE of 32 SMD1 (5, 5) rows: 12 us per point as eight chunks one after the other,
#: 2.4 us in one run); at a tenth of a millisecond per point the black box's own time dominates, and one chunk per
#: task lets the workers take the chunks as they come free, which balances them better.
BUNDLE_BELOW = 1e-4


@dataclass
class _ChunkResult:
    solution: LowerSolution
    counts: dict[str, LevelCounts]


def _solve_chunk(problem, solver, X, Y0, max_evals, seed: np.random.SeedSequence, curvature=None, determined=None,
                 f_accept=None, first_values=None, batch=None, observer=None) -> _ChunkResult:
    """One chunk: solve the lower level for its rows ``X`` (k, ul_dim); ``batch`` spreads its evaluations and
    ``observer`` is told of each batch's cost as it is evaluated. ``curvature``, ``determined``, ``f_accept`` and
    ``first_values`` go to a local refinement only (other solvers take none of them)."""
    evaluator = Evaluator(problem, batch=batch, observer=observer)
    rng = np.random.default_rng(seed)
    hints = {}
    if _takes_hints(solver):
        hints = {name: value for name, value in (("curvature", curvature), ("determined", determined),
                                                 ("f_accept", f_accept), ("first_values", first_values))
                 if value is not None}
    solution = solver.solve(evaluator, X, rng, Y0=Y0, max_evals=max_evals, **hints)
    return _ChunkResult(solution, evaluator.counts())


def _solve_here(tasks: list[tuple], batch=None, observer=None) -> list[_ChunkResult]:
    """Chunk tasks of one problem solved in this process.

    Where the solver can solve several chunks in one search with the results of solving them one by one
    (``solve_parts``: a local refinement or the DE, whose rows are independent), the chunks go together: one search
    evaluates the points of all of them in each call, so a batch of rows costs the rounds of its longest search
    rather than the sum over its chunks. Returns one result for the tasks taken together, or one per task.
    """
    if not _solvable_together(tasks):
        return [_solve_chunk(*task, batch=batch, observer=observer) for task in tasks]
    problem, solver = tasks[0][0], tasks[0][1]
    evaluator = Evaluator(problem, batch=batch, observer=observer)
    takes = _takes_hints(solver)  # the parts of other solvers are (X, rng, Y0, max_evals)
    parts = [(X, np.random.default_rng(seed), Y0, max_evals) + (tuple(hints) if takes else ())
             for _, _, X, Y0, max_evals, seed, *hints in tasks]
    solutions = solver.solve_parts(evaluator, parts)
    return [_ChunkResult(LowerSolution.concat(solutions), evaluator.counts())]


def _takes_hints(solver) -> bool:
    """Whether ``solver`` takes what is known near its rows' problems (the curvature learnt there, the variables
    a response model determines, the values it accepts, those known at its starts): local refinements do; the other
    solvers (and users' own) are called with the arguments of :class:`~evobilevel.lower.base.LowerSolver` only."""
    return isinstance(solver, Refinement)


def _solvable_together(tasks: list[tuple]) -> bool:
    """Whether the tasks are several chunks of one problem for one solver that solves several chunks at once."""
    return len(tasks) > 1 and _solves_parts(tasks[0][1]) and all(
        task[0] is tasks[0][0] and task[1] is tasks[0][1] for task in tasks)


def _solves_parts(solver) -> bool:
    """Whether ``solver`` has a ``solve_parts`` defined with its ``solve``: a subclass that changes ``solve`` alone
    (a user's variant of the DE) is called through its own ``solve``, chunk by chunk."""
    mro = type(solver).__mro__
    owner = {name: next((cls for cls in mro if name in vars(cls)), None) for name in ("solve", "solve_parts")}
    return owner["solve_parts"] is not None and owner["solve_parts"] is owner["solve"]


class LowerEngine:
    """Solves the lower level for many upper-level points per call, in chunks, inline or in parallel.

    Parameters
    ----------
    n_jobs : int
        1 runs every chunk inline without joblib; otherwise joblib's ``n_jobs`` (-1 = all cores). The backend is
        whatever joblib is configured with (loky by default; dask inside ``joblib.parallel_config("dask")``).
    chunk_size : int
        Rows per chunk. Results depend on it (each chunk has its own random stream) but not on ``n_jobs``.
    tasks : {"auto", "rows", "evaluations"}
        What a parallel task is (see the module's description); ``"auto"`` chooses per batch.

    Use as a context manager so that one pool of workers serves every generation of a run.
    """

    def __init__(self, n_jobs: int = 1, chunk_size: int = 4, tasks: str = "auto"):
        check_n_jobs(n_jobs)
        if isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        if tasks not in TASK_KINDS:
            raise ValueError(f"tasks must be one of {', '.join(TASK_KINDS)}, got {tasks!r}")
        self.n_jobs = int(n_jobs)
        self.chunk_size = int(chunk_size)
        self.task_kind = tasks
        self._parallel = None
        self._spreader = None
        self._checked_pickle = False
        #: Seconds per evaluated point at each level, measured so far (None until an evaluation is timed).
        self.seconds_per_point: dict[str, float | None] = {"upper": None, "lower": None}
        self._timed = {"upper": [0.0, 0], "lower": [0.0, 0]}

    def __enter__(self) -> LowerEngine:
        if self.n_jobs != 1:
            self._parallel = _chunk_parallel(self.n_jobs)
            self._parallel.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._spreader is not None:
            self._spreader.close()
            self._spreader = None
        if self._parallel is not None:
            self._parallel.__exit__(*exc)
            self._parallel = None

    # ------------------------------------------------------------------ solves
    def solve(self, problem, solver, X: np.ndarray, seed: np.random.SeedSequence, Y0: np.ndarray | None = None,
              max_evals: np.ndarray | None = None,
              curvature: np.ndarray | None = None,
              determined: np.ndarray | None = None,
              f_accept: np.ndarray | None = None,
              first_values: StartValues | None = None) -> tuple[LowerSolution, dict[str, LevelCounts]]:
        """Solve the lower level at every row of ``X`` (n, ul_dim).

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
        curvature : ndarray, shape (n, ll_dim), optional
            For a local refinement: each variable's curvature learnt near each row's problem (NaN: unknown).
        determined : ndarray of bool, shape (n, ll_dim), optional
            For a local refinement: the variables whose optimal values each row's warm starts already hold.
        f_accept : ndarray, shape (n,), optional
            For a local refinement: the value of f at or below which a feasible point ends each row's search.
        first_values : StartValues, optional
            For a local refinement: the values already known at each row's first warm start.

        Returns
        -------
        solution : LowerSolution
            Rows in the order of ``X``.
        counts : dict
            Evaluations spent, ``{"ul": LevelCounts, "ll": LevelCounts}``, summed over the chunks.
        """
        return self.run(self.tasks(problem, solver, X, seed, Y0, max_evals, curvature, determined, f_accept,
                                   first_values))

    def tasks(self, problem, solver, X: np.ndarray, seed: np.random.SeedSequence, Y0: np.ndarray | None = None,
              max_evals: np.ndarray | None = None, curvature: np.ndarray | None = None,
              determined: np.ndarray | None = None, f_accept: np.ndarray | None = None,
              first_values: StartValues | None = None) -> list[tuple]:
        """The chunk tasks of :meth:`solve`, each with its own random stream: running them in any grouping (all at
        once, or some first) gives the same solutions."""
        n = X.shape[0]
        starts = range(0, n, self.chunk_size)
        seeds = seed.spawn(len(starts))
        size = self.chunk_size

        def rows(A, i):
            return None if A is None else A[i:i + size]

        return [(problem, solver, X[i:i + size], rows(Y0, i), rows(max_evals, i), s, rows(curvature, i),
                 rows(determined, i), rows(f_accept, i), rows(first_values, i)) for i, s in zip(starts, seeds)]

    def run(self, tasks: list[tuple]) -> tuple[LowerSolution, dict[str, LevelCounts]]:
        """Run chunk tasks (see :meth:`tasks`); returns the solution of their rows in order and the summed counts."""
        return self.run_groups([tasks])[0]

    def run_groups(self, groups: list[list[tuple]]) -> list[tuple[LowerSolution, dict[str, LevelCounts]]]:
        """Run the chunk tasks of several groups (of different problems: one per follower) in one call; returns
        each group's solution (its rows in order) and its summed counts."""
        tasks = [task for group in groups for task in group]
        kind = self._kind(len(tasks))
        if kind == "rows":
            per_group = self._run_rows(groups)
        else:
            # As evaluation tasks, costs are learnt batch by batch, so that the batches after the first are spread
            # where that pays.
            here = {} if kind == "inline" else {"batch": self._evaluate_batch, "observer": self.observe}
            per_group = [_solve_here(group, **here) for group in groups]
        if kind != "evaluations":
            for part in per_group:
                for r in part:
                    self._learn(r.counts)
        out = []
        for part in per_group:
            total = {"ul": LevelCounts(), "ll": LevelCounts()}
            for r in part:
                total["ul"].add(r.counts["ul"])
                total["ll"].add(r.counts["ll"])
            out.append((LowerSolution.concat([r.solution for r in part]), total))
        return out

    # ------------------------------------------------------------ task kinds
    def _kind(self, n_chunks: int) -> str:
        """How to run a batch of ``n_chunks`` chunks: ``"inline"``, ``"rows"`` or ``"evaluations"``."""
        if self.n_jobs == 1:
            return "inline"
        if self.task_kind != "auto":
            return "inline" if self.task_kind == "rows" and n_chunks == 1 else self.task_kind
        if n_chunks == 1:
            # One chunk is solved here either way; as evaluation tasks each of its batches is spread or evaluated
            # here by its own size and the cost measured so far (the first batch, cost unknown, here).
            return "evaluations"
        cost = self.seconds_per_point["lower"]
        if cost is None or (cost < BUNDLE_BELOW and n_chunks >= self._n_row_workers()):
            # Cost unknown, or too cheap to spread a point per worker while every worker has a chunk: row tasks,
            # without asking for the evaluation workers (their round trip is measured when first needed).
            return "rows"
        # A black box whose cost is known: spread its batches where a typical one (a point per worker) saves more
        # than a round trip. Then the chunks are solved together here, so the workers share every round's points
        # evenly, however many chunks there are; as row tasks, a generation would last as long as the longest
        # chunk's search, and those lengths differ (the nested algorithm's generation of eight chunks of four rows
        # on eight workers, 2 ms a point: 3.6 s as row tasks, 3.3 s as evaluation tasks, of 3.0 s of waiting).
        spreader = self._spreader_ready()
        return "evaluations" if spreader.worthwhile(spreader.n_workers, cost) else "rows"

    def _n_row_workers(self) -> int:
        """The workers that take row tasks: joblib's for this engine's ``n_jobs`` under the active backend."""
        from joblib import effective_n_jobs

        return effective_n_jobs(self.n_jobs)

    @property
    def batch(self):
        """The evaluation of batches of points for the evaluators of this engine's work:
        ``batch(problem, level, X, Y, log) -> (values, constraints, seconds)``, spread over the workers where that pays
        (by this engine's measured costs); None where everything is evaluated inline (``n_jobs=1`` or row tasks
        forced)."""
        if self.n_jobs == 1 or self.task_kind == "rows":
            return None
        return self._evaluate_batch

    def _evaluate_batch(self, problem, level: str, X: np.ndarray, Y: np.ndarray, log):
        cost = self.seconds_per_point[level]
        if self.task_kind == "evaluations" or (cost is not None
                                               and self._spreader_ready().worthwhile(X.shape[0], cost)):
            return self._spreader_ready().evaluate(problem, level, X, Y, log)
        if cost is None and X.shape[0] > 1 and not getattr(problem, "vectorized", True):
            # The level's first batch: its first point, timed, tells whether the others are worth spreading. Only
            # for per-point functions: a vectorised one's single call costs what a call costs, not a point, and
            # fails or succeeds for its whole batch.
            return self._spreader_ready().evaluate_timing_first(problem, level, X, Y, log)
        start = time.perf_counter()
        values, constraints = problem.evaluate_batch(level, X, Y, log)
        return values, constraints, time.perf_counter() - start

    def _spreader_ready(self):
        if self._spreader is None:
            from .spread import Spreader

            self._spreader = Spreader(self.n_jobs, _process_pool(self._parallel))
        return self._spreader

    def _learn(self, counts: dict[str, LevelCounts]) -> None:
        """Count a chunk's timed evaluations in the measured cost per point."""
        for key, level in (("ul", "upper"), ("ll", "lower")):
            self.observe(level, counts[key].n_evals, counts[key].seconds)

    def observe(self, level: str, n_evals: int, seconds: float) -> None:
        """Count ``n_evals`` evaluations at ``level`` that took ``seconds`` in the measured cost per point."""
        timed = self._timed[level]
        timed[0] += seconds
        timed[1] += n_evals
        if timed[1]:
            self.seconds_per_point[level] = timed[0] / timed[1]

    def _run_rows(self, groups: list[list[tuple]]) -> list[list[_ChunkResult]]:
        """Each group's chunk tasks as row tasks, in bundles (:meth:`bundles`); the results per group, in order."""
        from joblib import delayed

        if not self._checked_pickle:
            first = [group[0] for group in groups if group]
            for problem in {id(task[0]): task[0] for task in first}.values():  # each follower's problem once
                check_picklable(problem, first[0][1])
            self._checked_pickle = True
        parallel = self._parallel if self._parallel is not None else _chunk_parallel(self.n_jobs)
        bundles = [(g, bundle) for g, group in enumerate(groups) for bundle in self.bundles(group)]
        per_group = [[] for _ in groups]
        for (g, _), results in zip(bundles, parallel(delayed(_solve_here)(bundle) for _, bundle in bundles)):
            per_group[g].extend(results)
        return per_group

    def bundles(self, tasks: list[tuple]) -> list[list[tuple]]:
        """The chunk tasks of one problem cut into the row tasks that carry them: one bundle of consecutive chunks
        per worker where there are more chunks than workers and a lower-level point costs less than
        ``BUNDLE_BELOW`` (or its cost is not known yet), each bundle solved together in its worker; one chunk per
        task otherwise. The results do not depend on the bundling."""
        n_workers = self._n_row_workers()
        cost = self.seconds_per_point["lower"]
        if len(tasks) <= n_workers or (cost is not None and cost >= BUNDLE_BELOW):
            return [[task] for task in tasks]
        return [[tasks[i] for i in cut] for cut in np.array_split(np.arange(len(tasks)), n_workers)]


def _process_pool(parallel):
    """The process pool (a ``concurrent.futures.Executor``) of an entered joblib ``Parallel``, or None where it has
    none of that kind (other backends, or a joblib whose internals differ)."""
    from concurrent.futures import Executor

    pool = getattr(getattr(parallel, "_backend", None), "_workers", None)
    return pool if isinstance(pool, Executor) else None


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
