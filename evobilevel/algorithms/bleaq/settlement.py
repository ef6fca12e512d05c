"""BLEAQ's lower-level settlement: the follower's answer for each new candidate, by the cheapest route that can
be trusted.

1. *Prediction*: where the psi/phi models are trusted, ``y = psi(x)`` is evaluated once and accepted if it is
   feasible and meets phi (see :meth:`~.response.ResponseModel.meets_phi`).
2. *Local refinement* from the prediction, the candidate's own recombined lower-level vector and the nearest
   archived optimum. An answer clearly above phi is a local optimum and goes on to step 3; one that meets an
   accurate phi is accepted even if the search did not report convergence (on a sphere of lower-level optima
   a local search circles at the optimal value), so the search ends as soon as it meets phi. Where the follower's
   feasible set traps such refinements (SMD9's rings), they start from the minimum of f alone instead, and a
   suspected local optimum is refined so before step 3 (:mod:`.objective_first`: a run measures which holds).
3. *Global search* (batched DE, warm-started). A row whose refinement ended infeasible is first tested: where the
   follower's constraints are linear in y, the least violation over the box is a linear programme, and a row at
   which it is above zero is infeasible for any search (:mod:`evobilevel.lower.linear`). Where the follower's
   problem keeps turning out infeasible otherwise, such searches are capped, and only a share of such rows is
   searched, the smaller the fewer searches have found a feasible answer. Rows whose refinement ended feasible but
   clearly above phi (suspected local optima) are all searched while such searches have found a lower value at
   least as often as not in this run, and a share of them, the smaller the more often they failed, once they have
   mostly failed.

A lower level solved from scratch (an initial population's first members, a re-check) is searched globally, or
refined where the follower is certified convex there (:meth:`LowerSettlement.resolve`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...integrality import integer_mask, round_integral
from ...lower import LowerSolver
from ...lower.convex import certify_convex, stencil
from ...lower.linear import certify_infeasible, linearity_points
from ...lower.refinement import StartValues
from .ledger import Ledger
from .objective_first import ObjectiveFirst
from .response import Predictions, ResponseModel
from .state import SUSPECT_GAIN, BLEAQState, SearchRecord

__all__ = ["Answers", "LowerSettlement", "capped_evals", "settle_initial"]

#: Stuck searches (after a refinement that ended infeasible) must have been tried this often before their success
#: rate is read; fewer say nothing about whether the follower's problem is infeasible there.
MIN_STUCK_TRIES = 5
#: ... and they count as hopeless where at most this share found a feasible answer.
HOPELESS_SHARE = 0.1
#: A capped search's evaluations per lower-level variable, by default: ten generations of a population of four per
#: variable, a sixth of the DE's stagnation window in the same measure (``PATIENCE_EVALS``).
CAPPED_EVALS_PER_VARIABLE = 40


@dataclass
class Answers:
    """The follower's answers to n candidates.

    Attributes
    ----------
    X : ndarray, shape (n, ul_dim)
    Y : ndarray, shape (n, ll_dim)
        NaN where none was found.
    f : ndarray, shape (n,)
    ll_cv : ndarray, shape (n,)
        Lower-level constraint violation (inf: not evaluated or failed).
    f_parts, cv_parts : ndarray, shape (n, k), optional
        With k followers, each one's value and violation (``f`` and ``ll_cv`` are their sums).
    curvature : ndarray, shape (n, ll_dim), optional
        The curvature of f per variable learnt at each answer (:attr:`~evobilevel.lower.LowerSolution.curvature`),
        archived with it; NaN where none (all NaN when omitted).
    """

    X: np.ndarray
    Y: np.ndarray
    f: np.ndarray
    ll_cv: np.ndarray
    f_parts: np.ndarray | None = None
    cv_parts: np.ndarray | None = None
    curvature: np.ndarray | None = None

    def __post_init__(self):
        if self.curvature is None:
            self.curvature = np.full(np.shape(self.Y), np.nan)

    @classmethod
    def none(cls, X: np.ndarray, ll_dim: int) -> Answers:
        """No answer yet for any row of X."""
        n = X.shape[0]
        return cls(X, np.full((n, ll_dim), np.nan), np.full(n, np.inf), np.full(n, np.inf))

    @staticmethod
    def concat(parts: list[Answers]) -> Answers:
        joined = {name: np.concatenate([getattr(p, name) for p in parts])
                  for name in ("X", "Y", "f", "ll_cv", "curvature")}
        if all(p.f_parts is not None for p in parts):
            joined.update({name: np.concatenate([getattr(p, name) for p in parts]) for name in ("f_parts", "cv_parts")})
        return Answers(**joined)

    def put(self, rows, part: Answers) -> None:
        """Take the answers of ``part`` at ``rows`` (an index or mask), in place (one follower)."""
        self.Y[rows], self.f[rows], self.ll_cv[rows], self.curvature[rows] = part.Y, part.f, part.ll_cv, part.curvature

    def take(self, rows, sol) -> None:
        """Take the answers of a :class:`~evobilevel.lower.LowerSolution` ``sol`` (one per selected row) at ``rows``
        (an index or mask), in place (one follower)."""
        self.Y[rows], self.f[rows], self.ll_cv[rows], self.curvature[rows] = sol.Y, sol.f, sol.cv, sol.curvature

    def f_parts_at(self, i: int) -> np.ndarray | None:
        """The followers' values (k,) of row i, or None with one follower."""
        return None if self.f_parts is None else self.f_parts[i]


class LowerSettlement:
    """Settles the lower level of batches of candidates (see the module's description).

    Parameters
    ----------
    response : ResponseModel
    local_solver, global_solver : LowerSolver
    infeasible_evals : int, optional
        Evaluations of a capped global search; ``CAPPED_EVALS_PER_VARIABLE`` (40) per lower-level variable by default.
    ledger : Ledger, optional
        Counts the lower-level evaluations by phase into the state's ``ll_evals`` (shared with the algorithm, whose
        phases enclose the settlement's).
    certify_infeasible : bool
        Keep a row whose refinement ended infeasible out of the global searches where the follower is certified
        infeasible there (:meth:`_drop_infeasible`).
    certify_convex : bool
        Refine instead of searching from scratch where the follower is certified convex (:meth:`convex_rows`).
    """

    def __init__(self, response: ResponseModel, local_solver: LowerSolver, global_solver: LowerSolver,
                 infeasible_evals: int | None = None, ledger: Ledger | None = None, certify_infeasible: bool = True,
                 certify_convex: bool = True):
        self.response = response
        self.local_solver, self.global_solver = local_solver, global_solver
        self.infeasible_evals = (int(infeasible_evals) if infeasible_evals is not None
                                 else capped_evals(response.y_widths.shape[0]))
        self.ledger = Ledger() if ledger is None else ledger
        self.certify_infeasible = certify_infeasible
        self.certify_convex = certify_convex
        self.objective = ObjectiveFirst(local_solver)

    def settle(self, ctx, state: BLEAQState, X: np.ndarray, starts: np.ndarray | None,
               allow_prediction: bool = True) -> Answers:
        """Lower-level answers for the rows of X (n, ul_dim), added to the archive.

        Parameters
        ----------
        starts : ndarray, shape (n, k, ll_dim), optional
            Starting points for the refinement, the first one the candidate's own lower-level vector.
        allow_prediction : bool
            Use the models (not for an initial population, whose answers the models are then fitted on).

        Returns
        -------
        Answers
        """
        out = Answers.none(X, ctx.problem.ll_dim)
        todo = np.ones(X.shape[0], bool)
        predictions = self.response.predict(state.archive, X, ctx.rng) if allow_prediction else None
        phase = self.ledger.phase
        known = None
        if predictions is not None:
            with phase(ctx, state.ll_evals, "predicted"):
                starts, known = self._predict(ctx, state, predictions, starts, out, todo)
        with phase(ctx, state.ll_evals, "refined"):
            suspects = self._refine(ctx, state, predictions, starts, out, todo, known)
            if predictions is not None:
                suspects = self.objective.suspects(ctx, state, predictions.f_bound[suspects], starts, suspects, out,
                                                   todo)
        rows = np.flatnonzero(todo)
        if rows.size and self.certify_infeasible:
            with phase(ctx, state.ll_evals, "global"):
                rows = self._drop_infeasible(ctx, state, rows, out)
        if rows.size:
            refined = out.f[suspects].copy()
            self._search(ctx, state, rows, starts, out)  # its evaluations are search()'s: phase "global"
            state.suspects.count(out.f[suspects] < refined - SUSPECT_GAIN * (1 + np.abs(refined)))
        self.archive(state, out)
        return out

    def _predict(self, ctx, state, predictions: Predictions, starts, out: Answers, todo: np.ndarray):
        """Accept the trusted predictions that meet phi; returns the refinement's starts, the prediction first, and
        the values evaluated at the predictions (:class:`~evobilevel.lower.refinement.StartValues`, known at the
        trusted rows), so that the refinement of a rejected one does not evaluate it again."""
        Y_hat = predictions.Y
        if starts is not None:
            # Where psi does not determine y (the follower is indifferent along that direction, or the model is
            # poor), keep the candidate's own value: the leader's selection, not the model's average, decides
            # among equally optimal answers.
            Y_hat = np.where(predictions.determined, Y_hat, starts[:, 0])
        Y_hat = round_integral(Y_hat, integer_mask(ctx.problem))  # the follower answers in whole numbers there
        rows = np.flatnonzero(predictions.trusted)
        known = StartValues.unknown(Y_hat.shape[0], 0)
        if rows.size:
            ev = ctx.evaluate_lower(out.X[rows], Y_hat[rows])
            ok = (ev.cv == 0) & self.response.meets_phi(ev.values, predictions.phi[rows])
            out.Y[rows], out.f[rows], out.ll_cv[rows] = Y_hat[rows], ev.values, ev.cv
            todo[rows[ok]] = False
            state.counts["predicted"] += int(ok.sum())
            known = StartValues.unknown(Y_hat.shape[0], ev.constraints.shape[1])
            known.known[rows], known.f[rows], known.g[rows], known.cv[rows] = True, ev.values, ev.constraints, ev.cv
        has = np.isfinite(Y_hat).all(axis=1)
        known.known &= has & np.isfinite(known.f)  # a failed evaluation is left to the refinement
        first = Y_hat[:, None, :].copy()
        first[~has] = np.nan
        return (first if starts is None else np.concatenate([first, starts], axis=1)), known

    def _refine(self, ctx, state, predictions: Predictions | None, starts, out: Answers,
                todo: np.ndarray, known: StartValues | None = None) -> np.ndarray:
        """Local refinement of the rows still to settle, from ``starts`` (with the values ``known`` at the first
        ones); the ones it settles are marked done. Returns the suspected local optima (rows) left to the global
        search."""
        rows = np.flatnonzero(todo)
        if not rows.size:
            return rows
        # The refinement's model starts from the curvature learnt at the nearest archived optimum: the follower's
        # problem changes little between nearby leader's points, and a model that knows each variable's scale
        # saves the iterations of learning it again. Where psi determines some of the answer's variables (its
        # prediction, the first start, holds them; the other starts are near), the refinement searches the others
        # first. Where phi is accurate, a point that meets it is the answer (below), and the search ends there
        # rather than pay for the gradient that would show it converged.
        accept = None
        if predictions is not None:
            accept = np.where(predictions.trusted[rows], self.response.phi_bound(predictions.phi[rows]), -np.inf)
        def from_warm_starts(part):  # the rows[part] of this batch
            return ctx.solve_lower(out.X[rows[part]], self.local_solver,
                                   Y0=None if starts is None else starts[rows[part]],
                                   curvature=state.archive.nearest_curvature(out.X[rows[part]]),
                                   determined=None if predictions is None else predictions.determined[rows[part]],
                                   f_accept=None if accept is None else accept[part],
                                   first_values=None if known is None else known[rows[part]])

        if state.objective_first:  # the run's probes showed its refinements trapped (module objective_first)
            sol = self.objective.route(ctx, state, out.X[rows], None if starts is None else starts[rows], accept,
                                       None if predictions is None else predictions.f_bound[rows], from_warm_starts)
            state.counts["objective_first"] += rows.size
        else:
            sol = from_warm_starts(slice(None))
        good = sol.success & (sol.cv == 0)
        if predictions is not None:
            # A refinement ends at a local optimum; one clearly above phi is sent on to the global search ...
            good &= sol.f <= predictions.f_bound[rows]
            # ... and one that meets an accurate phi is optimal by the rule that accepts predictions, converged
            # or not.
            good |= (sol.cv == 0) & predictions.trusted[rows] & self.response.meets_phi(sol.f, predictions.phi[rows])
        out.take(rows, sol)
        todo[rows[good]] = False
        state.counts["refined"] += int(good.sum())
        self.objective.probe(ctx, state, starts, out, rows[good])
        if predictions is None:
            return rows[:0]
        # A feasible answer clearly above phi is a suspected local optimum. Where the follower's local searches get
        # trapped, the global searches that follow keep finding lower values; where phi is what errs (a follower
        # whose optimal value has kinks that a quadratic rounds off), they never do: once such searches have mostly
        # failed in this run, only a share of the suspects is searched, and the others keep their refined answers.
        suspect = np.flatnonzero(~good & (sol.cv == 0) & (sol.f > predictions.f_bound[rows]))
        searched = self.sample_suspects(state.suspects, suspect.size)
        todo[rows[suspect[~searched]]] = False
        state.counts["suspects_kept"] += int((~searched).sum())
        return rows[suspect[searched]]

    def convex_rows(self, ctx, state: BLEAQState, X: np.ndarray, away: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Which rows of X (n, ul_dim) have a follower whose problem is a convex quadratic programme in y
        (:mod:`evobilevel.lower.convex`, ``(d + 1)(d + 2) / 2 + 2`` evaluations a row), and a start (n, ll_dim) per
        row for the refinement that then finds the follower's optimum: the test's best point by Deb's rules, or,
        given answers ``away`` (n, ll_dim) to check, the test's point farthest from each (scaled to the box), so
        that where the follower has a set of optima the refinement ends at another one than the answer checked, if
        there is one, as a search from scratch would find it. The first row is tested first, and the others only if
        it passes: a follower that is not convex costs one test.

        Once a row has failed the test, the follower is not convex, and the run stops asking
        (``state.lower_convex``): all False and None then, as with integer variables (the follower's problem is
        not a programme in real numbers) or without ``certify_convex``.
        """
        n = X.shape[0]
        if not self.certify_convex or state.lower_convex is False or integer_mask(ctx.problem) is not None:
            return np.zeros(n, bool), None
        lo, hi = ctx.problem.ll_bounds
        P = stencil(lo, hi)
        convex, best = np.zeros(n, bool), np.zeros((n, lo.shape[0]))
        for rows in (slice(0, 1), slice(1, n)):
            m = X[rows].shape[0]
            if m == 0 or state.lower_convex is False:
                break
            ev = ctx.evaluate_lower(np.repeat(X[rows], P.shape[0], axis=0), np.tile(P, (m, 1)))
            F, cv = ev.values.reshape(m, -1), ev.cv.reshape(m, -1)
            measured, convex[rows] = certify_convex(F, ev.constraints.reshape(m, P.shape[0], -1), lo, hi)
            state.lower_convex = _verdict(state.lower_convex, measured, convex[rows])
            best[rows] = P[[np.lexsort((F[i], cv[i]))[0] for i in range(m)]]
        if away is not None:
            far = (((P[None, :, :] - away[:, None, :]) / np.where(hi > lo, hi - lo, 1.0)) ** 2).sum(axis=2)
            best = P[np.argmax(far, axis=1)]
        return convex, best

    @staticmethod
    def _drop_infeasible(ctx, state: BLEAQState, rows: np.ndarray, out: Answers) -> np.ndarray:
        """``rows`` without the stuck ones (refined to an infeasible answer) at which the follower is certified
        infeasible: its constraints linear in y there, and their least violation over the box above zero
        (:mod:`evobilevel.lower.linear`, ``d + 3`` evaluations per row). Such a row keeps its refined answer,
        as a row the search rule passes over does; no search could find a feasible one.

        Once a row's constraints have failed the test of linearity, the follower is not linear, and the run stops
        asking (``state.lower_linear``). Followers with integer variables are not asked: the test evaluates
        points between their whole numbers.
        """
        stuck = rows[(out.ll_cv[rows] > 0) & np.isfinite(out.ll_cv[rows])]  # a failed evaluation tells nothing
        if not stuck.size or state.lower_linear is False or integer_mask(ctx.problem) is not None:
            return rows
        lo, hi = ctx.problem.ll_bounds
        P, H = linearity_points(out.Y[stuck], lo, hi)
        n, k, d = P.shape
        ev = ctx.evaluate_lower(np.repeat(out.X[stuck], k, axis=0), P.reshape(-1, d))
        G = ev.constraints.reshape(n, k, -1)
        linear, infeasible = certify_infeasible(out.Y[stuck], H, G, lo, hi)
        state.lower_linear = _verdict(state.lower_linear, np.isfinite(G).all(axis=(1, 2)), linear)
        state.counts["certified_infeasible"] += int(infeasible.sum())
        return np.setdiff1d(rows, stuck[infeasible])

    def _search(self, ctx, state, rows: np.ndarray, starts, out: Answers) -> None:
        """Global searches for ``rows``, from their refined answers and starts."""
        # Rows whose refinement could not even reach the follower's feasible set: where the global search has
        # (almost) never found one for such rows in this run, the follower's problem is infeasible there.
        stuck = out.ll_cv[rows] > 0
        hopeless = self._hopeless(state)
        untried = MIN_STUCK_TRIES - state.stuck.tried
        if not hopeless and stuck.sum() > untried > 0:
            # More stuck rows than the searches the rule still needs before it can judge them: search those first,
            # then the rest by the rule's verdict (all of them, or a capped share where nothing was found).
            later = np.flatnonzero(stuck)[untried:]
            self._search(ctx, state, np.delete(rows, later), starts, out)
            self._search(ctx, state, rows[later], starts, out)
            return
        if hopeless and stuck.any():
            searched = ~stuck
            searched[stuck] = self.sample_stuck(state.stuck, int(stuck.sum()))
            rows, stuck = rows[searched], stuck[searched]  # the others keep their refinement's answer
            if not rows.size:
                return
        Y0 = np.concatenate([out.Y[rows, None, :], starts[rows]], axis=1) if starts is not None else None
        found = self.search(ctx, state, out.X[rows], Y0, capped=stuck if hopeless else None)
        state.stuck.count(found.ll_cv[stuck] == 0)
        out.put(rows, found)

    @staticmethod
    def _hopeless(state: BLEAQState) -> bool:
        """Whether the stuck searches have been tried often enough and found a feasible answer rarely enough to
        take the follower's problem for infeasible around them."""
        tried, paid = state.stuck.tried, state.stuck.paid
        return tried >= MIN_STUCK_TRIES and paid <= HOPELESS_SHARE * tried

    @staticmethod
    def sample_stuck(stuck: SearchRecord, n: int) -> np.ndarray:
        """Which of ``n`` stuck rows to search (n,) bool, once such searches have turned out hopeless.

        A share ``min(1, p / HOPELESS_SHARE)`` of them, ``p = (paid + 1) / (tried + 1)`` the rate at which the
        searches so far found a feasible answer: all of them at the threshold, fewer the more searches have failed,
        so that a follower infeasible wherever a refinement ends infeasible (TP4's and TP6's leaders near the edge
        of the follower's feasible region) costs searches growing with the square root of such rows rather than
        in proportion, while the searches go on measuring the rate (and all rows are searched again once it rises
        above the threshold). Deterministic: the share accumulates as a credit, and a row is searched whenever the
        credit reaches one.
        """
        return stuck.owed(min(1.0, (stuck.paid + 1) / (stuck.tried + 1) / HOPELESS_SHARE), n)

    @staticmethod
    def sample_suspects(suspects: SearchRecord, n: int) -> np.ndarray:
        """Which of ``n`` suspected local optima to search (n,) bool.

        All of them while the searches have found a lower value at least as often as not, by Laplace's estimate
        ``p = (paid + 1) / (tried + 2)`` of that rate from the searches of this run (a half before the first);
        a share ``2 p`` of them below. A suspect passed over keeps an answer that may be a local optimum, which can
        mislead the leader for longer than a fruitless search costs: the searches thin out only where they have
        mostly failed. Deterministic, as :meth:`sample_stuck`: the share accumulates as a credit, and a row is
        searched whenever the credit reaches one.
        """
        return suspects.owed(min(1.0, 2 * (suspects.paid + 1) / (suspects.tried + 2)), n)

    def resolve(self, ctx, state: BLEAQState, X: np.ndarray, away: np.ndarray | None = None) -> Answers:
        """The lower levels of X (n, ul_dim) solved from scratch, not archived: by the global search, or where the
        follower is certified convex at a row, by a refinement from the start :meth:`convex_rows` chooses (``away``:
        the answers (n, ll_dim) being checked), whose local optimum is then the global one. Counted in the caller's
        phase.
        """
        convex, start = self.convex_rows(ctx, state, X, away)
        if not convex.any():
            return self.search(ctx, state, X, None)
        out = Answers.none(X, ctx.problem.ll_dim)
        if not convex.all():
            out.put(~convex, self.search(ctx, state, X[~convex], None))
        sol = ctx.solve_lower(X[convex], self.local_solver, Y0=start[convex][:, None, :])
        out.take(convex, sol)
        state.counts["certified_convex"] += int(convex.sum())
        return out

    def search(self, ctx, state: BLEAQState, X: np.ndarray, Y0: np.ndarray | None,
               capped: np.ndarray | None = None) -> Answers:
        """Global lower-level searches for the rows of X (n, ul_dim); those marked in ``capped`` (n,) bool get at
        most ``infeasible_evals`` evaluations each. Not archived here."""
        state.counts["global"] += X.shape[0]
        with self.ledger.phase(ctx, state.ll_evals, "global"):
            if capped is None or not capped.any():
                sol = ctx.solve_lower(X, self.global_solver, Y0=Y0)
                return Answers(X, sol.Y, sol.f, sol.cv, curvature=sol.curvature)
            out = Answers.none(X, ctx.problem.ll_dim)
            state.counts["capped_global"] += int(capped.sum())
            for part, cap in ((~capped, None), (capped, self.infeasible_evals)):
                if part.any():
                    sol = ctx.solve_lower(X[part], self.global_solver, Y0=None if Y0 is None else Y0[part],
                                          max_evals_per_row=cap)
                    out.take(part, sol)
            return out

    @staticmethod
    def archive(state: BLEAQState, settled: Answers) -> None:
        """Add the feasible answers of ``settled`` to the archive of lower-level optima."""
        ok = (settled.ll_cv == 0) & np.isfinite(settled.f)
        state.archive.add(X=settled.X[ok], Y=settled.Y[ok], f=settled.f[ok], curvature=settled.curvature[ok])


def capped_evals(ll_dim: int) -> int:
    """The default evaluations of a capped search for a follower of ``ll_dim`` variables: ``CAPPED_EVALS_PER_VARIABLE``
    per variable.

    A capped search is a probe: where the searches after infeasible refinements have (almost) never found a feasible
    answer, it keeps measuring that rate at a small cost, and a probe that finds one brings the full searches back.
    Fixed at 200 evaluations at every size, it was 12 generations of the DE's population on a two- or three-variable
    follower (whose population a former floor of 16 made larger than four per variable) and 5 at ten variables;
    counted per variable, as the DE's windows are, it is ten generations of four members per variable: 80 and 120
    evaluations at two and three variables, 200 at five, 400 at ten.
    """
    return CAPPED_EVALS_PER_VARIABLE * ll_dim


def settle_initial(settlement, ctx, state: BLEAQState, X: np.ndarray, n_global: int, n_starts: int = 2,
                   predict: bool = False) -> Answers:
    """The lower levels of a batch X (n, ul_dim) that may come before any answer, added to the archive: while the
    archive is empty, the first ``n_global`` rows are solved from scratch (:meth:`LowerSettlement.resolve`), and the
    others refined from the nearest archived optima (``n_starts`` starts each), with the models only where
    ``predict`` allows them and no row was solved from scratch (they are to be fitted on these answers). BLEAQ's
    initial populations take the defaults; a pymoo leader's followers settle every batch so.

    ``settlement`` is a :class:`LowerSettlement` or anything with its interface (several followers).
    """
    first = min(X.shape[0], n_global) if state.archive.size == 0 else 0
    parts = []
    if first:
        head = settlement.resolve(ctx, state, X[:first])
        settlement.archive(state, head)
        parts.append(head)
    if first < X.shape[0]:
        Y0 = state.archive.warm_starts(X[first:], n_starts)
        parts.append(settlement.settle(ctx, state, X[first:], Y0, allow_prediction=predict and not first))
    return Answers.concat(parts)


def _verdict(before: bool | None, measured: np.ndarray, passed: np.ndarray) -> bool | None:
    """A run's verdict on a test of its follower after one more batch of rows (``measured`` and ``passed`` (k,)
    bool): False for good once a measured row has failed, True once one has passed, else as ``before``."""
    if before is False or (measured & ~passed).any():
        return False
    return True if passed.any() else before
