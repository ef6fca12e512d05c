"""solve(): determinism across n_jobs, exact budgets and counts, failures that do not crash, results on disk."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

import evobilevel as eb
from evobilevel.algorithms import Nested
from evobilevel.algorithms.base import Algorithm, AlgorithmState, Candidate


def quadratic_problem(**kwargs) -> eb.Problem:
    """A smooth bilevel problem with optimum x = (1, -1), y = x / 2 (the LL response), F* = 0, f* = 0.

    Lower level: f = |y - x/2|^2 -> y*(x) = x/2. Upper level: F = |x - (1, -1)|^2 + |y - (0.5, -0.5)|^2.
    """
    target = np.array([1.0, -1.0])

    def upper(X, Y):
        return ((X - target) ** 2).sum(axis=1) + ((Y - target / 2) ** 2).sum(axis=1)

    def lower(X, Y):
        return ((Y - X / 2) ** 2).sum(axis=1)

    defaults = dict(ul_bounds=([-3, -3], [3, 3]), ll_bounds=([-2, -2], [2, 2]), vectorized=True,
                    name="quadratic", optimum=eb.Optimum(target, target / 2, 0.0, 0.0))
    defaults.update(kwargs)
    return eb.Problem(upper, lower, **defaults)


FAST = dict(pop_size=10, max_generations=15)


def test_nested_solves_a_smooth_problem_to_the_target():
    r = eb.solve(quadratic_problem(), algorithm=Nested(pop_size=12, max_generations=200), seed=1, target=1e-3)
    assert r.success, r.message
    assert r.ul_error < 1e-3 and r.ll_error < 1e-3
    assert np.allclose(r.x, [1, -1], atol=0.05)
    assert r.ll_gap is not None and r.ll_gap < 1e-3
    assert r.n_ll_evals_check > 0


@dataclass
class TwoOptima(Algorithm):
    """Holds, as a run that restarts may, two answers: its incumbent, an optimum of the leader other than the
    listed one (F = 0 at x = (1, 1), where the follower's value is 0.5, not 0), and a later attempt's best, within
    2e-4 of the listed optimum in F."""

    name = "two-optima"

    def setup(self, ctx) -> None:
        self.state = AlgorithmState()

    def step(self, ctx) -> None:
        self.state.generation += 1
        self.state.converged = self.state.generation >= 3

    def best(self) -> Candidate:
        return Candidate(np.array([1.0, 1.0]), np.array([0.5, 0.5]), 0.0, 0.5, 0.0, 0.0)

    def answers(self) -> list:
        return [self.best(), Candidate(np.array([1.0, -1.0]), np.array([0.5, -0.5]), 2e-4, 0.0, 0.0, 0.0)]


def test_with_a_target_the_run_ends_at_any_answer_it_holds_within_it_and_reports_that_one():
    r = eb.solve(quadratic_problem(), algorithm=TwoOptima(), target=1e-2)
    assert r.success and r.target_reached and len(r.history) == 1
    assert np.array_equal(r.x, [1.0, -1.0]) and r.F == 2e-4 and r.ll_gap < 1e-8
    # Without a target the incumbent is the answer.
    r = eb.solve(quadratic_problem(), algorithm=TwoOptima())
    assert np.array_equal(r.x, [1.0, 1.0]) and r.ul_error == 0.0 and r.ll_error == 0.5 and len(r.history) == 4


def test_same_seed_same_result_for_any_n_jobs():
    p = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)
    runs = [eb.solve(p, algorithm=Nested(**FAST), seed=7, n_jobs=n, chunk_size=3) for n in (1, 2)]
    a, b = runs
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert (a.F, a.f, a.n_ul_evals, a.n_ll_evals, a.ll_gap) == (b.F, b.f, b.n_ul_evals, b.n_ll_evals, b.ll_gap)
    assert np.array_equal(a.history.column("best_F"), b.history.column("best_F"))
    c = eb.solve(p, algorithm=Nested(**FAST), seed=8, chunk_size=3)
    assert not np.array_equal(a.x, c.x)


@pytest.mark.parametrize("budget", [1, 37, 500, 4321])
def test_lower_budget_is_never_exceeded(budget):
    r = eb.solve(quadratic_problem(), algorithm=Nested(**FAST), seed=0, max_ll_evals=budget)
    assert r.n_ll_evals <= budget
    if budget < 10:  # not even the first generation fits
        assert "budget" in r.message and not r.success


@pytest.mark.parametrize("budget", [5, 10, 55])
def test_upper_budget_is_never_exceeded(budget):
    r = eb.solve(quadratic_problem(), algorithm=Nested(**FAST), seed=0, max_ul_evals=budget)
    assert r.n_ul_evals <= budget
    assert "upper-level budget" in r.message


def test_counts_match_counted_calls():
    calls = {"upper": 0, "lower": 0}
    base = quadratic_problem()

    def upper(X, Y):
        calls["upper"] += len(X)
        return base.upper(X, Y)[0]

    def lower(X, Y):
        calls["lower"] += len(X)
        return base.lower(X, Y)[0]

    p = eb.Problem(upper, lower, base.ul_bounds, base.ll_bounds, vectorized=True)
    r = eb.solve(p, algorithm=Nested(**FAST), seed=2)
    assert r.n_ul_evals == calls["upper"]
    assert r.n_ll_evals + r.n_ll_evals_check == calls["lower"]
    assert r.history[-1]["n_ll_evals"] == r.n_ll_evals


def test_infeasible_lower_level_gives_a_clear_result():
    p = quadratic_problem(lower_constraints=lambda X, Y: np.ones((len(X), 1)), n_ll_constraints=1, optimum=None)
    r = eb.solve(p, algorithm=Nested(**FAST), seed=0)
    assert not r.feasible and not r.success
    assert r.n_ll_evals > 0


def test_nan_objective_region_never_becomes_best():
    base = quadratic_problem()

    def upper(X, Y):
        F = base.upper(X, Y)[0]
        return np.where(X[:, 0] > 0.5, np.nan, F)  # the true optimum region returns NaN

    p = eb.Problem(upper, base._functions["lower"][0], base.ul_bounds, base.ll_bounds, vectorized=True)
    r = eb.solve(p, algorithm=Nested(**FAST), seed=0)
    assert r.x[0] <= 0.5 and math.isfinite(r.F)
    assert r.n_ul_failed > 0 and "objective returned nan" in r.first_error


def test_exception_in_user_function_is_counted_not_raised():
    def lower(x, y):
        if y[0] > 1.5:
            raise RuntimeError("simulator diverged")
        return float(((y - x / 2) ** 2).sum())

    def upper(x, y):
        return float(((x - [1, -1]) ** 2).sum() + ((y - [0.5, -0.5]) ** 2).sum())

    p = eb.Problem(upper, lower, ([-3, -3], [3, 3]), ([-2, -2], [2, 2]), vectorized=False)
    r = eb.solve(p, algorithm=Nested(pop_size=6, max_generations=3), seed=0)
    assert r.n_ll_failed > 0
    assert r.first_error == "RuntimeError: simulator diverged"
    assert r.y[0] <= 1.5 and r.feasible


def test_callback_sees_records_and_can_stop():
    seen = []

    def callback(record):
        seen.append(record["generation"])
        return record["generation"] >= 3

    r = eb.solve(quadratic_problem(), algorithm=Nested(**FAST), seed=0, callback=callback)
    assert seen == [0, 1, 2, 3] and r.message == "stopped by callback"


def test_keyboard_interrupt_returns_best_so_far():
    def callback(record):
        if record["generation"] == 2:
            raise KeyboardInterrupt

    r = eb.solve(quadratic_problem(), algorithm=Nested(**FAST), seed=0, callback=callback)
    assert "interrupted" in r.message and math.isfinite(r.F)


def test_result_round_trips_through_json(tmp_path):
    r = eb.solve(quadratic_problem(), algorithm=Nested(**FAST), seed=4)
    path = tmp_path / "run.json"
    r.to_json(path)
    back = eb.load_result(path)
    for key in ("problem", "algorithm", "seed", "F", "f", "n_ul_evals", "n_ll_evals", "n_ll_evals_check", "ll_gap",
                "ul_error", "ll_error", "success", "message", "feasible", "algorithm_settings", "version"):
        assert getattr(back, key) == getattr(r, key), key
    assert np.array_equal(back.x, r.x) and np.array_equal(back.y, r.y)
    assert np.array_equal(back.history.column("n_ll_evals"), r.history.column("n_ll_evals"))
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left no temporary file


def test_bad_arguments_raise_clear_errors():
    p = quadratic_problem(optimum=None)
    with pytest.raises(ValueError, match="target needs a known optimum"):
        eb.solve(p, algorithm="nested", target=1e-2)
    with pytest.raises(ValueError, match="unknown algorithm"):
        eb.solve(p, algorithm="no-such")
    with pytest.raises(ValueError, match="max_ll_evals"):
        eb.solve(p, algorithm="nested", max_ll_evals=0)
    with pytest.raises(ValueError, match="n_jobs"):
        eb.solve(p, algorithm="nested", n_jobs=0)


def test_time_budget_ends_the_run_and_is_recorded():
    p = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)
    r = eb.solve(p, algorithm=Nested(**{**FAST, "max_generations": 10_000}), seed=0, max_time=0.3)
    assert r.message == "time budget of 0.3 s exhausted" and not r.success
    assert 0.3 <= r.elapsed < 5 and r.max_time == 0.3
    for bad in (0, -1.0, float("inf"), "1", True):
        with pytest.raises(ValueError, match="max_time must be a positive number of seconds"):
            eb.solve(p, algorithm="nested", max_time=bad)


def test_the_final_check_can_be_bounded_and_runs_in_the_engine():
    p = eb.benchmarks.get("SMD2", ul_dim=2, ll_dim=3)
    free = eb.solve(p, algorithm=Nested(**FAST), seed=3)
    bounded = eb.solve(p, algorithm=Nested(**FAST), seed=3, max_check_evals=120)
    assert free.n_ll_evals_check > 120 >= bounded.n_ll_evals_check > 0
    assert (bounded.n_ul_evals, bounded.n_ll_evals, bounded.F) == (free.n_ul_evals, free.n_ll_evals, free.F)
    parallel = eb.solve(p, algorithm=Nested(**FAST), seed=3, n_jobs=2)
    assert (parallel.ll_gap, parallel.n_ll_evals_check) == (free.ll_gap, free.n_ll_evals_check)


def test_progress_prints_the_budgets_then_the_best_and_an_estimate_of_the_time_left():
    import io

    from evobilevel.progress import ProgressLine

    out = io.StringIO()
    line = ProgressLine(True, out, budgets=(None, 1000, 60.0))
    line.announce("budgets: LL 1,000, time 60 s")
    line.update({"generation": 3, "n_ul_evals": 40, "n_ll_evals": 250, "best_F": 1.5, "best_f": 0.25,
                 "elapsed": 10.0})
    text = out.getvalue()
    assert text.startswith("budgets: LL 1,000, time 60 s\n")
    # A quarter of the LL budget in 10 s: 30 s left at that rate (the time budget would last 50 s).
    assert "F 1.5" in text and "LL         250" in text and "~30 s left" in text
    assert ProgressLine(True, out).time_left({"n_ul_evals": 1, "n_ll_evals": 1, "elapsed": 1.0}) is None


@pytest.mark.parametrize("tasks", ["rows", "evaluations", "auto"])
def test_row_tasks_and_evaluation_tasks_give_the_inline_result(tasks):
    # Per-point functions, so that evaluation tasks cut batches into parts that each worker evaluates point by point.
    base = eb.benchmarks.get("SMD10", ul_dim=2, ll_dim=3)

    def upper(x, y):
        F, G = base.upper(x, y)
        return F

    problem = eb.Problem(upper, lambda x, y: base.lower(x, y)[0], base.ul_bounds, base.ll_bounds,
                         upper_constraints=lambda x, y: base.upper(x, y)[1],
                         lower_constraints=lambda x, y: base.lower(x, y)[1], name="per-point SMD10",
                         optimum=base.optimum)
    algo = eb.algorithms.BLEAQ(max_generations=8)
    inline = eb.solve(problem, algorithm=algo, seed=4)
    spread = eb.solve(problem, algorithm=algo, seed=4, n_jobs=2, tasks=tasks)
    assert np.array_equal(inline.x, spread.x) and np.array_equal(inline.y, spread.y)
    assert (inline.F, inline.f, inline.n_ul_evals, inline.n_ll_evals, inline.ll_gap, inline.n_ll_evals_check) == (
        spread.F, spread.f, spread.n_ul_evals, spread.n_ll_evals, spread.ll_gap, spread.n_ll_evals_check)


def test_a_single_costly_solve_spreads_its_batches_from_the_first_timed_point(monkeypatch):
    # One lower-level problem (as the final check, or the first chunk of a run) is solved here either way; with a
    # black box costing milliseconds, its first batch's first point is timed here and the rest of that batch, and
    # every batch after it, goes to the workers.
    import time

    from evobilevel.lower import check_solver
    from evobilevel.parallel.engine import LowerEngine
    from evobilevel.parallel.spread import Spreader

    base = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)

    def slow_lower(x, y):
        time.sleep(0.004)
        return base.lower(x, y)[0]

    problem = eb.Problem(lambda x, y: base.upper(x, y)[0], slow_lower, base.ul_bounds, base.ll_bounds)
    batch_sizes, spread_sizes = [], []
    evaluate_batch, evaluate_parts = problem.evaluate_batch, Spreader._evaluate_parts

    def counted_batch(level, X, Y, log=None):
        batch_sizes.append(X.shape[0])
        return evaluate_batch(level, X, Y, log)

    def counted_parts(self, problem, level, Xs, Ys):
        spread_sizes.append(sum(X.shape[0] for X in Xs))
        return evaluate_parts(self, problem, level, Xs, Ys)

    monkeypatch.setattr(problem, "evaluate_batch", counted_batch)
    monkeypatch.setattr(Spreader, "_evaluate_parts", counted_parts)
    x = np.full((1, 2), 0.5)
    caps = np.array([300])
    with LowerEngine(n_jobs=1) as engine:
        inline, inline_counts = engine.solve(problem, check_solver(), x, np.random.SeedSequence(11), max_evals=caps)
    assert spread_sizes == [] and batch_sizes[0] > 2
    first_batch, batch_sizes[:] = batch_sizes[0], []
    with LowerEngine(n_jobs=2) as engine:
        spread, spread_counts = engine.solve(problem, check_solver(), x, np.random.SeedSequence(11), max_evals=caps)
        assert engine.seconds_per_point["lower"] >= 0.004
    assert batch_sizes[0] == 1 and spread_sizes[0] == first_batch - 1  # one point timed here, the rest spread
    assert sum(spread_sizes) + sum(batch_sizes) == spread_counts["ll"].n_evals and min(spread_sizes) >= 2
    assert np.array_equal(inline.Y, spread.Y) and np.array_equal(inline.f, spread.f)
    assert inline_counts["ll"].n_evals == spread_counts["ll"].n_evals <= 300


def _worker_pid(_index: int) -> int:
    import os
    import time

    time.sleep(0.01)  # long enough that every worker of the pool takes some of a round
    return os.getpid()


def test_spread_batches_and_row_tasks_share_one_process_pool():
    # Were the spreader to ask joblib for a pool of its own arguments, joblib would shut down the row tasks' pool
    # and start another, and the row tasks' next call would start a third: the workers' processes would change.
    from joblib import delayed

    from evobilevel.parallel.engine import LowerEngine
    from evobilevel.problem import FailureLog

    problem = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)
    X, Y = np.random.default_rng(3).uniform(-1, 1, (8, 2)), np.zeros((8, 3))
    with LowerEngine(n_jobs=2) as engine:
        pids = set(engine._parallel(delayed(_worker_pid)(i) for i in range(8)))  # the row tasks' workers
        spreader = engine._spreader_ready()
        spreader.evaluate(problem, "lower", X, Y, FailureLog(np.zeros(8, bool)))
        assert set(spreader._map(_worker_pid, range(8))) == pids
        assert set(engine._parallel(delayed(_worker_pid)(i) for i in range(8))) == pids
    assert len(pids) == 2


def test_bad_n_jobs_and_tasks_are_named():
    p = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)
    for bad in ("two", 0, -2, 1.5, True):
        with pytest.raises(ValueError, match="n_jobs must be a positive integer or -1"):
            eb.solve(p, n_jobs=bad)
    with pytest.raises(ValueError, match="tasks must be one of auto, rows, evaluations"):
        eb.solve(p, n_jobs=2, tasks="chunks")


def test_loading_a_file_that_is_not_a_result_names_the_problem(tmp_path):
    (tmp_path / "notes.json").write_text("not json at all")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="notes.json is not an evobilevel result: not JSON"):
        eb.load_result(tmp_path / "notes.json")
    with pytest.raises(ValueError, match="other.json is not an evobilevel result: it has no problem, algorithm"):
        eb.load_result(tmp_path / "other.json")
