"""Wall time of BLEAQ runs in two checkouts of the code, measured run by run in turn.

A speed change is measured against the code before it on the same machine at the same time: wall times of a shared
machine drift by a sixth from one hour to the next, more than many changes gain. Each checkout runs in a process of
its own that stays up (its imports are not timed), and the two are given the same runs alternately, the order
swapped from one seed to the next, so that a slow minute costs both. A run's time is its own ``elapsed``. Where the
two checkouts take different paths (a change of rounding), the time per LL evaluation compares the work done.

    python tests/perf/speed_ab.py --base ../old-checkout --changed . --size 5x5 --problems SMD8,SMD10 --runs 11

Prints one line per problem: median and summed run time in each checkout, their ratio, the time per LL evaluation
and the successes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

# Reads "problem ul_dim ll_dim seed" lines and answers each with one JSON line: elapsed, UL and LL evaluations,
# success of that run and the evobilevel module it ran, the run made as the benchmark grids make it (target 1e-2,
# the (10, 10) grid's budgets).
WORKER = r"""
import json, sys
import evobilevel as eb
for line in sys.stdin:
    name, ul_dim, ll_dim, seed = line.split()
    variant = {"variant": "bleaq2"} if name == "SMD12" else {}
    problem = eb.benchmarks.get(name, ul_dim=int(ul_dim), ll_dim=int(ll_dim), **variant)
    r = eb.solve(problem, seed=int(seed), target=1e-2, max_ul_evals=50_000, max_ll_evals=3_000_000)
    print(json.dumps([r.elapsed, r.n_ul_evals, r.n_ll_evals, bool(r.success), eb.__file__]), flush=True)
"""


def start(checkout: str) -> subprocess.Popen:
    """A worker process importing evobilevel from ``checkout`` (run there: ``python -c`` puts its working
    directory first on the path, before PYTHONPATH and an installed copy)."""
    checkout = os.path.abspath(checkout)
    env = dict(os.environ, PYTHONPATH=checkout)
    return subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=env, cwd=checkout)


def run(worker: subprocess.Popen, name: str, size: str, seed: int) -> list:
    worker.stdin.write(f"{name} {size.replace('x', ' ')} {seed}\n")
    worker.stdin.flush()
    return json.loads(worker.stdout.readline())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="checkout of the code before")
    ap.add_argument("--changed", required=True, help="checkout of the code after")
    ap.add_argument("--size", default="5x5")
    ap.add_argument("--problems", default="SMD7,SMD8,SMD9,SMD10,SMD12")
    ap.add_argument("--runs", type=int, default=11, help="seeds 0 .. runs - 1")
    args = ap.parse_args()
    checkouts = {"base": os.path.abspath(args.base), "changed": os.path.abspath(args.changed)}
    workers = {which: start(path) for which, path in checkouts.items()}
    for name in args.problems.split(","):
        runs = {"base": [], "changed": []}
        for seed in range(args.runs):
            for which in (("base", "changed") if seed % 2 == 0 else ("changed", "base")):
                elapsed, n_ul, n_ll, success, module = run(workers[which], name, args.size, seed)
                if not module.startswith(checkouts[which] + os.sep):
                    sys.exit(f"the {which} worker imported {module}, not the checkout {checkouts[which]}")
                runs[which].append([elapsed, n_ul, n_ll, success])
        a, b = np.array(runs["base"], float), np.array(runs["changed"], float)
        per_a, per_b = a[:, 0].sum() / a[:, 2].sum() * 1e6, b[:, 0].sum() / b[:, 2].sum() * 1e6
        print(f"{name} ({args.size}): median run {np.median(a[:, 0]):.2f} -> {np.median(b[:, 0]):.2f} s, "
              f"sum {a[:, 0].sum():.1f} -> {b[:, 0].sum():.1f} s ({b[:, 0].sum() / a[:, 0].sum():.2f}x), "
              f"per LL evaluation {per_a:.1f} -> {per_b:.1f} us ({per_b / per_a:.2f}x), "
              f"successes {int(a[:, 3].sum())} -> {int(b[:, 3].sum())} of {args.runs}", flush=True)
    for worker in workers.values():
        worker.stdin.close()
        worker.wait()


if __name__ == "__main__":
    main()
