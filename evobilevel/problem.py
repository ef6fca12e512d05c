"""The bilevel problem interface.

A bilevel problem has a leader (upper level, UL) choosing ``x`` and a follower (lower level, LL) choosing ``y``:

    min_x  F(x, y)          subject to  G(x, y) <= 0,
    where  y in argmin_y f(x, y)   subject to  g(x, y) <= 0,

with box bounds on ``x`` and ``y``. Every function is a black box. Rows are points: a batch ``X`` has shape
``(n, ul_dim)`` and ``Y`` has shape ``(n, ll_dim)``.

:class:`Problem` wraps user functions, per point (``vectorized=False``) or per batch (``vectorized=True``); the
benchmark suites are subclasses that pass their own vectorised methods.
"""

from __future__ import annotations

import math
import signal
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .integrality import IntegralityError, check_integrality, integer_bounds
from .space import BoundsError, parse_bounds

__all__ = ["Problem", "Optimum", "ProblemDefinitionError", "check_bounds"]


class ProblemDefinitionError(ValueError):
    """A problem is defined wrongly (bad bounds, a function returning the wrong shape).

    Unlike a failure of one evaluation, this is a bug in the problem and is never swallowed.
    """


@dataclass(frozen=True)
class Optimum:
    """A known optimal solution of a bilevel problem.

    Attributes
    ----------
    x : ndarray, shape (ul_dim,)
    y : ndarray, shape (ll_dim,)
    F, f : float
        Upper- and lower-level objective values at ``(x, y)``.
    F_low : float, optional
        Where the lower level has several optimal answers at ``x`` and the published optimum is not the one the
        leader prefers (SMD12), the upper-level value of the preferred one: the optimistic minimum, below ``F``.
        A result anywhere in ``[F_low, F]`` is at least as good as the published optimum and has no upper-level
        error (see :meth:`ul_error`).
    """

    x: np.ndarray
    y: np.ndarray
    F: float
    f: float
    F_low: float | None = None

    def ul_error(self, F: float) -> float:
        """Distance of an upper-level value from the optimum (from ``[F_low, F]`` where ``F_low`` is set)."""
        if self.F_low is None:
            return abs(F - self.F)
        return max(F - self.F, self.F_low - F, 0.0)

    def errors(self, F: float, f: float) -> tuple[float, float]:
        """Upper- and lower-level errors of a result with values ``F, f`` (see :meth:`ul_error`)."""
        return self.ul_error(F), abs(f - self.f)

    def to_dict(self) -> dict:
        out = {"x": self.x.tolist(), "y": self.y.tolist(), "F": self.F, "f": self.f}
        if self.F_low is not None:
            out["F_low"] = self.F_low
        return out


def check_bounds(bounds, dim: int | None, what: str, problem_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate box bounds and return them as two read-only float arrays ``(lower, upper)`` of shape ``(dim,)``.

    ``bounds`` may be ``(lower, upper)``, a sequence of ``(low, high)`` pairs or a ``scipy.optimize.Bounds``; see
    :func:`evobilevel.space.parse_bounds` for how a 2 x 2 table, which both forms can give, is read.

    Raises
    ------
    ProblemDefinitionError
        If the bounds cannot be read (or can be read in two ways), have different lengths, are not finite, or have
        lower > upper somewhere.
    """
    try:
        lo, hi = parse_bounds(bounds, what)
    except BoundsError as exc:
        raise ProblemDefinitionError(f"{problem_name}: {exc}") from None
    if lo.ndim != 1 or hi.ndim != 1 or lo.shape != hi.shape:
        raise ProblemDefinitionError(
            f"{problem_name}: {what} lower and upper must be 1-D arrays of one length, "
            f"got shapes {lo.shape} and {hi.shape}"
        )
    if dim is not None and lo.shape[0] != dim:
        raise ProblemDefinitionError(f"{problem_name}: {what} have length {lo.shape[0]}, expected {dim}")
    if lo.shape[0] == 0:
        raise ProblemDefinitionError(f"{problem_name}: {what} are empty; each level needs at least one variable")
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ProblemDefinitionError(f"{problem_name}: {what} must be finite, got lower={lo}, upper={hi}")
    bad = np.flatnonzero(lo > hi)
    if bad.size:
        i = bad[0]
        raise ProblemDefinitionError(
            f"{problem_name}: {what} have lower > upper at index {i} ({lo[i]} > {hi[i]})"
        )
    lo.setflags(write=False)
    hi.setflags(write=False)
    return lo, hi


@dataclass
class FailureLog:
    """Exceptions raised while evaluating one batch: a mask of the rows that raised and the first message."""

    failed: np.ndarray
    first_error: str | None = None

    def record(self, rows: np.ndarray, exc: BaseException) -> None:
        self.failed |= rows
        if self.first_error is None:
            self.first_error = f"{type(exc).__name__}: {exc}"


class Problem:
    """A black-box bilevel problem.

    Parameters
    ----------
    upper : callable
        ``F(x, y) -> float`` (``vectorized=False``) or ``F(X, Y) -> array (n,)`` (``vectorized=True``); with
        ``n_objectives=k > 1``, ``F(x, y) -> sequence of k floats`` or ``F(X, Y) -> array (n, k)``.
    lower : callable
        ``f(x, y) -> float`` or ``f(X, Y) -> array (n,)``, the follower's objective (not with ``followers``).
    ul_bounds, ll_bounds : (array_like, array_like), sequence of (low, high) pairs, or scipy.optimize.Bounds
        Box bounds of ``x`` and ``y``, as ``(lower, upper)``, as one ``(low, high)`` pair per variable, or as
        ``scipy.optimize.Bounds``; their length sets ``ul_dim`` and ``ll_dim``. Two variables give a 2 x 2 table
        that is read the way that pins no variable, and refused when both ways would be valid (the message names
        both readings; pass ``scipy.optimize.Bounds(lower, upper)`` then).
    upper_constraints, lower_constraints : callable, optional
        ``G(x, y) -> array (m,)`` or ``G(X, Y) -> array (n, m)``; feasible where every entry is ``<= 0``.
    followers : list of Follower, optional
        Several independent followers instead of ``lower``, ``ll_bounds``, ``lower_constraints`` and
        ``ll_integrality``: follower i chooses its own block ``y_i`` for ``f_i(x, y_i)`` subject to
        ``g_i(x, y_i) <= 0`` (see :class:`~evobilevel.Follower`); ``y`` is the blocks concatenated in order, and
        ``lower`` evaluates ``sum_i f_i`` with every follower's constraints side by side.
    ul_integrality, ll_integrality : bool or array_like of bool, optional
        scipy's ``integrality``: ``True`` for each variable of ``x`` (``y``) restricted to whole numbers, one
        boolean for all. Such a variable's bounds are narrowed to the whole numbers they hold, and every answer is
        exactly integral there.
    n_ul_constraints, n_ll_constraints : int, optional
        Number of constraint values each constraint function returns. If omitted it is learnt from the first
        evaluation (asking for it before then evaluates the constraint once at the centre of the bounds).
    vectorized : bool
        Whether the functions take whole batches.
    name : str
        Used in messages and results.
    optimum : Optimum, optional
        A known optimal solution, enabling ``target`` and error reporting in :func:`evobilevel.solve`.
    n_objectives : int
        Objectives of the leader (``k``). With ``k > 1`` the leader has a Pareto front, which
        :func:`evobilevel.solve` returns as ``result.front`` (a multi-objective algorithm is needed: pymoo's NSGA-II
        by default).
    timeout : float, optional
        Wall-clock seconds allowed for each call of a user function: per point with ``vectorized=False``, per
        batch otherwise, and separately for an objective and its constraint function. A call that takes longer
        is abandoned and counts as a failed evaluation (``"TimeoutError: upper took more than 2 s"``); the run
        goes on. ``None`` (the default) never interrupts a call.

    Attributes
    ----------
    ul_bounds, ll_bounds : (ndarray, ndarray)
        Read-only, integer variables' ranges narrowed to whole numbers.
    ul_integrality, ll_integrality : ndarray of bool, shape (ul_dim,), (ll_dim,)
        All False where no variable is integer.
    followers : tuple of Follower
        Empty for a problem with one follower (``lower=``).
    follower_set : FollowerSet or None
        The followers' own problems and their blocks of ``y`` (see :mod:`evobilevel.followers`).

    Notes
    -----
    Problems are sent to worker processes when ``n_jobs > 1``, so the functions must be picklable by cloudpickle
    (module-level functions, lambdas and closures are; open files, locks and live connections are not).

    The timeout is a ``SIGALRM`` interval timer (``signal.setitimer``), which only the main thread of a process
    can use, on POSIX systems. That covers ``n_jobs=1`` and joblib's default process workers (loky runs tasks in
    the main thread of each worker). Elsewhere (Windows, a thread pool, dask's threaded workers, or while another
    real-time interval timer is armed) calls run without a timeout and a ``RuntimeWarning`` says so. The alarm
    interrupts Python code, ``time.sleep`` and most blocking I/O, but not a C extension that never returns to the
    interpreter: a black box that can hang inside native code is safer run as a subprocess with its own timeout
    (``subprocess.run(..., timeout=...)``) from within the objective. The timeout arrives as a ``TimeoutError``
    raised inside the user's function, so a function that catches every exception and carries on defeats it.
    """

    def __init__(
        self,
        upper: Callable,
        lower: Callable | None = None,
        ul_bounds=None,
        ll_bounds=None,
        upper_constraints: Callable | None = None,
        lower_constraints: Callable | None = None,
        *,
        followers=None,
        ul_integrality=None,
        ll_integrality=None,
        n_ul_constraints: int | None = None,
        n_ll_constraints: int | None = None,
        vectorized: bool = False,
        name: str = "problem",
        optimum: Optimum | None = None,
        timeout: float | None = None,
        n_objectives: int = 1,
    ):
        _check_functions(name, upper, lower, upper_constraints, lower_constraints, followers is not None)
        if followers is not None:
            _check_no_single_follower(name, lower=lower, ll_bounds=ll_bounds, lower_constraints=lower_constraints,
                                      ll_integrality=ll_integrality, n_ll_constraints=n_ll_constraints)
        self.vectorized = bool(vectorized)
        self.timeout = _check_timeout(timeout, name)
        self._init_space(name, ul_bounds, ll_bounds, ul_integrality, ll_integrality, followers)
        self._functions = {"upper": (upper, upper_constraints), "lower": (lower, lower_constraints)}
        self._n_constraints = {
            "upper": 0 if upper_constraints is None else _check_count(n_ul_constraints, name, "n_ul_constraints"),
            "lower": 0 if lower_constraints is None else _check_count(n_ll_constraints, name, "n_ll_constraints"),
        }
        self._optimum = optimum
        self.n_objectives = _check_objectives(n_objectives, name)

    _timeout_warned: bool = False  # set by the first warning that the timeout cannot be applied
    follower_set = None  # the FollowerSet of a problem with several followers

    # ------------------------------------------------------------------ space
    def _init_space(self, name: str, ul_bounds, ll_bounds, ul_integrality=None, ll_integrality=None,
                    followers=None) -> None:
        self.name = str(name)
        self.ul_bounds, self.ul_integrality = _integer_space(ul_bounds, ul_integrality, "ul", self.name)
        self.ul_dim = self.ul_bounds[0].shape[0]
        if followers is None:
            self.ll_bounds, self.ll_integrality = _integer_space(ll_bounds, ll_integrality, "ll", self.name)
        else:
            self.follower_set = _follower_set(self, followers)
            self.ll_bounds, self.ll_integrality = self.follower_set.space()
        self.ll_dim = self.ll_bounds[0].shape[0]

    @property
    def followers(self) -> tuple:
        """The :class:`~evobilevel.Follower` objects of a problem with several followers; empty for one follower
        given as ``lower=``."""
        return () if self.follower_set is None else self.follower_set.followers

    def functions(self) -> dict:
        """The user's functions by name: ``upper``, ``lower`` and, where given, ``upper_constraints`` and
        ``lower_constraints``; with several followers, each follower's functions under its name."""
        out = {}
        for level, (objective, constraints) in self._functions.items():
            for label, function in ((level, objective), (f"{level}_constraints", constraints)):
                if function is not None:
                    out[label] = function
        if self.follower_set is not None:
            out.update(self.follower_set.functions())
        return out

    @property
    def n_ul_constraints(self) -> int:
        return self._constraint_count("upper")

    @property
    def n_ll_constraints(self) -> int:
        return self._constraint_count("lower")

    def known_constraint_count(self, level: str) -> int | None:
        """The number of ``level``'s constraints ("upper" or "lower") where it is known, given or learnt from an
        evaluation; None otherwise (unlike :attr:`n_ll_constraints`, which evaluates a point to learn it)."""
        if level == "lower" and self.follower_set is not None:
            return None
        return self._n_constraints[level]

    def _constraint_count(self, level: str) -> int:
        if level == "lower" and self.follower_set is not None:
            return self.follower_set.n_constraints()
        if self._n_constraints[level] is None:
            # Learn the count from one evaluation at the centre of the box.
            x = 0.5 * (self.ul_bounds[0] + self.ul_bounds[1])
            y = 0.5 * (self.ll_bounds[0] + self.ll_bounds[1])
            log = FailureLog(np.zeros(1, bool))
            self.evaluate_batch(level, x[None, :], y[None, :], log)
            if self._n_constraints[level] is None:
                label = "n_ul_constraints" if level == "upper" else "n_ll_constraints"
                raise ProblemDefinitionError(
                    f"{self.name}: {level}_constraints failed at the centre of the bounds ({log.first_error}), so "
                    f"the number of constraints is unknown; pass {label}= to Problem"
                )
        return self._n_constraints[level]

    @property
    def optimum(self) -> Optimum | None:
        """The known optimum at this instance's size, or ``None``."""
        return self._optimum

    def ll_response(self, X) -> np.ndarray | None:
        """The exact lower-level optimum ``Y*`` (n, ll_dim) for each row of ``X``, or ``None`` if unknown."""
        return None

    @property
    def settings(self) -> dict:
        """What identifies this instance besides its name (sizes, variant); stored with results."""
        return {"ul_dim": self.ul_dim, "ll_dim": self.ll_dim}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, ul_dim={self.ul_dim}, ll_dim={self.ll_dim}, "
            f"n_ul_constraints={self._n_constraints['upper']}, n_ll_constraints={self._n_constraints['lower']}"
            + (f", n_objectives={self.n_objectives})" if self.n_objectives > 1 else ")")
        )

    # ------------------------------------------------------------ evaluation
    def upper(self, X, Y):
        """Upper-level objective and constraints.

        Parameters
        ----------
        X : array_like, shape (n, ul_dim) or (ul_dim,)
        Y : array_like, shape (n, ll_dim) or (ll_dim,)

        Returns
        -------
        F : ndarray, shape (n,) (a float for a single 1-D point)
            Shape (n, n_objectives) (shape (n_objectives,) for a single point) for a leader with several objectives.
        G : ndarray, shape (n, n_ul_constraints) (shape (n_ul_constraints,) for a single point)
        """
        return self._public("upper", X, Y)

    def lower(self, X, Y):
        """Lower-level objective and constraints; shapes as in :meth:`upper` with ``n_ll_constraints``."""
        return self._public("lower", X, Y)

    def _public(self, level: str, X, Y):
        single = np.ndim(X) == 1 and np.ndim(Y) == 1
        X, Y = self.check_points(X, Y)
        values, constraints = self.evaluate_batch(level, X, Y)
        if single:
            return (float(values[0]) if values.ndim == 1 else values[0]), constraints[0]
        return values, constraints

    def check_points(self, X, Y) -> tuple[np.ndarray, np.ndarray]:
        """Return ``X`` and ``Y`` as float arrays of shapes (n, ul_dim) and (n, ll_dim), or raise ``ValueError``."""
        X = np.asarray(X, dtype=float)
        Y = np.asarray(Y, dtype=float)
        if X.ndim == 1:
            X = X[None, :]
        if Y.ndim == 1:
            Y = Y[None, :]
        if X.ndim != 2 or X.shape[1] != self.ul_dim:
            raise ValueError(f"{self.name}: X must have shape (n, {self.ul_dim}), got {X.shape}")
        if Y.ndim != 2 or Y.shape[1] != self.ll_dim:
            raise ValueError(f"{self.name}: Y must have shape (n, {self.ll_dim}), got {Y.shape}")
        if X.shape[0] != Y.shape[0]:
            raise ValueError(
                f"{self.name}: X and Y must have the same number of rows, got {X.shape[0]} and {Y.shape[0]}"
            )
        return X, Y

    def evaluate_batch(self, level: str, X: np.ndarray, Y: np.ndarray, log: FailureLog | None = None):
        """Evaluate one level on validated batches ``X`` (n, ul_dim), ``Y`` (n, ll_dim) (see :meth:`check_points`).

        Parameters
        ----------
        level : {"upper", "lower"}
        X, Y : ndarray
        log : FailureLog, optional
            Without it an exception from a function propagates; with it, the failed rows are recorded in ``log``
            and get NaN values. :class:`ProblemDefinitionError` always propagates.

        Returns
        -------
        values : ndarray, shape (n,), or (n, n_objectives) for the upper level of a leader with several objectives
        constraints : ndarray, shape (n, m)
            As the functions gave them: judging non-finite values is the caller's job (the counting
            :class:`~evobilevel.evaluator.Evaluator` does it).
        """
        if level == "lower" and self.follower_set is not None:
            return self.follower_set.evaluate(X, Y, log)
        objective, constraint_fn = self._functions[level]
        n = X.shape[0]
        if not self.vectorized:
            return self._evaluate_rows(level, X, Y, log)
        try:
            values = self._call(level, objective, X, Y)
            constraints = None if constraint_fn is None else self._call(f"{level}_constraints", constraint_fn, X, Y)
        except ProblemDefinitionError:
            raise
        except Exception as exc:  # noqa: BLE001 - a black box may raise anything
            if log is None:
                raise
            # One call evaluates the whole batch, so every row of it failed.
            log.record(np.ones(n, bool), exc)
            nan_constraints = np.full((n, self._n_constraints[level] or 0), np.nan)
            return np.full(_values_shape(self, level, n), np.nan), nan_constraints
        return self._check_values(level, values, n), self._check_constraints(level, constraints, n)

    def _evaluate_rows(self, level: str, X: np.ndarray, Y: np.ndarray, log: FailureLog | None):
        """Per-point functions: one call per row, so one failing point does not fail its neighbours."""
        objective, constraint_fn = self._functions[level]
        n = X.shape[0]
        values = np.full(_values_shape(self, level, n), np.nan)
        rows: list[np.ndarray | None] = [None] * n
        for i in range(n):
            try:
                values[i] = _point_value(self, level, self._call(level, objective, X[i], Y[i]))
                if constraint_fn is not None:
                    g = self._call(f"{level}_constraints", constraint_fn, X[i], Y[i])
                    rows[i] = np.atleast_1d(np.asarray(g, dtype=float))
            except ProblemDefinitionError:
                raise
            except Exception as exc:  # noqa: BLE001
                if log is None:
                    raise
                values[i] = np.nan
                rows[i] = None
                log.record(np.arange(n) == i, exc)
        if constraint_fn is None:
            return values, np.empty((n, 0))
        widths = {r.shape for r in rows if r is not None}
        if len(widths) > 1:
            raise ProblemDefinitionError(
                f"{self.name}: {level}_constraints returned arrays of different shapes {sorted(widths)}"
            )
        m = self._n_constraints[level]
        if widths:
            (shape,) = widths
            if shape[0] != (m if m is not None else shape[0]) or len(shape) != 1:
                raise ProblemDefinitionError(
                    f"{self.name}: {level}_constraints returned shape {shape}, expected ({m},)"
                )
            m = shape[0]
            self._n_constraints[level] = m
        if m is None:  # every point failed before the count was known
            m = 0
        constraints = np.full((n, m), np.nan)
        for i, r in enumerate(rows):
            if r is not None:
                constraints[i] = r
        return values, constraints

    def _call(self, label: str, function: Callable, X, Y):
        """``function(X, Y)`` under this problem's timeout; a call over time raises :class:`TimeoutError`.

        ``label`` names the function in the message (``"upper"``, ``"lower_constraints"``, ...).
        """
        if self.timeout is None:
            return function(X, Y)
        reason = _alarm_unavailable()
        if reason is not None:
            if not self._timeout_warned:
                self._timeout_warned = True
                warnings.warn(
                    f"{self.name}: timeout={self.timeout:g} s is not applied because {reason}; calls of the "
                    "problem's functions run to completion",
                    RuntimeWarning,
                    stacklevel=4,
                )
            return function(X, Y)
        return _call_with_alarm(function, (X, Y), self.timeout, label)

    def _check_values(self, level: str, values, n: int) -> np.ndarray:
        if level == "upper" and self.n_objectives > 1:
            return _objective_rows(values, n, self.n_objectives, self.name)
        return _value_rows(values, n, self.name, level)

    def _check_constraints(self, level: str, constraints, n: int) -> np.ndarray:
        constraints = _constraint_rows(constraints, n, self.name, f"{level}_constraints", self._n_constraints[level])
        self._n_constraints[level] = constraints.shape[1]
        return constraints


def _value_rows(values, n: int, name: str, label: str) -> np.ndarray:
    """One objective's values for n points as an array (n,), or a definition error naming the shape."""
    try:
        values = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ProblemDefinitionError(
            f"{name}: {label} returned {type(values).__name__}, expected numbers of shape ({n},)"
        ) from None
    if values.shape == (n, 1):
        values = values[:, 0]
    if values.shape != (n,):
        raise ProblemDefinitionError(f"{name}: {label} returned shape {values.shape}, expected ({n},)")
    return values


def _constraint_rows(constraints, n: int, name: str, label: str, m: int | None) -> np.ndarray:
    """Constraint values for n points as an array (n, m) (m learnt where None), or a definition error."""
    if constraints is None:
        return np.empty((n, 0))
    try:
        constraints = np.asarray(constraints, dtype=float)
    except (TypeError, ValueError):
        raise ProblemDefinitionError(f"{name}: {label} returned {type(constraints).__name__}") from None
    if constraints.ndim == 1 and constraints.shape[0] == n:
        constraints = constraints[:, None]
    if constraints.ndim != 2 or constraints.shape[0] != n or (m is not None and constraints.shape[1] != m):
        expected = f"({n}, {m})" if m is not None else f"({n}, m)"
        raise ProblemDefinitionError(f"{name}: {label} returned shape {constraints.shape}, expected {expected}")
    return constraints


def _check_functions(name, upper, lower, upper_constraints, lower_constraints, with_followers: bool) -> None:
    """Raise ProblemDefinitionError unless the functions that are given are callable (``lower`` is required
    without followers)."""
    required = (("upper", upper),) if with_followers else (("upper", upper), ("lower", lower))
    for label, fn in required:
        if not callable(fn):
            raise ProblemDefinitionError(f"{name}: {label} must be callable, got {type(fn).__name__}")
    for label, fn in (("upper_constraints", upper_constraints), ("lower_constraints", lower_constraints)):
        if fn is not None and not callable(fn):
            raise ProblemDefinitionError(f"{name}: {label} must be callable or None, got {type(fn).__name__}")


def _check_no_single_follower(name, **given) -> None:
    """With ``followers``, the lower level is theirs: refuse the arguments of a single follower."""
    extra = [label for label, value in given.items() if value is not None]
    if extra:
        raise ProblemDefinitionError(
            f"{name}: with followers=[...], give each follower's objective, bounds, constraints and integrality in "
            f"its evobilevel.Follower, not {', '.join(f'{label}=' for label in extra)}")


def _integer_space(bounds, integrality, level: str, name: str) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Checked bounds of one level, integer variables' ranges narrowed to whole numbers, and its integrality mask."""
    if bounds is None:
        also = " (or followers=[...])" if level == "ll" else ""
        raise ProblemDefinitionError(f"{name}: {level}_bounds are required{also}")
    bounds = check_bounds(bounds, None, f"{level}_bounds", name)
    try:
        mask = check_integrality(integrality, bounds, f"{level}_integrality")
    except IntegralityError as exc:
        raise ProblemDefinitionError(f"{name}: {exc}") from None
    return integer_bounds(bounds, mask), mask


def _follower_set(problem, followers):
    from .followers import FollowerSet  # it builds Problems of its own

    return FollowerSet(problem, followers)


def _values_shape(problem: Problem, level: str, n: int) -> tuple[int, ...]:
    """Shape of a batch's objective values: (n,), or (n, k) for the upper level of a k-objective leader."""
    return (n, problem.n_objectives) if level == "upper" and problem.n_objectives > 1 else (n,)


def _point_value(problem: Problem, level: str, value):
    """One point's objective value(s) from a per-point function, checked: a number, or k of them."""
    k = problem.n_objectives
    if level != "upper" or k == 1:
        return _as_scalar(value, problem.name, level)
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ProblemDefinitionError(f"{problem.name}: upper returned {type(value).__name__} for one point, "
                                     f"expected {k} numbers (n_objectives={k})") from None
    if arr.shape != (k,):
        raise ProblemDefinitionError(
            f"{problem.name}: upper returned shape {arr.shape} for one point, expected ({k},) (n_objectives={k})")
    return arr


def _objective_rows(values, n: int, k: int, name: str) -> np.ndarray:
    """A vectorised k-objective leader's values, checked: shape (n, k)."""
    try:
        values = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ProblemDefinitionError(
            f"{name}: upper returned {type(values).__name__}, expected numbers of shape ({n}, {k})") from None
    if values.shape != (n, k):
        raise ProblemDefinitionError(
            f"{name}: upper returned shape {values.shape}, expected ({n}, {k}) (n_objectives={k})")
    return values


def _check_objectives(n_objectives, name: str) -> int:
    if isinstance(n_objectives, bool) or not isinstance(n_objectives, (int, np.integer)) or n_objectives < 1:
        raise ProblemDefinitionError(f"{name}: n_objectives must be a positive integer, got {n_objectives!r}")
    return int(n_objectives)


def _check_timeout(timeout, name: str) -> float | None:
    if timeout is None:
        return None
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        raise ProblemDefinitionError(f"{name}: timeout must be a number of seconds or None, got {timeout!r}") from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise ProblemDefinitionError(f"{name}: timeout must be a positive, finite number of seconds, got {timeout!r}")
    return seconds


def _alarm_unavailable() -> str | None:
    """Why a SIGALRM timer cannot guard a call here, or ``None`` when it can."""
    if not (hasattr(signal, "setitimer") and hasattr(signal, "SIGALRM")):
        return "this platform has no SIGALRM interval timer"
    if threading.current_thread() is not threading.main_thread():
        return "the functions run outside the main thread (only it can receive SIGALRM)"
    if signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        # Re-arming it would cancel someone else's alarm (e.g. a test runner's own timeout).
        return "another real-time interval timer (SIGALRM) is already armed"
    return None


def _call_with_alarm(function: Callable, args: tuple, seconds: float, label: str):
    """``function(*args)``, interrupted by :class:`TimeoutError` after ``seconds`` of wall-clock time.

    Only for the main thread (see :func:`_alarm_unavailable`). The previous SIGALRM handler is restored after
    the call, however it ends.
    """
    armed = [True]

    def on_alarm(signum, frame):
        # The flag drops as soon as the call is over: an alarm that fires while the timer is being disarmed
        # must not escape into the caller's code.
        if armed[0]:
            armed[0] = False
            raise TimeoutError(f"{label} took more than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return function(*args)
        finally:
            armed[0] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        # None: the previous handler was not installed from Python; the default is the best stand-in.
        signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)


def _check_count(count, name: str, label: str) -> int | None:
    if count is None:
        return None
    if int(count) != count or count < 0:
        raise ProblemDefinitionError(f"{name}: {label} must be a non-negative integer, got {count!r}")
    return int(count)


def _as_scalar(value, name: str, level: str) -> float:
    arr = np.asarray(value, dtype=float)
    if arr.size != 1:
        raise ProblemDefinitionError(f"{name}: {level} returned shape {arr.shape} for one point, expected a number")
    return float(arr.reshape(()))
