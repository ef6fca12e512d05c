"""Write a measured table into README.md between ``<!-- name:start -->`` and ``<!-- name:end -->`` markers."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def write_section(name: str, text: str, readme: Path = README) -> None:
    """Replace the marked section ``name`` of the README with ``text`` (atomically); append it if absent."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    content = readme.read_text(encoding="utf-8")
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in content and end in content:
        before = content[: content.index(start)]
        after = content[content.index(end) + len(end):]
        content = before + block + after
    else:
        content = content.rstrip() + "\n\n" + block + "\n"
    fd, tmp = tempfile.mkstemp(dir=readme.parent, prefix=".README.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(content)
    os.replace(tmp, readme)


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
