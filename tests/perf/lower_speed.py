"""Speed and evaluation counts of the lower-level solvers; prints the figures quoted in the README.

Not a test. Run from the repository root::

    python tests/perf/lower_speed.py [--rows 20] [--seeds 5] [--ga-rows 5]

(a) Overhead: wall time per lower-level evaluation of the batched DifferentialEvolution on 20 SMD1 lower
    levels (5 variables each) against the time the same number of points takes in one ``problem.lower`` call.
(b) Per solve: median evaluations and wall time of DE + polish and of pymoo's GA (through PymooSolver) on the
    5-variable lower levels of SMD1 (sphere + tan link), SMD3 (Rastrigin + tan link) and SMD5 (Rosenbrock),
    with the share of solves within 1e-6 of the exact lower-level optimum; and the cost of verifying a warm
    start at the exact optimum with LocalRefinement.

scipy's L-BFGS-B and SLSQP (the polish) slow down by an order of magnitude when a multi-threaded BLAS competes
with other processes for the cores; the script prints the thread settings it ran with.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from pymoo.algorithms.soo.nonconvex.ga import GA

import evobilevel as eb
from evobilevel.evaluator import Evaluator
from evobilevel.lower import DifferentialEvolution, LocalRefinement, PymooSolver, default_solver

SIZE = {"ul_dim": 5, "ll_dim": 5}


def upper_points(problem, n: int, rng: np.random.Generator) -> np.ndarray:
    lo, hi = problem.ul_bounds
    return lo + rng.random((n, problem.ul_dim)) * (hi - lo)


def run(solver, problem, X, seed: int, Y0=None):
    """One batched solve: (solution, evaluations, seconds)."""
    ev = Evaluator(problem)
    start = time.perf_counter()
    solution = solver.solve(ev, X, np.random.default_rng(seed), Y0=Y0)
    return solution, ev.n_ll_evals, time.perf_counter() - start


def batch_seconds(problem, X, n_points: int, rng: np.random.Generator, repeats: int = 5) -> float:
    """Best time of one ``problem.lower`` call on n_points random points (x taken from the rows of X)."""
    lo, hi = problem.ll_bounds
    Xb = X[np.arange(n_points) % X.shape[0]]
    Yb = lo + rng.random((n_points, problem.ll_dim)) * (hi - lo)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        problem.lower(Xb, Yb)
        best = min(best, time.perf_counter() - start)
    return best


def overhead(n_rows: int, n_seeds: int) -> None:
    problem = eb.benchmarks.get("SMD1", **SIZE)
    print(f"(a) overhead on {n_rows} SMD1 lower levels at once ({problem.ll_dim} variables), "
          f"median of {n_seeds} seeds")
    print(f"    {'solver':<22}{'evals':>9}{'us/eval':>10}{'one batch us/eval':>19}{'overhead':>10}")
    for label, solver in (("DE (no polish)", DifferentialEvolution(polish=False)),
                          ("DE + polish", default_solver())):
        rows = []
        for seed in range(n_seeds):
            rng = np.random.default_rng(seed)
            X = upper_points(problem, n_rows, rng)
            _, n_evals, seconds = run(solver, problem, X, seed)
            rows.append((n_evals, seconds, batch_seconds(problem, X, n_evals, rng)))
        n_evals, seconds, batch = np.median(np.array(rows), axis=0)
        print(f"    {label:<22}{n_evals:>9.0f}{1e6 * seconds / n_evals:>10.2f}{1e6 * batch / n_evals:>19.3f}"
              f"{seconds / batch:>9.0f}x")


def per_solve(n_rows: int, n_seeds: int, ga_rows: int) -> None:
    solvers = (  # label, solver, rows, warm-started at the exact lower-level optimum
        ("DE + polish", default_solver(), n_rows, False),
        ("pymoo GA(pop_size=20)", PymooSolver(GA(pop_size=20)), ga_rows, False),
        ("local, start at y*", LocalRefinement(), n_rows, True),
    )
    print(f"\n(b) per lower-level solve, {SIZE['ll_dim']} variables; medians over rows and seeds "
          f"({n_rows} rows for DE, {ga_rows} for GA, {n_seeds} seeds); ok = |f - f*| < 1e-6")
    print(f"    {'problem':<26}{'solver':<24}{'evals':>8}{'ms':>9}{'ok':>7}{'success':>9}")
    for name, kind in (("SMD1", "sphere + tan"), ("SMD3", "Rastrigin + tan"), ("SMD5", "Rosenbrock")):
        problem = eb.benchmarks.get(name, **SIZE)
        for label, solver, rows, warm in solvers:
            evals, ms, ok, success = [], [], [], []
            for seed in range(n_seeds):
                X = upper_points(problem, rows, np.random.default_rng(seed))
                Y_star = problem.ll_response(X)
                f_star = problem.lower(X, Y_star)[0]
                solution, _, seconds = run(solver, problem, X, seed, Y_star if warm else None)
                evals.extend(solution.n_evals)
                ms.append(1e3 * seconds / rows)
                ok.extend(np.abs(solution.f - f_star) < 1e-6)
                success.extend(solution.success)
            print(f"    {name + ' (' + kind + ')':<26}{label:<24}{np.median(evals):>8.0f}"
                  f"{np.median(ms):>9.2f}{np.mean(ok):>7.2f}{np.mean(success):>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20, help="lower levels solved together (default 20)")
    parser.add_argument("--seeds", type=int, default=5, help="repetitions (default 5)")
    parser.add_argument("--ga-rows", type=int, default=5, help="rows per seed for the slower GA (default 5)")
    args = parser.parse_args()
    threads = {k: os.environ.get(k, "unset") for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    print(f"evobilevel {eb.__version__}, numpy {np.__version__}, {os.cpu_count()} cpus, {threads}\n")
    overhead(args.rows, args.seeds)
    per_solve(args.rows, args.seeds, args.ga_rows)


if __name__ == "__main__":
    main()
