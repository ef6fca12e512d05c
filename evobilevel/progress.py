"""A one-line progress display on standard error, redrawn in place; silent when disabled."""

from __future__ import annotations

import sys
import time

__all__ = ["ProgressLine"]


class ProgressLine:
    """Shows generation, evaluations, best values and errors; redraws at most ten times a second."""

    def __init__(self, enabled: bool, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._last = 0.0
        self._width = 0

    def update(self, record: dict) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1:
            return
        self._last = now
        text = (
            f"gen {record['generation']:>5}  UL {record['n_ul_evals']:>8}  LL {record['n_ll_evals']:>10}  "
            f"F {_g(record['best_F'])}  f {_g(record['best_f'])}"
        )
        if record.get("ul_error") is not None:
            text += f"  errors {record['ul_error']:.2e} {record['ll_error']:.2e}"
        self.draw(text)

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
