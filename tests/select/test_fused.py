"""One θ_B forward for HMG and CAM: the engine's `nll_and_attention` equals `response_nll` +
`segment_attention`, and the select stage's joint scoring writes the files the separate `score hmg`
and `score cam` commands write (same ids, fields and rejects; values within float tolerance), with
cam_limit, sharding and resume."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import pytest

from longcurate.cli import main
from longcurate.core.engine import ScoreItem, ScoringEngine

from .conftest import make_samples, write_jsonl

FP32 = ["select.dtype=float32", "select.device=cpu"]
SETTINGS = {"window": 256, "max_segments": 4, "chunk_size": 3, "dtype": "float32", "device": "cpu"}
# Min-max normalised fields divide by the dataset's tiny PPL range (random model): looser, as in test_cli.
_DERIVED = {"norm_ppl_a", "norm_ppl_b", "hmg"}


@pytest.fixture(scope="module")
def peaky_model():
    """Tiny GQA Llama with large weights, so attention is far from uniform."""
    from oracles.models import random_llama

    return random_llama(seed=11, hidden_size=64, num_layers=3, num_heads=8, num_kv_heads=2,
                        initializer_range=0.3)


def _items(n: int, min_len: int, max_len: int, seed: int, no_segments: tuple[int, ...] = ()) -> list[ScoreItem]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        length = rng.randint(min_len, max_len)
        r = rng.randint(1, 40)
        ctx_end = length - r - rng.randint(1, 10)
        spans, s = [], rng.randint(0, 8)
        while s < ctx_end:
            e = min(s + rng.randint(5, 64), ctx_end)
            spans.append((s, e))
            s = e
        items.append(ScoreItem(f"f{i}", [rng.randrange(49152) for _ in range(length)], length - r,
                               [] if i in no_segments else spans))
    return items


def _count_forwards(engine: ScoringEngine):
    calls = []
    handle = engine.decoder.register_forward_hook(lambda *a: calls.append(1))
    return calls, handle


def _assert_fused_equals_separate(engine, items, **kw):
    nll_sep = engine.response_nll(items)
    attn_sep = engine.segment_attention(items, **kw)
    calls, handle = _count_forwards(engine)
    try:
        nll, attn = engine.nll_and_attention(items, **kw)
    finally:
        handle.remove()
    assert len(calls) == len(engine._plan(items))  # one forward per batch, not two
    assert [r.id for r in nll] == [it.id for it in items]
    for got, want in zip(nll, nll_sep):
        assert got.n_tokens == want.n_tokens
        assert got.nll_sum == pytest.approx(want.nll_sum, rel=1e-6)
    assert len(attn) == len(items)
    for got, want, it in zip(attn, attn_sep, items):
        assert got.shape == want.shape == (len(it.segment_spans),)
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    return nll, attn


def test_nll_and_attention_equals_separate_mixed_lengths(peaky_model):
    items = _items(9, 30, 600, seed=0, no_segments=(2, 5))
    engine = ScoringEngine(peaky_model, batch_tokens=1500, max_batch_size=3, show_progress=False)
    assert len(engine._plan(items)) > 2  # several batches, lengths mixed inside them
    _, attn = _assert_fused_equals_separate(engine, items, key_block=64)
    assert attn[2].shape == (0,) and attn[5].shape == (0,)
    for a, it in zip(attn, items):
        if it.segment_spans:
            assert a.sum() == pytest.approx(1.0)
    assert peaky_model.config._attn_implementation == "sdpa"  # restored


@pytest.mark.parametrize("layers", [[0], [2, -3]])
def test_nll_and_attention_layers_raw(peaky_model, layers):
    items = _items(5, 40, 300, seed=1)
    engine = ScoringEngine(peaky_model, batch_tokens=4096, show_progress=False)
    _assert_fused_equals_separate(engine, items, layers=layers, key_block=50, normalize=False)
    with pytest.raises(ValueError, match="out of range"):
        engine.nll_and_attention(items, layers=[3])


def test_nll_and_attention_without_any_segments(peaky_model):
    items = _items(4, 20, 200, seed=2, no_segments=(0, 1, 2, 3))
    engine = ScoringEngine(peaky_model, batch_tokens=4096, show_progress=False)
    nll, attn = _assert_fused_equals_separate(engine, items)
    assert all(a.shape == (0,) for a in attn)
    assert engine.nll_and_attention([]) == ([], [])


# -- the stage: joint scoring == separate commands --------------------------------------------------


def _read(path):
    return [json.loads(x) for x in Path(path).read_text().splitlines()]


def _assert_same_file(a_path, b_path, tol=1e-5):
    a, b = _read(a_path), _read(b_path)
    assert [r["id"] for r in a] == [r["id"] for r in b]
    for ra, rb in zip(a, b):
        assert list(ra) == list(rb), ra["id"]  # same fields, same order
        for k, v in ra.items():
            w = rb[k]
            if isinstance(v, float) or (isinstance(v, list) and v and isinstance(v[0], float)):
                t = 1e-4 if k in _DERIVED else tol
                assert w == pytest.approx(v, rel=tol, abs=t), (ra["id"], k)
            else:
                assert w == v, (ra["id"], k)


@pytest.fixture
def data(tmp_path):
    """8 samples plus two whose context is too short for a segment (HMG scores them, CAM rejects them)."""
    recs = make_samples(8, seed=5, min_par=3, max_par=8)
    recs.insert(1, dict(recs[0], id="short1", context="Tiny context.", gold=[]))
    recs.insert(6, dict(recs[3], id="short2", context="Another tiny one.", gold=[]))
    path = tmp_path / "in.jsonl"
    write_jsonl(path, recs)
    return path


def _separate(tmp_path, data, tiny_folder, *extra) -> Path:
    out = tmp_path / "sep"
    for kind in ("hmg", "cam"):
        assert main(["select", "score", kind, "--input", str(data), "--output", str(out / f"{kind}.jsonl"),
                     "--model", str(tiny_folder), "select.window=256", "select.max_segments=4",
                     "select.chunk_size=3", *FP32, *extra]) == 0
    return out


def _cfg(out: Path, data: Path, tiny_folder, **select):
    from longcurate.config import RunConfig
    from longcurate.core.config import build

    return build(RunConfig, {"output_dir": str(out), "model": str(tiny_folder),
                             "select": {"input": str(data), **SETTINGS, "budgets": [2, 0.5], **select}})


def _compare(sep: Path, joint: Path, n_hmg: int, n_cam: int) -> None:
    for kind, n in (("hmg", n_hmg), ("cam", n_cam)):
        _assert_same_file(sep / f"{kind}.jsonl", joint / f"{kind}.jsonl")
        assert len(_read(joint / f"{kind}.jsonl")) == n
        rej_sep, rej_joint = sep / f"{kind}.rejected.jsonl", joint / f"{kind}.rejected.jsonl"
        assert rej_sep.exists() == rej_joint.exists()
        if rej_sep.exists():
            assert rej_sep.read_text() == rej_joint.read_text()


def test_stage_joint_equals_separate_commands(tmp_path, data, tiny_folder, monkeypatch):
    from longcurate.core import engine as engine_mod
    from longcurate.select.stage import run_stage

    sep = _separate(tmp_path, data, tiny_folder)
    seen = {"response_nll": [], "segment_attention": [], "nll_and_attention": []}  # (id, length) per method
    for name in seen:
        orig = getattr(ScoringEngine, name)

        def wrapped(self, items, *a, _orig=orig, _name=name, **kw):
            seen[_name].extend((it.id, len(it.input_ids)) for it in items)
            return _orig(self, items, *a, **kw)
        monkeypatch.setattr(engine_mod.ScoringEngine, name, wrapped)
    out = tmp_path / "joint"
    stats = run_stage(_cfg(out, data, tiny_folder))
    assert stats["hmg"]["merged"]["scored"] == 10 and stats["cam"]["merged"]["scored"] == 8
    assert stats["cam"]["rejected"] == 2
    # Every full prompt went through θ_B exactly once, in the joint forward; response_nll saw only θ_A's
    # windows (of the samples that do not fit: the others reuse θ_B's NLL) and CAM's segment rows.
    full = seen["nll_and_attention"]
    assert len(full) == len(set(full)) == 10 and not seen["segment_attention"]
    assert not set(full) & set(seen["response_nll"])
    assert any("#seg" in i for i, _ in seen["response_nll"])
    _compare(sep, out / "select", n_hmg=10, n_cam=8)
    assert (out / "select/ranked.jsonl").exists()


def test_stage_joint_cam_limit_and_limit(tmp_path, data, tiny_folder):
    from longcurate.select.stage import run_stage

    sep = _separate(tmp_path, data, tiny_folder, "select.limit=9", "select.cam_limit=4")
    out = tmp_path / "joint"
    run_stage(_cfg(out, data, tiny_folder, limit=9, cam_limit=4))
    # CAM on the first 4 records (one of them too short), HMG on the first 9.
    _compare(sep, out / "select", n_hmg=9, n_cam=3)


def test_joint_shards_merge_to_separate(tmp_path, data, tiny_folder, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    from longcurate.select.scoring import merge_scores, run_scores
    from longcurate.select.steps import ScoreSteps

    sep = _separate(tmp_path, data, tiny_folder)
    out = tmp_path / "joint"
    cfg = _cfg(out, data, tiny_folder, num_shards=2)
    for k in (0, 1):
        stats = run_scores(dataclasses.replace(cfg, select=dataclasses.replace(cfg.select, shard_index=k)),
                           ["hmg", "cam"], show_progress=False)
        assert "merged" not in stats["hmg"] and "merged" not in stats["cam"]  # explicit shards: merged later
        assert (out / f"select/hmg.part-{k}-of-2.jsonl").exists() and (out / f"select/cam.part-{k}-of-2.jsonl").exists()
    for kind in ("hmg", "cam"):
        merge_scores(cfg, ScoreSteps.of(cfg, kind), 2)
    _compare(sep, out / "select", n_hmg=10, n_cam=8)


def test_joint_resume_after_crash(tmp_path, data, tiny_folder, monkeypatch):
    """A crash after the first chunk (and a CAM line lost after HMG's was written): the re-run scores
    only what is missing and ends with the files of an uninterrupted run, byte for byte."""
    from longcurate.select import cam as cam_mod
    from longcurate.select.scoring import run_scores

    ref = tmp_path / "ref"
    run_scores(_cfg(ref, data, tiny_folder), ["hmg", "cam"], show_progress=False)

    out = tmp_path / "run"
    cfg = _cfg(out, data, tiny_folder)
    orig = cam_mod.cam_records
    seen = []

    def crashing(batch, *a, **kw):
        seen.append(1)
        if len(seen) == 2:
            raise KeyboardInterrupt("crash")
        return orig(batch, *a, **kw)
    monkeypatch.setattr(cam_mod, "cam_records", crashing)
    with pytest.raises(KeyboardInterrupt):
        run_scores(cfg, ["hmg", "cam"], show_progress=False)
    monkeypatch.setattr(cam_mod, "cam_records", orig)
    hmg_part, cam_part = out / "select/hmg.part-0-of-1.jsonl", out / "select/cam.part-0-of-1.jsonl"
    assert len(_read(hmg_part)) == 3 and not (out / "select/hmg.jsonl").exists()
    lines = cam_part.read_bytes().splitlines(keepends=True)
    assert 1 <= len(lines) <= 3
    cam_part.write_bytes(b"".join(lines[:-1]) + b'{"id": "s0')  # lost the last CAM line, torn write
    stats = run_scores(cfg, ["hmg", "cam"], show_progress=False)
    assert stats["hmg"]["skipped"] == 3 and stats["hmg"]["written"] == 7
    assert stats["cam"]["written"] == 8 - len(lines) + 1
    assert stats["hmg"]["merged"]["scored"] == 10 and stats["cam"]["merged"]["scored"] == 8
    for kind in ("hmg", "cam"):
        assert (out / f"select/{kind}.jsonl").read_bytes() == (ref / f"select/{kind}.jsonl").read_bytes()
    # done: a third run loads no model and rewrites nothing
    again = run_scores(cfg, ["hmg", "cam"], show_progress=False)
    assert again["hmg"]["skipped"] is True and again["cam"]["skipped"] is True
