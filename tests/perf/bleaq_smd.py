"""BLEAQ on SMD1-SMD12, 11 runs each at one size, against the published BLEAQ2 and BL-CMA-ES figures.

Runs the grid with ``evobilevel bench`` (resumable: a re-run only does what is missing), writes the report with
``evobilevel report``, prints it, and with ``--write-readme`` puts the tables (and at (5, 5) one convergence figure)
into the README section of that size. With ``--jobs 1`` (the default) runs go one after the other, so the time
column is the wall time of a run in one process.

    python tests/perf/bleaq_smd.py [--size 5x5] [--out results/smd-5x5] [--runs 11] [--jobs 1] [--write-readme]
                                   [--report-only]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from readme_table import write_section

FIGURES = Path(__file__).resolve().parent / "figures"
# Budgets: generous against the published medians at each size, so that they end only runs that fail.
BUDGETS = {"2x3": (10_000, 500_000), "5x5": (20_000, 1_000_000), "10x10": (50_000, 3_000_000)}


def bench(out: str, size: str, runs: int, jobs: int, problems: str, variant: str | None = None) -> None:
    ul_dim, ll_dim = size.split("x")
    max_ul, max_ll = BUDGETS[size]
    cmd = ["evobilevel", "bench", "--problems", problems, "--ul-dim", ul_dim, "--ll-dim", ll_dim,
           "--algorithms", "bleaq", "--runs", str(runs), "--jobs", str(jobs), "--out", out, "--quiet",
           "--target", "1e-2", "--max-ul-evals", str(max_ul), "--max-ll-evals", str(max_ll)]
    if variant:
        cmd += ["--variant", variant]
    subprocess.run(cmd, check=True)


def section(report: str) -> str:
    """The size table and the comparison table of a report, without its preamble."""
    start = report.index("| problem |")
    end = report.find("\n![", start)  # the report's own figures are linked relative to its folder
    return report[start:end if end > 0 else None].strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="5x5", choices=sorted(BUDGETS))
    ap.add_argument("--out", default=None, help="results directory (default results/smd-SIZE)")
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--write-readme", action="store_true")
    ap.add_argument("--report-only", action="store_true", help="report the runs already in --out, run nothing")
    args = ap.parse_args()
    out = args.out or f"results/smd-{args.size}"

    if not args.report_only:
        bench(out, args.size, args.runs, args.jobs, "SMD1-SMD11")
        bench(out, args.size, args.runs, args.jobs, "SMD12", variant="bleaq2")
    report_dir = Path(out) / "report"
    subprocess.run(["evobilevel", "report", out, "--out", str(report_dir)], check=True)
    report = (report_dir / "report.md").read_text(encoding="utf-8")
    print(report)
    if args.write_readme:
        max_ul, max_ll = BUDGETS[args.size]
        text = (
            f"`python tests/perf/bleaq_smd.py --size {args.size} --write-readme` (up to {args.runs} runs per "
            f"problem, target 1e-2 at both levels, budgets of {max_ul:,} UL and {max_ll:,} LL evaluations per run; "
            "evaluations are medians (IQR) over the successful runs, as published; time is the median wall time of "
            f"a run, {args.jobs} run(s) at a time, on a shared two-core machine):\n\n" + section(report)
        )
        if args.size == "5x5":
            FIGURES.mkdir(exist_ok=True)
            shutil.copy(report_dir / "convergence_SMD7_5x5.png", FIGURES / "bleaq_smd7_convergence.png")
            text += "\n\n![SMD7 convergence](tests/perf/figures/bleaq_smd7_convergence.png)"
        write_section("bleaq-smd" if args.size == "5x5" else f"bleaq-smd-{args.size}", text)


if __name__ == "__main__":
    sys.exit(main())
