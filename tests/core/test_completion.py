"""The one completion primitive: skip when the recorded settings are equal, redo or refuse otherwise."""

import json

import pytest

from longcurate.core.completion import Step, settings_file
from longcurate.core.errors import SettingsChanged, UserError
from longcurate.core.jsonl import write_jsonl


def test_finish_then_complete_only_with_equal_settings(tmp_path):
    out = tmp_path / "x.jsonl"
    step = Step(out, {"a": 1, "b": (1, 2)})
    assert not step.is_complete()  # nothing yet
    write_jsonl(out, [{"id": "1"}])
    assert not step.is_complete()  # written, not finished
    step.finish({"n": 1})
    assert json.loads(step.marker.read_text()) == {"n": 1, "params": {"a": 1, "b": [1, 2]}}
    assert Step(out, {"a": 1, "b": (1, 2)}).is_complete()  # tuples compare as the JSON lists they became
    assert Step(out, {"a": 1, "b": (1, 2)}).stats() == {"n": 1}
    assert not Step(out, {"a": 2, "b": (1, 2)}).is_complete()  # redo: other settings
    out.unlink()
    assert not Step(out, {"a": 1, "b": (1, 2)}).is_complete()  # the output is gone


def test_refuse_names_the_keys_that_differ(tmp_path):
    out = tmp_path / "x.jsonl"
    write_jsonl(out, [])
    Step(out, {"seed": 0, "model": "m"}, on_change="refuse").finish()
    with pytest.raises(SettingsChanged, match=r"seed: 0 -> 1") as e:
        Step(out, {"seed": 1, "model": "m"}, on_change="refuse", name="synth").is_complete()
    assert isinstance(e.value, UserError) and "redo synth" in str(e.value)


def test_a_torn_marker_means_not_finished(tmp_path):
    out = tmp_path / "x.jsonl"
    write_jsonl(out, [])
    (tmp_path / "x.jsonl.done").write_text("{torn")
    assert not Step(out, {}).is_complete()


def test_begin_resumes_same_settings_and_discards_or_refuses_others(tmp_path):
    out = tmp_path / "x.jsonl"
    assert Step(out, {"a": 1}).begin() is False  # fresh: settings recorded
    assert json.loads(settings_file(out).read_text()) == {"a": 1}
    write_jsonl(out, [{"id": "partial"}])
    assert Step(out, {"a": 1}).begin() is True  # same settings: resume the partial output
    with pytest.raises(SettingsChanged, match="a: 1 -> 2"):
        Step(out, {"a": 2}, on_change="refuse").begin()
    assert out.exists()  # refused: nothing touched
    assert Step(out, {"a": 2}).begin() is False  # redo: the partial output is discarded
    assert not out.exists() and json.loads(settings_file(out).read_text()) == {"a": 2}


def test_discard_removes_folders_too(tmp_path):
    out = tmp_path / "folder"
    (out / "sub").mkdir(parents=True)
    step = Step(out, {"k": "v"})
    step.begin()
    step.finish()
    assert step.is_complete()
    step.discard()
    assert not out.exists() and not step.marker.exists() and not settings_file(out).exists()


def test_unknown_policy_is_refused(tmp_path):
    with pytest.raises(ValueError, match="on_change"):
        Step(tmp_path / "x", {}, on_change="maybe")
