"""A model that cannot be loaded, and a full disk, through the real command line (issue 22): one line on
stderr that names the model (or the file) and says why, exit 2, no traceback. The reasons: a mistyped
name or a missing folder, a hub id while the hub is offline (`HF_HUB_OFFLINE`) or downloads are off
(`allow_download`), a folder whose model needs its own code while `trust_remote_code` is off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from longcurate.core.jsonl import write_jsonl


def _sample(i: int) -> dict:
    ctx, q, a = f"Item {i} is blue. " * 20, f"What colour is item {i}?", "Blue."
    return {"id": f"s{i}", "kind": "fine", "context": ctx, "instruction": q, "response": a,
            "messages": [{"role": "user", "content": f"{ctx}\n\n{q}"}, {"role": "assistant", "content": a}]}


def _tokenized(root: Path) -> None:
    """A tokenized dataset where `train fit` looks for one."""
    from datasets import Dataset

    Dataset.from_dict({"id": ["a", "b"], "input_ids": [[5, 6, 7], [8, 9]], "labels": [[-100, 6, 7], [-100, 9]],
                       "length": [3, 2], "n_response_tokens": [2, 1], "source": ["long", "long"]}
                      ).save_to_disk(str(root / "mixture" / "tokenized"))


def _remote_code_folder(root: Path, tokenizer) -> Path:
    """A model folder whose config names classes of its own (`auto_map`), as custom-code models do."""
    folder = root / "custom-model"
    tokenizer.save_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({
        "model_type": "my_custom_lm", "architectures": ["MyCustomLM"],
        "auto_map": {"AutoConfig": "configuration_my.MyConfig", "AutoModelForCausalLM": "modeling_my.MyCustomLM"}}))
    return folder


# The command runs in its own process, as a user runs it; for "a full disk", after making every fsync
# fail the way a full disk does (the OS error of a write carries no file name).
FULL_DISK = ("import errno, os\n"
             "def full(fd):\n    raise OSError(errno.ENOSPC, 'No space left on device')\n"
             "os.fsync = full\n")
RUN_CLI = "import sys\nfrom longcurate.cli import main\nraise SystemExit(main(sys.argv[1:]))\n"


CASES = {
    # name: (command line after the root folder is known, what the one line must say)
    "eval probes, a mistyped model": (["eval", "probes", "--model", "nope-model"],
                                      ["'nope-model'", "not in the Hugging Face cache", "HF_HUB_OFFLINE"]),
    "select score hmg, a mistyped model": (["select", "score", "hmg", "--model", "nope"], ["'nope'", "HF_HUB_OFFLINE"]),
    "train fit, a missing folder": (["train", "fit", "--model", "/nonexistent"],
                                    ["'/nonexistent'", "no such file or folder"]),
    "eval nll, a mistyped model": (["eval", "nll", "--model", "nope-model"], ["'nope-model'", "HF_HUB_OFFLINE"]),
    "a hub id with downloads on, hub offline": (["eval", "nll", "--model", "some-org/some-model", "allow_download=true"],
                                                ["'some-org/some-model'", "the hub is offline (HF_HUB_OFFLINE)"]),
    "a hub id with downloads off": (["eval", "nll", "--model", "some-org/some-model"],
                                    ["'some-org/some-model'", "downloads are off (allow_download: false)"]),
    "a model that needs remote code": (["eval", "nll", "--model", "{custom}"], ["custom-model", "trust_remote_code"]),
    "a full disk": (["check", "contamination", "--train", "{root}/samples.jsonl", "--eval", "{root}/probes.jsonl",
                     "--output", "{root}/out/check.json"], ["No space left on device", "out/check.json"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_user_errors_are_one_line_and_exit_2(case, tmp_path, tokenizer):
    argv, said = CASES[case]
    root = tmp_path / "run"
    write_jsonl(root / "samples.jsonl", [_sample(i) for i in range(3)])
    write_jsonl(root / "probes.jsonl", [{"id": "p0", "task": "document", "key": "blue item", "answer": "Blue."}])
    _tokenized(root)
    custom = _remote_code_folder(tmp_path, tokenizer)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "HF_HUB_OFFLINE": "1"}
    if case == "a hub id with downloads off":  # the hub is reachable as far as the process knows
        env.pop("HF_HUB_OFFLINE")
        env.pop("TRANSFORMERS_OFFLINE", None)
    argv = [a.format(root=root, custom=custom) for a in argv]
    argv = argv if argv[0] == "check" else [*argv, f"output_dir={root}"]
    prelude = FULL_DISK if case == "a full disk" else ""
    done = subprocess.run([sys.executable, "-c", prelude + RUN_CLI, *argv], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.startswith("longcurate:")]  # progress bars aside
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1 and all(s in lines[0] for s in said), lines
    if case == "a hub id with downloads off":
        assert "HF_HUB_OFFLINE" not in lines[0]
