"""`longcurate check contamination`: which eval items' answers, keys or needles occur in the training
data, and their 13-gram share; every eval kind and training format; quarantine; table and JSON."""

from __future__ import annotations

import json

import pytest

from longcurate.cli import main
from longcurate.core.jsonl import write_jsonl
from longcurate.eval.contamination import check_contamination, record_text

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def sentence(i: int, n: int = 20) -> str:
    """A sentence of `n` words that no other `sentence(j)` shares a 13-gram with."""
    return " ".join(f"{WORDS[(i * 7 + k) % len(WORDS)]}{i}x{k}" for k in range(n)) + "."


def probe(i: int, task: str = "document") -> dict:
    return {"id": f"{task}-s0-p{i}", "task": task, "set_id": 0, "position_id": i, "num_positions": 5,
            "key": f"keyphrase{i} zeta", "answer": sentence(i), "context": "c", "instruction": "q"}


@pytest.fixture
def files(tmp_path):
    """Five probes; training data in three formats (samples, a mixture, ShareGPT) that mention none."""
    probes = tmp_path / "probes.jsonl"
    write_jsonl(probes, [probe(i) for i in range(5)])
    filler = " ".join(sentence(100 + i) for i in range(3))
    samples = tmp_path / "samples.jsonl"
    write_jsonl(samples, [{"id": f"in2-{i}", "kind": "fine", "context": filler, "instruction": "Quote it.",
                           "response": sentence(200 + i),
                           "messages": [{"role": "user", "content": filler + "\n\nQuote it."},
                                        {"role": "assistant", "content": sentence(200 + i)}]} for i in range(4)])
    sharegpt = tmp_path / "sharegpt.jsonl"
    write_jsonl(sharegpt, [{"id": "chat-0", "conversations": [{"from": "human", "value": "Hello there."},
                                                              {"from": "gpt", "value": sentence(300)}]}])
    return tmp_path, probes, samples, sharegpt


def test_planted_answers_are_exactly_the_ones_reported(files, capsys):
    """Three probe answers planted into a copy of the training data: exactly those three are reported."""
    tmp_path, probes, samples, sharegpt = files
    copy = tmp_path / "planted.jsonl"
    rows = [json.loads(x) for x in samples.read_text().splitlines()]
    answers = [json.loads(x)["answer"] for x in probes.read_text().splitlines()]
    for row, i in zip(rows[:3], (0, 2, 4)):  # planted upper-cased, with the whitespace changed: still found
        text = f"Some words before. {answers[i].upper().replace(' ', '  ')} And after."
        row["messages"][1]["content"] = text
        row["response"] = text
    write_jsonl(copy, rows)
    out = tmp_path / "c.json"
    assert main(["check", "contamination", "--train", str(copy), str(sharegpt), "--eval", str(probes),
                 "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [it["id"] for it in result["items"] if it["exact"]] == ["document-s0-p0", "document-s0-p2", "document-s0-p4"]
    assert all(it["exact_fields"] == ["answer"] for it in result["items"] if it["exact"])
    assert result["exact_items"] == 3 and result["training_records"] == 5
    shares = {it["id"]: it["share"] for it in result["items"]}
    assert shares == {"document-s0-p0": 1.0, "document-s0-p1": 0.0, "document-s0-p2": 1.0, "document-s0-p3": 0.0,
                      "document-s0-p4": 1.0}
    table = capsys.readouterr().out
    assert "eval file" in table and "mean 13-gram share" in table
    row = next(line for line in table.splitlines() if line.startswith(str(probes)))
    assert row.split()[1:6] == ["probe", "5", "3", "0", "0.600"]  # kind, items, exact, exact <= 2 words, share
    assert "document-s0-p0 (exact: answer)" in row
    # the original training data: clean
    assert main(["check", "contamination", "--train", str(samples), str(sharegpt), "--eval", str(probes),
                 "--output", str(out), "--require-clean"]) == 0
    assert json.loads(out.read_text())["exact_items"] == 0
    # --require-clean with the planted copy: exit 2, naming the items
    assert main(["check", "contamination", "--train", str(copy), "--eval", str(probes), "--output", str(out),
                 "--require-clean"]) == 2
    err = capsys.readouterr().err
    assert "3 eval item(s)" in err and "document-s0-p2" in err


def test_ngram_share_counts_distinct_13_grams(tmp_path):
    """A 20-word answer has 8 distinct 13-grams; training text holding its first 15 words has 3."""
    answer = sentence(7)
    words = answer.split()
    ev = tmp_path / "ev.jsonl"
    write_jsonl(ev, [{"id": "x", "answers": [answer, "short one"]}])  # LongBench: every answer is checked
    train = tmp_path / "train.jsonl"
    write_jsonl(train, [{"text": " ".join(words[:15]) + " unrelated tail words here."}])
    from longcurate.core.jsonl import Rejects

    with Rejects(tmp_path / "r.jsonl") as rejects:
        res = check_contamination([train], [ev], rejects)
    (item,) = res.items
    assert item.kind == "longbench" and item.ngrams == 8 and item.ngrams_found == 3
    assert item.share == pytest.approx(3 / 8) and not item.exact
    write_jsonl(train, [{"text": "we said: Short One, twice"}])  # a short answer: exact match only
    with Rejects(tmp_path / "r.jsonl") as rejects:
        (item,) = check_contamination([train], [ev], rejects).items
    assert item.exact and item.exact_fields == ["answer[1]"] and item.ngrams_found == 0
    assert item.exact_short  # found only by a two-word text: counted apart in the table and the summary


def test_every_eval_kind_and_named_fields(tmp_path):
    from longcurate.core.jsonl import Rejects

    ev = tmp_path / "mixed.jsonl"
    write_jsonl(ev, [
        {"id": "needle-L512-d0", "needle": "The plum cake hides cardamom.", "key_words": ["cardamom"]},
        {"_id": "lb1", "answers": ["Paris"], "dataset": "hotpotqa"},
        {**probe(1, "code"), "answer": "parse_items", "key": "x = compute(y)"},
        {"id": "heldout-000000", "kind": "fine", "context": "c", "instruction": "i", "response": "A held-out reply.",
         "source": {"key_fragments": ["hides cardamom"]}},
        {"id": "nothing", "question": "no answer here"},
    ])
    train = tmp_path / "train.jsonl"
    write_jsonl(train, [{"messages": [{"role": "user", "content": "the plum cake hides cardamom. x = compute(y)"},
                                      {"role": "assistant", "content": "in Paris"}]}])
    with Rejects(tmp_path / "rej.jsonl") as rejects:
        res = check_contamination([train], [ev], rejects)
    got = {it.id: (it.kind, it.task, it.exact_fields) for it in res.items}
    assert got == {"needle-L512-d0": ("needle", None, ["needle"]), "lb1": ("longbench", "hotpotqa", ["answer"]),
                   "code-s0-p1": ("probe", "code", ["key"]), "heldout-000000": ("sample", "fine", ["key"])}
    bad = [json.loads(x) for x in (tmp_path / "rej.jsonl").read_text().splitlines()]
    assert [(b["file"], b["line"], b["field"]) for b in bad] == [(str(ev), 5, "answer")]
    # named fields: any JSONL
    qa = tmp_path / "qa.jsonl"
    write_jsonl(qa, [{"qid": 1, "gold": ["cardamom", "saffron"], "hint": "plum cake"}, {"qid": 2}])
    with Rejects(tmp_path / "rej2.jsonl") as rejects:
        res = check_contamination([train], [qa], rejects, answer_field="gold", key_field="hint")
    (item,) = res.items
    assert item.kind == "fields" and item.exact_fields == ["answer[0]", "key"]
    assert rejects.total == 1  # line 2 has no `gold`


def test_training_records_are_read_once_and_bad_lines_quarantined(tmp_path):
    from longcurate.core.jsonl import Rejects

    # messages win over the string fields (the same text is not scanned twice); ShareGPT conversations
    assert record_text({"context": "ctx", "messages": [{"role": "user", "content": "u"},
                                                       {"role": "assistant", "content": "a"}]}) == "u\na"
    assert record_text({"conversations": [{"from": "human", "value": "h"}, {"from": "gpt", "value": "g"}]}) == "h\ng"
    assert record_text({"id": "s1", "context": "c", "n": 3, "response": "r"}) == "s1\nc\nr"
    ev = tmp_path / "ev.jsonl"
    write_jsonl(ev, [probe(0)])
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join([json.dumps({"text": "fine"}), "{broken", json.dumps({"n": 1}),
                                json.dumps({"messages": "not a list"}), json.dumps({"text": sentence(0)})]) + "\n")
    with Rejects(tmp_path / "rej.jsonl") as rejects:
        res = check_contamination([train], [ev], rejects)
    assert res.training_records == 2 and res.items[0].exact
    bad = [json.loads(x) for x in (tmp_path / "rej.jsonl").read_text().splitlines()]
    assert [(b["line"], b["field"]) for b in bad] == [(2, None), (3, "messages"), (4, "messages")]
    assert all(b["file"] == str(train) for b in bad)


def test_cli_writes_the_quarantine_beside_the_json(files, capsys):
    tmp_path, probes, samples, _ = files
    bad = tmp_path / "bad.jsonl"
    bad.write_text(samples.read_text() + "{not json\n")
    out = tmp_path / "out" / "check.json"
    assert main(["check", "contamination", "--train", str(bad), "--eval", str(probes), "--output", str(out)]) == 0
    assert "rejected: 1" in capsys.readouterr().out
    rej = [json.loads(x) for x in (tmp_path / "out" / "check.json.rejected.jsonl").read_text().splitlines()]
    assert rej[0]["line"] == 5 and rej[0]["file"] == str(bad)
    assert main(["check", "contamination", "--train", str(tmp_path / "missing.jsonl"), "--eval", str(probes),
                 "--output", str(out)]) == 2


def test_summary_line_counts_short_matches_apart(tmp_path):
    from longcurate.core.jsonl import Rejects
    from longcurate.eval.contamination import summary_line

    ev = tmp_path / "held.jsonl"
    write_jsonl(ev, [{"id": "h0", "kind": "fine", "response": "best", "context": "c", "instruction": "i"},
                     {"id": "h1", "kind": "fine", "response": sentence(3), "context": "c", "instruction": "i"},
                     {"id": "h2", "kind": "fine", "response": sentence(4), "context": "c", "instruction": "i"}])
    train = tmp_path / "train.jsonl"
    write_jsonl(train, [{"text": f"the best of all. {sentence(3)}"}])
    with Rejects(tmp_path / "r.jsonl") as rejects:
        res = check_contamination([train], [ev], rejects)
    assert [(it.id, it.exact, it.exact_short) for it in res.items] == [("h0", True, True), ("h1", True, False),
                                                                       ("h2", False, False)]
    line = summary_line(res.to_dict())
    assert line.startswith("**Contamination:** 2 of 3 eval items have an answer, key or needle in the training data "
                           "(sample 2/3; 1 of them only by a text of at most 2 words")
    assert "mean 13-gram share 0.500" in line  # h0 has no 13-gram; h1 1.0, h2 0.0


def test_require_clean_ignores_matches_only_by_short_texts():
    """A one-word answer occurs in any large training set: reported, but not a reason to stop."""
    from longcurate.core.errors import UserError
    from longcurate.eval.contamination import require_clean

    short = {"id": "h0", "file": "f", "exact": True, "exact_short": True, "exact_fields": ["answer"]}
    long = {"id": "p1", "file": "f", "exact": True, "exact_short": False, "exact_fields": ["answer"]}
    require_clean({"items": [short]}, "eval.require_clean")
    with pytest.raises(UserError, match=r"1 eval item\(s\) occur in the training data: p1"):
        require_clean({"items": [short, long]}, "eval.require_clean")


@pytest.mark.parametrize("case", ["empty train", "gzip train", "gzip eval", "no text in train", "no item in eval",
                                  "not json train"])
def test_empty_or_unreadable_inputs_are_refused_in_one_line(files, case, capsys):
    """A check that read nothing must not pass as clean: exit 2, one line naming the file."""
    import gzip

    tmp_path, probes, samples, _ = files
    bad = tmp_path / "bad.jsonl"
    if case == "empty train" or case == "no item in eval":
        bad.write_text("" if case == "empty train" else json.dumps({"id": "x", "text": "no answer here"}) + "\n")
    elif case.startswith("gzip"):
        bad.write_bytes(gzip.compress((samples if case == "gzip train" else probes).read_bytes()))
    elif case == "no text in train":
        bad.write_text(json.dumps({"n": 3, "ok": True}) + "\n")
    else:
        bad.write_text("this is not json\n")
    train, ev = (samples, bad) if case.endswith("eval") else (bad, probes)
    out = tmp_path / "c.json"
    code = main(["check", "contamination", "--train", str(train), "--eval", str(ev), "--output", str(out),
                 "--require-clean"])
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if line.startswith("longcurate:")]  # beside the progress bar
    assert code == 2 and len(said) == 1 and str(bad) in said[0] and "Traceback" not in err, err
    assert not out.exists()
    if case.startswith("gzip"):
        assert "compressed" in err


def test_a_one_million_word_eval_text_is_matched_exactly(tmp_path):
    """The automaton holds only an anchor of each eval text (pyahocorasick crashed on a 150,000-word
    one); the whole text is checked in place: found where a training text holds all of it, not where
    one holds only its start."""
    import time

    from longcurate.core.jsonl import Rejects
    from longcurate.core.overlap import ANCHOR_CHARS

    words = [f"w{i}" for i in range(1_000_000)]
    needle = " ".join(words)
    ev = tmp_path / "needle.jsonl"
    write_jsonl(ev, [{"id": "huge", "needle": needle}, {"id": "small", "needle": sentence(1)}])
    train = tmp_path / "train.jsonl"
    start = " ".join(words[:2000])
    assert len(start) > ANCHOR_CHARS  # the anchor matches, the rest does not
    write_jsonl(train, [{"text": f"Before. {start} but then something else."}])
    t0 = time.perf_counter()
    with Rejects(tmp_path / "r.jsonl") as rejects:
        res = check_contamination([train], [ev], rejects)
    assert [it.exact for it in res.items] == [False, False]
    assert res.items[0].ngrams == 1_000_000 - 12 and res.items[0].ngrams_found == 2000 - 12
    write_jsonl(train, [{"text": f"Before. {needle.upper()} and after."}])
    with Rejects(tmp_path / "r.jsonl") as rejects:
        res = check_contamination([train], [ev], rejects)
    assert [it.exact for it in res.items] == [True, False] and res.items[0].share == 1.0
    assert time.perf_counter() - t0 < 20
