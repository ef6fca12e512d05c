"""Nested EA on SMD1-SMD8 at (5, 5): successes, median evaluations and wall time; and the hand-written baseline.

The baseline is what a user writes by hand: scipy's differential_evolution at the upper level, every upper-level
evaluation solving the lower level with another differential_evolution (default settings both).

    python tests/perf/nested_smd.py [--runs 11] [--problems SMD1-SMD8] [--baseline-runs 3] [--write-readme]

Rows are kept in ``--cache`` (JSON): a later call with ``--problems SMD7 --baseline-runs 0`` measures SMD7 again
and reuses the other rows and the baseline, so one problem can be re-measured after a change to what it needs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from readme_table import markdown_table, write_section
from scipy.optimize import differential_evolution

import evobilevel as eb


def nested_runs(name: str, runs: int, target: float) -> dict:
    p = eb.benchmarks.get(name, ul_dim=5, ll_dim=5)
    rows = []
    for seed in range(runs):
        r = eb.solve(p, algorithm="nested", seed=seed, target=target)
        rows.append(r)
        print(f"  {name} seed {seed}: success={r.success} UL={r.n_ul_evals} LL={r.n_ll_evals} "
              f"errors={r.ul_error:.1e}/{r.ll_error:.1e} gap={r.ll_gap:.1e} {r.elapsed:.1f}s", flush=True)
    return {
        "successes": sum(r.success for r in rows),
        "ul": statistics.median(r.n_ul_evals for r in rows),
        "ll": statistics.median(r.n_ll_evals for r in rows),
        "time": statistics.median(r.elapsed for r in rows),
    }


def scipy_nested(name: str, seed: int, ul_maxiter: int) -> dict:
    """Nested scipy differential_evolution, default settings but ``ul_maxiter`` upper-level generations (with the
    default 1000 a run takes hours); counts lower-level evaluations."""
    p = eb.benchmarks.get(name, ul_dim=5, ll_dim=5)
    n_ll = 0

    def follower_optimum(x):
        nonlocal n_ll

        def f(y):
            nonlocal n_ll
            n_ll += 1
            return p.lower(x, y)[0]

        inner = differential_evolution(f, list(zip(*p.ll_bounds)), seed=seed)
        return inner.x

    n_ul = 0

    def leader(x):
        nonlocal n_ul
        n_ul += 1
        return p.upper(x, follower_optimum(x))[0]

    start = time.perf_counter()
    outer = differential_evolution(leader, list(zip(*p.ul_bounds)), seed=seed, maxiter=ul_maxiter, polish=False)
    elapsed = time.perf_counter() - start
    y = follower_optimum(outer.x)
    F, f = p.upper(outer.x, y)[0], p.lower(outer.x, y)[0]
    ul_error, ll_error = p.optimum.errors(F, f)
    return {"ul": n_ul, "ll": n_ll, "time": elapsed, "ul_error": ul_error, "ll_error": ll_error}


def _save(path: Path, cache: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=1))
    tmp.replace(path)


def expand(spec: str) -> list[str]:
    names = []
    for part in filter(None, spec.split(",")):
        if "-" in part:
            a, b = part.split("-")
            prefix = a.rstrip("0123456789")
            names += [f"{prefix}{i}" for i in range(int(a[len(prefix):]), int(b[len(prefix):]) + 1)]
        else:
            names.append(part)
    return names


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--problems", default="SMD1-SMD8")
    ap.add_argument("--target", type=float, default=1e-2)
    ap.add_argument("--baseline-runs", type=int, default=3)
    ap.add_argument("--baseline-ul-maxiter", type=int, default=20)
    ap.add_argument("--write-readme", action="store_true")
    ap.add_argument("--cache", default="results/nested_smd.json")
    args = ap.parse_args()

    cache_path = Path(args.cache)
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {"rows": {}, "baseline": None}
    for name in expand(args.problems):
        s = nested_runs(name, args.runs, args.target)
        cache["rows"][name] = [name, f"{s['successes']}/{args.runs}", f"{s['ul']:.0f}", f"{s['ll']:.3g}",
                               f"{s['time']:.2f}"]
        print(cache["rows"][name], flush=True)
        _save(cache_path, cache)
    rows = [cache["rows"][k] for k in sorted(cache["rows"], key=lambda k: int(k[3:]))]
    table = markdown_table(["problem", "successes", "median UL evals", "median LL evals", "median time (s)"], rows)
    print(table)

    if args.baseline_runs:
        base = [scipy_nested("SMD1", seed, args.baseline_ul_maxiter) for seed in range(args.baseline_runs)]
        for b in base:
            print(f"  scipy nested DE SMD1: UL={b['ul']} LL={b['ll']} time={b['time']:.1f}s "
                  f"errors={b['ul_error']:.1e}/{b['ll_error']:.1e}", flush=True)
        cache["baseline"] = {"runs": args.baseline_runs, "ul_maxiter": args.baseline_ul_maxiter,
                             "ul": statistics.median(b["ul"] for b in base),
                             "ll": statistics.median(b["ll"] for b in base),
                             "time": statistics.median(b["time"] for b in base),
                             "ul_error": statistics.median(b["ul_error"] for b in base),
                             "ll_error": statistics.median(b["ll_error"] for b in base)}
        _save(cache_path, cache)
    base = cache["baseline"]
    text = table
    if base is not None:
        text += (
            f"\n\nHand-written nested scipy `differential_evolution` on SMD1 (5, 5) (default settings, except "
            f"{base['ul_maxiter']} upper-level generations without polish: with the defaults one run takes hours), "
            f"median of {base['runs']} runs: {base['ul']:.0f} UL and {base['ll']:.3g} LL evaluations, "
            f"{base['time']:.1f} s, "
            f"errors {base['ul_error']:.1e} / {base['ll_error']:.1e}."
        )
        if "SMD1" in cache["rows"]:
            ours = cache["rows"]["SMD1"]
            text += (f" The nested EA needs {base['ll'] / float(ours[3]):.1f}x fewer LL evaluations and is "
                     f"{base['time'] / float(ours[4]):.1f}x faster on SMD1.")
    print(text)
    if args.write_readme:
        write_section("nested-smd", text)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
