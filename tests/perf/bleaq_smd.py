"""BLEAQ on SMD1-SMD12 at (5, 5), 11 runs each, against the published BLEAQ2 and BL-CMA-ES figures.

Runs the grid with ``evobilevel bench`` (resumable: a re-run only does what is missing), writes the report with
``evobilevel report``, prints it, and with ``--write-readme`` puts the tables and one convergence figure into the
README.

    python tests/perf/bleaq_smd.py [--out results/smd5x5] [--runs 11] [--write-readme] [--report-only]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from readme_table import write_section

FIGURES = Path(__file__).resolve().parent / "figures"
BUDGET = ["--target", "1e-2", "--max-ul-evals", "20000", "--max-ll-evals", "1000000"]


def bench(out: str, runs: int, problems: str, variant: str | None = None) -> None:
    cmd = ["evobilevel", "bench", "--problems", problems, "--ul-dim", "5", "--ll-dim", "5", "--algorithms", "bleaq",
           "--runs", str(runs), "--out", out, "--quiet", *BUDGET]
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
    ap.add_argument("--out", default="results/smd5x5")
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--write-readme", action="store_true")
    ap.add_argument("--report-only", action="store_true", help="report the runs already in --out, run nothing")
    args = ap.parse_args()

    if not args.report_only:
        bench(args.out, args.runs, "SMD1-SMD11")
        bench(args.out, args.runs, "SMD12", variant="bleaq2")
    report_dir = Path(args.out) / "report"
    subprocess.run(["evobilevel", "report", args.out, "--out", str(report_dir)], check=True)
    report = (report_dir / "report.md").read_text(encoding="utf-8")
    print(report)
    if args.write_readme:
        FIGURES.mkdir(exist_ok=True)
        shutil.copy(report_dir / "convergence_SMD7_5x5.png", FIGURES / "bleaq_smd7_convergence.png")
        text = (
            "`python tests/perf/bleaq_smd.py --write-readme` (up to 11 runs per problem, target 1e-2 at both "
            "levels, budgets of 20,000 UL and 1,000,000 LL evaluations per run; evaluations are medians (IQR) over "
            "the successful runs, as published; time is the median wall time of a run, one process, on a shared "
            "two-core machine):\n\n" + section(report)
            + "\n\n![SMD7 convergence](tests/perf/figures/bleaq_smd7_convergence.png)"
        )
        write_section("bleaq-smd", text)


if __name__ == "__main__":
    sys.exit(main())
