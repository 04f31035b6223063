"""Every numeric field of probe, needle and VaL items is checked like the other stages' records (issue
22): `position_id` NaN or -5, `set_id` "zero", a fraction of Infinity, a depth of 150 are quarantined
with file, line, field and reason, and never scored; and no JSON the project writes holds a bare NaN
(results, the trained model's config, what the commands print)."""

from __future__ import annotations

import json
import math

import pytest

from longcurate.cli import main
from longcurate.core.records import RecordError
from longcurate.eval.item_checks import check_needle, check_probe, check_val_line

GEN = ["eval.generate.dtype=float32", "eval.generate.device=cpu", "eval.generate.max_new_tokens=3"]


def strict(text: str):
    """JSON as other readers read it: NaN and Infinity are not JSON."""
    def refuse(constant):
        raise ValueError(f"bare {constant} in JSON")
    return json.loads(text, parse_constant=refuse)


PROBE = {"id": "database-s0-p0", "task": "database", "set_id": 0, "position_id": 0, "num_positions": 2,
         "key": "id 17", "answer": "Oslo", "context": "id 17: Oslo, a city.\nid 18: Bergen, a city.",
         "instruction": 'What is the label of "id 17"?', "key_char": 0, "answer_char": 7, "key_token": 0,
         "key_token_fraction": 0.0, "context_tokens": 20, "description": "a city"}
BAD_PROBES = [("position_id", math.nan), ("position_id", -5), ("set_id", "zero"), ("position_id", 2),
              ("key_token_fraction", math.inf), ("set_id", True), ("position_id", 1.5), ("context", None)]


@pytest.mark.parametrize("field, value", BAD_PROBES)
def test_a_bad_probe_field_is_named(field, value):
    with pytest.raises(RecordError) as e:
        check_probe({**PROBE, field: value}, ("database",))
    assert e.value.field == field


@pytest.mark.parametrize("field, value", [("length", -5), ("length", math.nan), ("depth", 150), ("depth", "mid"),
                                          ("depth", math.inf), ("key_words", ["", "x"]), ("id", 3)])
def test_a_bad_needle_field_is_named(field, value):
    needle = {"id": "n", "length": 96, "depth": 50.0, "context": "c", "question": "q", "key_words": ["blue"]}
    check_needle(needle)
    with pytest.raises(RecordError) as e:
        check_needle({**needle, field: value})
    assert e.value.field == field


@pytest.mark.parametrize("field, value", [("position_id", math.nan), ("position_id", -5), ("set_id", "zero"),
                                          ("completion", 7)])
def test_a_bad_val_field_is_named(field, value):
    line = {"prompt": "p", "completion": "a b", "position_id": 0, "set_id": 0}
    check_val_line(line, "document")
    with pytest.raises(RecordError) as e:
        check_val_line({**line, field: value}, "document")
    assert e.value.field == field


def test_bad_probes_are_quarantined_and_never_scored(tmp_path, model_dirs):
    probes = tmp_path / "my-probes.jsonl"  # the user's own file: no completion marker
    good = [{**PROBE, "id": f"database-s0-p{p}", "position_id": p} for p in range(2)]
    bad = [{**PROBE, "id": f"bad-{i}", field: value} for i, (field, value) in enumerate(BAD_PROBES[:3])]
    probes.write_text("".join(json.dumps(r) + "\n" for r in [good[0], *bad, good[1]]))  # json writes NaN bare
    argv = ["eval", "probes", "--model", str(model_dirs / "base"), "--probes", str(probes), f"output_dir={tmp_path}",
            *GEN]
    assert main(argv) == 0  # quarantined records are not failures: the rest is complete
    folder = tmp_path / "eval" / "base" / "probes"
    scored = [strict(x)["id"] for x in (folder / "predictions.jsonl").read_text().splitlines()]
    assert scored == ["database-s0-p0", "database-s0-p1"]
    rejected = [strict(x) for x in (folder / "predictions.rejected.jsonl").read_text().splitlines()]
    assert [(r["file"], r["line"], r["field"]) for r in rejected] == \
        [(str(probes), 2, "position_id"), (str(probes), 3, "position_id"), (str(probes), 4, "set_id")]
    assert "whole number >= 0" in rejected[0]["reason"] and "nan" in rejected[0]["reason"]
    results = strict((folder / "results.json").read_text())
    assert results["n_scored"] == 2 and results["n_failed"] == 0
    assert json.loads((folder / "predictions.jsonl.done").read_text())["n_rejected"] == 3


def test_bad_needles_are_quarantined_and_never_scored(tmp_path, model_dirs):
    needles = tmp_path / "my-needles.jsonl"
    good = {"id": "n0", "length": 96, "depth": 50.0, "context": "The haystack. The code is blue. More hay.",
            "question": "What is the code?", "key_words": ["blue"]}
    rows = [good, {**good, "id": "n1", "depth": math.nan}, {**good, "id": "n2", "length": -5}]
    needles.write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["eval", "needle", "--model", str(model_dirs / "base"), f"eval.needle.output={needles}",
            f"output_dir={tmp_path}", *GEN]
    assert main(argv) == 0
    folder = tmp_path / "eval" / "base" / "needle"
    assert [strict(x)["id"] for x in (folder / "predictions.jsonl").read_text().splitlines()] == ["n0"]
    rejected = [strict(x) for x in (folder / "predictions.rejected.jsonl").read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in rejected] == [(2, "depth"), (3, "length")]
    assert strict((folder / "results.json").read_text())["n_scored"] == 1


def test_bad_val_lines_are_quarantined_and_the_rest_scored(tmp_path):
    data, preds = tmp_path / "data", tmp_path / "preds"
    data.mkdir()
    preds.mkdir()
    rows = [{"prompt": "p", "completion": "a b", "position_id": p, "set_id": 0} for p in range(6)]
    rows[4] = {**rows[4], "position_id": math.nan}
    rows[5] = {**rows[5], "set_id": "zero"}
    (data / "document_bi_32k.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "document_bi_32k_skip_list.json").write_text("[]")
    (preds / "sample_document_bi_32k.jsonl").write_text("".join(json.dumps({"sample": "a"}) + "\n" for _ in rows))
    assert main(["eval", "val", "--data", str(data), "--predictions", str(preds), "--span", "2"]) == 0
    result = strict((preds / "val_result.json").read_text())
    doc = result["tasks"]["document"]
    assert (doc["n_lines"], doc["n_rejected"], doc["n"]) == (6, 2, 2)  # 4 usable positions, 2 spans read 1 each
    rejected = [strict(x) for x in (preds / "val_result.json.rejected.jsonl").read_text().splitlines()]
    assert [(r["file"], r["line"], r["field"]) for r in rejected] == \
        [(str(data / "document_bi_32k.jsonl"), 5, "position_id"), (str(data / "document_bi_32k.jsonl"), 6, "set_id")]


@pytest.mark.parametrize("argv, stage", [(["eval", "run"], "longcurate.eval.stage.run_stage"),
                                         (["train", "tokenize"], "longcurate.train.stage.run_tokenize"),
                                         (["train", "fit"], "longcurate.train.stage.run_fit"),
                                         (["train", "run"], "longcurate.train.stage.run_stage")])
def test_what_commands_print_as_json_holds_no_bare_nan(argv, stage, monkeypatch, capsys, tmp_path):
    module, name = stage.rsplit(".", 1)
    monkeypatch.setattr(__import__(module, fromlist=[name]), name,
                        lambda *a, **k: {"loss": math.nan, "grad_norm": math.inf, "steps": 1})
    assert main([*argv, f"output_dir={tmp_path}"]) == 0
    assert strict(capsys.readouterr().out) == {"loss": None, "grad_norm": None, "steps": 1}


def test_the_trained_models_config_holds_no_bare_nan(tmp_path):
    import torch
    from safetensors.torch import save_file

    from longcurate.train.checkpoints import cast_saved_model

    save_file({"w": torch.ones(2, dtype=torch.float32)}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"rope_theta": 10000.0, "initializer_range": math.nan}))
    cast_saved_model(tmp_path, "bfloat16")
    config = strict((tmp_path / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and config["initializer_range"] is None
