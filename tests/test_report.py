"""Report tables on hand-made results (medians, IQRs, success, ratios to published figures) and the PNG plots."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import numpy as np
import pytest

from evobilevel.cli import main
from evobilevel.report import (
    csv_report,
    evals_to_target,
    load_runs,
    markdown_report,
    published_for,
    published_results,
    summarise,
    write_report,
)
from evobilevel.result import History, Result


def make_result(steps, problem="SMD1", sizes=(2, 3), algorithm="nested", target=None, ll_gap=0.0, elapsed=1.0,
                variant=None, infeasible=()):
    """A Result whose history has one record per ``(n_ul_evals, n_ll_evals, ul_error, ll_error)`` step."""
    records = []
    for i, (n_ul, n_ll, ul_error, ll_error) in enumerate(steps):
        records.append({"generation": i, "n_ul_evals": n_ul, "n_ll_evals": n_ll, "best_F": ul_error,
                        "best_f": ll_error, "feasible": i not in infeasible, "ul_error": ul_error,
                        "ll_error": ll_error, "elapsed": 0.1 * i})
    n_ul, n_ll, ul_error, ll_error = steps[-1]
    reached = target is not None and ul_error < target and ll_error < target
    settings = {"ul_dim": sizes[0], "ll_dim": sizes[1], **({"variant": variant} if variant else {})}
    return Result(problem=problem, problem_settings=settings, algorithm=algorithm, algorithm_settings={}, seed=0,
                  n_jobs=1, x=np.zeros(sizes[0]), y=np.zeros(sizes[1]), F=ul_error, f=ll_error, feasible=True,
                  success=reached and ll_gap <= target, message="", n_ul_evals=n_ul, n_ll_evals=n_ll,
                  ll_gap=ll_gap, ul_error=ul_error, ll_error=ll_error, target=target, target_reached=reached,
                  elapsed=elapsed, history=History(records))


def reaching(n_ul, n_ll, **kwargs):
    """A run that first reaches both errors below 1e-2 at (n_ul, n_ll) evaluations, then goes on."""
    steps = [(n_ul // 2, n_ll // 2, 1.0, 1.0), (n_ul, n_ll, 5e-3, 2e-3), (2 * n_ul, 2 * n_ll, 1e-4, 1e-4)]
    return make_result(steps, **kwargs)


def never(**kwargs):
    return make_result([(20, 1000, 1.0, 1.0), (400, 9000, 0.5, 0.05)], **kwargs)


# -------------------------------------------------------------------------------------------- evaluations to target
def test_evals_to_target_from_history():
    r = make_result([(20, 1000, 1.0, 1.0), (40, 2000, 5e-3, 0.5), (60, 3000, 5e-3, 5e-3), (80, 4000, 1e-4, 1e-4)])
    assert evals_to_target(r) == (60, 3000)
    assert evals_to_target(r, levels="ul") == (40, 2000)
    assert evals_to_target(r, target=1e-3) == (80, 4000)
    assert evals_to_target(r, target=1e-5) is None
    # An infeasible record never counts, and a final lower-level gap above the target voids the run.
    r = make_result([(20, 1000, 1e-3, 1e-3), (40, 2000, 1e-3, 1e-3)], infeasible={0})
    assert evals_to_target(r) == (40, 2000)
    assert evals_to_target(make_result([(20, 1000, 1e-3, 1e-3)], ll_gap=0.5)) is None


def test_evals_to_target_of_a_run_stopped_at_the_target_are_its_final_counts():
    r = make_result([(20, 1000, 1.0, 1.0), (57, 2345, 5e-3, 5e-3)], target=1e-2)
    r.n_ul_evals, r.n_ll_evals = 57, 2345
    assert evals_to_target(r, 1e-2) == (57, 2345)
    r.target_reached = False
    assert evals_to_target(r, 1e-2) is None


# ------------------------------------------------------------------------------------------------------- summary
def _records(results, tmp_path):
    for i, r in enumerate(results):
        r.to_json(tmp_path / f"{r.problem}_{i}.json")
    runs, skipped = load_runs(tmp_path)
    assert skipped == []
    return runs


def test_summary_median_iqr_success_and_ratio_to_published(tmp_path):
    results = [reaching(n_ul, n_ll, elapsed=t) for n_ul, n_ll, t in
               [(100, 1000, 1.0), (200, 3000, 2.0), (300, 5000, 3.0), (400, 7000, 4.0)]]
    results.append(never(elapsed=5.0))
    (row,) = summarise(_records(results, tmp_path))
    assert (row.problem, row.ul_dim, row.ll_dim, row.algorithm) == ("SMD1", 2, 3, "nested")
    assert (row.n_runs, row.n_success, row.success_rate) == (5, 4, 0.8)
    # Evaluations: over the 4 successful runs only; IQR = 75th - 25th percentile (linear).
    assert row.ul_evals_median == 250 and row.ul_evals_iqr == pytest.approx(325 - 175)
    assert row.ll_evals_median == 4000 and row.ll_evals_iqr == pytest.approx(5500 - 2500)
    # Errors and time: over all runs, final values.
    assert row.ul_error_median == pytest.approx(1e-4) and row.elapsed_median == 3.0
    assert set(row.published) == {"BL-CMA-ES"}  # the only published figures at (2, 3)
    assert row.ratio("BL-CMA-ES", "ul") == pytest.approx(250 / 320)
    assert row.ratio("BL-CMA-ES", "ll") == pytest.approx(4000 / 21400)
    assert row.ratio("BLEAQ", "ul") is None

    text = markdown_report([row])
    assert "| SMD1 | nested | 5 | 4/5 | 250 (150) | 4k (3k) |" in text
    assert "| SMD1 | nested | BL-CMA-ES | 250 | 320 | 0.78 | 4k | 21.4k | 0.19 |" in text
    (line,) = csv.DictReader(io.StringIO(csv_report([row])))
    assert float(line["ul_evals_median"]) == 250 and float(line["ll_evals_iqr"]) == 3000
    assert float(line["bl_cma_es_ul_ratio"]) == pytest.approx(250 / 320) and line["bleaq_ul_ratio"] == ""


def test_summary_groups_by_size_problem_and_algorithm(tmp_path):
    results = [reaching(100, 1000, algorithm="nested"), reaching(300, 3000, algorithm="bleaq"),
               reaching(50, 800, problem="TP3", sizes=(2, 2)), never(sizes=(5, 5))]
    rows = summarise(_records(results, tmp_path))
    keys = [(r.ul_dim, r.ll_dim, r.problem, r.algorithm) for r in rows]
    assert keys == [(2, 2, "TP3", "nested"), (2, 3, "SMD1", "bleaq"), (2, 3, "SMD1", "nested"),
                    (5, 5, "SMD1", "nested")]
    assert rows[-1].n_success == 0 and rows[-1].ul_evals_median is None and rows[-1].ratio("BLEAQ2", "ul") is None
    assert set(rows[0].published) == {"BLEAQ", "BLEAQ2", "BL-CMA-ES", "NBLEA"}


def test_tp_problems_need_the_upper_level_only_as_published(tmp_path):
    r = make_result([(20, 1000, 1.0, 1.0), (40, 2000, 5e-3, 0.5)], problem="TP3", sizes=(2, 2))
    (row,) = summarise(_records([r], tmp_path))
    assert row.n_success == 1 and row.ul_evals_median == 40


def test_published_figures():
    figures = published_results()
    assert len(figures) == 100
    assert {f.algorithm for f in figures} == {"BLEAQ", "BLEAQ2", "BL-CMA-ES", "NBLEA"}
    tp1 = published_for("TP1", 2, 2)
    assert tp1["BLEAQ"].ul_evals_median == 598 and tp1["BLEAQ"].ll_evals_iqr == 170
    assert published_for("SMD1", 2, 3)["BL-CMA-ES"].ul_evals_iqr is None
    # SMD12 was published with the BLEAQ2-code bounds only; BL-CMA-ES did not reach the target there at (2, 3).
    assert published_for("SMD12", 2, 3, "paper") == {}
    assert published_for("SMD12", 2, 3, "bleaq2")["BL-CMA-ES"].reached is False
    assert published_for("SMD1", 7, 7) == {}


# --------------------------------------------------------------------------------------------- files and commands
@pytest.fixture
def results_dir(tmp_path):
    """A results directory laid out as `evobilevel bench` writes it, with hand-made runs."""
    root = tmp_path / "results"
    for algorithm, scale in (("nested", 1), ("bleaq", 3)):
        for problem, sizes in (("SMD1", (2, 3)), ("SMD2", (2, 3)), ("TP3", (2, 2))):
            for k in range(4):
                r = reaching(scale * (60 + 20 * k), scale * (3000 + 1000 * k), problem=problem, sizes=sizes,
                             algorithm=algorithm) if k < 3 else never(problem=problem, sizes=sizes,
                                                                      algorithm=algorithm)
                r.to_json(root / f"{problem}_{sizes[0]}x{sizes[1]}" / algorithm / f"run{k}.json")
    return root


def test_report_command_writes_tables_and_pngs(results_dir, capsys):
    assert main(["report", str(results_dir)]) == 0
    out = results_dir / "report"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["convergence_SMD1_2x3.png", "convergence_SMD2_2x3.png", "convergence_TP3_2x2.png",
                     "ecdf_2x2.png", "ecdf_2x3.png", "report.csv", "report.md"]
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    md = (out / "report.md").read_text()
    assert "## Size (ul_dim, ll_dim) = (2, 2)" in md and "## Size (ul_dim, ll_dim) = (2, 3)" in md
    assert "![SMD1 convergence](convergence_SMD1_2x3.png)" in md
    assert "| SMD1 | bleaq | 4 | 3/4 | 240 (60) |" in md
    assert len(list(csv.DictReader(io.StringIO((out / "report.csv").read_text())))) == 6
    # A second report ignores the first one's folder.
    assert main(["report", str(results_dir), "--no-plots"]) == 0
    assert "24 runs" in capsys.readouterr().out


def test_report_rejects_empty_or_missing_directories(tmp_path):
    assert main(["report", str(tmp_path)]) == 2
    assert main(["report", str(tmp_path / "missing")]) == 2
    with pytest.raises(ValueError, match="no run results"):
        write_report(tmp_path)


def test_plot_command_on_one_run(results_dir, tmp_path):
    run = results_dir / "SMD1_2x3" / "nested" / "run0.json"
    png = tmp_path / "convergence.png"
    assert main(["plot", str(run), "-o", str(png)]) == 0
    assert png.stat().st_size > 10_000
    assert main(["plot", str(tmp_path / "missing.json"), "-o", str(png)]) == 2
    (tmp_path / "other.json").write_text('{"a": 1}')
    assert main(["plot", str(tmp_path / "other.json"), "-o", str(png)]) == 2


# --------------------------------------------------------------------------------------------------------- plots
def test_error_band_steps_forward_and_counts_missing_runs_as_worst():
    from evobilevel.plot import error_band

    runs = [make_result([(10, 100, 1.0, 1.0), (100, 1000, 0.1, 0.1)]),
            make_result([(10, 100, 2.0, 2.0), (30, 300, 0.2, 0.2)]),
            make_result([(20, 200, 4.0, 4.0), (50, 500, 0.4, 0.4)])]
    grid, q25, median, q75 = error_band(runs, x="ul", level="ul", n_points=50)
    assert grid[0] == 10 and grid[-1] == pytest.approx(100)
    # At 10 evaluations the third run has no answer yet: the median is the worse finite value, q75 undefined.
    assert median[0] == 2.0 and np.isnan(q75[0]) and q25[0] == 1.5
    # At the end every run holds its last value (0.1, 0.2, 0.4).
    assert (q25[-1], median[-1], q75[-1]) == pytest.approx((0.15, 0.2, 0.3))


def test_plot_functions_return_figures_and_take_axes():
    from matplotlib.figure import Figure

    from evobilevel import plot

    runs = [reaching(100, 1000), reaching(200, 2000), never()]
    fig = plot.convergence(runs[0], x="both")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert fig.axes[0].get_yscale() == "log" and fig.axes[0].get_xscale() == "log"
    own = Figure()
    ax = own.subplots()
    assert plot.convergence_band(runs, ax=ax, x="ll", level="ul") is own
    assert len(plot.convergence_grid({"nested": runs, "other": runs[:2]}).axes) == 4
    assert len(plot.ecdf_evals_to_target({"nested": runs}).axes) == 2
    with pytest.raises(ValueError, match="x must be one of"):
        plot.convergence(runs[0], x="time")


def test_matplotlib_is_imported_lazily():
    code = ("import sys, evobilevel, evobilevel.plot, evobilevel.report, evobilevel.experiment, evobilevel.cli; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
