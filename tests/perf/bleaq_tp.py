"""BLEAQ on TP1-TP10, 11 runs each, against the published BLEAQ2 figures (success on |F - F*| alone, as published,
with the lower-level gap below the target too).

    python tests/perf/bleaq_tp.py [--out results/tp] [--runs 11] [--jobs 1] [--write-readme] [--report-only]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from readme_table import write_section


def section(report: str) -> str:
    start = report.index("| problem |")
    end = report.find("\n![", start)
    return report[start:end if end > 0 else None].strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="results/tp")
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--write-readme", action="store_true")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    if not args.report_only:
        subprocess.run(["evobilevel", "bench", "--problems", "TP1-TP10", "--algorithms", "bleaq", "--runs",
                        str(args.runs), "--jobs", str(args.jobs), "--out", args.out, "--quiet", "--target", "1e-2",
                        "--max-ul-evals", "20000", "--max-ll-evals", "1000000"], check=True)
    report_dir = Path(args.out) / "report"
    subprocess.run(["evobilevel", "report", args.out, "--out", str(report_dir), "--no-plots"], check=True)
    report = (report_dir / "report.md").read_text(encoding="utf-8")
    print(report)
    if args.write_readme:
        write_section("bleaq-tp", (
            f"`python tests/perf/bleaq_tp.py --write-readme` ({args.runs} runs per problem, target 1e-2, budgets of "
            "20,000 UL and 1,000,000 LL evaluations; success on |F - F*| as published, with the lower-level gap "
            "below 1e-2; evaluations are medians (IQR) over the successful runs; time is the median wall time of a "
            f"run, {args.jobs} run(s) at a time):\n\n" + section(report)))


if __name__ == "__main__":
    sys.exit(main())
