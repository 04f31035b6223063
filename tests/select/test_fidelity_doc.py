"""docs/fidelity.md cannot rot: every row of its recipe table cites `file:line` (`symbol`), and each
cited line of our code still holds the named symbol."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CITATION = re.compile(r"`([\w./-]+\.py):(\d+)` \(`([^`]+)`\)")


def recipe_rows(text: str) -> list[str]:
    """The rows of the tables whose header starts with "| recipe step"."""
    rows, inside = [], False
    for line in text.splitlines():
        if line.startswith("| recipe step"):
            inside = True
            continue
        if inside and not line.startswith("|"):
            inside = False
        if inside and not line.startswith("|---"):
            rows.append(line)
    return rows


def test_every_recipe_row_cites_a_line_that_holds_its_symbol():
    rows = recipe_rows((ROOT / "docs" / "fidelity.md").read_text(encoding="utf-8"))
    assert len(rows) >= 15
    for row in rows:
        citations = CITATION.findall(row)
        assert citations, f"row names no file:line of our implementation: {row[:80]}"
        for path, line, symbol in citations:
            lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
            assert 1 <= int(line) <= len(lines), f"{path}:{line} is past the end of the file"
            assert symbol in lines[int(line) - 1], f"{path}:{line} no longer holds `{symbol}`: {lines[int(line) - 1]!r}"
