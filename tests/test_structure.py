"""The shape of the code: small classes and functions, and a light ``import evobilevel``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "evobilevel"
MAX_CLASS_LINES = 250
MAX_FUNCTION_LINES = 60


def _docstring_lines(node) -> int:
    """Lines of the docstrings of ``node`` and of everything defined in it."""
    total = 0
    for sub in ast.walk(node):
        if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and sub.body:
            first = sub.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                total += first.end_lineno - first.lineno + 1
    return total


def _sizes():
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1 - _docstring_lines(node)
                yield f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}", node, lines


def test_no_class_over_250_lines_and_no_function_over_60():
    too_long = [f"{where} ({lines} lines)" for where, node, lines in _sizes()
                if lines > (MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES)]
    assert not too_long, "too long (docstrings aside): " + "; ".join(too_long)


@pytest.mark.parametrize("heavy", ["matplotlib", "pymoo", "joblib", "evobilevel.experiment", "evobilevel.report",
                                   "evobilevel.plot", "evobilevel.cli", "evobilevel.bridge"])
def test_import_evobilevel_leaves_the_heavy_modules_alone(heavy):
    code = f"import sys, evobilevel; print({heavy!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_plot_loads_on_first_use_and_the_pymoo_adapter_only_when_asked_for():
    code = ("import sys, evobilevel as eb; first = 'evobilevel.plot' in sys.modules; eb.plot; "
            "from evobilevel import lower; lower.default_solver(); before = 'pymoo' in sys.modules; "
            "lower.PymooSolver; print(first, 'evobilevel.plot' in sys.modules, before, 'pymoo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "False", "True"]
