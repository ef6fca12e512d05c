"""Evaluation budgets: one mechanism for the whole run.

A :class:`Budget` caps the evaluations of each level over a run, and its wall time; a :class:`RowBudget` caps the
lower-level evaluations of each row of one batch of lower-level problems (a solver's share of the run's budget).
Both raise :class:`BudgetExhausted` when asked to pay for more than they have left: the runner ends the run with its
best result so far, a local search ends the search of that one row.
"""

from __future__ import annotations

import time

import numpy as np

from .evaluator import Evaluator
from .integrality import integer_mask, round_integral

__all__ = ["BudgetExhausted", "Budget", "ObjectiveBudget", "RowBudget", "check_budgets", "describe_budgets"]


class BudgetExhausted(Exception):
    """An evaluation was asked for that the budget cannot pay for."""


class Budget:
    """Caps on a run's evaluations per level, checked against the counts of its evaluator, and on its wall time.

    Parameters
    ----------
    evaluator : Evaluator
        The run's counting evaluator (it holds what has been spent, workers' evaluations merged in).
    max_ul_evals, max_ll_evals : int, optional
        Caps; ``None`` for none.
    max_time : float, optional
        Seconds of wall time, from ``started``. It is checked before each evaluation or batch of lower-level
        solves, so a batch that has started finishes: a run may overrun it by one batch.
    started : float, optional
        ``time.perf_counter()`` at the start of the run (earlier for a resumed run: its time so far counts).
    """

    def __init__(self, evaluator: Evaluator, max_ul_evals: int | None = None, max_ll_evals: int | None = None,
                 max_time: float | None = None, started: float | None = None):
        self.evaluator = evaluator
        self.max_evals = {"upper": max_ul_evals, "lower": max_ll_evals}
        self.max_time = max_time
        self.started = time.perf_counter() if started is None else started

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.started

    def check_time(self) -> None:
        """Raise :class:`BudgetExhausted` once the wall-time budget is spent."""
        if self.max_time is not None and self.elapsed() >= self.max_time:
            raise BudgetExhausted(f"time budget of {self.max_time:g} s exhausted")

    def remaining(self, level: str) -> float:
        """Evaluations left at ``level`` (``"upper"`` or ``"lower"``); ``inf`` without a cap."""
        cap = self.max_evals[level]
        spent = self.evaluator.ul.n_evals if level == "upper" else self.evaluator.ll.n_evals
        return np.inf if cap is None else cap - spent

    def check(self, level: str, n: int) -> None:
        """Raise :class:`BudgetExhausted` unless ``n`` more evaluations at ``level`` fit in the budget (and time is
        left)."""
        self.check_time()
        if n > self.remaining(level):
            label = "upper" if level == "upper" else "lower"
            raise BudgetExhausted(f"{label}-level budget of {self.max_evals[level]} evaluations exhausted")

    def row_caps(self, n_rows: int, per_row: int | None = None) -> np.ndarray | None:
        """Lower-level caps for a batch of ``n_rows`` problems: the caller's ``per_row`` cap and an even share of
        what the lower-level budget has left, whichever is smaller; ``None`` when neither applies.

        Raises
        ------
        BudgetExhausted
            When the budget left cannot give every row at least one evaluation.
        """
        self.check_time()
        caps = None if per_row is None else np.full(n_rows, int(per_row))
        if self.max_evals["lower"] is not None:
            share = int(self.remaining("lower") // n_rows) if n_rows else 0
            if share < 1:
                raise BudgetExhausted(f"lower-level budget of {self.max_evals['lower']} evaluations exhausted")
            caps = np.full(n_rows, share) if caps is None else np.minimum(caps, share)
        return caps


class RowBudget:
    """Evaluations of a batch of lower-level problems, counted per row against per-row caps.

    A lower-level solver asks :meth:`grant` how many points each row may evaluate, then passes exactly those to
    :meth:`evaluate`, which makes one evaluator call for the whole batch; a search that goes point by point calls
    :meth:`evaluate_row`. Asking either to evaluate beyond a row's cap raises
    :class:`BudgetExhausted`.

    Parameters
    ----------
    ev : Evaluator
    X : ndarray, shape (n, ul_dim)
        The batch's upper-level points, one per row.
    caps : ndarray, shape (n,)
        Per-row caps (``inf`` for none).
    """

    def __init__(self, ev: Evaluator, X: np.ndarray, caps: np.ndarray):
        self.ev = ev
        self.X = X
        self.cap = caps
        self.used = np.zeros(X.shape[0], np.int64)
        self._n_constraints: int | None = None

    @property
    def n_constraints(self) -> int:
        """Constraint values per point.

        Taken from the first evaluation when possible: asking the problem before its count is known would make
        it evaluate an uncounted point to learn it.
        """
        if self._n_constraints is None:
            self._n_constraints = self.ev.problem.n_ll_constraints
        return self._n_constraints

    @property
    def known_n_constraints(self) -> int | None:
        """The constraint count where it is known (from this batch's evaluations or the problem's), else None:
        unlike :attr:`n_constraints`, never evaluates a point to learn it."""
        if self._n_constraints is not None:
            return self._n_constraints
        return self.ev.problem.known_constraint_count("lower")

    @property
    def ll_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The lower level's bounds ``(lo, hi)``, each (ll_dim,)."""
        return self.ev.problem.ll_bounds

    def left(self, rows) -> np.ndarray:
        """Evaluations the rows ``rows`` may still spend (float, ``inf`` without a cap)."""
        return self.cap[rows] - self.used[rows]

    def grant(self, rows: np.ndarray, want) -> np.ndarray:
        """How many of the ``want`` points (per row of ``rows``) may be evaluated now, as ints."""
        want = np.broadcast_to(np.asarray(want), rows.shape)
        return np.minimum(want, self.left(rows)).astype(np.int64)

    def evaluate_row(self, row: int, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Evaluate the points ``Y`` (k, ll_dim), all of row ``row``, in one call; see :meth:`evaluate`."""
        k = Y.shape[0]
        if self.used[row] + k > self.cap[row]:
            raise BudgetExhausted(f"row {row} has {self.cap[row] - self.used[row]:g} evaluations left, {k} asked")
        result = self.ev.lower(np.repeat(self.X[row:row + 1], k, axis=0), Y)
        self.used[row] += k
        return result.values, self._constraint_columns(result), result.cv

    def evaluate(self, rows: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Evaluate the points ``Y`` (k, ll_dim), point j belonging to row ``rows[j]``, in one call.

        Returns
        -------
        f : ndarray, shape (k,)
        g : ndarray, shape (k, n_ll_constraints)
        cv : ndarray, shape (k,)
            ``inf`` for failed points, also when the problem has no constraints.
        """
        if rows.shape[0] == 0:
            return np.empty(0), np.empty((0, self._n_constraints or 0)), np.empty(0)
        result = self._lower(rows, Y)
        return result.values, self._constraint_columns(result), result.cv

    def _lower(self, rows: np.ndarray, Y: np.ndarray):
        """The evaluator's :class:`~evobilevel.evaluator.Evaluation` of the points Y (k, ll_dim) of ``rows`` (k,),
        counted against their caps."""
        counts = np.bincount(rows, minlength=self.used.shape[0])
        over = np.flatnonzero(self.used + counts > self.cap)
        if over.size:
            raise BudgetExhausted(f"rows {over.tolist()} asked for evaluations beyond their caps")
        result = self.ev.lower(self.X[rows], Y)
        self.used += counts
        return result

    def _constraint_columns(self, result) -> np.ndarray:
        """The constraint values (k, n_constraints) of an evaluation; learns the count from the first one."""
        g = result.constraints
        if self._n_constraints is None:
            if not result.failed.all():
                self._n_constraints = g.shape[1]
        elif g.shape[1] != self._n_constraints:
            # A batch that failed as a whole before the problem knew its constraint count comes back with no
            # constraint columns; its points are infeasible in every column.
            g = np.full((g.shape[0], self._n_constraints), np.inf)
        return g

    def fallback_points(self, Y0: np.ndarray | None) -> np.ndarray:
        """(n, ll_dim) points to report for rows without evaluation: the first warm start, else the centre
        (rounded in integer variables)."""
        lo, hi = self.ev.problem.ll_bounds
        Y = np.tile(round_integral(0.5 * (lo + hi), integer_mask(self.ev.problem)), (self.X.shape[0], 1))
        if Y0 is not None:
            valid = ~np.isnan(Y0[:, :, 0])
            has = valid.any(axis=1)
            first = np.argmax(valid, axis=1)
            Y[has] = Y0[has, first[has]]
        return Y


class ObjectiveBudget(RowBudget):
    """A :class:`RowBudget` whose evaluations show a search the follower's objective alone: no constraint values,
    and a violation of 0 wherever f could be evaluated (``inf`` where it failed), so that the search minimises f over
    the box. It keeps, per row, the real violation of the lowest f evaluated so far (the first of equals, the point
    such a search reports as its best), for :meth:`violation_at_best`.
    """

    def __init__(self, ev: Evaluator, X: np.ndarray, caps: np.ndarray):
        super().__init__(ev, X, caps)
        self._n_constraints = 0
        self.lowest_f = np.full(X.shape[0], np.inf)
        self.cv_at_lowest = np.full(X.shape[0], np.inf)

    @property
    def known_n_constraints(self) -> int:
        return 0

    def evaluate_row(self, row: int, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.evaluate(np.full(Y.shape[0], row), Y)

    def evaluate(self, rows: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = rows.shape[0]
        if k == 0:
            return np.empty(0), np.empty((0, 0)), np.empty(0)
        result = self._lower(rows, Y)
        f, cv = result.values, result.cv
        for j in range(k):  # in order, so that the first of equal values is kept
            if f[j] < self.lowest_f[rows[j]]:
                self.lowest_f[rows[j]], self.cv_at_lowest[rows[j]] = f[j], cv[j]
        return f, np.zeros((k, 0)), np.where(result.failed, np.inf, 0.0)

    def violation_at_best(self) -> np.ndarray:
        """(n,) the real violation at each row's lowest f evaluated (``inf`` where nothing was)."""
        return self.cv_at_lowest.copy()


def check_budgets(max_ul_evals, max_ll_evals, max_time=None) -> None:
    """Raise ValueError unless each evaluation budget is None or a positive integer, and ``max_time`` None or a
    positive number of seconds."""
    for label, budget in (("max_ul_evals", max_ul_evals), ("max_ll_evals", max_ll_evals)):
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float, np.integer))
                                   or int(budget) != budget or budget < 1):
            raise ValueError(f"{label} must be a positive integer, got {budget!r}")
    if max_time is not None and (isinstance(max_time, bool) or not isinstance(max_time, (int, float))
                                 or not max_time > 0 or max_time == float("inf")):
        raise ValueError(f"max_time must be a positive number of seconds, got {max_time!r}")


def describe_budgets(max_ul_evals=None, max_ll_evals=None, max_time=None, target=None) -> str:
    """One line naming the budgets and the target a run starts with."""
    parts = [f"{label} {value:,}" for label, value in (("UL", max_ul_evals), ("LL", max_ll_evals))
             if value is not None]
    if max_time is not None:
        parts.append(f"time {max_time:g} s")
    text = "budgets: " + ", ".join(parts) if parts else "no budget: the run ends by its own rule"
    return text + (f"; target {target:g}" if target is not None else "")
