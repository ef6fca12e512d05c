"""Plain values: what settings, results and run identities look like in JSON, so that a stored value and a fresh
one compare equal exactly when they mean the same."""

from __future__ import annotations

import math
from dataclasses import fields, is_dataclass

import numpy as np

__all__ = ["plain"]


def plain(value):
    """JSON's view of a value.

    Arrays and tuples become lists, numpy scalars Python numbers, non-finite floats ``None`` (strict JSON has no
    NaN or inf), dictionary keys strings, and a dataclass a dictionary of its fields under ``"type"`` (its class
    name). An object with a ``settings()`` method is described by its settings, any other object by its type.
    Idempotent: ``plain(plain(v)) == plain(v)``.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__, **{f.name: plain(getattr(value, f.name)) for f in fields(value)}}
    if callable(getattr(value, "settings", None)):
        return plain(value.settings())
    return {"type": type(value).__qualname__}
