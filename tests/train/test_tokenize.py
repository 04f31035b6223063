"""Tokenization: assistant-only labels (ChatML and FILM), middle truncation, skip, the Arrow dataset."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from longcurate.core.jsonl import done_marker, dumps, rejected_path
from longcurate.core.prompts import messages_for
from longcurate.train.chat import render
from longcurate.train.tokenize import IGNORE_INDEX, encode, tokenize_mixture
from oracles.train import encode_reference

CONVERSATION = [
    {"role": "system", "content": "You answer in one sentence."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
    {"role": "user", "content": "And of Japan? Ünïcode — 東京?"},
    {"role": "assistant", "content": "Tokyo (東京) is the capital of Japan."},
    {"role": "user", "content": "Thanks!\n\nOne more: 2+2?"},
    {"role": "assistant", "content": "2 + 2 = 4.\nThat is all."},
]


def labelled_runs(tokenizer, labels: list[int]) -> list[str]:
    """Decode each maximal run of labelled tokens."""
    runs, cur = [], []
    for x in labels + [IGNORE_INDEX]:
        if x != IGNORE_INDEX:
            cur.append(x)
        elif cur:
            runs.append(tokenizer.decode(cur))
            cur = []
    return runs


def assistant_texts(messages):
    return [m["content"] for m in messages if m["role"] == "assistant"]


@pytest.mark.parametrize("messages", [CONVERSATION, CONVERSATION[1:]])
def test_chatml_labels_are_exactly_the_assistant_turns(tokenizer, messages):
    e = encode(messages, tokenizer, template="chat")
    eot = tokenizer.eos_token
    assert eot == "<|im_end|>"
    assert labelled_runs(tokenizer, e.labels) == [a + eot for a in assistant_texts(messages)]
    assert all(x == IGNORE_INDEX or x == i for x, i in zip(e.labels, e.input_ids))
    text = tokenizer.decode(e.input_ids)
    assert text == tokenizer.apply_chat_template(messages, tokenize=False)
    assert e.input_ids == tokenizer.apply_chat_template(messages, tokenize=True)["input_ids"]
    assert e.n_response_tokens == sum(x != IGNORE_INDEX for x in e.labels)


def test_film_labels_are_exactly_the_assistant_turns(tokenizer):
    e = encode(CONVERSATION, tokenizer, template="film")
    text = tokenizer.decode(e.input_ids)
    assert text.startswith("You answer in one sentence.\n\n[INST] What is the capital of France? [/INST] The capital")
    # the space after [/INST] merges into the answer's first token: it is the only extra character
    assert labelled_runs(tokenizer, e.labels) == [" " + a + tokenizer.eos_token for a in assistant_texts(CONVERSATION)]


def test_chat_without_template_falls_back_to_film(tokenizer):
    plain = copy.deepcopy(tokenizer)
    plain.chat_template = None
    r = render(CONVERSATION[1:], plain, "chat")
    assert r.text.startswith("[INST] What is the capital of France? [/INST] The capital of France is Paris.")
    assert encode(CONVERSATION[1:], plain).input_ids == encode(CONVERSATION[1:], tokenizer, template="film").input_ids


@pytest.mark.parametrize("template", ["chat", "film"])
def test_offsets_match_prefix_reference(tokenizer, template):
    convs = [CONVERSATION, CONVERSATION[1:3],
             messages_for("Some context.\n\nMore context " * 30, "Which context?", " Leading space answer."),
             [{"role": "user", "content": "x"}, {"role": "assistant", "content": "Ok\n\n\ncode:\n```py\nx=1\n```"}]]
    for messages in convs:
        fast = encode(messages, tokenizer, template=template)
        ref = encode_reference(messages, tokenizer, template=template)
        assert fast.input_ids == ref.input_ids
        assert fast.labels == ref.labels


def long_sample(n_words: int = 400):
    context = " ".join(f"w{i:04d}." for i in range(n_words))
    instruction = "Which word comes right after w0007?"
    response = "The word right after w0007 is w0008."
    return context, instruction, response, messages_for(context, instruction, response)


@pytest.mark.parametrize("template", ["chat", "film"])
def test_truncation_cuts_the_middle_of_the_context(tokenizer, template):
    context, instruction, response, messages = long_sample()
    full = encode(messages, tokenizer, template=template, max_length=10**6)
    e = encode(messages, tokenizer, template=template, max_length=300, overlong="truncate")
    assert e.status == "truncated" and len(e.input_ids) == len(e.labels) == 300
    assert e.original_length == len(full.input_ids) > 300
    text = tokenizer.decode(e.input_ids)
    assert instruction in text and response in text and "### Context:\nw0000. w0001." in text
    assert f"w{399:04d}.\n\n### Instruction:" in text  # the context's end survives
    assert "w0200." not in text  # ... its middle does not
    assert labelled_runs(tokenizer, e.labels) == labelled_runs(tokenizer, full.labels)
    # the kept context is a prefix and a suffix of the original token sequence
    head = next(i for i, (a, b) in enumerate(zip(e.input_ids, full.input_ids)) if a != b)
    assert e.input_ids[head:] == full.input_ids[len(full.input_ids) - (300 - head):]


def test_skip_and_untruncatable(tokenizer):
    _, _, _, messages = long_sample()
    e = encode(messages, tokenizer, max_length=300, overlong="skip")
    assert e.status == "skipped" and e.reason.startswith("over max_length") and e.input_ids == []
    e = encode(messages, tokenizer, max_length=60, overlong="truncate")
    assert e.status == "skipped" and e.reason.startswith("cannot truncate")
    short = encode(CONVERSATION, tokenizer, max_length=300, overlong="skip")
    assert short.status == "kept"
    with pytest.raises(ValueError):
        encode(CONVERSATION, tokenizer, overlong="drop")


def write_mixture(path: Path) -> str:
    recs = []
    for i in range(6):
        c, ins, resp = f"Context {i}. " * 20, f"Question {i}?", f"Answer {i}."
        recs.append({"id": f"L{i}", "source": "long", "origin": "b.jsonl", "messages": messages_for(c, ins, resp)})
    recs.append({"id": "BIG", "source": "long", "origin": "b.jsonl", "messages": long_sample()[3]})
    recs.append({"id": "S0", "source": "short", "origin": "s.jsonl", "messages": CONVERSATION})
    recs.append({"id": "S1", "source": "short", "origin": "s.jsonl", "messages": CONVERSATION[1:3]})
    lines = [dumps(r) for r in recs]
    lines.insert(3, '{"id": "bad", "source": "short", "messages": [{"role": "user", "content": "odd"}]}')
    lines.insert(5, "not json")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_tokenize_mixture_dataset(tokenizer, tmp_path):
    from datasets import load_from_disk

    mix = write_mixture(tmp_path / "mixture.jsonl")
    out = tmp_path / "tok"
    stats = tokenize_mixture(mix, str(out), tokenizer, max_length=300, overlong="truncate", progress=False)
    ds = load_from_disk(str(out))
    assert ds.column_names == ["id", "source", "input_ids", "labels", "length", "n_response_tokens"]
    assert ds["id"] == ["L0", "L1", "L2", "L3", "L4", "L5", "BIG", "S0", "S1"]  # mixture order kept
    for row in ds:
        assert row["length"] == len(row["input_ids"]) == len(row["labels"]) <= 300  # never padded
        assert row["n_response_tokens"] == sum(x != IGNORE_INDEX for x in row["labels"]) > 0
    counts = (stats["input"], stats["kept"], stats["truncated"], stats["skipped_samples"], stats["rejected"])
    assert counts == (11, 9, 1, 0, 2)
    assert stats["rejected_by_reason"] == {"invalid JSON": 1, "no user turn with an answer": 1}
    assert stats["by_source"] == {"long": 7, "short": 2}
    assert stats["total_tokens"] == sum(ds["length"])
    assert stats["response_tokens"] == sum(ds["n_response_tokens"])
    assert len(rejected_path(out).read_text().splitlines()) == 2
    marker = json.loads(done_marker(out).read_text())  # the tokenize step's marker, beside the folder
    assert marker.pop("params")["max_length"] == 300 and marker == stats
    assert sorted(p.name for p in out.iterdir()) == ["data-00000-of-00001.arrow", "dataset_info.json", "state.json"]

    stamp = done_marker(out).stat().st_mtime_ns, (out / "data-00000-of-00001.arrow").stat().st_mtime_ns
    again = tokenize_mixture(mix, str(out), tokenizer, max_length=300, overlong="truncate", progress=False)
    assert again.pop("skipped") is True and again == stats
    assert (done_marker(out).stat().st_mtime_ns, (out / "data-00000-of-00001.arrow").stat().st_mtime_ns) == stamp
    redone = tokenize_mixture(mix, str(out), tokenizer, max_length=400, overlong="truncate", progress=False)
    assert "skipped" not in redone and redone["truncated"] == 1  # policy: redo on other settings
    assert json.loads(done_marker(out).read_text())["params"]["max_length"] == 400

    skipped = tokenize_mixture(mix, str(tmp_path / "skip"), tokenizer, max_length=300, overlong="skip",
                               progress=False)
    assert (skipped["kept"], skipped["truncated"], skipped["skipped_samples"]) == (8, 0, 1)
    assert skipped["skipped_by_reason"] == {"over max_length": 1}
    assert "BIG" not in load_from_disk(str(tmp_path / "skip"))["id"]

    limited = tokenize_mixture(mix, str(tmp_path / "lim"), tokenizer, max_length=300, limit=2, progress=False)
    assert limited["kept"] == 2


def test_num_proc_gives_the_same_rows(tokenizer, tmp_path):
    from datasets import load_from_disk

    mix = write_mixture(tmp_path / "mixture.jsonl")
    one = tokenize_mixture(mix, str(tmp_path / "p1"), tokenizer, max_length=300, num_proc=1, progress=False)
    two = tokenize_mixture(mix, str(tmp_path / "p2"), tokenizer, max_length=300, num_proc=2, progress=False)
    assert {k: v for k, v in one.items()} == two
    assert load_from_disk(str(tmp_path / "p1")).to_dict() == load_from_disk(str(tmp_path / "p2")).to_dict()
    assert json.loads(done_marker(tmp_path / "p2").read_text())["kept"] == 9


def test_empty_mixture_gives_a_loadable_empty_dataset(tokenizer, tmp_path):
    from datasets import load_from_disk

    mix = tmp_path / "m.jsonl"
    mix.write_text("", encoding="utf-8")
    stats = tokenize_mixture(str(mix), str(tmp_path / "out"), tokenizer, progress=False)
    assert (stats["input"], stats["kept"], stats["rejected"]) == (0, 0, 0)
    ds = load_from_disk(str(tmp_path / "out"))
    assert len(ds) == 0 and ds.column_names == ["id", "source", "input_ids", "labels", "length", "n_response_tokens"]


def test_nothing_kept_from_a_non_empty_mixture_is_an_error(tokenizer, tmp_path):
    """Every record rejected or skipped: no dataset, no marker, and the reasons with their counts."""
    from longcurate.core.errors import UserError

    mix = tmp_path / "m.jsonl"
    long_turn = [{"role": "user", "content": "word " * 300}, {"role": "assistant", "content": "ok"}]
    mix.write_text("not json\n" + dumps({"id": "a", "source": "long", "messages": long_turn}) + "\n"
                   + dumps({"id": "b", "source": "medium", "messages": CONVERSATION}) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"no sample of .* could be tokenized \(3 read; .*invalid JSON: 1.*over max_length: 1"):
        tokenize_mixture(str(mix), str(tmp_path / "out"), tokenizer, max_length=64, overlong="skip", progress=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.done").exists()
    assert (tmp_path / "out.rejected.jsonl").exists()


def test_template_refusal_is_rejected_not_fatal(tokenizer, tmp_path):
    strict = copy.deepcopy(tokenizer)
    strict.chat_template = ("{% for m in messages %}{% if m['role'] == 'system' %}"
                            "{{ raise_exception('no system role') }}{% endif %}"
                            "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    mix = tmp_path / "m.jsonl"
    mix.write_text(dumps({"id": "sys", "source": "short", "messages": CONVERSATION}) + "\n"
                   + dumps({"id": "ok", "source": "short", "messages": CONVERSATION[1:]}) + "\n", encoding="utf-8")
    stats = tokenize_mixture(str(mix), str(tmp_path / "out"), strict, progress=False)
    assert (stats["kept"], stats["rejected"]) == (1, 1)
    assert stats["rejected_by_reason"] == {"chat template error": 1}
    rej = json.loads(rejected_path(tmp_path / "out").read_text())
    assert (rej["id"], rej["line"], rej["field"]) == ("sys", 1, "messages")
    assert "no system role" in rej["reason"]


def test_longalign_file_tokenized_directly(tokenizer, tmp_path):
    """A LongAlign file (no id, no mixture source) tokenizes as long samples under their content ids."""
    from datasets import load_from_disk

    from longcurate.core.records import content_id

    recs = [{"messages": [{"role": "user", "content": f"Context {i}.\n\nQuestion {i}?"},
                          {"role": "assistant", "content": f"Answer {i}."}]} for i in range(3)]
    path = tmp_path / "la.jsonl"
    path.write_text("".join(dumps(r) + "\n" for r in recs), encoding="utf-8")
    stats = tokenize_mixture(str(path), str(tmp_path / "out"), tokenizer, progress=False)
    assert (stats["kept"], stats["rejected"], stats["by_source"]) == (3, 0, {"long": 3})
    assert load_from_disk(str(tmp_path / "out"))["id"] == [content_id(r) for r in recs]
