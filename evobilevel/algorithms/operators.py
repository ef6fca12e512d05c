"""Upper-level variation operators shared by the algorithms."""

from __future__ import annotations

import numpy as np

__all__ = ["de_current_to_pbest", "repair_midpoint"]


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
