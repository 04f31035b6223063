"""A bad config value stops `longcurate run` and `longcurate ablate` before any work: through the real
command line (a subprocess), with exit code 2, one line naming the key, in under 5 seconds, and
nothing written under `output_dir` (issue 19: a bad `alpha` used to fail in `rank`, after the pool was
scored; a bad `eval.run` entry after synth, select and train).

The two eval cases (`eval.run`, `eval.judge.timeout_s`) rely on the eval config's own rules."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 5.0  # the refusal must come this fast
KILL_S = 15.0  # a command that does not refuse is stopped here (it would otherwise run the pipeline)

CASES = [
    ("run", "demo", "select.alpha=7", "select.alpha"),
    ("run", "demo", "select.normalize=bogus", "select.normalize"),
    ("run", "demo", "select.window=-1", "select.window"),
    ("run", "demo", "train.learning_rate=nan", "train.learning_rate"),
    ("run", "demo", "eval.run=[nope]", "eval.run"),
    ("run", "demo", "eval.judge.timeout_s=-1", "eval.judge.timeout_s"),
    ("ablate", "ablation-cpu", "select.alpha=7", "select.alpha"),
    ("ablate", "ablation-cpu", "select.budget_overflow=maybe", "select.budget_overflow"),
    ("ablate", "ablation-cpu", "ablate.budget_unit=bogus", "ablate.budget_unit"),
    ("ablate", "ablation-cpu", "ablate.budget=2.5", "ablate.budget"),
]


@pytest.mark.parametrize("command, config, override, key", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_a_bad_value_is_refused_before_any_work(tmp_path, command, config, override, key):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    t0 = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "longcurate", command, config, f"output_dir={out}", override],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=KILL_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`longcurate {command} {config} {override}` did not refuse within {KILL_S:g} s")
    seconds = time.monotonic() - t0
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and key in lines[0] and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert seconds < LIMIT_S, f"refused after {seconds:.1f} s"
    assert not out.exists() or not any(out.iterdir()), sorted(p.name for p in out.iterdir())
