"""When a run has reached a target: the published protocol's error threshold, which levels it applies to, and
the evaluations a run had spent when it first got there."""

from __future__ import annotations

import math

from . import benchmarks
from .result import Result

__all__ = ["DEFAULT_TARGET", "target_levels", "evals_to_target"]

DEFAULT_TARGET = 1e-2
"""The error threshold of the published evaluation counts."""


def target_levels(problem: str) -> str:
    """Which errors must be below the target for ``problem``: ``"ul"`` for the TP suite (as published), else
    ``"both"``."""
    try:
        return "ul" if benchmarks.suite_of(problem) == "TP" else "both"
    except ValueError:  # a user's problem
        return "both"


def evals_to_target(result: Result, target: float = DEFAULT_TARGET, levels: str = "both") -> tuple[int, int] | None:
    """The evaluations a run had spent when it first reached the target, or None if it never did.

    Parameters
    ----------
    result : Result
    target : float
        Error threshold.
    levels : {"both", "ul"}
        Whether ``|f - f*|`` must be below the target too or only ``|F - F*|``.

    Returns
    -------
    (n_ul_evals, n_ll_evals) or None
        None also when the optimum is unknown, or when the lower-level check at the final point found a gap above
        the target (the run's lower-level answer was not optimal).

    Notes
    -----
    A run made with this same ``target`` stopped when it reached it, so its final counts are the answer. Any
    other run is read from its history: the first feasible record with the errors below the target.
    """
    if levels not in ("both", "ul"):
        raise ValueError(f"levels must be 'both' or 'ul', got {levels!r}")
    if result.ul_error is None or (result.ll_gap is not None and not result.ll_gap <= target):
        return None
    if levels == "both" and result.target is not None and math.isclose(result.target, target):
        return (int(result.n_ul_evals), int(result.n_ll_evals)) if result.target_reached else None
    for record in result.history:
        if not record.get("feasible", True):
            continue
        ul_error, ll_error = record.get("ul_error"), record.get("ll_error")
        if ul_error is None or not ul_error < target:
            continue
        if levels == "both" and (ll_error is None or not ll_error < target):
            continue
        return int(record["n_ul_evals"]), int(record["n_ll_evals"])
    return None
