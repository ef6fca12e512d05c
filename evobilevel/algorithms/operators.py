"""Upper-level variation operators and the archive of lower-level solutions, shared by the algorithms."""

from __future__ import annotations

import numpy as np

__all__ = ["de_current_to_pbest", "repair_midpoint", "SolutionArchive"]


def de_current_to_pbest(
    pop: np.ndarray, ranks: np.ndarray, rng: np.random.Generator, p_best: float = 0.2,
    weight_range: tuple[float, float] = (0.4, 0.8), crossover_rate: float = 0.9,
) -> np.ndarray:
    """DE/current-to-pbest/1/bin trial vectors, one per member.

    Pulls each member towards a random one of the best ``p_best`` share (fast on unimodal landscapes) and adds
    a random difference (keeps diversity on multimodal ones). The weight is drawn per member ("dither").

    Parameters
    ----------
    pop : ndarray, shape (n, d)
    ranks : ndarray of int, shape (n,)
        0 = best.
    rng : Generator

    Returns
    -------
    ndarray, shape (n, d)
        Trial vectors, not yet repaired to the bounds.
    """
    n, d = pop.shape
    n_best = max(1, int(round(p_best * n)))
    best_idx = np.argsort(ranks)[:n_best]
    pbest = pop[rng.choice(best_idx, size=n)]
    # Two distinct partners per member, both different from the member itself.
    r1 = (np.arange(n) + rng.integers(1, n, size=n)) % n
    r2 = (r1 + rng.integers(1, n - 1, size=n)) % n if n > 2 else r1
    r2 = np.where(r2 == np.arange(n), (r2 + 1) % n, r2)
    weight = rng.uniform(*weight_range, size=(n, 1))
    mutant = pop + weight * (pbest - pop) + weight * (pop[r1] - pop[r2])
    cross = rng.random((n, d)) < crossover_rate
    cross[np.arange(n), rng.integers(0, d, size=n)] = True  # at least one gene from the mutant
    return np.where(cross, mutant, pop)


def repair_midpoint(trial: np.ndarray, parent: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Put coordinates outside ``[lo, hi]`` halfway between the parent's value and the violated bound."""
    trial = np.where(trial < lo, 0.5 * (parent + lo), trial)
    return np.where(trial > hi, 0.5 * (parent + hi), trial)


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
    """Recent lower-level optima ``(x, y*, f*)``, for warm starts and response models.

    Distances are measured in ``x`` scaled to the unit box.

    Parameters
    ----------
    ul_bounds : (ndarray, ndarray)
    ll_dim : int
    capacity : int
    """

    def __init__(self, ul_bounds: tuple[np.ndarray, np.ndarray], ll_dim: int, capacity: int = 5000):
        lo, hi = ul_bounds
        super().__init__(capacity, X=lo.shape[0], Y=ll_dim, f=None)
        self.scale = np.where(hi > lo, hi - lo, 1.0)

    def nearest(self, X: np.ndarray, k: int = 1) -> np.ndarray:
        """Indices (n, min(k, size)) of the stored entries nearest to each row of X (n, ul_dim), nearest first."""
        d2 = ((((X[:, None, :] - self.X[None, :, :]) / self.scale)) ** 2).sum(axis=2)
        k = min(k, self.size)
        idx = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < self.size else np.tile(np.arange(self.size), (len(X), 1))
        order = np.take_along_axis(d2, idx, axis=1).argsort(axis=1)
        return np.take_along_axis(idx, order, axis=1)

    def warm_starts(self, X: np.ndarray, k: int = 1) -> np.ndarray | None:
        """The y* of the k nearest stored x for each row: shape (n, k, ll_dim), or None when empty."""
        if self.size == 0:
            return None
        return self.Y[self.nearest(X, k)]

    def replace(self, x: np.ndarray, y: np.ndarray, f: float) -> None:
        """Correct the entries stored for exactly ``x`` (a better lower-level optimum was found there)."""
        same = np.all(self.X == x, axis=1)
        self._data["Y"][: self.size][same] = y
        self._data["f"][: self.size][same] = f
