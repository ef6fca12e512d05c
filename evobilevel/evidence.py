"""When a run's own evaluations show that it cannot succeed: a black box that fails at every point tried, or a
follower whose problem has no feasible answer anywhere it was searched.

Both are judged on the whole run so far, never on one region: a simulator that fails for some ``x`` only, or a
follower that is infeasible for part of the leader's box, is a problem to solve, not a reason to stop.
"""

from __future__ import annotations

import math

from .evaluator import LevelCounts

__all__ = ["HopelessRun", "FAILURE_EVIDENCE", "INFEASIBLE_EVIDENCE_X", "check_evidence"]

#: Share of a box in which a black box is taken to work at least, and the chance accepted of stopping a run whose
#: black box works there: a run stops once this many evaluations at a level have all failed, since
#: ``(1 - 0.02) ** 456 < 1e-4`` (every point failing by chance, were 2 % of the box to work).
FAILURE_EVIDENCE = math.ceil(math.log(1e-4) / math.log(1 - 0.02))
#: A follower counts as infeasible everywhere only once its searches at this many different ``x`` (and
#: :data:`FAILURE_EVIDENCE` evaluations in all) found no feasible answer: one ``x`` may lie where it is infeasible.
INFEASIBLE_EVIDENCE_X = 3


class HopelessRun(Exception):
    """The run's evaluations show that it cannot succeed; the message says why."""


def check_evidence(ul: LevelCounts, ll: LevelCounts, n_x_infeasible: int) -> None:
    """Raise :class:`HopelessRun` when the counts of a run show that it cannot succeed.

    Parameters
    ----------
    ul, ll : LevelCounts
        The run's evaluations so far at each level.
    n_x_infeasible : int
        Upper-level points whose lower-level search ended without a feasible answer.
    """
    for label, counts in (("upper", ul), ("lower", ll)):
        if counts.n_evals >= FAILURE_EVIDENCE and counts.n_failed == counts.n_evals:
            raise HopelessRun(f"every one of the {counts.n_evals} {label}-level evaluations failed, the first with: "
                              f"{counts.first_error}")
    if ll.n_evals >= FAILURE_EVIDENCE and ll.n_feasible == 0 and n_x_infeasible >= INFEASIBLE_EVIDENCE_X:
        raise HopelessRun(f"the follower's problem had no feasible point among the {ll.n_evals} lower-level "
                          f"evaluations at {n_x_infeasible} different upper-level points: it looks infeasible "
                          "everywhere (check its constraints and bounds)")
