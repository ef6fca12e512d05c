"""The user's path when things go wrong: per-point and batch functions, failures, pickling, timeouts, Ctrl-C.

tests/test_solve.py covers a NaN upper level (batch) and an exception in a per-point lower level with the nested
EA; these tests add the default algorithm, constraint failures, infinite values, failure counts from worker
processes, unpicklable problems, the per-call timeout and interrupting the command line.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import evobilevel as eb
from evobilevel.algorithms import Nested
from evobilevel.evaluator import Evaluator
from evobilevel.parallel import ProblemNotPicklable
from evobilevel.problem import ProblemDefinitionError

BOUNDS = ([-2.0, -2.0], [2.0, 2.0])
FAST = dict(pop_size=8, max_generations=6)


# Optimum x = (1, -1), y = x / 2 = (0.5, -0.5), F* = f* = 0. Written out term by term so that the per-point and
# the batch versions do the same floating-point operations in the same order.
def upper_point(x, y):
    return (x[0] - 1) ** 2 + (x[1] + 1) ** 2 + (y[0] - 0.5) ** 2 + (y[1] + 0.5) ** 2


def lower_point(x, y):
    return (y[0] - x[0] / 2) ** 2 + (y[1] - x[1] / 2) ** 2


def upper_batch(X, Y):
    return (X[:, 0] - 1) ** 2 + (X[:, 1] + 1) ** 2 + (Y[:, 0] - 0.5) ** 2 + (Y[:, 1] + 0.5) ** 2


def lower_batch(X, Y):
    return (Y[:, 0] - X[:, 0] / 2) ** 2 + (Y[:, 1] - X[:, 1] / 2) ** 2


def lower_constraint_point(x, y):
    return np.array([y[0] + y[1] - 1.0])  # inactive at the optimum


def lower_constraint_batch(X, Y):
    return (Y[:, 0] + Y[:, 1] - 1.0)[:, None]


# ------------------------------------------------------------------------ per-point and batch functions
def test_per_point_and_batch_functions_give_the_same_run():
    point = eb.Problem(upper_point, lower_point, BOUNDS, BOUNDS, lower_constraints=lower_constraint_point,
                       vectorized=False, name="toy")
    batch = eb.Problem(upper_batch, lower_batch, BOUNDS, BOUNDS, lower_constraints=lower_constraint_batch,
                       vectorized=True, name="toy")
    a, b = (eb.solve(p, seed=3, max_ul_evals=300) for p in (point, batch))
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert (a.F, a.f, a.n_ul_evals, a.n_ll_evals, a.ll_gap) == (b.F, b.f, b.n_ul_evals, b.n_ll_evals, b.ll_gap)
    assert a.feasible and a.F < 1e-3
    assert np.allclose(a.x, [1, -1], atol=0.05)
    # The constraint count was learnt from the first evaluation (not given).
    assert point.n_ll_constraints == batch.n_ll_constraints == 1


def test_per_point_function_returning_a_vector_is_a_definition_error():
    p = eb.Problem(lambda x, y: np.array([1.0, 2.0]), lower_point, BOUNDS, BOUNDS, name="bad")
    with pytest.raises(ProblemDefinitionError, match="bad: upper returned shape"):
        eb.solve(p, algorithm=Nested(**FAST))


# ------------------------------------------------------------------------ failures
def _exploding_lower(x, y):
    if y[0] > 1.5:
        raise FloatingPointError("solver diverged")
    if y[1] > 1.5:
        return math.inf
    return lower_point(x, y)


def test_failures_with_the_default_algorithm_are_counted_reported_and_saved(tmp_path):
    def upper(x, y):
        return math.nan if x[0] < -1.5 else upper_point(x, y)

    p = eb.Problem(upper, _exploding_lower, BOUNDS, BOUNDS, name="failing")
    r = eb.solve(p, seed=0, max_ul_evals=300)
    assert r.n_ul_failed > 0 and r.n_ll_failed > 0
    # With failures at both levels, the upper level's first message is the one kept.
    assert r.first_error.startswith("upper-level objective returned nan at x=[")
    assert r.feasible and math.isfinite(r.F) and r.x[0] >= -1.5 and r.y[0] <= 1.5 and r.y[1] <= 1.5
    assert r.F < 1e-2
    assert f"failed      UL {r.n_ul_failed}, LL {r.n_ll_failed}; first: upper-level objective" in r.summary()
    r.to_json(tmp_path / "run.json")
    back = eb.load_result(tmp_path / "run.json")
    assert (back.n_ul_failed, back.n_ll_failed, back.first_error) == (r.n_ul_failed, r.n_ll_failed, r.first_error)


def test_failing_constraint_functions_make_points_infeasible_not_best():
    def upper_constraints(X, Y):
        G = (X[:, 0] + X[:, 1] - 10.0)[:, None]  # always satisfied where it is defined
        return np.where(X[:, :1] > 0.9, np.nan, G)  # ... but undefined next to the optimum

    def lower_constraints(x, y):
        if y[0] < -1.5:
            raise ValueError("constraint model out of range")
        return np.array([-1.0])

    p = eb.Problem(upper_batch, lower_batch, BOUNDS, BOUNDS, upper_constraints=upper_constraints,
                   n_ul_constraints=1, vectorized=True, name="constraints")
    r = eb.solve(p, algorithm=Nested(**FAST), seed=1)
    assert r.n_ul_failed > 0 and "constraint returned [nan]" in r.first_error
    assert r.feasible and r.x[0] <= 0.9

    q = eb.Problem(upper_point, lower_point, BOUNDS, BOUNDS, lower_constraints=lower_constraints,
                   n_ll_constraints=1, name="constraints")
    r = eb.solve(q, algorithm=Nested(**FAST), seed=1)
    assert r.n_ll_failed > 0 and r.first_error == "ValueError: constraint model out of range"
    assert r.feasible and r.y[0] >= -1.5


def test_failure_counts_from_worker_processes_are_summed():
    p = eb.Problem(upper_point, _exploding_lower, BOUNDS, BOUNDS, name="failing")
    runs = [eb.solve(p, algorithm=Nested(**FAST), seed=5, n_jobs=n, chunk_size=2) for n in (1, 2)]
    a, b = runs
    assert a.n_ll_failed > 0
    assert (a.n_ll_failed, a.n_ul_failed, a.first_error) == (b.n_ll_failed, b.n_ul_failed, b.first_error)
    assert np.array_equal(a.x, b.x)


# ------------------------------------------------------------------------ pickling
def test_unpicklable_problem_with_several_jobs_names_the_fix():
    lock = threading.Lock()

    def upper(X, Y):
        with lock:  # e.g. guarding a shared simulator handle
            return upper_batch(X, Y)

    p = eb.Problem(upper, lower_batch, BOUNDS, BOUNDS, vectorized=True, name="locked")
    with pytest.raises(ProblemNotPicklable) as info:
        eb.solve(p, algorithm=Nested(**FAST), n_jobs=2, chunk_size=2)
    message = str(info.value)
    assert "'locked'" in message and "upper" in message and "lock" in message
    assert "n_jobs=1" in message and "inside the function" in message
    assert isinstance(info.value, ValueError)
    # The same problem runs inline.
    assert eb.solve(p, algorithm=Nested(**FAST), n_jobs=1).feasible


# ------------------------------------------------------------------------ timeout
def _sleepy_upper(calls: list, slow_calls: set, seconds: float):
    """A per-point upper level that hangs for ``seconds`` on the call numbers in ``slow_calls``."""

    def upper(x, y):
        calls.append(1)
        if len(calls) in slow_calls:
            time.sleep(seconds)
        return upper_point(x, y)

    return upper


needs_alarm = pytest.mark.skipif(
    not hasattr(signal, "setitimer") or signal.getitimer(signal.ITIMER_REAL)[0] > 0,
    reason="the timeout needs SIGALRM, unused by anything else",
)


@needs_alarm
def test_timeout_turns_hung_calls_into_failures_and_the_run_goes_on():
    handler_before = signal.getsignal(signal.SIGALRM)
    calls: list = []
    p = eb.Problem(_sleepy_upper(calls, {3, 10, 40}, seconds=30.0), lower_point, BOUNDS, BOUNDS, timeout=0.2,
                   name="hangs")
    start = time.perf_counter()
    r = eb.solve(p, algorithm=Nested(**FAST), seed=0)
    elapsed = time.perf_counter() - start
    assert elapsed < 15  # three calls of 30 s each were cut short
    assert r.n_ul_failed == 3 and r.first_error == "TimeoutError: upper took more than 0.2 s"
    assert r.feasible and math.isfinite(r.F) and len(calls) > 40
    # Nothing of the timer is left behind.
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) == handler_before


@needs_alarm
def test_timeout_of_a_batch_fails_the_whole_batch():
    n_calls = [0]

    def lower(X, Y):
        n_calls[0] += 1
        if n_calls[0] == 2:
            time.sleep(30)
        return lower_batch(X, Y)

    p = eb.Problem(upper_batch, lower, BOUNDS, BOUNDS, vectorized=True, timeout=0.2, name="batch")
    ev = Evaluator(p)
    X, Y = np.zeros((5, 2)), np.ones((5, 2))
    assert not ev.lower(X, Y).failed.any()
    second = ev.lower(X, Y)
    assert second.failed.all() and np.isinf(second.values).all()
    assert ev.ll.n_failed == 5 and ev.ll.first_error == "TimeoutError: lower took more than 0.2 s"
    assert not ev.lower(X, Y).failed.any()
    # Called directly (no evaluator), the timeout raises.
    n_calls[0] = 1
    with pytest.raises(TimeoutError, match="lower took more than 0.2 s"):
        p.lower(X, Y)


def _evaluate_in_worker(problem, X, Y):
    ev = Evaluator(problem)
    out = ev.upper(X, Y)
    return out.failed.tolist(), ev.ul.first_error


@needs_alarm
def test_timeout_works_in_process_workers():
    from joblib import Parallel, delayed

    def upper(x, y):
        if x[0] > 0:
            time.sleep(30)
        return upper_point(x, y)

    p = eb.Problem(upper, lower_point, BOUNDS, BOUNDS, timeout=0.3, name="workers")
    X = np.array([[-1.0, 0.0], [1.0, 0.0]])
    start = time.perf_counter()
    results = Parallel(n_jobs=2)(delayed(_evaluate_in_worker)(p, X[i:], np.zeros((2 - i, 2))) for i in range(2))
    assert time.perf_counter() - start < 20
    assert results[0] == ([False, True], "TimeoutError: upper took more than 0.3 s")
    assert results[1] == ([True], "TimeoutError: upper took more than 0.3 s")


def test_timeout_outside_the_main_thread_warns_and_runs_unguarded():
    def upper(x, y):
        time.sleep(0.3)
        return upper_point(x, y)

    p = eb.Problem(upper, lower_point, BOUNDS, BOUNDS, timeout=0.05, name="threaded")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ThreadPoolExecutor(1) as pool:
            F, _ = pool.submit(p.upper, [1.0, -1.0], [0.5, -0.5]).result()
            pool.submit(p.upper, [1.0, -1.0], [0.5, -0.5]).result()
    assert F == 0.0  # the call ran to completion
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "timeout=0.05 s is not applied" in messages[0] and "main thread" in messages[0]


@pytest.mark.parametrize("timeout", [0, -1, math.inf, "soon"])
def test_bad_timeout_is_a_definition_error(timeout):
    with pytest.raises(ProblemDefinitionError, match="timeout"):
        eb.Problem(upper_point, lower_point, BOUNDS, BOUNDS, timeout=timeout, name="p")


# ------------------------------------------------------------------------ Ctrl-C
SLOW_PROBLEM = """
import time
from pathlib import Path

import numpy as np

import evobilevel as eb

STARTED = Path(__file__).with_suffix(".started")


def upper(X, Y):
    return ((X - 1) ** 2).sum(axis=1) + (Y**2).sum(axis=1)


def lower(X, Y):
    STARTED.touch()
    time.sleep(0.002)  # a slow simulator; Ctrl-C arrives while it runs, under the timeout's alarm
    return ((Y - X) ** 2).sum(axis=1)


problem = eb.Problem(upper, lower, ([-2, -2], [2, 2]), ([-2, -2], [2, 2]), vectorized=True, timeout=10,
                     name="slow")
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_on_the_command_line_prints_and_saves_the_best_so_far(tmp_path):
    problem_file = tmp_path / "slow.py"
    problem_file.write_text(textwrap.dedent(SLOW_PROBLEM))
    out = tmp_path / "run.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "evobilevel.cli", "solve", str(problem_file), "--algorithm", "nested", "--out",
         str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        started = tmp_path / "slow.started"
        deadline = time.monotonic() + 60
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), proc.communicate()
        time.sleep(1.0)  # a few generations in
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "interrupted (KeyboardInterrupt); best result so far" in stdout
    assert "Traceback" not in stderr
    data = json.loads(out.read_text())
    assert data["interrupted"] is True and data["success"] is False
    assert data["n_ll_evals"] > 0 and math.isfinite(data["F"])
    assert eb.load_result(out).interrupted


# ------------------------------------------------------------------------- runs that cannot succeed
def _smd1_with(lower=None, lower_constraints=None, upper=None):
    base = eb.benchmarks.get("SMD1", ul_dim=3, ll_dim=3)
    return eb.Problem(upper or (lambda x, y: float(base.upper(x, y)[0])),
                      lower or (lambda x, y: float(base.lower(x, y)[0])), base.ul_bounds, base.ll_bounds,
                      lower_constraints=lower_constraints, name="broken", optimum=base.optimum)


def _raise(x, y):
    raise RuntimeError("simulator not configured")


@pytest.mark.parametrize("algorithm", ["bleaq", "nested"])
def test_a_lower_level_that_always_raises_ends_the_run_early_naming_the_error(algorithm):
    from evobilevel.evidence import FAILURE_EVIDENCE

    r = eb.solve(_smd1_with(lower=_raise), algorithm=algorithm, seed=0)
    assert not r.success and not r.feasible
    assert r.message.startswith(f"every one of the {r.n_ll_evals} lower-level evaluations failed")
    assert "RuntimeError: simulator not configured" in r.message
    assert FAILURE_EVIDENCE <= r.n_ll_evals == r.n_ll_failed < 5000 and r.n_ul_evals == 0


@pytest.mark.parametrize("algorithm", ["bleaq", "nested"])
def test_an_upper_level_that_always_raises_ends_the_run_naming_the_error(algorithm):
    from evobilevel.evidence import FAILURE_EVIDENCE

    r = eb.solve(_smd1_with(upper=_raise), algorithm=algorithm, seed=0)
    assert r.message.startswith(f"every one of the {r.n_ul_evals} upper-level evaluations failed")
    assert FAILURE_EVIDENCE <= r.n_ul_evals < 2 * FAILURE_EVIDENCE and not r.success


@pytest.mark.parametrize("algorithm", ["bleaq", "nested"])
def test_a_follower_infeasible_everywhere_ends_the_run_early(algorithm):
    r = eb.solve(_smd1_with(lower_constraints=lambda x, y: np.array([1.0 + y[0] ** 2])), algorithm=algorithm,
                 seed=0)
    assert "the follower's problem had no feasible point" in r.message and "infeasible everywhere" in r.message
    assert r.n_ll_failed == 0 and r.n_ll_evals < 12_000 and not r.success


def test_a_black_box_that_fails_in_part_of_the_box_is_solved_not_stopped():
    # The follower's simulator fails wherever x_u1[0] > 5 (a third of the leader's box): a problem to solve.
    base = eb.benchmarks.get("SMD1", ul_dim=3, ll_dim=3)

    def lower(x, y):
        if x[0] > 5:
            raise RuntimeError("out of the simulator's range")
        return float(base.lower(x, y)[0])

    r = eb.solve(_smd1_with(lower=lower), algorithm="bleaq", seed=1, target=1e-2)
    assert r.success and 0 < r.n_ll_failed < r.n_ll_evals
