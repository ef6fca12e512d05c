"""Speed-up against workers for an expensive black box: wall time of whole runs on a dask LocalCluster of 1, 2, 4
and 8 single-threaded workers against one process, with the results checked identical; prints the README's table.

Not a test. Run from the repository root::

    python tests/perf/workers.py [--repeats 3] [--delay 0.002] [--workers 1,2,4,8] [--problems SMD1,SMD10]
                                 [--algorithms bleaq,nested] [--tasks auto] [--write-readme]

The problems are SMD1 and SMD10 (constraints at both levels) at (3, 3) as per-point Python functions whose lower
level waits ``--delay`` seconds per point, as a simulator would: waiting leaves the cores free, so eight workers on a
two-core machine stand for eight machines. BLEAQ runs to the target 1e-2; the nested algorithm runs a population of
32 for one generation (64 lower-level solves) and both end with the final lower-level check, through the same
workers. The engine chooses row tasks or evaluation tasks itself (``tasks="auto"``; ``--tasks`` forces either). Each
configuration runs ``--repeats`` times, alternating with the others, each on a cluster of its own started before the
clock and closed after it; the table shows medians.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import contextmanager

from readme_table import markdown_table, write_section

import evobilevel as eb
from evobilevel.algorithms import Nested
from evobilevel.parallel import TASK_KINDS


class SlowFollower:
    """The benchmark's lower-level objective, one point per call, plus a fixed wait (an expensive simulator)."""

    def __init__(self, base: eb.Problem, delay: float, part: int):
        self.base, self.delay, self.part = base, delay, part

    def __call__(self, x, y):
        time.sleep(self.delay)
        value = self.base.lower(x, y)[self.part]
        return float(value) if self.part == 0 else value


class Leader:
    """The benchmark's upper-level objective (part 0) or constraints (part 1), one point per call."""

    def __init__(self, base: eb.Problem, part: int):
        self.base, self.part = base, part

    def __call__(self, x, y):
        value = self.base.upper(x, y)[self.part]
        return float(value) if self.part == 0 else value


def slow_problem(name: str, delay: float) -> eb.Problem:
    base = eb.benchmarks.get(name, ul_dim=3, ll_dim=3)
    return eb.Problem(Leader(base, 0), SlowFollower(base, delay, 0), base.ul_bounds, base.ll_bounds,
                      upper_constraints=Leader(base, 1) if base.n_ul_constraints else None,
                      lower_constraints=SlowFollower(base, 0.0, 1) if base.n_ll_constraints else None,
                      n_ul_constraints=base.n_ul_constraints or None, n_ll_constraints=base.n_ll_constraints or None,
                      name=f"{name}(3, 3) + {delay * 1e3:g} ms", optimum=base.optimum)


def run(problem, algorithm: str, workers: int, client, chunk_size: int = 4,
        tasks: str = "auto") -> tuple[float, eb.Result]:
    settings = {"bleaq": dict(algorithm="bleaq", target=1e-2),
                "nested": dict(algorithm=Nested(pop_size=32, max_generations=1))}[algorithm]
    settings["chunk_size"] = chunk_size
    start = time.perf_counter()
    if workers == 0:
        result = eb.solve(problem, seed=0, **settings)
    else:
        from joblib import parallel_config

        with parallel_config(backend="dask", client=client):
            result = eb.solve(problem, seed=0, n_jobs=-1, tasks=tasks, **settings)
    return time.perf_counter() - start, result


def fingerprint(r: eb.Result) -> tuple:
    return (tuple(r.x), tuple(r.y), r.F, r.f, r.n_ul_evals, r.n_ll_evals, r.ll_gap, r.n_ll_evals_check)


def measure(problems, algorithms, worker_counts, delay, repeats, chunk_size: int = 4,
            tasks: str = "auto") -> list[list]:
    rows = []
    for name in problems:
        problem = slow_problem(name, delay)
        for algorithm in algorithms:
            times = {w: [] for w in [0, *worker_counts]}
            reference, same = None, {w: True for w in times}
            for repeat in range(repeats):
                for w in times:
                    with cluster_client(w) as client:
                        seconds, r = run(problem, algorithm, w, client, chunk_size, tasks)
                    times[w].append(seconds)
                    reference = reference or fingerprint(r)
                    same[w] &= fingerprint(r) == reference
                    print(f"{name} {algorithm} workers={w} repeat {repeat}: {seconds:.2f} s (UL {r.n_ul_evals}, "
                          f"LL {r.n_ll_evals} + check {r.n_ll_evals_check})", flush=True)
            base = statistics.median(times[0])
            for w in times:
                median = statistics.median(times[w])
                rows.append([name, algorithm, "one process" if w == 0 else f"{w} dask workers", f"{median:.2f}",
                             f"{base / median:.2f}x", "yes" if same[w] else "NO"])
    return rows


@contextmanager
def cluster_client(workers: int):
    """A client of a fresh LocalCluster of ``workers`` single-threaded worker processes (None for 0), closed after
    the run: one cluster at a time, as a user has, since idle workers' heartbeats take a share of a small
    machine's cores and slow every round trip of the cluster in use."""
    if workers == 0:
        yield None
        return
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(workers)
        yield client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.002, help="seconds per lower-level point")
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--problems", default="SMD1,SMD10")
    parser.add_argument("--algorithms", default="bleaq,nested")
    parser.add_argument("--chunk-size", type=int, default=4, help="rows per chunk (eb.solve's chunk_size)")
    parser.add_argument("--tasks", default="auto", choices=TASK_KINDS,
                        help="what a parallel task is (eb.solve's tasks)")
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    rows = measure(args.problems.split(","), args.algorithms.split(","),
                   [int(w) for w in args.workers.split(",")], args.delay, args.repeats, args.chunk_size, args.tasks)
    table = markdown_table(["problem", "algorithm", "workers", "median wall time (s)", "speed-up",
                            "same result as one process"], rows)
    options = ("" if args.chunk_size == 4 else f" --chunk-size {args.chunk_size}") + (
        "" if args.tasks == "auto" else f" --tasks {args.tasks}")
    note = (f"`python tests/perf/workers.py --repeats {args.repeats}{options} --write-readme`: per-point functions, "
            f"the lower level waiting {args.delay * 1e3:g} ms per point; a dask LocalCluster of single-threaded "
            f"workers per run, one cluster at a time, on a shared two-core machine; medians of {args.repeats} runs; "
            f"`tasks=\"{args.tasks}\"`.")
    print()
    print(table)
    if args.write_readme:
        write_section("workers", note + "\n\n" + table)
        print("README.md updated")


if __name__ == "__main__":
    main()
