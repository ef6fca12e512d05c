"""Results of a run: :class:`Result`, its :class:`History`, and JSON (de)serialisation with atomic writes."""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .followers import FollowerResult
from .front import Front
from .plain import plain

__all__ = ["Result", "History", "load_result", "write_json_atomic", "write_bytes_atomic"]


class History:
    """One record per upper-level generation: cumulative evaluations, best values, errors, time.

    Records are dicts with at least ``generation, n_ul_evals, n_ll_evals, best_F, best_f, ul_error, ll_error,
    elapsed``; algorithms may add their own keys (e.g. how many lower-level solves a model replaced). Only the
    last ``max_records`` records are kept, thinned evenly beyond that, so long runs use bounded memory.
    """

    def __init__(self, records: list[dict] | None = None, max_records: int = 10_000):
        self.records: list[dict] = list(records or [])
        self.max_records = max_records

    def append(self, record: dict) -> None:
        self.records.append(record)
        if len(self.records) > self.max_records:
            # Keep the first and the newest records and every other one in between: the curve keeps its shape.
            self.records = self.records[:1] + self.records[1:-1:2] + self.records[-1:]

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __getitem__(self, i):
        return self.records[i]

    def column(self, key: str) -> np.ndarray:
        """The values of one key over all records, as a float array (NaN where a record lacks it or is None)."""
        return np.array([_float_or_nan(r.get(key)) for r in self.records], dtype=float)

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.records:
            seen.update(dict.fromkeys(r))
        return list(seen)

    def to_columns(self) -> dict[str, list]:
        """Column-wise form used in JSON: ``{key: [value per record]}``."""
        return {k: [plain(r.get(k)) for r in self.records] for k in self.keys()}

    @classmethod
    def from_columns(cls, columns: dict[str, list]) -> History:
        n = max((len(v) for v in columns.values()), default=0)
        return cls([{k: v[i] for k, v in columns.items()} for i in range(n)])


@dataclass
class Result:
    """The outcome of :func:`evobilevel.solve`.

    Attributes
    ----------
    x : ndarray, shape (ul_dim,)
        Best upper-level-feasible point found; ``y`` is the lower-level solution found for it.
    y : ndarray, shape (ll_dim,)
    F, f : float
        Upper- and lower-level objective values at ``(x, y)``. For a leader with k objectives ``F`` is an ndarray
        of shape (k,), and ``(x, y)`` the most balanced pair of ``front`` (see
        :func:`evobilevel.front.compromise`), since a front has no best one.
    feasible : bool
        Whether ``(x, y)`` satisfies the constraints of both levels.
    success : bool
        ``target`` reached (when given, with a lower-level gap below it) or converged by the algorithm's rule.
    message : str
        Why the run stopped.
    n_ul_evals, n_ll_evals : int
        Evaluated points per level (surrogate predictions are not evaluations).
    ll_gap : float or None
        ``f(x, y) - f(x, y_check)`` clipped at 0, where ``y_check`` comes from an independent, stronger lower-level
        solve at ``x``; its evaluations are ``n_ll_evals_check``, not counted in ``n_ll_evals``. With a front, the
        largest gap of its pairs (each pair's is in ``front.ll_gap``).
    ul_error, ll_error : float or None
        ``|F - F*|`` and ``|f - f*|`` when the optimum is known.
    interrupted : bool
        The run was stopped by ``KeyboardInterrupt``.
    max_ul_evals, max_ll_evals : int or None
        The budgets the run was given.
    max_time : float or None
        The wall-time budget in seconds.
    integrality : dict or None
        ``{"ul": [...], "ll": [...]}``, the problem's integrality masks, where it has integer variables.
    followers : list of FollowerResult or None
        With several followers, each one's answer ``y`` (its block of ``y``), value ``f``, evaluations and gap;
        ``f`` is then their sum, ``n_ll_evals`` their total and ``ll_gap`` the largest gap.
    history : History
    front : Front or None
        For a leader with several objectives: the feasible, non-dominated pairs found, with their lower-level gaps.
    """

    problem: str
    problem_settings: dict
    algorithm: str
    algorithm_settings: dict
    seed: int | None
    n_jobs: int
    x: np.ndarray
    y: np.ndarray
    F: float
    f: float
    feasible: bool
    success: bool
    message: str
    n_ul_evals: int
    n_ll_evals: int
    n_ll_evals_check: int = 0
    ll_gap: float | None = None
    ul_error: float | None = None
    ll_error: float | None = None
    target: float | None = None
    target_reached: bool = False
    interrupted: bool = False
    max_ul_evals: int | None = None
    max_ll_evals: int | None = None
    max_time: float | None = None
    n_ul_failed: int = 0
    n_ll_failed: int = 0
    first_error: str | None = None
    integrality: dict | None = None
    followers: list | None = None
    elapsed: float = 0.0
    version: str = ""
    history: History = field(default_factory=History)
    front: Front | None = None

    def __repr__(self) -> str:
        errors = ""
        if self.ul_error is not None:
            errors = f", ul_error={self.ul_error:.3g}, ll_error={self.ll_error:.3g}"
        if self.front is not None:
            errors += f", front of {len(self.front)}"
        return (
            f"Result({self.problem}, F={_values(self.F)}, f={self.f:.6g}{errors}, n_ul_evals={self.n_ul_evals}, "
            f"n_ll_evals={self.n_ll_evals}, success={self.success}, message={self.message!r})"
        )

    def summary(self) -> str:
        """A few human-readable lines: the answer, its errors and the evaluation counts."""
        fmt = np.array2string
        lines = [
            f"problem     {self.problem} {self.problem_settings}",
            f"algorithm   {self.algorithm} (seed {self.seed}, n_jobs {self.n_jobs})",
            f"x           {fmt(self.x, precision=6)}",
            f"y           {fmt(self.y, precision=6)}",
            f"F, f        {_values(self.F, 8)}, {self.f:.8g}   feasible: {self.feasible}",
        ]
        if self.front is not None:
            lines.append(f"front       {len(self.front)} non-dominated pairs (F, f, x, y above: the most balanced)")
        if self.ul_error is not None:
            lines.append(f"errors      |F - F*| = {self.ul_error:.3e}, |f - f*| = {self.ll_error:.3e}")
        if self.ll_gap is not None:
            largest = "largest over the front; " if self.front is not None else ""
            lines.append(f"ll_gap      {self.ll_gap:.3e} ({largest}check solve: {self.n_ll_evals_check} LL "
                         "evaluations)")
        lines.append(f"evaluations UL {self.n_ul_evals}, LL {self.n_ll_evals}")
        for part in self.followers or ():
            lines.append(part.summary())
        if self.n_ul_failed or self.n_ll_failed:
            lines.append(f"failed      UL {self.n_ul_failed}, LL {self.n_ll_failed}; first: {self.first_error}")
        lines.append(f"status      success={self.success}: {self.message} ({self.elapsed:.2f} s)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d = {}
        for fl in fields(self):
            value = getattr(self, fl.name)
            d[fl.name] = value.to_columns() if isinstance(value, History) else plain(value)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        known = {fl.name for fl in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        kwargs["x"] = np.asarray(kwargs["x"], dtype=float)
        kwargs["y"] = np.asarray(kwargs["y"], dtype=float)
        for key in ("F", "f"):
            if isinstance(kwargs[key], list):  # a leader with several objectives
                kwargs[key] = np.array([_float_or_nan(v) for v in kwargs[key]])
            else:
                kwargs[key] = _float_or_nan(kwargs[key])
        if kwargs.get("followers") is not None:
            kwargs["followers"] = [FollowerResult.from_dict(part) for part in kwargs["followers"]]
        kwargs["history"] = History.from_columns(kwargs.get("history") or {})
        if kwargs.get("front") is not None:
            kwargs["front"] = Front.from_dict(kwargs["front"])
        return cls(**kwargs)

    def to_json(self, path) -> None:
        """Write the result as JSON, atomically (a crash never leaves a half-written file)."""
        write_json_atomic(path, self.to_dict())


def load_result(path) -> Result:
    """Read a result written by :meth:`Result.to_json`.

    Raises
    ------
    FileNotFoundError
    ValueError
        The file is not JSON, or not an evobilevel result (the message names the file and what is wrong).
    """
    return read_run(path)[1]


def read_run(path) -> tuple[dict, Result]:
    """The raw JSON data of a result file (with whatever a caller stored beside the result) and the Result;
    ValueError naming the file where it is not one."""
    with open(path, encoding="utf-8") as fh:
        try:
            data = json.load(fh)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not an evobilevel result: not JSON ({exc})") from None
    missing = [key for key in ("problem", "algorithm", "x", "y", "F", "f") if not isinstance(data, dict)
               or key not in data]
    if missing:
        raise ValueError(f"{path} is not an evobilevel result: it has no {', '.join(missing)}")
    try:
        return data, Result.from_dict(data)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{path} is not a readable evobilevel result ({type(exc).__name__}: {exc})") from None


def write_json_atomic(path, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` via a temporary file in the same folder and a rename."""
    write_bytes_atomic(path, json.dumps(data, indent=1, allow_nan=False).encode("utf-8"))


def write_bytes_atomic(path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` via a temporary file in the same folder and a rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _values(F, digits: int = 6) -> str:
    """``F`` for display: one number, or a bracketed list of a leader's several objectives."""
    if np.ndim(F) == 0:
        return f"{F:.{digits}g}"
    return "[" + ", ".join(f"{v:.{digits}g}" for v in np.asarray(F)) + "]"


def _float_or_nan(value) -> float:
    return math.nan if value is None else float(value)
