"""pymoo algorithms in the leader's seat: SMD1 with four single-objective algorithms, and NSGA-II on BMO1-BMO3.

    python tests/perf/pymoo_leader.py [--runs 11] [--write-readme]

Prints two tables and writes the front figure ``notebooks/figures/pymoo_fronts.png`` (BMO1 and BMO2, the median
run of each by IGD, with the known fronts); with ``--write-readme`` the tables go into README.md between the
``pymoo-smd`` and ``pymoo-fronts`` markers.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.soo.nonconvex.cmaes import CMAES
from pymoo.algorithms.soo.nonconvex.de import DE
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.algorithms.soo.nonconvex.pso import PSO
from readme_table import markdown_table, write_section

import evobilevel as eb
from evobilevel import plot
from evobilevel.indicators import front_quality

FIGURE = Path(__file__).resolve().parents[2] / "notebooks" / "figures" / "pymoo_fronts.png"
SINGLE = {"GA(pop_size=20)": lambda: GA(pop_size=20), "DE(pop_size=20)": lambda: DE(pop_size=20),
          "PSO(pop_size=20)": lambda: PSO(pop_size=20), "CMAES()": lambda: CMAES()}
POP_SIZE, GENERATIONS = 40, 50


def _median_iqr(values) -> str:
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    return f"{q50:,.0f} ({q75 - q25:,.0f})"


def single_objective(runs: int) -> list[list]:
    rows = []
    for size in ((2, 3), (5, 5)):
        p = eb.benchmarks.get("SMD1", ul_dim=size[0], ll_dim=size[1])
        for label, make in SINGLE.items():
            results = [eb.solve(p, algorithm=make(), seed=seed, target=1e-2, max_ul_evals=20_000,
                                max_ll_evals=1_000_000) for seed in range(runs)]
            ok = [r for r in results if r.success]
            print(f"SMD1 {size} {label}: {len(ok)}/{runs}", flush=True)
            rows.append([f"SMD1 {size}", label, f"{len(ok)}/{runs}",
                         _median_iqr([r.n_ul_evals for r in ok]) if ok else "-",
                         _median_iqr([r.n_ll_evals for r in ok]) if ok else "-",
                         f"{max(r.ll_gap for r in results):.1e}",
                         f"{statistics.median(r.elapsed for r in results):.2f}"])
    return rows


def fronts(runs: int) -> tuple[list[list], dict]:
    rows, median_runs = [], {}
    algorithm = eb.algorithms.PymooLeader(NSGA2(pop_size=POP_SIZE), termination=("n_gen", GENERATIONS))
    for name in ("BMO1", "BMO2", "BMO3"):
        p = eb.benchmarks.get(name)
        results = [eb.solve(p, algorithm=algorithm, seed=seed) for seed in range(runs)]
        quality = [front_quality(r.front.F, p) for r in results]
        igd = np.array([q.igd for q in quality])
        even = front_quality(p.pareto_front(POP_SIZE), p).igd
        median_runs[name] = results[int(np.argsort(igd, kind="stable")[(runs - 1) // 2])]
        print(f"{name}: IGD {np.median(igd):.4f}, even set {even:.4f}", flush=True)
        q25, q50, q75 = np.percentile(igd, [25, 50, 75])
        rows.append([name, f"{p.ul_dim}, {p.ll_dim}", p.n_objectives, f"{q50:.4f} ({q75 - q25:.4f})", f"{even:.4f}",
                     f"{q50 / even:.2f}", f"{statistics.median(q.hv_ratio for q in quality):.3f}",
                     f"{statistics.median(len(r.front) for r in results):g}",
                     f"{max(r.ll_gap for r in results):.1e}",
                     f"{statistics.median(r.n_ul_evals for r in results):,.0f}",
                     _median_iqr([r.n_ll_evals for r in results]),
                     f"{statistics.median(r.n_ll_evals_check for r in results):,.0f}",
                     f"{statistics.median(r.elapsed for r in results):.2f}"])
    return rows, median_runs


def draw(median_runs: dict, runs: int) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 4.4), layout="constrained")
    for ax, name in zip(fig.subplots(1, 2), ("BMO1", "BMO2")):
        plot.front(median_runs[name], ax=ax, title=f"{name}: the median of {runs} runs by IGD")
    fig.suptitle(f"NSGA-II (population {POP_SIZE}, {GENERATIONS} generations) at the upper level")
    plot.save_figure(fig, FIGURE)
    print(f"wrote {FIGURE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    smd = single_objective(args.runs)
    front_rows, median_runs = fronts(args.runs)
    draw(median_runs, args.runs)
    smd_text = (f"`python tests/perf/pymoo_leader.py` ({args.runs} seeds, target 1e-2 at both levels, budgets of "
                "20,000 UL and 1,000,000 LL evaluations; evaluations are medians (IQR) over the successful runs; "
                "largest LL gap over all runs; median wall time of a run, one process, on a shared two-core "
                "machine):\n\n" + markdown_table(
                    ["problem", "pymoo algorithm", "success", "UL evals", "LL evals", "largest LL gap", "time (s)"],
                    smd))
    front_text = (f"`python tests/perf/pymoo_leader.py` (NSGA-II with a population of {POP_SIZE}, {GENERATIONS} "
                  f"generations, {args.runs} seeds; IGD median (IQR) against 1,000 points of the known front, beside "
                  "the IGD of an evenly spread set of as many points as the population; HV ratio: hypervolume over "
                  "the known front's, reference point the nadir plus a tenth of the extent; largest LL gap of any "
                  "returned pair of any run; evaluations and time are medians, the check's LL evaluations apart):"
                  "\n\n" + markdown_table(
                      ["problem", "size", "objectives", "IGD", "even set's IGD", "ratio", "HV ratio", "front",
                       "largest LL gap", "UL evals", "LL evals", "check's LL evals", "time (s)"], front_rows))
    print(smd_text, front_text, sep="\n\n")
    if args.write_readme:
        write_section("pymoo-smd", smd_text)
        write_section("pymoo-fronts", front_text)


if __name__ == "__main__":
    main()
