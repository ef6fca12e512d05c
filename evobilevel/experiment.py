"""Benchmark grids: problems x sizes x algorithms x runs, run in parallel, one JSON file per run, resumable.

>>> from evobilevel.experiment import expand_problems
>>> expand_problems("SMD1-SMD3,TP2")
['SMD1', 'SMD2', 'SMD3', 'TP2']

A grid writes every run to its own file,
``DIR/<problem>_<ul_dim>x<ll_dim>[_<variant>]/<algorithm>/run<k>.json``, atomically, from the worker that ran it.
Running the same grid again skips every run whose file exists and loads, so an interrupted grid loses at most the
runs that were in flight, and a finished grid can be extended (more runs, problems or algorithms) in place.
``DIR/manifest.json`` describes the latest grid run in ``DIR``.

Each run's seed is derived from the base seed, the problem instance and the run index only: it does not depend
on the other runs of the grid, so a run gives the same numbers in any grid, and all algorithms meet the same
seeds on the same instance (common random numbers, which make paired comparisons sharper).
"""

from __future__ import annotations

import hashlib
import inspect
import re
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import benchmarks
from ._version import __version__
from .algorithms import Algorithm, make_algorithm
from .budget import check_budgets
from .parallel import run_tasks
from .plain import plain
from .result import read_run, write_json_atomic
from .runner import check_target, solve

__all__ = [
    "Grid",
    "RunSpec",
    "RunOutcome",
    "BenchSummary",
    "expand_problems",
    "run_seed",
    "run_grid",
    "GridConflict",
    "MANIFEST",
]

MANIFEST = "manifest.json"
"""Name of the grid description written into a results directory."""

_RANGE = re.compile(r"^([A-Za-z_]+)(\d+)\s*-\s*([A-Za-z_]*)(\d+)$")


def expand_problems(problems: str | Iterable[str]) -> list[str]:
    """Benchmark names from a list with ranges, e.g. ``"SMD1-SMD12,TP1-TP5"`` or ``["SMD1-4", "TP3"]``.

    Parameters
    ----------
    problems : str or iterable of str
        Comma-separated names and ranges ``<prefix><i>-[<prefix>]<j>`` (inclusive, any case).

    Returns
    -------
    list of str
        Canonical names, in the order given, without duplicates.

    Raises
    ------
    ValueError
        For an unknown name, a range over unknown names, a reversed range, or an empty list.
    """
    items = [problems] if isinstance(problems, str) else list(problems)
    parts = [part.strip() for item in items for part in str(item).split(",") if part.strip()]
    known = {name.upper(): name for name in benchmarks.names()}
    out: list[str] = []
    for part in parts:
        for name in _expand_one(part, known):
            if name not in out:
                out.append(name)
    if not out:
        raise ValueError("no problems given")
    return out


def _expand_one(part: str, known: dict[str, str]) -> list[str]:
    if part.upper() in known:
        return [known[part.upper()]]
    match = _RANGE.match(part)
    if match is None:
        raise ValueError(f"unknown benchmark problem {part!r}; valid names: {', '.join(known.values())}")
    prefix, first, prefix_end, last = match.groups()
    if prefix_end and prefix_end.upper() != prefix.upper():
        raise ValueError(f"problem range {part!r} mixes the prefixes {prefix} and {prefix_end}")
    first, last = int(first), int(last)
    if first > last:
        raise ValueError(f"problem range {part!r} runs backwards")
    names = [f"{prefix.upper()}{i}" for i in range(first, last + 1)]
    missing = [name for name in names if name not in known]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ValueError(f"problem range {part!r} includes unknown problem(s) {shown}; "
                         f"valid names: {', '.join(known.values())}")
    return [known[name] for name in names]


def run_seed(base_seed: int, instance: str, run: int) -> int:
    """The seed of one run, from the grid's base seed, the problem instance and the run index.

    A stable hash (SHA-256, not Python's salted ``hash``), so the same run gets the same seed on any machine and
    in any grid.

    Parameters
    ----------
    base_seed : int
        The grid's seed (non-negative).
    instance : str
        The problem instance key, e.g. ``"SMD1_2x3"`` (see :attr:`RunSpec.instance`).
    run : int
        The run index, 0-based.

    Returns
    -------
    int
        A seed in ``[0, 2**63)``.
    """
    _check_seed(base_seed)
    key = f"evobilevel-bench|{int(base_seed)}|{instance}|{int(run)}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1


def _check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, float)) or int(seed) != seed or seed < 0:
        raise ValueError(f"the base seed must be a non-negative integer, got {seed!r}")


@dataclass(frozen=True)
class RunSpec:
    """One run of a grid.

    Attributes
    ----------
    problem : str
        Canonical benchmark name.
    problem_kwargs : tuple of (str, value)
        Arguments of ``evobilevel.benchmarks.get`` for this instance (sizes, variant).
    ul_dim, ll_dim : int
        The instance's sizes.
    variant : str or None
        The instance's variant (only for problems that have one, e.g. SMD12).
    algorithm : str
        The algorithm's label in the grid (its name, unless the grid gave it another label).
    run : int
        Run index, 0-based.
    seed : int
        The run's seed, from :func:`run_seed`.
    """

    problem: str
    problem_kwargs: tuple
    ul_dim: int
    ll_dim: int
    variant: str | None
    algorithm: str
    run: int
    seed: int

    @property
    def instance(self) -> str:
        """The instance key used in folder names, e.g. ``"SMD1_2x3"`` or ``"SMD12_5x5_bleaq2"``."""
        return _instance_key(self.problem, self.ul_dim, self.ll_dim, self.variant)

    def path(self, root) -> Path:
        """The run's JSON file under the results directory ``root``."""
        return Path(root) / self.instance / self.algorithm / f"run{self.run}.json"


def _instance_key(problem: str, ul_dim: int, ll_dim: int, variant: str | None) -> str:
    key = f"{problem}_{ul_dim}x{ll_dim}"
    return f"{key}_{variant}" if variant else key


@dataclass
class Grid:
    """A benchmark grid: every problem instance x algorithm x run.

    Parameters
    ----------
    problems : str or sequence of str
        Benchmark names and ranges, e.g. ``"SMD1-SMD12,TP1-TP5"`` (see :func:`expand_problems`).
    sizes : sequence of (int, int)
        ``(ul_dim, ll_dim)`` pairs for the scalable problems (SMD). Fixed-size problems (TP1-TP8) run once at
        their own size; TP9 and TP10 run at every size with ``ul_dim == ll_dim``.
    algorithms : sequence or mapping
        Algorithm names (``["bleaq", "nested"]``), or ``{label: name or configured Algorithm}`` to compare
        settings of one algorithm under different labels.
    runs : int or sequence of int
        Number of runs (indices ``0 .. runs-1``) or the run indices themselves.
    seed : int
        Base seed; each run's seed is :func:`run_seed` of it.
    target : float, optional
        Stop each run at ``|F - F*| < target`` and ``|f - f*| < target`` (the benchmark protocol).
    max_ul_evals, max_ll_evals : int, optional
        Evaluation budgets of each run.
    variant : str, optional
        Benchmark variant for the problems that take one (``"bleaq2"`` for SMD12); ignored by the others.
    """

    problems: str | Sequence[str]
    sizes: Sequence[tuple[int, int]] = ((5, 5),)
    algorithms: Sequence[str] | Mapping[str, str | Algorithm] = ("nested",)
    runs: int | Sequence[int] = 11
    seed: int = 0
    target: float | None = None
    max_ul_evals: int | None = None
    max_ll_evals: int | None = None
    variant: str | None = None
    _algorithms: dict[str, Algorithm] = field(init=False, repr=False)

    def __post_init__(self):
        self.problems = expand_problems(self.problems)
        self.sizes = [_check_size(size) for size in self.sizes]
        if not self.sizes:
            raise ValueError("no sizes given")
        self._algorithms = _algorithm_objects(self.algorithms)
        self.runs = _run_indices(self.runs)
        _check_seed(self.seed)
        check_target(self.target)
        check_budgets(self.max_ul_evals, self.max_ll_evals)

    @property
    def algorithm_objects(self) -> dict[str, Algorithm]:
        """``{label: configured Algorithm}``."""
        return dict(self._algorithms)

    @property
    def protocol(self) -> dict:
        """The settings every run shares and that a finished run must match to be reused."""
        return {"base_seed": int(self.seed), "target": self.target, "max_ul_evals": self.max_ul_evals,
                "max_ll_evals": self.max_ll_evals}

    def instances(self) -> list[tuple[str, dict]]:
        """The problem instances, as ``(name, kwargs of benchmarks.get)``, each once.

        Raises
        ------
        ValueError
            When a problem fits none of the sizes or a size is invalid for a problem.
        """
        out: dict[str, tuple[str, dict]] = {}
        for name in self.problems:
            fitting = [kw for size in self.sizes if (kw := _instance_kwargs(name, size, self.variant)) is not None]
            if not fitting:
                sizes = ", ".join(f"{ul}x{ll}" for ul, ll in self.sizes)
                raise ValueError(f"{name} takes ul_dim == ll_dim only; none of the sizes {sizes} fits")
            for kwargs in fitting:
                problem = benchmarks.get(name, **kwargs)  # raises ValueError for sizes the problem does not allow
                settings = problem.settings
                key = _instance_key(name, problem.ul_dim, problem.ll_dim, settings.get("variant"))
                out.setdefault(key, (name, kwargs))
        return list(out.values())

    def run_specs(self) -> list[RunSpec]:
        """Every run of the grid, instance by instance, then algorithm, then run index."""
        specs = []
        for name, kwargs in self.instances():
            problem = benchmarks.get(name, **kwargs)
            variant = problem.settings.get("variant")
            instance = _instance_key(name, problem.ul_dim, problem.ll_dim, variant)
            for label in self._algorithms:
                for run in self.runs:
                    specs.append(RunSpec(name, tuple(sorted(kwargs.items())), problem.ul_dim, problem.ll_dim,
                                         variant, label, run, run_seed(self.seed, instance, run)))
        return specs

    def manifest(self) -> dict:
        """A JSON-ready description of the grid."""
        return {
            "evobilevel_version": __version__,
            "problems": list(self.problems),
            "sizes": [list(size) for size in self.sizes],
            "variant": self.variant,
            "algorithms": {label: {"name": algo.name, "settings": plain(algo.settings())}
                           for label, algo in self._algorithms.items()},
            "runs": list(self.runs),
            **self.protocol,
        }


def _check_size(size) -> tuple[int, int]:
    try:
        ul_dim, ll_dim = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"a size must be a pair (ul_dim, ll_dim), got {size!r}") from None
    if ul_dim < 1 or ll_dim < 1:
        raise ValueError(f"sizes must be positive, got {size!r}")
    return ul_dim, ll_dim


def _run_indices(runs) -> list[int]:
    indices = list(range(int(runs))) if isinstance(runs, (int, float)) else [int(r) for r in runs]
    if not indices or any(r < 0 for r in indices) or len(set(indices)) != len(indices):
        raise ValueError(f"runs must be a positive count or distinct non-negative indices, got {runs!r}")
    return indices


def _algorithm_objects(algorithms) -> dict[str, Algorithm]:
    """``{label: Algorithm}`` from names, configured objects, or a mapping of labels to either."""
    if isinstance(algorithms, (str, Algorithm)):
        algorithms = [algorithms]
    if isinstance(algorithms, Mapping):
        pairs = [(str(label).strip(), spec) for label, spec in algorithms.items()]
    else:
        pairs = [(a.strip().lower() if isinstance(a, str) else a.name, a) for a in algorithms]
    out = {}
    for label, spec in pairs:
        if not re.fullmatch(r"[\w.+-]+", label):
            raise ValueError(f"algorithm label {label!r} must be a non-empty name of letters, digits, . + - _")
        if label in out:
            raise ValueError(f"algorithm {label!r} is given twice")
        out[label] = make_algorithm(spec.strip() if isinstance(spec, str) else spec)
    if not out:
        raise ValueError("no algorithms given")
    return out


def _instance_kwargs(name: str, size: tuple[int, int], variant: str | None) -> dict | None:
    """Arguments of ``benchmarks.get`` for ``name`` at ``size``; ``None`` when the problem cannot take it."""
    accepted = inspect.signature(type(benchmarks.get(name))).parameters
    ul_dim, ll_dim = size
    kwargs: dict = {}
    if "ul_dim" in accepted:
        kwargs = {"ul_dim": ul_dim, "ll_dim": ll_dim}
    elif "dim" in accepted:
        if ul_dim != ll_dim:
            return None
        kwargs = {"dim": ul_dim}
    if variant is not None and "variant" in accepted:
        kwargs["variant"] = variant
    return kwargs


@dataclass
class RunOutcome:
    """What became of one run of :func:`run_grid`.

    Attributes
    ----------
    spec : RunSpec
    path : Path
    status : str
        ``"done"`` (run now), ``"skipped"`` (its file already existed) or ``"failed"`` (an exception; no file).
    success : bool or None
        The run's ``Result.success`` (None when failed).
    elapsed : float
        Seconds the run took (0 when skipped).
    error : str or None
        The traceback of a failed run.
    """

    spec: RunSpec
    path: Path
    status: str
    success: bool | None = None
    elapsed: float = 0.0
    error: str | None = None


@dataclass
class BenchSummary:
    """The outcome of :func:`run_grid`.

    Attributes
    ----------
    directory : Path
    outcomes : list of RunOutcome
        One per run that finished, was skipped or failed (all runs of the grid unless interrupted).
    n_total : int
        Runs in the grid.
    elapsed : float
        Wall time of this call, in seconds.
    interrupted : bool
        Stopped by Ctrl-C; the runs without an outcome did not finish.
    """

    directory: Path
    outcomes: list[RunOutcome]
    n_total: int
    elapsed: float = 0.0
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def text(self) -> str:
        """A few lines for the terminal."""
        total = self.n_total
        done, skipped, failed = self.count("done"), self.count("skipped"), self.count("failed")
        finished = [o for o in self.outcomes if o.status in ("done", "skipped")]
        n_success = sum(bool(o.success) for o in finished)
        lines = [f"{total} runs in {self.directory}: {done} run now ({self.elapsed:.1f} s), {skipped} already "
                 f"done, {failed} failed; {n_success} of {len(finished)} finished runs successful"]
        if self.interrupted:
            missing = total - len(finished)
            lines.append(f"interrupted: {missing} runs not finished; run the same command again to resume")
        for o in self.failed[:5]:
            last = (o.error or "").strip().splitlines()[-1:] or ["?"]
            lines.append(f"failed: {o.spec.instance} {o.spec.algorithm} run {o.spec.run}: {last[0]}")
        if len(self.failed) > 5:
            lines.append(f"... and {len(self.failed) - 5} more failures")
        return "\n".join(lines)


class GridConflict(ValueError):
    """A results directory holds a run of the same name made with other settings."""


def run_grid(
    grid: Grid,
    directory,
    n_jobs: int = 1,
    on_run: Callable[[RunOutcome, int, int], None] | None = None,
) -> BenchSummary:
    """Run every run of ``grid`` whose result file is not yet in ``directory``.

    Parameters
    ----------
    grid : Grid
    directory : path
        Results directory (created when missing).
    n_jobs : int
        Runs at once (1: inline; -1: all cores); each run itself uses one process. Results do not depend on it.
    on_run : callable, optional
        ``on_run(outcome, n_finished, n_total)`` after each run finishes or is skipped (progress displays).

    Returns
    -------
    BenchSummary
        With ``interrupted=True`` after a ``KeyboardInterrupt`` (finished runs are kept on disk).

    Raises
    ------
    GridConflict
        When a finished run in ``directory`` was made with other settings (seed, target, budgets, algorithm
        settings or evobilevel version): mixing them would make the tables meaningless, so nothing runs.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(directory)
    specs = grid.run_specs()
    algorithms = grid.algorithm_objects
    settings = {label: plain(algo.settings()) for label, algo in algorithms.items()}
    outcomes: list[RunOutcome | None] = [None] * len(specs)
    todo = []
    for i, spec in enumerate(specs):
        path = spec.path(directory)
        stored = _stored_run(path, spec, grid.protocol, algorithms[spec.algorithm].name, settings[spec.algorithm])
        if stored is None:
            todo.append(i)
        else:
            outcomes[i] = RunOutcome(spec, path, "skipped", success=bool(stored.get("success")))
    write_json_atomic(directory / MANIFEST, grid.manifest())

    n_total, n_finished = len(specs), 0
    for outcome in outcomes:
        if outcome is not None:
            n_finished += 1
            if on_run is not None:
                on_run(outcome, n_finished, n_total)
    start = time.perf_counter()
    tasks = [(specs[i], algorithms[specs[i].algorithm], grid.protocol, str(specs[i].path(directory)))
             for i in todo]
    interrupted = False
    try:
        for k, outcome in run_tasks(_run_one, tasks, n_jobs=n_jobs):
            outcomes[todo[k]] = outcome
            n_finished += 1
            if on_run is not None:
                on_run(outcome, n_finished, n_total)
    except KeyboardInterrupt:
        interrupted = True
    finished = [o for o in outcomes if o is not None]
    return BenchSummary(directory, finished, n_total, time.perf_counter() - start, interrupted)


def _run_one(spec: RunSpec, algorithm: Algorithm, protocol: dict, path: str) -> RunOutcome:
    """One run, in a worker: solve, then write the result file atomically. Never raises (except on Ctrl-C)."""
    start = time.perf_counter()
    try:
        problem = benchmarks.get(spec.problem, **dict(spec.problem_kwargs))
        result = solve(problem, algorithm=algorithm, seed=spec.seed, n_jobs=1, target=protocol["target"],
                       max_ul_evals=protocol["max_ul_evals"], max_ll_evals=protocol["max_ll_evals"])
        if result.interrupted:
            # solve() returns its best-so-far on Ctrl-C; a cut-short run must not be stored as finished.
            raise KeyboardInterrupt
        data = result.to_dict()
        data["bench"] = {"instance": spec.instance, "algorithm": spec.algorithm, "run": spec.run, **protocol}
        write_json_atomic(path, data)
    except Exception:
        return RunOutcome(spec, Path(path), "failed", elapsed=time.perf_counter() - start,
                          error=traceback.format_exc())
    return RunOutcome(spec, Path(path), "done", success=result.success, elapsed=time.perf_counter() - start)


def _stored_run(path: Path, spec: RunSpec, protocol: dict, algorithm_name: str, settings: dict) -> dict | None:
    """The JSON data of this run when ``path`` holds it, finished; ``None`` when it must (still) run.

    Raises GridConflict when ``path`` holds the same run made with other settings.
    """
    if not path.is_file():
        return None
    try:
        data, _ = read_run(path)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable: run it again (the new file replaces it)
    stored = data.get("bench") or {}
    expected = {"instance": spec.instance, "algorithm": spec.algorithm, "run": spec.run, **protocol}
    differences = [key for key, value in expected.items() if plain(stored.get(key)) != plain(value)]
    if data.get("seed") != spec.seed:
        differences.append("seed")
    if data.get("algorithm") != algorithm_name or plain(data.get("algorithm_settings")) != settings:
        differences.append("algorithm settings")
    if data.get("version") != __version__:
        # Another release may give other numbers for the same seed: one table must not mix them.
        differences.append(f"evobilevel {data.get('version')}, now {__version__}")
    if differences:
        raise GridConflict(f"{path} was made with other settings ({', '.join(differences)}); "
                           "use a new results directory for this grid")
    return data


def _remove_stale_temporaries(directory: Path) -> None:
    """Delete half-written files left by a killed grid (atomic writes go through ``.<name>.<random>.tmp``)."""
    for tmp in directory.rglob(".*.json.*.tmp"):
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
