"""Integer variables: scipy's ``integrality`` masks, checked against the bounds, and the rounding that keeps every
point a solver proposes exactly integral where the mask says so.

A mask has scipy's name and meaning (``scipy.optimize.differential_evolution(integrality=...)``): one boolean per
variable, ``True`` for a variable restricted to whole numbers; a single boolean applies to every variable. The
bounds of an integer variable are narrowed to the whole numbers they hold (``[0.5, 3.7]`` becomes ``[1, 3]``), so
that a point clipped into the bounds and rounded stays inside them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["IntegralityError", "check_integrality", "integrality_record", "integer_bounds", "integer_mask",
           "round_integral", "search_box", "lattice_size", "lattice"]


class IntegralityError(ValueError):
    """A mask that does not fit its bounds."""


def check_integrality(mask, bounds: tuple[np.ndarray, np.ndarray], what: str) -> np.ndarray:
    """Validate an integrality mask against the bounds it refers to.

    Parameters
    ----------
    mask : None, bool, or array_like of bool (or of 0/1), shape (d,)
        ``None`` for no integer variable; one boolean applies to every variable (as scipy broadcasts it).
    bounds : (ndarray, ndarray)
        The variables' bounds, each of shape (d,).
    what : str
        The argument's name, for messages (``"ll_integrality"``).

    Returns
    -------
    ndarray of bool, shape (d,)
        Read-only.

    Raises
    ------
    IntegralityError
        A mask of the wrong length or with values other than booleans (0/1), or an integer variable whose bounds
        hold no whole number.
    """
    lo, hi = bounds
    d = lo.shape[0]
    if mask is None:
        out = np.zeros(d, bool)
    else:
        values = np.asarray(mask)
        if values.dtype != bool:
            if values.dtype.kind not in "iuf" or not np.all(np.isin(values, (0, 1))):
                raise IntegralityError(f"{what} must hold booleans (True for an integer variable), got {mask!r}")
            values = values.astype(bool)
        if values.ndim > 1 or (values.ndim == 1 and values.shape[0] != d):
            raise IntegralityError(f"{what} has length {values.size}, expected {d} (one entry per variable of its "
                                   "bounds)")
        out = np.broadcast_to(values, (d,)).copy()
    empty = np.flatnonzero(out & (np.ceil(lo) > np.floor(hi)))
    if empty.size:
        i = empty[0]
        raise IntegralityError(f"{what}: variable {i} is integer but its bounds [{lo[i]:g}, {hi[i]:g}] hold no whole "
                               "number")
    out.setflags(write=False)
    return out


def integer_bounds(bounds: tuple[np.ndarray, np.ndarray], mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bounds with each integer variable's range narrowed to the whole numbers it holds (read-only arrays)."""
    if not mask.any():
        return bounds
    lo = np.where(mask, np.ceil(bounds[0]), bounds[0])
    hi = np.where(mask, np.floor(bounds[1]), bounds[1])
    lo.setflags(write=False)
    hi.setflags(write=False)
    return lo, hi


def integer_mask(problem, level: str = "lower") -> np.ndarray | None:
    """The integrality mask of one level of ``problem`` (``"upper"`` or ``"lower"``), or ``None`` when that level
    has no integer variable (then nothing needs rounding)."""
    mask = getattr(problem, "ul_integrality" if level == "upper" else "ll_integrality", None)
    return mask if mask is not None and mask.any() else None


def round_integral(Y: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``Y`` (..., d) with the coordinates of ``mask`` (d,) rounded to the nearest whole number; ``Y`` itself
    when ``mask`` is None. Within integer bounds the rounded value stays within them; NaN stays NaN."""
    if mask is None:
        return Y
    return np.where(mask, np.round(Y), Y)


def search_box(bounds: tuple[np.ndarray, np.ndarray], mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The box a search samples and moves in before rounding: each integer variable's range widened by just under
    one half on each side, so that rounding a uniform sample gives every whole number in it the same chance (the
    bounds themselves would get half the chance of the numbers between them)."""
    if mask is None:
        return bounds
    lo, hi = bounds
    return (np.where(mask, np.nextafter(lo - 0.5, hi), lo), np.where(mask, np.nextafter(hi + 0.5, lo), hi))


def lattice_size(bounds: tuple[np.ndarray, np.ndarray]) -> float:
    """The number of integer points in the box ``bounds`` (integer bounds), as a float (it may be huge)."""
    lo, hi = bounds
    return float(np.prod(hi - lo + 1.0))


def lattice(bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Every integer point of the box ``bounds`` (integer bounds): shape (lattice_size, d), the last variable
    running fastest."""
    lo, hi = bounds
    axes = [np.arange(a, b + 1.0) for a, b in zip(lo, hi)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(axes))


def integrality_record(problem) -> dict | None:
    """The integrality masks of a problem as stored with its results, ``{"ul": [...], "ll": [...]}``; None when
    no variable is integer."""
    ul, ll = integer_mask(problem, "upper"), integer_mask(problem, "lower")
    if ul is None and ll is None:
        return None
    return {"ul": [bool(v) for v in problem.ul_integrality], "ll": [bool(v) for v in problem.ll_integrality]}
