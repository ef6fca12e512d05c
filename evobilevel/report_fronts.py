"""The report's part for leaders with several objectives: per problem instance and algorithm, the fronts' sizes,
their IGD and hypervolume against the known front, the largest lower-level gap, evaluations and time; and a
figure of the front of the median run.

pymoo (the indicators) and matplotlib (the figures) are imported when used.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from . import benchmarks
from .indicators import FrontQuality, front_quality

__all__ = ["FrontRow", "summarise_fronts", "fronts_markdown", "fronts_csv", "write_front_figures"]


@dataclass
class FrontRow:
    """The table line of one algorithm on one problem instance whose leader has several objectives.

    Medians are over the runs; IGD and hypervolume are None where the problem's front is not known.
    """

    ul_dim: int
    ll_dim: int
    problem: str
    algorithm: str
    n_runs: int
    front_size_median: float
    igd_median: float | None
    igd_iqr: float | None
    hv_ratio_median: float | None
    ll_gap_max: float | None
    ul_evals_median: float
    ll_evals_median: float
    elapsed_median: float
    median_run: Path | None = None


def _quality(result) -> FrontQuality | None:
    try:
        problem = benchmarks.from_settings(result.problem, result.problem_settings or {})
    except (ValueError, TypeError):  # a user's problem: no known front
        return None
    return front_quality(result.front.F, problem)


def summarise_fronts(runs: Sequence) -> list[FrontRow]:
    """One :class:`FrontRow` per (size, problem, algorithm) of the runs (``RunRecord``) that have a front."""
    groups: dict[tuple, list] = {}
    for run in runs:
        groups.setdefault((*run.instance[:3], run.algorithm), []).append(run)
    rows = []
    for (ul_dim, ll_dim, problem, algorithm), group in sorted(groups.items()):
        results = [run.result for run in group]
        qualities = [_quality(r) for r in results]
        known = [q for q in qualities if q is not None]
        igd = [q.igd for q in known]
        median_run = None
        if known:
            # The run whose IGD is the median one (the lower middle for an even count), for the figure.
            order = np.argsort(igd, kind="stable")
            median_run = [run for run, q in zip(group, qualities) if q is not None][order[(len(igd) - 1) // 2]].path
        gaps = [r.ll_gap for r in results if r.ll_gap is not None]
        rows.append(FrontRow(
            ul_dim=ul_dim, ll_dim=ll_dim, problem=problem, algorithm=algorithm, n_runs=len(results),
            front_size_median=float(np.median([len(r.front) for r in results])),
            igd_median=float(np.median(igd)) if igd else None,
            igd_iqr=float(np.subtract(*np.percentile(igd, [75, 25]))) if igd else None,
            hv_ratio_median=float(np.median([q.hv_ratio for q in known])) if known else None,
            ll_gap_max=max(gaps) if gaps else None,
            ul_evals_median=float(np.median([r.n_ul_evals for r in results])),
            ll_evals_median=float(np.median([r.n_ll_evals for r in results])),
            elapsed_median=float(np.median([r.elapsed for r in results])),
            median_run=median_run,
        ))
    return rows


def _number(value: float | None, fmt: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, fmt)


def fronts_markdown(rows: Sequence[FrontRow], figures: dict | None = None) -> str:
    """The markdown section of the fronts' table (empty when there are no rows)."""
    if not rows:
        return ""
    figures = figures or {}
    lines = [
        "## Leaders with several objectives", "",
        "- **front**: non-dominated pairs a run returned (median over runs).",
        "- **IGD**: pymoo's inverted generational distance from the known front (1,000 points spread along it) to "
        "the returned front, median (IQR) over runs; **HV ratio**: the returned front's hypervolume over the known "
        "front's, both up to the problem's reference point (its nadir plus a tenth of its extent).",
        "- **largest LL gap**: the largest lower-level gap of any returned pair in any run (independent check solve).",
        "",
        "| problem | size | algorithm | runs | front | IGD | HV ratio | largest LL gap | UL evals | LL evals | "
        "time (s) |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        igd = _number(r.igd_median, ".4f") + ("" if r.igd_iqr is None else f" ({r.igd_iqr:.4f})")
        lines.append(f"| {r.problem} | ({r.ul_dim}, {r.ll_dim}) | {r.algorithm} | {r.n_runs} | "
                     f"{r.front_size_median:g} | {igd} | {_number(r.hv_ratio_median, '.3f')} | "
                     f"{_number(r.ll_gap_max, '.1e')} | {r.ul_evals_median:.0f} | {r.ll_evals_median:.0f} | "
                     f"{r.elapsed_median:.3g} |")
    lines.append("")
    for caption, path in figures.values():
        lines += [f"![{caption}]({path})", ""]
    return "\n".join(lines)


def fronts_csv(rows: Sequence[FrontRow]) -> str:
    """The fronts' table as CSV, one line per (size, problem, algorithm), the :class:`FrontRow` fields as columns
    (``median_run`` aside); empty cells for none."""
    names = [fl.name for fl in fields(FrontRow) if fl.name != "median_run"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for r in rows:
        writer.writerow(["" if getattr(r, k) is None else getattr(r, k) for k in names])
    return out.getvalue()


def write_front_figures(rows: Sequence[FrontRow], runs: Sequence, out: Path) -> tuple[dict, list[Path]]:
    """Per row, the front of its median run (by IGD) with the known front; returns the links and the files."""
    from . import plot
    from .report import file_key

    by_path = {run.path: run for run in runs}
    links, written = {}, []
    for r in rows:
        if r.median_run is None:
            continue
        run = by_path[r.median_run]
        name = f"front_{file_key(r.problem)}_{r.ul_dim}x{r.ll_dim}_{file_key(r.algorithm)}.png"
        fig = plot.front(run.result, title=f"{r.problem} ({r.ul_dim}, {r.ll_dim}) · {r.algorithm}: median run "
                                           f"of {r.n_runs} by IGD")
        written.append(plot.save_figure(fig, out / name))
        links[(r.problem, r.ul_dim, r.ll_dim, r.algorithm)] = (f"{r.problem} front", name)
    return links, written

