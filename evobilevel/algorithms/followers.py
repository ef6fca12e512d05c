"""Followers' answers for batches of upper-level points, for algorithms that only propose ``x`` (the pymoo bridge).

Behind it is BLEAQ's lower-level settlement (:mod:`.bleaq.settlement`): an answer predicted by the psi/phi response
models where they are trusted, else refined locally from warm starts, else searched globally; the archive of
lower-level optima those models are fitted on is shared across generations. This module is the only place outside
``bleaq/`` that depends on BLEAQ's parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..lower import DifferentialEvolution, default_solver
from ..lower.refinement import Refinement
from .archive import SolutionArchive
from .bleaq.algorithm import default_local_solver
from .bleaq.response import Predictions, ResponseModel
from .bleaq.settlement import Answers, LowerSettlement, settle_initial
from .bleaq.state import BLEAQState

__all__ = ["Followers", "Answers"]


class PlausibleResponse(ResponseModel):
    """BLEAQ's psi/phi models, trusted only where their predictions lie near the values they were fitted on.

    A prediction is plausible where phi lies within the range of the neighbours' ``f*`` widened by that range (and
    ``accept_tol``), and each component of psi within the neighbours' range of it widened the same way (and by
    ``psi_tol`` of the variable's range). A smooth response does not leave the range of its nearest optima by more
    than their own spread; a quadratic fitted on neighbours that barely vary along some direction can (an
    upper-level population that has converged gives such neighbourhoods), and trusting it would accept answers
    far from optimal. An implausible phi is neither trusted nor used to judge a refinement; an implausible
    component of psi counts as undetermined.
    """

    def predict(self, archive: SolutionArchive, X: np.ndarray, rng: np.random.Generator) -> Predictions | None:
        out = super().predict(archive, X, rng)
        if out is None:
            return None
        near = archive.nearest(X, self.n_train + self.n_valid)  # the points each model was fitted on
        f_ok = _within(out.phi[:, None], archive.f[near][:, :, None], self.accept_tol)[:, 0]
        y_tol = self.psi_tol * self.y_widths
        y_ok = _within(out.Y, archive.Y[near], y_tol)
        out.trusted &= f_ok
        out.f_bound = np.where(f_ok, out.f_bound, np.inf)
        out.determined &= y_ok
        return out


def _within(values: np.ndarray, neighbours: np.ndarray, tol) -> np.ndarray:
    """Whether values (n, m) lie within the range of neighbours (n, j, m) over j, widened by that range plus tol
    (relative to ``1 + |value|`` for a scalar tol)."""
    low, high = neighbours.min(axis=1), neighbours.max(axis=1)
    slack = (high - low) + (tol * (1 + np.abs(values)) if np.ndim(tol) == 0 else tol)
    return (values >= low - slack) & (values <= high + slack)


@dataclass
class Followers:
    """How the followers of a batch of upper-level points are settled (settings; the archive lives in a state).

    Parameters
    ----------
    accept_tol : float
        A predicted answer ``y = psi(x)`` is accepted without a search when ``f(x, y) <= phi(x) + accept_tol *
        (1 + |phi(x)|)`` and phi's held-out error is below the same tolerance.
    psi_tol : float
        A component of psi counts as determined when its held-out error is below this fraction of the range.
    refine_tol : float
        A refined answer whose ``f`` exceeds phi by more than three held-out errors plus ``refine_tol * (1 + |phi|)``
        is a local optimum and goes on to the global search.
    n_initial_global : int
        While the archive is empty, the first rows of a batch are solved from scratch (searched globally, or
        refined where the follower is certified convex:
        :meth:`~evobilevel.algorithms.bleaq.settlement.LowerSettlement.resolve`); the others start from their
        answers.
    n_warm_starts : int
        Archived optima of the nearest solved ``x`` given to each refinement as starting points.
    infeasible_evals : int, optional
        Evaluations of a global search where the follower's problem has turned out infeasible in this run; by
        default 40 per lower-level variable (:func:`~evobilevel.algorithms.bleaq.settlement.capped_evals`).
    certify_infeasible, certify_convex : bool
        As for :class:`~evobilevel.algorithms.BLEAQ`: no global search where the follower is certified infeasible
        (linear constraints) or convex.
    archive_size : int
        Lower-level optima kept for warm starts and the response models.
    local_solver, global_solver : LowerSolver
    """

    accept_tol: float = 1e-6
    psi_tol: float = 1e-3
    refine_tol: float = 1e-3
    n_initial_global: int = 3
    n_warm_starts: int = 2
    infeasible_evals: int | None = None
    certify_infeasible: bool = True
    certify_convex: bool = True
    archive_size: int = 2000
    local_solver: Refinement = field(default_factory=default_local_solver)  # BLEAQ's, for the same reasons
    global_solver: DifferentialEvolution = field(default_factory=default_solver)

    def new_state(self, problem) -> BLEAQState:
        """An empty state: the archive of lower-level optima and the settlement's counters."""
        return BLEAQState(archive=SolutionArchive(problem.ul_bounds, problem.ll_dim, self.archive_size))

    def settle(self, ctx, state: BLEAQState, X: np.ndarray) -> Answers:
        """The followers' answers to the rows of X (n, ul_dim), evaluated through ``ctx`` and archived in ``state``.

        Returns
        -------
        Answers
            ``Y`` (n, ll_dim), ``f`` (n,) and ``ll_cv`` (n,) (inf where no answer could be evaluated).
        """
        problem = ctx.problem
        response = PlausibleResponse(problem.ul_bounds, problem.ll_bounds, self.accept_tol, self.psi_tol,
                                 self.refine_tol)
        settlement = LowerSettlement(response, self.local_solver, self.global_solver, self.infeasible_evals,
                                     certify_infeasible=self.certify_infeasible, certify_convex=self.certify_convex)
        # Until the archive holds answers, a few solves from scratch (global searches, or refinements where the
        # follower is certified convex) give the others their warm starts.
        return settle_initial(settlement, ctx, state, X, self.n_initial_global, self.n_warm_starts, predict=True)

    @staticmethod
    def counts(state: BLEAQState) -> dict:
        """How the answers so far were found: ``predicted``, ``refined`` (locally), ``global`` (searches)."""
        return {key: state.counts[key] for key in ("predicted", "refined", "global")}
