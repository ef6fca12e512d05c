"""notebooks/: stored without outputs, and each one runs top to bottom in a fresh kernel of this interpreter.

The notebooks run on a copy of notebooks/ and problems/ in a temporary folder (they read ``../problems`` and
write ``figures/``), so that running the tests never changes the repository. The kernel is started from a
kernel spec made here that points at ``sys.executable``: a ``python3`` kernel installed elsewhere on the machine
(another interpreter, without evobilevel) cannot be picked up by mistake.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["quickstart", "benchmark_comparison", "custom_black_box"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A copy of notebooks/ and problems/, side by side as in the repository."""
    root = tmp_path_factory.mktemp("notebooks")
    for folder, pattern in (("notebooks", "*.ipynb"), ("problems", "*.py")):
        (root / folder).mkdir()
        for path in (ROOT / folder).glob(pattern):
            shutil.copy(path, root / folder / path.name)
    return root


@pytest.fixture(scope="module")
def this_interpreter_kernel(tmp_path_factory):
    """Make the ``python3`` kernel spec resolve to this interpreter (JUPYTER_PATH is searched first)."""
    jupyter = tmp_path_factory.mktemp("jupyter")
    spec = jupyter / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (evobilevel tests)",
        "language": "python",
    }))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(jupyter))
        yield


def _text(nb) -> str:
    """Every text output of the executed notebook, joined."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if "text" in out:
                parts.append(out["text"])
            for key in ("text/plain", "text/markdown"):
                if key in out.get("data", {}):
                    parts.append(out["data"][key])
    return "\n".join(parts)


def _n_images(nb) -> int:
    return sum("image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stored_without_outputs(name):
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_readme_shows_the_quickstart_figure():
    readme = (ROOT / "README.md").read_text()
    assert "notebooks/figures/quickstart_convergence.png" in readme
    assert (ROOT / "notebooks" / "figures" / "quickstart_convergence.png").stat().st_size > 10_000
    for name in NOTEBOOKS:
        assert f"notebooks/{name}.ipynb" in readme


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom(name, workdir, this_interpreter_kernel):
    nb = nbformat.read(workdir / "notebooks" / f"{name}.ipynb", as_version=4)
    # One extra cell, in memory only: which interpreter ran the notebook.
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(workdir / "notebooks")}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails

    assert nb.cells[-1].outputs[0]["text"].strip() == sys.executable
    text = _text(nb)
    if name == "quickstart":
        assert "success=True" in text
        assert (workdir / "notebooks" / "figures" / "quickstart_convergence.png").stat().st_size > 10_000
        assert _n_images(nb) >= 1
    elif name == "benchmark_comparison":
        assert "9 runs in" in text and "0 failed" in text
        assert "Against published medians" in text
        assert _n_images(nb) >= 3
    else:
        assert "n_jobs 2" in text and "first: RuntimeError: demand model not calibrated" in text
        assert "retailer 3: y [" in text and "feasible: True" in text  # the supply chain with three followers
        assert _n_images(nb) >= 2
