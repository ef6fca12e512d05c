"""evobilevel: black-box bilevel optimisation with evolutionary algorithms."""

from . import benchmarks
from .problem import Optimum, Problem

__version__ = "0.1.0"

__all__ = ["Problem", "Optimum", "benchmarks", "__version__"]
