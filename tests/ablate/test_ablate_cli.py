"""`longcurate ablate` end to end through the real CLI on a tiny random model (SmolLM2's tokenizer),
with the random arm drawn twice (`ablate.subsets: 2`): killed once its first arm is trained, run
again, it must not retrain that arm and must write the same report.json, byte for byte, as an
uninterrupted ablation of the same config (run meanwhile, in its own output folder, to keep the test
short). Every run reads the same eval items, and the
answer NLL the report reads for a trained arm is the one the scoring engine (and the full-logit
reference) gives for that item and model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ARMS = ["gateau", "random"]
SEEDS = [0, 1]
SUBSETS = 2
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def write_config(tmp_path: Path, model: Path) -> Path:
    cfg = {
        "output_dir": str(tmp_path / "pool"), "seed": 0, "model": str(model),
        "synth": {"num_samples": 10, "heldout_samples": 4, "min_tokens": 256, "max_tokens": 512,
                  "corpus": {"min_doc_tokens": 64, "limit": 600}},
        "select": {"window": 128, "max_segments": 4, "budgets": [0.5], "dtype": "float32"},
        "train": {"mix": {"short": str(ROOT / "data/short_chat_demo.jsonl"), "short_size": 3},
                  "tokenize": {"max_length": 640}, "max_steps": 2, "per_device_batch_size": 2,
                  "gradient_checkpointing": False, "precision": "fp32"},
        "eval": {"generate": {"dtype": "float32"}, "probes": {"context_tokens": 512, "num_positions": 3,
                                                              "tasks": ["database"]}},
        "ablate": {"arms": ARMS, "seeds": SEEDS, "subsets": SUBSETS, "budget": 4, "measures": ["nll"],
                   "bootstrap": 1000},
    }
    path = tmp_path / "ablate.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def command(config: Path, output: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "longcurate", "ablate", str(config), f"ablate.output={output}", *overrides]


def run_until(cmd: list[str], marker: Path, log: Path, timeout: float) -> None:
    """Run `cmd` and kill it (SIGKILL, whole process group) as soon as `marker` exists."""
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        while not marker.exists():
            assert proc.poll() is None, f"exited ({proc.returncode}) before {marker}:\n{log.read_text()[-3000:]}"
            assert time.time() < deadline, f"no {marker} after {timeout} s"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def finish(proc: subprocess.Popen, log: Path, timeout: float) -> None:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError(f"timed out after {timeout} s:\n{log.read_text()[-3000:]}") from None
    assert proc.returncode == 0, log.read_text()[-4000:]


def stamps(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def test_killed_ablation_resumes_without_retraining_and_reports_the_same(tmp_path, tiny_model_dir):
    config = write_config(tmp_path, tiny_model_dir)
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    # The same config in another output folder (the pool is made again, the same bytes), from the start.
    uninterrupted = start(command(config, whole, f"output_dir={tmp_path / 'pool-whole'}"), tmp_path / "c.log")
    first_arm = [killed / "runs" / ARMS[0] / f"seed-{s}" for s in SEEDS]
    run_until(command(config, killed), first_arm[-1] / "checkpoint.done", tmp_path / "a.log", 300)
    assert not (killed / "report.json").exists() and not (killed / "runs" / ARMS[1]).exists()
    # The first arm's model (and its marker), mixture, tokenized data and train's settings; not the
    # Trainer checkpoints (train/), removed once the model is finished, nor the lock files, which any
    # later run on the folder takes and releases (the kill may leave an owner file).
    trained = {run: {f: t for f, t in stamps(run).items()
                     if f.startswith(("checkpoint", "mixture", "train")) and not f.startswith("train/")
                     and ".lock" not in f} for run in first_arm}

    resumed = start(command(config, killed), tmp_path / "b.log")
    finish(resumed, tmp_path / "b.log", 300)
    finish(uninterrupted, tmp_path / "c.log", 300)
    for run in first_arm:  # the finished arm: not retrained, not re-mixed, not re-tokenized
        now = stamps(run)
        assert {f: now.get(f) for f in trained[run]} == trained[run]
    assert (killed / "report.json").read_bytes() == (whole / "report.json").read_bytes()
    runs = [p for ab in (killed, whole) for p in (ab / "runs").rglob("seed-*") if p.is_dir()]
    assert runs and all((run / "checkpoint.done").exists() and not (run / "train").exists() for run in runs)

    report = json.loads((whole / "report.json").read_text())
    assert report["primary"]["measure"] == "nll" and report["primary"]["better"] == "lower"
    nll = report["measures"]["nll"]
    assert set(nll["rows"]) == {*ARMS, "base"} and nll["dropped_items"] == 0
    assert set(nll["items_by_source"]) == {"probe", "heldout"}
    assert nll["rows"]["gateau"]["vs_baseline"]["difference"]["n"] == nll["items"]
    assert (nll["rows"]["random"]["subsets"], nll["rows"]["random"]["seeds"]) == (SUBSETS, len(SEEDS))
    assert nll["rows"]["gateau"]["vs_baseline"]["p_holm"] is not None
    assert set(nll["variance_components"]) == {"subsets", "seeds", "items", "df"}
    assert len(report["arms"]["random"]["files"]) == SUBSETS
    assert all(a["trained"]["long_tokens"] > 0 and a["trained"]["long_response_tokens"] > 0
               for a in report["arms"].values())
    assert (whole / "report.md").exists() and (whole / "plots" / "nll-position.png").exists()
    check_same_items(whole)
    check_engine_nll(killed / "runs" / "gateau" / "seed-0", tmp_path / "pool")


def check_same_items(ab: Path) -> None:
    """Every run scored the same items (built once, outside the runs), at the same positions."""
    from longcurate.core.jsonl import read_jsonl

    assert (ab / "eval" / "probes.jsonl.done").exists()
    runs = sorted(p for p in (ab / "runs").rglob("seed-*") if p.is_dir())
    assert len(runs) == (1 + SUBSETS) * len(SEEDS) and not list((ab / "runs").rglob("probes.jsonl"))
    keys = set()
    for run in [*runs, ab / "runs" / "base"]:
        label = "base" if run.name == "base" else "checkpoint"
        keys.add(tuple(sorted((r["source"], r["id"], r["position"])
                              for _, r in read_jsonl(run / "eval" / label / "nll" / "items.jsonl"))))
    assert len(keys) == 1 and len(next(iter(keys))) > 0


def check_engine_nll(run: Path, pool: Path) -> None:
    """The answer NLL eval wrote for a trained arm (what the report reads) equals the scoring engine's
    and the full-logit reference's for the same items and model."""
    from oracles.select import reference_response_nll

    from longcurate.core.engine import ScoringEngine
    from longcurate.core.jsonl import DiscardRejects, read_jsonl
    from longcurate.core.models import load_model, load_tokenizer
    from longcurate.eval.model import LLRequest
    from longcurate.eval.nll import heldout_items, probe_items
    from longcurate.eval.render import answer_sequence

    model = load_model(str(run / "checkpoint"), dtype="float32", device="cpu")
    tokenizer = load_tokenizer(str(run / "checkpoint"))
    items = probe_items(run.parents[2] / "eval" / "probes.jsonl", DiscardRejects())
    items += heldout_items(pool / "heldout.jsonl", DiscardRejects())
    seqs = [answer_sequence(LLRequest(it.id, it.prompt, it.answer), tokenizer, "chat") for it in items]
    engine = {r.id: r.nll for r in ScoringEngine(model).response_nll(seqs)}
    reference = {r.id: r.nll for r in reference_response_nll(model, seqs)}
    written = {r["id"]: r["nll"] for _, r in read_jsonl(run / "eval" / "checkpoint" / "nll" / "items.jsonl")}
    assert set(written) == set(engine) == set(reference)
    for i, v in written.items():
        assert v == pytest.approx(engine[i], rel=1e-6) and v == pytest.approx(reference[i], rel=1e-4), i
