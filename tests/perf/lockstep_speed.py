"""Wall time, evaluations and evaluator calls of LockstepRefinement against LocalRefinement.

Not a test. Run from the repository root with one BLAS thread::

    OPENBLAS_NUM_THREADS=1 python tests/perf/lockstep_speed.py [--repeats 5] [--scale 0.01]
    OPENBLAS_NUM_THREADS=1 python tests/perf/lockstep_speed.py --suite [--seeds 3 11 19]

For batches of 1, 8 and 32 rows of the lower levels of SMD1, SMD8 (Rosenbrock), SMD10 and SMD12 (constrained) at
(5, 5) and (10, 10), both solvers refine the same rows from the same warm starts (the exact optimum moved by
``scale`` times each variable's range, as an archived neighbour's answer would be), alternating in one process.
Printed per case: the median wall time per batch of each solver and their ratio (LocalRefinement / Lockstep, above 1
means the lock-step solver is faster), the median evaluations per row and the evaluator calls per batch, and the
share of rows each solver reports as converged.

With ``--suite``: on the lower levels of SMD1-SMD12 at (5, 5) and (10, 10) and TP1-TP10, 6 rows per seed, from
starts 0.1 % and 1 % of the range from the optimum, the rows each solver reports as converged and the rows within
1e-6 (relative to 1 + |f*|) of the optimum, the largest difference of f (relative to 1 + |f|) where both succeed
at the optimum, the median evaluations per row and the evaluator calls per batch; then the totals.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for lower_cases

from lower_cases import SMD, TP, CallCounter, case, perturbed  # noqa: E402

import evobilevel as eb  # noqa: E402
from evobilevel.lower import LocalRefinement  # noqa: E402
from evobilevel.lower.lockstep import LockstepRefinement  # noqa: E402

PROBLEMS = ("SMD1", "SMD8", "SMD10", "SMD12")
SIZES = ((5, 5), (10, 10))
BATCHES = (1, 8, 32)


def run(solver, problem, X, Y0):
    """One batch: (seconds, solution, evaluator calls)."""
    ev = CallCounter(problem)
    start = time.perf_counter()
    solution = solver.solve(ev, X, np.random.default_rng(0), Y0=Y0)
    return time.perf_counter() - start, solution, ev.ll_calls


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
            t, solution, n_calls = run(solvers[key], problem, X, Y0)
            seconds[key].append(t)
            evals[key].extend(solution.n_evals)
            calls[key].append(n_calls)
            success[key].extend(solution.success)
    ms = {key: 1e3 * np.median(seconds[key]) for key in solvers}
    return (f"{name:<6}{str(size):<9}{batch:>6}{ms['local']:>10.1f}{ms['lockstep']:>10.1f}"
            f"{ms['local'] / ms['lockstep']:>8.2f}{np.median(evals['local']):>8.0f}{np.median(evals['lockstep']):>8.0f}"
            f"{np.median(calls['local']):>8.0f}{np.median(calls['lockstep']):>8.0f}"
            f"{np.mean(success['local']):>7.2f}{np.mean(success['lockstep']):>7.2f}")


def suite(seeds) -> None:
    """Success, optimum, agreement of f, evaluations and calls on both suites; one line per case and start."""
    cases = [(name, size) for size in ((5, 5), (10, 10)) for name in SMD] + [(name, None) for name in TP]
    print(f"{'problem':<17}{'start':>6}{'converged':>11}{'optimal':>9}{'max |df|':>10}{'evals/row':>11}"
          f"{'ratio':>7}{'calls':>11}")
    totals = np.zeros(4, int)
    ratios, agree, lower, pairs = [], 0, 0, 0
    for name, size in cases:
        for scale in (1e-3, 1e-2):
            rows = {"local": [], "lockstep": []}
            for seed in seeds:
                problem, X, Y_star, f_star = case(name, size, n=6, seed=seed)
                Y0 = perturbed(problem, Y_star, scale, seed=seed + 1)
                for key, solver in (("local", LocalRefinement()), ("lockstep", LockstepRefinement())):
                    _, solution, n_calls = run(solver, problem, X, Y0)
                    optimal = np.abs(solution.f - f_star) <= 1e-6 * (1 + np.abs(f_star))
                    rows[key].append((solution.f, solution.success, optimal, solution.n_evals, n_calls))
            f_l, ok_l, opt_l, ev_l, calls_l = (np.concatenate([np.atleast_1d(r[j]) for r in rows["local"]])
                                                for j in range(5))
            f_s, ok_s, opt_s, ev_s, calls_s = (np.concatenate([np.atleast_1d(r[j]) for r in rows["lockstep"]])
                                                for j in range(5))
            both = ok_l & ok_s & opt_l & opt_s
            diff = np.abs(f_s - f_l)[both] / (1 + np.abs(f_l[both]))
            agree += int(np.sum(diff <= 1e-8))
            lower += int(np.sum((diff > 1e-8) & (f_s < f_l)[both]))
            pairs += int(both.sum())
            totals += [ok_l.sum(), ok_s.sum(), opt_l.sum(), opt_s.sum()]
            ratios.append(np.median(ev_s) / np.median(ev_l))
            print(f"{name + ' ' + str(size or ''):<17}{scale:>6g}{ok_l.sum():>5}/{ok_s.sum():<5}"
                  f"{opt_l.sum():>4}/{opt_s.sum():<4}{diff.max(initial=0):>10.0e}"
                  f"{np.median(ev_l):>5.0f}/{np.median(ev_s):<5.0f}{ratios[-1]:>7.2f}"
                  f"{np.median(calls_l):>5.0f}/{np.median(calls_s):<5.0f}", flush=True)
    print(f"\ntotal: converged {totals[0]}/{totals[1]}, optimal {totals[2]}/{totals[3]} (local/lockstep); "
          f"f within 1e-8 on {agree} of {pairs} rows where both succeed at the optimum (lockstep's lower on "
          f"{lower} of the others); evaluations per row "
          f"lockstep/local: median of the cases {np.median(ratios):.2f}, largest {np.max(ratios):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="batches per case (default 5)")
    parser.add_argument("--scale", type=float, default=0.01, help="start perturbation, share of the range")
    parser.add_argument("--problems", nargs="*", default=list(PROBLEMS))
    parser.add_argument("--suite", action="store_true", help="compare on SMD1-SMD12 and TP1-TP10 instead")
    parser.add_argument("--seeds", nargs="*", type=int, default=[3, 11, 19], help="upper-level points (--suite)")
    args = parser.parse_args()
    threads = {k: os.environ.get(k, "unset") for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    print(f"evobilevel {eb.__version__}, numpy {np.__version__}, {os.cpu_count()} cpus, {threads}")
    if args.suite:
        suite(args.seeds)
        return
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
