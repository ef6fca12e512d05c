"""The ``evobilevel`` command: ``list``, ``solve``, ``bench``, ``report`` and ``plot``.

Exit codes: 0 done, 2 bad arguments (with a one-line reason), 1 an unexpected failure (with a traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

from .progress import ProgressLine, duration

__all__ = ["main"]


class UsageError(Exception):
    """Bad arguments: reported in one line, exit code 2."""


def _add_problem_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ul-dim", type=int, help="upper-level variables (scalable benchmarks)")
    parser.add_argument("--ll-dim", type=int, help="lower-level variables (scalable benchmarks)")
    parser.add_argument("--variant", help="benchmark variant, e.g. bleaq2 for SMD12 with the BLEAQ2-code bounds")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evobilevel", description="Black-box bilevel optimisation.")
    from ._version import __version__

    parser.add_argument("--version", action="version", version=f"evobilevel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="list benchmark problems and algorithms")
    _add_solve_parser(sub)
    _add_bench_parser(sub)
    _add_report_and_plot_parsers(sub)
    return parser


def _add_solve_parser(sub) -> None:
    solve = sub.add_parser("solve", help="solve a benchmark problem or a problem file")
    solve.add_argument("problem", help="benchmark name (see `evobilevel list`) or a .py file defining a Problem")
    _add_problem_arguments(solve)
    solve.add_argument("--algorithm", default=None, help="algorithm name (default: the library's default)")
    solve.add_argument("--seed", type=int, default=0)
    solve.add_argument("--jobs", type=int, default=None,
                       help="processes for lower-level solves (-1: all cores); default 1, or -1 with --scheduler")
    solve.add_argument("--target", type=float, help="stop when |F-F*| and |f-f*| are below this")
    solve.add_argument("--max-ul-evals", type=int)
    solve.add_argument("--max-ll-evals", type=int)
    solve.add_argument("--max-time", type=_positive_float, metavar="SECONDS", help="wall-time budget of the run")
    solve.add_argument("--max-check-evals", type=_positive_int, metavar="N",
                       help="most evaluations of the final lower-level check (default: until it converges)")
    solve.add_argument("--tasks", choices=("auto", "rows", "evaluations"), default="auto",
                       help="with --jobs other than 1: a worker solves chunks of lower levels (rows), or evaluates "
                            "parts of batches of points (evaluations, for expensive black boxes); default: chosen "
                            "from the measured costs")
    solve.add_argument("--chunk-size", type=_positive_int, default=4, metavar="N",
                       help="lower-level problems per chunk, each with its own random stream (default 4); results "
                            "depend on it, not on --jobs. 1 balances the work best over many workers")
    solve.add_argument("--out", help="write the result as JSON to this file")
    solve.add_argument("--quiet", action="store_true", help="no progress display")
    solve.add_argument("--checkpoint", metavar="PATH", help="write the run's state to this file as it goes")
    solve.add_argument("--checkpoint-every", type=_positive_int, default=10, metavar="K",
                       help="generations between checkpoints (default 10)")
    solve.add_argument("--resume", metavar="PATH",
                       help="continue the run saved in this checkpoint (give the same problem and options)")
    _add_scheduler_argument(solve, "lower-level solves")


def _add_bench_parser(sub) -> None:
    bench = sub.add_parser(
        "bench", help="run a benchmark grid (problems x sizes x algorithms x runs), resumable",
        description="Run every problem x size x algorithm x run, one JSON file per run in --out. Running the same "
                    "command again skips finished runs, so an interrupted grid resumes where it stopped.")
    bench.add_argument("--problems", required=True, help="names and ranges, e.g. SMD1-SMD12,TP1-TP5")
    bench.add_argument("--ul-dim", type=_positive_int, help="upper-level variables of the scalable problems")
    bench.add_argument("--ll-dim", type=_positive_int, help="lower-level variables of the scalable problems")
    bench.add_argument("--sizes", help="several sizes instead of --ul-dim/--ll-dim, e.g. 2x3,5x5 (default 5x5)")
    bench.add_argument("--variant", help="benchmark variant where a problem has one, e.g. bleaq2 (SMD12)")
    bench.add_argument("--algorithms", help="comma-separated algorithm names (default: all)")
    bench.add_argument("--runs", type=_positive_int, default=11, help="runs per problem and algorithm (default 11)")
    bench.add_argument("--seed", type=int, default=0, help="base seed; each run's seed is derived from it")
    bench.add_argument("--target", type=float, help="stop each run when |F-F*| and |f-f*| are below this")
    bench.add_argument("--max-ul-evals", type=_positive_int, help="upper-level evaluation budget per run")
    bench.add_argument("--max-ll-evals", type=_positive_int, help="lower-level evaluation budget per run")
    bench.add_argument("--jobs", type=int, default=None,
                       help="runs at once (-1: all cores); default 1, or -1 with --scheduler")
    bench.add_argument("--out", default="results", help="results directory (default: results)")
    bench.add_argument("--dry-run", action="store_true", help="list the runs and whether they are done; run none")
    bench.add_argument("--quiet", action="store_true", help="no progress display")
    _add_scheduler_argument(bench, "runs")


def _add_report_and_plot_parsers(sub) -> None:
    report = sub.add_parser("report", help="tables (markdown, CSV) and PNG plots from a results directory")
    report.add_argument("directory", help="results directory (e.g. of `evobilevel bench`)")
    report.add_argument("--out", help="where to write (default: DIRECTORY/report)")
    report.add_argument("--target", type=float, help="error threshold (default: the runs' target, else 0.01)")
    report.add_argument("--no-plots", action="store_true", help="tables only")

    plot = sub.add_parser("plot", help="convergence plot of one run (its Pareto front for a leader with several "
                                       "objectives)")
    plot.add_argument("run", help="a run's JSON file")
    plot.add_argument("-o", "--out", default="convergence.png", help="image file (default: convergence.png)")
    plot.add_argument("--x", choices=("ul", "ll", "both"), default="both",
                      help="evaluations on the horizontal axis (default: both, two panels)")


def _add_scheduler_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help=f"run the {what} on the dask cluster with this scheduler, e.g. tcp://scheduler:8786 "
                             "(needs the 'distributed' extra)")


def _jobs(args) -> int:
    """``--jobs``, defaulting to every worker of the cluster with ``--scheduler`` and to 1 without."""
    if args.jobs is None:
        return -1 if args.scheduler else 1
    if args.jobs == 0 or args.jobs < -1:
        raise UsageError(f"--jobs must be a positive integer or -1, got {args.jobs}")
    return args.jobs


def _enter_backend(stack: contextlib.ExitStack, args) -> None:
    """With ``--scheduler``, make the dask cluster joblib's backend until ``stack`` closes."""
    if not args.scheduler:
        return
    from .parallel import cluster_backend

    try:
        stack.enter_context(cluster_backend(args.scheduler))
    except (ImportError, OSError) as exc:
        raise UsageError(str(exc)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"evobilevel: error: {exc}", file=sys.stderr)
        return 2


def _cmd_list(args) -> int:
    from . import benchmarks
    from .algorithms import names as algorithm_names

    print("problems:  ", " ".join(benchmarks.names()))
    print("algorithms:", " ".join(algorithm_names()))
    return 0


def _cmd_solve(args) -> int:
    from .loading import load_problem
    from .runner import solve

    try:
        problem = load_problem(args.problem, ul_dim=args.ul_dim, ll_dim=args.ll_dim, variant=args.variant)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    kwargs = {} if args.algorithm is None else {"algorithm": args.algorithm}
    n_jobs = _jobs(args)
    progress = not args.quiet and sys.stderr.isatty()
    if not args.quiet and not progress:  # the progress display prints the budgets itself
        from .budget import describe_budgets

        print(describe_budgets(args.max_ul_evals, args.max_ll_evals, args.max_time, args.target), file=sys.stderr)
    try:
        with contextlib.ExitStack() as stack:
            _enter_backend(stack, args)
            result = solve(problem, seed=args.seed, n_jobs=n_jobs, target=args.target,
                           max_ul_evals=args.max_ul_evals, max_ll_evals=args.max_ll_evals, max_time=args.max_time,
                           max_check_evals=args.max_check_evals, tasks=args.tasks, chunk_size=args.chunk_size,
                           progress=progress, checkpoint=args.checkpoint,
                           checkpoint_every=args.checkpoint_every, resume=args.resume, **kwargs)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    except FileNotFoundError as exc:
        raise UsageError(f"{exc.filename or args.resume} does not exist") from None
    except KeyboardInterrupt:
        # Ctrl-C outside the generations (e.g. during the final lower-level check) leaves no result to show.
        print("evobilevel: interrupted before a result was available", file=sys.stderr)
        return 130
    print(result.summary())
    if args.out:
        result.to_json(args.out)
        print(f"result written to {args.out}")
    # Ctrl-C still prints and writes the best result so far, then exits as interrupted programs do (128 + SIGINT),
    # so that a script does not carry on as if the run had finished.
    return 130 if result.interrupted else 0


def _bench_sizes(args) -> list[tuple[int, int]]:
    if args.sizes and (args.ul_dim or args.ll_dim):
        raise UsageError("give either --sizes or --ul-dim/--ll-dim, not both")
    if args.sizes:
        sizes = []
        for part in args.sizes.split(","):
            try:
                ul_dim, ll_dim = (int(v) for v in part.strip().lower().split("x"))
            except ValueError:
                raise UsageError(f"--sizes: expected sizes like 2x3,5x5, got {part.strip()!r}") from None
            sizes.append((ul_dim, ll_dim))
        return sizes
    return [(args.ul_dim or 5, args.ll_dim or 5)]


def _cmd_bench(args) -> int:
    from .algorithms import names as algorithm_names
    from .experiment import Grid, GridConflict, run_grid

    algorithms = [a for a in (args.algorithms or ",".join(algorithm_names())).split(",") if a.strip()]
    try:
        grid = Grid(args.problems, sizes=_bench_sizes(args), algorithms=algorithms, runs=args.runs, seed=args.seed,
                    target=args.target, max_ul_evals=args.max_ul_evals, max_ll_evals=args.max_ll_evals,
                    variant=args.variant)
        specs = grid.run_specs()
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    n_jobs = _jobs(args)
    if args.dry_run:
        for spec in specs:
            path = spec.path(args.out)
            print(f"{'done' if path.is_file() else 'todo'}  {path}  seed {spec.seed}")
        return 0
    progress = _BenchProgress(enabled=not args.quiet and sys.stderr.isatty())
    progress.begin(len(specs))
    try:
        with contextlib.ExitStack() as stack:
            _enter_backend(stack, args)
            summary = run_grid(grid, args.out, n_jobs=n_jobs, on_run=progress.update)
    except GridConflict as exc:
        raise UsageError(str(exc)) from None
    finally:
        progress.close()
    print(summary.text())
    if summary.interrupted:
        return 130
    if summary.failed:
        for outcome in summary.failed[:1]:
            print(f"\nfirst failure ({outcome.spec.instance} {outcome.spec.algorithm} run {outcome.spec.run}):\n"
                  f"{outcome.error}", file=sys.stderr)
        return 1
    print(f"next: evobilevel report {args.out}")
    return 0


class _BenchProgress(ProgressLine):
    """One line on standard error: a bar, runs finished, failures, time left and the last run; silent when off."""

    def __init__(self, enabled: bool, stream=None):
        super().__init__(enabled, stream)
        self._start = time.monotonic()
        self._failed = self._success = self._run_now = 0

    def begin(self, n_total: int) -> None:
        self.draw(f"{self._bar(0, n_total)} 0/{n_total} runs")

    def update(self, outcome, n_finished: int, n_total: int) -> None:
        self._failed += outcome.status == "failed"
        self._success += bool(outcome.success)
        self._run_now += outcome.status != "skipped"
        elapsed = time.monotonic() - self._start
        left = ""
        if self._run_now and n_finished < n_total:
            # Runs finish at a roughly steady pace once the workers are busy.
            left = f", ~{duration(elapsed / self._run_now * (n_total - n_finished))} left"
        spec = outcome.spec
        self.draw(f"{self._bar(n_finished, n_total)} {n_finished}/{n_total} runs, {self._success} successful, "
                   f"{self._failed} failed, {duration(elapsed)}{left}  "
                   f"(last: {spec.instance} {spec.algorithm} run {spec.run} {outcome.status})")

    @staticmethod
    def _bar(n_finished: int, n_total: int, width: int = 20) -> str:
        filled = round(width * n_finished / max(n_total, 1))
        return f"[{'#' * filled}{'.' * (width - filled)}]"


def _cmd_report(args) -> int:
    from .report import write_report

    if args.target is not None and not args.target > 0:
        raise UsageError(f"--target must be positive, got {args.target}")
    try:
        files = write_report(args.directory, out=args.out, target=args.target, plots=not args.no_plots)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    n_runs = sum(row.n_runs for row in files.rows) + sum(row.n_runs for row in files.front_rows)
    print(f"{n_runs} runs, {len(files.rows) + len(files.front_rows)} table lines")
    if files.skipped:
        print(f"ignored {len(files.skipped)} JSON file(s) that are not run results, e.g. {files.skipped[0]}")
    print(f"wrote {files.markdown}, {files.csv}" + (f" and {len(files.figures)} PNG files" if files.figures else ""))
    return 0


def _cmd_plot(args) -> int:
    from .plot import convergence, front, save_figure
    from .result import load_result

    try:
        result = load_result(args.run)
    except FileNotFoundError:
        raise UsageError(f"{args.run} does not exist") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{args.run} is not a run result ({type(exc).__name__}: {exc})") from None
    if result.front is not None:  # a leader with several objectives: its front says more than a convergence curve
        path = save_figure(front(result), args.out)
        print(f"wrote {path}")
        return 0
    if not len(result.history):
        raise UsageError(f"{args.run} has no history to plot")
    path = save_figure(convergence(result, x=args.x), args.out)
    print(f"wrote {path}")
    return 0


_COMMANDS = {"list": _cmd_list, "solve": _cmd_solve, "bench": _cmd_bench, "report": _cmd_report, "plot": _cmd_plot}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
