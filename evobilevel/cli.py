"""The ``evobilevel`` command.

Exit codes: 0 done, 2 bad arguments (with a one-line reason), 1 an unexpected failure (with a traceback).
"""

from __future__ import annotations

import argparse
import sys

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

    solve = sub.add_parser("solve", help="solve a benchmark problem or a problem file")
    solve.add_argument("problem", help="benchmark name (see `evobilevel list`) or a .py file defining a Problem")
    _add_problem_arguments(solve)
    solve.add_argument("--algorithm", default=None, help="algorithm name (default: the library's default)")
    solve.add_argument("--seed", type=int, default=0)
    solve.add_argument("--jobs", type=int, default=1, help="processes for lower-level solves (-1: all cores)")
    solve.add_argument("--target", type=float, help="stop when |F-F*| and |f-f*| are below this")
    solve.add_argument("--max-ul-evals", type=int)
    solve.add_argument("--max-ll-evals", type=int)
    solve.add_argument("--out", help="write the result as JSON to this file")
    solve.add_argument("--quiet", action="store_true", help="no progress display")
    return parser


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
    try:
        result = solve(problem, seed=args.seed, n_jobs=args.jobs, target=args.target,
                       max_ul_evals=args.max_ul_evals, max_ll_evals=args.max_ll_evals,
                       progress=not args.quiet and sys.stderr.isatty(), **kwargs)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    print(result.summary())
    if args.out:
        result.to_json(args.out)
        print(f"result written to {args.out}")
    return 0


_COMMANDS = {"list": _cmd_list, "solve": _cmd_solve}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
