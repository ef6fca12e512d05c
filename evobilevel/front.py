"""The Pareto front of a leader with several objectives: the non-dominated pairs ``(x, y)`` a run found, each with
its follower's answer, and the dominance tests that select them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Front", "non_dominated", "compromise"]


@dataclass
class Front:
    """Non-dominated pairs ``(x, y)`` of a leader with k objectives; row i is one pair.

    Attributes
    ----------
    X : ndarray, shape (n, ul_dim)
        The leader's choices.
    Y : ndarray, shape (n, ll_dim)
        The follower's answer to each.
    F : ndarray, shape (n, k)
        The leader's objectives at ``(x, y)``.
    f : ndarray, shape (n,)
        The follower's objective at ``(x, y)``.
    ll_gap : ndarray, shape (n,), or None
        ``f(x, y) - f(x, y_check)`` clipped at 0 for every pair, ``y_check`` from an independent, stronger
        lower-level solve at its ``x`` (None when the check was not run).
    """

    X: np.ndarray
    Y: np.ndarray
    F: np.ndarray
    f: np.ndarray
    ll_gap: np.ndarray | None = None

    def __len__(self) -> int:
        return self.F.shape[0]

    @classmethod
    def from_dict(cls, d: dict) -> Front:
        """The front from its JSON form (``plain(front)``, as results are written)."""
        X, Y, F = (np.asarray(d[name], dtype=float) for name in ("X", "Y", "F"))
        n = F.shape[0]
        gap = d.get("ll_gap")
        return cls(X=X.reshape(n, -1), Y=Y.reshape(n, -1), F=F.reshape(n, -1),
                   f=_floats(d["f"]), ll_gap=None if gap is None else _floats(gap))


def _floats(values) -> np.ndarray:
    """A 1-D float array from JSON values (None, as JSON writes non-finite numbers, becomes NaN)."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Which rows of F (n, k) no other row dominates (all objectives minimised).

    A row dominates another when it is no worse in every objective and better in at least one; equal rows do not
    dominate each other, so duplicates are all kept.

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    F = np.asarray(F, dtype=float)
    if F.shape[0] == 0:
        return np.zeros(0, bool)
    no_worse = (F[:, None, :] <= F[None, :, :]).all(axis=2)  # [i, j]: i is no worse than j everywhere
    better = (F[:, None, :] < F[None, :, :]).any(axis=2)
    dominated = (no_worse & better).any(axis=0)
    return ~dominated


def compromise(F: np.ndarray) -> int:
    """The most balanced row of F (n, k), n >= 1: the one whose worst objective, each scaled to [0, 1] over the
    rows, is best (ties: the first).

    This is the pair a run with several leader objectives reports as ``result.x, result.y, result.F``; a front has
    no best pair.
    """
    F = np.asarray(F, dtype=float)
    low, span = F.min(axis=0), np.ptp(F, axis=0)
    scaled = (F - low) / np.where(span > 0, span, 1.0)
    return int(np.argmin(scaled.max(axis=1)))
