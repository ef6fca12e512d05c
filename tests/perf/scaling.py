"""Parallel scaling of the lower-level solves: wall time and speed-up for 1 and 2 processes and a 2-worker dask
cluster, with results checked identical; prints the README's table.

Not a test. Run from the repository root::

    python tests/perf/scaling.py [--repeats 5] [--delay 0.005] [--algorithms nested,bleaq] [--no-dask]
                                 [--write-readme]

The problem is SMD1 at (ul_dim, ll_dim) = (2, 3) whose lower-level function also waits ``--delay`` seconds per
call, as a simulator with a fixed cost per (vectorised) call would: every lower-level solver generation is one
call for all rows of a chunk, so the delay is paid per call, not per point. Waiting rather than computing keeps the
figure about the engine (chunking, dispatch, transfer) and not about how busy the shared machine's cores are. Each
configuration runs ``--repeats`` times, alternating with the others so that a noisy period hurts all of them alike;
the table shows medians.
"""

from __future__ import annotations

import argparse
import statistics
import textwrap
import time

import numpy as np
from readme_table import markdown_table, write_section

import evobilevel as eb
from evobilevel.algorithms import BLEAQ, Nested
from evobilevel.parallel import cluster_backend

ALGORITHMS = {
    # Six generations of 16 members: 112 lower-level solves in 28 chunks of 4.
    "nested": lambda: Nested(pop_size=16, max_generations=5),
    # BLEAQ settles most lower levels by prediction or a short refinement: few rows per generation to share out.
    "bleaq": lambda: BLEAQ(max_generations=30),
}


class SlowLower:
    """SMD1's lower-level objective plus a fixed wait per call (a stand-in for an expensive simulator)."""

    def __init__(self, base: eb.Problem, delay: float):
        self.base = base
        self.delay = delay

    def __call__(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        time.sleep(self.delay)
        return self.base.lower(X, Y)[0]


class Upper:
    """SMD1's upper-level objective (no wait: the upper level is evaluated in the main process)."""

    def __init__(self, base: eb.Problem):
        self.base = base

    def __call__(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        return self.base.upper(X, Y)[0]


def slow_problem(delay: float) -> eb.Problem:
    base = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)
    return eb.Problem(Upper(base), SlowLower(base, delay), base.ul_bounds, base.ll_bounds, vectorized=True,
                      name=f"SMD1+{delay * 1e3:g}ms", optimum=base.optimum)


def fingerprint(r: eb.Result) -> tuple:
    """What must not depend on how the lower levels were distributed."""
    return (tuple(r.x), tuple(r.y), r.F, r.f, r.n_ul_evals, r.n_ll_evals,
            tuple(r.history.column("best_F")), tuple(r.history.column("n_ll_evals")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.005, help="seconds per lower-level call")
    parser.add_argument("--algorithms", default="nested,bleaq")
    parser.add_argument("--no-dask", action="store_true", help="skip the dask LocalCluster")
    parser.add_argument("--write-readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args()

    problem = slow_problem(args.delay)
    cluster = None
    configs = [("inline", 1), ("loky", 2)]
    if not args.no_dask:
        from dask.distributed import LocalCluster

        cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                               dashboard_address=None)
        configs.append(("dask", 2))

    rows = []
    try:
        # The first parallel call of a process starts the loky workers (a dask cluster's are started above): timed
        # once here and kept out of the table, which is about the steady state of a run.
        warm_up = Nested(pop_size=8, max_generations=1)
        start = time.perf_counter()
        eb.solve(problem, algorithm=warm_up, n_jobs=2, check_ll=False)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        eb.solve(problem, algorithm=warm_up, n_jobs=2, check_ll=False)
        startup = cold - (time.perf_counter() - start)
        print(f"loky worker start-up: {startup:.2f} s", flush=True)
        for name in args.algorithms.split(","):
            times: dict[tuple[str, int], list[float]] = {c: [] for c in configs}
            reference, identical = None, {c: True for c in configs}
            for repeat in range(args.repeats):
                for backend, n_jobs in configs:
                    start = time.perf_counter()
                    if backend == "dask":
                        with cluster_backend(cluster.scheduler_address):
                            r = eb.solve(problem, algorithm=ALGORITHMS[name](), seed=0, n_jobs=n_jobs, check_ll=False)
                    else:
                        r = eb.solve(problem, algorithm=ALGORITHMS[name](), seed=0, n_jobs=n_jobs, check_ll=False)
                    seconds = time.perf_counter() - start
                    times[(backend, n_jobs)].append(seconds)
                    reference = reference or fingerprint(r)
                    identical[(backend, n_jobs)] &= fingerprint(r) == reference
                    print(f"{name} {backend} n_jobs={n_jobs} repeat {repeat}: {seconds:.2f} s "
                          f"(UL {r.n_ul_evals}, LL {r.n_ll_evals})", flush=True)
            base = statistics.median(times[configs[0]])
            for backend, n_jobs in configs:
                median = statistics.median(times[(backend, n_jobs)])
                workers = "1 (no joblib)" if backend == "inline" else f"{n_jobs} processes"
                rows.append([name, backend, workers, f"{median:.2f}", f"{base / median:.2f}x",
                             "yes" if identical[(backend, n_jobs)] else "NO"])
    finally:
        if cluster is not None:
            cluster.close()

    table = markdown_table(["algorithm", "backend", "workers", "median wall time (s)", "speed-up",
                            "same result as inline"], rows)
    note = (f"SMD1 at (2, 3) with a {args.delay * 1e3:g} ms wait per lower-level call; nested with 16 members "
            f"for 5 generations, bleaq for 30 generations; seed 0; medians of {args.repeats} runs on a shared "
            f"2-core machine (`python tests/perf/scaling.py --write-readme`). Starting the loky workers, once per "
            f"process, took another {startup:.1f} s.")
    print()
    print(table)
    if args.write_readme:
        write_section("scaling", textwrap.fill(note, width=115) + "\n\n" + table)
        print("README.md updated")


if __name__ == "__main__":
    main()
