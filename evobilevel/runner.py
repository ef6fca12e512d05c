"""``solve``: drive an algorithm over a problem, with budgets, a target, callbacks, history and the LL-gap check.

A run can write checkpoints (the whole state between two generations) and be resumed from one; the resumed run
gives exactly the result of the uninterrupted run, because the state includes every random stream's position.
"""

from __future__ import annotations

import copy
import math
import pickle
import time
from pathlib import Path

import numpy as np

from ._version import __version__
from .algorithms import make_algorithm
from .algorithms.base import Algorithm, Candidate
from .context import BudgetStop, RunContext
from .evaluator import Evaluator
from .lower import check_solver
from .parallel import LowerEngine
from .problem import Problem
from .progress import ProgressLine
from .result import History, Result, write_bytes_atomic

__all__ = ["solve", "load_checkpoint", "CHECKPOINT_FORMAT_VERSION"]

CHECKPOINT_FORMAT_VERSION = 1
"""Version of the checkpoint layout; a checkpoint of another version is refused."""

_CHECKPOINT_FORMAT = "evobilevel-checkpoint"

# Arguments of solve() that change the numbers of a run: a checkpoint only resumes under the same values.
_BINDING_ARGUMENTS = ("problem", "algorithm", "seed", "max_ul_evals", "max_ll_evals", "target", "chunk_size")


def solve(
    problem: Problem,
    algorithm: str | Algorithm = "bleaq",
    seed: int | None = 0,
    n_jobs: int = 1,
    max_ul_evals: int | None = None,
    max_ll_evals: int | None = None,
    target: float | None = None,
    progress: bool = False,
    callback=None,
    *,
    chunk_size: int = 4,
    check_ll: bool = True,
    history_limit: int = 10_000,
    checkpoint=None,
    checkpoint_every: int = 10,
    resume=None,
) -> Result:
    """Solve a bilevel problem.

    Parameters
    ----------
    problem : Problem
    algorithm : str or Algorithm
        A name from ``evobilevel.algorithms.names()`` or a configured object such as
        ``evobilevel.algorithms.Nested(pop_size=30)``.
    seed : int or None
        Seed of the run's one :class:`numpy.random.SeedSequence`; the same seed gives the same result for any
        ``n_jobs``. ``None`` draws fresh entropy (recorded in the result).
    n_jobs : int
        Processes for the lower-level solves (1: inline; -1: all cores). Any joblib backend configured around
        the call is used: ``joblib.parallel_config(backend="dask")`` with a ``dask.distributed.Client`` sends
        them to a cluster, where ``n_jobs`` only needs to be other than 1 (dask uses all its workers).
    max_ul_evals, max_ll_evals : int, optional
        Evaluation budgets per level; never exceeded.
    target : float, optional
        Benchmark protocol: stop as soon as ``|F - F*| < target`` and ``|f - f*| < target`` (needs a known
        optimum). Success then also needs the final lower-level gap below ``target``.
    progress : bool
        Show a one-line progress display on standard error.
    callback : callable, optional
        ``callback(record)`` after every generation with its history record; returning ``True`` stops the run
        (with ``checkpoint`` given, a checkpoint of that generation is written first, so the run can go on later).
    chunk_size : int
        Upper-level points per parallel lower-level task.
    check_ll : bool
        Run the independent lower-level check at the final ``x`` that gives ``ll_gap``.
    history_limit : int
        Most history records kept, at least 3 (thinned evenly beyond: the first and newest records stay).
    checkpoint : path, optional
        Write the run's whole state to this file every ``checkpoint_every`` generations (from generation 0, after
        the initial population), when a callback stops the run, and when the run ends (except by
        ``KeyboardInterrupt``, which leaves the previous checkpoint). Writes are atomic: the file always holds a
        complete checkpoint. The file is a pickle: resume only from checkpoints you trust.
    checkpoint_every : int
        Generations between checkpoints.
    resume : path, optional
        Continue the run saved in this checkpoint; the result equals that of the uninterrupted run (apart from
        timings). The problem, ``algorithm`` (name and settings), ``seed`` (``None`` takes the checkpoint's),
        budgets, ``target`` and ``chunk_size`` must be those of the saved run; ``n_jobs``, ``progress``,
        ``callback``, ``check_ll``, ``history_limit`` and the checkpoint settings may change. A checkpoint of a
        finished run gives its result at once. Pass ``checkpoint`` too (it may be the same file) to keep the
        resumed run resumable.

    Returns
    -------
    Result

    Raises
    ------
    ValueError
        Invalid arguments, or ``resume`` naming a file that is not a checkpoint of this evobilevel version, or a
        checkpoint of a run with other problem, algorithm or protocol settings.
    FileNotFoundError
        ``resume`` does not exist.

    Notes
    -----
    Memory does not grow with the number of generations in the runner: the history keeps at most
    ``history_limit`` records, and the lower-level solves of a generation are released when it ends. The
    algorithms keep their archives in ring buffers of fixed capacity (``archive_size``); their per-generation
    convergence record is one float per generation.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be an evobilevel.Problem, got {type(problem).__name__}")
    check_budgets(max_ul_evals, max_ll_evals)
    for label, value, least in (("checkpoint_every", checkpoint_every, 1), ("history_limit", history_limit, 3)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"{label} must be an integer of at least {least}, got {value!r}")
    optimum = problem.optimum
    check_target(target)
    if target is not None and optimum is None:
        raise ValueError(f"target needs a known optimum, and {problem.name} has none")
    configured = make_algorithm(algorithm)
    saved = None
    if resume is not None:
        saved = load_checkpoint(resume)
        if seed is None:
            seed = saved["arguments"]["seed"]
    seed_seq = np.random.SeedSequence(seed)
    arguments = {
        "problem": _problem_identity(problem),
        "algorithm": {"name": configured.name, "settings": _plain(configured.settings())},
        "seed": int(seed_seq.entropy),
        "max_ul_evals": max_ul_evals,
        "max_ll_evals": max_ll_evals,
        "target": target,
        "chunk_size": chunk_size,
        "n_jobs": n_jobs,
        "check_ll": check_ll,
        "history_limit": history_limit,
        "checkpoint_every": checkpoint_every,
    }
    if saved is not None:
        _check_same_run(saved["arguments"], arguments, resume)
        algo = saved["algorithm"]
    else:
        algo = copy.deepcopy(configured)
    run_seed, check_seed = seed_seq.spawn(2)
    history = History(max_records=history_limit)
    for record in saved["history"] if saved else ():
        # Appending (rather than adopting the list) applies a history_limit lowered since the checkpoint.
        history.append(record)
    display = ProgressLine(enabled=progress)
    finished = bool(saved and saved["finished"])
    generation = saved["generation"] if saved else 0
    start = time.perf_counter() - (saved["elapsed"] if saved else 0.0)
    message = saved["message"] if finished else ""
    target_reached, interrupted = bool(finished and saved["target_reached"]), False

    with LowerEngine(n_jobs=n_jobs, chunk_size=chunk_size) as engine:
        ctx = RunContext(problem, engine, run_seed, max_ul_evals, max_ll_evals)
        if saved is not None:
            ctx.restore(saved["context"])

        def save(done: bool) -> None:
            if checkpoint is not None:
                _write_checkpoint(checkpoint, {
                    "arguments": arguments, "algorithm": algo, "context": ctx.state(), "history": history.records,
                    "generation": generation, "elapsed": time.perf_counter() - start, "finished": done,
                    "message": message, "target_reached": target_reached,
                })

        try:
            if saved is None:
                algo.setup(ctx)
            # A resumed run continues right after the checkpointed generation's record and stop tests.
            recorded = saved is not None
            while not finished:
                if not recorded:
                    record = _record(generation, ctx, algo, optimum, time.perf_counter() - start)
                    history.append(record)
                    display.update(record)
                    if target is not None and _reached(record, target):
                        target_reached, message = True, f"target {target:g} reached at both levels"
                        finished = True
                        break
                    if algo.converged:
                        message, finished = algo.stop_message or "converged", True
                        break
                    if callback is not None and callback(record):
                        save(done=False)
                        message = "stopped by callback"
                        break
                    if generation % checkpoint_every == 0:
                        save(done=False)
                recorded = False
                generation += 1
                algo.step(ctx)
        except BudgetStop as stop:
            message, finished = str(stop), True
            history.append(_record(generation, ctx, algo, optimum, time.perf_counter() - start))
        except KeyboardInterrupt:
            # The algorithm may be half-way through a generation: its state is not saved, the last checkpoint stays.
            message, interrupted = "interrupted (KeyboardInterrupt); best result so far", True
        finally:
            display.close()
        if finished:
            save(done=True)

    best = algo.best()
    if best is None:
        best = _nothing_found(problem)
    result = _result(problem, algo, seed_seq, n_jobs, best, ctx, optimum, target, message, history)
    result.target_reached, result.interrupted = target_reached, interrupted
    result.max_ul_evals, result.max_ll_evals = max_ul_evals, max_ll_evals
    if check_ll and math.isfinite(best.f):
        try:
            result.ll_gap, result.n_ll_evals_check = _ll_gap(problem, best, check_seed)
        except KeyboardInterrupt:
            result.interrupted = True
            result.message += "; lower-level check interrupted (no ll_gap)"
    result.success = _success(result, algo, target)
    if not result.success and target_reached:
        result.message += f"; but the lower-level gap {result.ll_gap:.3g} exceeds the target"
    result.elapsed = time.perf_counter() - start
    return result


# ------------------------------------------------------------------------------------------------- checkpoints
def check_budgets(max_ul_evals, max_ll_evals) -> None:
    """Raise ValueError unless each budget is None or a positive integer."""
    for label, budget in (("max_ul_evals", max_ul_evals), ("max_ll_evals", max_ll_evals)):
        if budget is not None and (int(budget) != budget or budget < 1):
            raise ValueError(f"{label} must be a positive integer, got {budget!r}")


def check_target(target) -> None:
    """Raise ValueError unless ``target`` is None or a positive number."""
    if target is not None and not (isinstance(target, (int, float)) and target > 0):
        raise ValueError(f"target must be a positive number, got {target!r}")


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`solve`.

    Parameters
    ----------
    path : path

    Returns
    -------
    dict
        ``arguments`` (the run's solve arguments, the problem and algorithm as name and settings), ``algorithm``
        (the algorithm object with its state), ``context`` (see :meth:`RunContext.state`), ``history`` (list of
        records), ``generation``, ``elapsed`` (seconds), ``finished``, ``message``, ``target_reached``,
        ``version`` (evobilevel's) and ``format_version``.

    Raises
    ------
    FileNotFoundError
    ValueError
        The file is not a checkpoint, or one of another format or evobilevel version (whose algorithms may
        continue differently).
    """
    path = Path(path)
    with open(path, "rb") as fh:
        try:
            data = pickle.load(fh)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a readable checkpoint"
            raise ValueError(f"{path} is not a readable evobilevel checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict) or data.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an evobilevel checkpoint")
    if data.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        raise ValueError(f"{path} is a checkpoint of format {data.get('format_version')}; this evobilevel reads "
                         f"format {CHECKPOINT_FORMAT_VERSION}")
    if data.get("version") != __version__:
        raise ValueError(f"{path} was written by evobilevel {data.get('version')}, this is {__version__}: "
                         "a resumed run would not be the same run")
    return data


def _write_checkpoint(path, state: dict) -> None:
    """Pickle ``state`` to ``path`` through a temporary file in the same folder and a rename (atomic)."""
    import cloudpickle  # pickles algorithm objects whose settings hold lambdas; the output loads with pickle

    data = {"format": _CHECKPOINT_FORMAT, "format_version": CHECKPOINT_FORMAT_VERSION, "version": __version__,
            **state}
    try:
        payload = cloudpickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise ValueError(f"cannot write the checkpoint {path}: the run's state does not pickle "
                         f"({type(exc).__name__}: {exc})") from exc
    write_bytes_atomic(path, payload)


def _problem_identity(problem: Problem) -> dict:
    """What identifies a problem instance without its functions: name, sizes, settings and bounds."""
    return {
        "name": problem.name,
        "ul_dim": problem.ul_dim,
        "ll_dim": problem.ll_dim,
        "settings": _plain(problem.settings),
        "ul_bounds": _plain(problem.ul_bounds),
        "ll_bounds": _plain(problem.ll_bounds),
    }


def _check_same_run(saved: dict, now: dict, path) -> None:
    """Raise ValueError naming every binding argument in which this call differs from the checkpointed run."""
    differences = []
    for key in _BINDING_ARGUMENTS:
        was, is_now = saved.get(key), now[key]
        if key == "algorithm" and was["name"] != is_now["name"]:
            # Settings of two different algorithms differ everywhere; the names say it all.
            was, is_now = was["name"], is_now["name"]
        if was != is_now:
            differences.append(f"{key}: {_difference(was, is_now)}")
    if differences:
        raise ValueError(f"cannot resume from {path}: this call differs from the checkpointed run in "
                         + "; ".join(differences))


def _difference(saved, now) -> str:
    """``checkpoint X, now Y``, narrowed to the differing entries where both are dicts."""
    if isinstance(saved, dict) and isinstance(now, dict):
        keys = [k for k in {**saved, **now} if saved.get(k) != now.get(k)]
        return ", ".join(f"{k} {_difference(saved.get(k), now.get(k))}" for k in keys)
    return f"checkpoint {saved!r}, now {now!r}"


def _plain(value):
    """Plain Python values (lists for arrays and tuples, floats and ints for numpy scalars), for comparisons."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def _record(generation: int, ctx: RunContext, algo: Algorithm, optimum, elapsed: float) -> dict:
    best = algo.best()
    record = {
        "generation": generation,
        "n_ul_evals": ctx.n_ul_evals,
        "n_ll_evals": ctx.n_ll_evals,
        "best_F": None if best is None else best.F,
        "best_f": None if best is None else best.f,
        "feasible": None if best is None else best.feasible,
        "ul_error": None,
        "ll_error": None,
        "elapsed": elapsed,
    }
    if optimum is not None and best is not None:
        record["ul_error"], record["ll_error"] = optimum.errors(best.F, best.f)
    record.update(algo.record())
    return record


def _reached(record: dict, target: float) -> bool:
    return bool(record["feasible"]) and record["ul_error"] < target and record["ll_error"] < target


def _nothing_found(problem: Problem) -> Candidate:
    return Candidate(np.full(problem.ul_dim, np.nan), np.full(problem.ll_dim, np.nan), math.inf, math.inf,
                     math.inf, math.inf)


def _ll_gap(problem: Problem, best: Candidate, seed: np.random.SeedSequence) -> tuple[float, int]:
    """``f(x, y) - f(x, y_check)`` clipped at 0, from an independent and stronger solve at ``x``."""
    evaluator = Evaluator(problem)
    solution = check_solver().solve(evaluator, best.x[None, :], np.random.default_rng(seed))
    f_check, cv_check = float(solution.f[0]), float(solution.cv[0])
    if best.ll_cv > 0:
        gap = math.inf if cv_check == 0 else 0.0
    elif cv_check > 0:
        gap = 0.0
    else:
        gap = max(0.0, best.f - f_check)
    return gap, evaluator.n_ll_evals


def _success(result: Result, algo: Algorithm, target: float | None) -> bool:
    if not result.feasible:
        return False
    if target is None:
        return bool(algo.converged)
    return result.target_reached and (result.ll_gap is None or result.ll_gap <= target)


def _result(problem, algo, seed_seq, n_jobs, best, ctx, optimum, target, message, history) -> Result:
    ev = ctx.evaluator
    ul_error = ll_error = None
    if optimum is not None and math.isfinite(best.F):
        ul_error, ll_error = optimum.errors(best.F, best.f)
    return Result(
        problem=problem.name,
        problem_settings=problem.settings,
        algorithm=algo.name,
        algorithm_settings=algo.settings(),
        seed=int(seed_seq.entropy),
        n_jobs=n_jobs,
        x=np.asarray(best.x, dtype=float),
        y=np.asarray(best.y, dtype=float),
        F=float(best.F),
        f=float(best.f),
        feasible=bool(best.feasible),
        success=False,
        message=message,
        n_ul_evals=ev.n_ul_evals,
        n_ll_evals=ev.n_ll_evals,
        ul_error=ul_error,
        ll_error=ll_error,
        target=target,
        n_ul_failed=ev.ul.n_failed,
        n_ll_failed=ev.ll.n_failed,
        first_error="; ".join(e for e in (ev.ul.first_error, ev.ll.first_error) if e) or None,  # both levels
        version=__version__,
        history=history,
    )
