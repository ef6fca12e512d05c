"""Look-up of the benchmark problems by name.

>>> from evobilevel.benchmarks import registry
>>> registry.names()[:2], registry.suite_of("tp3")
(['SMD1', 'SMD2'], 'TP')
>>> registry.get("SMD12", ul_dim=2, ll_dim=3, variant="bleaq2").optimum.F
3.0
"""

from __future__ import annotations

import inspect

from . import followers, mixed_integer, mo, smd, tp
from .base import BenchmarkProblem

__all__ = ["names", "get", "suite_of", "from_settings"]

_CLASSES: dict[str, type[BenchmarkProblem]] = {
    cls.__name__: cls
    for cls in (*smd.PROBLEMS, *tp.PROBLEMS, *mixed_integer.PROBLEMS, *followers.PROBLEMS, *mo.PROBLEMS)
}
_BY_KEY = {name.upper(): name for name in _CLASSES}


def names() -> list[str]:
    """All benchmark problem names: SMD1..SMD12, TP1..TP10, the mixed-integer MI1..MI4, the multi-follower MF1,
    then BMO1..BMO3 (a leader with several objectives)."""
    return list(_CLASSES)


def _canonical(name) -> str:
    if not isinstance(name, str) or name.strip().upper() not in _BY_KEY:
        raise ValueError(f"unknown benchmark problem {name!r}; valid names: {', '.join(_CLASSES)}")
    return _BY_KEY[name.strip().upper()]


def suite_of(name: str) -> str:
    """The suite (``"SMD"``, ``"TP"``, ``"MI"``, ``"MF"`` or ``"BMO"``) of a problem name (case-insensitive)."""
    return _CLASSES[_canonical(name)].suite


def _parameters(cls) -> list[str]:
    return [p for p in inspect.signature(cls).parameters if p != "self"]


def get(name: str, **kwargs) -> BenchmarkProblem:
    """Create a benchmark problem.

    Parameters
    ----------
    name : str
        A name from :func:`names`, in any case.
    **kwargs
        The problem's own arguments: ``ul_dim``, ``ll_dim`` for SMD1-SMD12 (default 5 and 5), also ``variant``
        (``"paper"`` or ``"bleaq2"``) for SMD12, ``dim`` for TP9 and TP10, none for TP1-TP8, MI1-MI4 and MF1,
        ``ul_dim``, ``ll_dim`` for BMO1-BMO3 (default (3, 3), BMO3 (4, 3)).

    Returns
    -------
    BenchmarkProblem

    Raises
    ------
    ValueError
        For an unknown name, an argument the problem does not take, or sizes the problem does not allow.
    """
    canonical = _canonical(name)
    cls = _CLASSES[canonical]
    accepted = _parameters(cls)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        takes = ", ".join(accepted) if accepted else "no arguments (its size is fixed)"
        raise ValueError(f"{canonical}: unknown argument(s) {', '.join(unknown)}; it takes {takes}")
    return cls(**kwargs)


def from_settings(name: str, settings: dict) -> BenchmarkProblem:
    """Re-create a problem from its name and its ``settings`` (as stored with a result).

    ``settings`` always hold ``ul_dim`` and ``ll_dim``; for the fixed-size TP problems they are checked
    against the problem's sizes instead of being passed on, and for TP9 and TP10 they become ``dim``.

    Raises
    ------
    ValueError
        If the settings do not describe an instance of the problem.
    """
    canonical = _canonical(name)
    kwargs = dict(settings)
    accepted = _parameters(_CLASSES[canonical])
    if "ul_dim" not in accepted:
        ul_dim, ll_dim = kwargs.pop("ul_dim", None), kwargs.pop("ll_dim", None)
        if "dim" in accepted and "dim" not in kwargs and ul_dim is not None:
            if ll_dim is not None and ll_dim != ul_dim:
                raise ValueError(f"{canonical}: needs ul_dim == ll_dim, got {ul_dim} and {ll_dim}")
            kwargs["dim"] = ul_dim
        problem = get(canonical, **kwargs)
        for label, stored, actual in (("ul_dim", ul_dim, problem.ul_dim), ("ll_dim", ll_dim, problem.ll_dim)):
            if stored is not None and stored != actual:
                raise ValueError(f"{canonical}: {label} is {actual}, settings say {stored}")
        return problem
    return get(canonical, **kwargs)
