"""Benchmark problems: the SMD suite (SMD1-SMD12, scalable), the TP suite (TP1-TP10), mixed-integer problems
from the literature (MI1-MI3) and a problem with several followers (MF1).

>>> import evobilevel as eb
>>> p = eb.benchmarks.get("SMD1", ul_dim=5, ll_dim=5)
>>> eb.benchmarks.names()[:3]
['SMD1', 'SMD2', 'SMD3']
"""

from __future__ import annotations

from .base import BenchmarkProblem
from .registry import from_settings, get, names, suite_of

__all__ = ["BenchmarkProblem", "get", "names", "suite_of", "from_settings"]
