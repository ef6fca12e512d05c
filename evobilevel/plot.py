"""Convergence plots, empirical distributions of evaluations to target, and Pareto fronts of leaders with several
objectives.

The only module that imports matplotlib, and only inside its functions, so ``import evobilevel`` stays light.
Figures are built without pyplot: nothing opens a window or needs a display (PNG files are rendered with Agg),
figures are not kept alive by a global registry, and a returned Figure still shows inline in a notebook. To draw
into a figure of your own (e.g. made with pyplot), pass its axes as ``ax``.

>>> import evobilevel as eb
>>> from evobilevel import plot
>>> r = eb.solve(eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3), "nested", target=1e-2)   # doctest: +SKIP
>>> plot.save_figure(plot.convergence(r, x="both"), "convergence.png")                    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from .front import Front
from .result import Result
from .targets import DEFAULT_TARGET, evals_to_target, target_levels

__all__ = [
    "front",
    "convergence",
    "convergence_band",
    "convergence_grid",
    "ecdf_evals_to_target",
    "error_band",
    "save_figure",
    "ERROR_FLOOR",
]

_EVALS = {"ul": ("n_ul_evals", "upper-level evaluations"), "ll": ("n_ll_evals", "lower-level evaluations")}
_ERRORS = {"ul": ("ul_error", "upper-level error |F − F*|"), "ll": ("ll_error", "lower-level error |f − f*|")}
_VALUES = {"ul": ("best_F", "upper-level objective F"), "ll": ("best_f", "lower-level objective f")}
_LEVEL_COLORS = {"ul": "C0", "ll": "C3"}

# Errors of exactly 0 cannot sit on a log axis; they are drawn at this floor instead.
ERROR_FLOOR = 1e-12


def _figure(nrows: int = 1, ncols: int = 1, width: float = 6.0, height: float = 4.2):
    """A pyplot-free Figure and its axes array of shape (nrows, ncols)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def save_figure(fig, path, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix, e.g. ``.png``), creating folders; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def _as_results(results) -> list[Result]:
    if isinstance(results, Result):
        return [results]
    out = list(results)
    if not out:
        raise ValueError("no results to plot")
    bad = [type(r).__name__ for r in out if not isinstance(r, Result)]
    if bad:
        raise TypeError(f"expected evobilevel Result objects, got {bad[0]}")
    return out


def _check_choice(name: str, value: str, choices: Iterable[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")


def _has_errors(results: Sequence[Result]) -> bool:
    return any(np.isfinite(r.history.column("ul_error")).any() for r in results)


def _run_target(results: Sequence[Result]) -> float | None:
    targets = {r.target for r in results if r.target is not None}
    return targets.pop() if len(targets) == 1 else None


def convergence(result_or_results, ax=None, x: str = "ul", target: float | None = None, title: str | None = None):
    """Errors of both levels against evaluations, for one run (or several overlaid).

    Parameters
    ----------
    result_or_results : Result or sequence of Result
    ax : matplotlib Axes, or a pair of them for ``x="both"``, optional
        Where to draw; a new figure by default.
    x : {"ul", "ll", "both"}
        Upper- or lower-level evaluations on the horizontal axis, or one panel of each.
    target : float, optional
        Draws the target as a dashed line (default: the runs' own target, if any).
    title : str, optional
        Default: problem, sizes and algorithm.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Each history record is the incumbent after one upper-level generation; the curve is a step function that
    holds until the next record, and a dot marks the end of the run. Errors use a log scale (0 is drawn at
    ``ERROR_FLOOR``). For a problem with no known optimum the incumbent's ``F`` (left axis) and ``f`` (right
    axis) are drawn instead, each on a log scale when it is positive and spans more than a decade.

    A title goes above the figure when this function made it; into given axes, only an explicit ``title`` is
    drawn (above the first of them).
    """
    results = _as_results(result_or_results)
    _check_choice("x", x, ("ul", "ll", "both"))
    panels = ("ul", "ll") if x == "both" else (x,)
    fig, axes = _panel_axes(ax, x, panels)
    target = target if target is not None else _run_target(results)
    for axis, panel in zip(axes, panels):
        _draw_runs(axis, results, panel, target)
    first = results[0]
    default = f"{first.problem} {_size_label(first)} · {first.algorithm}"
    if len(results) > 1:
        default += f" · {len(results)} runs"
    _title(fig, axes, ax is None, title, default)
    return fig


def _panel_axes(ax, x: str, panels: tuple[str, ...]):
    """The figure and one axes per panel: new ones side by side, or the ones given (checked)."""
    if ax is None:
        fig, axes = _figure(1, len(panels), width=5.2 * len(panels), height=4.0)
        return fig, list(axes[0])
    axes = list(np.ravel(ax)) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
    if len(axes) != len(panels):
        raise ValueError(f"x={x!r} draws {len(panels)} panel(s) but {len(axes)} axes were given")
    return axes[0].figure, axes


def _title(fig, axes, own_figure: bool, title: str | None, default: str) -> None:
    """The figure's title when the figure is ours; a user's figure keeps its own unless a title is asked for."""
    if own_figure:
        fig.suptitle(title if title is not None else default)
    elif title is not None:
        axes[0].set_title(title)


def _draw_runs(ax, results: Sequence[Result], x: str, target: float | None) -> None:
    if not _has_errors(results):
        _draw_values(ax, results, x)
        return
    for level in ("ul", "ll"):
        _draw_level(ax, results, x, _ERRORS[level], _LEVEL_COLORS[level], floor=ERROR_FLOOR)
    ax.set_yscale("log")
    ax.set_ylabel("error of the incumbent")
    if target is not None:
        ax.axhline(target, color="0.35", ls="--", lw=1.0, label=f"target {target:g}")
    _log_x(ax)
    ax.set_xlabel(_EVALS[x][1])
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="best")


def _draw_level(ax, results: Sequence[Result], x: str, column: tuple[str, str], color, floor=None) -> np.ndarray:
    """One history column of every run as step curves, with a dot at each run's end; returns all values drawn."""
    key, label = column
    many = len(results) > 1
    drawn = []
    for i, r in enumerate(results):
        X = r.history.column(_EVALS[x][0])
        V = r.history.column(key)
        if floor is not None:
            V = np.maximum(V, floor)
        ax.step(X, V, where="post", color=color, alpha=0.35 if many else 1.0, lw=1.0 if many else 1.8,
                label=label if i == 0 else None)
        ax.plot(X[-1:], V[-1:], "o", color=color, ms=4, alpha=0.6 if many else 1.0)
        drawn.append(V)
    return np.concatenate(drawn)


def _draw_values(ax, results: Sequence[Result], x: str) -> None:
    """Without a known optimum: the incumbent's F (left axis) and f (right axis), each on its own scale."""
    twin = ax.twinx()
    handles = []
    for axis, level in ((ax, "ul"), (twin, "ll")):
        values = _draw_level(axis, results, x, _VALUES[level], _LEVEL_COLORS[level])
        finite = values[np.isfinite(values)]
        # A log scale shows progress over orders of magnitude, but only positive values fit on it.
        if finite.size and finite.min() > 0 and finite.max() > 10 * finite.min():
            axis.set_yscale("log")
        elif finite.size:
            axis.ticklabel_format(axis="y", useOffset=False)
            low, high = finite.min(), finite.max()
            if high - low <= 1e-9 * max(abs(low), abs(high), 1.0):
                # Constant up to rounding noise: show it as the flat line it is, not noise blown up to full height.
                pad = 0.05 * max(abs(high), 1.0)
                axis.set_ylim(low - pad, high + pad)
        axis.set_ylabel(_VALUES[level][1], color=_LEVEL_COLORS[level])
        axis.tick_params(axis="y", colors=_LEVEL_COLORS[level])
        handles += axis.get_legend_handles_labels()[0]
    _log_x(ax)
    ax.set_xlabel(_EVALS[x][1])
    ax.grid(True, which="major", alpha=0.3)
    # Above the panel: "best" placement cannot see the twin axis' curves.
    ax.legend(handles=handles, fontsize="small", loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=2,
              frameon=False)


def _log_x(ax) -> None:
    """Log scale for an evaluation-count axis, with plain labels (20, 500, 2k, 100k, 1M) that never overlap."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    decades = np.log10(hi / lo) if lo > 0 and hi > lo else 3.0
    # Label more points per decade when the axis spans few decades, so every axis gets a handful of labels.
    subs = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0) if decades < 1.0 else (1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _count_label(value)))
    ax.xaxis.set_minor_locator(LogLocator(base=10, subs="auto"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _count_label(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:g}M"
    if value >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def _size_label(result: Result) -> str:
    s = result.problem_settings or {}
    text = f"({s.get('ul_dim', '?')}, {s.get('ll_dim', '?')})"
    return f"{text} {s['variant']}" if s.get("variant") else text


def error_band(results, x: str = "ul", level: str = "ul", n_points: int = 200):
    """Median and quartiles of the incumbent's error over runs, on a common log-spaced evaluation grid.

    Parameters
    ----------
    results : sequence of Result
        Runs of one algorithm on one problem instance.
    x : {"ul", "ll"}
        The evaluation count on the grid.
    level : {"ul", "ll"}
        Whose error: ``|F - F*|`` or ``|f - f*|``.
    n_points : int
        Grid points.

    Returns
    -------
    grid : ndarray, shape (n_points,)
        Evaluation counts, log-spaced from the first record of any run to the last record of any run.
    q25, median, q75 : ndarray, shape (n_points,)
        Quartiles over the runs (linear interpolation, as ``numpy.percentile``); NaN where a run without an
        incumbent yet takes part.

    Notes
    -----
    Each run is a step function of its history records carried forward: between records its error is the one of
    its last record, and after its last record (it stopped) its final error. Before its first record a run has no
    answer and counts as infinitely bad, so the quartiles only start once enough runs have one.
    """
    results = _as_results(results)
    _check_choice("x", x, ("ul", "ll"))
    _check_choice("level", level, ("ul", "ll"))
    evals_key, error_key = _EVALS[x][0], _ERRORS[level][0]
    curves = []
    for r in results:
        X = r.history.column(evals_key)
        E = r.history.column(error_key)
        keep = np.isfinite(X)
        if keep.any():
            curves.append((X[keep], np.where(np.isfinite(E[keep]), np.maximum(E[keep], ERROR_FLOOR), np.inf)))
    if not curves:
        nan = np.full(n_points, np.nan)
        return nan.copy(), nan.copy(), nan.copy(), nan
    lo = max(1.0, min(X[0] for X, _ in curves))
    hi = max(lo * 1.0001, max(X[-1] for X, _ in curves))
    grid = np.geomspace(lo, hi, n_points)
    values = np.empty((len(curves), n_points))
    for i, (X, E) in enumerate(curves):
        idx = np.searchsorted(X, grid, side="right") - 1
        values[i] = np.where(idx >= 0, E[np.clip(idx, 0, None)], np.inf)
    return grid, *_quartiles(values)


def _quartiles(values: np.ndarray):
    """25th, 50th and 75th percentiles over axis 0 as ``np.percentile`` computes them (linear interpolation); NaN
    where an infinite value (a run with no answer yet) takes part."""
    qs = (0.25, 0.5, 0.75)
    # A finite stand-in keeps the order of the runs; wherever it would enter the interpolation, NaN replaces it.
    linear = np.quantile(np.where(np.isfinite(values), values, 1e300), qs, axis=0)
    involved = np.quantile(values, qs, axis=0, method="higher")
    return tuple(np.where(np.isfinite(h), q, np.nan) for q, h in zip(linear, involved))


def convergence_band(results, ax=None, x: str = "ul", level: str = "ul", label: str | None = None,
                     color=None, n_points: int = 200):
    """Median error over runs with its interquartile band, against evaluations (log-log).

    Parameters
    ----------
    results : sequence of Result
        Runs of one algorithm on one problem instance (different seeds).
    ax : matplotlib Axes, optional
    x, level : {"ul", "ll"}
        Evaluations of which level on the horizontal axis; error of which level on the vertical one.
    label : str, optional
        Legend label (default: the algorithm and the number of runs).
    color : matplotlib color, optional
    n_points : int
        Points of the common evaluation grid (see :func:`error_band`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    results = _as_results(results)
    if ax is None:
        fig, axes = _figure()
        ax = axes[0, 0]
    grid, q25, median, q75 = error_band(results, x=x, level=level, n_points=n_points)
    label = label if label is not None else f"{results[0].algorithm} ({len(results)} runs)"
    (line,) = ax.plot(grid, median, color=color, lw=1.8, label=label)
    ax.fill_between(grid, q25, q75, color=line.get_color(), alpha=0.2, lw=0)
    finite = np.flatnonzero(np.isfinite(median))
    if finite.size:
        # Mark where the runs stopped; it also keeps runs that all stopped at one count (a zero-length curve) visible.
        ax.plot(grid[finite[-1]], median[finite[-1]], "o", color=line.get_color(), ms=4)
    ax.set_yscale("log")
    _log_x(ax)
    ax.set_xlabel(_EVALS[x][1])
    ax.set_ylabel(_ERRORS[level][1])
    ax.grid(True, which="major", alpha=0.3)
    return ax.figure


def convergence_grid(results_by_algorithm: Mapping[str, Sequence[Result]], target: float | None = None,
                     title: str | None = None):
    """The four views of one problem instance: error of each level against evaluations of each level.

    Parameters
    ----------
    results_by_algorithm : mapping of str to sequence of Result
        ``{algorithm label: runs}`` on one problem instance; each algorithm gets one colour.
    target : float, optional
        Drawn as a dashed line (default: the runs' own target, if any).
    title : str, optional
        Default: the problem and its sizes.

    Returns
    -------
    matplotlib.figure.Figure
        2 x 2 panels: rows upper- then lower-level error, columns upper- then lower-level evaluations; medians
        with interquartile bands over the runs.
    """
    if not results_by_algorithm:
        raise ValueError("no results to plot")
    fig, axes = _figure(2, 2, width=10.0, height=7.2)
    everything = [r for runs in results_by_algorithm.values() for r in _as_results(runs)]
    target = target if target is not None else _run_target(everything)
    for row, level in enumerate(("ul", "ll")):
        for col, x in enumerate(("ul", "ll")):
            ax = axes[row, col]
            for i, (label, runs) in enumerate(results_by_algorithm.items()):
                runs = _as_results(runs)
                convergence_band(runs, ax=ax, x=x, level=level, label=f"{label} ({len(runs)} runs)",
                                 color=f"C{i % 10}")
            if target is not None:
                ax.axhline(target, color="0.35", ls="--", lw=1.0, label=f"target {target:g}")
            _log_x(ax)
    axes[0, 0].legend(fontsize="small", loc="best", title="median, IQR band; ● end")
    first = everything[0]
    fig.suptitle(title if title is not None else f"{first.problem} {_size_label(first)}: error against evaluations")
    return fig


def ecdf_evals_to_target(results_by_algorithm: Mapping[str, Sequence[Result]], ax=None, x: str = "both",
                         target: float = DEFAULT_TARGET, title: str | None = None):
    """Empirical cumulative distribution of the evaluations each run needed to reach the target.

    Parameters
    ----------
    results_by_algorithm : mapping of str to sequence of Result
        ``{algorithm label: runs}``, typically every run on every problem of one size.
    ax : matplotlib Axes, or a pair of them for ``x="both"``, optional
    x : {"ul", "ll", "both"}
        Upper- or lower-level evaluations, or one panel of each.
    target : float
        Error threshold, with the level rule of :func:`evobilevel.report.target_levels`.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The curve at ``n`` is the share of all runs (successful or not) that had reached the target within ``n``
    evaluations, so it ends at the success rate; a curve further up and to the left is better.
    """
    if not results_by_algorithm:
        raise ValueError("no results to plot")
    _check_choice("x", x, ("ul", "ll", "both"))
    panels = ("ul", "ll") if x == "both" else (x,)
    fig, axes = _panel_axes(ax, x, panels)
    reached = {}
    for label, runs in results_by_algorithm.items():
        runs = _as_results(runs)
        counts = [evals_to_target(r, target, target_levels(r.problem)) for r in runs]
        reached[label] = (len(runs), [c for c in counts if c is not None])
    for axis, panel in zip(axes, panels):
        column = 0 if panel == "ul" else 1
        all_hits = [c[column] for _, hits in reached.values() for c in hits]
        lo, hi = (min(all_hits) / 1.5, max(all_hits) * 1.5) if all_hits else (1.0, 10.0)
        for i, (label, (n_runs, hits)) in enumerate(reached.items()):
            values = np.sort([c[column] for c in hits]).astype(float)
            share = np.arange(1, len(values) + 1) / n_runs
            # Start at 0 left of the first success and hold the final share to the right edge.
            X = np.concatenate([[lo], values, [hi]])
            Y = np.concatenate([[0.0], share, [share[-1] if len(share) else 0.0]])
            axis.step(X, Y, where="post", color=f"C{i % 10}", lw=1.8,
                      label=f"{label}: {len(values)}/{n_runs} reached")
        _log_x(axis)
        axis.set_yscale("linear")
        axis.set_ylim(-0.02, 1.02)
        axis.set_xlabel(_EVALS[panel][1] + " to target")
        axis.set_ylabel("share of runs at target")
        axis.grid(True, which="major", alpha=0.3)
        axis.legend(fontsize="small", loc="best")
    _title(fig, axes, ax is None, title, f"Runs reaching the target {target:g}")
    return fig



def front(result_or_front, ax=None, reference=None, title: str | None = None, label: str | None = None):
    """The leader's Pareto front: the found pairs' objectives, and the known front where there is one.

    Parameters
    ----------
    result_or_front : Result or Front, or a sequence of them
        A run of a leader with several objectives (its ``front``), or fronts themselves; several are overlaid,
        each in its own colour.
    ax : matplotlib Axes, or a sequence of them for k > 2, optional
        Where to draw; a new figure by default. With k objectives there is one panel per pair of objectives.
    reference : ndarray, shape (m, k), optional
        The known front, drawn as a grey line (two objectives) or grey points; by default that of a benchmark
        result's problem, when it is known.
    title : str, optional
        Default: problem, algorithm and the number of pairs.
    label : str, optional
        Legend label of a single front (default "found").

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    For a result, its balanced pair (``result.F``) is marked with a star.
    """
    items = list(result_or_front) if isinstance(result_or_front, (list, tuple)) else [result_or_front]
    fronts = [_front_of(item) for item in items]
    k = fronts[0].F.shape[1]
    if any(f.F.shape[1] != k for f in fronts):
        raise ValueError("the fronts have different numbers of objectives")
    if reference is None:
        reference = _known_front(items[0])
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    fig, axes = _pair_axes(ax, pairs)
    for axis, (i, j) in zip(axes, pairs):
        if reference is not None:
            _draw_reference(axis, np.asarray(reference, dtype=float), i, j, k)
        for n, (item, found) in enumerate(zip(items, fronts)):
            name = label if label is not None and len(items) == 1 else ("found" if len(items) == 1 else f"run {n}")
            axis.plot(found.F[:, i], found.F[:, j], "o", color=f"C{n % 10}", ms=4, alpha=0.85,
                      label=f"{name} ({len(found)} pairs)")
            if isinstance(item, Result) and np.ndim(item.F) == 1:
                axis.plot(item.F[i], item.F[j], "*", color=f"C{n % 10}", ms=12, mec="k", mew=0.6,
                          label="balanced pair" if n == 0 else None)
        axis.set_xlabel(f"F{i + 1}")
        axis.set_ylabel(f"F{j + 1}")
        axis.grid(True, alpha=0.3)
    axes[0].legend(fontsize="small", loc="best")
    first = items[0]
    default = (f"{first.problem} {_size_label(first)} · {first.algorithm}: Pareto front" if isinstance(first, Result)
               else "Pareto front")
    _title(fig, axes, ax is None, title, default)
    return fig


def _front_of(item) -> Front:
    if isinstance(item, Front):
        return item
    if isinstance(item, Result):
        if item.front is None:
            raise ValueError(f"the result of {item.problem} has no front (its leader has one objective)")
        return item.front
    raise TypeError(f"expected an evobilevel Result or Front, got {type(item).__name__}")


def _known_front(item):
    """The known front of a benchmark result's problem, or None."""
    if not isinstance(item, Result):
        return None
    from . import benchmarks
    from .indicators import known_front

    try:
        problem = benchmarks.from_settings(item.problem, item.problem_settings or {})
    except (ValueError, TypeError):
        return None
    return known_front(problem)


def _pair_axes(ax, pairs):
    """The figure and one axes per pair of objectives: new ones side by side, or the ones given (checked)."""
    if ax is None:
        fig, axes = _figure(1, len(pairs), width=5.0 if len(pairs) == 1 else 4.2 * len(pairs), height=4.2)
        return fig, list(axes[0])
    axes = list(np.ravel(ax)) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
    if len(axes) != len(pairs):
        raise ValueError(f"{len(pairs)} pair(s) of objectives to draw but {len(axes)} axes were given")
    return axes[0].figure, axes


def _draw_reference(ax, reference: np.ndarray, i: int, j: int, k: int) -> None:
    """The known front: a line along it for two objectives (broken where the front has a gap), else points."""
    if k == 2:
        R = reference[np.argsort(reference[:, 0])]
        steps = np.linalg.norm(np.diff(R, axis=0), axis=1)
        gaps = np.flatnonzero(steps > 20 * np.median(steps)) + 1
        R = np.insert(R, gaps, np.nan, axis=0)
        ax.plot(R[:, 0], R[:, 1], "-", color="0.55", lw=1.5, label="known front")
    else:
        ax.plot(reference[:, i], reference[:, j], ".", color="0.75", ms=2, label="known front")
