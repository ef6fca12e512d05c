"""evobilevel: black-box bilevel optimisation with evolutionary algorithms.

>>> import evobilevel as eb
>>> p = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)
>>> r = eb.solve(p, algorithm="nested", seed=0, target=1e-2)   # doctest: +SKIP

``import evobilevel`` loads numpy and the package's own core; matplotlib (``eb.plot``), joblib (parallel runs),
pymoo (its adapter) and the benchmark harness are imported when first used.
"""

from . import algorithms, benchmarks
from ._version import __version__
from .followers import Follower
from .problem import Optimum, Problem
from .result import History, Result, load_result
from .runner import solve

__all__ = ["solve", "Problem", "Follower", "Optimum", "Result", "History", "load_result", "benchmarks", "algorithms",
           "plot", "__version__"]


def __getattr__(name: str):
    if name == "plot":  # imported on first use: it loads matplotlib
        import importlib

        return importlib.import_module(f"{__name__}.plot")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
