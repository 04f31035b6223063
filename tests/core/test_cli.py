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
