"""Evaluation tasks: one batch of points evaluated in parts on the workers.

Where a phase of a run has fewer lower-level problems than there are workers (a handful of refinements, one global
search, the final check), solving each problem in a worker leaves the others idle. For a black box that costs more
per point than a round trip to a worker, the batches of points the solvers evaluate (a DE population, the
finite-difference points of all rows, the rows of a per-point function) are then cut into as many parts as there
are workers, and each part is evaluated in one. A point's values do not depend on the part it is in, so the results
are those of an inline run.

The workers are the dask cluster's when joblib's active backend is dask (the problem is scattered to them once),
and otherwise a loky process pool of ``n_jobs`` workers, reused across calls, which receives the problem pickled
once and keeps it.
"""

from __future__ import annotations

import os
import pickle
import time
import uuid

import numpy as np

from ..problem import FailureLog

__all__ = ["Spreader"]

#: Problems the worker has received, by key: a problem travels to each worker once, not with every part.
_WORKER_PROBLEMS: dict[str, object] = {}
#: Round trips timed to measure the cost of an evaluation task (the median is taken).
_PINGS = 5
#: Parts are sent only where they save this many round trips' worth of time at least: below, the saving is within
#: the round trips' own variation.
_SAVING_MARGIN = 2.0


def _evaluate_part(key: str, payload, level: str, X: np.ndarray, Y: np.ndarray):
    """In a worker: evaluate one part of a batch. Returns values, constraints, the failed rows, the first error and
    the seconds the black box took."""
    problem = _WORKER_PROBLEMS.get(key)
    if problem is None:
        problem = pickle.loads(payload) if isinstance(payload, bytes) else payload
        _WORKER_PROBLEMS[key] = problem
    log = FailureLog(np.zeros(X.shape[0], bool))
    start = time.perf_counter()
    values, constraints = problem.evaluate_batch(level, X, Y, log)
    return values, constraints, log.failed, log.first_error, time.perf_counter() - start


class Spreader:
    """Evaluates batches of points in parts on the workers.

    Parameters
    ----------
    n_jobs : int
        Workers of the process pool (-1: one per core); ignored on a dask cluster, whose workers are all used.
    """

    def __init__(self, n_jobs: int):
        self.client = _dask_client()
        if self.client is not None:
            self.n_workers = max(1, len(self.client.scheduler_info().get("workers", {})))
            self.executor = None
        else:
            from joblib.executor import get_memmapping_executor  # the pool joblib's own loky backend reuses

            self.n_workers = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
            self.executor = get_memmapping_executor(self.n_workers)
        self._shipped: dict[int, tuple[str, object, object]] = {}
        self.overhead = self._round_trip()

    def _map(self, function, *iterables) -> list:
        if self.client is not None:
            return self.client.gather(self.client.map(function, *iterables, pure=False))
        return list(self.executor.map(function, *iterables))

    def _round_trip(self) -> float:
        """Median seconds of one round of trivial tasks, one per worker: what a spread batch costs beyond its
        evaluations."""
        times = []
        for _ in range(_PINGS):
            start = time.perf_counter()
            self._map(_ping, range(self.n_workers))
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    def worthwhile(self, n_points: int, seconds_per_point: float | None) -> bool:
        """Whether evaluating ``n_points`` in parts saves more than the round trip costs."""
        if seconds_per_point is None or n_points < 2 or self.n_workers < 2:
            return False
        parts = min(self.n_workers, n_points)
        saving = n_points * seconds_per_point * (1 - 1 / parts)
        return saving > _SAVING_MARGIN * self.overhead

    def evaluate(self, problem, level: str, X: np.ndarray, Y: np.ndarray, log: FailureLog):
        """``problem.evaluate_batch(level, X, Y, log)``, in parts on the workers; also returns the seconds the black
        box took in all (the parts' sum)."""
        key, payload = self._ship(problem)
        cuts = np.array_split(np.arange(X.shape[0]), min(self.n_workers, X.shape[0]))
        parts = self._map(_evaluate_part, [key] * len(cuts), [payload] * len(cuts), [level] * len(cuts),
                          [X[c] for c in cuts], [Y[c] for c in cuts])
        values = np.concatenate([p[0] for p in parts])
        widths = {p[1].shape[1] for p in parts if p[1].ndim == 2}
        m = max(widths) if widths else 0
        constraints = np.concatenate([p[1] if p[1].shape[1:] == (m,) else np.full((len(p[0]), m), np.nan)
                                      for p in parts])
        for cut, (_, _, failed, first_error, _) in zip(cuts, parts):
            log.failed[cut] |= failed
            if log.first_error is None and first_error is not None:
                log.first_error = first_error
        return values, constraints, sum(p[4] for p in parts)

    def _ship(self, problem) -> tuple[str, object]:
        """The key and the form in which ``problem`` travels: scattered once to a dask cluster, or pickled once
        for the process pool (each worker unpickles it once)."""
        entry = self._shipped.get(id(problem))
        if entry is None:
            key = uuid.uuid4().hex
            if self.client is not None:
                payload = self.client.scatter(problem, broadcast=True, hash=False)
            else:
                import cloudpickle

                payload = cloudpickle.dumps(problem)
            entry = self._shipped[id(problem)] = (key, payload, problem)  # keep the problem: its id stays its own
        return entry[0], entry[1]


def _ping(_index: int) -> float:
    return time.perf_counter()


def _dask_client():
    """The dask client of joblib's active backend, or None when the backend is not dask."""
    try:
        from joblib.parallel import get_active_backend
    except ImportError:  # pragma: no cover - joblib is a dependency
        return None
    backend, _ = get_active_backend()
    return getattr(backend, "client", None) if type(backend).__name__ == "DaskDistributedBackend" else None
