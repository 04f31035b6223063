"""Input building: token accounting in both prompt formats, segments, views, rejects."""

from __future__ import annotations

import json

import pytest

from longcurate.core.jsonl import Rejects
from longcurate.core.prompts import gateau_prefix, gateau_text, messages_for
from longcurate.core.records import Sample
from longcurate.select.inputs import InputReject, PromptBuilder, load_samples

from .conftest import make_samples, write_jsonl


def _samples(n=6, **kw):
    return [Sample.from_dict(d) for d in make_samples(n, **kw)]


def test_chat_format_token_accounting(tokenizer):
    b = PromptBuilder(tokenizer, prompt_format="chat", max_length=8192)
    for s in _samples(4):
        p = b.prepare(s)
        full = tokenizer.apply_chat_template(messages_for(s.context, s.instruction, s.response), tokenize=False)
        ref = tokenizer(full, add_special_tokens=False)["input_ids"]
        # the sequence is the rendered conversation up to the end of the assistant's content
        assert p.input_ids == ref[:len(p.input_ids)]
        assert tokenizer.convert_ids_to_tokens(ref[len(p.input_ids)]) == "<|im_end|>"
        assert tokenizer.decode(p.input_ids[p.response_start:]) == s.response
        assert tokenizer.decode(p.input_ids[:p.response_start]).endswith("<|im_start|>assistant\n")
        t0, t1 = p.context_span
        assert tokenizer.decode(p.input_ids[t0:t1]) == s.context


def release_hmg_text(s: Sample) -> tuple[str, int]:
    """GATEAU's compute_hmg_4k.py on a LongAlign record (user turn = context, blank line, instruction),
    written out: `instruct_i` = the last blank-line piece, `input_i = content[:-len(instruct_i)]` (which
    keeps the blank line), and the loss start `len(tokenizer.encode(text[:start_index]))`."""
    content = s.context + "\n\n" + s.instruction
    instruct_i = "".join(content.split("\n\n")[-1])
    input_i = content[:-len(instruct_i)]
    whole_text = "### Input:" + input_i + "\n\n ### Instruction: " + instruct_i + "\n\n ### Response: " + s.response
    response_text = whole_text.split("### Response: ")[1]
    return whole_text, whole_text.rfind(response_text)


def test_gateau_format_is_the_released_text_with_the_context_s_blank_line(tokenizer):
    b = PromptBuilder(tokenizer, prompt_format="gateau", max_length=8192)
    for s in _samples(4):
        p = b.prepare(s)
        text, start_index = release_hmg_text(s)
        assert "\n\n\n\n ### Instruction: " in text  # the release keeps the context's trailing blank line
        assert text == gateau_text(s.context + "\n\n", s.instruction, s.response)
        assert p.input_ids == tokenizer(text)["input_ids"]  # one string, tokenized once
        assert p.response_start == len(tokenizer(text[:start_index])["input_ids"])  # the release's loss start
        assert p.truncated == 0
        t0, t1 = p.context_span
        assert tokenizer.decode(p.input_ids[t0:t1]).strip() == s.context.strip()


def test_gateau_left_truncation(tokenizer):
    s = _samples(1, min_par=10, max_par=10)[0]
    full = tokenizer(gateau_text(s.context + "\n\n", s.instruction, s.response))["input_ids"]
    n_prefix = len(tokenizer(gateau_prefix(s.context + "\n\n", s.instruction))["input_ids"])
    limit = len(full) - 100
    p = PromptBuilder(tokenizer, prompt_format="gateau", max_length=limit).prepare(s)
    assert p.input_ids == full[-limit:]
    assert p.response_start == n_prefix - 100
    assert p.truncated == 100
    assert len(p.input_ids) - p.response_start == len(full) - n_prefix


def test_chat_overlong_reject_and_truncate(tokenizer):
    s = _samples(1, min_par=10, max_par=10)[0]
    full = PromptBuilder(tokenizer, max_length=8192).prepare(s)
    limit = len(full.input_ids) - 50
    with pytest.raises(InputReject, match="too long"):
        PromptBuilder(tokenizer, max_length=limit).prepare(s)
    p = PromptBuilder(tokenizer, max_length=limit, overlong="truncate").prepare(s)
    assert len(p.input_ids) == limit
    t0, _ = full.context_span
    assert p.input_ids[:t0] == full.input_ids[:t0]  # template head kept
    assert p.input_ids[t0:] == full.input_ids[t0 + 50:]  # the earliest context tokens dropped
    assert p.input_ids[p.response_start:] == full.input_ids[full.response_start:]


def test_segments_and_sampling(tokenizer):
    s = _samples(1, min_par=12, max_par=12)[0]
    p = PromptBuilder(tokenizer, segment_tokens=128).prepare(s)
    t0, t1 = p.context_span
    spans = p.segment_spans
    assert spans[0][0] == t0 and spans[-1][1] == t1
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert all(e - s_ == 128 for s_, e in spans[:-1]) and spans[-1][1] - spans[-1][0] >= 64
    # gold overlap: the gold sentence's tokens lie inside one of the flagged segments
    g = s.gold[0]
    found = [k for k, (a, b) in enumerate(spans) if g.char_start < len(s.context) and
             tokenizer.decode(p.input_ids[a:b]).find(s.response[:20]) >= 0]
    assert set(found) <= set(p.gold_segments) and p.gold_segments
    # max_segments: order-preserving, same draw for the same seed and id, another for another seed
    a = PromptBuilder(tokenizer, max_segments=3, seed=1).prepare(s)
    b = PromptBuilder(tokenizer, max_segments=3, seed=1).prepare(s)
    c = PromptBuilder(tokenizer, max_segments=3, seed=2).prepare(s)
    assert a.segments == b.segments and a.segments == sorted(a.segments) and len(a.segments) == 3
    assert a.segment_spans == [spans[k] for k in a.segments]
    assert a.segments != c.segments or a.segments == list(range(3))


def test_window_view_and_segment_rows(tokenizer):
    s = _samples(1, min_par=10, max_par=10)[0]
    b = PromptBuilder(tokenizer)
    p = b.prepare(s)
    t0, t1 = p.context_span
    ids, r0, first_char = b.window_view(p, 300)
    assert len(ids) == 300
    assert ids[r0:] == p.input_ids[p.response_start:]
    assert ids[:t0] == p.input_ids[:t0]
    keep = 300 - (len(p.input_ids) - (t1 - t0))
    assert ids[t0:t0 + keep] == p.input_ids[t1 - keep:t1]
    assert first_char == p.context_char_start[t1 - keep - t0]
    full_ids, full_r0, _ = b.window_view(p, 100_000)
    assert full_ids == p.input_ids and full_r0 == p.response_start
    rows = b.segment_rows(p)
    assert len(rows) == len(p.segment_spans)
    for (row, r0), (a, e) in zip(rows, p.segment_spans):
        assert row == p.input_ids[:t0] + p.input_ids[a:e] + p.input_ids[t1:]
        assert row[r0:] == p.input_ids[p.response_start:]


def test_load_samples_rejects(tmp_path, tokenizer):
    recs = make_samples(4)
    dup = dict(recs[1])
    empty = dict(recs[2], id="empty", response="  ")
    longalign = {"id": "la", "messages": [{"role": "user", "content": recs[3]["context"] + "\n\nWhat?"},
                                          {"role": "assistant", "content": "An answer."}]}
    path = tmp_path / "in.jsonl"
    write_jsonl(path, recs + [dup, empty, "{not json", longalign])
    rej = Rejects(tmp_path / "rej.jsonl")
    got = load_samples(path, rej)
    rej.close()
    assert [s.id for _, s in got] == ["s000", "s001", "s002", "s003", "la"]
    la = got[-1][1]
    assert la.instruction == "What?" and la.source["split"] == "last-blank-line"
    lines = [json.loads(x) for x in (tmp_path / "rej.jsonl").read_text().splitlines()]
    reasons = {(r["line"], r["reason"].split(":")[0]) for r in lines}
    assert reasons == {(5, "duplicate id"), (6, "empty response"), (7, "invalid JSON")}
