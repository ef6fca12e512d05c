"""Where a BLEAQ run spends its lower-level evaluations: a count per phase of the algorithm, in every history
record, so that a run shows which of its parts to make cheaper (the initial population's searches, the
refinements, the global searches, the re-checks, the leader's choices)."""

from __future__ import annotations

from contextlib import contextmanager

__all__ = ["LL_PHASES", "Ledger"]

#: The phases whose lower-level evaluations a run counts apart. ``initial``: every solve of an attempt's initial
#: population; ``predicted``, ``refined`` and ``global``: the generations' candidates, by the route that settled
#: them (the evaluation of a prediction, the local refinements, the global searches); ``recheck``: the re-checks
#: of the best member; ``leader``: the leader's choices among the follower's optima.
LL_PHASES = ("initial", "predicted", "refined", "global", "recheck", "leader")


class Ledger:
    """Counts lower-level evaluations into a dict by phase (:data:`LL_PHASES`).

    Each evaluation is counted once, in the outermost phase open when it is made: a re-check's global search is
    the re-check's, and the refinements of an initial population are the initial population's.
    """

    def __init__(self) -> None:
        self._open = False

    @contextmanager
    def phase(self, ctx, spent: dict, name: str):
        """Count the lower-level evaluations ``ctx`` makes in the block into ``spent[name]`` (unless a phase is
        already open)."""
        if self._open:
            yield
            return
        self._open, start = True, ctx.n_ll_evals
        try:
            yield
        finally:
            spent[name] += ctx.n_ll_evals - start
            self._open = False
