"""Forward-difference slopes of black-box functions, as the scipy-driven local searches use them."""

from __future__ import annotations

import numpy as np

__all__ = ["PENALTY", "forward_steps"]

#: What scipy sees instead of a failed evaluation: a finite value lets its line searches back off instead of
#: carrying inf or NaN into the quasi-Newton update (the searches' own best-point tracking still sees the failure).
PENALTY = 1e30


def forward_steps(y: np.ndarray, steps: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The step per variable for forward differences at y (d,): ``steps`` (d,), flipped to a backward step where a
    forward one would leave the box at ``hi``."""
    return np.where(y + steps > hi, -steps, steps)
