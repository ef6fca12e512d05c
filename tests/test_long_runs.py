"""Long runs: checkpoints and resumption (stopped by a callback, killed from outside) and bounded memory."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
import pytest

import evobilevel as eb
from evobilevel.algorithms import BLEAQ, Nested
from evobilevel.cli import main
from evobilevel.lower.base import LowerSolution, LowerSolver
from evobilevel.runner import load_checkpoint

SMALL = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)

# BLEAQ with a short stall window and without the model that would end its attempts within a few generations: it
# restarts within 60 generations, so a checkpoint must carry its restart state (kept member, restart counter,
# archives) as well as its population.
CONFIGS = {
    "nested": lambda: Nested(pop_size=10, max_generations=15),
    "bleaq": lambda: BLEAQ(pop_size=12, max_generations=60, stall_generations=5, model_search=False),
}


def assert_same_run(a: eb.Result, b: eb.Result) -> None:
    """Everything but the timings is equal."""
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    for key in ("F", "f", "feasible", "success", "message", "n_ul_evals", "n_ll_evals", "ll_gap",
                "n_ll_evals_check", "ul_error", "ll_error", "target_reached", "interrupted", "seed"):
        assert getattr(a, key) == getattr(b, key), key
    assert a.history.keys() == b.history.keys()
    for key in a.history.keys():
        if key != "elapsed":
            assert np.array_equal(a.history.column(key), b.history.column(key), equal_nan=True), key


def stop_at(generation: int):
    return lambda record: record["generation"] == generation


# ------------------------------------------------------------------------------------ resume after a stop
@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("k", [0, 6])
def test_resume_after_a_callback_stop_equals_the_uninterrupted_run(tmp_path, name, k):
    path = tmp_path / "run.ckpt"
    full = eb.solve(SMALL, algorithm=CONFIGS[name](), seed=3)
    part = eb.solve(SMALL, algorithm=CONFIGS[name](), seed=3, checkpoint=path, callback=stop_at(k))
    assert part.message == "stopped by callback" and len(part.history) == k + 1
    saved = load_checkpoint(path)
    assert saved["generation"] == k and not saved["finished"]
    assert saved["context"]["ll_seed"]["n_children_spawned"] > 0
    rest = eb.solve(SMALL, algorithm=CONFIGS[name](), seed=3, resume=path)
    assert_same_run(full, rest)
    assert rest.elapsed >= saved["elapsed"]


def test_resume_twice_and_across_n_jobs(tmp_path):
    """A resumed run that checkpoints again can be stopped and resumed again, on two processes this time."""
    path = tmp_path / "run.ckpt"
    algo = Nested(pop_size=10, max_generations=12)
    full = eb.solve(SMALL, algorithm=algo, seed=1)
    eb.solve(SMALL, algorithm=algo, seed=1, checkpoint=path, callback=stop_at(3))
    eb.solve(SMALL, algorithm=algo, seed=1, resume=path, checkpoint=path, callback=stop_at(8))
    assert load_checkpoint(path)["generation"] == 8
    rest = eb.solve(SMALL, algorithm=algo, seed=None, n_jobs=2, resume=path)  # seed None: the checkpoint's
    assert_same_run(full, rest)


def test_periodic_checkpoints_and_budget_stop(tmp_path):
    """Checkpoints every k generations; a run ended by its budget resumes from any of them to the same end."""
    algo = Nested(pop_size=10, max_generations=100)
    budget = dict(max_ll_evals=60_000)
    full = eb.solve(SMALL, algorithm=algo, seed=2, **budget)
    assert "budget" in full.message
    copies = []

    def keep_copies(record):
        # The checkpoint of generation g is written after the callback of g: at g + 1 it is on disk.
        if os.path.exists(tmp_path / "run.ckpt"):
            saved = load_checkpoint(tmp_path / "run.ckpt")
            if not any(c["generation"] == saved["generation"] for c in copies):
                copies.append(saved)
                (tmp_path / f"gen{saved['generation']}.ckpt").write_bytes((tmp_path / "run.ckpt").read_bytes())

    eb.solve(SMALL, algorithm=algo, seed=2, checkpoint=tmp_path / "run.ckpt", checkpoint_every=3,
             callback=keep_copies, **budget)
    generations = [c["generation"] for c in copies]
    assert generations[:3] == [0, 3, 6]
    final = load_checkpoint(tmp_path / "run.ckpt")
    assert final["finished"] and final["message"] == full.message
    for g in generations[:: max(1, len(generations) // 3)]:
        assert_same_run(full, eb.solve(SMALL, algorithm=algo, seed=2, resume=tmp_path / f"gen{g}.ckpt", **budget))
    # A finished run's checkpoint gives its result without running again.
    start = time.perf_counter()
    again = eb.solve(SMALL, algorithm=algo, seed=2, resume=tmp_path / "run.ckpt", check_ll=False, **budget)
    assert time.perf_counter() - start < 1.0
    assert (again.x.tolist(), again.n_ll_evals, again.message) == (full.x.tolist(), full.n_ll_evals, full.message)


def test_resume_refuses_another_run(tmp_path):
    path = tmp_path / "run.ckpt"
    algo = Nested(pop_size=10, max_generations=12)
    eb.solve(SMALL, algorithm=algo, seed=1, checkpoint=path, callback=stop_at(1))
    with pytest.raises(ValueError, match=r"algorithm: settings pop_size checkpoint 10, now 12"):
        eb.solve(SMALL, algorithm=Nested(pop_size=12, max_generations=12), seed=1, resume=path)
    with pytest.raises(ValueError, match=r"algorithm: checkpoint 'nested', now 'bleaq'$"):
        eb.solve(SMALL, algorithm="bleaq", seed=1, resume=path)
    with pytest.raises(ValueError, match=r"problem: name checkpoint 'SMD1', now 'SMD2'"):
        eb.solve(eb.benchmarks.get("SMD2", ul_dim=2, ll_dim=3), algorithm=algo, seed=1, resume=path)
    with pytest.raises(ValueError, match=r"problem: ul_dim checkpoint 2, now 3"):
        eb.solve(eb.benchmarks.get("SMD1", ul_dim=3, ll_dim=3), algorithm=algo, seed=1, resume=path)
    with pytest.raises(ValueError, match=r"seed: checkpoint 1, now 2"):
        eb.solve(SMALL, algorithm=algo, seed=2, resume=path)
    with pytest.raises(ValueError, match=r"max_ll_evals: checkpoint None, now 500; chunk_size"):
        eb.solve(SMALL, algorithm=algo, seed=1, max_ll_evals=500, chunk_size=2, resume=path)
    (tmp_path / "other.ckpt").write_bytes(pickle.dumps({"something": "else"}))
    with pytest.raises(ValueError, match="is not an evobilevel checkpoint"):
        eb.solve(SMALL, algorithm=algo, seed=1, resume=tmp_path / "other.ckpt")
    (tmp_path / "text.ckpt").write_text("not a pickle")
    with pytest.raises(ValueError, match="not a readable evobilevel checkpoint"):
        eb.solve(SMALL, algorithm=algo, seed=1, resume=tmp_path / "text.ckpt")
    with pytest.raises(FileNotFoundError):
        eb.solve(SMALL, algorithm=algo, seed=1, resume=tmp_path / "missing.ckpt")
    with pytest.raises(ValueError, match="checkpoint_every must be an integer of at least 1"):
        eb.solve(SMALL, algorithm=algo, checkpoint=path, checkpoint_every=0)


# ----------------------------------------------------------------------------- killed from the outside
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    """``evobilevel solve --checkpoint`` in a subprocess, SIGKILLed mid-run; ``--resume`` finishes it."""
    ckpt, out = tmp_path / "run.ckpt", tmp_path / "resumed.json"
    args = ["solve", "SMD1", "--ul-dim", "2", "--ll-dim", "3", "--algorithm", "nested", "--seed", "4",
            "--max-ul-evals", "600", "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "evobilevel.cli", *args, "--checkpoint", str(ckpt),
                             "--checkpoint-every", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline, generation = time.monotonic() + 60, -1
        while generation < 4:
            assert proc.poll() is None, f"the run ended before it was killed: {proc.communicate()[1].decode()}"
            assert time.monotonic() < deadline, "no checkpoint of generation 4 within 60 s"
            if ckpt.exists():
                generation = load_checkpoint(ckpt)["generation"]  # complete or absent: writes are atomic
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    saved = load_checkpoint(ckpt)
    assert not saved["finished"] and saved["generation"] < 20
    assert main([*args, "--resume", str(ckpt), "--out", str(out)]) == 0
    full = eb.solve(SMALL, algorithm="nested", seed=4, max_ul_evals=600)
    resumed = eb.load_result(out)
    assert_same_run(full, resumed)
    with open(out, encoding="utf-8") as fh:
        assert json.load(fh)["n_ll_evals"] == full.n_ll_evals


def test_cli_resume_errors(tmp_path, capsys):
    args = ["solve", "SMD1", "--ul-dim", "2", "--ll-dim", "3", "--algorithm", "nested", "--quiet"]
    assert main([*args, "--resume", str(tmp_path / "missing.ckpt")]) == 2
    assert "missing.ckpt does not exist" in capsys.readouterr().err
    eb.solve(SMALL, algorithm="nested", seed=0, max_ul_evals=40, checkpoint=tmp_path / "run.ckpt")
    assert main([*args, "--resume", str(tmp_path / "run.ckpt")]) == 2  # no --max-ul-evals 40: another run
    assert "max_ul_evals: checkpoint 40, now None" in capsys.readouterr().err


def test_cli_chunk_size_is_solve_s_chunk_size(tmp_path, capsys):
    out = tmp_path / "run.json"
    args = ["solve", "SMD1", "--ul-dim", "2", "--ll-dim", "3", "--algorithm", "nested", "--seed", "3",
            "--max-ul-evals", "60", "--quiet"]
    assert main([*args, "--chunk-size", "1", "--out", str(out)]) == 0
    ones = eb.solve(SMALL, algorithm="nested", seed=3, max_ul_evals=60, chunk_size=1)
    fours = eb.solve(SMALL, algorithm="nested", seed=3, max_ul_evals=60)
    assert_same_run(ones, eb.load_result(out))
    assert ones.n_ll_evals != fours.n_ll_evals  # each chunk has its own random stream
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--chunk-size", "0"])
    assert exit_info.value.code == 2 and "--chunk-size" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- memory
@dataclass
class OneGuess(LowerSolver):
    """A deliberately cheap lower-level 'solver': one random point per row, evaluated once."""

    def solve(self, ev, X, rng, Y0=None, max_evals=None) -> LowerSolution:
        lo, hi = ev.problem.ll_bounds
        Y = lo + rng.random((X.shape[0], lo.shape[0])) * (hi - lo)
        result = ev.lower(X, Y)
        n = X.shape[0]
        return LowerSolution(Y=Y, f=result.values, cv=result.cv, success=np.ones(n, bool),
                             n_evals=np.ones(n, np.int64))


def test_a_long_run_keeps_its_state_bounded(tmp_path):
    """3000 generations: the history, the archive and the whole checkpointed state stay within their caps."""
    generations, path = 3000, tmp_path / "run.ckpt"
    algo = Nested(pop_size=4, max_generations=generations, stall_generations=10**6, archive_size=32,
                  lower_solver=OneGuess())
    sizes = {}

    def measure(record):
        if record["generation"] == 1001:
            sizes[1000] = path.stat().st_size
        return False

    r = eb.solve(SMALL, algorithm=algo, seed=0, history_limit=40, check_ll=False, checkpoint=path,
                 checkpoint_every=1000, callback=measure)
    assert r.message == f"maximum of {generations} generations"
    assert len(r.history) <= 40
    assert r.history[0]["generation"] == 0 and r.history[-1]["generation"] == generations
    assert np.all(np.diff(r.history.column("generation")) > 0)
    assert r.history.column("archive_size").max() == 32  # 12000 solutions went through a 32-row archive
    state = load_checkpoint(path)
    assert len(state["history"]) <= 40 and state["algorithm_state"].archive.size == 32
    # Between generations 1000 and 3000 the state grows by the algorithm's convergence record only (one float,
    # 9 pickled bytes, per generation); anything growing by a record or a population per generation is far above.
    assert path.stat().st_size - sizes[1000] < 12 * (generations - 1000)
