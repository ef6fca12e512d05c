"""Bounded memories of a run: the newest rows of named arrays, and the archive of lower-level optima that warm
starts and response models are drawn from."""

from __future__ import annotations

import numpy as np

from ..space import widths

__all__ = ["RingBuffer", "SolutionArchive"]


class RingBuffer:
    """The newest ``capacity`` rows of several named arrays, so memory stays bounded on long runs.

    Parameters
    ----------
    capacity : int
    widths : dict
        Name -> number of columns, or None for a 1-D array.
    """

    def __init__(self, capacity: int, **widths: int | None):
        self.capacity = int(capacity)
        self._data = {k: np.empty(self.capacity if w is None else (self.capacity, w)) for k, w in widths.items()}
        self.size = 0
        self._next = 0

    def __getattr__(self, name: str) -> np.ndarray:
        data = self.__dict__.get("_data", {})
        if name in data:
            return data[name][: self.size]
        raise AttributeError(name)

    def add(self, **rows: np.ndarray) -> None:
        """Append rows (each array's first axis is the row), overwriting the oldest when full."""
        n = len(next(iter(rows.values())))
        if n == 0:
            return
        keep = slice(max(0, n - self.capacity), n)
        idx = (self._next + np.arange(n)[keep] - keep.start) % self.capacity
        for k, v in rows.items():
            self._data[k][idx] = np.asarray(v)[keep]
        self._next = int((idx[-1] + 1) % self.capacity)
        self.size = min(self.size + idx.size, self.capacity)


class SolutionArchive(RingBuffer):
    """Recent lower-level optima ``(x, y*, f*)``, for warm starts and response models, with the curvature of f per
    lower-level variable that the refinement learnt at each (NaN where none), for the refinements of nearby
    problems.

    Distances are measured in ``x`` scaled to the unit box.

    Parameters
    ----------
    ul_bounds : (ndarray, ndarray)
    ll_dim : int
    capacity : int
    """

    def __init__(self, ul_bounds: tuple[np.ndarray, np.ndarray], ll_dim: int, capacity: int = 5000):
        super().__init__(capacity, X=ul_bounds[0].shape[0], Y=ll_dim, f=None, curvature=ll_dim)
        self.scale = widths(ul_bounds)

    def add(self, X: np.ndarray, Y: np.ndarray, f: np.ndarray, curvature: np.ndarray | None = None) -> None:
        """Append optima: X (n, ul_dim), Y (n, ll_dim), f (n,), and the curvature (n, ll_dim) learnt at them
        (NaN: none, the default)."""
        if curvature is None:
            curvature = np.full(np.shape(Y), np.nan)
        super().add(X=X, Y=Y, f=f, curvature=curvature)

    def nearest(self, X: np.ndarray, k: int = 1) -> np.ndarray:
        """Indices (n, min(k, size)) of the stored entries nearest to each row of X (n, ul_dim), nearest first."""
        # Row by row: the same arithmetic as one (n, size, ul_dim) array, without that array (a third of the time).
        stored = self.X
        d2 = np.array([(((x - stored) / self.scale) ** 2).sum(axis=1) for x in X]).reshape(len(X), self.size)
        k = min(k, self.size)
        idx = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < self.size else np.tile(np.arange(self.size), (len(X), 1))
        order = np.take_along_axis(d2, idx, axis=1).argsort(axis=1)
        return np.take_along_axis(idx, order, axis=1)

    def nearest_curvature(self, X: np.ndarray) -> np.ndarray | None:
        """The curvature stored with the nearest x for each row of X (n, ul_dim): shape (n, ll_dim), NaN where
        that entry has none; None when the archive is empty or holds no curvature at all."""
        if self.size == 0 or np.isnan(self.curvature).all():
            return None
        return self.curvature[self.nearest(X, 1)[:, 0]]

    def warm_starts(self, X: np.ndarray, k: int = 1) -> np.ndarray | None:
        """The y* of the k nearest stored x for each row: shape (n, k, ll_dim), or None when empty."""
        if self.size == 0:
            return None
        return self.Y[self.nearest(X, k)]

    def replace(self, x: np.ndarray, y: np.ndarray, f: float | None) -> None:
        """Correct the entries stored for exactly ``x`` (a better lower-level optimum was found there); ``f=None``
        keeps their values."""
        same = np.all(self.X == x, axis=1)
        self._data["Y"][: self.size][same] = y
        if f is not None:
            self._data["f"][: self.size][same] = f
