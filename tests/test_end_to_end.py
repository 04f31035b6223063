"""The whole pipeline through the real CLI on a tiny random model (SmolLM2's tokenizer), then a
re-run that must redo nothing and leave every output byte-identical."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _tree_digest(folder: Path) -> dict[str, str]:
    """Hash of every output file, except the manifests that record when they were written."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.name.endswith("manifest.json"):
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_pipeline_end_to_end_and_rerun(tmp_path, tiny_model_dir, run_group):
    out = tmp_path / "run"
    cfg = {
        "output_dir": str(out), "seed": 0, "model": str(tiny_model_dir),
        "synth": {"num_samples": 12, "min_tokens": 256, "max_tokens": 640,
                  "corpus": {"min_doc_tokens": 64, "limit": 600}},
        "select": {"window": 128, "max_segments": 4, "budgets": [0.5], "dtype": "float32"},
        "train": {"mix": {"short": str(ROOT / "data/short_chat_demo.jsonl"), "short_size": 4},
                  "tokenize": {"max_length": 768}, "max_steps": 2, "per_device_batch_size": 2,
                  "gradient_checkpointing": False, "precision": "fp32"},
        "eval": {"models": ["checkpoint", "base"], "run": ["probes", "needle"],
                 "generate": {"max_new_tokens": 4, "dtype": "float32"},
                 "probes": {"context_tokens": 768, "num_positions": 2},
                 "needle": {"lengths": [128], "depths": [50.0]}},
    }
    config = tmp_path / "e2e.yaml"
    config.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "longcurate", "run", str(config)]

    first = run_group(cmd, cwd=ROOT, env=env, timeout=900)
    assert first.returncode == 0, first.stderr[-4000:]
    for rel in ["samples.jsonl", "select/hmg.jsonl", "select/cam.jsonl", "select/ranked.jsonl",
                "budgets/gateau-0.5.jsonl", "budgets/random-0.5.jsonl", "mixture/mixture.jsonl",
                "checkpoint/model.safetensors", "eval/report.md", "run.manifest.json"]:
        assert (out / rel).exists(), rel
    mix_manifest = json.loads((out / "mixture/mixture.jsonl.done").read_text())
    assert (mix_manifest["long"], mix_manifest["short"]) == (6, 4)  # the budget, exactly
    before = _tree_digest(out)

    second = run_group(cmd, cwd=ROOT, env=env, timeout=600)
    assert second.returncode == 0, second.stderr[-4000:]
    assert _tree_digest(out) == before
