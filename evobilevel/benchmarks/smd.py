"""The SMD suite: twelve scalable bilevel test problems, SMD1-SMD12.

Reference
---------
A. Sinha, P. Malo, K. Deb, "Test problem construction for single-objective bilevel optimization",
Evolutionary Computation 22(3):439-477, 2014 (arXiv:1401.1942).

Every problem splits the variables into blocks, ``x = (x_u1, x_u2)`` and ``y = (x_l1, x_l2)``, with sizes

    r = ul_dim // 2,   p = ul_dim - r,   q = ll_dim - r,   dim(x_u1) = p, dim(x_u2) = dim(x_l2) = r,
    dim(x_l1) = q   (SMD6: q + s, see :class:`SMD6`),

and has the form ``F = F1(x_u1) + F2(x_l1) + F3(x_u2, x_l2)`` and
``f = f1(x_u1, x_u2) + f2(x_l1) + f3(x_u2, x_l2)``: ``F1, f1`` set how hard the upper level is, ``F2, f2`` how
hard the lower level is, and ``F3, f3`` how the two levels interact. Below, ``S(v)`` is the row-wise sum of
squares of a block.

Conventions of this module (decisions of the project, see its reference notes):

- both levels minimise; constraints are ``G <= 0`` and ``g <= 0`` (the paper writes them as ``E >= 0``, so
  ``G = -E``);
- open bounds such as ``(-pi/2, pi/2)`` are closed ``1e-5`` inside (:data:`EPS`), as in the authors' code;
- the optimum is built at the instance's size and ``F*``, ``f*`` are evaluated there, never hard-coded
  (SMD10 and SMD12 have size-dependent optimal values);
- SMD12 has the paper's bounds by default and the bounds of the authors' BLEAQ2 code as ``variant="bleaq2"``.

Where an optimal point has active constraints that hold only up to rounding (for example
``t - (q - 1) t**3 = 0`` at ``t = 1/sqrt(q - 1)``), the point is moved by a few units in the last place so
that its constraint values are exactly ``<= 0``; this changes ``F*`` and ``f*`` by about 1e-15.
"""

from __future__ import annotations

import numbers
from functools import cached_property
from typing import NamedTuple

import numpy as np

from .base import BenchmarkProblem

__all__ = [
    "EPS",
    "SMDSplit",
    "SMD1",
    "SMD2",
    "SMD3",
    "SMD4",
    "SMD5",
    "SMD6",
    "SMD7",
    "SMD8",
    "SMD9",
    "SMD10",
    "SMD11",
    "SMD12",
    "PROBLEMS",
]

EPS = 1e-5
"""How far inside an open bound the closed bound is placed."""

_HALF_PI = 0.5 * np.pi


class SMDSplit(NamedTuple):
    """Sizes of the variable blocks of an SMD instance.

    Attributes
    ----------
    p : int
        Size of ``x_u1``.
    q : int
        Size of ``x_l1`` (SMD6: of its first, unpaired part).
    r : int
        Size of ``x_u2`` and of ``x_l2``.
    s : int
        SMD6 only: size of the paired part of ``x_l1`` (0 for the other problems).
    """

    p: int
    q: int
    r: int
    s: int = 0


# ---------------------------------------------------------------------------------------------- helpers


def _sq(A: np.ndarray) -> np.ndarray:
    """Row-wise sum of squares of A (n, k) -> (n,); 0 for k = 0."""
    # The ufunc itself rather than np.sum: the same reduction without the wrapper, which costs as much as the
    # work on the few-column batches of a local search.
    return np.add.reduce(A * A, axis=1)


def _rastrigin(A: np.ndarray) -> np.ndarray:
    """``k + sum(a_i^2 - cos(2 pi a_i))`` per row of A (n, k); minimum 0 at the origin."""
    return A.shape[1] + np.sum(A * A - np.cos(2.0 * np.pi * A), axis=1)


def _rosenbrock(A: np.ndarray) -> np.ndarray:
    """``sum_{i<k} (a_{i+1} - a_i^2)^2 + (a_i - 1)^2`` per row of A (n, k); minimum 0 at all ones.

    There is no factor 100 on the first term, as in the SMD definition.
    """
    head, tail = A[:, :-1], A[:, 1:]
    return np.sum((tail - head * head) ** 2 + (head - 1.0) ** 2, axis=1)


def _cubic_margin(Z: np.ndarray) -> np.ndarray:
    """``z_i - sum_{j != i} z_j^3`` for every column i of Z (n, k) -> (n, k); SMD10/12 need it >= 0."""
    cubes = Z**3
    return Z - (np.sum(cubes, axis=1, keepdims=True) - cubes)


def _step_until(value: float, ok, toward: float, max_steps: int = 64) -> float:
    """Move ``value`` one unit in the last place at a time towards ``toward`` until ``ok(value)`` holds.

    Used to make an optimal point whose constraints are active in exact arithmetic feasible in floating point.
    """
    for _ in range(max_steps):
        if ok(value):
            return value
        value = float(np.nextafter(value, toward))
    raise RuntimeError(f"no feasible value found within {max_steps} steps near {value!r}")


def _check_size(name: str, label: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: {label} must be an integer, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------------------- base class


class _SMD(BenchmarkProblem):
    """Shared machinery: the block split, block bounds and size validation.

    Subclasses set the block bounds as class attributes (pairs ``(lower, upper)`` applied to every component
    of the block) and implement ``_F``, ``_f`` (and ``_G``, ``_g`` when constrained), ``_optimal_point`` and,
    where known, ``_ll_response``.
    """

    suite = "SMD"
    # Smallest admissible size of x_l1 and why (the Rosenbrock term and the cubic constraints need two).
    _min_q = 1
    _min_q_reason = ""
    xu1_bounds = (-5.0, 10.0)
    xu2_bounds = (-5.0, 10.0)
    xl1_bounds = (-5.0, 10.0)
    xl2_bounds = (-5.0, 10.0)

    def __init__(self, ul_dim: int = 5, ll_dim: int = 5):
        name = type(self).__name__
        self.split = self._make_split(name, ul_dim, ll_dim)
        p, q, r, s = self.split
        xu1, xu2, xl1, xl2 = self._block_bounds()
        ul_bounds = (
            np.r_[np.full(p, xu1[0]), np.full(r, xu2[0])],
            np.r_[np.full(p, xu1[1]), np.full(r, xu2[1])],
        )
        ll_bounds = (
            np.r_[np.full(q + s, xl1[0]), np.full(r, xl2[0])],
            np.r_[np.full(q + s, xl1[1]), np.full(r, xl2[1])],
        )
        n_G, n_g = self._constraint_counts()
        self._setup(name, ul_bounds, ll_bounds, n_G, n_g, self._extra_settings())

    # -------------------------------------------------------------- sizes
    def _make_split(self, name: str, ul_dim, ll_dim) -> SMDSplit:
        ul_dim = _check_size(name, "ul_dim", ul_dim)
        ll_dim = _check_size(name, "ll_dim", ll_dim)
        if ul_dim < 2:
            raise ValueError(
                f"{name}: ul_dim must be at least 2 (x_u1 and x_u2 need one variable each), got {ul_dim}"
            )
        r = ul_dim // 2
        q = ll_dim - r
        if q < self._min_q:
            raise ValueError(
                f"{name}: ll_dim must be at least ul_dim // 2 + {self._min_q} = {r + self._min_q} "
                f"(x_l1 has ll_dim - ul_dim // 2 = {q} variables, at least {self._min_q} needed"
                f"{self._min_q_reason}); got ul_dim={ul_dim}, ll_dim={ll_dim}"
            )
        return SMDSplit(p=ul_dim - r, q=q, r=r)

    def _block_bounds(self):
        return self.xu1_bounds, self.xu2_bounds, self.xl1_bounds, self.xl2_bounds

    def _constraint_counts(self) -> tuple[int, int]:
        return 0, 0

    def _extra_settings(self) -> dict:
        return {}

    def _blocks(self, X: np.ndarray, Y: np.ndarray):
        """Views ``x_u1`` (n, p), ``x_u2`` (n, r), ``x_l1`` (n, q + s), ``x_l2`` (n, r) of a batch."""
        p, q, r, s = self.split
        return X[:, :p], X[:, p:], Y[:, : q + s], Y[:, q + s :]

    def _join(self, XL1: np.ndarray, XL2: np.ndarray) -> np.ndarray:
        """Lower-level batch (n, ll_dim) from its blocks, clipped into the bounds (rounding at a bound)."""
        Y = np.concatenate([XL1, XL2], axis=1)
        return np.clip(Y, self.ll_bounds[0], self.ll_bounds[1])


# ------------------------------------------------------------------------------------------- problems


class SMD1(_SMD):
    """SMD1: cooperative levels, a ``tan`` link between ``x_u2`` and ``x_l2``.

    ``F = S(x_u1) + S(x_l1) + S(x_u2) + S(x_u2 - tan x_l2)``, ``f = S(x_u1) + S(x_l1) + S(x_u2 - tan x_l2)``;
    ``x`` in ``[-5, 10]``, ``x_l1`` in ``[-5, 10]``, ``x_l2`` in ``[-pi/2 + EPS, pi/2 - EPS]``. Optimum:
    everything 0, ``F* = f* = 0``. Lower-level response: ``x_l1 = 0``, ``x_l2 = atan(x_u2)`` (unique).

    Parameters
    ----------
    ul_dim, ll_dim : int
        Numbers of upper- and lower-level variables (``ul_dim >= 2``, ``ll_dim >= ul_dim // 2 + 1``).
    """

    xl2_bounds = (-_HALF_PI + EPS, _HALF_PI - EPS)

    def _F(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return _sq(xu1) + _sq(xl1) + _sq(xu2) + _sq(xu2 - np.tan(xl2))

    def _f(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return _sq(xu1) + _sq(xl1) + _sq(xu2 - np.tan(xl2))

    def _optimal_point(self):
        return np.zeros(self.ul_dim), np.zeros(self.ll_dim)

    def _ll_response(self, X):
        p = self.split.p
        return self._join(np.zeros((len(X), self.split.q)), np.arctan(X[:, p:]))


class SMD2(_SMD):
    """SMD2: conflicting levels, a ``log`` link.

    ``F = S(x_u1) - S(x_l1) + S(x_u2) - S(x_u2 - log x_l2)``, ``f = S(x_u1) + S(x_l1) + S(x_u2 - log x_l2)``;
    ``x_u2`` in ``[-5, 1]``, ``x_l2`` in ``[EPS, e]``, the rest in ``[-5, 10]``.
    Optimum: ``x = 0``, ``x_l1 = 0``, ``x_l2 = 1``, ``F* = f* = 0``. Lower-level response: ``x_l1 = 0``,
    ``x_l2 = exp(x_u2)`` (unique).

    Parameters
    ----------
    ul_dim, ll_dim : int
        Numbers of upper- and lower-level variables (``ul_dim >= 2``, ``ll_dim >= ul_dim // 2 + 1``).
    """

    xu2_bounds = (-5.0, 1.0)
    xl2_bounds = (EPS, np.e)

    def _F(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return _sq(xu1) - _sq(xl1) + _sq(xu2) - _sq(xu2 - np.log(xl2))

    def _f(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return _sq(xu1) + _sq(xl1) + _sq(xu2 - np.log(xl2))

    def _optimal_point(self):
        p, q, r, _ = self.split
        return np.zeros(self.ul_dim), np.r_[np.zeros(q), np.ones(r)]

    def _ll_response(self, X):
        p = self.split.p
        return self._join(np.zeros((len(X), self.split.q)), np.exp(X[:, p:]))


class SMD3(_SMD):
    """SMD3: cooperative levels, a multimodal (Rastrigin) lower level.

    ``F = S(x_u1) + S(x_l1) + S(x_u2) + S(x_u2^2 - tan x_l2)``,
    ``f = S(x_u1) + q + sum(x_l1^2 - cos(2 pi x_l1)) + S(x_u2^2 - tan x_l2)``;
    ``x_l2`` in ``[-pi/2 + EPS, pi/2 - EPS]``, the rest in ``[-5, 10]``.
    Optimum: everything 0, ``F* = f* = 0``. Lower-level response: ``x_l1 = 0`` (the Rastrigin minimum),
    ``x_l2 = atan(x_u2^2)`` (unique).

    Parameters
    ----------
    ul_dim, ll_dim : int
        Numbers of upper- and lower-level variables (``ul_dim >= 2``, ``ll_dim >= ul_dim // 2 + 1``).
    """

    xl2_bounds = (-_HALF_PI + EPS, _HALF_PI - EPS)

    def _F(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return _sq(xu1) + _sq(xl1) + _sq(xu2) + _sq(xu2**2 - np.tan(xl2))

    def _f(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return _sq(xu1) + _rastrigin(xl1) + _sq(xu2**2 - np.tan(xl2))

    def _optimal_point(self):
        return np.zeros(self.ul_dim), np.zeros(self.ll_dim)

    def _ll_response(self, X):
        p = self.split.p
        return self._join(np.zeros((len(X), self.split.q)), np.arctan(X[:, p:] ** 2))


class SMD4(_SMD):
    """SMD4: conflicting levels, a multimodal (Rastrigin) lower level.

    ``F = S(x_u1) - S(x_l1) + S(x_u2) - S(|x_u2| - log(1 + x_l2))``,
    ``f = S(x_u1) + q + sum(x_l1^2 - cos(2 pi x_l1)) + S(|x_u2| - log(1 + x_l2))``;
    ``x_u2`` in ``[-1, 1]``, ``x_l2`` in ``[0, e]``, the rest in ``[-5, 10]``.
    Optimum: everything 0, ``F* = f* = 0``. Lower-level response: ``x_l1 = 0``, ``x_l2 = exp(|x_u2|) - 1``
    (unique).

    Parameters
    ----------
    ul_dim, ll_dim : int
        Numbers of upper- and lower-level variables (``ul_dim >= 2``, ``ll_dim >= ul_dim // 2 + 1``).
    """

    xu2_bounds = (-1.0, 1.0)
    xl2_bounds = (0.0, np.e)

    def _F(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return _sq(xu1) - _sq(xl1) + _sq(xu2) - _sq(np.abs(xu2) - np.log1p(xl2))

    def _f(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return _sq(xu1) + _rastrigin(xl1) + _sq(np.abs(xu2) - np.log1p(xl2))

    def _optimal_point(self):
        return np.zeros(self.ul_dim), np.zeros(self.ll_dim)

    def _ll_response(self, X):
        p = self.split.p
        return self._join(np.zeros((len(X), self.split.q)), np.expm1(np.abs(X[:, p:])))


class SMD5(_SMD):
    """SMD5: conflicting levels, a Rosenbrock lower level and two lower-level optima per ``x_l2`` component.

    ``F = S(x_u1) - R(x_l1) + S(x_u2) - S(|x_u2| - x_l2^2)``, ``f = S(x_u1) + R(x_l1) + S(|x_u2| - x_l2^2)``,
    ``R(a) = sum_{i<q} (a_{i+1} - a_i^2)^2 + (a_i - 1)^2``; all variables in ``[-5, 10]``.
    Optimum: ``x = 0``, ``x_l1 = 1``, ``x_l2 = 0``, ``F* = f* = 0``.

    Lower-level response: ``x_l1 = 1`` and ``x_l2 = +sqrt(|x_u2|)``. Each component of ``x_l2`` may equally be
    ``-sqrt(|x_u2|)``; both signs give the same ``F`` and ``f``, and the positive one is returned.

    Parameters
    ----------
    ul_dim, ll_dim : int
        Numbers of upper- and lower-level variables (``ul_dim >= 2``, ``ll_dim >= ul_dim // 2 + 2``: the
        Rosenbrock term needs two variables).
    """

    _min_q = 2
    _min_q_reason = " for the Rosenbrock term"

    def _F(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return _sq(xu1) - _rosenbrock(xl1) + _sq(xu2) - _sq(np.abs(xu2) - xl2**2)

    def _f(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return _sq(xu1) + _rosenbrock(xl1) + _sq(np.abs(xu2) - xl2**2)

    def _optimal_point(self):
        p, q, r, _ = self.split
        return np.zeros(self.ul_dim), np.r_[np.ones(q), np.zeros(r)]

    def _ll_response(self, X):
        p = self.split.p
        return self._join(np.ones((len(X), self.split.q)), np.sqrt(np.abs(X[:, p:])))


class SMD6(_SMD):
    """SMD6: conflicting levels and infinitely many lower-level optima.

    ``x_l1`` has ``q + s`` components: ``a = x_l1[:q]`` and the paired part ``b = x_l1[q:]``, split as

        k = ll_dim - ul_dim // 2,   q = k // 2, s = k - q            if k is odd,
                                    q = k / 2 - 1, s = k / 2 + 1      if k is even,

    so ``(ul_dim, ll_dim) = (2, 3), (5, 5), (10, 10)`` give ``(q, s) = (0, 2), (1, 2), (2, 3)``.

    ``F = S(x_u1) - S(a) + S(b) + S(x_u2) - S(x_u2 - x_l2)``,
    ``f = S(x_u1) + S(a) + sum_j (b_{2j+1} - b_{2j})^2 + S(x_u2 - x_l2)``, the pairs being
    ``(b_0, b_1), (b_2, b_3), ...``; when ``s`` is odd the last component of ``b`` is in no pair and does not
    appear in ``f`` at all. All variables in ``[-5, 10]``. Optimum: everything 0, ``F* = f* = 0``.

    Lower-level response: the optimal set is ``a = 0``, ``x_l2 = x_u2``, every pair equal, the unpaired
    component free. The returned optimum sets every component of ``b`` to 0, which is also the one the leader
    prefers (``F`` grows with ``S(b)``).

    Parameters
    ----------
    ul_dim, ll_dim : int
        Numbers of upper- and lower-level variables (``ul_dim >= 2``, ``ll_dim >= ul_dim // 2 + 2``, so that
        at least one pair exists).
    """

    def _make_split(self, name, ul_dim, ll_dim):
        ul_dim = _check_size(name, "ul_dim", ul_dim)
        ll_dim = _check_size(name, "ll_dim", ll_dim)
        if ul_dim < 2:
            raise ValueError(
                f"{name}: ul_dim must be at least 2 (x_u1 and x_u2 need one variable each), got {ul_dim}"
            )
        r = ul_dim // 2
        k = ll_dim - r
        if k < 2:
            raise ValueError(
                f"{name}: ll_dim must be at least ul_dim // 2 + 2 = {r + 2} (x_l1 has ll_dim - ul_dim // 2 = "
                f"{k} variables, at least 2 needed for one pair); got ul_dim={ul_dim}, ll_dim={ll_dim}"
            )
        # The paper's q = floor(k/2 - eps), s = ceil(k/2 + eps): for even k, one variable moves to the pairs.
        q = k // 2 if k % 2 else k // 2 - 1
        return SMDSplit(p=ul_dim - r, q=q, r=r, s=k - q)

    def _F(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        q = self.split.q
        return _sq(xu1) - _sq(xl1[:, :q]) + _sq(xl1[:, q:]) + _sq(xu2) - _sq(xu2 - xl2)

    def _f(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        q, s = self.split.q, self.split.s
        b = xl1[:, q : q + 2 * (s // 2)]
        return _sq(xu1) + _sq(xl1[:, :q]) + _sq(b[:, 1::2] - b[:, 0::2]) + _sq(xu2 - xl2)

    def _optimal_point(self):
        return np.zeros(self.ul_dim), np.zeros(self.ll_dim)

    def _ll_response(self, X):
        p, q, _, s = self.split
        return self._join(np.zeros((len(X), q + s)), X[:, p:].copy())


class SMD7(_SMD):
    """SMD7: conflicting levels, a multimodal upper level (Griewank-like, with 1/400) and a cubic ``f1``.

    ``F = 1 + S(x_u1)/400 - prod_i cos(x_u1_i / sqrt(i)) - S(x_l1) + S(x_u2) - S(x_u2 - log x_l2)``,
    ``f = sum(x_u1^3) + S(x_l1) + S(x_u2 - log x_l2)``;
    ``x_u2`` in ``[-5, 1]``, ``x_l2`` in ``[EPS, e]``, the rest in ``[-5, 10]``.
    Optimum: ``x = 0``, ``x_l1 = 0``, ``x_l2 = 1``, ``F* = f* = 0``. Lower-level response: ``x_l1 = 0``,
    ``x_l2 = exp(x_u2)`` (unique).

    Parameters
    ----------
    ul_dim, ll_dim : int
        Numbers of upper- and lower-level variables (``ul_dim >= 2``, ``ll_dim >= ul_dim // 2 + 1``).
    """

    xu2_bounds = (-5.0, 1.0)
    xl2_bounds = (EPS, np.e)

    def _F(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        scale = np.sqrt(np.arange(1, xu1.shape[1] + 1))
        F1 = 1.0 + _sq(xu1) / 400.0 - np.prod(np.cos(xu1 / scale), axis=1)
        return F1 - _sq(xl1) + _sq(xu2) - _sq(xu2 - np.log(xl2))

    def _f(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return np.sum(xu1**3, axis=1) + _sq(xl1) + _sq(xu2 - np.log(xl2))

    def _optimal_point(self):
        p, q, r, _ = self.split
        return np.zeros(self.ul_dim), np.r_[np.zeros(q), np.ones(r)]

    def _ll_response(self, X):
        p = self.split.p
        return self._join(np.zeros((len(X), self.split.q)), np.exp(X[:, p:]))


class SMD8(_SMD):
    """SMD8: conflicting levels, a multimodal (Ackley) upper level and a Rosenbrock lower level.

    ``F = 20 + e - 20 exp(-0.2 sqrt(S(x_u1)/p)) - exp(mean(cos(2 pi x_u1))) - R(x_l1) + S(x_u2)
    - S(x_u2 - x_l2^3)``, ``f = sum|x_u1| + R(x_l1) + S(x_u2 - x_l2^3)``, with ``R`` as in :class:`SMD5`;
    all variables in ``[-5, 10]``.
    Optimum: ``x = 0``, ``x_l1 = 1``, ``x_l2 = 0``, ``F* = f* = 0``. Lower-level response: ``x_l1 = 1``,
    ``x_l2 = cbrt(x_u2)`` (unique).

    Parameters
    ----------
    ul_dim, ll_dim : int
        Numbers of upper- and lower-level variables (``ul_dim >= 2``, ``ll_dim >= ul_dim // 2 + 2``: the
        Rosenbrock term needs two variables).
    """

    _min_q = 2
    _min_q_reason = " for the Rosenbrock term"

    def _F(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        p = xu1.shape[1]
        F1 = (
            20.0
            + np.e
            - 20.0 * np.exp(-0.2 * np.sqrt(_sq(xu1) / p))
            - np.exp(np.sum(np.cos(2.0 * np.pi * xu1), axis=1) / p)
        )
        return F1 - _rosenbrock(xl1) + _sq(xu2) - _sq(xu2 - xl2**3)

    def _f(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return np.sum(np.abs(xu1), axis=1) + _rosenbrock(xl1) + _sq(xu2 - xl2**3)

    def _optimal_point(self):
        p, q, r, _ = self.split
        return np.zeros(self.ul_dim), np.r_[np.ones(q), np.zeros(r)]

    def _ll_response(self, X):
        p = self.split.p
        return self._join(np.ones((len(X), self.split.q)), np.cbrt(X[:, p:]))


def _fraction_constraint(T: np.ndarray) -> np.ndarray:
    """SMD9's constraint ``-(T - floor(T + 1/2)) <= 0``: feasible iff T's fractional part is in [0, 1/2)."""
    return -(T - np.floor(T + 0.5))


class SMD9(_SMD):
    """SMD9: conflicting levels with a disconnected feasible region at both levels.

    ``F = S(x_u1) - S(x_l1) + S(x_u2) - S(x_u2 - log(1 + x_l2))``,
    ``f = S(x_u1) + S(x_l1) + S(x_u2 - log(1 + x_l2))``, subject to
    ``G = -(T_u - floor(T_u + 1/2)) <= 0`` with ``T_u = S(x_u1) + S(x_u2)`` and
    ``g = -(T_l - floor(T_l + 1/2)) <= 0`` with ``T_l = S(x_l1) + S(x_l2)`` (the paper's constants
    ``a = b = 1``): a point is feasible iff the fractional part of its squared norm is below 1/2.
    ``x_u2`` in ``[-5, 1]``, ``x_l2`` in ``[-1 + EPS, -1 + e]``, the rest in ``[-5, 10]``.
    Optimum: everything 0, ``F* = f* = 0``.

    No closed-form lower-level response (``ll_response`` returns None): the unconstrained minimiser
    ``x_l1 = 0``, ``x_l2 = exp(x_u2) - 1`` violates ``g`` whenever the fractional part of ``S(exp(x_u2) - 1)``
    is at least 1/2, and since the feasible set is not closed (``frac(T_l) < 1/2``) the lower-level infimum is
    then not always attained.

    Parameters
    ----------
    ul_dim, ll_dim : int
        Numbers of upper- and lower-level variables (``ul_dim >= 2``, ``ll_dim >= ul_dim // 2 + 1``).
    """

    xu2_bounds = (-5.0, 1.0)
    xl2_bounds = (-1.0 + EPS, -1.0 + np.e)

    def _constraint_counts(self):
        return 1, 1

    def _F(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return _sq(xu1) - _sq(xl1) + _sq(xu2) - _sq(xu2 - np.log1p(xl2))

    def _f(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return _sq(xu1) + _sq(xl1) + _sq(xu2 - np.log1p(xl2))

    def _G(self, X, Y):
        return _fraction_constraint(_sq(X))[:, None]

    def _g(self, X, Y):
        return _fraction_constraint(_sq(Y))[:, None]

    def _optimal_point(self):
        return np.zeros(self.ul_dim), np.zeros(self.ll_dim)


class _CubicConstrained(_SMD):
    """SMD10 and SMD12: the cubic constraints ``z_i - sum_{j != i} z_j^3 >= 0`` on ``x_u`` and on ``x_l1``.

    Minimising ``S(z - 2)`` under them gives ``z_i = 1/sqrt(k - 1)`` for all i (k = number of variables):
    every constraint is active and the KKT multipliers, all equal to ``2 - z_i``, are positive.
    """

    _min_q = 2
    _min_q_reason = " for the cubic constraints"
    xl2_bounds = (-_HALF_PI + EPS, _HALF_PI - EPS)

    def _symmetric_optimum(self, k: int) -> float:
        """``1/sqrt(k - 1)``, lowered by rounding steps until the k cubic constraints hold in floats."""
        return _step_until(
            1.0 / np.sqrt(k - 1), lambda t: bool(np.all(_cubic_margin(np.full((1, k), t)) >= 0.0)), 0.0
        )

    @cached_property
    def _xl1_optimum(self) -> float:
        """The lower level's optimal value of every ``x_l1`` component; it does not depend on ``x``."""
        return self._symmetric_optimum(self.split.q)


class SMD10(_CubicConstrained):
    """SMD10: cooperative levels with cubic constraints at both levels; size-dependent optimum.

    ``F = S(x_u1 - 2) + S(x_l1) + S(x_u2 - 2) - S(x_u2 - tan x_l2)``,
    ``f = S(x_u1) + S(x_l1 - 2) + S(x_u2 - tan x_l2)``, subject to the p + r upper-level constraints
    ``G_i = -(x_u_i - sum_{j != i} x_u_j^3) <= 0`` over the whole ``x_u`` and the q lower-level constraints
    ``g_i = -(x_l1_i - sum_{j != i} x_l1_j^3) <= 0``.
    ``x_l2`` in ``[-pi/2 + EPS, pi/2 - EPS]``, the rest in ``[-5, 10]``.

    Optimum: ``x_u = 1/sqrt(p + r - 1)``, ``x_l1 = 1/sqrt(q - 1)``, ``x_l2 = atan(x_u2)``; for
    ``(ul_dim, ll_dim) = (2, 3), (5, 5), (10, 10)``: ``(F*, f*) = (4, 3), (12.75, 5.764719), (29.027778,
    11.805556)``.

    Lower-level response: ``x_l1 = 1/sqrt(q - 1)`` (the lower level is separable and its ``x_l1`` part does
    not depend on ``x``) and ``x_l2 = atan(x_u2)`` (unconstrained).

    Parameters
    ----------
    ul_dim, ll_dim : int
        Numbers of upper- and lower-level variables (``ul_dim >= 2``, ``ll_dim >= ul_dim // 2 + 2``).
    """

    def _constraint_counts(self):
        return self.split.p + self.split.r, self.split.q

    def _F(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return _sq(xu1 - 2.0) + _sq(xl1) + _sq(xu2 - 2.0) - _sq(xu2 - np.tan(xl2))

    def _f(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return _sq(xu1) + _sq(xl1 - 2.0) + _sq(xu2 - np.tan(xl2))

    def _G(self, X, Y):
        return -_cubic_margin(X)

    def _g(self, X, Y):
        return -_cubic_margin(Y[:, : self.split.q])

    def _optimal_point(self):
        x = np.full(self.ul_dim, self._symmetric_optimum(self.ul_dim))
        return x, self._ll_response(x[None, :])[0]

    def _ll_response(self, X):
        p, q, _, _ = self.split
        return self._join(np.full((len(X), q), self._xl1_optimum), np.arctan(X[:, p:]))


class SMD11(_SMD):
    """SMD11: conflicting levels; the lower-level optima form a sphere.

    ``F = S(x_u1) - S(x_l1) + S(x_u2) - S(x_u2 - log x_l2)``, ``f = S(x_u1) + S(x_l1) + S(x_u2 - log x_l2)``,
    subject to the r upper-level constraints ``G_i = -(x_u2_i - 1/sqrt(r) - log x_l2_i) <= 0`` and the
    lower-level constraint ``g = 1 - S(x_u2 - log x_l2) <= 0``.
    ``x_u2`` in ``[-1, 1]``, ``x_l2`` in ``[1/e, e]``, the rest in ``[-5, 10]``.
    Optimum: ``x = 0``, ``x_l1 = 0``, ``x_l2 = exp(-1/sqrt(r))``, ``F* = -1``, ``f* = 1``.

    Lower-level response: the lower-level optima are ``x_l1 = 0`` with ``log x_l2`` anywhere on the unit
    sphere around ``x_u2`` (inside the bounds); ``F`` is the same on all of them, but only
    ``log x_l2 = x_u2 - 1/sqrt(r)`` satisfies the upper-level constraints. That point is returned when it lies
    in the bounds; components with ``x_u2_i < 1/sqrt(r) - 1`` (where no lower-level optimum is upper-level
    feasible) get ``log x_l2_i = x_u2_i + 1/sqrt(r)`` instead, still on the sphere.

    Parameters
    ----------
    ul_dim, ll_dim : int
        Numbers of upper- and lower-level variables (``ul_dim >= 2``, ``ll_dim >= ul_dim // 2 + 1``).
    """

    xu2_bounds = (-1.0, 1.0)
    xl2_bounds = (np.exp(-1.0), np.e)

    def _constraint_counts(self):
        return self.split.r, 1

    def _F(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return _sq(xu1) - _sq(xl1) + _sq(xu2) - _sq(xu2 - np.log(xl2))

    def _f(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return _sq(xu1) + _sq(xl1) + _sq(xu2 - np.log(xl2))

    def _G(self, X, Y):
        _, xu2, _, xl2 = self._blocks(X, Y)
        return -(xu2 - 1.0 / np.sqrt(self.split.r) - np.log(xl2))

    def _g(self, X, Y):
        _, xu2, _, xl2 = self._blocks(X, Y)
        return (1.0 - _sq(xu2 - np.log(xl2)))[:, None]

    def _optimal_point(self):
        x = np.zeros(self.ul_dim)
        return x, self._ll_response(x[None, :])[0]

    def _ll_response(self, X):
        p, q, _, _ = self.split
        XU2 = X[:, p:]
        c = 1.0 / np.sqrt(self.split.r)
        # log x_l2 = x_u2 - D with S(D) = 1; D_i = -c keeps log x_l2_i >= -1 where x_u2_i - c would leave the
        # bounds (x_u2_i + c <= 1 holds there because c <= 1).
        D = np.where(XU2 - c >= -1.0, c, -c)
        Y = self._join(np.zeros((len(X), q)), np.exp(XU2 - D))
        # exp and log round; push rows whose constraint value came out a hair above 0 outwards along D.
        for _ in range(16):
            short = self._g(X, Y)[:, 0] > 0.0
            if not short.any():
                break
            D[short] *= 1.0 + 4.0 * np.finfo(float).eps
            Y[short] = self._join(np.zeros((int(short.sum()), q)), np.exp(XU2[short] - D[short]))
        return Y


class SMD12(_CubicConstrained):
    """SMD12: cubic constraints at both levels, a sphere of lower-level optima and a ``tan|x_l2|`` term.

    ``F = S(x_u1 - 2) + S(x_l1) + S(x_u2 - 2) + sum(tan|x_l2|) - S(x_u2 - tan x_l2)``,
    ``f = S(x_u1) + S(x_l1 - 2) + S(x_u2 - tan x_l2)``, subject to p + 2r upper-level constraints (the p + r
    cubic constraints of :class:`SMD10` on ``x_u``, then ``-(x_u2_i - tan x_l2_i) <= 0``) and q + 1
    lower-level ones (the q cubic constraints on ``x_l1``, then ``1 - S(x_u2 - tan x_l2) <= 0``).

    Bounds: ``x_u1``, ``x_l1`` in ``[-5, 10]``; ``variant="paper"`` (default): ``x_u2`` in ``[-14.1, 14.1]``,
    ``x_l2`` in ``[-1.5 + EPS, 1.5 - EPS]``; ``variant="bleaq2"``: ``x_u2`` in ``[-1, 1]``, ``x_l2`` in
    ``[-pi/4 + EPS, pi/4 - EPS]``, the bounds of the authors' BLEAQ2 code, with which the published SMD12
    results were produced.

    Optimum (the published one): ``x_u = 1/sqrt(p + r - 1)``, ``x_l1 = 1/sqrt(q - 1)``,
    ``x_l2 = atan(x_u2 - 1/sqrt(r))``; for ``(ul_dim, ll_dim) = (2, 3), (5, 5), (10, 10)``:
    ``(F*, f*) = (3, 4), (12.164214, 6.764719), (28.597179, 12.805556)``, in both variants.

    Notes
    -----
    For a given ``x`` the lower-level optima are ``x_l1 = 1/sqrt(q - 1)`` with ``tan x_l2`` anywhere on the
    unit sphere around ``x_u2`` (inside the bounds), and ``F`` differs between them through
    ``sum(tan|x_l2|)``. The published optimum picks ``x_u2 - tan x_l2 = 1/sqrt(r)`` in every component; for
    ``r >= 2`` another lower-level optimum at the same ``x`` that the upper-level constraints accept has a
    lower ``F`` (``x_u2 - tan x_l2 = (a, ..., a, sqrt(1 - (r - 1) a^2))`` with ``a = 1/sqrt(p + r - 1)``:
    ``F = 12.116025`` at (5, 5) and ``28.439800`` at (10, 10)). Under the optimistic reading of the bilevel
    problem the published ``F*`` is therefore not the minimum for ``ul_dim >= 4``; ``f*`` is unaffected.
    ``optimum.F_low`` holds that lower value, and results between the two have no upper-level error.

    No closed-form lower-level response is given (``ll_response`` returns None), because which point of the
    sphere of lower-level optima should be returned is itself an upper-level question.

    Parameters
    ----------
    ul_dim, ll_dim : int
        Numbers of upper- and lower-level variables (``ul_dim >= 2``, ``ll_dim >= ul_dim // 2 + 2``).
    variant : {"paper", "bleaq2"}
        Which bounds of ``x_u2`` and ``x_l2`` to use.
    """

    VARIANTS = ("paper", "bleaq2")

    def __init__(self, ul_dim: int = 5, ll_dim: int = 5, variant: str = "paper"):
        if variant not in self.VARIANTS:
            raise ValueError(f"SMD12: variant must be one of {list(self.VARIANTS)}, got {variant!r}")
        self.variant = variant
        super().__init__(ul_dim, ll_dim)

    def _block_bounds(self):
        if self.variant == "paper":
            xu2, xl2 = (-14.1, 14.1), (-1.5 + EPS, 1.5 - EPS)
        else:
            xu2, xl2 = (-1.0, 1.0), (-0.25 * np.pi + EPS, 0.25 * np.pi - EPS)
        return self.xu1_bounds, xu2, self.xl1_bounds, xl2

    def _extra_settings(self):
        return {"variant": self.variant}

    def _constraint_counts(self):
        return self.split.p + 2 * self.split.r, self.split.q + 1

    def _F(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return (
            _sq(xu1 - 2.0)
            + _sq(xl1)
            + _sq(xu2 - 2.0)
            + np.sum(np.tan(np.abs(xl2)), axis=1)
            - _sq(xu2 - np.tan(xl2))
        )

    def _f(self, X, Y):
        xu1, xu2, xl1, xl2 = self._blocks(X, Y)
        return _sq(xu1) + _sq(xl1 - 2.0) + _sq(xu2 - np.tan(xl2))

    def _G(self, X, Y):
        _, xu2, _, xl2 = self._blocks(X, Y)
        return np.concatenate([-_cubic_margin(X), -(xu2 - np.tan(xl2))], axis=1)

    def _g(self, X, Y):
        _, xu2, xl1, xl2 = self._blocks(X, Y)
        return np.concatenate([-_cubic_margin(xl1), (1.0 - _sq(xu2 - np.tan(xl2)))[:, None]], axis=1)

    def _optimal_point(self):
        r = self.split.r
        x = np.full(self.ul_dim, self._symmetric_optimum(self.ul_dim))

        def point(c):
            return self._optimal_answer(x, c)

        def on_or_outside_sphere(c):
            return bool(np.all(self._g(x[None, :], point(c)[None, :]) <= 0.0))

        # tan(atan(.)) rounds; widen the offset 1/sqrt(r) until the sphere constraint holds in floating point.
        return x, point(_step_until(1.0 / np.sqrt(r), on_or_outside_sphere, np.inf))

    def _preferred_response(self, x):
        # The point of the sphere nearest to x_u2 in the L1 norm that sum(tan|x_l2|) measures: reached along one
        # axis, so x_u2 - tan x_l2 = (a, ..., a, sqrt(1 - (r - 1) a^2)) at x* (a = x_u2_i). None for r = 1, where
        # the sphere meets the upper-level constraints in the published point only.
        xu2 = x[self.split.p:]
        if self.split.r < 2 or np.sum(xu2[:-1] ** 2) >= 1.0:
            return None

        def point(c):
            return self._optimal_answer(x, np.r_[xu2[:-1], c])

        def feasible(c):
            X, Y = x[None, :], point(c)[None, :]
            return bool(np.all(self._g(X, Y) <= 0.0) and np.all(self._G(X, Y) <= 0.0))

        y = point(_step_until(float(np.sqrt(1.0 - np.sum(xu2[:-1] ** 2))), feasible, np.inf))
        lo, hi = self.ll_bounds
        return y if np.all((y >= lo) & (y <= hi)) else None

    def _optimal_answer(self, x, d):
        """The lower-level optimum at ``x`` (ul_dim,) whose point of the sphere is ``x_u2 - tan x_l2 = d``
        (a scalar or (r,)): ``x_l1`` at its optimum, ``x_l2 = atan(x_u2 - d)``."""
        return np.r_[np.full(self.split.q, self._xl1_optimum), np.arctan(x[self.split.p:] - d)]


PROBLEMS = (SMD1, SMD2, SMD3, SMD4, SMD5, SMD6, SMD7, SMD8, SMD9, SMD10, SMD11, SMD12)
"""The suite's problem classes in order."""
