"""Finding a problem by name: a benchmark (``SMD1``) or a Python file that defines a :class:`Problem`."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from . import benchmarks
from .parallel import send_module_by_value
from .problem import Problem

__all__ = ["load_problem"]


def load_problem(spec: str, **sizes) -> Problem:
    """A problem from a benchmark name or a ``.py`` file.

    Parameters
    ----------
    spec : str
        A name from ``evobilevel.benchmarks.names()`` or the path of a Python file that defines either a
        module-level ``problem`` (a :class:`Problem`) or a function ``make_problem(**sizes)`` returning one.
    **sizes
        Passed to the benchmark (``ul_dim``, ``ll_dim``, ``variant``) or to ``make_problem``; ``None`` values are
        dropped.

    Raises
    ------
    ValueError
        Unknown name, missing file, or a file that defines no problem.
    """
    sizes = {k: v for k, v in sizes.items() if v is not None}
    if spec.endswith(".py") or Path(spec).is_file():
        return _from_file(Path(spec), sizes)
    return benchmarks.get(spec, **sizes)


def _from_file(path: Path, sizes: dict) -> Problem:
    if not path.is_file():
        raise ValueError(f"problem file {path} does not exist")
    module_name = "evobilevel_problem_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    # Worker processes cannot import a file by path, so its functions travel by value.
    send_module_by_value(module)
    if hasattr(module, "make_problem"):
        problem = module.make_problem(**sizes)
    elif hasattr(module, "problem"):
        if sizes:
            raise ValueError(f"{path} defines a fixed `problem`; sizes {sorted(sizes)} need make_problem(**sizes)")
        problem = module.problem
    else:
        raise ValueError(f"{path} defines neither `problem` nor `make_problem()`")
    if not isinstance(problem, Problem):
        raise ValueError(f"{path}: the problem must be an evobilevel.Problem, got {type(problem).__name__}")
    return problem
