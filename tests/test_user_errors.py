"""Every user error of issue 22's list (the model family is `tests/core/test_model_errors.py`), through
the real command line: one line on stderr saying what and where, exit 2, no traceback, and nothing
left behind (no empty `eval/<label>/` folder for a model that cannot be loaded)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from longcurate.cli import main


def _val_files(root: Path) -> tuple[Path, Path]:
    data, preds = root / "data", root / "preds"
    data.mkdir(parents=True)
    preds.mkdir()
    rows = [{"prompt": "p", "completion": "a b", "position_id": p, "set_id": 0} for p in range(4)]
    (data / "document_bi_32k.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "document_bi_32k_skip_list.json").write_text("[]")
    (preds / "sample_document_bi_32k.jsonl").write_text("".join(json.dumps({"sample": "a"}) + "\n" for _ in rows))
    return data, preds


def _non_utf8_predictions(root: Path) -> list[str]:
    data, preds = _val_files(root)
    (preds / "sample_document_bi_32k.jsonl").write_bytes(b'{"sample": "a"}\n{"sample": "caf\xe9"}\n' * 2)
    return ["eval", "val", "--data", str(data), "--predictions", str(preds), "--span", "2"]


def _empty_val_data(root: Path) -> list[str]:
    data, preds = _val_files(root)
    (data / "document_bi_32k.jsonl").write_text("")
    return ["eval", "val", "--data", str(data), "--predictions", str(preds), "--span", "2"]


def _contamination(root: Path, train: bytes) -> list[str]:
    (root / "train.jsonl").write_bytes(train)
    (root / "probes.jsonl").write_text(json.dumps({"id": "p", "answer": "the harbour bakery"}) + "\n")
    return ["check", "contamination", "--train", str(root / "train.jsonl"), "--eval", str(root / "probes.jsonl"),
            "--output", str(root / "c.json"), "--answer-field", "answer", "--require-clean"]


CASES = {
    # name: (argv maker, what the one line says)
    "eval val, a prediction file that is not UTF-8": (_non_utf8_predictions, ["sample_document_bi_32k.jsonl:2",
                                                                              "not UTF-8"]),
    "eval val, an empty data file": (_empty_val_data, ["document_bi_32k.jsonl", "empty (no data line)"]),
    "eval probes, a model that does not exist": (lambda root: ["eval", "probes", "--model", "nope-model",
                                                               f"output_dir={root}"], ["'nope-model'"]),
    "train fit --lr nan": (lambda root: ["train", "fit", "--lr", "nan", f"output_dir={root}"],
                           ["train.learning_rate must be > 0, got nan"]),
    "train fit --lr -1": (lambda root: ["train", "fit", "--lr", "-1", f"output_dir={root}"],
                          ["train.learning_rate must be > 0, got -1.0"]),
    "train fit --max-steps 0": (lambda root: ["train", "fit", "--max-steps", "0", f"output_dir={root}"],
                                ["train.max_steps must be >= 1"]),
    "select.window=-1": (lambda root: ["select", "score", "hmg", "select.window=-1", f"output_dir={root}"],
                         ["select.window"]),
    "--label that is a path": (lambda root: ["eval", "probes", "--label", "../../X", f"output_dir={root}"],
                               ["must be a name"]),
    "check contamination, an empty --train": (lambda root: _contamination(root, b""), ["train.jsonl"]),
    "check contamination, a gzip file named .jsonl": (
        lambda root: _contamination(root, gzip.compress(b'{"text": "the harbour bakery"}\n')), ["compressed"]),
    "check contamination, no file given and none in the run": (
        lambda root: ["check", "contamination", f"output_dir={root / 'run'}"], ["no training data in the run"]),
    "a Hub dataset that cannot be loaded": (
        lambda root: ["train", "mix", "--long", "some-org/some-data", f"output_dir={root}", "allow_download=true"],
        ["dataset some-org/some-data cannot be loaded"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_user_error_is_one_line_and_exit_2(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    make, said = CASES[case]
    root = tmp_path / "r"
    root.mkdir()
    code = main(make(root))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("longcurate")]  # progress bars aside
    assert code == 2 and "Traceback" not in err, err
    assert len(lines) == 1 and all(s in lines[0] for s in said), lines
    assert not (root / "eval").exists() and not (tmp_path / "runs").exists()  # nothing left behind
