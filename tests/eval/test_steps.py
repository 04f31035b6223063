"""Every eval output is a step of `core.runner` (issues 19 and 22): two commands on one label at once,
one runs and the other stops at the lock (one line, exit 2); a label is a name, never a path; and any
eval command that finishes with items failed writes what it could, exits 75 (the shared "incomplete"
code) with no completion marker, and a rerun redoes only what is left."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from longcurate.cli import main
from longcurate.core.errors import EXIT_INCOMPLETE

SMALL = ["eval.probes.context_tokens=256", "eval.probes.num_positions=2", "eval.probes.tasks=[database]",
         "eval.needle.lengths=[96]", "eval.needle.depths=[50]", "eval.generate.dtype=float32",
         "eval.generate.device=cpu", "eval.generate.max_new_tokens=3", "eval.nll.heldout=false"]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("longcurate: error:")]


@pytest.fixture()
def calls(monkeypatch):
    """The ids every real HF model call is given, by method."""
    from longcurate.eval.hf_backend import HFModel

    seen: dict[str, list[str]] = {"generate": [], "loglikelihood": []}
    for method in seen:
        real = getattr(HFModel, method)

        def wrapped(self, requests, real=real, method=method):
            seen[method].extend(r.id for r in requests)
            return real(self, requests)

        monkeypatch.setattr(HFModel, method, wrapped)
    return seen


@pytest.mark.parametrize("verb, method, output", [("probes", "generate", "probes/predictions.jsonl"),
                                                  ("nll", "loglikelihood", "nll/items.jsonl")])
def test_two_commands_on_one_label_at_once(tmp_path, model_dirs, monkeypatch, capsys, verb, method, output):
    """The first holds its output's lock while its model works (held there by the test); the second,
    on the same label, stops at once naming the holder, and writes nothing."""
    from longcurate.eval.hf_backend import HFModel

    inside, release = threading.Event(), threading.Event()
    real, seen = getattr(HFModel, method), []

    def held(self, requests):
        seen.append([r.id for r in requests])
        inside.set()
        assert release.wait(120)
        return real(self, requests)

    monkeypatch.setattr(HFModel, method, held)
    argv = ["eval", verb, "--model", str(model_dirs / "base"), "--label", "m", f"output_dir={tmp_path}", *SMALL]
    first: dict[str, int] = {}
    thread = threading.Thread(target=lambda: first.setdefault("code", main(argv)))
    thread.start()
    try:
        assert inside.wait(120)
        t0 = time.monotonic()
        second = main(argv)
        waited = time.monotonic() - t0
    finally:
        release.set()
        thread.join(120)
    err = capsys.readouterr().err
    assert second == 2 and waited < 10 and first["code"] == 0
    (line,) = error_lines(err)
    assert f"{tmp_path / 'eval' / 'm' / output} is being written by pid" in line and "Traceback" not in err
    written = lines(tmp_path / "eval" / "m" / output)
    items = lines(tmp_path / "eval" / "probes.jsonl")
    assert sorted(r["id"] for r in written) == sorted(it["id"] for it in items)  # each item once
    assert sum(len(ids) for ids in seen) == len(items)  # the model was asked once per item


def test_a_label_is_a_name_not_a_path(tmp_path, model_dirs, capsys):
    code = main(["eval", "probes", "--model", str(model_dirs / "base"), "--label", "../../escaped",
                 f"output_dir={tmp_path / 'run'}", *SMALL])
    (line,) = error_lines(capsys.readouterr().err)
    assert code == 2 and "must be a name" in line
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "run").exists()  # nothing written anywhere


@pytest.mark.parametrize("verb, results, fail_with", [
    ("probes", "probes/results.json", "eval.generate.max_context=200"),  # every prompt is longer
    ("needle", "needle/results.json", "eval.needle.lengths=[96,400]"),  # the 400-token haystack is
    ("nll", "nll/results.json", "eval.generate.max_context=200"),
])
def test_failed_items_exit_75_and_the_rerun_does_only_them(tmp_path, model_dirs, calls, capsys, verb, results,
                                                          fail_with):
    base = ["eval", verb, "--model", str(model_dirs / "base"), "--label", "m", f"output_dir={tmp_path}", *SMALL]
    tight = ["eval.generate.max_context=300"] if verb == "needle" else []
    assert main([*base, fail_with, *tight]) == EXIT_INCOMPLETE
    folder = tmp_path / "eval" / "m"
    res = json.loads((folder / results).read_text())  # written all the same
    assert res["n_failed"] > 0 and len(res["failures"]) == res["n_failed"]
    assert not list(folder.rglob("*.done"))  # nothing marked complete
    err = capsys.readouterr().err
    assert f"eval {verb} incomplete" in err and f"{res['n_failed']} failed" in err and "Traceback" not in err
    method = "loglikelihood" if verb == "nll" else "generate"
    scored_first = len(calls[method]) - res["n_failed"]
    failed = [f["id"] for f in res["failures"]]
    assert main([*base, "eval.needle.lengths=[96,400]"] if verb == "needle" else base) == 0
    if verb == "nll":  # one forward per item: a redo scores every item again (cheap, no cache by design)
        assert sorted(calls[method][-(scored_first + len(failed)):]) == sorted(calls[method][:scored_first] + failed)
    else:  # predictions kept by their request hash: only the failed items are generated again
        assert calls[method][-len(failed):] == failed and len(calls[method]) == scored_first + 2 * len(failed)
    assert json.loads((folder / results).read_text())["n_failed"] == 0 and list(folder.rglob("*.done"))


def test_eval_run_exits_75_after_writing_everything_it_could(tmp_path, model_dirs, capsys):
    argv = ["eval", "run", f"output_dir={tmp_path}", f"model={model_dirs / 'base'}", "eval.models=[base]",
            "eval.run=[probes,needle]", *SMALL, "eval.needle.lengths=[96,1000]", "eval.generate.max_context=600"]
    assert main(argv) == EXIT_INCOMPLETE
    out, err = capsys.readouterr()
    stats = json.loads(out)
    assert "complete" not in stats["models"]["base"]["probes"]  # the probes are done ...
    assert stats["models"]["base"]["needle"]["complete"] is False  # ... the 1000-token needle is not
    assert "eval run incomplete: models.base.needle: 1 failed (rerun to retry)" in err
    assert (tmp_path / "eval" / "report.md").exists() and (tmp_path / "eval.manifest.json").exists()


def test_longbench_generation_errors_exit_75(tmp_path, model_dirs, capsys):
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"_id": f"h{i}", "input": "Capital?", "context": "Paris is the capital of France.", "answers": ["Paris"],
             "length": 10, "all_classes": None, "dataset": "hotpotqa"} for i in range(2)]
    (data / "hotpotqa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = ["eval", "longbench", "--data-dir", str(data), "--model", str(model_dirs / "base"), "--label", "m",
            f"output_dir={tmp_path / 'run'}", "eval.generate.dtype=float32", "--max-new-tokens", "4"]
    assert main([*base, "eval.generate.max_context=5"]) == EXIT_INCOMPLETE  # no room for any prompt
    pred = tmp_path / "run" / "eval" / "m" / "longbench" / "pred"
    assert json.loads((pred / "result.json").read_text())["num_failures"] == 2
    assert "eval longbench incomplete" in capsys.readouterr().err
    assert main(base) == 0 and (pred.parent / "pred.done").exists()


def test_val_never_finishes_with_items_left(tmp_path, capsys):
    """VaL scores every line of FILM's files or stops naming the line: exit 0 or 2, never 75."""
    data, preds = tmp_path / "data", tmp_path / "preds"
    data.mkdir()
    preds.mkdir()
    rows = [{"prompt": "p", "completion": "a b", "position_id": p, "set_id": 0} for p in range(4)]
    (data / "document_bi_32k.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "document_bi_32k_skip_list.json").write_text("[]")
    (preds / "sample_document_bi_32k.jsonl").write_text("".join(json.dumps({"sample": "a"}) + "\n" for _ in rows))
    argv = ["eval", "val", "--data", str(data), "--predictions", str(preds), "--span", "2"]
    assert main(argv) == 0
    out = json.loads((preds / "val_result.json").read_text())
    assert out["tasks"]["document"]["n"] == 2  # each span's last position is left out, as released
    (preds / "sample_document_bi_32k.jsonl").write_text(json.dumps({"sample": "a"}) + "\n")
    assert main(argv) == 2 and "line-aligned" in capsys.readouterr().err
