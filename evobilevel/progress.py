"""A one-line progress display on standard error, redrawn in place; silent when disabled."""

from __future__ import annotations

import sys
import time

__all__ = ["ProgressLine", "duration"]


class ProgressLine:
    """Shows the generation, the best ``F`` (and ``f``), the evaluations per level, the errors where the optimum is
    known and, when a budget applies, an estimate of the time left; redraws at most ten times a second.

    Parameters
    ----------
    enabled : bool
    stream : file, optional
        Standard error by default.
    budgets : (max_ul_evals, max_ll_evals, max_time), optional
        The run's budgets (None for none), for the estimate of the time left.
    """

    def __init__(self, enabled: bool, stream=None, budgets=(None, None, None)):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.budgets = budgets
        self._last = 0.0
        self._width = 0

    def announce(self, text: str) -> None:
        """Print ``text`` on a line of its own (the budgets a run starts with)."""
        if self.enabled:
            self.stream.write(text + "\n")
            self.stream.flush()

    def update(self, record: dict) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1:
            return
        self._last = now
        text = (
            f"gen {record['generation']:>5}  F {_g(record['best_F'])}  f {_g(record['best_f'])}  "
            f"UL {record['n_ul_evals']:>8,}  LL {record['n_ll_evals']:>11,}"
        )
        if record.get("ul_error") is not None:
            text += f"  errors {record['ul_error']:.2e} {record['ll_error']:.2e}"
        left = self.time_left(record)
        if left is not None:
            text += f"  ~{duration(left)} left"
        self.draw(text)

    def time_left(self, record: dict) -> float | None:
        """Seconds until the first budget runs out, at the rate spent so far (None without budgets)."""
        max_ul, max_ll, max_time = self.budgets
        used = [spent / cap for spent, cap in ((record["n_ul_evals"], max_ul), (record["n_ll_evals"], max_ll),
                                               (record["elapsed"], max_time)) if cap]
        if not used or max(used) <= 0:
            return None
        fraction = min(max(used), 1.0)
        return record["elapsed"] * (1 - fraction) / fraction

    def draw(self, text: str) -> None:
        """Replace the line with ``text`` (nothing when disabled)."""
        if not self.enabled:
            return
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def close(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\n")
            self.stream.flush()


def _g(value) -> str:
    return "-" if value is None else f"{value:.6g}"


def duration(seconds: float) -> str:
    """``"42 s"``, ``"3 min 05 s"`` or ``"2 h 10 min"``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
