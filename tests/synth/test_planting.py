"""`synth.planted`: a share of the training samples becomes each planted type (the code `select audit`
plants with), every record says what it is, a rerun plants nothing twice, a change is refused."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from longcurate.cli import build_parser
from longcurate.config import resolve_config
from longcurate.core.errors import ConfigError, SettingsChanged
from longcurate.core.planted import normalized
from longcurate.synth.pipeline import run_synth

SHARES = "synth.planted.shares={far: 0.5, local: 0.25, absent: 0.125, wrong: 0.125}"


def _cfg(corpus: Path, root: Path, *extra: str):
    argv = ["synth", "run", "--corpus", str(corpus), "--num-samples", "40", "--min-tokens", "1024",
            "--max-tokens", "1536", "--seed", "2", "--no-progress", f"output_dir={root}", SHARES,
            "synth.planted.window=512", *extra]
    return resolve_config(build_parser().parse_args(argv))


def test_planted_shares_in_the_training_samples(corpus, tmp_path):
    cfg = _cfg(corpus, tmp_path / "run")
    stats = run_synth(cfg, progress=False)
    rows = [json.loads(x) for x in cfg.layout().samples.read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"in2-{i:06d}" for i in range(40)]
    kinds = Counter(r["planted"]["type"] for r in rows)
    assert dict(kinds) == {k: v for k, v in stats["planted"].items() if not k.endswith("failed")}
    long_samples = sum(r["kind"] != "short" for r in rows)
    for t, share in (("far", 0.5), ("local", 0.25), ("absent", 0.125), ("wrong", 0.125)):
        failed = stats["planted"].get(f"{t} failed", 0)
        assert abs(kinds[t] + failed - share * long_samples) <= 1, stats["planted"]
    for r in rows:
        p = r["planted"]
        if p["type"] == "far":
            assert p["evidence"] == "beyond" and p["evidence_offset"] >= 32
        if p["type"] == "local":
            assert p["evidence"] == "inside" and p["evidence_offset"] <= -32
        if p["type"] == "absent":
            assert normalized(r["response"]) not in normalized(r["context"]) and r["gold"] == []
        assert r["messages"][1]["content"] == r["response"]

    before = cfg.layout().samples.read_bytes()
    again = run_synth(cfg, progress=False)  # complete: skipped, nothing planted twice
    assert again.get("skipped") and cfg.layout().samples.read_bytes() == before
    with pytest.raises(SettingsChanged, match="planted"):
        run_synth(_cfg(corpus, tmp_path / "run", "synth.planted.margin=8"), progress=False)


def test_planted_shares_need_a_window_and_known_types():
    from longcurate.synth.config import PlantedConfig

    with pytest.raises(ConfigError, match="window"):
        PlantedConfig(shares={"far": 0.5})
    with pytest.raises(ConfigError, match="shares"):
        PlantedConfig(shares={"far": 0.7, "local": 0.5}, window=512)
    with pytest.raises(ConfigError, match="shares"):
        PlantedConfig(shares={"natural": 0.5}, window=512)
