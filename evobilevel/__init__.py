"""evobilevel: black-box bilevel optimisation with evolutionary algorithms.

>>> import evobilevel as eb
>>> p = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)
>>> r = eb.solve(p, algorithm="nested", seed=0, target=1e-2)   # doctest: +SKIP
"""

from . import algorithms, benchmarks, plot
from ._version import __version__
from .problem import Optimum, Problem
from .result import History, Result, load_result
from .runner import solve

__all__ = ["solve", "Problem", "Optimum", "Result", "History", "load_result", "benchmarks", "algorithms", "plot",
           "__version__"]
