"""``solve``: drive an algorithm over a problem, with budgets, a target, callbacks, history and the LL-gap check.

One run, in order:

1. the arguments are checked, and a checkpoint to resume from is read and matched against them;
2. the algorithm is set up (or restored from the checkpoint) with a :class:`~evobilevel.context.RunContext`:
   counted evaluation, the budgets, parallel lower-level solves, the run's random streams;
3. after every generation the runner records the history, tests the target, the algorithm's own rule and the
   callback, and writes a checkpoint when one is due; then the algorithm takes its next step;
4. the result is built from the algorithm's best pair, and an independent, stronger lower-level solve at its
   ``x`` measures the lower-level gap (:mod:`~evobilevel.lowercheck`; per follower where there are several).

A resumed run gives exactly the result of the uninterrupted run: the checkpoint holds the algorithm's state and
every random stream's position.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np

from ._version import __version__
from .algorithms import check_objectives, default_algorithm, make_algorithm
from .algorithms.base import Algorithm, Candidate
from .budget import BudgetExhausted, check_budgets, describe_budgets
from .checkpoint import check_same_run, load_checkpoint, problem_identity, write_checkpoint
from .context import RunContext
from .evidence import HopelessRun
from .integrality import integrality_record
from .lowercheck import check_lower, follower_answers, ll_gaps
from .parallel import LowerEngine
from .plain import plain
from .problem import Problem
from .progress import ProgressLine
from .result import History, Result

__all__ = ["solve", "load_checkpoint", "check_target"]


def solve(
    problem: Problem,
    algorithm: str | Algorithm | None = None,
    seed: int | None = 0,
    n_jobs: int = 1,
    max_ul_evals: int | None = None,
    max_ll_evals: int | None = None,
    target: float | None = None,
    progress: bool = False,
    callback=None,
    *,
    max_time: float | None = None,
    chunk_size: int = 4,
    tasks: str = "auto",
    check_ll: bool = True,
    max_check_evals: int | None = None,
    history_limit: int = 10_000,
    checkpoint=None,
    checkpoint_every: int = 10,
    resume=None,
) -> Result:
    """Solve a bilevel problem.

    Parameters
    ----------
    problem : Problem
    algorithm : str, Algorithm, pymoo Algorithm or None
        A name from ``evobilevel.algorithms.names()``, a configured object such as
        ``evobilevel.algorithms.Nested(pop_size=30)``, or a pymoo algorithm object (``GA()``, ``NSGA2()``, ...),
        which then takes the leader's seat while evobilevel settles the followers
        (:class:`~evobilevel.algorithms.PymooLeader`). None: BLEAQ, or pymoo's NSGA-II for a leader with several
        objectives (:func:`~evobilevel.algorithms.default_algorithm`).
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
        optimum). Success then also needs the final lower-level gap below ``target``. With a target, the run ends
        only there or at a budget: where the algorithm's own rule would stop, it restarts instead (up to its restart
        limit), as in the published protocol of evaluations to a target.
    progress : bool
        Print the budgets in force, then show a one-line progress display on standard error: generation, best
        ``F``, evaluations per level and, when a budget applies, an estimate of the time left.
    callback : callable, optional
        ``callback(record)`` after every generation with its history record; returning ``True`` stops the run
        (with ``checkpoint`` given, a checkpoint of that generation is written first, so the run can go on later).
    max_time : float, optional
        Wall-time budget in seconds (a resumed run counts its time before the checkpoint). The run stops before
        the next evaluation once it is spent; a batch of lower-level solves that has started finishes, and the
        lower-level check at the end is not counted in it. Where a run stops then depends on the machine, so a
        run stopped by time is not reproducible.
    chunk_size : int
        Upper-level points per chunk of lower-level solves (each chunk has its own random stream).
    tasks : {"auto", "rows", "evaluations"}
        What a parallel task is, for ``n_jobs`` other than 1: a chunk of lower-level solves run by a worker
        (``"rows"``: few round trips, right for cheap functions), or a part of a batch of evaluations while the
        solves run here (``"evaluations"``: keeps every worker busy where a phase has fewer chunks than workers,
        right for expensive black boxes). ``"auto"`` chooses per batch from the measured cost of an evaluation
        and of a round trip. Results are the same whichever is used.
    check_ll : bool
        Run the independent lower-level check at the final ``x`` that gives ``ll_gap``; its evaluations are
        reported as ``n_ll_evals_check`` and go through the same engine as the run's (in parallel for ``n_jobs``
        other than 1).
    max_check_evals : int, optional
        Most evaluations the check may spend (none: it runs to its own convergence).
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
        For a leader with several objectives, ``result.front`` holds the non-dominated pairs found, each with its
        lower-level gap, and ``x, y, F, f`` one balanced pair of them (see :class:`~evobilevel.result.Result`).

    Raises
    ------
    ValueError
        Invalid arguments, an algorithm that cannot serve the leader's number of objectives, or ``resume`` naming
        a file that is not a checkpoint of this evobilevel version, or a checkpoint of a run with other problem,
        algorithm or protocol settings.
    FileNotFoundError
        ``resume`` does not exist.

    Notes
    -----
    Memory does not grow with the number of generations in the runner: the history keeps at most
    ``history_limit`` records, and the lower-level solves of a generation are released when it ends. The
    algorithms keep their archives in ring buffers of fixed capacity (``archive_size``); their per-generation
    convergence record is one float per generation.
    """
    _check_arguments(problem, max_ul_evals, max_ll_evals, max_time, target, checkpoint_every, history_limit)
    check_budgets(max_check_evals, None)
    configured = make_algorithm(default_algorithm(problem) if algorithm is None else algorithm)
    check_objectives(configured, problem)
    saved = None if resume is None else load_checkpoint(resume)
    if saved is not None and seed is None:
        seed = saved["arguments"]["seed"]
    seed_seq = np.random.SeedSequence(seed)
    arguments = _arguments(problem, configured, seed_seq, max_ul_evals=max_ul_evals, max_ll_evals=max_ll_evals,
                           max_time=max_time, target=target, chunk_size=chunk_size, n_jobs=n_jobs, check_ll=check_ll,
                           max_check_evals=max_check_evals, history_limit=history_limit,
                           checkpoint_every=checkpoint_every)
    if saved is not None:
        check_same_run(saved["arguments"], arguments, resume)
    run = _Run(problem, copy.deepcopy(configured), seed_seq, arguments, saved)
    run.callback, run.checkpoint = callback, checkpoint
    run.display = ProgressLine(enabled=progress, budgets=(max_ul_evals, max_ll_evals, max_time))
    run.display.announce(describe_budgets(max_ul_evals, max_ll_evals, max_time, target))
    with LowerEngine(n_jobs=n_jobs, chunk_size=chunk_size, tasks=tasks) as engine:
        run.drive(engine)
        return run.result(check_ll)


def _arguments(problem: Problem, configured: Algorithm, seed_seq: np.random.SeedSequence, **settings) -> dict:
    """What identifies a run, as a checkpoint records it and a resumed run must match: the problem, the algorithm
    with its settings, the seed's entropy and the run's ``settings`` (budgets, target, chunking, ...), in the
    order a checkpoint has always stored them."""
    return {
        "problem": problem_identity(problem),
        "algorithm": {"name": configured.name, "settings": plain(configured.settings())},
        "seed": int(seed_seq.entropy),
        **settings,
    }


def check_target(target) -> None:
    """Raise ValueError unless ``target`` is None or a positive number."""
    if target is not None and not (isinstance(target, (int, float)) and target > 0):
        raise ValueError(f"target must be a positive number, got {target!r}")


def _check_arguments(problem, max_ul_evals, max_ll_evals, max_time, target, checkpoint_every,
                     history_limit) -> None:
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be an evobilevel.Problem, got {type(problem).__name__}")
    check_budgets(max_ul_evals, max_ll_evals, max_time)
    for label, value, least in (("checkpoint_every", checkpoint_every, 1), ("history_limit", history_limit, 3)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"{label} must be an integer of at least {least}, got {value!r}")
    check_target(target)
    if target is not None and problem.optimum is None:
        raise ValueError(f"target needs a known optimum, and {problem.name} has none")


class _Run:
    """One call of :func:`solve`: the algorithm, its context, the history and how the run ended.

    Parameters
    ----------
    problem : Problem
    algo : Algorithm
        This run's own copy of the configured algorithm.
    seed_seq : SeedSequence
    arguments : dict
        The call's arguments as stored in checkpoints.
    saved : dict, optional
        The checkpoint to resume from.
    """

    callback = None
    checkpoint = None
    display: ProgressLine

    def __init__(self, problem: Problem, algo: Algorithm, seed_seq: np.random.SeedSequence, arguments: dict,
                 saved: dict | None):
        self.problem, self.algo, self.seed_seq, self.arguments, self.saved = problem, algo, seed_seq, arguments, saved
        self.run_seed, self.check_seed = seed_seq.spawn(2)
        self.optimum = problem.optimum
        self.target = arguments["target"]
        self.history = History(max_records=arguments["history_limit"])
        for record in saved["history"] if saved else ():
            # Appending (rather than adopting the list) applies a history_limit lowered since the checkpoint.
            self.history.append(record)
        self.finished = bool(saved and saved["finished"])
        self.generation = saved["generation"] if saved else 0
        self.start = time.perf_counter() - (saved["elapsed"] if saved else 0.0)
        self.message = saved["message"] if self.finished else ""
        self.target_reached = bool(self.finished and saved["target_reached"])
        self.interrupted = False
        self.ctx: RunContext | None = None

    # ------------------------------------------------------------------ the loop
    def drive(self, engine: LowerEngine) -> None:
        """Set the algorithm up (or restore it) and step it until something ends the run."""
        args = self.arguments
        self.engine = engine
        self.ctx = RunContext(self.problem, engine, self.run_seed, args["max_ul_evals"], args["max_ll_evals"],
                              args["max_time"], self.start, target=self.target)
        try:
            if self.saved is None:
                self.algo.setup(self.ctx)
            else:
                self.ctx.restore(self.saved["context"])
                self.algo.restore(self.ctx, self.saved["algorithm_state"])
            # A resumed run continues right after the checkpointed generation's record and stop tests.
            recorded = self.saved is not None
            while not self.finished:
                if not recorded and self._after_generation():
                    break
                recorded = False
                self.generation += 1
                self.algo.step(self.ctx)
        except (BudgetExhausted, HopelessRun) as stop:
            self.message, self.finished = str(stop), True
            self.history.append(self._record())
        except KeyboardInterrupt:
            # The algorithm may be half-way through a generation: its state is not saved, the last checkpoint stays.
            self.message, self.interrupted = "interrupted (KeyboardInterrupt); best result so far", True
        finally:
            self.display.close()
        if self.finished:
            self._save(done=True)

    def _after_generation(self) -> bool:
        """Record the generation and apply the stop tests in order; whether the run stops here."""
        record = self._record()
        self.history.append(record)
        self.display.update(record)
        if self.target is not None and _reached(record, self.target):
            self.target_reached, self.message = True, f"target {self.target:g} reached at both levels"
            self.finished = True
        elif self.algo.converged:
            self.message, self.finished = self.algo.stop_message or "converged", True
        elif self.callback is not None and self.callback(record):
            self._save(done=False)
            self.message = "stopped by callback"
            return True
        elif self.generation % self.arguments["checkpoint_every"] == 0:
            self._save(done=False)
        return self.finished

    def _record(self) -> dict:
        """The history record of the current generation."""
        best, ctx = self._answer(), self.ctx
        record = {
            "generation": self.generation,
            "n_ul_evals": ctx.n_ul_evals,
            "n_ll_evals": ctx.n_ll_evals,
            "best_F": None if best is None or np.ndim(best.F) else best.F,  # no best F on a front
            "best_f": None if best is None else best.f,
            "feasible": None if best is None else best.feasible,
            "ul_error": None,
            "ll_error": None,
            "elapsed": time.perf_counter() - self.start,
        }
        if self.optimum is not None and best is not None:
            record["ul_error"], record["ll_error"] = self.optimum.errors(best.F, best.f)
        record.update(self.algo.record())
        return record

    def _answer(self) -> Candidate | None:
        """The answer the run reports: with a target, the first of the algorithm's answers within it (an attempt
        may find the listed optimum while an earlier one kept another optimum of the leader, TP2's and TP8's
        ``x = (0, 0)``), otherwise its incumbent."""
        answers = self.algo.answers()
        if self.target is not None and self.optimum is not None:
            for answer in answers:
                if np.ndim(answer.F) == 0 and _within(answer, self.optimum, self.target):
                    return answer
        return answers[0] if answers else None

    def _save(self, done: bool) -> None:
        if self.checkpoint is None:
            return
        write_checkpoint(self.checkpoint, {
            "arguments": self.arguments, "algorithm_state": self.algo.state, "context": self.ctx.state(),
            "history": self.history.records, "generation": self.generation,
            "elapsed": time.perf_counter() - self.start, "finished": done, "message": self.message,
            "target_reached": self.target_reached,
        })

    # ---------------------------------------------------------------- the result
    def result(self, check_ll: bool) -> Result:
        """The run's result; with ``check_ll``, the lower-level gap at its ``x`` measured independently."""
        best = self._answer()
        if best is None:
            best = _nothing_found(self.problem)
        result = self._result(best)
        front = self.algo.front()
        try:
            if front is not None:
                result.front = front
                if check_ll:
                    self._check_front(result)
            elif check_ll and math.isfinite(best.f):
                result.ll_gap, result.n_ll_evals_check = check_lower(
                    self.engine, self.problem, best, self.check_seed, self.arguments["max_check_evals"],
                    result.followers)
        except KeyboardInterrupt:
            result.interrupted = True
            result.message += "; lower-level check interrupted (no ll_gap)"
        result.success = _success(result, self.algo, self.target)
        if not result.success and self.target_reached:
            result.message += f"; but the lower-level gap {result.ll_gap:.3g} exceeds the target"
        result.elapsed = time.perf_counter() - self.start
        return result

    def _check_front(self, result: Result) -> None:
        """Every front pair's lower-level gap; the result's ``ll_gap`` is the largest of them."""
        front = result.front
        front.ll_gap, result.n_ll_evals_check = ll_gaps(self.problem, front.X, front.f, np.zeros(len(front)),
                                                        self.check_seed, self.engine)
        result.ll_gap = float(front.ll_gap.max()) if len(front) else None

    def _result(self, best: Candidate) -> Result:
        ev, problem = self.ctx.evaluator, self.problem
        ul_error = ll_error = None
        if self.optimum is not None and math.isfinite(best.F):
            ul_error, ll_error = self.optimum.errors(best.F, best.f)
        return Result(
            problem=problem.name,
            problem_settings=problem.settings,
            algorithm=self.algo.name,
            algorithm_settings=self.algo.settings(),
            seed=int(self.seed_seq.entropy),
            n_jobs=self.arguments["n_jobs"],
            x=np.asarray(best.x, dtype=float),
            y=np.asarray(best.y, dtype=float),
            F=float(best.F) if np.ndim(best.F) == 0 else np.array(best.F, dtype=float),
            f=float(best.f),
            feasible=bool(best.feasible),
            success=False,
            message=self.message,
            n_ul_evals=ev.n_ul_evals,
            n_ll_evals=ev.n_ll_evals,
            ul_error=ul_error,
            ll_error=ll_error,
            target=self.target,
            target_reached=self.target_reached,
            interrupted=self.interrupted,
            max_ul_evals=self.arguments["max_ul_evals"],
            max_ll_evals=self.arguments["max_ll_evals"],
            max_time=self.arguments["max_time"],
            n_ul_failed=ev.ul.n_failed,
            n_ll_failed=ev.ll.n_failed,
            first_error="; ".join(e for e in (ev.ul.first_error, ev.ll.first_error) if e) or None,  # both levels
            integrality=integrality_record(problem),
            followers=follower_answers(problem, np.asarray(best.y, dtype=float), ev.followers),
            version=__version__,
            history=self.history,
        )


def _close(feasible, ul_error: float, ll_error: float, target: float) -> bool:
    """Whether a feasible answer with these errors is within ``target`` at both levels."""
    return bool(feasible) and ul_error < target and ll_error < target


def _reached(record: dict, target: float) -> bool:
    """Whether the answer of a history record is within ``target``."""
    return _close(record["feasible"], record["ul_error"], record["ll_error"], target)


def _within(answer: Candidate, optimum, target: float) -> bool:
    """Whether ``answer`` is feasible and within ``target`` of ``optimum`` at both levels (an infinite or NaN F
    never is: its error is not below the target)."""
    return _close(answer.feasible, *optimum.errors(answer.F, answer.f), target)


def _nothing_found(problem: Problem) -> Candidate:
    return Candidate(np.full(problem.ul_dim, np.nan), np.full(problem.ll_dim, np.nan), math.inf, math.inf,
                     math.inf, math.inf)


def _success(result: Result, algo: Algorithm, target: float | None) -> bool:
    if not result.feasible:
        return False
    if target is None:
        return bool(algo.converged)
    return result.target_reached and (result.ll_gap is None or result.ll_gap <= target)
