"""``solve``: drive an algorithm over a problem, with budgets, a target, callbacks, history and the LL-gap check."""

from __future__ import annotations

import copy
import math
import time

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
from .result import History, Result

__all__ = ["solve"]


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
) -> Result:
    """Solve a bilevel problem.

    Parameters
    ----------
    problem : Problem
    algorithm : str or Algorithm
        A name from ``evobilevel.algorithms.names()`` or a configured object such as
        ``evobilevel.algorithms.Nested(ul_pop_size=30)``.
    seed : int or None
        Seed of the run's one :class:`numpy.random.SeedSequence`; the same seed gives the same result for any
        ``n_jobs``. ``None`` draws fresh entropy (recorded in the result).
    n_jobs : int
        Processes for the lower-level solves (1: inline; -1: all cores). Any joblib backend configured around
        the call is used (e.g. ``joblib.parallel_config(backend="dask")``).
    max_ul_evals, max_ll_evals : int, optional
        Evaluation budgets per level; never exceeded.
    target : float, optional
        Benchmark protocol: stop as soon as ``|F - F*| < target`` and ``|f - f*| < target`` (needs a known
        optimum). Success then also needs the final lower-level gap below ``target``.
    progress : bool
        Show a one-line progress display on standard error.
    callback : callable, optional
        ``callback(record)`` after every generation with its history record; returning ``True`` stops the run.
    chunk_size : int
        Upper-level points per parallel lower-level task.
    check_ll : bool
        Run the independent lower-level check at the final ``x`` that gives ``ll_gap``.
    history_limit : int
        Most history records kept (thinned evenly beyond).

    Returns
    -------
    Result
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be an evobilevel.Problem, got {type(problem).__name__}")
    for label, budget in (("max_ul_evals", max_ul_evals), ("max_ll_evals", max_ll_evals)):
        if budget is not None and (int(budget) != budget or budget < 1):
            raise ValueError(f"{label} must be a positive integer, got {budget!r}")
    optimum = problem.optimum
    if target is not None:
        if not (isinstance(target, (int, float)) and target > 0):
            raise ValueError(f"target must be a positive number, got {target!r}")
        if optimum is None:
            raise ValueError(f"target needs a known optimum, and {problem.name} has none")
    algo = copy.deepcopy(make_algorithm(algorithm))
    seed_seq = np.random.SeedSequence(seed)
    run_seed, check_seed = seed_seq.spawn(2)
    history = History(max_records=history_limit)
    display = ProgressLine(enabled=progress)
    start = time.perf_counter()
    message, target_reached, interrupted = "", False, False

    with LowerEngine(n_jobs=n_jobs, chunk_size=chunk_size) as engine:
        ctx = RunContext(problem, engine, run_seed, max_ul_evals, max_ll_evals)
        generation = 0
        try:
            algo.setup(ctx)
            while True:
                record = _record(generation, ctx, algo, optimum, time.perf_counter() - start)
                history.append(record)
                display.update(record)
                if target is not None and _reached(record, target):
                    target_reached, message = True, f"target {target:g} reached at both levels"
                    break
                if algo.converged:
                    message = algo.stop_message or "converged"
                    break
                if callback is not None and callback(record):
                    message = "stopped by callback"
                    break
                generation += 1
                algo.step(ctx)
        except BudgetStop as stop:
            message = str(stop)
            history.append(_record(generation, ctx, algo, optimum, time.perf_counter() - start))
        except KeyboardInterrupt:
            message, interrupted = "interrupted (KeyboardInterrupt); best result so far", True
        finally:
            display.close()

    best = algo.best()
    if best is None:
        best = _nothing_found(problem)
    result = _result(problem, algo, seed_seq, n_jobs, best, ctx, optimum, target, message, history)
    result.target_reached, result.interrupted = target_reached, interrupted
    result.max_ul_evals, result.max_ll_evals = max_ul_evals, max_ll_evals
    if check_ll and best is not None and math.isfinite(best.f):
        result.ll_gap, result.n_ll_evals_check = _ll_gap(problem, best, check_seed)
    result.success = _success(result, algo, target)
    if not result.success and target_reached:
        result.message += f"; but the lower-level gap {result.ll_gap:.3g} exceeds the target"
    result.elapsed = time.perf_counter() - start
    return result


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
        record["ul_error"] = abs(best.F - optimum.F)
        record["ll_error"] = abs(best.f - optimum.f)
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
    gap_ok = result.ll_gap is None or result.ll_gap <= (target if target is not None else math.inf)
    if target is not None:
        return result.target_reached and gap_ok
    return bool(algo.converged)


def _result(problem, algo, seed_seq, n_jobs, best, ctx, optimum, target, message, history) -> Result:
    ev = ctx.evaluator
    ul_error = ll_error = None
    if optimum is not None and math.isfinite(best.F):
        ul_error, ll_error = abs(best.F - optimum.F), abs(best.f - optimum.f)
    return Result(
        problem=problem.name,
        problem_settings=problem.settings,
        algorithm=algo.name,
        algorithm_settings=algo.settings(),
        seed=int(seed_seq.entropy) if isinstance(seed_seq.entropy, int) else None,
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
        first_error=ev.ul.first_error or ev.ll.first_error,
        version=__version__,
        history=history,
    )
