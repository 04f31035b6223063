"""Records of every chat shape as samples to score: ids, the split rules, the turn policies, the
normalisations, and the report that counts them (`select.conversations`)."""

from __future__ import annotations

import pytest

from longcurate.core.chat_formats import InputFormat
from longcurate.core.records import RecordError, content_id
from longcurate.select.conversations import InputReport, SampleReading, split_turn
from longcurate.select.inputs import parse_sample

DOC = "para one\n\npara two"
MSGS = [{"role": "user", "content": f"{DOC}\n\nWhat is it?"}, {"role": "assistant", "content": "An answer."}]


def test_longalign_split_at_last_blank_line():
    """GATEAU's released split: the instruction is what follows the last blank line."""
    s = parse_sample({"id": 5, "messages": MSGS})
    assert (s.id, s.context, s.instruction, s.response) == ("5", DOC, "What is it?", "An answer.")
    assert s.source["split"] == "last-blank-line" and s.source["shape"] == "messages"
    assert s.kind is None and s.length is None  # not in the input: unknown, never "fine" or 0


def test_records_without_an_id_get_a_stable_one_from_their_text():
    """LongAlign-10k's layout has no ids: the same text gets the same id, whatever else the record
    holds (a file format may add empty columns) and whichever chat shape carries it."""
    a = parse_sample({"messages": MSGS})
    b = parse_sample({"messages": MSGS, "id": None, "extra": None})
    sharegpt = parse_sample({"conversations": [{"from": "human", "value": MSGS[0]["content"]},
                                               {"from": "gpt", "value": MSGS[1]["content"]}]})
    assert a.id == b.id == sharegpt.id == content_id({"messages": MSGS}) and a.id.startswith("rec-")
    assert a.source["id"] == "content"
    assert parse_sample({"messages": [MSGS[0], {"role": "assistant", "content": "Other."}]}).id != a.id


@pytest.mark.parametrize("rule,context,instruction,applied", [
    ("last-blank-line", "Q?\n\nbody one", "body two", "last-blank-line"),
    ("first-blank-line", "body one\n\nbody two", "Q?", "first-blank-line"),
    ("whole-turn", "", "Q?\n\nbody one\n\nbody two", "whole-turn"),
])
def test_split_rules(rule, context, instruction, applied):
    assert split_turn("Q?\n\nbody one\n\nbody two\n", rule) == (context, instruction, applied)


def test_film_markers_and_turns_without_a_blank_line():
    from longcurate.core.prompts import user_prompt

    assert split_turn(user_prompt("the\n\ncontext", "the question"), "film-markers") == \
        ("the\n\ncontext", "the question", "film-markers")
    with pytest.raises(RecordError, match="FILM markers"):
        split_turn("no markers here", "film-markers")
    assert split_turn("just a question", "last-blank-line") == ("", "just a question", "last-blank-line: no blank line")


CHAT = {"system": "Be brief.", "conversations": [
    {"from": "gpt", "value": "Hello! Ask me anything."},  # a leading bot greeting: dropped and counted
    {"from": "human", "value": "long document\n\nmore of it\n\nFirst question?"},
    {"from": "bing", "value": "Ok."},
    {"from": "human", "value": "Second question?"},
    {"from": "chatgpt", "value": "The real answer."},
    {"from": "human", "value": "Thanks!"}]}  # never answered: dropped and counted


def test_multi_turn_last_scores_the_last_answer_given_the_whole_history():
    s = SampleReading(turns="last").sample(CHAT)
    assert (s.context, s.instruction, s.response) == ("long document\n\nmore of it", "First question?", "The real answer.")
    assert [m["role"] for m in s.turns_before] == ["system"]
    assert [m["content"] for m in s.turns_after] == ["Ok.", "Second question?"]
    assert [m["role"] for m in s.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert s.source["turns"] == 2 and s.source["scored_turn"] == 2 and s.multi_turn
    assert s.source["normalised"] == ["top-level system kept", "leading assistant turn dropped",
                                      "unanswered last user turn dropped"]


def test_multi_turn_first_scores_the_first_exchange_as_released():
    s = SampleReading(turns="first").sample(CHAT)
    assert (s.instruction, s.response, s.turns_after) == ("First question?", "Ok.", [])
    assert s.source["scored_turn"] == 1 and not s.multi_turn  # a system turn alone is no history
    assert len(s.messages) == 5  # trained on whole all the same


def test_alpaca_names_its_parts_and_mapped_columns_read_the_same():
    a = parse_sample({"instruction": "What is it?", "input": DOC, "output": "An answer."})
    assert (a.context, a.instruction, a.source["split"], a.source["shape"]) == (DOC, "What is it?", "fields", "alpaca")
    assert a.messages[0]["content"] == f"What is it?\n\n{DOC}"  # alpaca's order: instruction, blank line, input
    mapped = SampleReading(InputFormat(columns={"instruction": "q", "input": "doc", "output": "a"})).sample(
        {"q": "What is it?", "doc": DOC, "a": "An answer."})
    assert (mapped.id, mapped.context, mapped.instruction) == (a.id, a.context, a.instruction)
    turns = SampleReading(InputFormat(columns={"messages": "dialog"}, role_key="speaker", content_key="text",
                                      roles={"Patient": "user", "Doctor": "assistant"})).sample(
        {"dialog": [{"speaker": "Patient", "text": MSGS[0]["content"]}, {"speaker": "Doctor", "text": "An answer."}]})
    assert turns.id == parse_sample({"messages": MSGS}).id


@pytest.mark.parametrize("record,field,reason", [
    ({"conversations": [{"from": "tool", "value": "x"}]}, "conversations[0].from", "unknown role"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                   {"role": "assistant", "content": "c"}]}, "messages[1].role", "do not alternate"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": " "}]}, "messages[1].content",
     "empty assistant turn"),
    ({"messages": [{"role": "assistant", "content": "hi"}]}, "messages", "no user turn"),
    ({"text": "a corpus line"}, "<record>", "no conversation"),
    ({"system": "A", "messages": [{"role": "system", "content": "B"}, *MSGS]}, "system", "keep one"),
])
def test_unusable_conversations_name_field_and_reason(record, field, reason):
    with pytest.raises(RecordError) as e:
        parse_sample(record)
    assert e.value.field == field and reason in e.value.reason


def test_the_report_counts_shapes_turns_splits_and_derived_fields():
    samples = [parse_sample({"messages": MSGS}), parse_sample(CHAT),
               parse_sample({"id": "s", "kind": "fine", "length": 9, "context": "c", "instruction": "q", "response": "r"}),
               parse_sample({"messages": [{"role": "user", "content": "no blank"}, MSGS[1]]})]
    r = InputReport.of(list(enumerate(samples))).to_dict()
    assert r["shapes"] == {"messages": 2, "sharegpt": 1, "sample": 1}
    assert r["answers"] == {"1": 3, "2": 1}
    assert r["split"] == {"last-blank-line": 2, "fields": 1, "last-blank-line: no blank line": 1}
    assert r["derived"] == {"id": 3, "length": 3, "kind": 3}
    assert r["normalised"]["leading assistant turn dropped"] == 1
    text = InputReport.of(list(enumerate(samples))).format()
    assert "answers per conversation: 1 (3), 2 (1)" in text and "derived: id (3: content id)" in text


def test_a_multi_turn_prompt_holds_the_history_and_scores_the_last_answer(tokenizer):
    """The chat prompt is the conversation up to the scored answer (system, earlier turns, the context
    turn in FILM's form, the turns after it); the scored tokens are that answer's; the context's
    tokens are where the context is. `gateau` has no place for turns around the exchange: refused."""
    from longcurate.core.prompts import user_prompt
    from longcurate.select.inputs import InputReject, PromptBuilder

    s = SampleReading(turns="last").sample(CHAT)
    p = PromptBuilder(tokenizer, max_length=4096, segment_tokens=4).prepare(s)
    text = tokenizer.decode(p.input_ids)
    for piece in ("Be brief.", user_prompt(s.context, s.instruction), "Ok.", "Second question?"):
        assert piece in text
    assert tokenizer.decode(p.input_ids[p.response_start:]).strip() == "The real answer."
    assert tokenizer.decode(p.input_ids[p.context_span[0]:p.context_span[1]]).strip() == s.context
    with pytest.raises(InputReject, match="gateau renders one exchange"):
        PromptBuilder(tokenizer, prompt_format="gateau", max_length=4096).prepare(s)
    first = SampleReading(turns="first").sample({"conversations": CHAT["conversations"]})  # no system, one exchange
    assert PromptBuilder(tokenizer, prompt_format="gateau", max_length=4096).prepare(first).n_response_tokens > 0


def test_reading_settings_are_checked_where_they_are_set():
    from longcurate.core.errors import ConfigError
    from longcurate.select.config import SelectConfig
    from longcurate.train.config import MixConfig

    with pytest.raises(ConfigError, match="select.split"):
        SelectConfig(split="last-line")
    with pytest.raises(ConfigError, match="select.turns"):
        SelectConfig(turns="all")
    with pytest.raises(ConfigError, match="select.input_format.shape"):
        SelectConfig(input_format=InputFormat(shape="csv"))
    with pytest.raises(ConfigError, match="select.input_format.columns"):
        SelectConfig(input_format=InputFormat(columns={"question": "q"}))
    with pytest.raises(ConfigError, match="train.mix.short_format.roles"):
        MixConfig(short_format=InputFormat(roles={"bot": "model"}))
    with pytest.raises(ConfigError, match="role_key"):
        MixConfig(long_format=InputFormat(role_key="speaker"))
