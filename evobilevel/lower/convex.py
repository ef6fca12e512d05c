"""Convexity certificates for followers whose problem is a convex quadratic programme in y.

Where the follower's objective is a quadratic in ``y`` with a positive semidefinite Hessian and its constraints are
linear in ``y``, every local optimum is global: a search from scratch finds nothing that a local refinement from
any start does not. Whether a black box is such a programme at a given ``x`` can be told from its values at a
fixed set of points of the box (:func:`stencil`): a central-difference stencil of half-width ``STENCIL_SHARE`` of
each range around the box's centre determines a quadratic exactly (its value, slopes and Hessian), and two far
points, placed asymmetrically, must agree with it to ``QUADRATIC_TOL``; a curved constraint or an objective that is
not quadratic (a ``tan``, a cosine, a cube) misses them by orders of magnitude. The answer is as good as that test,
which two far points make hard to pass by chance.
"""

from __future__ import annotations

import numpy as np

__all__ = ["STENCIL_SHARE", "QUADRATIC_TOL", "stencil", "certify_convex"]

#: Half-width of the stencil, as a share of each variable's range: the stencil's points, centre +- h e_i and
#: centre + h (e_i + e_j), stay inside the box, and second differences over such steps round at about 1e-15 of the
#: values.
STENCIL_SHARE = 0.25
#: The far points' values must agree with the stencil's quadratic (the constraints' with their linear part) to this
#: share of the magnitudes involved; the Hessian's least eigenvalue must be at least minus this share of its largest.
QUADRATIC_TOL = 1e-8


def stencil(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The points (p, d) at which :func:`certify_convex` needs the follower's values, for bounds ``lo``, ``hi`` (d,):
    the box's centre c, ``c + h e_i`` and ``c - h e_i`` for each variable, ``c + h (e_i + e_j)`` for each pair
    ``i < j``, and two far points, ``p = (d + 1)(d + 2) / 2 + 2`` in all."""
    d = lo.shape[0]
    c, h = 0.5 * (lo + hi), STENCIL_SHARE * (hi - lo)
    eye = np.eye(d)
    i, j = np.triu_indices(d, k=1)
    pairs = c + h * (eye[i] + eye[j])
    t = np.linspace(0.0, 1.0, d) if d > 1 else np.zeros(1)
    far = lo + (hi - lo) * np.stack([0.1 + 0.7 * t, 0.95 - 0.6 * t])
    return np.vstack([c, c + h * eye, c - h * eye, pairs, far])


def certify_convex(F: np.ndarray, G: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which rows were measured, and at which the follower's problem is a convex quadratic programme in y.

    Parameters
    ----------
    F : ndarray, shape (n, p)
        The objective at the points of :func:`stencil`, per row (``inf`` where an evaluation failed).
    G : ndarray, shape (n, p, m)
        The constraints there (``<= 0`` feasible).
    lo, hi : ndarray, shape (d,)

    Returns
    -------
    measured : ndarray of bool, shape (n,)
        Every value finite.
    convex : ndarray of bool, shape (n,)
        Measured, and the objective and every constraint a quadratic (as far as the far points tell) whose Hessian
        is positive semidefinite: a convex objective over a convex feasible set (linear constraints are the case
        of a zero Hessian).
    """
    d = lo.shape[0]
    measured = np.isfinite(F).all(axis=1) & np.isfinite(G).all(axis=(1, 2))
    T = np.concatenate([F[:, :, None], G], axis=2)  # (n, p, 1 + m): the objective, then the constraints
    T = np.where(measured[:, None, None], T, 0.0)
    quadratic, H = _quadratic_misfit(T, lo, hi, d)
    # The Hessians scaled by the stencil's steps (h_i H_ij h_j, in the outputs' units, as congruent as H): their
    # least eigenvalue against the values' magnitude, so that the rounding of a linear output's zero Hessian passes.
    h = STENCIL_SHARE * (hi - lo)
    scaled = np.moveaxis(H, 3, 1) * (h[:, None] * h[None, :])
    least = np.linalg.eigvalsh(scaled).min(axis=2)  # (n, 1 + m)
    size = np.maximum(np.abs(T).max(axis=1), np.finfo(float).tiny)  # (n, 1 + m)
    psd = least >= -QUADRATIC_TOL * size
    return measured, measured & quadratic.all(axis=1) & psd.all(axis=1)


def _quadratic_misfit(T: np.ndarray, lo: np.ndarray, hi: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row and output (n, k): whether the far points agree with the quadratic the stencil determines; and that
    quadratic's Hessians (n, d, d, k)."""
    c, h = 0.5 * (lo + hi), STENCIL_SHARE * (hi - lo)
    t0, plus, minus = T[:, 0], T[:, 1:d + 1], T[:, d + 1:2 * d + 1]
    i, j = np.triu_indices(d, k=1)
    pairs = T[:, 2 * d + 1:2 * d + 1 + i.size]
    far = T[:, -2:]
    slope = (plus - minus) / (2 * h[None, :, None])
    H = np.zeros((T.shape[0], d, d, T.shape[2]))
    k = np.arange(d)
    H[:, k, k] = (plus - 2 * t0[:, None] + minus) / (h[None, :, None] ** 2)
    off = (pairs - plus[:, i] - plus[:, j] + t0[:, None]) / (h[i] * h[j])[None, :, None]
    H[:, i, j], H[:, j, i] = off, off
    move = stencil(lo, hi)[-2:] - c  # (2, d)
    predicted = (t0[:, None] + np.einsum("pd,ndk->npk", move, slope)
                 + 0.5 * np.einsum("pd,ndek,pe->npk", move, H, move))
    size = (np.abs(t0)[:, None] + np.abs(far) + np.einsum("pd,ndk->npk", np.abs(move), np.abs(slope))
            + 0.5 * np.einsum("pd,ndek,pe->npk", np.abs(move), np.abs(H), np.abs(move)))
    return np.all(np.abs(far - predicted) <= QUADRATIC_TOL * size, axis=1), H
