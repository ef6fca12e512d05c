"""The TP suite: ten small bilevel test problems, TP1-TP10.

References
----------
A. Sinha, P. Malo, K. Deb, "Efficient evolutionary algorithm for single-objective bilevel optimization",
arXiv:1303.3901, 2013; journal version: "Evolutionary algorithm for bilevel optimization using approximations
of the lower level optimal solution mapping", European Journal of Operational Research 257(2):395-411, 2017.
TP1-TP8 are classical problems from the bilevel literature collected there; TP9 and TP10 are scalable problems
introduced by the same authors. The definitions and bounds follow the authors' public BLEAQ2 code.

Conventions: both levels minimise, constraints are ``G <= 0`` and ``g <= 0``. The authors' code repeats the
lower-level constraints among the upper-level ones; here they are stated once, at the lower level, where they
belong (a point whose ``y`` is lower-level infeasible is not bilevel feasible anyway).

``ll_response`` is exact where the lower level allows it: a projection (TP1), a separable clip (TP2, TP8), an
enumeration of active sets of a small convex quadratic or linear programme (TP3-TP6), a vertex enumeration
(TP7) and ``y = 0`` (TP9, TP10). For an ``x`` whose lower-level problem is infeasible the row is NaN.
"""

from __future__ import annotations

import itertools
import numbers

import numpy as np

from .base import BenchmarkProblem

__all__ = ["TP1", "TP2", "TP3", "TP4", "TP5", "TP6", "TP7", "TP8", "TP9", "TP10", "PROBLEMS"]


# ---------------------------------------------------------------------------------------------- helpers


def _min_convex_qp(Q: np.ndarray, C: np.ndarray, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Exact minimisers of ``0.5 y'Qy + c'y`` subject to ``A y <= b``, one problem per row of ``C`` and ``B``.

    Parameters
    ----------
    Q : ndarray, shape (k, k)
        Symmetric positive semi-definite (zero for a linear programme).
    C : ndarray, shape (n, k)
    A : ndarray, shape (m, k)
        Must include rows bounding every variable, so that each feasible set is bounded.
    B : ndarray, shape (n, m)

    Returns
    -------
    Y : ndarray, shape (n, k)
        A minimiser of each problem; NaN rows where ``A y <= b`` has no solution.

    Notes
    -----
    A bounded convex QP has a minimiser that is also the minimiser of the QP restricted to the affine set of a
    linearly independent subset S (at most k rows) of its active constraints, with a nonsingular KKT matrix
    ``[[Q, A_S'], [A_S, 0]]``. Every such candidate is computed by one linear solve; the feasible candidate
    with the lowest objective is a minimiser, because every candidate the filter keeps is feasible and the
    true one is among them. The cost grows as ``binomial(m, k)``, fine for the handful of variables of the TP
    problems. When the minimiser is not unique, one of them is returned.
    """
    n, k = C.shape
    m = A.shape[0]
    best = np.full(n, np.inf)
    Y = np.full((n, k), np.nan)
    slack = 1e-9 * (1.0 + np.abs(B))
    for size in range(min(k, m) + 1):
        for S in itertools.combinations(range(m), size):
            rows = list(S)
            K = np.zeros((k + size, k + size))
            K[:k, :k] = Q
            K[:k, k:] = A[rows].T
            K[k:, :k] = A[rows]
            if np.linalg.cond(K) > 1e12:
                continue  # this active set does not pin down a point
            rhs = np.concatenate([-C, B[:, rows]], axis=1)
            cand = np.linalg.solve(K, rhs.T).T[:, :k]
            feasible = np.all(cand @ A.T <= B + slack, axis=1)
            value = 0.5 * np.einsum("ij,jk,ik->i", cand, Q, cand) + np.sum(C * cand, axis=1)
            take = feasible & (value < best)
            best[take] = value[take]
            Y[take] = cand[take]
    return Y


def _box_rows(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Constraint rows ``A y <= b`` (2k, k), (2k,) of the box ``lo <= y <= hi``."""
    eye = np.eye(lo.shape[0])
    return np.vstack([eye, -eye]), np.r_[hi, -lo]


def _check_dim(name: str, dim) -> int:
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
        raise ValueError(f"{name}: dim must be a positive integer, got {dim!r}")
    return int(dim)


class _TP(BenchmarkProblem):
    """Shared machinery of the fixed-size TP problems.

    Subclasses set ``ul_bounds_`` and ``ll_bounds_`` (pairs of lists), the constraint counts, implement
    ``_F``, ``_f`` (``_G``, ``_g``), and optionally ``_optimal_point`` and ``_ll_response``.
    """

    suite = "TP"
    ul_bounds_: tuple = ()
    ll_bounds_: tuple = ()
    n_G = 0
    n_g = 0

    def __init__(self):
        self._setup(type(self).__name__, self.ul_bounds_, self.ll_bounds_, self.n_G, self.n_g, {})


class _QPLower(_TP):
    """A TP problem whose lower level is a convex QP (or LP) in ``y`` with linear constraints.

    Subclasses implement ``_ll_qp(X) -> (Q (k, k), C (n, k), A (m, k), B (n, m))`` describing
    ``min 0.5 y'Qy + c'y`` subject to ``A y <= b`` without the bounds (added here), up to terms that do not
    depend on ``y``.
    """

    def _ll_response(self, X):
        Q, C, A, B = self._ll_qp(X)
        A_box, b_box = _box_rows(*self.ll_bounds)
        A = np.vstack([A, A_box])
        B = np.concatenate([B, np.broadcast_to(b_box, (len(X), b_box.shape[0]))], axis=1)
        Y = _min_convex_qp(Q, C, A, B)
        return np.clip(Y, self.ll_bounds[0], self.ll_bounds[1])


def _tp2_lower_response(X: np.ndarray) -> np.ndarray:
    """Lower-level optimum of TP2 and TP8: ``y_i = clip(x_i - 20, -10, min(20, (x_i - 10)/2))``.

    The lower level ``min sum (y_i - x_i + 20)^2`` subject to ``2 y_i <= x_i - 10`` separates by component;
    each is the projection of ``x_i - 20`` onto its interval, which is non-empty for ``x_i >= -10``.
    """
    return np.clip(X - 20.0, -10.0, np.minimum(20.0, 0.5 * (X - 10.0)))


# ------------------------------------------------------------------------------------------- problems


class TP1(_TP):
    """TP1 (2 + 2 variables).

    ``F = (x1 - 30)^2 + (x2 - 20)^2 - 20 y1 + 20 y2``, ``G = [30 - x1 - 2 x2, x1 + x2 - 25]``;
    ``f = (x1 - y1)^2 + (x2 - y2)^2``; ``x1`` in ``[-30, 30]``, ``x2`` in ``[-30, 15]``, ``y`` in
    ``[0, 10]^2``. Optimum ``x = (20, 5)``, ``y = (10, 5)``, ``F* = 225``, ``f* = 100``. Lower-level response:
    the projection of ``x`` onto ``[0, 10]^2`` (unique).
    """

    ul_bounds_ = ([-30.0, -30.0], [30.0, 15.0])
    ll_bounds_ = ([0.0, 0.0], [10.0, 10.0])
    n_G = 2

    def _F(self, X, Y):
        return (X[:, 0] - 30.0) ** 2 + (X[:, 1] - 20.0) ** 2 - 20.0 * Y[:, 0] + 20.0 * Y[:, 1]

    def _G(self, X, Y):
        return np.stack([30.0 - X[:, 0] - 2.0 * X[:, 1], X[:, 0] + X[:, 1] - 25.0], axis=1)

    def _f(self, X, Y):
        return np.sum((X - Y) ** 2, axis=1)

    def _optimal_point(self):
        return [20.0, 5.0], [10.0, 5.0]

    def _ll_response(self, X):
        return np.clip(X, 0.0, 10.0)


class TP2(_TP):
    """TP2 (2 + 2 variables).

    ``F = 2 x1 + 2 x2 - 3 y1 - 3 y2 - 60``, ``G = x1 + x2 + y1 - 2 y2 - 40``;
    ``f = (y1 - x1 + 20)^2 + (y2 - x2 + 20)^2``, ``g = [10 - x1 + 2 y1, 10 - x2 + 2 y2]``; ``x`` in
    ``[0, 50]^2``, ``y`` in ``[-10, 20]^2``. Optimum ``x = (0, 30)``, ``y = (-10, 10)``, ``F* = 0``,
    ``f* = 100``. It is not the only one: with the follower's response, ``2 x_i - 3 y_i >= 30`` with equality
    only at ``x_i`` in ``{0, 30}``, so ``F = 0`` also at ``x = (0, 0)``, ``y = (-10, -10)``, where ``f = 200``
    (``x = (30, 0)`` and ``(30, 30)`` violate ``G``). Lower-level response:
    ``y_i = clip(x_i - 20, -10, (x_i - 10)/2)`` (unique).
    """

    ul_bounds_ = ([0.0, 0.0], [50.0, 50.0])
    ll_bounds_ = ([-10.0, -10.0], [20.0, 20.0])
    n_G = 1
    n_g = 2

    def _F(self, X, Y):
        return 2.0 * X[:, 0] + 2.0 * X[:, 1] - 3.0 * Y[:, 0] - 3.0 * Y[:, 1] - 60.0

    def _G(self, X, Y):
        return (X[:, 0] + X[:, 1] + Y[:, 0] - 2.0 * Y[:, 1] - 40.0)[:, None]

    def _f(self, X, Y):
        return np.sum((Y - X + 20.0) ** 2, axis=1)

    def _g(self, X, Y):
        return 10.0 - X + 2.0 * Y

    def _optimal_point(self):
        return [0.0, 30.0], [-10.0, 10.0]

    def _ll_response(self, X):
        return _tp2_lower_response(X)


class TP3(_QPLower):
    """TP3 (2 + 2 variables).

    ``F = -x1^2 - 3 x2^2 - 4 y1 + y2^2``, ``G = x1^2 + 2 x2 - 4``;
    ``f = 2 x1^2 + y1^2 - 5 y2``, ``g = [-3 - x1^2 + 2 x1 - x2^2 + 2 y1 - y2, 4 - x2 - 3 y1 + 4 y2]``;
    ``x``, ``y`` in ``[0, 10]^2``.
    Optimum ``x = (0, 2)``, ``y = (15/8, 29/32)``, ``F* = -18.678711``, ``f* = -1.015625``.
    Lower-level response: exact solution of the convex QP in ``y`` (unique); NaN where it is infeasible
    (e.g. ``x = (1, 0)``).
    """

    ul_bounds_ = ([0.0, 0.0], [10.0, 10.0])
    ll_bounds_ = ([0.0, 0.0], [10.0, 10.0])
    n_G = 1
    n_g = 2

    def _F(self, X, Y):
        return -(X[:, 0] ** 2) - 3.0 * X[:, 1] ** 2 - 4.0 * Y[:, 0] + Y[:, 1] ** 2

    def _G(self, X, Y):
        return (X[:, 0] ** 2 + 2.0 * X[:, 1] - 4.0)[:, None]

    def _f(self, X, Y):
        return 2.0 * X[:, 0] ** 2 + Y[:, 0] ** 2 - 5.0 * Y[:, 1]

    def _g(self, X, Y):
        x1, x2, y1, y2 = X[:, 0], X[:, 1], Y[:, 0], Y[:, 1]
        return np.stack(
            [-3.0 - x1**2 + 2.0 * x1 - x2**2 + 2.0 * y1 - y2, 4.0 - x2 - 3.0 * y1 + 4.0 * y2], axis=1
        )

    def _ll_qp(self, X):
        x1, x2 = X[:, 0], X[:, 1]
        Q = np.diag([2.0, 0.0])
        C = np.broadcast_to([0.0, -5.0], X.shape)
        A = np.array([[2.0, -1.0], [-3.0, 4.0]])
        B = np.stack([3.0 + x1**2 - 2.0 * x1 + x2**2, x2 - 4.0], axis=1)
        return Q, C, A, B

    def _optimal_point(self):
        return [0.0, 2.0], [15.0 / 8.0, 29.0 / 32.0]


class TP4(_QPLower):
    """TP4 (2 + 3 variables), linear at both levels.

    ``F = -8 x1 - 4 x2 + 4 y1 - 40 y2 - 4 y3``; ``f = x1 + 2 x2 + y1 + y2 + 2 y3``,
    ``g = [y2 + y3 - y1 - 1, 2 x1 - y1 + 2 y2 - y3/2 - 1, 2 x2 + 2 y1 - y2 - y3/2 - 1]``;
    ``x`` in ``[0, 1]^2``, ``y`` in ``[0, 1]^3``.
    Optimum ``x = (0, 0.9)``, ``y = (0, 0.6, 0.4)``, ``F* = -29.2``, ``f* = 3.2``.
    Lower-level response: exact solution of the LP in ``y`` (a vertex; one of them when several are optimal);
    NaN where it is infeasible (e.g. ``x = (1, 1)``).
    """

    ul_bounds_ = ([0.0, 0.0], [1.0, 1.0])
    ll_bounds_ = ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    n_g = 3

    def _F(self, X, Y):
        return -8.0 * X[:, 0] - 4.0 * X[:, 1] + 4.0 * Y[:, 0] - 40.0 * Y[:, 1] - 4.0 * Y[:, 2]

    def _f(self, X, Y):
        return X[:, 0] + 2.0 * X[:, 1] + Y[:, 0] + Y[:, 1] + 2.0 * Y[:, 2]

    def _g(self, X, Y):
        x1, x2, y1, y2, y3 = X[:, 0], X[:, 1], Y[:, 0], Y[:, 1], Y[:, 2]
        return np.stack(
            [
                y2 + y3 - y1 - 1.0,
                2.0 * x1 - y1 + 2.0 * y2 - 0.5 * y3 - 1.0,
                2.0 * x2 + 2.0 * y1 - y2 - 0.5 * y3 - 1.0,
            ],
            axis=1,
        )

    def _ll_qp(self, X):
        Q = np.zeros((3, 3))
        C = np.broadcast_to([1.0, 1.0, 2.0], (len(X), 3))
        A = np.array([[-1.0, 1.0, 1.0], [-1.0, 2.0, -0.5], [2.0, -1.0, -0.5]])
        B = np.stack([np.ones(len(X)), 1.0 - 2.0 * X[:, 0], 1.0 - 2.0 * X[:, 1]], axis=1)
        return Q, C, A, B

    def _optimal_point(self):
        x, y = np.array([0.0, 0.9]), np.array([0.0, 0.6, 0.4])
        # 0.9 is not a binary fraction and the third constraint is active: lower x2 by rounding steps until it
        # holds in floating point.
        while np.any(self._g(x[None, :], y[None, :]) > 0.0):
            x[1] = np.nextafter(x[1], 0.0)
        return x, y


class TP5(_QPLower):
    """TP5 (2 + 2 variables).

    ``F = 0.1 x'x - 3 y1 - 4 y2 + 0.5 y'y``; ``f = 0.5 y'Hy + (Bx)'y`` with ``H = [[1, 3], [3, 10]]``,
    ``B = [[-1, 2], [3, -3]]``, ``g = [-0.333 y1 + y2 - 2, y1 - 0.333 y2 - 2]``; ``x``, ``y`` in
    ``[0, 10]^2``. Optimum ``x = (2, 0)``, ``y = (2, 0)``, ``F* = -3.6``, ``f* = -2``. Lower-level response:
    exact solution of the strictly convex QP in ``y`` (unique; always feasible).
    """

    ul_bounds_ = ([0.0, 0.0], [10.0, 10.0])
    ll_bounds_ = ([0.0, 0.0], [10.0, 10.0])
    n_g = 2
    H = np.array([[1.0, 3.0], [3.0, 10.0]])
    B = np.array([[-1.0, 2.0], [3.0, -3.0]])

    def _F(self, X, Y):
        return 0.1 * np.sum(X * X, axis=1) - 3.0 * Y[:, 0] - 4.0 * Y[:, 1] + 0.5 * np.sum(Y * Y, axis=1)

    def _f(self, X, Y):
        # Written out element by element: a point's value must not depend on the batch it is evaluated in (a
        # matrix product's rounding can depend on the number of rows).
        y1, y2 = Y[:, 0], Y[:, 1]
        H, BX = self.H, self._bx(X)
        quadratic = y1 * (H[0, 0] * y1 + H[0, 1] * y2) + y2 * (H[1, 0] * y1 + H[1, 1] * y2)
        return 0.5 * quadratic + (BX[:, 0] * y1 + BX[:, 1] * y2)

    def _bx(self, X):
        """``B x`` (n, 2) per row of X (n, 2), element by element."""
        B, x1, x2 = self.B, X[:, 0], X[:, 1]
        return np.stack([B[0, 0] * x1 + B[0, 1] * x2, B[1, 0] * x1 + B[1, 1] * x2], axis=1)

    def _g(self, X, Y):
        y1, y2 = Y[:, 0], Y[:, 1]
        return np.stack([-0.333 * y1 + y2 - 2.0, y1 - 0.333 * y2 - 2.0], axis=1)

    def _ll_qp(self, X):
        A = np.array([[-0.333, 1.0], [1.0, -0.333]])
        return self.H, self._bx(X), A, np.full((len(X), 2), 2.0)

    def _optimal_point(self):
        return [2.0, 0.0], [2.0, 0.0]


class TP6(_QPLower):
    """TP6 (1 + 2 variables).

    ``F = (x1 - 1)^2 + 2 y1 - 2 x1``; ``f = (2 y1 - 4)^2 + (2 y2 - 1)^2 + x1 y1``,
    ``g = [4 x1 + 5 y1 + 4 y2 - 12, 4 y2 - 4 x1 - 5 y1 + 4, 4 x1 - 4 y1 + 5 y2 - 4, 4 y1 - 4 x1 + 5 y2 - 4]``;
    ``x1`` in ``[0, 2]``, ``y`` in ``[0, 2]^2``. The problem has one upper-level variable (the authors' code
    declares two and ignores the second).
    Optimum ``x = 17/9``, ``y = (8/9, 0)``, ``F* = -98/81 = -1.209877``, ``f* = 617/81 = 7.617284``.
    Lower-level response: exact solution of the strictly convex QP in ``y`` (unique); NaN where it is
    infeasible (e.g. ``x1 = 2``).
    """

    ul_bounds_ = ([0.0], [2.0])
    ll_bounds_ = ([0.0, 0.0], [2.0, 2.0])
    n_g = 4

    def _F(self, X, Y):
        x1 = X[:, 0]
        return (x1 - 1.0) ** 2 + 2.0 * Y[:, 0] - 2.0 * x1

    def _f(self, X, Y):
        return (2.0 * Y[:, 0] - 4.0) ** 2 + (2.0 * Y[:, 1] - 1.0) ** 2 + X[:, 0] * Y[:, 0]

    def _g(self, X, Y):
        x1, y1, y2 = X[:, 0], Y[:, 0], Y[:, 1]
        return np.stack(
            [
                4.0 * x1 + 5.0 * y1 + 4.0 * y2 - 12.0,
                4.0 * y2 - 4.0 * x1 - 5.0 * y1 + 4.0,
                4.0 * x1 - 4.0 * y1 + 5.0 * y2 - 4.0,
                4.0 * y1 - 4.0 * x1 + 5.0 * y2 - 4.0,
            ],
            axis=1,
        )

    def _ll_qp(self, X):
        # (2y1 - 4)^2 + (2y2 - 1)^2 + x1 y1 = 4 y1^2 + 4 y2^2 + (x1 - 16) y1 - 4 y2 + 17
        x1 = X[:, 0]
        Q = np.diag([8.0, 8.0])
        C = np.stack([x1 - 16.0, np.full_like(x1, -4.0)], axis=1)
        A = np.array([[5.0, 4.0], [-5.0, 4.0], [-4.0, 5.0], [4.0, 5.0]])
        B = np.stack([12.0 - 4.0 * x1, 4.0 * x1 - 4.0, 4.0 - 4.0 * x1, 4.0 + 4.0 * x1], axis=1)
        return Q, C, A, B

    def _optimal_point(self):
        return [17.0 / 9.0], [8.0 / 9.0, 0.0]


class TP7(_TP):
    """TP7 (2 + 2 variables): the follower minimises what the leader maximises.

    ``F = -(x1 + y1)(x2 + y2) / (1 + x1 y1 + x2 y2)``, ``G = [x1^2 + x2^2 - 100, x1 - x2]``; ``f = -F``,
    ``g = [y1 - x1, y2 - x2]``; ``x`` in ``[0, 10]^2``, ``y1`` in ``[0, 1]``, ``y2`` in ``[0, 10]``.

    Lower-level response: ``f`` is a ratio of affine functions in each ``y_i`` separately, hence monotone in
    each, so a vertex of the box ``[0, min(1, x1)] x [0, min(10, x2)]`` is optimal; the best of the four
    vertices is returned (exact; the first in the order (0, 0), (0, b), (a, 0), (a, b) on ties).

    Optimum: with ``y1 = 0``, ``y2 = x2`` the follower's value is ``2 x1 x2 / (1 + x2^2)``, which is at most
    ``100/51`` on the feasible set and equals it at ``x = (sqrt(50), sqrt(50))`` where that vertex is the
    follower's choice. So ``x* = (sqrt(50), sqrt(50))`` (lowered by one rounding step so that ``G <= 0``),
    ``y* = (0, sqrt(50))``, ``F* = -100/51 = -1.960784``, ``f* = 1.960784``. The value -1.96146 reported in
    the literature is lower than this minimum; it needs ``x1 > x2`` by about 2.5e-3 or an inexact lower level.
    """

    ul_bounds_ = ([0.0, 0.0], [10.0, 10.0])
    ll_bounds_ = ([0.0, 0.0], [1.0, 10.0])
    n_G = 2
    n_g = 2

    @staticmethod
    def _ratio(X, Y):
        return (X[:, 0] + Y[:, 0]) * (X[:, 1] + Y[:, 1]) / (1.0 + X[:, 0] * Y[:, 0] + X[:, 1] * Y[:, 1])

    def _F(self, X, Y):
        return -self._ratio(X, Y)

    def _G(self, X, Y):
        return np.stack([X[:, 0] ** 2 + X[:, 1] ** 2 - 100.0, X[:, 0] - X[:, 1]], axis=1)

    def _f(self, X, Y):
        return self._ratio(X, Y)

    def _g(self, X, Y):
        return Y - X

    def _ll_response(self, X):
        # The lower-level box is [0, min(hi, x)] per component; x >= 0 keeps it non-empty.
        top = np.minimum(self.ll_bounds[1], X)
        zero = np.zeros(len(X))
        vertices = [
            np.stack([zero, zero], axis=1),
            np.stack([zero, top[:, 1]], axis=1),
            np.stack([top[:, 0], zero], axis=1),
            top,
        ]
        values = np.stack([self._ratio(X, V) for V in vertices], axis=1)
        choice = np.argmin(values, axis=1)
        return np.stack(vertices, axis=1)[np.arange(len(X)), choice]

    def _optimal_point(self):
        t = float(np.sqrt(50.0))
        while 2.0 * t * t > 100.0:  # sqrt rounds; stay on the feasible side of x1^2 + x2^2 <= 100
            t = float(np.nextafter(t, 0.0))
        x = np.array([t, t])
        return x, self._ll_response(x[None, :])[0]


class TP8(_TP):
    """TP8 (2 + 2 variables): TP2 with ``F`` replaced by its absolute value.

    ``F = |2 x1 + 2 x2 - 3 y1 - 3 y2 - 60|``, ``G = x1 + x2 + y1 - 2 y2 - 40``;
    ``f = (y1 - x1 + 20)^2 + (y2 - x2 + 20)^2``, ``g = [2 y1 - x1 + 10, 2 y2 - x2 + 10]``; ``x`` in
    ``[0, 50]^2``, ``y`` in ``[-10, 20]^2``. Optimum ``x = (0, 30)``, ``y = (-10, 10)``, ``F* = 0``,
    ``f* = 100``; ``x = (0, 0)``, ``y = (-10, -10)`` is optimal too, with ``f = 200`` (as for :class:`TP2`).
    Lower-level response: as for :class:`TP2` (unique).
    """

    ul_bounds_ = ([0.0, 0.0], [50.0, 50.0])
    ll_bounds_ = ([-10.0, -10.0], [20.0, 20.0])
    n_G = 1
    n_g = 2

    def _F(self, X, Y):
        return np.abs(2.0 * X[:, 0] + 2.0 * X[:, 1] - 3.0 * Y[:, 0] - 3.0 * Y[:, 1] - 60.0)

    def _G(self, X, Y):
        return (X[:, 0] + X[:, 1] + Y[:, 0] - 2.0 * Y[:, 1] - 40.0)[:, None]

    def _f(self, X, Y):
        return np.sum((Y - X + 20.0) ** 2, axis=1)

    def _g(self, X, Y):
        return 2.0 * Y - X + 10.0

    def _optimal_point(self):
        return [0.0, 30.0], [-10.0, 10.0]

    def _ll_response(self, X):
        return _tp2_lower_response(X)


class _Scalable(BenchmarkProblem):
    """TP9 and TP10: ``dim`` upper- and ``dim`` lower-level variables, ``F = sum|x_i - 1| + sum|y_i|``."""

    suite = "TP"

    def __init__(self, dim: int):
        name = type(self).__name__
        dim = _check_dim(name, dim)
        ul_bounds = (np.full(dim, -1.0), np.full(dim, 1.0))
        ll_bounds = (np.full(dim, -np.pi), np.full(dim, np.pi))
        self._setup(name, ul_bounds, ll_bounds, 0, 0, {})

    def _F(self, X, Y):
        return np.sum(np.abs(X - 1.0), axis=1) + np.sum(np.abs(Y), axis=1)

    def _optimal_point(self):
        return np.ones(self.ul_dim), np.zeros(self.ll_dim)

    def _ll_response(self, X):
        return np.zeros((len(X), self.ll_dim))


def _griewank(Z: np.ndarray) -> np.ndarray:
    """``1 + S(z)/4000 - prod_i cos(z_i / sqrt(i))`` per row of Z (n, k); >= S(z)/4000, so 0 only at z = 0."""
    scale = np.sqrt(np.arange(1, Z.shape[1] + 1))
    return 1.0 + np.sum(Z * Z, axis=1) / 4000.0 - np.prod(np.cos(Z / scale), axis=1)


class TP9(_Scalable):
    """TP9 (``dim`` + ``dim`` variables, 5 + 5 by default, as in the authors' code).

    ``F = sum|x_i - 1| + sum|y_i|``; ``f = exp(W(y) S(x))`` with the Griewank function
    ``W(y) = 1 + S(y)/4000 - prod_i cos(y_i / sqrt(i))``; ``x`` in ``[-1, 1]^dim``, ``y`` in
    ``[-pi, pi]^dim``. Optimum ``x = 1``, ``y = 0``, ``F* = 0``, ``f* = 1``.

    Lower-level response: ``y = 0``. ``W(y) >= S(y)/4000 > 0`` for ``y != 0`` and ``W(0) = 0``, so ``y = 0``
    is the unique lower-level optimum when ``x != 0``; at ``x = 0`` every ``y`` is optimal and ``y = 0`` is
    the one the leader prefers.

    Parameters
    ----------
    dim : int, default 5
        Number of variables at each level.
    """

    def __init__(self, dim: int = 5):
        super().__init__(dim)

    def _f(self, X, Y):
        return np.exp(_griewank(Y) * np.sum(X * X, axis=1))


class TP10(_Scalable):
    """TP10 (``dim`` + ``dim`` variables, 10 + 10 by default, as in the authors' code).

    ``F = sum|x_i - 1| + sum|y_i|``; ``f = exp(1 + S(x*y)/4000 - prod_i cos(x_i y_i / sqrt(i)))`` (products
    taken component-wise), i.e. ``exp(W(x*y))`` with the Griewank function ``W`` of :class:`TP9`; ``x`` in
    ``[-1, 1]^dim``, ``y`` in ``[-pi, pi]^dim``. Optimum ``x = 1``, ``y = 0``, ``F* = 0``, ``f* = 1``.

    Lower-level response: ``y = 0``. ``W(z) > 0`` for ``z != 0`` and ``W(0) = 0``, so the lower-level optima
    are the ``y`` with ``x_i y_i = 0`` for all i: unique where every ``x_i != 0``, and ``y_i`` free where
    ``x_i = 0``, in which case ``y_i = 0`` is the one the leader prefers.

    Parameters
    ----------
    dim : int, default 10
        Number of variables at each level.
    """

    def __init__(self, dim: int = 10):
        super().__init__(dim)

    def _f(self, X, Y):
        return np.exp(_griewank(X * Y))


PROBLEMS = (TP1, TP2, TP3, TP4, TP5, TP6, TP7, TP8, TP9, TP10)
"""The suite's problem classes in order."""
