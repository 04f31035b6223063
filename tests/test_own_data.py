"""Your own data, handled right (issue 23): the same 20 conversations in every supported shape and
container — messages, ShareGPT variants, alpaca, mapped columns; plain and gzip'd JSONL, a zstd JSON
list, Parquet, a `datasets` folder, a folder, a glob — go through `select run` and `train mix` and
come out with the same ids, the same score files (byte for byte) and the same mixture. The report
counts answers per conversation and the split rule each sample was cut by. LongAlign-format records
without `length` get a `length` budget of the longest samples by token count."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from longcurate.cli import main

WORDS = ("river stone market winter garden signal copper harbor lantern meadow orbit canyon violet engine "
         "falcon marble thunder velvet prairie summit cobalt ember glacier harvest island jungle").split()
SMALL = ["select.dtype=float32", "select.device=cpu", "select.window=48", "select.segment_tokens=24",
         "select.max_segments=4", "select.budgets=[5]", "select.split=first-blank-line", "select.turns=last"]


def conversations(n: int = 20, seed: int = 0) -> list[dict]:
    """(system, earlier exchange, question, document, answer): the task first, then the document (the
    layout alpaca's instruction + input makes); every 4th has a system prompt, every 5th an earlier turn."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        doc = "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(15, 40))) for _ in range(rng.randint(2, 4)))
        out.append({"system": "Answer from the document." if i % 4 == 0 else "",
                    "before": (f"Hello, can you help with item {i}?", "Of course.") if i % 5 == 0 else None,
                    "question": f"Which word opens document {i}?", "document": doc, "answer": doc.split()[0]})
    return out


def as_messages(c: dict, user: str = "user", bot: str = "assistant", role: str = "role", text: str = "content") -> list:
    turns = [{role: "system", text: c["system"]}] if c["system"] else []
    if c["before"]:
        turns += [{role: user, text: c["before"][0]}, {role: bot, text: c["before"][1]}]
    return turns + [{role: user, text: f"{c['question']}\n\n{c['document']}"}, {role: bot, text: c["answer"]}]


def shapes(convs: list[dict]) -> dict[str, tuple[list[dict], list[str]]]:
    """Each shape's records and the config overrides that read it (select and train mix)."""
    sharegpt_mixed = []
    for i, c in enumerate(convs):  # ShareGPT as found in the wild: other bot names, a top-level system,
        turns = as_messages({**c, "system": ""}, "human", ["gpt", "chatgpt", "bing", "bard"][i % 4], "from", "value")
        if i % 3 == 0:  # a leading bot greeting and an unanswered last turn: both dropped
            turns = [{"from": "gpt", "value": "Hi! How can I help?"}, *turns, {"from": "human", "value": "Thanks!"}]
        sharegpt_mixed.append({"system": c["system"], "conversations": turns} if c["system"] else {"conversations": turns})

    def alpaca(c: dict, keys=("instruction", "input", "output", "system", "history")) -> dict:
        rec = {keys[0]: c["question"], keys[1]: c["document"], keys[2]: c["answer"]}
        if c["system"]:
            rec[keys[3]] = c["system"]
        if c["before"]:
            rec[keys[4]] = [list(c["before"])]
        return rec

    mapped = ["columns.instruction=q", "columns.input=doc", "columns.output=a", "columns.system=sys",
              "columns.history=earlier"]
    speakers = ["columns.messages=dialog"]
    return {
        "messages": ([{"messages": as_messages(c)} for c in convs], []),
        "sharegpt": ([{"conversations": as_messages(c, "human", "gpt", "from", "value")} for c in convs], []),
        "sharegpt-wild": (sharegpt_mixed, []),
        "alpaca": ([alpaca(c) for c in convs], []),
        "mapped-alpaca": ([alpaca(c, ("q", "doc", "a", "sys", "earlier")) for c in convs], mapped),
        "mapped-turns": ([{"dialog": as_messages(c, "Patient", "Doctor", "speaker", "text")} for c in convs],
                         [*speakers, "role_key=speaker", "content_key=text", "roles={Patient: user, Doctor: assistant}"]),
    }


def write_container(records: list[dict], folder: Path, container: str) -> Path:
    """The records in one container; the path to give as input."""
    import datasets
    import zstandard

    lines = "".join(json.dumps(r) + "\n" for r in records)
    folder.mkdir(parents=True, exist_ok=True)
    if container == "jsonl":
        (folder / "data.jsonl").write_text(lines)
        return folder / "data.jsonl"
    if container == "jsonl.gz":
        (folder / "data.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
        return folder / "data.jsonl.gz"
    if container == "json.zst":  # a JSON list, compressed: read a record at a time
        (folder / "data.json.zst").write_bytes(zstandard.ZstdCompressor().compress(json.dumps(records, indent=1).encode()))
        return folder / "data.json.zst"
    if container == "parquet":
        datasets.Dataset.from_list(records).to_parquet(str(folder / "data.parquet"))
        return folder / "data.parquet"
    if container == "datasets":
        datasets.Dataset.from_list(records).save_to_disk(str(folder / "ds"))
        return folder / "ds"
    half = len(records) // 2
    (folder / "parts").mkdir(exist_ok=True)
    (folder / "parts" / "part-0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:half]))
    (folder / "parts" / "part-1.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in records[half:]).encode()))
    return folder / "parts" if container == "folder" else Path(str(folder / "parts" / "part-*"))


CASES = [("messages", "jsonl"), ("messages", "jsonl.gz"), ("messages", "json.zst"), ("messages", "parquet"),
         ("messages", "datasets"), ("messages", "folder"), ("messages", "glob"), ("sharegpt", "jsonl"),
         ("sharegpt-wild", "jsonl"), ("alpaca", "jsonl"), ("alpaca", "parquet"), ("mapped-alpaca", "jsonl"),
         ("mapped-turns", "datasets")]


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.mark.slow
def test_the_same_conversations_in_every_shape_and_container(tmp_path, tiny_model_dir):
    convs = conversations()
    variants = shapes(convs)
    seen: dict[str, dict] = {}
    for shape, container in CASES:
        records, mapping = variants[shape]
        inp = write_container(records, tmp_path / "in" / f"{shape}-{container}", container)
        run = tmp_path / "runs" / f"{shape}-{container}"
        select_map = [f"select.input_format.{m}" for m in mapping]
        assert main(["select", "run", "--input", str(inp), f"output_dir={run}", f"model={tiny_model_dir}",
                     *SMALL, *select_map]) == 0, (shape, container)
        assert main(["train", "mix", "--long", str(run / "budgets" / "gateau-5.jsonl"), "--short", str(inp),
                     f"output_dir={run}", *[f"train.mix.short_format.{m}" for m in mapping]]) == 0
        got = {name: (run / "select" / name).read_bytes() for name in ("hmg.jsonl", "cam.jsonl", "ranked.jsonl")}
        got["budget ids"] = [r["id"] for r in _lines(run / "budgets" / "gateau-5.jsonl")]
        got["mixture"] = [{k: v for k, v in r.items() if k != "origin"} for r in _lines(run / "mixture" / "mixture.jsonl")]
        manifest = json.loads((run / "select.manifest.json").read_text())
        report = manifest["stats"]["hmg"]["input"]
        assert report["samples"] == 20 and report["answers"] == {"1": 16, "2": 4}, (shape, container, report)
        named = shape in ("alpaca", "mapped-alpaca")
        assert report["split"] == ({"fields": 20} if named else {"first-blank-line": 20}), (shape, container, report)
        assert report["derived"] == {"id": 20, "length": 20, "kind": 20}
        if shape == "sharegpt-wild":
            assert report["normalised"]["leading assistant turn dropped"] == 7
            assert report["normalised"]["unanswered last user turn dropped"] == 7
        for key, value in got.items():
            first = seen.setdefault(key, {"case": (shape, container), "value": value})
            assert value == first["value"], f"{shape}/{container}: {key} differs from {first['case']}"
    mixture = seen["mixture"]["value"]
    assert len(mixture) == 20 and sum(r["source"] == "long" for r in mixture) == 5  # the 5 long ones deduplicated
    assert len({r["id"] for r in mixture}) == 20 and all(r["id"].startswith("rec-") for r in mixture)


def test_longalign_records_without_length_get_a_length_budget_of_the_longest(tmp_path, tiny_model_dir):
    """LongAlign's layout (document, blank line, question; no id, no length): the `length` budget
    holds the samples with the most tokens, from the token counts scoring measured — not the first
    records of the file, as a missing `length` read as 0 gave."""
    rng = random.Random(1)
    sizes = [30, 260, 60, 220, 90, 180, 120, 150]  # words; the file order is not the length order
    recs = [{"messages": [{"role": "user", "content": " ".join(rng.choice(WORDS) for _ in range(n)) + f"\n\nQuestion {i}?"},
                          {"role": "assistant", "content": f"Answer {i}."}]} for i, n in enumerate(sizes)]
    inp = tmp_path / "longalign.json"
    inp.write_text(json.dumps(recs))
    run = tmp_path / "run"
    assert main(["select", "run", "--input", str(inp), f"output_dir={run}", f"model={tiny_model_dir}",
                 "select.dtype=float32", "select.device=cpu", "select.window=64", "select.cam=false",
                 "select.budgets=[3]", "select.baselines=[length,random]"]) == 0
    tokens = {r["id"]: r["n_tokens"] for r in _lines(run / "select" / "hmg.jsonl")}
    budget = _lines(run / "budgets" / "length-3.jsonl")
    assert [r["id"] for r in budget] == sorted(tokens, key=lambda i: -tokens[i])[:3]
    longest_words = sorted(range(len(sizes)), key=lambda i: -sizes[i])[:3]
    assert [r["instruction"] for r in budget] == [f"Question {i}?" for i in longest_words]
    assert all(r["kind"] is None and r["length"] is None for r in budget)  # not invented: "fine", 0
