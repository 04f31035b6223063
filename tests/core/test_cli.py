import pytest

from longcurate.cli import build_parser, main
from longcurate.config import resolve_config
from longcurate.core.errors import ConfigError, UserError


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for noun in ("run", "synth", "select", "train", "eval"):
        assert noun in out


def _subcommands(parser):
    from longcurate.core.cli import subparsers_of

    return subparsers_of(parser)


def test_the_command_tree_is_noun_verb():
    top = _subcommands(build_parser())
    assert set(top) >= {"run", "synth", "select", "train", "eval"}
    assert set(_subcommands(top["synth"])) == {"run", "report"}
    assert set(_subcommands(top["select"])) >= {"score", "rank", "budget", "diagnose", "merge", "run"}
    assert set(_subcommands(top["train"])) >= {"mix", "tokenize", "fit", "run"}
    assert set(_subcommands(top["eval"])) >= {"build", "probes", "needle", "longbench", "report", "run"}
    old = {"score", "rank", "budget", "mix", "tokenize", "probe", "synth-report"}
    assert not old & set(top), "no old spelling is registered"


def test_every_command_has_help():
    def walk(parser):
        assert parser.format_help()
        for child in _subcommands(parser).values():
            walk(child)

    walk(build_parser())


@pytest.mark.parametrize("argv", [["score", "hmg"], ["rank"], ["mix"], ["tokenize"], ["synth-report", "f.jsonl"],
                                  ["probe", "build"], ["synth", "--num-samples", "5"], ["train", "--dataset", "d"]])
def test_old_spellings_are_gone(capsys, argv):
    """0.1.0 is the first release: a command has one spelling, and any other is a usage error."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and ("invalid choice" in err or "required" in err)


def test_bad_config_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 1\nnot_a_key: 2\n")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not_a_key" in err and "Traceback" not in err


def test_user_errors_print_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    import longcurate.pipeline as pipeline

    def refuse(cfg):
        raise UserError("samples.jsonl was made with other settings (seed: 0 -> 1)")

    monkeypatch.setattr(pipeline, "run_pipeline", refuse)
    assert main(["run", f"output_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "longcurate: error: samples.jsonl was made with other settings (seed: 0 -> 1)"
    with pytest.raises(UserError):  # --debug keeps the traceback
        main(["--debug", "run", f"output_dir={tmp_path}"])


def test_missing_input_is_a_user_error(tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    assert main(["select", "rank", "--hmg", str(missing), f"output_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "nope.jsonl" in err and "Traceback" not in err


def test_bugs_keep_their_traceback(monkeypatch, tmp_path):
    import longcurate.pipeline as pipeline

    monkeypatch.setattr(pipeline, "run_pipeline", lambda cfg: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["run", f"output_dir={tmp_path}"])


def test_unknown_stage_is_a_user_error(tmp_path, capsys):
    assert main(["run", f"output_dir={tmp_path}", "stages=[synth,nope]"]) == 2
    assert "nope" in capsys.readouterr().err


def test_run_accepts_overrides_without_config(monkeypatch):
    import longcurate.pipeline as pipeline

    seen = {}
    monkeypatch.setattr(pipeline, "run_pipeline", lambda cfg: seen.setdefault("cfg", cfg))
    assert main(["run", "output_dir=/tmp/x", "seed=4"]) == 0
    assert (seen["cfg"].output_dir, seen["cfg"].seed) == ("/tmp/x", 4)


def test_many_valued_flag_leaves_overrides_to_the_config():
    args = build_parser().parse_args(["train", "mix", "--long", "a.jsonl", "seed=7", "train.mix.short_size=3",
                                      "train.mix.short=s.jsonl"])
    cfg = resolve_config(args)
    assert cfg.train.mix.long == ["a.jsonl"] and cfg.seed == 7 and cfg.train.mix.short_size == 3
    # a key=value after the files is taken as an override, so a typo in it is reported, not read as a file
    with pytest.raises(ConfigError, match="nonsense"):
        resolve_config(build_parser().parse_args(["train", "mix", "--long", "a.jsonl", "nonsense=1"]))
    args = build_parser().parse_args(["train", "mix", "--long", "a.jsonl", "dir/b.jsonl", "seed=7",
                                      "train.mix.short_size=3", "train.mix.short=s.jsonl"])
    cfg = resolve_config(args)
    assert cfg.train.mix.long == ["a.jsonl", "dir/b.jsonl"]
    assert cfg.seed == 7 and cfg.train.mix.short_size == 3


def test_overrides_may_follow_the_flags(capsys):
    from longcurate.core.cli import parse_command_line

    args = parse_command_line(build_parser(), ["ablate", "demo", "--budget-unit", "tokens", "seed=7",
                                               "ablate.budget=28000"])
    cfg = resolve_config(args)
    assert cfg.seed == 7 and cfg.ablate.budget == 28000 and cfg.ablate.budget_unit == "tokens"
    args = parse_command_line(build_parser(), ["select", "rank", "seed=3", "--alpha", "0.5", "select.window=64"])
    cfg = resolve_config(args)
    assert cfg.seed == 3 and cfg.select.alpha == 0.5 and cfg.select.window == 64
    # every command takes them (issue 23), after its list arguments too
    for argv, key, value in ((["select", "budget", "0.5", "--ranked", "r.jsonl", "1000", "select.alpha=0.3"],
                              "select.alpha", 0.3),
                             (["check", "contamination", "--train", "a.jsonl", "seed=2", "--eval", "b.jsonl"], "seed", 2),
                             (["eval", "report", "runs/x/eval/a", "seed=4", "runs/x/eval/b"], "seed", 4),
                             (["eval", "val", "--data", "d", "--predictions", "p", "seed=1"], "seed", 1)):
        args = parse_command_line(build_parser(), argv)
        section, name = key.rsplit(".", 1) if "." in key else (None, key)
        cfg = resolve_config(args)
        assert getattr(getattr(cfg, section) if section else cfg, name) == value, argv
    args = parse_command_line(build_parser(), ["select", "budget", "0.5", "--ranked", "r.jsonl", "1000", "seed=1"])
    assert args.sizes == ["0.5", "1000"] and args.ranked == "r.jsonl"
    args = parse_command_line(build_parser(), ["check", "contamination", "--train", "a.jsonl", "seed=2", "--eval", "b"])
    assert args.train == ["a.jsonl"] and args.eval == ["b"]
    # a leftover that is not an override is still the usual usage error
    with pytest.raises(SystemExit) as e:
        parse_command_line(build_parser(), ["select", "rank", "seed=1", "--alpha", "0.5", "stray"])
    assert e.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_config_errors_say_where_the_bad_key_came_from_and_suggest(tmp_path, capsys):
    assert main(["select", "rank", "select.alhpa=0.7", f"output_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "command line override 'select.alhpa=0.7'" in err and "did you mean 'select.alpha'" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("select:\n  alhpa: 0.7\n")
    assert main(["select", "rank", "-c", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "did you mean 'select.alpha'" in err and "command line" not in err


def test_help_shows_defaults_and_a_per_command_override_example():
    from longcurate.core.cli import subparsers_of

    parser = build_parser()
    rank = subparsers_of(subparsers_of(parser)["select"])["rank"].format_help()
    assert "(default: 0.8)" in rank and "[select.alpha]" in rank
    synth = subparsers_of(subparsers_of(parser)["synth"])["run"].format_help()
    assert "(default: 200)" in synth and "e.g. synth." in synth
    assert "e.g. synth." not in rank  # each command's example names one of its own keys


def test_config_show_prints_the_resolved_config(capsys):
    import yaml

    assert main(["config", "show", "demo", "select.alpha=0.5"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["select"]["alpha"] == 0.5 and shown["output_dir"] == "runs/demo"
    assert main(["config", "show", "no-such-config"]) == 2
    err = capsys.readouterr().err
    assert "bundled configs:" in err and "demo" in err and "paper-7b" in err


def test_relative_inputs_in_a_config_resolve_beside_it(tmp_path, monkeypatch):
    from longcurate.config import RunConfig
    from longcurate.core.cli import resolve

    cfg_dir = tmp_path / "cfgs"
    (cfg_dir / "data").mkdir(parents=True)
    (cfg_dir / "data" / "chat.jsonl").write_text("{}\n")
    (cfg_dir / "x.yaml").write_text("model: smollm2-135m-instruct\ntrain:\n  mix:\n    short: data/chat.jsonl\n"
                                    "synth:\n  corpus:\n    path: wiki-summaries\n")
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    args = build_parser().parse_args(["train", "mix", "-c", str(cfg_dir / "x.yaml")])
    cfg = resolve(args, RunConfig)
    assert cfg.train.mix.short == str(cfg_dir / "data" / "chat.jsonl")  # outside the working folder: absolute
    assert cfg.synth.corpus.path == "wiki-summaries" and cfg.model == "smollm2-135m-instruct"  # names kept
    monkeypatch.chdir(tmp_path)
    assert resolve(args, RunConfig).train.mix.short == "cfgs/data/chat.jsonl"  # inside it: relative


def test_the_demo_runs_from_a_folder_outside_the_repository(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run([sys.executable, "-m", "longcurate", "run", "demo", "stages=[synth]", "synth.num_samples=4",
                          "synth.heldout_samples=0"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "runs/demo/samples.jsonl").read_text().count("\n") == 4
    assert (tmp_path / "runs/demo/synth.manifest.json").exists()


def test_a_full_disk_is_one_line_and_exit_2(monkeypatch, tmp_path, capsys):
    import errno

    import longcurate.pipeline as pipeline

    def full(cfg):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "samples.jsonl"))

    monkeypatch.setattr(pipeline, "run_pipeline", full)
    assert main(["run", f"output_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "samples.jsonl" in err
    assert "Traceback" not in err
