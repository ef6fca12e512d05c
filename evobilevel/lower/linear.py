"""Infeasibility certificates for followers whose constraints are linear in y.

A local search that ends infeasible has found a point of least violation near its start. In general a global
search may still find a feasible point elsewhere; but where the follower's constraints are linear in ``y`` (a
polytope, cut by the box), its feasible set is convex, and the least violation over the whole box is the optimum of
a linear programme built from the constraints' values and slopes at any one point. If that optimum is above zero,
the follower has no feasible answer at that ``x``, and a global search cannot find one.

Black-box constraints are not known to be linear. :func:`linearity_points` gives, per row, its point ``y``, ``d``
forward neighbours (steps of ``LINEAR_STEP`` of each variable's range) and two far points of the box (its centre,
and ``y`` reflected through it); :func:`certify_infeasible` takes the constraint values there, measures the slopes
at ``y``, and counts the constraints as linear where the far points' values agree with the linear prediction to
``LINEAR_TOL``: a curved constraint (a quadratic, a ring, a cube) misses them by far more. Only then does it solve
the linear programme. The answer is as good as the test of linearity, which two far points make hard to pass by
chance; a caller that has seen the test fail once should stop asking (the follower is not linear).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

__all__ = ["LINEAR_STEP", "LINEAR_TOL", "VIOLATION_TOL", "linearity_points", "certify_infeasible"]

#: Difference steps, as a share of each variable's range: exact for a linear constraint at any length, and long
#: enough that rounding (``eps |g| / step``) stays far below ``LINEAR_TOL``.
LINEAR_STEP = 1e-3
#: The far points' constraint values must agree with the linear prediction to this share of the magnitudes
#: involved; for a linear constraint they agree to rounding, about 1e-13 of them.
LINEAR_TOL = 1e-6
#: The least violation the linear programme finds must exceed this share of ``1 + max |g|`` for the follower to
#: count as infeasible: a smaller one is left to the searches.
VIOLATION_TOL = 1e-6


def linearity_points(Y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points at which :func:`certify_infeasible` needs the constraints, per row of Y (n, d).

    Returns
    -------
    P : ndarray, shape (n, d + 3, d)
        Row i: ``Y[i]``, its d forward neighbours ``Y[i] + H[i, j] e_j``, the box's centre, and ``lo + hi - Y[i]``.
    H : ndarray, shape (n, d)
        The steps, turned back where a forward step would leave the box (0 for a variable without range).
    """
    n, d = Y.shape
    H = LINEAR_STEP * (hi - lo) * np.ones((n, 1))
    H = np.where(Y + H > hi, -H, H)
    eye = np.eye(d)
    centre = np.broadcast_to(0.5 * (lo + hi), (n, 1, d))
    P = np.concatenate([Y[:, None, :], Y[:, None, :] + H[:, :, None] * eye, centre, (lo + hi - Y)[:, None, :]],
                       axis=1)
    return np.clip(P, lo, hi), H


def certify_infeasible(Y: np.ndarray, H: np.ndarray, G: np.ndarray, lo: np.ndarray, hi: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Which rows' constraints are linear, and which rows are infeasible everywhere in the box.

    Parameters
    ----------
    Y : ndarray, shape (n, d)
    H : ndarray, shape (n, d)
        The steps of :func:`linearity_points`.
    G : ndarray, shape (n, d + 3, m)
        The constraint values (``<= 0`` feasible) at the points of :func:`linearity_points`; ``inf`` where an
        evaluation failed.
    lo, hi : ndarray, shape (d,)

    Returns
    -------
    linear : ndarray of bool, shape (n,)
        The far points' values agree with the linear prediction from ``Y``'s slopes (False where any value is not
        finite: nothing is known).
    infeasible : ndarray of bool, shape (n,)
        Linear, and the least violation ``min sum(max(g(y), 0))`` over the box, by the linear programme, exceeds
        ``VIOLATION_TOL * (1 + max |g(Y)|)``.
    """
    n, d = Y.shape
    finite = np.isfinite(G).all(axis=(1, 2))
    g0 = G[:, 0, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        J = np.where(H[:, None, :] != 0, (G[:, 1:d + 1, :].transpose(0, 2, 1) - g0[:, :, None]) / H[:, None, :], 0.0)
    far = np.stack([np.broadcast_to(0.5 * (lo + hi), (n, d)), lo + hi - Y], axis=1)  # (n, 2, d)
    far = np.clip(far, lo, hi)
    move = far - Y[:, None, :]
    predicted = g0[:, None, :] + np.einsum("kmd,kpd->kpm", J, move)
    G_far = G[:, d + 1:, :]
    with np.errstate(invalid="ignore"):
        size = np.abs(g0)[:, None, :] + np.abs(G_far) + np.einsum("kmd,kpd->kpm", np.abs(J), np.abs(move))
        linear = finite & np.all(np.abs(G_far - predicted) <= LINEAR_TOL * size, axis=(1, 2))
    infeasible = np.zeros(n, bool)
    for i in np.flatnonzero(linear & (np.maximum(g0, 0.0).sum(axis=1) > 0)):
        infeasible[i] = _least_violation(g0[i], J[i], Y[i], lo, hi) > VIOLATION_TOL * (1 + np.abs(g0[i]).max())
    return linear, infeasible


def _least_violation(g: np.ndarray, J: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """``min sum(max(g + J p, 0))`` over the steps p with ``lo <= y + p <= hi``, as a linear programme in ``(p, s)``:
    minimise ``sum s`` subject to ``J p - s <= -g`` and ``s >= 0``. 0 where the programme cannot be solved (the
    caller then certifies nothing)."""
    m, d = J.shape
    cost = np.concatenate([np.zeros(d), np.ones(m)])
    A = np.hstack([J, -np.eye(m)])
    bounds = list(zip(lo - y, hi - y)) + [(0.0, None)] * m
    result = linprog(cost, A_ub=A, b_ub=-g, bounds=bounds, method="highs")
    return float(result.fun) if result.status == 0 else 0.0
