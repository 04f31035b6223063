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


def test_fields_the_input_lacks_stay_unknown():
    """A record without `kind` or `length` is not given "fine" or 0: both stay None, and records
    write them as null (synth's records, which have both, keep their bytes)."""
    s = Sample.from_dict({"id": "x", "context": "c", "instruction": "q", "response": "r"})
    assert s.kind is None and s.length is None
    assert s.to_dict()["kind"] is None and s.to_dict()["length"] is None
    assert "turns_before" not in s.to_dict() and "turns_after" not in s.to_dict()


def test_a_conversation_alone_is_not_a_sample_record():
    with pytest.raises(RecordError) as e:
        Sample.from_dict({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
    assert e.value.field == "context"


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
