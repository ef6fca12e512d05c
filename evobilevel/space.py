"""The search space of one level: box bounds as users write them, the widths distances are measured in, and
space-filling samples of the box."""

from __future__ import annotations

import numpy as np

__all__ = ["BoundsError", "parse_bounds", "widths", "latin_hypercube"]


class BoundsError(ValueError):
    """Bounds that cannot be read, or that could be read in two ways."""


def parse_bounds(bounds, what: str = "bounds") -> tuple[np.ndarray, np.ndarray]:
    """Read box bounds written in any of the usual forms, as two float arrays ``(lower, upper)``.

    Accepted forms, for d variables:

    - ``(lower, upper)``: two sequences of length d (evobilevel's and pymoo's form);
    - a sequence of d pairs ``(low, high)`` (scipy's ``minimize(bounds=...)`` form);
    - a :class:`scipy.optimize.Bounds` object (or anything with ``lb`` and ``ub`` attributes).

    Two numpy arrays are always ``(lower, upper)``. Otherwise two variables written either way give a 2 x 2
    table, which both readings accept. A reading is taken only
    when it is the only one with ``lower <= upper`` everywhere and no pinned variable (``lower == upper``); when
    both readings qualify and differ, or when the one that qualifies only does so by pinning a variable, the
    bounds are refused with a message that names both readings. Pinning is never silent: ``[(-5, 5), (-5, 5)]``
    means two variables in ``[-5, 5]``, because the other reading would fix both.

    Parameters
    ----------
    bounds : tuple, sequence of pairs, or scipy.optimize.Bounds
    what : str
        The argument's name, for messages.

    Returns
    -------
    lower, upper : ndarray, shape (d,)
        Not validated further (see :func:`evobilevel.problem.check_bounds` for finiteness and order).

    Raises
    ------
    BoundsError
    """
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        return _as_vector(bounds.lb, what), _as_vector(bounds.ub, what)
    if isinstance(bounds, (tuple, list)) and len(bounds) == 2 and all(isinstance(b, np.ndarray) for b in bounds):
        return _lower_upper_pair(bounds, what)  # two arrays: lower and upper, whatever their length
    try:
        table = np.asarray(bounds, dtype=float)
    except (TypeError, ValueError):
        table = None
    if table is None or table.ndim != 2:
        return _lower_upper_pair(bounds, what)
    rows, cols = table.shape
    if rows == 2 and cols != 2:
        return table[0].copy(), table[1].copy()
    if cols == 2 and rows != 2:
        return table[:, 0].copy(), table[:, 1].copy()
    if rows != 2:
        raise BoundsError(f"{what} must be (lower, upper) or a sequence of (low, high) pairs, got shape {table.shape}")
    return _two_by_two(table, what)


def _lower_upper_pair(bounds, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(lower, upper)`` where the two parts are scalars or sequences of one length."""
    try:
        lower, upper = bounds
    except (TypeError, ValueError):
        raise BoundsError(f"{what} must be a pair (lower, upper) of arrays, a sequence of (low, high) pairs or "
                          f"scipy.optimize.Bounds, got {bounds!r}") from None
    return _as_vector(lower, what), _as_vector(upper, what)


def _as_vector(value, what: str) -> np.ndarray:
    try:
        return np.atleast_1d(np.asarray(value, dtype=float))
    except (TypeError, ValueError):
        raise BoundsError(f"{what} must hold numbers, got {value!r}") from None


def _two_by_two(table: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Decide between the two readings of a 2 x 2 table of bounds (see :func:`parse_bounds`)."""
    readings = {
        "(lower, upper)": (table[0].copy(), table[1].copy()),
        "(low, high) pairs": (table[:, 0].copy(), table[:, 1].copy()),
    }
    if not np.all(np.isfinite(table)):
        return readings["(lower, upper)"]  # refused for what it is: bounds must be finite
    clean = [name for name, (lo, hi) in readings.items() if np.all(lo < hi)]
    if len(clean) == 1 or (len(clean) == 2 and np.array_equal(table[0], table[:, 0])
                           and np.array_equal(table[1], table[:, 1])):
        return readings[clean[0]]
    described = "; ".join(f"as {name}: lower={lo.tolist()}, upper={hi.tolist()}" for name, (lo, hi) in readings.items())
    reason = ("both readings are valid" if len(clean) == 2 else
              "each reading pins a variable (lower == upper) or has lower > upper")
    raise BoundsError(f"{what} {table.tolist()} is ambiguous: {reason} ({described}). Pass "
                      "scipy.optimize.Bounds(lower, upper), or (lower, upper) as two numpy arrays, to say which "
                      "is meant")


def widths(bounds) -> np.ndarray:
    """The width ``upper - lower`` of each variable's range (d,), 1 where it is zero (a fixed variable), so that
    distances and errors can be measured as fractions of the range."""
    lo, hi = bounds
    return np.where(hi > lo, hi - lo, 1.0)


def latin_hypercube(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, n: int,
                    batch: tuple[int, ...] = ()) -> np.ndarray:
    """Latin-hypercube samples of the box ``[lo, hi]``: each variable's range is cut into n equal slices, and
    each slice holds one of the n points.

    Parameters
    ----------
    rng : Generator
    lo, hi : ndarray, shape (d,)
    n : int
        Points per sample.
    batch : tuple of int
        Independent samples to draw at once (for a batch of lower-level problems).

    Returns
    -------
    ndarray, shape batch + (n, d)
    """
    shape = (*batch, n, lo.shape[0])
    strata = np.argsort(rng.random(shape), axis=-2)
    return lo + (strata + rng.random(shape)) / n * (hi - lo)
