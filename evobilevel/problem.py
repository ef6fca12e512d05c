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
        ``f(x, y) -> float`` or ``f(X, Y) -> array (n,)``, the follower's objective.
    ul_bounds, ll_bounds : (array_like, array_like), sequence of (low, high) pairs, or scipy.optimize.Bounds
        Box bounds of ``x`` and ``y``, as ``(lower, upper)``, as one ``(low, high)`` pair per variable, or as
        ``scipy.optimize.Bounds``; their length sets ``ul_dim`` and ``ll_dim``. Two variables give a 2 x 2 table
        that is read the way that pins no variable, and refused when both ways would be valid (the message names
        both readings; pass ``scipy.optimize.Bounds(lower, upper)`` then).
    upper_constraints, lower_constraints : callable, optional
        ``G(x, y) -> array (m,)`` or ``G(X, Y) -> array (n, m)``; feasible where every entry is ``<= 0``.
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
        lower: Callable,
        ul_bounds,
        ll_bounds,
        upper_constraints: Callable | None = None,
        lower_constraints: Callable | None = None,
        *,
        n_ul_constraints: int | None = None,
        n_ll_constraints: int | None = None,
        vectorized: bool = False,
        name: str = "problem",
        optimum: Optimum | None = None,
        timeout: float | None = None,
        n_objectives: int = 1,
    ):
        for label, fn in (("upper", upper), ("lower", lower)):
            if not callable(fn):
                raise ProblemDefinitionError(f"{name}: {label} must be callable, got {type(fn).__name__}")
        for label, fn in (("upper_constraints", upper_constraints), ("lower_constraints", lower_constraints)):
            if fn is not None and not callable(fn):
                raise ProblemDefinitionError(f"{name}: {label} must be callable or None, got {type(fn).__name__}")
        self._init_space(name, ul_bounds, ll_bounds)
        self._functions = {"upper": (upper, upper_constraints), "lower": (lower, lower_constraints)}
        self.vectorized = bool(vectorized)
        self._n_constraints = {
            "upper": 0 if upper_constraints is None else _check_count(n_ul_constraints, name, "n_ul_constraints"),
            "lower": 0 if lower_constraints is None else _check_count(n_ll_constraints, name, "n_ll_constraints"),
        }
        self._optimum = optimum
        self.timeout = _check_timeout(timeout, name)
        self.n_objectives = _check_objectives(n_objectives, name)

    _timeout_warned: bool = False  # set by the first warning that the timeout cannot be applied

    # ------------------------------------------------------------------ space
    def _init_space(self, name: str, ul_bounds, ll_bounds) -> None:
        self.name = str(name)
        self.ul_bounds = check_bounds(ul_bounds, None, "ul_bounds", self.name)
        self.ll_bounds = check_bounds(ll_bounds, None, "ll_bounds", self.name)
        self.ul_dim = self.ul_bounds[0].shape[0]
        self.ll_dim = self.ll_bounds[0].shape[0]

    def functions(self) -> dict:
        """The user's functions by name: ``upper``, ``lower`` and, where given, ``upper_constraints`` and
        ``lower_constraints``."""
        out = {}
        for level, (objective, constraints) in self._functions.items():
            out[level] = objective
            if constraints is not None:
                out[f"{level}_constraints"] = constraints
        return out

    @property
    def n_ul_constraints(self) -> int:
        return self._constraint_count("upper")

    @property
    def n_ll_constraints(self) -> int:
        return self._constraint_count("lower")

    def _constraint_count(self, level: str) -> int:
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
        label = "upper" if level == "upper" else "lower"
        if level == "upper" and self.n_objectives > 1:
            return _objective_rows(values, n, self.n_objectives, self.name)
        try:
            values = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise ProblemDefinitionError(
                f"{self.name}: {label} returned {type(values).__name__}, expected numbers of shape ({n},)"
            ) from None
        if values.shape == (n, 1):
            values = values[:, 0]
        if values.shape != (n,):
            raise ProblemDefinitionError(f"{self.name}: {label} returned shape {values.shape}, expected ({n},)")
        return values

    def _check_constraints(self, level: str, constraints, n: int) -> np.ndarray:
        if constraints is None:
            return np.empty((n, 0))
        label = f"{level}_constraints"
        try:
            constraints = np.asarray(constraints, dtype=float)
        except (TypeError, ValueError):
            raise ProblemDefinitionError(f"{self.name}: {label} returned {type(constraints).__name__}") from None
        if constraints.ndim == 1 and constraints.shape[0] == n:
            constraints = constraints[:, None]
        m = self._n_constraints[level]
        if constraints.ndim != 2 or constraints.shape[0] != n or (m is not None and constraints.shape[1] != m):
            expected = f"({n}, {m})" if m is not None else f"({n}, m)"
            raise ProblemDefinitionError(
                f"{self.name}: {label} returned shape {constraints.shape}, expected {expected}"
            )
        self._n_constraints[level] = constraints.shape[1]
        return constraints


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
