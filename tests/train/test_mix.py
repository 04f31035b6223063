"""Mixture building: exact budgets, short size/ratio, dedup, seed determinism, rejects, the completion step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longcurate.core.chat_formats import InputFormat
from longcurate.core.config import to_dict
from longcurate.core.errors import ConfigError
from longcurate.core.jsonl import done_marker, dumps, file_digest, rejected_path
from longcurate.core.prompts import messages_for
from longcurate.core.records import RecordError
from longcurate.train.chat import conversation_hash, parse_conversation
from longcurate.train.config import MixConfig
from longcurate.train.mix import build_mixture, summary

REPO = Path(__file__).resolve().parents[2]


def long_record(i: int) -> dict:
    ctx, ins, resp = f"Context {i} " + "filler text. " * 20, f"What is item {i}?", f"Item {i} is thing {i}."
    return {"id": f"in2-{i:06d}", "kind": "fine", "context": ctx, "instruction": ins, "response": resp,
            "messages": messages_for(ctx, ins, resp), "gold": [], "num_segments": 3, "length": 100,
            "source": {}}


def short_record(i: int, style: str = "sharegpt") -> dict:
    q, a = f"Question number {i}?", f"Answer number {i}."
    if style == "sharegpt":
        return {"id": f"sg-{i}", "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}
    return {"id": f"sg-{i}", "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def write(path: Path, records: list) -> str:
    path.write_text("".join((r if isinstance(r, str) else dumps(r)) + "\n" for r in records), encoding="utf-8")
    return str(path)


def read(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def inputs(tmp_path):
    budget = write(tmp_path / "long-30.jsonl", [long_record(i) for i in range(30)])
    short = write(tmp_path / "short.jsonl",
                  [short_record(i, "sharegpt" if i % 2 else "messages") for i in range(100)])
    return budget, short


def test_budget_is_honoured_exactly_and_ratio(inputs, tmp_path):
    budget, short = inputs
    out = str(tmp_path / "mix" / "mixture.jsonl")
    m = build_mixture([budget], short, out, short_ratio=2.0, seed=1, progress=False)
    recs = read(out)
    assert m["long"] == 30 and m["short"] == 60 and m["total"] == 90 == len(recs)
    assert sum(r["source"] == "long" for r in recs) == 30
    assert {r["id"] for r in recs if r["source"] == "long"} == {f"in2-{i:06d}" for i in range(30)}
    assert m["sources"][budget] == {"source": "long", "read": 30, "valid": 30, "rejected": 0, "normalised": {},
                                    "duplicates": 0, "used": 30}
    assert m["sources"][short]["used"] == 60 and m["sources"][short]["available"] == 100
    marker = json.loads(done_marker(out).read_text())  # the stats are the mix step's marker
    assert marker.pop("params") == {"long": [{"path": budget, "sha256": file_digest(budget)}],
                                    "short": {"path": short, "sha256": file_digest(short)},
                                    "short_size": None, "short_ratio": 2.0, "seed": 1, "limit": None,
                                    "formats": {k: to_dict(InputFormat()) for k in ("long", "short")}}
    assert marker == m
    for r in recs:
        assert list(r) == ["id", "source", "origin", "messages"]
        assert r["origin"] == (budget if r["source"] == "long" else short)
        assert [t["role"] for t in r["messages"]] == ["user", "assistant"]
    assert "30 long + 60 short = 90" in summary(m)


def test_short_size_and_shortfall(inputs, tmp_path):
    budget, short = inputs
    m = build_mixture([budget], short, str(tmp_path / "a.jsonl"), short_size=7, progress=False)
    assert (m["long"], m["short"], m["short_shortfall"]) == (30, 7, 0)
    m = build_mixture([budget], short, str(tmp_path / "b.jsonl"), short_size=500, progress=False)
    assert (m["short"], m["short_requested"], m["short_shortfall"]) == (100, 500, 400)
    m = build_mixture([budget], None, str(tmp_path / "c.jsonl"), progress=False)
    assert (m["long"], m["short"]) == (30, 0)
    with pytest.raises(ConfigError, match="give one"):  # the config refuses both, before any work
        MixConfig(short=str(short), short_size=1, short_ratio=1.0)


def test_two_budget_files_and_limit(inputs, tmp_path):
    budget, short = inputs
    other = write(tmp_path / "long-other.jsonl", [long_record(i) for i in range(100, 110)])
    m = build_mixture([budget, other], short, str(tmp_path / "m.jsonl"), short_size=5, progress=False)
    assert m["long"] == 40 and m["sources"][other]["used"] == 10
    m = build_mixture([budget, other], short, str(tmp_path / "l.jsonl"), short_size=50, limit=4,
                      progress=False)
    assert (m["long"], m["short"]) == (8, 4)


def test_seed_determinism(inputs, tmp_path):
    budget, short = inputs
    a, b, c = (str(tmp_path / f"{n}.jsonl") for n in "abc")
    build_mixture([budget], short, a, short_ratio=1.0, seed=5, progress=False)
    build_mixture([budget], short, b, short_ratio=1.0, seed=5, progress=False)
    build_mixture([budget], short, c, short_ratio=1.0, seed=6, progress=False)
    assert Path(a).read_bytes() == Path(b).read_bytes()
    assert Path(a).read_bytes() != Path(c).read_bytes()
    ids_a = [r["id"] for r in read(a)]
    assert ids_a != sorted(ids_a)  # shuffled, not in file order


def test_dedup_by_normalised_content(tmp_path):
    budget = write(tmp_path / "long.jsonl", [long_record(i) for i in range(5)])
    dup_of_long = {"id": "copy", "messages": long_record(2)["messages"]}
    spaced = {"id": "sp", "conversations": [{"from": "human", "value": "  Question   number 1? "},
                                             {"from": "gpt", "value": "Answer number 1.\n"}]}
    short = write(tmp_path / "short.jsonl",
                  [short_record(1), short_record(2), dup_of_long, spaced, short_record(2, "messages")])
    out = str(tmp_path / "m.jsonl")
    m = build_mixture([budget], short, out, progress=False)
    assert m["sources"][short]["duplicates"] == 3 and m["duplicates"] == 3
    assert (m["long"], m["short"]) == (5, 2)
    hashes = [conversation_hash(r["messages"]) for r in read(out)]
    assert len(hashes) == len(set(hashes))


def test_bad_input_rejected_with_reasons(tmp_path):
    budget = write(tmp_path / "long.jsonl", [long_record(0), {**long_record(1), "response": "  "},
                                             "{not json"])
    short = write(tmp_path / "short.jsonl", [
        short_record(0),
        {"id": "unanswered", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"},
                                               {"from": "human", "value": "bye?"}]},  # the last turn is dropped
        {"id": "empty", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "  "}]},
        {"id": "robot", "conversations": [{"from": "robot", "value": "hi"}, {"from": "gpt", "value": "x"}]},
        {"id": "order", "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "q"},
                                     {"role": "assistant", "content": "r"}]},
        {"id": "greeting", "messages": [{"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "q"},
                                        {"role": "assistant", "content": "r"}]},  # the greeting is dropped
        {"id": "nothing", "messages": [{"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "q"}]},
        {"id": "none"},
    ])
    out = str(tmp_path / "m.jsonl")
    m = build_mixture([budget], short, out, progress=False)
    assert (m["long"], m["short"]) == (1, 3)
    assert m["rejected_by_reason"] == {"no user turn with an answer": 1, "empty assistant turn": 1, "unknown role": 1,
                                       "turns do not alternate": 1, "no conversation": 1, "empty response": 1,
                                       "invalid JSON": 1}
    assert m["sources"][short] == {"source": "short", "read": 8, "valid": 3, "rejected": 5, "duplicates": 0,
                                   "normalised": {"leading assistant turn dropped": 1,  # of the records kept
                                                  "unanswered last user turn dropped": 1},
                                   "available": 3, "used": 3}
    assert m["sources"][budget]["read"] == 3 and m["sources"][budget]["rejected"] == 2
    rej = read(str(rejected_path(out)))
    by_id = {r["id"]: r for r in rej}
    assert by_id["order"]["reason"].startswith("turns do not alternate") and by_id["order"]["field"] == "messages[1].role"
    assert by_id["order"]["line"] == 5 and by_id["order"]["file"] == short
    assert "leading assistant turn dropped" in summary(m)
    assert by_id["robot"]["reason"].startswith("unknown role: 'robot'") and by_id["robot"]["field"] == "conversations[0].from"
    assert by_id["empty"]["field"] == "conversations[1].value"
    assert m["rejected_file"] == str(rejected_path(out))


def test_rerun_redoes_nothing_and_stale_rejects_go(inputs, tmp_path):
    budget, short = inputs
    out = tmp_path / "m.jsonl"
    rejected_path(out).write_text("stale\n")
    first = build_mixture([budget], short, str(out), short_size=10, progress=False)
    assert not rejected_path(out).exists()
    stamp = out.stat().st_mtime_ns, done_marker(out).stat().st_mtime_ns
    again = build_mixture([budget], short, str(out), short_size=10, progress=False)
    assert again.pop("skipped") is True and again == first
    assert (out.stat().st_mtime_ns, done_marker(out).stat().st_mtime_ns) == stamp
    changed = build_mixture([budget], short, str(out), short_size=11, progress=False)  # policy: redo
    assert "skipped" not in changed and changed["short"] == 11


def test_changed_input_bytes_redo_the_mixture(inputs, tmp_path):
    budget, short = inputs
    out = tmp_path / "m.jsonl"
    build_mixture([budget], short, str(out), short_size=10, progress=False)
    write(Path(budget), [long_record(i) for i in range(31)])  # same path, other content
    again = build_mixture([budget], short, str(out), short_size=10, progress=False)
    assert "skipped" not in again and again["long"] == 31
    assert json.loads(done_marker(out).read_text())["params"]["long"][0]["sha256"] == file_digest(budget)


def test_parse_conversation_roles():
    msgs = parse_conversation({"conversations": [{"from": "system", "value": "be nice"},
                                                 {"from": "user", "value": "q"}, {"from": "chatgpt", "value": "a"},
                                                 {"from": "Human", "value": "q2"}, {"from": "bard", "value": "a2"}]})
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant"]
    with pytest.raises(RecordError, match="misplaced system"):
        parse_conversation({"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": "s"},
                                         {"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]})


def test_demo_short_chat_file_is_clean(tmp_path):
    path = REPO / "data" / "short_chat_demo.jsonl"
    assert path.stat().st_size < 1_000_000
    m = build_mixture([], str(path), str(tmp_path / "m.jsonl"), progress=False)
    assert m["rejected"] == 0 and m["duplicates"] == 0 and m["short"] >= 90
    multi = [r for r in read(str(tmp_path / "m.jsonl")) if len(r["messages"]) > 3]
    assert len(multi) >= 10


def test_1k_budget_gives_exactly_1000_long_samples(tmp_path):
    budget = write(tmp_path / "long-1k.jsonl", [long_record(i) for i in range(1000)])
    short = write(tmp_path / "short.jsonl", [short_record(i) for i in range(300)])
    out = str(tmp_path / "m.jsonl")
    m = build_mixture([budget], short, out, short_ratio=0.25, seed=0, progress=False)
    assert m["long"] == 1000 and m["sources"][budget]["used"] == 1000 and m["short"] == 250
    assert sum(r["source"] == "long" for r in read(out)) == 1000


@pytest.mark.parametrize("literal", ["NaN", "Infinity", '"long"'])
def test_bad_length_is_quarantined_and_the_rest_mixed(tmp_path, literal):
    bad = dumps({**long_record(1), "length": "@@"}).replace('"@@"', literal)
    budget = write(tmp_path / "long.jsonl", [long_record(0), bad, long_record(2)])
    out = str(tmp_path / "m.jsonl")
    m = build_mixture([budget], None, out, progress=False)
    assert m["long"] == 2 and m["rejected"] == 1
    (row,) = read(str(rejected_path(out)))
    assert (row["line"], row["id"], row["field"]) == (2, "in2-000001", "length")
    assert row["reason"].startswith("not a non-negative whole number")
    assert {r["id"] for r in read(out)} == {"in2-000000", "in2-000002"}


def test_records_without_ids_get_their_content_id(tmp_path):
    """LongAlign-10k and ShareGPT sets have no ids: the content id, the one select gives them (not
    `<file>:<line>`), whatever the file format."""
    import datasets

    from longcurate.core.chat_formats import read_chat
    from longcurate.core.records import content_id

    longalign = [{"messages": long_record(i)["messages"]} for i in range(3)]
    chat = [{k: v for k, v in short_record(i).items() if k != "id"} for i in range(4)]
    budget = write(tmp_path / "la.jsonl", longalign)
    datasets.Dataset.from_list(chat).to_parquet(str(tmp_path / "chat.parquet"))
    out = str(tmp_path / "m.jsonl")
    m = build_mixture([budget], str(tmp_path / "chat.parquet"), out, progress=False)
    assert (m["long"], m["short"]) == (3, 4)
    ids = {r["id"]: r["source"] for r in read(out)}
    assert ids == {**{content_id(r): "long" for r in longalign}, **{read_chat(r).id: "short" for r in chat}}
    assert {read_chat(r).id for r in chat} == {content_id({"messages": read_chat(r).messages}) for r in chat}
    datasets.Dataset.from_list(longalign).save_to_disk(str(tmp_path / "la-ds"))
    folder = build_mixture([str(tmp_path / "la-ds")], None, str(tmp_path / "f.jsonl"), progress=False)
    assert folder["long"] == 3 and {r["id"] for r in read(str(tmp_path / "f.jsonl"))} == {
        content_id(r) for r in longalign}


def test_a_mixture_of_nothing_but_rejects_is_an_error(tmp_path):
    from longcurate.core.errors import UserError

    budget = write(tmp_path / "long.jsonl", ["{not json", {**long_record(1), "response": " "}, {"id": "x"}])
    out = tmp_path / "m.jsonl"
    with pytest.raises(UserError, match=r"the mixture would be empty: all 3 records .* were rejected \(.*invalid JSON: 1"):
        build_mixture([budget], None, str(out), progress=False)
    assert not out.exists() and not done_marker(out).exists() and rejected_path(out).exists()
    empty = write(tmp_path / "empty.jsonl", [])
    assert build_mixture([empty], None, str(tmp_path / "e.jsonl"), progress=False)["total"] == 0  # empty in, empty out


def test_a_locked_mixture_is_refused(inputs, tmp_path):
    from longcurate.core.lock import OutputLocked, output_lock

    budget, short = inputs
    out = tmp_path / "m.jsonl"
    with output_lock(out):
        with pytest.raises(OutputLocked, match=r"is being written by pid \d+ on "):
            build_mixture([budget], short, str(out), progress=False)
    assert not out.exists()
    assert build_mixture([budget], short, str(out), progress=False)["long"] == 30
