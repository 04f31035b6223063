"""LongAlign-10k's layout, as is, from score to train: records that are exactly `{"messages": [...]}`
(no id) get their content id in every stage, go through `select score hmg`, `rank`, `budget`,
`train mix`, `train tokenize` and two training steps; the same records as Parquet and as a
`save_to_disk` folder score the same (same ids, same bytes); and an input edited in place after a run
is noticed by each step."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from longcurate.cli import main
from longcurate.core.records import content_id

from .conftest import WORDS, write_jsonl

FP32 = ["select.dtype=float32", "select.device=cpu"]


def longalign_records(n: int, seed: int = 0) -> list[dict]:
    """LongAlign-10k's exact layout: a user turn (context, blank line, question) and the answer."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        paras = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 70))) for _ in range(rng.randint(3, 6))]
        fact = f"The pass code of vault {i} is {rng.randint(1000, 9999)}."
        paras.insert(rng.randrange(len(paras)), fact)
        out.append({"messages": [{"role": "user", "content": "\n\n".join(paras) + f"\n\nWhat is the pass code of vault {i}?"},
                                 {"role": "assistant", "content": fact}]})
    return out


def _read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _score(inp, run: Path, model) -> Path:
    assert main(["select", "score", "hmg", "--input", str(inp), "--model", str(model), "--window", "256",
                 f"output_dir={run}", *FP32]) == 0
    return run / "select" / "hmg.jsonl"


@pytest.fixture
def longalign(tmp_path):
    recs = longalign_records(5)
    path = tmp_path / "longalign.jsonl"
    write_jsonl(path, recs)
    return path, recs


def test_longalign_from_score_to_train(tmp_path, longalign, tiny_folder):
    la, recs = longalign
    run = tmp_path / "run"
    ids = sorted(content_id(r) for r in recs)
    hmg = _score(la, run, tiny_folder)
    assert sorted(r["id"] for r in _read(hmg)) == ids and not (run / "select/hmg.rejected.jsonl").exists()
    assert main(["select", "rank", f"output_dir={run}"]) == 0
    assert main(["select", "budget", "3", f"output_dir={run}", "--input", str(la)]) == 0
    budget = run / "budgets" / "gateau-3.jsonl"
    assert {r["id"] for r in _read(budget)} <= set(ids) and len(_read(budget)) == 3
    short = tmp_path / "short.jsonl"
    write_jsonl(short, [{"conversations": [{"from": "human", "value": f"Hi {i}?"}, {"from": "gpt", "value": f"Hello {i}."}]}
                        for i in range(4)])
    assert main(["train", "mix", "--long", str(budget), "--short", str(short), "--short-size", "2",
                 f"output_dir={run}"]) == 0
    mixture = _read(run / "mixture" / "mixture.jsonl")
    assert {r["id"] for r in mixture if r["source"] == "long"} == {r["id"] for r in _read(budget)}
    assert main(["train", "tokenize", "--model", str(tiny_folder), "--max-length", "1024", f"output_dir={run}"]) == 0
    assert json.loads((run / "mixture" / "tokenized.done").read_text())["by_source"] == {"long": 3, "short": 2}
    assert main(["train", "fit", "--model", str(tiny_folder), "--max-steps", "2", f"output_dir={run}",
                 "train.precision=fp32", "train.per_device_batch_size=2", "train.gradient_checkpointing=false"]) == 0
    assert json.loads((run / "checkpoint.done").read_text())["steps"] == 2
    assert (run / "checkpoint" / "model.safetensors").exists()
    # the raw LongAlign file mixed directly: the ids select gave its records
    assert main(["train", "mix", "--long", str(la), "--output", str(tmp_path / "direct.jsonl"), f"output_dir={run}"]) == 0
    assert sorted(r["id"] for r in _read(tmp_path / "direct.jsonl")) == ids


def test_parquet_and_datasets_folder_score_the_same(tmp_path, longalign, tiny_folder):
    import datasets

    la, recs = longalign
    ds = datasets.Dataset.from_list(recs)
    ds.to_parquet(str(tmp_path / "longalign.parquet"))
    ds.save_to_disk(str(tmp_path / "longalign-ds"))
    want = _score(la, tmp_path / "jsonl", tiny_folder).read_bytes()
    assert _score(tmp_path / "longalign.parquet", tmp_path / "parquet", tiny_folder).read_bytes() == want
    assert _score(tmp_path / "longalign-ds", tmp_path / "ds", tiny_folder).read_bytes() == want


def test_an_input_edited_in_place_is_noticed(tmp_path, longalign, tiny_folder, capsys):
    """Scoring refuses (its parts were made from the old content) and says the input changed; the
    budgets, the mixture and the tokenized data (policy redo) are made again."""
    la, recs = longalign
    run = tmp_path / "run"
    _score(la, run, tiny_folder)
    assert main(["select", "rank", f"output_dir={run}"]) == 0
    assert main(["select", "budget", "5", f"output_dir={run}", "--input", str(la)]) == 0
    mix = ["train", "mix", "--long", str(la), f"output_dir={run}"]
    assert main(mix) == 0
    tok = ["train", "tokenize", "--model", str(tiny_folder), "--max-length", "1024", f"output_dir={run}"]
    assert main(tok) == 0
    edited = [recs[0], {"messages": [recs[1]["messages"][0], {"role": "assistant", "content": "Another answer."}]},
              *recs[2:]]
    write_jsonl(la, edited)  # fixed in place: same path, other content
    capsys.readouterr()
    assert main(["select", "score", "hmg", "--input", str(la), "--model", str(tiny_folder), "--window", "256",
                 f"output_dir={run}", *FP32]) == 2
    assert f"the input {la} changed" in capsys.readouterr().err
    assert main(["select", "budget", "5", f"output_dir={run}", "--input", str(la)]) == 2  # a ranked id left the input
    assert "not in the samples file" in capsys.readouterr().err
    assert not (run / "budgets" / "budgets.jsonl.done").exists()  # redone (and stopped), no longer complete
    old_mix = (run / "mixture" / "mixture.jsonl").read_bytes()
    old_tok = json.loads((run / "mixture" / "tokenized.done").read_text())["params"]
    assert main(mix) == 0
    assert (run / "mixture" / "mixture.jsonl").read_bytes() != old_mix
    assert content_id(edited[1]) in {r["id"] for r in _read(run / "mixture" / "mixture.jsonl")}
    assert main(tok) == 0
    new_tok = json.loads((run / "mixture" / "tokenized.done").read_text())["params"]
    assert new_tok["mixture_sha256"] != old_tok["mixture_sha256"]
