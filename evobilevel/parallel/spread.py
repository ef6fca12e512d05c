"""Evaluation tasks: one batch of points evaluated in parts on the workers.

Where a phase of a run has fewer lower-level problems than there are workers (a handful of refinements, one global
search, the final check), solving each problem in a worker leaves the others idle. For a black box that costs more
per point than a round trip to a worker, the batches of points the solvers evaluate (a DE population, the
finite-difference points of all rows, the rows of a per-point function) are then cut into as many parts as there
are workers, and each part is evaluated in one. A point's values do not depend on the part it is in, so the results
are those of an inline run.

The workers are the dask cluster's when joblib's active backend is dask, and otherwise a loky process pool of
``n_jobs`` workers, reused across calls. On dask each worker keeps a :class:`PartEvaluator` that the run calls: a
part then costs one message each way, where a task also costs the scheduler's bookkeeping. The calls travel the
quickest way that works (on a two-core machine, a round of eight trivial parts on eight workers): through a channel,
a socket to a thread in each worker (:mod:`.channel`, about 0.3 ms), where the workers can be reached over plain TCP;
else to an actor in each worker, straight from a client of the spreader's own (about 4 ms) or through the scheduler
(about 12 ms); else as tasks (33 ms). Should a worker go away, the parts are sent as tasks from then on, which dask
reschedules. In every form a problem travels to a worker once, not with every part.
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
#: Seconds to wait for the actors to start before sending tasks instead.
_ACTOR_START_TIMEOUT = 60.0
#: Seconds the channels or a direct client's actors may take to open and answer a round of calls; beyond, the
#: workers are taken to be out of reach from here (behind the scheduler), and the next way is tried.
_DIRECT_TIMEOUT = 5.0
#: What a call to a worker that has gone raises: the connection's error, or dask's "Worker holding Actor was lost"
#: once the scheduler knows (a worker's failure to carry out a call through a channel is a ``RuntimeError`` too). A
#: black box's own errors do not travel this way (the parts log them as failures).
_WORKER_LOST = (OSError, RuntimeError)


def _evaluate_part(key: str, payload, level: str, X: np.ndarray, Y: np.ndarray):
    """In a worker: evaluate one part of a batch. Returns values, constraints, the failed rows, the first error and
    the seconds the black box took."""
    problem = _WORKER_PROBLEMS.get(key)
    if problem is None:
        problem = pickle.loads(payload) if isinstance(payload, bytes) else payload
        _WORKER_PROBLEMS[key] = problem
    return _evaluate(problem, level, X, Y)


def _evaluate(problem, level: str, X: np.ndarray, Y: np.ndarray):
    log = FailureLog(np.zeros(X.shape[0], bool))
    start = time.perf_counter()
    values, constraints = problem.evaluate_batch(level, X, Y, log)
    return values, constraints, log.failed, log.first_error, time.perf_counter() - start


class PartEvaluator:
    """A worker's evaluator of parts (a dask actor, one per worker; or one per channel, the object its thread
    calls): keeps the problems it is given and evaluates parts of batches of their points."""

    def __init__(self):
        self.problems: dict[str, object] = {}

    def keep(self, key: str, payload: bytes) -> None:
        """Keep the problem pickled in ``payload`` under ``key``."""
        self.problems[key] = pickle.loads(payload)

    def evaluate(self, key: str, level: str, X: np.ndarray, Y: np.ndarray):
        """Evaluate one part of a batch of the problem kept under ``key`` (returns as ``_evaluate_part``)."""
        return _evaluate(self.problems[key], level, X, Y)

    def ping(self, index: int) -> int:
        """A call that does nothing: its round trip is what a part costs beyond its evaluations."""
        return index


class Spreader:
    """Evaluates batches of points in parts on the workers.

    Parameters
    ----------
    n_jobs : int
        Workers of the process pool (-1: one per core); ignored on a dask cluster, whose workers are all used.
    executor : concurrent.futures.Executor, optional
        The process pool of the run's row tasks (joblib's loky pool), to share. Without it the spreader asks joblib
        for its reusable pool with arguments of its own, which makes joblib shut down the row tasks' pool and start
        another (0.5 s for two workers here, 2 s for eight), and the row tasks' next call start it again.
    """

    def __init__(self, n_jobs: int, executor=None):
        self.client = _dask_client()
        self.channels: list | None = None  # sockets to a thread in each worker, where they can be opened
        self.actors: list | None = None
        self._actor_futures: list = []
        self._direct = None  # a client of the spreader's own that calls the actors' workers directly
        if self.client is not None:
            info = self.client.scheduler_info().get("workers", {})
            self.executor = None
            self._connect({worker: int(info[worker].get("nthreads", 1) or 1) for worker in info})
        else:
            from joblib.executor import get_memmapping_executor  # the pool joblib's own loky backend reuses

            self.n_workers = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
            self.executor = executor if executor is not None else get_memmapping_executor(self.n_workers)
            self.overhead = self._round_trip()
        self._shipped: dict[int, tuple[str, object, object]] = {}

    def close(self) -> None:
        """Close the channels and release the actors (the process pool stays, for joblib to reuse)."""
        for channel in self.channels or ():
            channel.close()
        self.channels = None
        for future in self._actor_futures:
            try:
                future.release()
            except Exception:  # noqa: BLE001 - a client already closed has released them
                pass
        self._actor_futures, self.actors = [], None
        if self._direct is not None:
            self._direct.close()
            self._direct = None

    def _connect(self, threads: dict[str, int]) -> None:
        """The way parts travel to the workers (``threads``: each worker's threads, by address), the quickest that
        works: a channel to each thread of each worker where they can be reached from here over plain TCP; else one
        actor per worker, called directly from here where the workers can be reached (a call then makes one hop each
        way, not two through the scheduler: on a two-core machine a round of eight parts took about 3 ms less),
        through the run's client otherwise; else none (parts are then sent as tasks). A batch is cut into as many
        parts as there are channels or actors (``n_workers``). ``overhead`` is the round trip of the way taken, whose
        measurement is also the test that the workers answer."""
        for open_way in (self._open_channels, self._open_direct_actors):
            if open_way(threads):
                try:
                    self.overhead = self._round_trip(_DIRECT_TIMEOUT)
                    return
                except Exception:  # noqa: BLE001 - any failure: the workers cannot be reached this way from here
                    pass
            self.close()
        workers = list(threads)
        self.n_workers = max(1, len(workers))
        self._actor_futures, self.actors = _start_actors(self.client, workers)
        self.overhead = self._round_trip()

    def _open_channels(self, threads: dict[str, int]) -> bool:
        """Open a channel to each thread of each worker; whether they opened."""
        from .channel import open_channels  # which imports this module's PartEvaluator

        self.n_workers = max(1, sum(threads.values()))
        self.channels = open_channels(self.client, threads, _DIRECT_TIMEOUT)
        return self.channels is not None

    def _open_direct_actors(self, threads: dict[str, int]) -> bool:
        """Start one actor per worker through a client of the spreader's own that calls the workers directly (where
        the run's client does not already); whether they started."""
        workers = list(threads)
        self.n_workers = max(1, len(workers))  # one actor per worker
        if self.client.direct_to_workers:
            return False
        self._direct = _direct_client(self.client)
        if self._direct is None:
            return False
        self._actor_futures, self.actors = _start_actors(self._direct, workers, _DIRECT_TIMEOUT)
        return self.actors is not None

    def _round_trip(self, timeout: float | None = None) -> float:
        """Median seconds of one round of trivial parts, one per worker: what a spread batch costs beyond its
        evaluations. An actor that does not answer within ``timeout`` seconds raises."""
        times = []
        for _ in range(_PINGS):
            start = time.perf_counter()
            if self._calls:
                self._call("ping", [(i,) for i in range(self.n_workers)], timeout)
            else:
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
        cuts, parts = self._spread_rows(problem, level, X, Y, np.arange(X.shape[0]))
        return _join(parts, cuts, log)

    def evaluate_timing_first(self, problem, level: str, X: np.ndarray, Y: np.ndarray, log: FailureLog):
        """As :meth:`evaluate` for a black box whose cost is not known yet: the first point is evaluated here and
        timed, and the other ``n - 1`` are spread where that time says it pays, else evaluated here too. A black box
        of a second a point would otherwise spend a whole first batch (a DE population) in this process."""
        n = X.shape[0]
        first = _evaluate(problem, level, X[:1], Y[:1])
        if self.worthwhile(n - 1, first[4]):
            cuts, parts = self._spread_rows(problem, level, X, Y, np.arange(1, n))
        else:
            cuts, parts = [np.arange(1, n)], [_evaluate(problem, level, X[1:], Y[1:])]
        return _join([first, *parts], [np.arange(1), *cuts], log)

    def _spread_rows(self, problem, level: str, X: np.ndarray, Y: np.ndarray, rows: np.ndarray):
        """The points ``rows`` of X, Y cut into a part per worker (fewer for fewer points) and evaluated there: the
        cuts (rows of each part) and what :meth:`_evaluate_parts` returns."""
        cuts = np.array_split(rows, min(self.n_workers, rows.size))
        return cuts, self._evaluate_parts(problem, level, [X[c] for c in cuts], [Y[c] for c in cuts])

    def _evaluate_parts(self, problem, level: str, Xs: list, Ys: list) -> list:
        """The parts ``(Xs[i], Ys[i])`` evaluated on the workers, one each; returns what ``_evaluate_part`` does."""
        if self._calls:
            try:
                key, _ = self._ship(problem)
                return self._call("evaluate", [(key, level, X, Y) for X, Y in zip(Xs, Ys)])
            except _WORKER_LOST:
                self._send_tasks_from_now_on()
        key, payload = self._ship(problem)
        n = len(Xs)
        return self._map(_evaluate_part, [key] * n, [payload] * n, [level] * n, Xs, Ys)

    @property
    def _calls(self) -> bool:
        """Whether parts go as calls (through channels or to actors) rather than as tasks."""
        return self.channels is not None or self.actors is not None

    def _send_tasks_from_now_on(self) -> None:
        """Give up the channels or actors after one was lost with its worker (dask reschedules tasks, not actors)."""
        self.close()
        self._shipped.clear()  # the problems go to the cluster again, scattered
        self.overhead = self._round_trip()  # a task's, which is what a part costs from now on

    def _call(self, method: str, arguments: list[tuple], timeout: float | None = None) -> list:
        """Call ``method`` of the workers' :class:`PartEvaluator`, through the channels or on the actors, the i-th
        arguments on worker i, all at once; returns the results in order."""
        if self.channels is not None:
            for channel, args in zip(self.channels, arguments):
                channel.send(method, args)
            return [channel.receive(timeout) for channel in self.channels[:len(arguments)]]
        calls = [getattr(actor, method)(*args) for actor, args in zip(self.actors, arguments)]
        return [call.result(timeout) for call in calls]

    def _map(self, function, *iterables) -> list:
        if self.client is not None:
            return self.client.gather(self.client.map(function, *iterables, pure=False))
        return list(self.executor.map(function, *iterables))

    def _ship(self, problem) -> tuple[str, object]:
        """The key and the form in which ``problem`` travels, sent or prepared once: pickled and kept by every
        actor, scattered to the dask cluster, or pickled for the process pool (each worker unpickles it once)."""
        entry = self._shipped.get(id(problem))
        if entry is None:
            key = uuid.uuid4().hex
            if self.client is not None and not self._calls:
                payload = self.client.scatter(problem, broadcast=True, hash=False)
            else:
                import cloudpickle

                payload = cloudpickle.dumps(problem)
                if self._calls:
                    self._call("keep", [(key, payload)] * self.n_workers)
            entry = self._shipped[id(problem)] = (key, payload, problem)  # keep the problem: its id stays its own
        return entry[0], entry[1]


def _join(parts: list, cuts: list, log: FailureLog):
    """One batch's values (n,), constraints (n, m) and seconds from its parts (as ``_evaluate`` returns them) at the
    rows ``cuts``, in order; the parts' failures go to ``log``. A part whose constraints lack their columns (all its
    points failed) gets NaN there."""
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


def _ping(_index: int) -> float:
    return time.perf_counter()


def _start_actors(client, workers: list[str], timeout: float = _ACTOR_START_TIMEOUT) -> tuple[list, list | None]:
    """One :class:`PartEvaluator` actor on each of ``workers``, bound to ``client``: their futures (which keep them
    alive) and the actors, or None where the cluster cannot host them (within ``timeout`` seconds)."""
    futures = []
    try:
        # A worker that leaves before its actor starts must not hold the run: the actor may then start elsewhere.
        for worker in workers:
            futures.append(client.submit(PartEvaluator, actor=True, workers=[worker], allow_other_workers=True,
                                         pure=False))
        with client.as_current():  # an actor binds to the current client: the one its calls go through
            return futures, [future.result(timeout=timeout) for future in futures]
    except Exception:  # noqa: BLE001 - any failure leaves the tasks, which work on every cluster
        for future in futures:
            future.release()
        return [], None


def _direct_client(client):
    """A client of ``client``'s cluster that talks to the workers directly, or None where it cannot be made."""
    from distributed import Client

    try:
        return Client(client.scheduler.address, security=client.security, direct_to_workers=True,
                      set_as_default=False, timeout=_DIRECT_TIMEOUT)
    except Exception:  # noqa: BLE001 - no second connection to the scheduler: the run's client serves
        return None


def _dask_client():
    """The dask client of joblib's active backend, or None when the backend is not dask."""
    try:
        from joblib.parallel import get_active_backend
    except ImportError:  # pragma: no cover - joblib is a dependency
        return None
    backend, _ = get_active_backend()
    return getattr(backend, "client", None) if type(backend).__name__ == "DaskDistributedBackend" else None
