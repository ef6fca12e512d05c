"""Benchmark grids: problem ranges, seed derivation, parallel tasks, and a grid killed midway then resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import evobilevel as eb
from evobilevel.experiment import Grid, GridConflict, expand_problems, run_grid, run_seed
from evobilevel.parallel import run_tasks

# Small budgets keep each run well under a second; the numbers still exercise both levels.
BENCH_ARGS = ["--problems", "SMD1-SMD4", "--ul-dim", "2", "--ll-dim", "3", "--runs", "3", "--seed", "7",
              "--max-ul-evals", "40", "--max-ll-evals", "10000", "--jobs", "2", "--quiet"]


def _second_algorithm() -> str:
    names = eb.algorithms.names()
    if "bleaq" in names:
        return "bleaq"
    others = [n for n in names if n != "nested"]
    if not others:
        pytest.skip("a second registered algorithm is needed to compare two algorithms; only 'nested' exists")
    return others[0]


# ------------------------------------------------------------------------------------------------ problem ranges
def test_expand_problems_ranges_and_lists():
    assert expand_problems("SMD1-SMD4") == ["SMD1", "SMD2", "SMD3", "SMD4"]
    assert expand_problems("smd11-12, tp1-TP3") == ["SMD11", "SMD12", "TP1", "TP2", "TP3"]
    assert expand_problems(["SMD2", "SMD1-SMD3", "smd2"]) == ["SMD2", "SMD1", "SMD3"]
    assert expand_problems("SMD1-SMD12,TP1-TP10,MI1-MI4,MF1,BMO1-BMO3") == eb.benchmarks.names()


@pytest.mark.parametrize("bad, words", [
    ("SMD13", "unknown benchmark problem 'SMD13'"),
    ("SMD3-SMD1", "runs backwards"),
    ("SMD1-TP3", "mixes the prefixes"),
    ("SMD10-SMD14", "SMD13, SMD14"),
    ("", "no problems"),
])
def test_expand_problems_rejects(bad, words):
    with pytest.raises(ValueError, match=words):
        expand_problems(bad)


def test_grid_instances_sizes_and_variants():
    grid = Grid("SMD1,SMD12,TP1,TP9", sizes=[(2, 3), (5, 5)], algorithms=["nested"], runs=2, variant="bleaq2")
    instances = sorted({spec.instance for spec in grid.run_specs()})
    # TP1 has one fixed size; TP9 only takes ul_dim == ll_dim; the variant only applies to SMD12.
    assert instances == ["SMD12_2x3_bleaq2", "SMD12_5x5_bleaq2", "SMD1_2x3", "SMD1_5x5", "TP1_2x2", "TP9_5x5"]
    spec = grid.run_specs()[0]
    assert spec.path("out") == Path("out/SMD1_2x3/nested/run0.json")
    with pytest.raises(ValueError, match="TP9 takes ul_dim == ll_dim only"):
        Grid("TP9", sizes=[(2, 3)]).run_specs()
    with pytest.raises(ValueError, match="unknown algorithm"):
        Grid("SMD1", algorithms=["no-such-algorithm"])


# ---------------------------------------------------------------------------------------------------------- seeds
def test_run_seed_does_not_depend_on_the_rest_of_the_grid():
    small = Grid("SMD2", sizes=[(2, 3)], algorithms=["nested"], runs=2, seed=3)
    large = Grid("SMD1-SMD4", sizes=[(5, 5), (2, 3)], algorithms=["nested"], runs=5, seed=3)
    seeds_small = {(s.instance, s.run): s.seed for s in small.run_specs()}
    seeds_large = {(s.instance, s.run): s.seed for s in large.run_specs()}
    assert seeds_small == {key: seeds_large[key] for key in seeds_small}
    assert len(set(seeds_large.values())) == len(seeds_large)  # distinct runs, distinct seeds
    assert run_seed(3, "SMD2_2x3", 1) == seeds_small[("SMD2_2x3", 1)]
    assert run_seed(4, "SMD2_2x3", 1) != run_seed(3, "SMD2_2x3", 1)
    assert 0 <= run_seed(0, "SMD1_2x3", 0) < 2**63
    with pytest.raises(ValueError, match="non-negative integer"):
        run_seed(-1, "SMD1_2x3", 0)


def test_algorithms_share_the_seeds_of_an_instance():
    grid = Grid("SMD1", sizes=[(2, 3)], algorithms={"a": "nested", "b": eb.algorithms.Nested(pop_size=10)}, runs=2)
    by_algorithm = {}
    for spec in grid.run_specs():
        by_algorithm.setdefault(spec.algorithm, []).append(spec.seed)
    assert by_algorithm["a"] == by_algorithm["b"]


# ---------------------------------------------------------------------------------------------------------- tasks
def _square(k: int) -> int:
    return k * k


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_run_tasks_returns_every_result_with_its_index(n_jobs):
    out = dict(run_tasks(_square, [(k,) for k in range(7)], n_jobs=n_jobs))
    assert out == {k: k * k for k in range(7)}
    with pytest.raises(ValueError, match="n_jobs"):
        list(run_tasks(_square, [(1,)], n_jobs=0))


# ------------------------------------------------------------------------------------------- conflicts, dry run
def test_a_run_made_with_other_settings_is_not_reused(tmp_path):
    grid = Grid("SMD1", sizes=[(2, 3)], algorithms=["nested"], runs=1, max_ul_evals=20, max_ll_evals=3000)
    first = run_grid(grid, tmp_path)
    assert first.count("done") == 1 and not first.failed
    again = run_grid(grid, tmp_path)
    assert again.count("skipped") == 1 and again.count("done") == 0
    other = Grid("SMD1", sizes=[(2, 3)], algorithms=["nested"], runs=1, max_ul_evals=30, max_ll_evals=3000)
    with pytest.raises(GridConflict, match="max_ul_evals"):
        run_grid(other, tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["problems"] == ["SMD1"] and manifest["max_ul_evals"] == 20
    # A run made by another release of evobilevel is not mixed in either.
    path = grid.run_specs()[0].path(tmp_path)
    data = json.loads(path.read_text())
    data["version"] = "0.0.1"
    path.write_text(json.dumps(data))
    with pytest.raises(GridConflict, match="evobilevel 0.0.1"):
        run_grid(grid, tmp_path)


# ------------------------------------------------------------------------------------------ acceptance: kill + resume
def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "evobilevel.cli", *args]


def _run_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("run*.json"))


def _numbers(path: Path) -> dict:
    """A run's stored numbers, without wall-clock times."""
    data = json.loads(path.read_text())
    data.pop("elapsed")
    data["history"].pop("elapsed")
    return data


def test_bench_killed_midway_and_restarted_equals_uninterrupted(tmp_path):
    algorithms = ["nested", _second_algorithm()]
    args = [*BENCH_ARGS, "--algorithms", ",".join(algorithms)]
    grid = Grid("SMD1-SMD4", sizes=[(2, 3)], algorithms=algorithms, runs=3, seed=7, max_ul_evals=40,
                max_ll_evals=10000)
    expected = {spec.path(Path()) for spec in grid.run_specs()}
    assert len(expected) == 24

    whole = tmp_path / "whole"
    done = subprocess.run(_cli("bench", *args, "--out", str(whole)), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "24 run now" in done.stdout

    killed = tmp_path / "killed"
    # A session of its own, so the kill takes the worker processes down with the command, as a real kill would.
    proc = subprocess.Popen(_cli("bench", *args, "--out", str(killed)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(_run_files(killed)) < 3:
        assert proc.poll() is None, "the grid finished before it could be killed"
        assert time.monotonic() < deadline, "no run finished in time"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    survivors = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in _run_files(killed)}
    assert 3 <= len(survivors) < 24

    resumed = subprocess.run(_cli("bench", *args, "--out", str(killed)), capture_output=True, text=True,
                             timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{24 - len(survivors)} run now" in resumed.stdout
    assert f"{len(survivors)} already done" in resumed.stdout
    # Finished runs were skipped, not redone.
    assert all((p.stat().st_ino, p.stat().st_mtime_ns) == before for p, before in survivors.items())

    for directory in (whole, killed):
        assert {p.relative_to(directory) for p in _run_files(directory)} == expected
        leftovers = [p for p in directory.rglob("*") if p.is_file() and p.suffix != ".json"]
        assert leftovers == []  # no temporary files
    for relative in sorted(expected):
        assert _numbers(killed / relative) == _numbers(whole / relative), relative


def test_bench_cli_bad_arguments_exit_2(tmp_path):
    from evobilevel.cli import main

    assert main(["bench", "--problems", "SMD99", "--out", str(tmp_path)]) == 2
    assert main(["bench", "--problems", "SMD1", "--algorithms", "nope", "--out", str(tmp_path)]) == 2
    assert main(["bench", "--problems", "SMD1", "--sizes", "2by3", "--out", str(tmp_path)]) == 2
    assert main(["bench", "--problems", "SMD1", "--jobs", "0", "--out", str(tmp_path)]) == 2
    assert not any(tmp_path.iterdir())


def test_bench_dry_run_lists_runs(tmp_path, capsys):
    from evobilevel.cli import main

    assert main(["bench", "--problems", "SMD1-SMD2", "--sizes", "2x3", "--algorithms", "nested", "--runs", "2",
                 "--out", str(tmp_path), "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("todo") for line in lines)
    assert "SMD2_2x3/nested/run1.json" in lines[-1]


class _Broken(eb.algorithms.Nested):
    """Fails before its first evaluation, as a buggy algorithm would."""

    def setup(self, ctx):
        raise RuntimeError("broken on purpose")


def test_a_failing_run_is_reported_and_leaves_no_file(tmp_path):
    grid = Grid("SMD1", sizes=[(2, 3)], algorithms={"broken": _Broken(), "nested": "nested"}, runs=1,
                max_ul_evals=20, max_ll_evals=3000)
    summary = run_grid(grid, tmp_path)
    assert summary.count("failed") == 1 and summary.count("done") == 1
    (failure,) = summary.failed
    assert "broken on purpose" in failure.error and not failure.path.exists()
    assert "failed: SMD1_2x3 broken run 0: RuntimeError: broken on purpose" in summary.text()
    assert [p.relative_to(tmp_path).as_posix() for p in _run_files(tmp_path)] == ["SMD1_2x3/nested/run0.json"]
