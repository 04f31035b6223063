import pytest

from longcurate.cli import build_parser, main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "run" in capsys.readouterr().out


def test_every_command_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.choices
    for name, p in sub.choices.items():
        assert p.format_help()


def test_bad_config_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 1\nnot_a_key: 2\n")
    assert main(["run", str(bad)]) == 2
    assert "not_a_key" in capsys.readouterr().err


def test_run_accepts_overrides_without_config(monkeypatch):
    import longcurate.pipeline as pipeline

    seen = {}
    monkeypatch.setattr(pipeline, "run_pipeline", lambda cfg: seen.setdefault("cfg", cfg))
    assert main(["run", "output_dir=/tmp/x", "seed=4"]) == 0
    assert (seen["cfg"].output_dir, seen["cfg"].seed) == ("/tmp/x", 4)


def test_many_valued_flag_leaves_overrides_to_the_config():
    from longcurate.core.cli import resolve_config

    from longcurate.core.cli import ConfigError

    args = build_parser().parse_args(["mix", "--long", "a.jsonl", "seed=7", "train.mix.short_size=3"])
    cfg = resolve_config(args)
    assert cfg.train.mix.long == ["a.jsonl"] and cfg.seed == 7 and cfg.train.mix.short_size == 3
    # a key=value after the files is taken as an override, so a typo in it is reported, not read as a file
    with pytest.raises(ConfigError, match="nonsense"):
        resolve_config(build_parser().parse_args(["mix", "--long", "a.jsonl", "nonsense=1"]))
    args = build_parser().parse_args(["mix", "--long", "a.jsonl", "dir/b.jsonl", "seed=7", "train.mix.short_size=3"])
    cfg = resolve_config(args)
    assert cfg.train.mix.long == ["a.jsonl", "dir/b.jsonl"]
    assert cfg.seed == 7 and cfg.train.mix.short_size == 3
