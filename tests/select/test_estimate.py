"""`select run --dry-run`: the sample count and the tokens of every pass, before any scoring forward,
equal to what scoring then measures; a time estimate from a calibrated cost per token; nothing written."""

from __future__ import annotations

import json

from longcurate.cli import main
from longcurate.select.estimate import estimate_seconds, fit

from .conftest import make_samples, write_jsonl

FP32 = ["select.dtype=float32", "select.device=cpu", "select.window=256"]


def test_dry_run_counts_what_scoring_will_score_and_writes_nothing(tmp_path, tiny_folder, capsys):
    recs = make_samples(6)
    recs.append({"id": "bad", "context": "c"})  # no instruction: rejected, counted
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, recs)
    run = tmp_path / "run"
    args = ["--input", str(inp), f"output_dir={run}", f"model={tiny_folder}", *FP32]
    assert main(["select", "run", "--dry-run", *args]) == 0
    out = capsys.readouterr().out
    assert "samples: 6 to score, 1 rejected" in out and not run.exists()
    line = next(x for x in out.splitlines() if x.strip().startswith("θ_B prompts"))
    dry_tokens = int(line.split()[2].replace(",", ""))
    assert "scoring time on cpu" in out and "total" in out
    assert main(["select", "score", "hmg", *args]) == 0
    scored = [json.loads(x) for x in (run / "select" / "hmg.jsonl").read_text().splitlines()]
    assert dry_tokens == sum(r["n_tokens"] for r in scored)


def test_the_cost_model_fits_two_timed_lengths():
    c0, c1 = fit([(256, 1e-4), (2048, 3e-4)])
    assert abs(c0 + c1 * 256 - 1e-4) < 1e-12 and abs(c0 + c1 * 2048 - 3e-4) < 1e-12
    assert fit([(256, 2e-4), (2048, 1e-4)])[1] == 0.0  # never cheaper per token when longer
    assert abs(estimate_seconds([100, 200], (1e-3, 0.0)) - 0.3) < 1e-12
