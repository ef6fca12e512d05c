"""BLEAQ on TP1-TP10, 11 runs each (TP10 also at (10, 10), the size of its published figures), against the published
BLEAQ2 and BL-CMA-ES medians (success on |F - F*| alone, as published, with the lower-level gap below the target too).

    python tests/perf/bleaq_tp.py [--out results/tp] [--runs 11] [--jobs 1] [--write-readme] [--report-only]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

from readme_table import markdown_table, write_section


def compact(report_csv: Path) -> str:
    """One row per problem: success, medians, and the ratios to BLEAQ2's and BL-CMA-ES's published medians."""
    with open(report_csv, newline="", encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: (int(r["problem"][2:]), int(r["ul_dim"])))

    def count(value: str) -> str:
        return "-" if value in ("", "nan") else f"{float(value):,.0f}"

    def ratio(value: str) -> str:
        return "-" if value in ("", "nan") else f"{float(value):.2g}"

    body = [[r["problem"], f"{r['ul_dim']}, {r['ll_dim']}", f"{r['n_success']}/{r['n_runs']}",
             count(r["ul_evals_median"]), ratio(r["bleaq2_ul_ratio"]), ratio(r["bl_cma_es_ul_ratio"]),
             count(r["ll_evals_median"]), ratio(r["bleaq2_ll_ratio"]), ratio(r["bl_cma_es_ll_ratio"]),
             f"{float(r['elapsed_median']):.2f}"] for r in rows]
    return markdown_table(["problem", "size", "success", "UL evals", "UL / BLEAQ2", "UL / BL-CMA-ES", "LL evals",
                           "LL / BLEAQ2", "LL / BL-CMA-ES", "time (s)"], body)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="results/tp")
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--write-readme", action="store_true")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    if not args.report_only:
        common = ["--algorithms", "bleaq", "--runs", str(args.runs), "--jobs", str(args.jobs), "--out", args.out,
                  "--quiet", "--target", "1e-2", "--max-ul-evals", "20000", "--max-ll-evals", "1000000"]
        subprocess.run(["evobilevel", "bench", "--problems", "TP1-TP10", *common], check=True)
        # TP10's published figures are at (10, 10), the size of the BLEAQ2 code's driver; its default here is (5, 5).
        subprocess.run(["evobilevel", "bench", "--problems", "TP10", "--ul-dim", "10", "--ll-dim", "10", *common],
                       check=True)
    report_dir = Path(args.out) / "report"
    subprocess.run(["evobilevel", "report", args.out, "--out", str(report_dir), "--no-plots"], check=True)
    report = (report_dir / "report.md").read_text(encoding="utf-8")
    print(report)
    if args.write_readme:
        write_section("bleaq-tp", (
            f"`python tests/perf/bleaq_tp.py --write-readme` ({args.runs} runs per problem, target 1e-2, budgets of "
            "20,000 UL and 1,000,000 LL evaluations; success on |F - F*| as published, with the lower-level gap "
            "below 1e-2; evaluations are medians over the successful runs, ratios to the published medians; time is "
            f"the median wall time of a run, {args.jobs} run(s) at a time):\n\n" + compact(report_dir / "report.csv")))


if __name__ == "__main__":
    sys.exit(main())
