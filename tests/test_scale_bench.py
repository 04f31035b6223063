"""The scale benchmark (benchmarks/scale_bench.py) at its quick sizes: every step runs in its own
measured process at three sizes and the table of CPU seconds, peak RSS, slopes and targets comes out,
so the script cannot rot. Its full sizes run by hand (docs/benchmarks.md holds their table)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("rank", "budget", "diagnose", "merge", "pool", "score-input", "mix", "tokenize", "json-array")


@pytest.mark.slow
def test_scale_bench_quick(tmp_path):
    table = tmp_path / "table.md"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks/scale_bench.py"), "--quick", "--work", str(tmp_path),
                          "--markdown", str(table)], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    text = table.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "targets" not in line]
    assert len(rows) == 3 * len(STEPS)
    for step in STEPS:
        assert f"| {step} |" in text
    assert text.count("RSS ✓") + text.count("RSS ✗") == len(STEPS)
