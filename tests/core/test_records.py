import pytest

from longcurate.core.prompts import gateau_prefix, gateau_text, messages_for, user_prompt
from longcurate.core.records import RecordError, Sample


def test_sample_roundtrip():
    d = {"id": "in2-1", "kind": "fine", "context": "abc def", "instruction": "q?", "response": "def",
         "messages": messages_for("abc def", "q?", "def"),
         "gold": [{"segment": 0, "char_start": 4, "char_end": 7}], "num_segments": 1, "length": 12,
         "source": {"doc_ids": ["d"]}}
    s = Sample.from_dict(d)
    assert s.to_dict() == d
    assert list(s.to_dict()) == list(d)


def test_longalign_split_at_last_blank_line():
    d = {"id": 5, "messages": [{"role": "user", "content": "para one\n\npara two\n\nWhat is it?"},
                               {"role": "assistant", "content": "An answer."}]}
    s = Sample.from_dict(d)
    assert (s.id, s.context, s.instruction, s.response) == ("5", "para one\n\npara two", "What is it?", "An answer.")
    assert s.source["split"] == "longalign-last-blank-line"


@pytest.mark.parametrize("patch,field", [
    ({"response": ""}, "response"),
    ({"kind": "weird"}, "kind"),
    ({"gold": [{"segment": 0, "char_start": 5, "char_end": 999}]}, "gold[0]"),
    ({"messages": [{"role": "user"}]}, "messages[0]"),
    ({"id": ["not", "an", "id"]}, "id"),
])
def test_validation_names_field(patch, field):
    d = {"id": "x", "context": "ctx", "instruction": "q", "response": "r", **patch}
    with pytest.raises(RecordError) as e:
        Sample.from_dict(d)
    assert e.value.field == field


def test_prompt_formats():
    assert gateau_text("C", "I", "R") == "### Input:C\n\n ### Instruction: I\n\n ### Response: R"
    assert gateau_text("C", "I", "R").startswith(gateau_prefix("C", "I"))
    assert user_prompt("", "just ask") == "just ask"
    assert "### Context:\nC\n\n### Instruction:\nI" in user_prompt("C", "I")


def test_records_without_an_id_get_a_stable_one_from_their_text():
    """LongAlign-10k's layout has no ids: the same text gets the same id, whatever else the record
    holds (a file format may add empty columns), and the record says where its id came from."""
    from longcurate.core.records import content_id

    msgs = [{"role": "user", "content": "ctx\n\nWhat?"}, {"role": "assistant", "content": "That."}]
    a = Sample.from_dict({"messages": msgs})
    b = Sample.from_dict({"messages": msgs, "id": None, "extra": None})
    assert a.id == b.id == content_id({"messages": msgs}) and a.id.startswith("rec-")
    assert a.source["id"] == "content"
    other = Sample.from_dict({"messages": [msgs[0], {"role": "assistant", "content": "Other."}]})
    assert other.id != a.id
    assert content_id({"conversations": [{"from": "user", "value": "ctx\n\nWhat?"},
                                         {"from": "assistant", "value": "That."}]}) == a.id
