"""Scoring chunks: a fixed count (the default: the chunk decides the engine's batches, hence the last
digits of the scores, so the same chunks on every machine) or about `select.chunk_seconds` of work at
the previous chunk's speed; either way the sizes are recorded before a chunk runs, and a resumed run
cuts the same chunks. Also: the select commands' help lists only the flags each one reads."""

from __future__ import annotations

import json

import pytest

from longcurate.core.errors import ConfigError
from longcurate.select.config import SelectConfig
from longcurate.select.shard import ChunkSizer, chunk_plan_path, run_joint_parts


def test_sizer_fixed_and_by_time():
    assert ChunkSizer(fixed=3).next_size([10, 10, 10, 10]) == 3
    timed = ChunkSizer(fixed=None, seconds=10)
    assert timed.next_size([100] * 50) == 1  # nothing measured yet
    timed.observe(tokens=200, seconds=2.0)  # 100 tokens / s: 1,000 tokens per chunk
    assert timed.next_size([300, 300, 300, 300]) == 3
    assert timed.next_size([5000, 10]) == 1  # one sample over the budget still makes a chunk
    with pytest.raises(ConfigError, match="select.chunk_size"):  # the config refuses, before any work
        SelectConfig(chunk_size=0)
    with pytest.raises(ConfigError, match="select.chunk_seconds"):
        SelectConfig(chunk_size=None, chunk_seconds=0)


class FakeScorer:
    """A scorer whose chunks take `seconds_per_token` on a fake clock; it records every chunk."""

    def __init__(self, lengths: dict[str, int], seconds_per_token: float, crash_at: int | None = None):
        self.lengths, self.spt, self.crash_at = lengths, seconds_per_token, crash_at
        self.now = 0.0
        self.chunks: list[list[str]] = []

    def clock(self) -> float:
        return self.now

    def compute(self, chunk: list[str]) -> dict[str, list[dict]]:
        if self.crash_at is not None and len(self.chunks) == self.crash_at:
            raise KeyboardInterrupt("crash")
        self.chunks.append(chunk)
        self.now += self.spt * sum(self.lengths[i] for i in chunk)
        return {"": [{"id": i, "chunk": len(self.chunks)} for i in chunk]}


def _run(tmp_path, scorer: FakeScorer, sizer: ChunkSizer):
    ids = sorted(scorer.lengths)
    lengths = [scorer.lengths[i] for i in ids]
    return run_joint_parts({"": tmp_path / "part.jsonl"}, ids, ids, lengths, {"": None}, scorer.compute, sizer,
                           show_progress=False, clock=scorer.clock)


def test_chunks_sized_by_time_and_recorded(tmp_path):
    lengths = {f"s{i:02d}": 100 for i in range(20)}
    scorer = FakeScorer(lengths, seconds_per_token=0.01)  # 1 s per sample
    counts = _run(tmp_path, scorer, ChunkSizer(fixed=None, seconds=4))
    assert counts[""] == {"written": 20, "skipped": 0}
    assert [len(c) for c in scorer.chunks] == [1, 4, 4, 4, 4, 3]  # about 4 s each after the first
    plan = json.loads(chunk_plan_path(tmp_path / "part.jsonl").read_text())
    assert plan == {"n": 20, "sizes": [1, 4, 4, 4, 4, 3]}


def test_a_resumed_run_cuts_the_recorded_chunks(tmp_path):
    """The first run dies in its third chunk; the second runs three times as fast, yet recomputes that
    chunk exactly as the first run cut it, and sizes only the chunks after it by its own speed."""
    lengths = {f"s{i:02d}": 100 for i in range(20)}
    first = FakeScorer(lengths, seconds_per_token=0.01, crash_at=2)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, first, ChunkSizer(fixed=None, seconds=4))
    assert json.loads(chunk_plan_path(tmp_path / "part.jsonl").read_text())["sizes"] == [1, 4, 4]
    faster = FakeScorer(lengths, seconds_per_token=0.01 / 3)
    counts = _run(tmp_path, faster, ChunkSizer(fixed=None, seconds=4))
    assert counts[""] == {"written": 15, "skipped": 5}
    assert [len(c) for c in faster.chunks] == [4, 11]  # the recorded third chunk, then up to 12 samples per 4 s
    rows = [json.loads(x) for x in (tmp_path / "part.jsonl").read_text().splitlines()]
    assert len(rows) == len({r["id"] for r in rows}) == 20


def test_fixed_chunks_ignore_the_clock(tmp_path):
    scorer = FakeScorer({f"s{i}": 10 * (i + 1) for i in range(7)}, seconds_per_token=1.0)
    _run(tmp_path, scorer, ChunkSizer(fixed=3))
    assert scorer.chunks == [["s6", "s5", "s4"], ["s3", "s2", "s1"], ["s0"]]  # longest first


def _help(*words: str) -> str:
    from longcurate.cli import build_parser
    from longcurate.core.cli import subparsers_of

    parser = build_parser()
    for w in words:
        parser = subparsers_of(parser)[w]
    return parser.format_help()


@pytest.mark.parametrize("words, absent, present", [
    (("select", "score", "cam"), ["--window"], ["--model", "--num-shards", "--shard-index"]),
    (("select", "score", "hmg"), [], ["--window", "--model", "--num-shards"]),
    (("select", "rank"), ["--num-shards", "--shard-index", "--input", "--model"], ["--hmg", "--cam", "--alpha", "--output"]),
    (("select", "diagnose"), ["--num-shards", "--shard-index", "--model"], ["--input", "--hmg", "--output"]),
    (("select", "merge"), ["--shard-index", "--model", "--window"], ["--num-shards", "--kind", "--input"]),
    (("select", "budget"), ["--num-shards", "--output", "--model"], ["--ranked", "--out-dir", "--input"]),
])
def test_help_lists_only_the_flags_a_command_reads(words, absent, present):
    text = _help(*words)
    for flag in absent:
        assert f"{flag} " not in text and f"{flag}\n" not in text, (words, flag)
    for flag in present:
        assert flag in text, (words, flag)
    if words == ("select", "merge"):
        assert "WORLD_SIZE or 1" in text


def test_time_sized_chunks_from_the_command_line(tmp_path, tiny_folder):
    from longcurate.cli import main

    from .conftest import make_samples, write_jsonl

    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, make_samples(6, seed=2, min_par=2, max_par=5))
    out = tmp_path / "hmg.jsonl"
    assert main(["select", "score", "hmg", "--input", str(inp), "--output", str(out), "--model", str(tiny_folder),
                 "--window", "256", "select.chunk_size=null", "select.chunk_seconds=60",
                 "select.dtype=float32", "select.device=cpu"]) == 0
    sizes = json.loads(chunk_plan_path(tmp_path / "hmg.part-0-of-1.jsonl").read_text())["sizes"]
    assert sizes[0] == 1 and sum(sizes) == 6  # one sample measured, then the rest within 60 s
    assert len(out.read_text().splitlines()) == 6
