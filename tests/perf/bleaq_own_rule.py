"""BLEAQ without a target on SMD1-SMD12 at (5, 5): does its own stopping rule end runs at good answers?

Runs the grid with ``evobilevel bench`` (no ``--target``; resumable; SMD12 in the variant the published figures
use, ``bleaq2``), then counts per problem the runs whose final answer has ``|F - F*|``, ``|f - f*|`` and the
lower-level gap below 1e-2, with the medians of the evaluations the runs spent before they stopped.
``--write-readme`` puts the table into the README.

    python tests/perf/bleaq_own_rule.py [--out results/own-rule] [--runs 5] [--jobs 2] [--write-readme] [--report-only]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from readme_table import write_section

import evobilevel as eb

ACCURACY = 1e-2
BUDGET = ["--max-ul-evals", "20000", "--max-ll-evals", "1000000"]


def good(result) -> bool:
    """Final answer within ACCURACY at both levels, with an optimal follower."""
    return (result.ul_error is not None and result.ul_error < ACCURACY and result.ll_error < ACCURACY
            and result.ll_gap is not None and result.ll_gap < ACCURACY)


def first_within(result) -> tuple[int, int] | None:
    """The evaluations (UL, LL) of the first history record within ACCURACY at both levels, feasible."""
    for record in result.history:
        if record.get("feasible") and record.get("ul_error") is not None and record["ul_error"] < ACCURACY \
                and record["ll_error"] < ACCURACY:
            return record["n_ul_evals"], record["n_ll_evals"]
    return None


def label(result) -> str:
    """A run's problem with its variant, where it has one (``SMD12 (bleaq2)``), as ``evobilevel report`` names it."""
    variant = result.problem_settings.get("variant")
    return f"{result.problem} ({variant})" if variant else result.problem


def table(out: Path) -> str:
    rows = ["| problem | runs | final answer within 1e-2 | stopped by its rule | UL evals | LL evals | "
            "UL evals / first within 1e-2 | LL evals / first within 1e-2 | time (s) |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for folder in sorted(out.glob("SMD*_5x5*"), key=lambda p: int(p.name[3:].split("_")[0])):
        results = [eb.load_result(f) for f in sorted(folder.rglob("run*.json"))]
        if not results:
            continue
        own = sum("budget" not in r.message for r in results)
        firsts = [(r, first_within(r)) for r in results]
        ul_ratio = [r.n_ul_evals / f[0] for r, f in firsts if f]
        ll_ratio = [r.n_ll_evals / f[1] for r, f in firsts if f]
        rows.append(
            f"| {label(results[0])} | {len(results)} | {sum(map(good, results))}/{len(results)} | "
            f"{own}/{len(results)} | {statistics.median(r.n_ul_evals for r in results):,.0f} | "
            f"{statistics.median(r.n_ll_evals for r in results):,.0f} | "
            f"{statistics.median(ul_ratio) if ul_ratio else float('nan'):.1f} | "
            f"{statistics.median(ll_ratio) if ll_ratio else float('nan'):.1f} | "
            f"{statistics.median(r.elapsed for r in results):.1f} |"
        )
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="results/own-rule")
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--write-readme", action="store_true")
    ap.add_argument("--report-only", action="store_true", help="tabulate the runs already in --out")
    args = ap.parse_args()
    if not args.report_only:
        common = ["--ul-dim", "5", "--ll-dim", "5", "--algorithms", "bleaq", "--runs", str(args.runs), "--jobs",
                  str(args.jobs), "--out", args.out, "--quiet", *BUDGET]
        subprocess.run(["evobilevel", "bench", "--problems", "SMD1-SMD11", *common], check=True)
        subprocess.run(["evobilevel", "bench", "--problems", "SMD12", "--variant", "bleaq2", *common], check=True)
    text = table(Path(args.out))
    print(text)
    if args.write_readme:
        write_section("bleaq-own-rule", (
            f"`python tests/perf/bleaq_own_rule.py --runs {args.runs} --jobs {args.jobs} --write-readme` (no "
            "target; budgets of 20,000 UL and 1,000,000 LL evaluations; medians over all runs of what a run spent "
            "before it stopped, and of its ratio to what it had spent when its answer first came within 1e-2 at "
            f"both levels; wall time with {args.jobs} run(s) at a time on a shared two-core machine):\n\n"
            + text))


if __name__ == "__main__":
    sys.exit(main())
