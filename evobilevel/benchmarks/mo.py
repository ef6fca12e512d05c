"""Bilevel test problems whose leader has several objectives, with Pareto fronts known in closed form: BMO1-BMO3.

Built for this package in the manner of the SMD suite (Sinha, Malo & Deb, Evolutionary Computation 22(3), 2014)
and of the ZDT and DTLZ fronts (Zitzler, Deb & Thiele, Evolutionary Computation 8(2), 2000; Deb, Thiele, Laumanns
& Zitzler, 2005): a block of the leader's variables places a point on the front, another block sets its distance
from it, and the follower's answer enters both. Deb and Sinha's bilevel multi-objective problems (DS1-DS5) have a
follower with several objectives too, which evobilevel's single-objective follower cannot be; these have one.

The leader's variables are ``x = (u, v)``, ``u`` in ``[0, 1]^(k-1)`` (the position along the front), ``v`` in
``[-1, 1]^r``; the follower's are ``y = (w, z)``, ``w`` in ``[-1, 1]^r`` (paired with ``v``) and ``z`` in
``[-1, 1]^s``. So ``ul_dim = k - 1 + r`` and ``ll_dim = r + s`` with ``r, s >= 1``. With ``S`` the row-wise sum
of squares,

    f(x, y) = S(u - 1/2) + S(v - tan w) + S(z)      (the follower tracks v through tan and keeps z small)
    F_i(x, y) = h_i(u) + D(x, y),   D = S(v) + S(v - tan w) - S(z)

so the follower's answer is ``w = atan(v)``, ``z = c(u)`` (``c = 0`` except where its constraint moves it), and the
leader's ``-S(z)`` conflicts with it: a follower's answer that is not optimal makes the leader look better than any
point of the true front, which the front's indicators and the lower-level gaps both show. At the follower's answer
``D = S(v) - S(c(u))``, least at ``v = 0``, so the Pareto set is ``v = 0`` with ``u`` free (where the leader's
constraints allow) and the front is ``h(u) - S(c(u))``.
"""

from __future__ import annotations

import numbers

import numpy as np

from .base import BenchmarkProblem

__all__ = ["BMO1", "BMO2", "BMO3", "PROBLEMS"]

#: Points of the dense curve from which fronts are resampled evenly along their length.
_DENSE = 20_001


def _sq(A: np.ndarray) -> np.ndarray:
    """Row-wise sum of squares of A (n, k) -> (n,)."""
    return np.add.reduce(A * A, axis=1)


class _BMO(BenchmarkProblem):
    """Shared machinery: the blocks ``u, v, w, z``, their bounds, the follower and the leader's distance term.

    Subclasses set ``k`` (the leader's objectives) and implement ``_h(U) -> (n, k)`` and ``_front_u(n) -> (m, k - 1)``
    (points of the Pareto set's ``u``, spread evenly along the front); where the follower is constrained, also
    ``_g`` and its answer ``_c``.
    """

    suite = "BMO"
    k = 2

    def __init__(self, ul_dim: int | None = None, ll_dim: int | None = None):
        name = type(self).__name__
        ul_dim = self.k + 1 if ul_dim is None else _check_size(name, "ul_dim", ul_dim)
        ll_dim = 3 if ll_dim is None else _check_size(name, "ll_dim", ll_dim)
        self.r, self.s = ul_dim - (self.k - 1), ll_dim - (ul_dim - (self.k - 1))
        if self.r < 1 or self.s < 1:
            raise ValueError(f"{name}: needs ul_dim >= {self.k} and ll_dim >= ul_dim - {self.k - 2} (one v and one z "
                             f"variable at least), got ul_dim={ul_dim}, ll_dim={ll_dim}")
        m = self.k - 1
        ul_bounds = (np.r_[np.zeros(m), -np.ones(self.r)], np.ones(ul_dim))
        ll_bounds = (-np.ones(ll_dim), np.ones(ll_dim))
        self._setup(name, ul_bounds, ll_bounds, self._n_ul_constraints, self._n_ll_constraints, {},
                    n_objectives=self.k)

    _n_ul_constraints = 0
    _n_ll_constraints = 0

    def _blocks(self, X, Y):
        m = self.k - 1
        return X[:, :m], X[:, m:], Y[:, : self.r], Y[:, self.r :]

    def _c(self, U: np.ndarray) -> np.ndarray:
        """The follower's answer for ``z`` (n, s): 0 where no constraint of the follower binds."""
        return np.zeros((U.shape[0], self.s))

    def _F(self, X, Y):
        U, V, W, Z = self._blocks(X, Y)
        D = _sq(V) + _sq(V - np.tan(W)) - _sq(Z)
        return self._h(U) + D[:, None]

    def _f(self, X, Y):
        U, V, W, Z = self._blocks(X, Y)
        return _sq(U - 0.5) + _sq(V - np.tan(W)) + _sq(Z)

    def _ll_response(self, X):
        U, V = X[:, : self.k - 1], X[:, self.k - 1 :]
        return np.hstack([np.arctan(V), self._c(U)])

    def pareto_set(self, n_points: int = 200) -> np.ndarray:
        """Leader's choices X (m, ul_dim) on the Pareto set, spread evenly along the front; the follower's answers
        are ``ll_response(X)``."""
        U = self._front_u(n_points)
        return np.hstack([U, np.zeros((U.shape[0], self.r))])

    def pareto_front(self, n_points: int = 200) -> np.ndarray:
        """The Pareto front (m, k) in closed form, points spread evenly along it (m close to ``n_points``)."""
        U = self._front_u(n_points)
        return self._h(U) - _sq(self._c(U))[:, None]

    @property
    def hv_reference(self) -> np.ndarray:
        """Reference point of the hypervolume indicator: the front's nadir plus a tenth of its extent."""
        front = self.pareto_front(1000)
        low, high = front.min(axis=0), front.max(axis=0)
        return high + 0.1 * (high - low)


class BMO1(_BMO):
    """BMO1: a convex front in two pieces (ZDT1's curve, cut by a leader's constraint).

    ``h(u) = (u, 1 - sqrt(u))``; the leader's constraint ``G = (u - 0.3)(0.5 - u) <= 0`` removes ``0.3 < u < 0.5``.
    Front: ``F2 = 1 - sqrt(F1)`` for ``F1`` in ``[0, 0.3]`` and ``[0.5, 1]``. Follower unconstrained,
    ``z* = 0``. Default sizes ``ul_dim = 3`` (u and two v), ``ll_dim = 3`` (two w and one z).
    """

    _n_ul_constraints = 1
    cut = (0.3, 0.5)

    def _h(self, U):
        u = U[:, 0]
        return np.column_stack([u, 1.0 - np.sqrt(u)])

    def _G(self, X, Y):
        u = X[:, 0]
        return ((u - self.cut[0]) * (self.cut[1] - u))[:, None]

    def _front_u(self, n_points):
        u = np.linspace(0.0, 1.0, _DENSE)
        u = u[(u <= self.cut[0]) | (u >= self.cut[1])]
        return _even_along(u[:, None], self._h(u[:, None]), n_points)


class BMO2(_BMO):
    """BMO2: a concave front shaped by the follower's constraint.

    ``h(u) = (u, 1 - u^2)``; the follower must keep ``z_1 >= u / 2`` (``g = u / 2 - z_1 <= 0``), so its answer is
    ``z_1 = u / 2``, which the leader's ``-S(z)`` turns into ``-u^2 / 4``. Front:
    ``(u - u^2 / 4, 1 - 5 u^2 / 4)`` for ``u`` in ``[0, 1]``. Default sizes ``ul_dim = 3``, ``ll_dim = 3``.
    """

    _n_ll_constraints = 1

    def _h(self, U):
        u = U[:, 0]
        return np.column_stack([u, 1.0 - u**2])

    def _c(self, U):
        c = np.zeros((U.shape[0], self.s))
        c[:, 0] = 0.5 * U[:, 0]
        return c

    def _g(self, X, Y):
        return (0.5 * X[:, 0] - Y[:, self.r])[:, None]

    def _front_u(self, n_points):
        u = np.linspace(0.0, 1.0, _DENSE)[:, None]
        return _even_along(u, self._h(u) - _sq(self._c(u))[:, None], n_points)


class BMO3(_BMO):
    """BMO3: three objectives, the positive octant of the unit sphere (DTLZ2's front).

    ``h(u) = (cos(a) cos(b), cos(a) sin(b), sin(a))`` with ``a = pi u_1 / 2``, ``b = pi u_2 / 2``; follower
    unconstrained, ``z* = 0``. Front: ``|F| = 1``, ``F >= 0``. Default sizes ``ul_dim = 4`` (two u, two v),
    ``ll_dim = 3``.
    """

    k = 3

    def _h(self, U):
        a, b = 0.5 * np.pi * U[:, 0], 0.5 * np.pi * U[:, 1]
        return np.column_stack([np.cos(a) * np.cos(b), np.cos(a) * np.sin(b), np.sin(a)])

    def _front_u(self, n_points):
        # Points of a simplex lattice projected onto the sphere are spread about evenly over the octant.
        partitions = max(1, int(round((np.sqrt(8 * n_points + 1) - 3) / 2)))  # (P + 1)(P + 2) / 2 points
        i, j = np.meshgrid(np.arange(partitions + 1), np.arange(partitions + 1), indexing="ij")
        keep = i + j <= partitions
        L = np.column_stack([i[keep], j[keep], partitions - i[keep] - j[keep]]) / partitions
        F = L / np.linalg.norm(L, axis=1, keepdims=True)
        a = np.arcsin(np.clip(F[:, 2], 0.0, 1.0))
        b = np.arctan2(F[:, 1], F[:, 0])
        return np.column_stack([a, b]) / (0.5 * np.pi)


def _even_along(U: np.ndarray, F: np.ndarray, n_points: int) -> np.ndarray:
    """Rows of U (m, d) whose images F (m, k) lie about evenly along the piecewise curve F (dense, ordered); a jump
    between pieces is not part of the length."""
    steps = np.linalg.norm(np.diff(F, axis=0), axis=1)
    typical = np.median(steps)
    steps[steps > 100 * typical] = 0.0  # the gap between two pieces of a front
    length = np.r_[0.0, np.cumsum(steps)]
    targets = np.linspace(0.0, length[-1], n_points)
    idx = np.unique(np.clip(np.searchsorted(length, targets), 0, len(U) - 1))
    return U[idx]


def _check_size(name: str, label: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: {label} must be an integer, got {value!r}")
    return int(value)


PROBLEMS = (BMO1, BMO2, BMO3)
