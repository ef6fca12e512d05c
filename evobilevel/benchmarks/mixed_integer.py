"""Mixed-integer bilevel test problems from the literature: MI1-MI4.

All four are linear at both levels, with one variable per level and the leader's variable integer. They are small,
but a continuous relaxation misleads on each (the relaxation's optimum is not the integer problem's), the follower's
problem is infeasible for some of the leader's choices, and on MI2-MI4 the leader's constraints involve the
follower's answer, which can leave the leader's feasible choices in separate groups (MI3, MI4).

References
----------
MI1: J. T. Moore, J. F. Bard, "The mixed integer linear bilevel programming problem", Operations Research
38(5):911-921, 1990. MI2: the example of the MibS documentation (S. T. DeNegre, T. K. Ralphs, S. Tahernejad,
COR@L, Lehigh University; "MibS input file format"). MI3: D. Yue, J. Gao, B. Zeng, F. You, "A projection-based
reformulation and decomposition algorithm for global optimization of a class of mixed integer bilevel linear
programs", Journal of Global Optimization 73:27-57, 2019, toy example 2. MI4: the same with the follower's variable
continuous (integer leader, continuous follower).

The papers state the variables as non-negative, without upper bounds; here every variable gets a box that the other
constraints already imply, so that no bound cuts off a point the original problem allows. The optima stated below
are verified by enumeration in ``tests/test_mixed_integer.py``: every integer ``x`` of its box, for each the
follower's exact answer (from every integer ``y``, or from the exact solution of its linear programme for MI4),
and the best ``F`` over the leader's feasible choices.
"""

from __future__ import annotations

import numpy as np

from .base import BenchmarkProblem

__all__ = ["MI1", "MI2", "MI3", "MI4", "PROBLEMS"]


class _Linear(BenchmarkProblem):
    """A linear bilevel problem with one variable per level: ``F = a x + b y``, ``f = c y``, ``G`` and ``g`` given
    as rows ``[coefficient of x, coefficient of y, constant]`` of ``coef_x x + coef_y y + constant <= 0``.

    Subclasses set the bounds, the coefficients and whether ``y`` is integer (``x`` always is).
    """

    suite = "MI"
    ul_bounds_: tuple = ()
    ll_bounds_: tuple = ()
    F_coefficients: tuple = ()  # (a, b)
    f_coefficient: float = 1.0  # c
    G_rows: tuple = ()
    g_rows: tuple = ()
    y_integer = True

    def __init__(self):
        self._setup(type(self).__name__, self.ul_bounds_, self.ll_bounds_, len(self.G_rows), len(self.g_rows), {},
                    ul_integrality=True, ll_integrality=self.y_integer)

    def _F(self, X, Y):
        a, b = self.F_coefficients
        return a * X[:, 0] + b * Y[:, 0]

    def _f(self, X, Y):
        return self.f_coefficient * Y[:, 0]

    @staticmethod
    def _rows(rows, X, Y):
        A = np.asarray(rows, dtype=float)
        return X[:, :1] * A[:, 0] + Y[:, :1] * A[:, 1] + A[:, 2]

    def _G(self, X, Y):
        return self._rows(self.G_rows, X, Y)

    def _g(self, X, Y):
        return self._rows(self.g_rows, X, Y)

    def _interval(self, X) -> tuple[np.ndarray, np.ndarray]:
        """The follower's feasible values of y at each x (n,): (lowest, highest), empty where lowest > highest."""
        x = X[:, 0]
        lowest, highest = np.full_like(x, self.ll_bounds_[0][0]), np.full_like(x, self.ll_bounds_[1][0])
        for cx, cy, c in self.g_rows:  # cx x + cy y + c <= 0
            bound = -(cx * x + c) / cy
            if cy > 0:
                highest = np.minimum(highest, bound)
            else:
                lowest = np.maximum(lowest, bound)
        return lowest, highest

    def _ll_response(self, X):
        lowest, highest = self._interval(X)
        if self.y_integer:
            lowest, highest = np.ceil(lowest - 1e-9), np.floor(highest + 1e-9)
        # The follower minimises c y: the lowest feasible y for c > 0, the highest for c < 0.
        y = lowest if self.f_coefficient > 0 else highest
        return np.where(lowest <= highest + 1e-12, y, np.nan)[:, None]


class MI1(_Linear):
    """MI1: Moore and Bard's example (1 + 1 integer variables).

    ``F = -x - 10 y``; the follower minimises ``f = y`` subject to ``-25 x + 20 y <= 30``, ``x + 2 y <= 10``,
    ``2 x - y <= 15``, ``2 x + 10 y >= 15``; ``x`` in ``{0, ..., 10}``, ``y`` in ``{0, ..., 5}`` (``x + 2 y <= 10``
    implies both). The follower takes the smallest feasible ``y``; it has none for ``x = 0`` and ``x >= 9``.
    Optimum ``x = 2``, ``y = 2``, ``F* = -22``, ``f* = 2``; with continuous variables the bilevel optimum is
    ``(8, 1)``, ``F = -18``. Lower-level response: that smallest ``y`` (NaN where there is none).
    """

    ul_bounds_ = ([0.0], [10.0])
    ll_bounds_ = ([0.0], [5.0])
    F_coefficients = (-1.0, -10.0)
    g_rows = ((-25.0, 20.0, -30.0), (1.0, 2.0, -10.0), (2.0, -1.0, -15.0), (-2.0, -10.0, 15.0))

    def _optimal_point(self):
        return [2.0], [2.0]


class MI2(_Linear):
    """MI2: the MibS example (1 + 1 integer variables).

    ``F = -x - 7 y``, ``G = [-3 x + 2 y - 12, x + 2 y - 20]``; the follower minimises ``f = y`` subject to
    ``2 x - y <= 7``, ``-2 x + 4 y <= 16``; ``x`` in ``{0, ..., 10}``, ``y`` in ``{0, ..., 5}``. The follower
    takes ``y = max(0, 2 x - 7)``, which the bound ``y <= 5`` allows up to ``x = 6``. Optimum ``x = 6``, ``y = 5``,
    ``F* = -41``, ``f* = 5``. Lower-level response: that ``y`` (NaN for ``x >= 7``).
    """

    ul_bounds_ = ([0.0], [10.0])
    ll_bounds_ = ([0.0], [5.0])
    F_coefficients = (-1.0, -7.0)
    G_rows = ((-3.0, 2.0, -12.0), (1.0, 2.0, -20.0))
    g_rows = ((2.0, -1.0, -7.0), (-2.0, 4.0, -16.0))

    def _optimal_point(self):
        return [6.0], [5.0]


class MI3(_Linear):
    """MI3: toy example 2 of Yue, Gao, Zeng and You (1 + 1 integer variables).

    ``F = -x - 2 y``, ``G = [-2 x + 3 y - 12, x + y - 14]``; the follower maximises ``y`` (``f = -y``) subject to
    ``-3 x + y <= -3``, ``3 x + y <= 30``; ``x`` in ``{0, ..., 10}``, ``y`` in ``{0, ..., 15}`` (the follower's
    constraints imply both). The follower takes ``y = floor(min(3 x - 3, 30 - 3 x))``; it has none for ``x = 0``.
    The leader's constraints, which involve ``y``, rule out ``x = 4, ..., 7``: its feasible choices are
    ``{1, 2, 3}`` (best ``F = -15`` at ``x = 3``) and ``{8, 9, 10}``. Optimum ``x = 8``, ``y = 6``, ``F* = -20``,
    ``f* = -6``. Lower-level response: that ``y`` (NaN for ``x = 0``).
    """

    ul_bounds_ = ([0.0], [10.0])
    ll_bounds_ = ([0.0], [15.0])
    F_coefficients = (-1.0, -2.0)
    f_coefficient = -1.0
    G_rows = ((-2.0, 3.0, -12.0), (1.0, 1.0, -14.0))
    g_rows = ((-3.0, 1.0, 3.0), (3.0, 1.0, -30.0))

    def _optimal_point(self):
        return [8.0], [6.0]


class MI4(MI3):
    """MI4: MI3 with the follower's variable continuous (an integer leader, a continuous follower).

    The follower takes ``y = min(3 x - 3, 30 - 3 x)``, a whole number at every integer ``x``, so the optimum is
    MI3's: ``x = 8``, ``y = 6``, ``F* = -20``, ``f* = -6``. Lower-level response: that ``y`` (NaN for ``x = 0``).
    """

    y_integer = False


PROBLEMS = (MI1, MI2, MI3, MI4)
