"""Several independent followers: each chooses its own block of the lower-level variables.

Follower i chooses ``y_i`` to minimise ``f_i(x, y_i)`` subject to ``g_i(x, y_i) <= 0`` within its own bounds; the
leader sees ``y`` as the blocks concatenated in order. Since no follower's problem involves another's block, the
followers' answers together minimise ``f(x, y) = sum_i f_i(x, y_i)`` subject to every ``g_i``: that is the lower
level a :class:`~evobilevel.problem.Problem` with followers presents (``p.lower``), with the followers' constraints
side by side. Every solver, however, solves each follower's block as an ordinary single-follower problem of its
own (:attr:`FollowerSet.problems`): the lower-level evaluations are counted per follower, and the result reports
each follower's answer, evaluation count and gap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .lower.refinement import StartValues

__all__ = ["Follower", "FollowerSet", "FollowerContext", "FollowerResult", "join_solutions"]


class Follower:
    """One follower of a bilevel problem with several.

    Parameters
    ----------
    objective : callable
        ``f_i(x, y_i) -> float`` (or, for a problem with ``vectorized=True``, ``f_i(X, Y_i) -> array (n,)``).
    bounds : (array_like, array_like), sequence of (low, high) pairs, or scipy.optimize.Bounds
        Bounds of ``y_i``; their length is the number of this follower's variables.
    constraints : callable, optional
        ``g_i(x, y_i) -> array (m_i,)`` (batch: ``(n, m_i)``), feasible where every entry is ``<= 0``.
    integrality : bool or array_like of bool, optional
        Which of ``y_i``'s variables take whole numbers only (scipy's meaning, see :class:`~evobilevel.Problem`).
    n_constraints : int, optional
        Number of values ``constraints`` returns (learnt from a first evaluation otherwise).
    name : str, optional
        Used in messages and results; ``"follower <i>"`` (counting from 1) by default.

    Notes
    -----
    The problem's ``vectorized`` and ``timeout`` apply to a follower's functions as to the leader's. When the
    problem is built, each follower's functions are called once at the centre of the bounds: a function that
    indexes beyond the variables its bounds give it is refused there, with its follower named.
    """

    def __init__(self, objective: Callable, bounds, constraints: Callable | None = None, integrality=None, *,
                 n_constraints: int | None = None, name: str | None = None):
        self.objective = objective
        self.bounds = bounds
        self.constraints = constraints
        self.integrality = integrality
        self.n_constraints = n_constraints
        self.name = name

    def __repr__(self) -> str:
        return f"Follower(name={self.name!r}, objective={getattr(self.objective, '__name__', self.objective)!r})"


def _no_upper(X, Y):
    """The upper level of a follower's own problem: not defined there (the leader sees every follower at once)."""
    raise TypeError("a follower's own problem has no upper level; evaluate the whole problem")


class FollowerSet:
    """The followers of one problem, each as a single-follower problem of its own, and their joint lower level.

    Parameters
    ----------
    parent : Problem
        The problem being built (its name, upper-level bounds and integrality, ``vectorized`` and ``timeout`` are
        set).
    followers : sequence of Follower

    Attributes
    ----------
    problems : tuple of Problem
        Follower i's own problem: ``lower`` is ``f_i``, ``ll_bounds`` its bounds; it has no upper level.
    blocks : tuple of slice
        Follower i's columns of ``y``.
    names : tuple of str

    Raises
    ------
    ProblemDefinitionError
        No follower, something else than a :class:`Follower`, two followers of one name, or a follower whose
        bounds, integrality or functions are wrong (the message names it).
    """

    def __init__(self, parent, followers: Sequence[Follower]):
        from .problem import Problem, ProblemDefinitionError

        followers = list(followers) if isinstance(followers, (list, tuple)) else followers
        if not isinstance(followers, list) or not followers:
            raise ProblemDefinitionError(f"{parent.name}: followers must be a non-empty list of evobilevel.Follower, "
                                         f"got {followers!r}")
        problems, names = [], []
        for i, follower in enumerate(followers):
            if not isinstance(follower, Follower):
                raise ProblemDefinitionError(f"{parent.name}: followers[{i}] must be an evobilevel.Follower, got "
                                             f"{type(follower).__name__}")
            name = str(follower.name) if follower.name is not None else f"follower {i + 1}"
            if name in names:
                raise ProblemDefinitionError(f"{parent.name}: two followers are named {name!r}")
            names.append(name)
            label = f"{parent.name}, follower {i + 1} ({name!r})"
            problems.append(Problem(
                _no_upper, follower.objective, ul_bounds=parent.ul_bounds, ll_bounds=follower.bounds,
                lower_constraints=follower.constraints, n_ll_constraints=follower.n_constraints,
                ll_integrality=follower.integrality, vectorized=parent.vectorized, name=label,
                timeout=parent.timeout))
            _probe(problems[-1])
        sizes = np.cumsum([0] + [p.ll_dim for p in problems])
        self.followers = tuple(followers)
        self.problems = tuple(problems)
        self.names = tuple(names)
        self.blocks = tuple(slice(int(a), int(b)) for a, b in zip(sizes[:-1], sizes[1:]))

    def __len__(self) -> int:
        return len(self.problems)

    def space(self) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        """The followers' bounds and integrality masks, concatenated: ((lower, upper), mask), each of shape
        (ll_dim,), read-only."""
        arrays = [np.concatenate([p.ll_bounds[0] for p in self.problems]),
                  np.concatenate([p.ll_bounds[1] for p in self.problems]),
                  np.concatenate([p.ll_integrality for p in self.problems])]
        for a in arrays:
            a.setflags(write=False)
        return (arrays[0], arrays[1]), arrays[2]

    def n_constraints(self) -> int:
        """The followers' constraint counts added up (each learnt from an evaluation if it was not given)."""
        return sum(p.n_ll_constraints for p in self.problems)

    def functions(self) -> dict:
        """Every follower's functions, labelled by follower."""
        out = {}
        for name, problem in zip(self.names, self.problems):
            for label, function in problem.functions().items():
                if label != "upper":
                    out[f"{name}: {label}"] = function
        return out

    def evaluate(self, X: np.ndarray, Y: np.ndarray, log=None) -> tuple[np.ndarray, np.ndarray]:
        """The joint lower level at X (n, ul_dim), Y (n, ll_dim): ``sum_i f_i`` (n,) and the constraints of every
        follower side by side (n, m); see :meth:`~evobilevel.problem.Problem.evaluate_batch` for ``log``."""
        from .problem import FailureLog

        total = np.zeros(X.shape[0])
        constraints = []
        for problem, block in zip(self.problems, self.blocks):
            part = None if log is None else FailureLog(np.zeros(X.shape[0], bool))
            values, g = problem.evaluate_batch("lower", X, Y[:, block], part)
            if part is not None and part.failed.any():
                log.failed |= part.failed
                log.first_error = log.first_error or part.first_error
            total = total + values
            constraints.append(g)
        return total, np.hstack(constraints)


def _probe(problem) -> None:
    """Call a follower's functions once at the centre of its box: a function that indexes beyond the variables of
    its bounds fails here, with its follower named, instead of failing every evaluation of a run."""
    from .problem import ProblemDefinitionError

    x = 0.5 * (problem.ul_bounds[0] + problem.ul_bounds[1])
    y = 0.5 * (problem.ll_bounds[0] + problem.ll_bounds[1])
    try:
        problem.evaluate_batch("lower", x[None, :], y[None, :])
    except IndexError as exc:
        form = "batches (n, d)" if problem.vectorized else "single points (d,)"
        raise ProblemDefinitionError(
            f"{problem.name}: its bounds give it {problem.ll_dim} variable(s), but its functions failed on a y of "
            f"that length at the centre of the bounds (IndexError: {exc}); do the bounds match the functions, and "
            f"do the functions take {form} (vectorized={problem.vectorized})?"
        ) from None
    except ProblemDefinitionError:
        raise
    except Exception:  # noqa: BLE001 - a black box may fail at one point; a run treats that as a failed evaluation
        pass


@dataclass
class FollowerResult:
    """One follower's part of a result.

    Attributes
    ----------
    name : str
    y : ndarray, shape (ll_dim_i,)
        The follower's answer (its block of the result's ``y``).
    f : float or None
        ``f_i(x, y_i)`` (None when the lower-level check was not run).
    feasible : bool or None
    n_ll_evals : int
        Lower-level evaluations of this follower during the run.
    ll_gap : float or None
        ``f_i(x, y_i) - f_i(x, y_check)`` from an independent solve of this follower's problem at ``x``.
    n_ll_evals_check : int
        Evaluations of that check (and of ``f_i`` at the answer).
    """

    name: str
    y: np.ndarray
    f: float | None = None
    feasible: bool | None = None
    n_ll_evals: int = 0
    ll_gap: float | None = None
    n_ll_evals_check: int = 0

    def summary(self) -> str:
        """One line: the follower's answer, value, evaluations and gap."""
        y = np.array2string(self.y, precision=6)
        f = "" if self.f is None else f", f {self.f:.8g}"
        gap = "" if self.ll_gap is None else f", ll_gap {self.ll_gap:.3e}"
        return f"  {self.name}: y {y}{f}{gap}, LL evaluations {self.n_ll_evals}"

    @classmethod
    def from_dict(cls, data: dict) -> FollowerResult:
        """From its JSON form (as :func:`evobilevel.plain.plain` writes it)."""
        data = {k: v for k, v in data.items() if k != "type"}
        data["y"] = np.asarray(data["y"], dtype=float)
        return cls(**data)


class FollowerContext:
    """A run context seen by one follower: its own problem, its lower-level evaluations and solves, counted for it
    and in the run's totals, within the run's budget.

    It offers what a lower-level settlement uses of a :class:`~evobilevel.context.RunContext`: ``problem`` (the
    follower's own), ``rng`` (the run's upper-level generator), ``evaluate_lower`` and ``solve_lower``.

    Parameters
    ----------
    ctx : RunContext
    index : int
        The follower.
    """

    def __init__(self, ctx, index: int):
        self.ctx, self.index = ctx, index
        self.problem = ctx.problem.follower_set.problems[index]
        self.rng = ctx.rng

    @property
    def n_ll_evals(self) -> int:
        """The run's lower-level evaluations so far (every follower's)."""
        return self.ctx.n_ll_evals

    def evaluate_lower(self, X: np.ndarray, Y: np.ndarray):
        """Counted ``f_i, g_i`` at X (n, ul_dim), Y (n, ll_dim_i), in this process."""
        return self.ctx.evaluate_follower(self.index, X, Y)

    def solve_lower(self, X: np.ndarray, solver, Y0: np.ndarray | None = None,
                    max_evals_per_row: int | None = None, curvature: np.ndarray | None = None,
                    determined: np.ndarray | None = None, f_accept: np.ndarray | None = None,
                    first_values: StartValues | None = None):
        """Solve this follower's problem at every row of X (see :meth:`~evobilevel.context.RunContext.solve_lower`)."""
        return self.ctx.solve_followers(X, solver, {self.index: Y0}, max_evals_per_row,
                                        {self.index: curvature}, {self.index: determined},
                                        {self.index: f_accept}, {self.index: first_values})[self.index]


def join_solutions(parts: list):
    """The followers' solutions of the same rows as one: answers side by side, values and violations added."""
    from .lower.base import LowerSolution

    return LowerSolution(
        Y=np.hstack([p.Y for p in parts]),
        f=np.sum([p.f for p in parts], axis=0),
        cv=np.sum([p.cv for p in parts], axis=0),
        success=np.all([p.success for p in parts], axis=0),
        n_evals=np.sum([p.n_evals for p in parts], axis=0),
        curvature=np.hstack([p.curvature for p in parts]),
    )
