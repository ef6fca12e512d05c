"""Wall time, evaluations and evaluator calls of LockstepRefinement against LocalRefinement.

Not a test. Run from the repository root with one BLAS thread::

    OPENBLAS_NUM_THREADS=1 python tests/perf/lockstep_speed.py [--repeats 5] [--scale 0.01]

For batches of 1, 8 and 32 rows of the lower levels of SMD1, SMD8 (Rosenbrock), SMD10 and SMD12 (constrained) at
(5, 5) and (10, 10), both solvers refine the same rows from the same warm starts (the exact optimum moved by
``scale`` times each variable's range, as an archived neighbour's answer would be), alternating in one process.
Printed per case: the median wall time per batch of each solver and their ratio (LocalRefinement / Lockstep, above 1
means the lock-step solver is faster), the median evaluations per row and the evaluator calls per batch, and the
share of rows each solver reports as converged.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for lower_cases

from lower_cases import CallCounter, case, perturbed  # noqa: E402

import evobilevel as eb  # noqa: E402
from evobilevel.lower import LocalRefinement  # noqa: E402
from evobilevel.lower.lockstep import LockstepRefinement  # noqa: E402

PROBLEMS = ("SMD1", "SMD8", "SMD10", "SMD12")
SIZES = ((5, 5), (10, 10))
BATCHES = (1, 8, 32)


def run(solver, problem, X, Y0):
    """One batch: (seconds, evaluations per row, evaluator calls, converged rows)."""
    ev = CallCounter(problem)
    start = time.perf_counter()
    solution = solver.solve(ev, X, np.random.default_rng(0), Y0=Y0)
    seconds = time.perf_counter() - start
    return seconds, solution.n_evals, ev.ll_calls, solution.success


def compare(name: str, size, batch: int, repeats: int, scale: float) -> str:
    """Both solvers on ``repeats`` batches of ``batch`` rows, alternating; one line of medians."""
    solvers = {"local": LocalRefinement(), "lockstep": LockstepRefinement()}
    seconds = {key: [] for key in solvers}
    evals = {key: [] for key in solvers}
    calls = {key: [] for key in solvers}
    success = {key: [] for key in solvers}
    for r in range(repeats):
        problem, X, Y_star, _ = case(name, size, n=batch, seed=r)
        Y0 = perturbed(problem, Y_star, scale, seed=100 + r)
        order = list(solvers) if r % 2 == 0 else list(solvers)[::-1]
        for key in order:
            t, n_evals, n_calls, ok = run(solvers[key], problem, X, Y0)
            seconds[key].append(t)
            evals[key].extend(n_evals)
            calls[key].append(n_calls)
            success[key].extend(ok)
    ms = {key: 1e3 * np.median(seconds[key]) for key in solvers}
    return (f"{name:<6}{str(size):<9}{batch:>6}{ms['local']:>10.1f}{ms['lockstep']:>10.1f}"
            f"{ms['local'] / ms['lockstep']:>8.2f}{np.median(evals['local']):>8.0f}{np.median(evals['lockstep']):>8.0f}"
            f"{np.median(calls['local']):>8.0f}{np.median(calls['lockstep']):>8.0f}"
            f"{np.mean(success['local']):>7.2f}{np.mean(success['lockstep']):>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="batches per case (default 5)")
    parser.add_argument("--scale", type=float, default=0.01, help="start perturbation, share of the range")
    parser.add_argument("--problems", nargs="*", default=list(PROBLEMS))
    args = parser.parse_args()
    threads = {k: os.environ.get(k, "unset") for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    print(f"evobilevel {eb.__version__}, numpy {np.__version__}, {os.cpu_count()} cpus, {threads}")
    print(f"medians over {args.repeats} batches; starts: optimum + N(0, {args.scale:g} * range)\n")
    print(f"{'':<15}{'':>6}{'ms per batch':>20}{'':>8}{'evals/row':>16}{'calls/batch':>16}{'converged':>14}")
    print(f"{'problem':<15}{'rows':>6}{'local':>10}{'lockstep':>10}{'ratio':>8}{'local':>8}{'lockstep':>8}"
          f"{'local':>8}{'lockstep':>8}{'local':>7}{'lockst':>7}")
    for name in args.problems:
        for size in SIZES:
            for batch in BATCHES:
                print(compare(name, size, batch, args.repeats, args.scale), flush=True)


if __name__ == "__main__":
    main()
