"""The command line as people type it (issue 23, item 5), over the whole command tree: the global flags
before or after the noun and the verb, `--config` and `key=value` on every command (a bad config
stops every command with exit 2 before any work), a did-you-mean for a mistyped flag, the Hugging
Face spellings, `config show` validating, a dataset that cannot be loaded in one line."""

from __future__ import annotations

import argparse
import json
import os

import pytest

from longcurate.cli import build_parser, main
from longcurate.config import resolve_config
from longcurate.core.argv import GLOBAL_FLAGS, subparsers_of
from longcurate.core.cli import parse_command_line


def leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    children = subparsers_of(parser)
    if not children:
        yield path, parser
    for name, child in children.items():
        yield from leaf_commands(child, (*path, name))


COMMANDS = {" ".join(path): (path, parser) for path, parser in leaf_commands(build_parser())}


def required_args(parser: argparse.ArgumentParser) -> list[str]:
    """Values for the command's required flags, so argparse lets it through."""
    out = []
    for action in parser._actions:
        if action.option_strings and action.required:
            out += [action.option_strings[0], str(list(action.choices)[0]) if action.choices else "x"]
    return out


def own_flag(parser: argparse.ArgumentParser) -> str:
    """The command's longest long flag that is its own (not --help, not a global flag)."""
    globals_ = {f for flags in GLOBAL_FLAGS.values() for f in flags}
    flags = [o for a in parser._actions for o in a.option_strings
             if o.startswith("--") and o not in globals_ and o != "--help"]
    return max(flags, key=len)


def test_the_tree_is_walked():
    assert len(COMMANDS) >= 25 and {"eval report", "check contamination", "synth report", "eval val"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_global_flags_anywhere(name):
    path, parser = COMMANDS[name]
    extra = required_args(parser)
    for flag, dest in (("-v", "verbose"), ("--debug", "debug"), ("--no-progress", "no_progress")):
        for at in range(len(path) + 1):  # before the noun, between noun and verb, after the verb
            argv = [*path[:at], flag, *path[at:], *extra]
            args = parse_command_line(build_parser(), argv)
            assert getattr(args, dest) is True, argv
            assert all(getattr(args, d) is False for d in GLOBAL_FLAGS if d != dest), argv


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_config_and_overrides_on_every_command(name, tmp_path, monkeypatch, capsys):
    """`--config FILE` and `key=value` are read by every command; a bad config stops each one with
    one line and exit 2 before it does anything (nothing is written in the working folder)."""
    path, parser = COMMANDS[name]
    monkeypatch.chdir(tmp_path)
    good = tmp_path / "good.yaml"
    good.write_text("seed: 5\nselect:\n  alpha: 0.25\n")
    args = parse_command_line(build_parser(), [*path, *required_args(parser), "--config", str(good), "-v", "seed=6"])
    cfg = resolve_config(args)
    assert (cfg.seed, cfg.select.alpha) == (6, 0.25)  # the file, then key=value over it
    bad = tmp_path / "bad.yaml"
    bad.write_text("selcet:\n  alpha: 0.5\n")
    assert main([*path, *required_args(parser), "-v", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "did you mean 'select'" in err and str(bad) in err
    assert main([*path, *required_args(parser), "select.alpha=7"]) == 2
    assert "select.alpha must be in [0, 1], got 7.0" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "good.yaml"]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_mistyped_flag_gets_a_suggestion(name, capsys):
    path, parser = COMMANDS[name]
    flag = own_flag(parser)
    typo = flag[:3] + flag[4] + flag[3] + flag[5:]  # two letters swapped: no longer a prefix of anything
    with pytest.raises(SystemExit) as e:
        main([*path, *required_args(parser), typo, "x"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"unrecognized argument {typo}; did you mean {flag}?" in err


def test_a_flag_of_another_command_points_at_its_config_key(capsys):
    with pytest.raises(SystemExit):
        main(["select", "rank", "--window", "64"])
    assert "set the config key instead, e.g. select.window=VALUE" in capsys.readouterr().err


def test_hugging_face_spellings_are_read_as_ours():
    argv = ["train", "fit", "--model_name_or_path", "org/base", "--learning_rate", "3e-5", "--num_train_epochs", "2",
            "--output_dir", "runs/hf", "--bf16", "--per_device_train_batch_size", "4",
            "--gradient_accumulation_steps=8", "--max_steps", "10", "--gradient_checkpointing", "False",
            "--lr_scheduler_type", "linear", "--warmup_ratio", "0.1", "--seed", "3"]
    args = parse_command_line(build_parser(), argv)
    cfg = resolve_config(args)
    t = cfg.train
    assert (cfg.model, cfg.output_dir, cfg.seed) == ("org/base", "runs/hf", 3)
    assert (t.learning_rate, t.epochs, t.precision, t.per_device_batch_size, t.grad_accum, t.max_steps) == \
        (3e-5, 2.0, "bf16", 4, 8, 10)
    assert (t.gradient_checkpointing, t.lr_scheduler, t.warmup_ratio) == (False, "linear", 0.1)
    # the command's own flag when it has one (`--lr`, `--batch-size`, `--max-steps`), and the log says so
    assert args.lr == 3e-5 and args.batch_size == 4 and args.max_steps == 10
    for note in ("--learning_rate (Hugging Face's spelling) read as --lr", "--max_steps read as --max-steps",
                 "--bf16 (Hugging Face's spelling) read as train.precision=bf16"):
        assert note in args.respelled
    args = parse_command_line(build_parser(), ["eval", "probes", "--max_new_tokens", "7", "--output_dir", "o"])
    cfg = resolve_config(args)
    assert cfg.eval.generate.max_new_tokens == 7 and cfg.eval.output_dir == "o"  # eval's own --output-dir
    assert "--max_new_tokens read as --max-new-tokens" in args.respelled
    assert resolve_config(parse_command_line(build_parser(), ["config", "show", "--bf16", "false"])).train.precision == "fp32"


def test_spellings_without_a_counterpart_are_answered(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "fit", "--fp16"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--fp16: fp16 mixed precision is not offered: use --bf16" in err
    with pytest.raises(SystemExit):
        main(["config", "show", "--learning_rate"])
    assert "--learning_rate needs a value (train.learning_rate)" in capsys.readouterr().err


def test_the_log_says_how_a_spelling_was_read(capsys, caplog, monkeypatch, tmp_path):
    import logging

    caplog.set_level(logging.INFO, "longcurate.cli")
    monkeypatch.chdir(tmp_path)
    assert main(["config", "show", "--learning_rate", "1e-4", "--max_steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "--learning_rate (Hugging Face's spelling) read as train.learning_rate=1e-4" in caplog.text
    assert "learning_rate: 0.0001" in out and "max_steps: 3" in out


def test_config_show_validates(capsys):
    assert main(["config", "show", "select.normalize=ranks"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "select.normalize must be one of ['rank', 'paper'], got 'ranks'" in err
    assert main(["config", "show", "demo", "select.alpha=0.5"]) == 0


def test_a_dataset_that_cannot_be_loaded_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["train", "mix", "--long", "some-org/some-data", "--short", "some-org/other", "allow_download=true"])
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("longcurate")]
    assert code == 2 and "Traceback" not in err and len(lines) == 1
    assert "dataset some-org/some-data cannot be loaded from the Hugging Face Hub (HF_HUB_OFFLINE is set)" in lines[0]


def test_no_progress_anywhere_turns_the_bars_off(tmp_path, monkeypatch, capsys):
    for name in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(name, raising=False)
    train, probes = tmp_path / "train.jsonl", tmp_path / "probes.jsonl"
    train.write_text(json.dumps({"id": "t", "text": "the harbour bakery sells bread"}) + "\n")
    probes.write_text(json.dumps({"id": "p", "answer": "the harbour bakery", "key": "bread"}) + "\n")
    argv = ["check", "contamination", "--train", str(train), "--eval", str(probes), "--output", str(tmp_path / "c.json"),
            "--answer-field", "answer"]
    assert main(argv) == 0
    assert "contamination:" in capsys.readouterr().err  # the bar, by default
    assert main([*argv, "--no-progress"]) == 0
    assert "contamination:" not in capsys.readouterr().err
    assert os.environ["TQDM_DISABLE"] == "1"  # for the libraries' bars, before they are imported
