"""BLEAQ's upper-level search: evolutionary offspring, one candidate from a quadratic model of the leader's
problem, the upper-level evaluation of settled candidates, and survivor selection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from ...blas import single_blas_thread
from ...space import widths
from ...surrogates import fit_quadratic, n_coefficients
from ..archive import RingBuffer
from ..operators import de_current_to_pbest, repair_midpoint
from ..population import Population, child_wins
from .settlement import Answers

__all__ = ["Offspring", "ModelProposal", "UpperSearch"]

#: A quarter of the population gets an offspring each generation: selection stays one-to-one, and the lower-level
#: work of a generation stays small enough for the response models to learn from the previous one.
OFFSPRING_SHARE = 4
#: Iterations of the SLSQP search on the quadratic model: the model is smooth and cheap, so this only guards
#: against an ill-conditioned fit.
MODEL_MAXITER = 100
#: A distance this small is no distance: neighbours that span less of a variable's range give the model nothing to
#: go on in that direction, and a proposal that moves less (absolute) is the best member again.
NO_DISTANCE = 1e-12
#: Newton steps that put a model minimiser back onto the model's constraints, and their relative finite-difference
#: step (the square root of the machine epsilon).
NEWTON_STEPS = 3
NEWTON_STEP = 1.5e-8
#: SLSQP's default tolerance (scipy's ``ftol``), to which it counts a constraint as met.
SLSQP_TOL = 1e-6
#: A few machine epsilons: the relative rounding of a constraint evaluated at a point.
ROUNDING = 8 * np.finfo(float).eps


@dataclass
class Offspring:
    """A generation's new candidates.

    Attributes
    ----------
    X : ndarray, shape (k, ul_dim)
    Y_start : ndarray, shape (k, ll_dim)
        Each candidate's own starting point for its lower level.
    parents : ndarray of int, shape (k,)
        The member each candidate competes with, -1 for the model candidate (it competes with the worst member).
    """

    X: np.ndarray
    Y_start: np.ndarray
    parents: np.ndarray


@dataclass
class ModelProposal:
    """What the quadratic model of the leader's problem around the best member proposes.

    Attributes
    ----------
    x : ndarray, shape (ul_dim,), or None
        The model's minimiser within the box of its points; None where it is the best member itself.
    error : float
        The model's error at the best member, ``|model(x_best) - F_best|``.
    span : float
        The smallest share of a variable's range that the model's points span.
    misfit : float
        The model's largest error on the points it was fitted on.
    promised : float or callable
        The gain (see :attr:`gain`), or how to find it.
    """

    x: np.ndarray | None
    error: float
    span: float = 0.0
    misfit: float = np.inf
    promised: float | Callable[[], float] = field(default=np.nan, repr=False)

    @property
    def gain(self) -> float:
        """The improvement of F over the best member's that the model predicts within its reach (0 or more; inf
        where the model's minimiser violates the model's constraints). Found by an SLSQP run of its own the first
        time it is asked for: the convergence tests need it only in the generations that get that far."""
        if callable(self.promised):
            self.promised = self.promised()
        return self.promised


@dataclass
class _NearModel:
    """Quadratic models of F and G (``model``) fitted on the evaluated pairs ``X`` (k, ul_dim), ``F`` (k,) nearest
    the best member ``x_best`` (value ``F_best``), within their box ``lo``, ``hi``; ``n_constraints`` modelled."""

    model: object
    x_best: np.ndarray
    F_best: float
    lo: np.ndarray
    hi: np.ndarray
    n_constraints: int
    X: np.ndarray
    F: np.ndarray


class UpperSearch:
    """Proposes, evaluates and selects upper-level candidates.

    Parameters
    ----------
    ul_bounds, ll_bounds : (ndarray, ndarray)
    n_offspring : int, optional
        Evolutionary offspring per generation; by default a quarter of the population.
    """

    def __init__(self, ul_bounds, ll_bounds, n_offspring: int | None = None):
        self.lo, self.hi = ul_bounds
        self.ll_bounds = ll_bounds
        self.fixed_offspring = n_offspring
        self.x_widths = widths(ul_bounds)
        d = self.lo.shape[0]
        # Evaluated pairs for the upper-level model: a full quadratic in x, plus d for its least-squares slack.
        self.n_model_fit = n_coefficients(d, "quadratic") + d

    def n_offspring(self, pop_size: int) -> int:
        """Offspring per generation for a population of ``pop_size``."""
        return self.fixed_offspring or max(2, pop_size // OFFSPRING_SHARE)

    def generations_per_renewal(self, pop_size: int) -> float:
        """Generations in which a population of ``pop_size`` evaluates as many new points (its offspring and one
        model candidate a generation) as the upper-level model is fitted on: the pace at which the model can
        move with the population."""
        return self.n_model_fit / (self.n_offspring(pop_size) + 1)

    def offspring(self, rng: np.random.Generator, population: Population, ranks: np.ndarray) -> Offspring:
        """DE offspring of randomly chosen members.

        DE works on the joint vector (x, y): y's part gives each child a recombined lower-level start, which carries
        the follower's free directions (where several y are optimal) through selection.
        """
        n = len(ranks)
        targets = rng.choice(n, size=min(self.n_offspring(n), n), replace=False)
        joint = np.hstack([population.X, population.Y])
        trial = de_current_to_pbest(joint, ranks, rng)[targets]
        d = self.lo.shape[0]
        X = repair_midpoint(trial[:, :d], population.X[targets], self.lo, self.hi)
        Y_start = np.clip(trial[:, d:], *self.ll_bounds)
        return Offspring(X, Y_start, targets)

    def with_model_candidates(self, offspring: Offspring, population: Population, evaluated: RingBuffer,
                              best: int, eps: float = 0.0, exact_too: bool = False) -> ModelProposal | None:
        """Add to ``offspring`` the candidate that minimises quadratic models of F and G around member ``best``,
        the models' constraints met at the epsilon level ``eps`` (see :meth:`model_candidate`), where the models
        propose a move; with ``exact_too``, also the one that meets them exactly (one fit for both). Returns the
        proposal at ``eps`` (None where no model could be fitted)."""
        near = self._near_model(population, evaluated, best)
        if near is None:
            return None
        proposal = self._propose(near, eps)
        self._add(offspring, population, best, proposal.x)
        if exact_too:
            self._add(offspring, population, best, self._propose(near, 0.0, with_gain=False).x)
        return proposal

    @staticmethod
    def _add(offspring: Offspring, population: Population, best: int, x: np.ndarray | None) -> None:
        """Append a model candidate x (None: no move), which competes with the worst member and starts its lower
        level from the best member's answer."""
        if x is not None:
            offspring.X = np.vstack([offspring.X, x])
            offspring.Y_start = np.vstack([offspring.Y_start, population.Y[best]])
            offspring.parents = np.append(offspring.parents, -1)

    def model_candidate(self, population: Population, evaluated: RingBuffer, best: int,
                        eps: float = 0.0) -> ModelProposal | None:
        """Minimise quadratic models of F(x, y*(x)) and of the upper-level constraints near member ``best``,
        within the box of the points they were fitted on; None where there are too few points or they span no
        box.

        The model's constraints are met at the epsilon level ``eps``: each of the m modelled constraints at most
        ``eps / m``, so that the candidate's total violation is within the level where the model is right. While
        the level falls, the candidate is thus the lowest F the models allow at the violation the comparisons
        currently tolerate: it leads the population along the path of the relaxed problems' optima, where the
        evolutionary offspring would cut their violation by whatever move cuts it most (on SMD10 and SMD12 at
        (10, 10), pushing two variables far below zero, into a worse part of the feasible region). With no member
        feasible and the level at 0 it is a repair move towards the models' feasible region.
        """
        near = self._near_model(population, evaluated, best)
        return None if near is None else self._propose(near, eps)

    def _near_model(self, population: Population, evaluated: RingBuffer, best: int) -> _NearModel | None:
        """The quadratic models of F and G fitted on the evaluated pairs nearest member ``best``, and their box;
        None where there are too few pairs or they span no box."""
        # The pairs in `evaluated` all have a feasible follower's answer; the member needs one too.
        if not (population.ll_cv == 0).any() or evaluated.size < self.n_model_fit:
            return None
        x_best = population.X[best].copy()  # kept for the gain, asked for after the generation's selection
        Xe, Fe, Ge = evaluated.X, evaluated.F, evaluated.G
        d2 = (((Xe - x_best) / self.x_widths) ** 2).sum(axis=1)
        near = np.argsort(d2)[: self.n_model_fit]
        lo = np.maximum(self.lo, Xe[near].min(axis=0))
        hi = np.minimum(self.hi, Xe[near].max(axis=0))
        if np.any(hi - lo <= NO_DISTANCE * self.x_widths):
            return None  # the neighbours span no box in some direction: the model cannot say where to go
        model = fit_quadratic(Xe[near], np.hstack([Fe[near, None], Ge[near]]))
        return _NearModel(model, x_best, float(population.F[best]), lo, hi, Ge.shape[1], Xe[near], Fe[near])

    def _propose(self, near: _NearModel, eps: float, with_gain: bool = True) -> ModelProposal:
        """The models' minimiser within their box, their constraints met at the epsilon level ``eps``; with
        ``with_gain``, also the improvement they promise within their reach (an SLSQP run more)."""
        model, x_best = _Remembered(near.model), near.x_best
        share = eps / near.n_constraints if near.n_constraints else None
        x = _model_minimiser(model, x_best, near.lo, near.hi, share)
        if not np.all(np.isfinite(x)):
            return ModelProposal(None, np.inf, promised=np.inf)
        move = None if np.allclose(x, x_best, rtol=0, atol=NO_DISTANCE) else x
        promised = np.nan
        if with_gain:
            def promised():
                return self._gain(model, x_best, near.F_best, near.lo, near.hi, share)
        return ModelProposal(move, abs(model.predict(x_best)[0, 0] - near.F_best),
                             float(np.min((near.hi - near.lo) / self.x_widths)),
                             float(np.max(np.abs(model.predict(near.X)[:, 0] - near.F))), promised)

    def _gain(self, model, x_best: np.ndarray, F_best: float, lo, hi, share: float | None) -> float:
        """The improvement of F the model predicts anywhere within its reach of the best member: the box of its
        points widened to centre on the best member (within the problem's bounds), so that a best member on the
        edge of the sampled region, whose model still falls beyond it, is not taken for a minimum. ``share`` is
        what each model constraint may reach (the epsilon level's share; None without constraints)."""
        reach = np.maximum(x_best - lo, hi - x_best)
        lo_c, hi_c = np.maximum(self.lo, x_best - reach), np.minimum(self.hi, x_best + reach)
        at_x = model.predict(_model_minimiser(model, x_best, lo_c, hi_c, share))[0]
        if not np.all(np.isfinite(at_x)) or (share is not None and np.any(at_x[1:] > share)):
            return np.inf  # a minimiser that violates the model's own constraints promises nothing
        return max(0.0, F_best - at_x[0])

    @staticmethod
    def evaluate(ctx, evaluated: RingBuffer, answers: Answers) -> Population:
        """Upper-level values of settled candidates, as members; the pairs with a feasible follower's answer are
        remembered in ``evaluated`` for the upper-level model."""
        ul = ctx.evaluate_upper(answers.X, answers.Y)
        ok = (answers.ll_cv == 0) & ~ul.failed
        evaluated.add(X=answers.X[ok], F=ul.values[ok], G=ul.constraints[ok])
        return Population(X=answers.X.copy(), Y=answers.Y.copy(), F=ul.values.copy(), G=ul.constraints.copy(),
                          ul_cv=ul.cv.copy(), f=answers.f.copy(), ll_cv=answers.ll_cv.copy())

    @staticmethod
    def select(population: Population, children: Population, parents: np.ndarray, ranks) -> None:
        """Each evolutionary child against its parent, the model candidate against the worst member; in place.

        ``ranks`` ranks a population (the current epsilon level's order).
        """
        evolved = np.flatnonzero(parents >= 0)
        # The parents are distinct, so the one-to-one contests do not interact.
        wins = evolved[child_wins(population.take(parents[evolved]), children.take(evolved), ranks)]
        population.put(parents[wins], children.take(wins))
        for j in np.flatnonzero(parents < 0):
            worst = int(np.argmax(ranks(population)))
            one = children.take(slice(j, j + 1))
            if child_wins(population.take(slice(worst, worst + 1)), one, ranks)[0]:
                population.put(worst, one.take(0))


class _Remembered:
    """A model whose predictions at single points are kept, with SLSQP's forward-difference slopes of its outputs.

    SLSQP asks for the objective and the constraints at the same points, and one prediction gives both. Its slopes
    are scipy's own rule for SLSQP (``approx_derivative``, two points, absolute step ``sqrt(eps)``, turned back
    where it would leave the box), computed here from one batch of predictions for the objective and the
    constraints together rather than by two calls of scipy's, each predicting point by point: the same
    differences of the same predictions (:meth:`~evobilevel.surrogates.QuadraticModel.predict_each`), in a
    fraction of the time.
    """

    #: scipy's step for SLSQP's differences, absolute (and relative where that is lost to rounding): the square
    #: root of the machine epsilon, 2^-26 exactly.
    STEP = np.sqrt(np.finfo(np.float64).eps)

    def __init__(self, model):
        self.model, self._seen, self._shifted = model, {}, {}

    def objective_slopes(self, x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Forward-difference slopes (d,) of the model's F at x within ``[lo, hi]``."""
        x, dx, at = self._forward(x, lo, hi)
        return (at[:, 0] - self.predict(x)[0, 0]) / dx

    def constraint_slopes(self, x: np.ndarray, share: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Forward-difference slopes (n_constraints, d) of SLSQP's constraint values ``share - G(x)`` at x within
        ``[lo, hi]`` (differences of those values, as scipy takes them)."""
        x, dx, at = self._forward(x, lo, hi)
        return (((share - at[:, 1:]) - (share - self.predict(x)[0, 1:])) / dx[:, None]).T

    def _forward(self, x, lo, hi):
        """x clipped into the box, the steps dx (d,) and the predictions (d, m) at the forward points; kept."""
        x = np.asarray(x, dtype=float)
        if (x < lo).any() or (x > hi).any():
            x = np.clip(x, lo, hi)  # SLSQP may step outside by an ulp or two; scipy's differences clip it back
        key = x.tobytes() + lo.tobytes() + hi.tobytes()
        if key not in self._shifted:
            sign = (x >= 0).astype(float) * 2 - 1
            h = np.where((x + self.STEP) - x == 0, self.STEP * sign * np.maximum(1.0, np.abs(x)), self.STEP)
            # Where the step leaves the box: the other way if it fits there, else as far as the box allows.
            lower, upper = x - lo, hi - x
            fits = np.abs(h) <= np.maximum(lower, upper)
            h = np.where(((x + h < lo) | (x + h > hi)) & fits, -h, h)
            h = np.where(~fits & (upper >= lower), upper, h)
            h = np.where(~fits & (upper < lower), -lower, h)
            points = x + np.diag(h)  # row i: x with x_i + h_i
            self._shifted[key] = ((x + h) - x, self.model.predict_each(points))
        return (x, *self._shifted[key])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The model's predictions at X (d,) or (n, d): shape (n, m); kept for a single point."""
        X = np.asarray(X, dtype=float)
        if X.ndim > 1 and X.shape[0] != 1:
            return self.model.predict(X)
        key = X.tobytes()
        if key not in self._seen:
            self._seen[key] = self.model.predict(X)
        return self._seen[key]


def _onto_constraints(model, x: np.ndarray, share: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``x`` (ul_dim,) moved the least, within ``[lo, hi]``, onto the model constraints (the model's outputs after
    F) that exceed ``share`` there.

    SLSQP meets active constraints only to its tolerance (1e-11 to 1e-9 on TP1, whose leader's optimum is a
    vertex of two constraints), and a candidate that far outside a true constraint is infeasible: the model's
    minimiser would never be accepted, and promises nothing. Where some constraint is exceeded by no more than
    that tolerance, Newton steps on the exceeded constraints, with central-difference gradients of the model, put
    it back (a linear constraint in one step), just inside. A minimiser further outside is left as it is: SLSQP
    did not meet the constraints there, and moving it would make another candidate rather than correct this one.
    """
    over = model.predict(x)[0, 1:] - share
    if not np.any((over > 0) & (over <= SLSQP_TOL)):
        return x  # met, or missed by more than SLSQP's tolerance: a search that failed, not a rounding
    h = NEWTON_STEP * np.maximum(1.0, np.abs(x))
    active = np.zeros(over.shape, bool)
    for _ in range(NEWTON_STEPS):
        # A constraint once exceeded stays in the step: a step onto one alone can push x out of its neighbour
        # (two constraints meeting at a vertex), and alternating between them would converge slowly.
        active |= over > 0
        J = np.stack([(model.predict(x + e)[0, 1:][active] - model.predict(x - e)[0, 1:][active]) / (2 * e[j])
                      for j, e in enumerate(np.diag(h))], axis=1)
        # Aim inside by the rounding of evaluating a constraint at x, so that rounding cannot put x back outside.
        rounding = ROUNDING * (1.0 + np.abs(J) @ np.abs(x))
        step, *_ = np.linalg.lstsq(J, -(over[active] + rounding), rcond=None)
        x = np.clip(x + step, lo, hi)
        over = model.predict(x)[0, 1:] - share
        if not (over > 0).any():
            break
    return x


def _model_minimiser(model, x_start: np.ndarray, lo: np.ndarray, hi: np.ndarray, share: float | None) -> np.ndarray:
    """The minimiser (ul_dim,) of the model's F (its first output) by SLSQP from ``x_start`` within ``[lo, hi]``,
    each model constraint (the outputs after F) at most ``share`` (None: no constraints), put back onto the
    constraints where SLSQP left it just outside (:func:`_onto_constraints`).

    Under one BLAS thread: SLSQP's rounding depends on the thread count, and a run must take the same path in the
    run's process as in a worker of joblib (one thread) and on any machine.
    """
    constraints = [] if share is None else [{"type": "ineq", "fun": lambda x: share - model.predict(x)[0, 1:],
                                             "jac": lambda x: model.constraint_slopes(x, share, lo, hi)}]
    with single_blas_thread():
        res = minimize(lambda x: model.predict(x)[0, 0], x_start, jac=lambda x: model.objective_slopes(x, lo, hi),
                       method="SLSQP", bounds=list(zip(lo, hi)), constraints=constraints,
                       options={"maxiter": MODEL_MAXITER})
    x = np.clip(res.x, lo, hi)
    if share is not None and np.all(np.isfinite(x)):
        x = _onto_constraints(model, x, share, lo, hi)
    return x
