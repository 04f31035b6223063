"""Held-out IN2 samples and the train / eval split of synth's corpus: the training samples and the
held-out samples never share a document (not even as filler), the held-out file resumes and repeats
byte for byte, and a change of the split is refused like any other setting change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longcurate.cli import build_parser
from longcurate.config import RunConfig, resolve_config
from longcurate.core.errors import ConfigError, SettingsChanged
from longcurate.core.holdout import HoldoutConfig, side_of
from longcurate.synth.config import CorpusConfig, SynthConfig
from longcurate.synth.corpus import read_corpus
from longcurate.synth.pipeline import run_synth
from longcurate.synth.stage import run_stage
from longcurate.synth.streams import heldout_stream, training_stream

SEP = "\n\n"


def _cfg(corpus: Path, root: Path, *extra: str, n: int = 60, heldout: int = 30) -> RunConfig:
    argv = ["synth", "run", "--corpus", str(corpus), "--num-samples", str(n), "--heldout-samples", str(heldout),
            "--min-tokens", "1024", "--max-tokens", "2048", "--seed", "5", "--no-progress", f"output_dir={root}",
            *extra]
    return resolve_config(build_parser().parse_args(argv))


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def _docs_of_piece(piece: str, docs: dict[str, str]) -> set[str]:
    return {doc_id for doc_id, text in docs.items() if piece in text}


def test_heldout_and_training_samples_share_no_document(corpus, tmp_path, tokenizer):
    cfg = _cfg(corpus, tmp_path / "run")
    stats = run_stage(cfg, progress=False)  # the stage: both files, their reports, the manifest
    assert stats["complete"] and stats["heldout"]["complete"]
    layout = cfg.layout()
    train, held = _lines(layout.samples), _lines(layout.heldout)
    assert [s["id"] for s in train] == [f"in2-{i:06d}" for i in range(60)]
    assert [s["id"] for s in held] == [f"heldout-{i:06d}" for i in range(30)]
    assert {s["kind"] for s in held} == {"fine", "multihop"}  # long kinds only
    assert {s["kind"] for s in train} == {"fine", "multihop", "short"}

    train_gold = {d for s in train for d in s["source"]["doc_ids"]}
    held_gold = {d for s in held for d in s["source"]["doc_ids"]}
    assert train_gold and held_gold and not train_gold & held_gold
    assert {side_of(d, cfg.holdout) for d in train_gold} == {"train"}
    assert {side_of(d, cfg.holdout) for d in held_gold} == {"eval"}

    # Fillers too: every piece of every context comes from a document of its own side only.
    docs = {d.doc_id: d.text for d in read_corpus(cfg.synth.corpus)}
    sides = {doc_id: side_of(doc_id, cfg.holdout) for doc_id in docs}
    assert 0 < sum(s == "eval" for s in sides.values()) < len(docs)
    for samples, side in ((train, "train"), (held, "eval")):
        for s in samples:
            pieces = [s["context"]] if s["kind"] == "short" else s["context"].split(SEP)
            for piece in pieces:
                found = _docs_of_piece(piece, docs)
                assert found and {sides[d] for d in found} == {side}, (s["id"], piece[:60])
    assert stats["corpus"]["side"] == "train" and stats["heldout"]["corpus"]["side"] == "eval"
    # the manifest records the split each file was drawn with
    recorded = json.loads(layout.manifest("synth").read_text())["stats"]
    assert recorded["holdout"] == {"side": "train", "fraction": 0.2, "salt": cfg.holdout.salt}
    assert recorded["heldout"]["holdout"] == {"side": "eval", "fraction": 0.2, "salt": cfg.holdout.salt}
    assert recorded["heldout"]["kinds"] == {k: sum(s["kind"] == k for s in held) for k in ("fine", "multihop")}


def test_heldout_file_resumes_repeats_and_is_skipped_when_done(corpus, tmp_path, tokenizer):
    a, b = _cfg(corpus, tmp_path / "a"), _cfg(corpus, tmp_path / "b")
    run_synth(a, progress=False, tokenizer=tokenizer)
    run_synth(b, progress=False, tokenizer=tokenizer)
    ref = a.layout().heldout.read_bytes()
    assert ref == b.layout().heldout.read_bytes() and len(ref.splitlines()) == 30

    # another random stream than the training samples': no shared context, question or gold document
    train, held = _lines(a.layout().samples), _lines(a.layout().heldout)
    assert not {s["context"] for s in train} & {s["context"] for s in held}
    assert not {s["instruction"] for s in train} & {s["instruction"] for s in held}
    # (with the training seed, sample i of both files would get the same target length)
    pairs = [(t["source"]["target_length"], h["source"]["target_length"]) for t, h in zip(train, held)
             if t["kind"] != "short"]
    assert len(pairs) > 20 and sum(x == y for x, y in pairs) <= 2

    # a re-run redoes nothing
    out = b.layout().heldout
    before = out.stat().st_mtime_ns
    again = run_synth(b, progress=False, tokenizer=tokenizer)
    assert again["skipped"] and again["heldout"]["skipped"] and out.stat().st_mtime_ns == before

    # killed after 7 held-out samples: the re-run continues and equals the uninterrupted file
    out.write_bytes(b"".join(ref.splitlines(keepends=True)[:7]))
    out.with_name(out.name + ".done").unlink()
    resumed = run_synth(b, progress=False, tokenizer=tokenizer)
    assert resumed["skipped"]  # the training samples were finished
    assert resumed["heldout"]["already_done"] == 7 and resumed["heldout"]["written"] == 23
    assert out.read_bytes() == ref

    # more held-out samples extend the file; the first ones stay as they were
    more = run_synth(_cfg(corpus, tmp_path / "b", heldout=36), progress=False, tokenizer=tokenizer)
    assert more["heldout"]["already_done"] == 30 and out.read_bytes().startswith(ref)


def test_a_changed_split_is_refused_naming_the_key(corpus, tmp_path, tokenizer):
    root = tmp_path / "run"
    run_synth(_cfg(corpus, root), progress=False, tokenizer=tokenizer)
    samples = (root / "samples.jsonl").read_bytes()
    with pytest.raises(SettingsChanged, match=r"holdout\.fraction: 0\.2 -> 0\.3"):
        run_synth(_cfg(corpus, root, "holdout.fraction=0.3"), progress=False, tokenizer=tokenizer)
    # the held-out file refuses too (training samples written elsewhere first)
    heldout = (root / "heldout.jsonl").read_bytes()
    with pytest.raises(SettingsChanged, match=r"heldout\.jsonl.*holdout\.salt: 'longcurate-holdout-v1' -> 'other'"):
        run_synth(_cfg(corpus, root, "holdout.salt=other", f"synth.output={tmp_path / 'other.jsonl'}"),
                  progress=False, tokenizer=tokenizer)
    assert (root / "samples.jsonl").read_bytes() == samples and (root / "heldout.jsonl").read_bytes() == heldout


def test_which_part_the_training_samples_read(corpus, tmp_path, tokenizer):
    # a corpus of synth's own, no held-out samples: all of it
    own = _cfg(corpus, tmp_path / "own", heldout=0)
    assert training_stream(own).side is None
    stats = run_synth(own, progress=False, tokenizer=tokenizer)
    every = sum(1 for _ in read_corpus(own.synth.corpus))
    assert stats["corpus"]["documents"] + stats["corpus"]["rejected_documents"] == every == 300
    assert stats["holdout"] == {"side": None} and "heldout" not in stats
    assert not own.layout().heldout.exists()
    # the same corpus as eval's, or the bundled one: the train part
    shared = _cfg(corpus, tmp_path / "shared", f"eval.corpus={corpus}", heldout=0)
    assert training_stream(shared).side == "train"
    stats = run_synth(shared, progress=False, tokenizer=tokenizer)
    n_train = sum(side_of(d.doc_id, shared.holdout) == "train" for d in read_corpus(shared.synth.corpus))
    assert stats["corpus"]["documents"] + stats["corpus"]["rejected_documents"] == n_train < 300
    assert training_stream(RunConfig()).side == "train" and heldout_stream(RunConfig()).side == "eval"


def test_heldout_settings_are_checked():
    with pytest.raises(ConfigError, match="heldout_samples"):
        SynthConfig(heldout_samples=-1)
    with pytest.raises(ConfigError, match="holdout.fraction > 0"):  # before any work
        RunConfig(synth=SynthConfig(corpus=CorpusConfig(path="x.jsonl"), heldout_samples=5),
                  holdout=HoldoutConfig(fraction=0.0))


def test_the_heldout_output_is_locked_too(corpus, tmp_path, tokenizer):
    import os
    import socket

    from longcurate.core.lock import OutputLocked, output_lock

    cfg = _cfg(corpus, tmp_path / "run", n=10, heldout=5)
    with output_lock(cfg.layout().heldout):  # another run is writing the held-out samples
        with pytest.raises(OutputLocked, match=f"pid {os.getpid()} on {socket.gethostname()}"):
            run_synth(cfg, progress=False, tokenizer=tokenizer)
    assert not cfg.layout().heldout.exists()
    assert run_synth(cfg, progress=False, tokenizer=tokenizer)["heldout"]["complete"]  # released: it runs
