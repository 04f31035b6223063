"""LongBench: --score-only from files (exact result.json), bad input, middle truncation, -E buckets,
and the prediction path with a fake generator (orchestration only: prompts, truncation, resume)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longcurate.cli import main
from longcurate.config import RunConfig
from longcurate.core.config import build
from longcurate.core.eval_layout import LongBenchFiles
from longcurate.eval import metrics
from longcurate.eval.longbench import generation_settings, run_longbench
from longcurate.eval.longbench_data import LongBenchItem
from longcurate.eval.longbench_prompts import build_prompt, fit_prompt, load_maxlens, load_prompts, truncate_middle
from longcurate.eval.longbench_score import FAILURE_POLICY
from longcurate.eval.model import GenResult
from longcurate.eval.predict import request_hash

POLICY = FAILURE_POLICY


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path


def run_cli(argv: list[str]) -> int:
    """`longcurate eval longbench ...` through the real CLI."""
    return main(["eval", "longbench", *argv])


def read_result(folder: Path) -> dict:
    return json.loads((folder / "result.json").read_text(encoding="utf-8"))


def score_only(pred_dir: Path, *extra: str, evals: Path | None = None) -> tuple[int, Path]:
    """`eval longbench --score-only PRED_DIR` into an eval folder (default: `evals/` beside PRED_DIR):
    the exit code, and the layout folder its result goes to, `<evals>/<label>/longbench/pred[_e]/`
    (label: PRED_DIR's name)."""
    evals = evals or pred_dir.parent / "evals"
    code = run_cli(["--score-only", str(pred_dir), "--output-dir", str(evals), *extra])
    return code, evals / pred_dir.name / "longbench" / ("pred_e" if "--longbench-e" in extra else "pred")


TREC_CLASSES = ["Location", "Entity", "Human being", "Human"]


def pred(p: str, answers: list[str], length: int = 1000, classes=None, rid: str | None = None) -> dict:
    row = {"pred": p, "answers": answers, "all_classes": classes, "length": length}
    if rid is not None:
        row["_id"] = rid
    return row


@pytest.fixture()
def pred_dir(tmp_path: Path) -> Path:
    """Prediction files in LongBench's own format (no `_id`), with hand-computed scores."""
    d = tmp_path / "pred"
    write_jsonl(d / "hotpotqa.jsonl", [
        pred("The Eiffel Tower", ["Eiffel Tower"]),  # 1
        pred("a cat sat", ["the cat", "dog"]),  # 2/3 (best ground truth)
        pred("", ["x"]),  # 0
    ])  # 55.56
    write_jsonl(d / "trec.jsonl", [
        pred("Location\nEntity", ["Location"], classes=TREC_CLASSES),  # first line only: 1
        pred("Human being", ["Human being"], classes=TREC_CLASSES),  # 1
        pred("Location or Entity", ["Entity"], classes=TREC_CLASSES),  # 1/2
        pred("Human", ["Location"], classes=TREC_CLASSES),  # 0
    ])  # 62.5
    write_jsonl(d / "passage_count.jsonl", [pred("7", ["7"]), pred("7 or 10", ["7"])])  # 75.0
    write_jsonl(d / "lcc.jsonl", [pred("return x", ["return y"]), pred("\n```\nfoo()\n```", ["foo()"])])  # 94.0: fuzz.ratio is an integer, 88
    write_jsonl(d / "gov_report.jsonl", [pred("quick brown fox", ["quick brown fox"]),
                                        pred("a quick brown fox", ["quick brown dog jumps"])])  # 75.0
    (d / "notes.jsonl").write_text("not a task file\n")  # ignored: not a task name
    return d


EXPECTED_SCORES = {"hotpotqa": 55.56, "gov_report": 75.0, "trec": 62.5, "passage_count": 75.0, "lcc": 94.0}


def test_score_only_reproduces_hand_computed_scores(pred_dir: Path, capsys):
    code, out = score_only(pred_dir)
    assert code == 0
    result = read_result(out)
    intervals = result.pop("intervals")
    assert {t: i["mean"] for t, i in intervals.items()} == EXPECTED_SCORES
    # two items scoring 1 and 0.5: the resampled means are 0.5, 0.75, 1 (1/4, 1/2, 1/4): [50, 100]
    for task in ("passage_count", "gov_report"):
        assert intervals[task] == {"mean": 75.0, "low": 50.0, "high": 100.0, "n": 2}
    assert intervals["lcc"] == {"mean": 94.0, "low": 88.0, "high": 100.0, "n": 2}
    assert result == {
        "benchmark": "LongBench",
        "scores": EXPECTED_SCORES,
        "average": 72.41,  # (55.56 + 75 + 62.5 + 75 + 94) / 5
        "categories": {"multi-doc QA": 55.56, "summarization": 75.0, "few-shot": 62.5, "synthetic": 75.0,
                       "code": 94.0},
        "metrics": {"hotpotqa": {"metric": "qa_f1", "aggregation": "mean", "higher_is_better": True},
                    "gov_report": {"metric": "rouge_l", "aggregation": "mean", "higher_is_better": True},
                    "trec": {"metric": "classification", "aggregation": "mean", "higher_is_better": True},
                    "passage_count": {"metric": "count", "aggregation": "mean", "higher_is_better": True},
                    "lcc": {"metric": "code_sim", "aggregation": "mean", "higher_is_better": True}},
        "counts": {"hotpotqa": {"scored": 3, "failed": 0}, "gov_report": {"scored": 2, "failed": 0},
                   "trec": {"scored": 4, "failed": 0}, "passage_count": {"scored": 2, "failed": 0},
                   "lcc": {"scored": 2, "failed": 0}},
        "num_failures": 0,
        "failures": {},
        "failure_policy": POLICY,
        "pred_dir": str(pred_dir),
    }
    assert not LongBenchFiles(out).rejected.exists() and not (pred_dir / "result.json").exists()
    out = capsys.readouterr().out
    assert "hotpotqa" in out and "55.56" in out and "failures: 0" in out
    assert "qa_f1 ↑" in out  # each task's metric and its direction


def test_score_only_output_dir_and_task_filter(pred_dir: Path, tmp_path: Path):
    code, out = score_only(pred_dir, "--tasks", "lcc,trec", "--label", "mine", evals=tmp_path / "elsewhere")
    assert code == 0
    result = read_result(tmp_path / "elsewhere" / "mine" / "longbench" / "pred")
    assert result["scores"] == {"lcc": 94.0, "trec": 62.5}
    assert result["average"] == 78.25  # (94 + 62.5) / 2
    assert not (pred_dir / "result.json").exists()


def test_score_only_is_deterministic(pred_dir: Path):
    code, out = score_only(pred_dir)
    first = (out / "result.json").read_bytes()
    assert code == 0 and score_only(pred_dir)[0] == 0
    assert (out / "result.json").read_bytes() == first


def test_score_only_longbench_e_buckets(tmp_path: Path):
    d = tmp_path / "pred_e"
    write_jsonl(d / "hotpotqa.jsonl", [
        pred("paris", ["Paris"], length=1200),  # 0-4k: 1
        pred("london", ["Paris"], length=3999),  # 0-4k: 0
        pred("paris", ["Paris"], length=4000),  # 4-8k: 1
        pred("paris france", ["Paris"], length=9000),  # 8k+: 2/3
    ])
    write_jsonl(d / "passage_count.jsonl", [pred("3", ["3"], length=100)])
    code, out = score_only(d, "--longbench-e")
    assert code == 0
    result = read_result(out)
    assert result["benchmark"] == "LongBench-E"
    assert result["scores"] == {"hotpotqa": {"0-4k": 50.0, "4-8k": 100.0, "8k+": 66.67},
                                "passage_count": {"0-4k": 100.0, "4-8k": None, "8k+": None}}
    assert result["average"] == {"0-4k": 75.0, "4-8k": 100.0, "8k+": 66.67}


def test_the_old_e_switch_is_gone(tmp_path: Path, capsys):
    d = tmp_path / "pred_e"
    write_jsonl(d / "hotpotqa.jsonl", [pred("paris", ["Paris"], length=5000)])
    with pytest.raises(SystemExit) as stop:
        run_cli(["--score-only", str(d), "--e"])
    assert stop.value.code == 2 and "unrecognized argument --e; did you mean --longbench-e?" in capsys.readouterr().err
    assert not (d / "result.json").exists()


def test_score_only_e_needs_length(tmp_path: Path):
    d = tmp_path / "pred_e"
    write_jsonl(d / "hotpotqa.jsonl", [pred("paris", ["Paris"], length=1200), {"pred": "paris", "answers": ["Paris"]}])
    code, out = score_only(d, "--longbench-e")
    assert code == 0
    result = read_result(out)
    assert result["counts"]["hotpotqa"] == {"scored": 1, "failed": 1}
    (f,) = result["failures"]["hotpotqa"]
    assert (f["line"], f["field"]) == (2, "length")


def data_row(rid: str, answers: list[str], context: str = "ctx", inp: str = "q?", length: int = 500, **kw) -> dict:
    return {"input": inp, "context": context, "answers": answers, "length": length, "dataset": kw.pop("dataset", ""),
            "all_classes": kw.pop("all_classes", None), "_id": rid, **kw}


def test_bad_input_is_counted_listed_and_the_rest_scored(tmp_path: Path, capsys):
    data = tmp_path / "data"
    write_jsonl(data / "hotpotqa.jsonl", [
        data_row("h1", ["Paris"]), data_row("h2", ["Rome"]), data_row("h3", ["Oslo"]), data_row("h4", ["Bern"]),
        {"input": "q?", "answers": ["x"], "length": 10, "_id": "h5"},  # no context
    ])
    write_jsonl(data / "passage_count.jsonl", [data_row(f"c{i}", ["2"]) for i in range(3)])
    preds = tmp_path / "pred"
    write_jsonl(preds / "hotpotqa.jsonl", [
        pred("Paris", ["Paris"], rid="h1"),  # scored: 1
        {"answers": ["Rome"], "all_classes": None, "length": 500, "_id": "h2"},  # no pred
        '{"pred": "Oslo", "answers": ',  # not JSON
        {"pred": "Oslo", "all_classes": None, "length": 500, "_id": "h3"},  # no answers
    ])  # h4: no line at all
    write_jsonl(preds / "passage_count.jsonl", [pred("2", ["2"]), pred("2 3", ["2"])])  # 3 data items, 2 lines
    code, out = score_only(preds, "--data-dir", str(data))
    assert code == 0
    result = read_result(out)
    assert result["scores"] == {"hotpotqa": 100.0, "passage_count": 75.0}
    assert result["counts"] == {"hotpotqa": {"scored": 1, "failed": 5}, "passage_count": {"scored": 2, "failed": 1}}
    assert result["num_failures"] == 6
    hp = result["failures"]["hotpotqa"]
    pred_file = str(preds / "hotpotqa.jsonl")
    assert hp[0] == {"file": str(data / "hotpotqa.jsonl"), "line": 5, "field": "context", "_id": "h5",
                     "reason": "bad data line: missing"}
    assert [(f["file"], f["line"], f["field"], f["_id"]) for f in hp[1:]] == [
        (pred_file, 2, "pred", "h2"), (pred_file, 3, None, None), (pred_file, 4, "answers", "h3"),
        (pred_file, None, "pred", "h4")]
    assert "invalid JSON" in hp[2]["reason"]
    assert hp[4]["reason"] == "no prediction for this _id"
    (pc,) = result["failures"]["passage_count"]
    assert pc["reason"] == "no prediction: passage_count.jsonl has 2 lines for 3 data items"
    rejected = [json.loads(x) for x in LongBenchFiles(out).rejected.read_text().splitlines()]
    assert len(rejected) == 6
    out = capsys.readouterr().out
    assert "failures: 6" in out and "field 'pred'" in out and "h4" in out


def test_unknown_task_and_missing_folder(tmp_path: Path, capsys):
    assert score_only(tmp_path / "nope")[0] == 2
    d = write_jsonl(tmp_path / "p" / "hotpotqa.jsonl", [pred("a", ["a"])]).parent
    assert score_only(d, "--tasks", "hotpotqa,not_a_task")[0] == 2
    assert "unknown LongBench task 'not_a_task'" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert score_only(empty)[0] == 2


# --- prompts and truncation --------------------------------------------------------------------

def test_truncate_middle_keeps_first_and_last_halves(tokenizer):
    text = " ".join(f"w{i}" for i in range(400))
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > 100
    out, cut = truncate_middle(text, tokenizer, 100)
    assert cut
    assert out == tokenizer.decode(ids[:50]) + tokenizer.decode(ids[-50:])
    assert out.startswith("w0 w1 w2") and out.endswith("w398 w399")
    assert "w200" not in out
    same, cut = truncate_middle(text, tokenizer, len(ids))
    assert (same, cut) == (text, False)


def test_fit_prompt_fits_the_rendered_chat_prompt(tokenizer):
    from longcurate.eval.render import render_prompt

    text = "START " + " ".join(f"w{i}" for i in range(600)) + " END"
    for max_context in (120, 300, 5000):
        out, cut = fit_prompt(text, tokenizer, max_input_tokens=None, max_context=max_context,
                                 max_new_tokens=32, template="chat")
        rendered, special = render_prompt(out, tokenizer, "chat")
        n = len(tokenizer(rendered, add_special_tokens=special)["input_ids"])
        assert n <= max_context - 32
        assert cut == (max_context < 5000)
        assert out.startswith("START") and out.endswith("END")
    out, cut = fit_prompt(text, tokenizer, max_input_tokens=64, max_context=10**6, max_new_tokens=32,
                             template="chat")
    assert cut and len(tokenizer(out, add_special_tokens=False)["input_ids"]) <= 66


def reference_fit(text, tokenizer, budget, template):
    """Straightforward: re-tokenize the whole text for every try (what fit_prompt avoids)."""
    from longcurate.eval.render import render_prompt

    n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    limit = budget
    while True:
        candidate, _ = truncate_middle(text, tokenizer, limit)
        rendered, special = render_prompt(candidate, tokenizer, template)
        over = len(tokenizer(rendered, add_special_tokens=special)["input_ids"]) - budget
        if over <= 0:
            return candidate
        limit = min(limit, n) - over


@pytest.mark.parametrize("template", ["chat", "raw", "film"])
def test_fit_prompt_matches_reference(tokenizer, template):
    text = "Intro. " + " ".join(f"sentence {i} about topic {i % 7}." for i in range(300)) + " Question?"
    for max_context in (100, 700, 1400, 3000):
        out, _ = fit_prompt(text, tokenizer, max_input_tokens=None, max_context=max_context,
                               max_new_tokens=32, template=template)
        assert out == reference_fit(text, tokenizer, max_context - 32, template)


def test_prompt_and_maxlen_files(tmp_path: Path):
    prompts = load_prompts()
    assert set(prompts) == set(metrics.TASKS)
    assert all("{context}" in t for t in prompts.values())
    item = LongBenchItem("1", "hotpotqa", "Who?", "CTX {braces} stay", ["a"])
    assert "CTX {braces} stay" in build_prompt(prompts["hotpotqa"], item) and "Who?" in build_prompt(
        prompts["hotpotqa"], item)
    f = tmp_path / "dataset2prompt.json"
    f.write_text(json.dumps({"hotpotqa": "C: {context}\nQ: {input}\nA:"}))
    assert load_prompts(str(f))["hotpotqa"] == "C: {context}\nQ: {input}\nA:"
    f.write_text(json.dumps({"hotpotqa": "C: {context} {question}"}))
    with pytest.raises(ValueError, match="dataset2prompt.json: task 'hotpotqa'"):
        load_prompts(str(f))
    m = tmp_path / "dataset2maxlen.json"
    m.write_text(json.dumps({"hotpotqa": 7}))
    assert load_maxlens(str(m))["hotpotqa"] == 7 and load_maxlens(str(m))["lcc"] == 64
    m.write_text(json.dumps({"hotpotqa": "seven"}))
    with pytest.raises(ValueError, match="hotpotqa"):
        load_maxlens(str(m))


# --- the prediction path (a fake generator: orchestration only) --------------------------------

class FakeGenerator:
    """Answers from a table; records every request with the template it is rendered with (its own, or
    its generator's); fails chosen ids."""

    def __init__(self, tokenizer, answers: dict[str, str], max_context: int = 256, fail: frozenset = frozenset()):
        self.tokenizer = tokenizer
        self.max_context = max_context
        self.template = "chat"
        self.answers = answers
        self.fail = fail
        self.seen: list[tuple[str, object]] = []

    def generate(self, requests):
        out = []
        for r in requests:
            self.seen.append((r.template or self.template, r))
            if r.id in self.fail:
                out.append(GenResult(r.id, "", "CUDA out of memory"))
            else:
                out.append(GenResult(r.id, self.answers[r.id]))
        return out


LONG = "START " + " ".join(f"filler{i}" for i in range(400)) + " END"


@pytest.fixture()
def run_setup(tmp_path: Path):
    data = tmp_path / "data"
    write_jsonl(data / "hotpotqa.jsonl", [
        data_row("h1", ["Paris"], context=LONG, inp="Capital of France?"),
        data_row("h2", ["Rome"], context="short context", inp="Capital of Italy?"),
        data_row("h3", ["Oslo"], context="short", inp="Capital of Norway?"),
    ])
    write_jsonl(data / "trec.jsonl", [
        data_row("t1", ["Location"], context="Question: Where?\nType: Location", inp="Question: Where is X?\nType:",
                 all_classes=TREC_CLASSES),
        data_row("t2", ["Human"], context="Question: Who?\nType: Human", inp="Question: Who is Y?\nType:",
                 all_classes=TREC_CLASSES),
    ])
    cfg = build(RunConfig, {"output_dir": str(tmp_path / "run"),
                            "eval": {"longbench": {"data_dir": str(data), "tasks": ["hotpotqa", "trec"]}}})
    answers = {"h1": "Paris", "h2": "Rome", "h3": "Bergen", "t1": "Location\nHuman", "t2": "Entity"}
    return cfg, answers, tmp_path / "run" / "eval" / "smollm2-135m-instruct" / "longbench" / "pred"  # the label: the model's name


def test_run_builds_truncates_writes_and_resumes(run_setup, tokenizer):
    cfg, answers, pred_dir = run_setup
    gen = FakeGenerator(tokenizer, answers, fail=frozenset({"h2"}))
    result = run_longbench(cfg, backend=gen, progress=False)

    # prompts: chat turns for QA (truncated in the middle to fit 256 - 32 tokens), raw text for trec;
    # each request carries its template and the ids measured while fitting it
    by_id = {r.id: (tpl, r) for tpl, r in gen.seen}
    tpl, h1 = by_id["h1"]
    assert tpl == "chat" and isinstance(h1.prompt, str) and h1.max_new_tokens == 32
    text = h1.prompt
    assert "START" in text and "END" in text and "filler200" not in text and "Capital of France?" in text
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                             add_generation_prompt=True)
    assert len(tokenizer(rendered, add_special_tokens=False)["input_ids"]) <= 256 - 32
    assert h1.ids == tokenizer(rendered, add_special_tokens=False)["input_ids"]
    tpl, t1 = by_id["t1"]
    assert tpl == "raw" and isinstance(t1.prompt, str) and t1.prompt.endswith("Question: Where is X?\nType:")
    assert t1.ids == tokenizer(t1.prompt)["input_ids"]  # raw: the text as is, with the tokenizer's specials
    assert t1.max_new_tokens == 64
    assert gen.template == "chat"  # the generator itself is never switched
    assert result["_stats"]["predictions"] == {"predicted": 4, "skipped": 0, "truncated": 1, "errors": 1}
    assert result["_stats"]["complete"] is False and result["_stats"]["failed"] == 1  # no marker: rerun retries h2

    # predictions in LongBench's format; the failed item is not written and is listed
    lines = [json.loads(x) for x in (pred_dir / "hotpotqa.jsonl").read_text().splitlines()]
    assert [x["_id"] for x in lines] == ["h1", "h3"]
    h1_item = LongBenchItem("h1", "hotpotqa", "Capital of France?", LONG, ["Paris"], 500)
    settings = generation_settings(cfg, cfg.model, cfg.eval.longbench.max_input_tokens)
    h1_hash = request_hash(build_prompt(load_prompts()["hotpotqa"], h1_item), 32, settings)
    assert lines[0] == {"pred": "Paris", "answers": ["Paris"], "all_classes": None, "length": 500, "_id": "h1",
                        "model": cfg.model, "request_hash": h1_hash}
    assert result["scores"] == {"hotpotqa": 50.0, "trec": 50.0}  # trec: first line "Location" 1, "Entity" 0
    assert result["counts"]["hotpotqa"] == {"scored": 2, "failed": 1}
    (f,) = result["failures"]["hotpotqa"]
    assert f["_id"] == "h2" and f["reason"] == "generation error: CUDA out of memory"
    assert read_result(pred_dir)["failures"] == result["failures"]

    # re-run: only the failed item is generated again; then nothing at all
    gen2 = FakeGenerator(tokenizer, answers)
    result2 = run_longbench(cfg, backend=gen2, progress=False)
    assert [r.id for _, r in gen2.seen] == ["h2"]
    assert result2["scores"] == {"hotpotqa": 66.67, "trec": 50.0} and result2["num_failures"] == 0
    first = (pred_dir / "result.json").read_bytes()
    gen3 = FakeGenerator(tokenizer, answers)
    result3 = run_longbench(cfg, backend=gen3, progress=False)
    assert gen3.seen == [] and result3["_stats"]["skipped"] is True  # complete: the step is not even started
    assert (pred_dir / "result.json").read_bytes() == first
    assert not LongBenchFiles(pred_dir).rejected.exists()
    # --score-only on the same folder reproduces the run's result (without the run's metadata), into
    # the folder of the label the predictions sit in, under the other eval folder
    evals = pred_dir.parent / "rescored"
    assert run_cli(["--score-only", str(pred_dir), "--output-dir", str(evals)]) == 0
    rescored = read_result(evals / pred_dir.parent.parent.name / "longbench" / "pred")
    assert rescored["scores"] == result3["scores"] and rescored["counts"] == result3["counts"]


def test_run_resumes_after_a_torn_write(run_setup, tokenizer):
    cfg, answers, pred_dir = run_setup
    run_longbench(cfg, backend=FakeGenerator(tokenizer, answers), progress=False)
    path = pred_dir / "hotpotqa.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2]) + lines[2][:15])  # the process died while writing h3 ...
    (pred_dir.parent / "pred.done").unlink()  # ... so the step never got its completion marker
    gen = FakeGenerator(tokenizer, answers)
    result = run_longbench(cfg, backend=gen, progress=False)
    assert [r.id for _, r in gen.seen] == ["h3"]
    assert [json.loads(x)["_id"] for x in path.read_text().splitlines()] == ["h1", "h2", "h3"]
    assert result["num_failures"] == 0


def test_changed_prompt_or_model_redoes_only_what_it_changes(run_setup, tokenizer, tmp_path: Path):
    cfg, answers, pred_dir = run_setup
    run_longbench(cfg, backend=FakeGenerator(tokenizer, answers), progress=False)
    trec = (pred_dir / "trec.jsonl").read_bytes()
    prompt_file = tmp_path / "dataset2prompt.json"
    prompt_file.write_text(json.dumps({"hotpotqa": "C: {context}\nQ: {input}\nA:"}))
    cfg.eval.longbench.prompt_file = str(prompt_file)
    gen = FakeGenerator(tokenizer, {**answers, "h2": "Milan"})
    result = run_longbench(cfg, backend=gen, progress=False)
    assert sorted(r.id for _, r in gen.seen) == ["h1", "h2", "h3"]  # hotpotqa's prompts changed; trec's did not
    assert all(r.prompt.startswith("C: ") for _, r in gen.seen)
    assert (pred_dir / "trec.jsonl").read_bytes() == trec
    lines = [json.loads(x) for x in (pred_dir / "hotpotqa.jsonl").read_text().splitlines()]
    assert [(x["_id"], x["pred"]) for x in lines] == [("h1", "Paris"), ("h2", "Milan"), ("h3", "Bergen")]
    assert result["_stats"]["predictions"]["predicted"] == 3 and result["_stats"]["predictions"]["skipped"] == 2
    gen = FakeGenerator(tokenizer, answers)
    result = run_longbench(cfg, model="another-model", backend=gen, progress=False)
    assert len(gen.seen) == 5  # another model: its own folder, every prediction made for it
    assert Path(result["_path"]).parent == pred_dir.parents[2] / "another-model" / "longbench" / "pred"
    assert (pred_dir / "trec.jsonl").read_bytes() == trec  # the first model's predictions are untouched


def test_a_prediction_file_without_ids_is_not_overwritten(run_setup, tokenizer):
    """LongBench's own prediction files have no `_id`: predicting into one would lose it."""
    from longcurate.core.errors import UserError

    cfg, answers, pred_dir = run_setup
    write_jsonl(pred_dir / "trec.jsonl", [pred("Location", ["Location"], classes=TREC_CLASSES)])
    before = (pred_dir / "trec.jsonl").read_bytes()
    with pytest.raises(UserError, match="field '_id' missing; cannot resume"):
        run_longbench(cfg, backend=FakeGenerator(tokenizer, answers), progress=False)
    assert (pred_dir / "trec.jsonl").read_bytes() == before


def test_run_limit_and_bad_data_line(tmp_path: Path, tokenizer):
    data = tmp_path / "data"
    write_jsonl(data / "passage_count.jsonl", [
        data_row("c1", ["2"]), {"input": "", "context": "x", "answers": "2", "_id": "c2"}, data_row("c3", ["1"]),
        data_row("c4", ["5"])])
    cfg = build(RunConfig, {"output_dir": str(tmp_path / "run"),
                            "eval": {"longbench": {"data_dir": str(data), "limit": 2}}})
    gen = FakeGenerator(tokenizer, {"c1": "2", "c3": "1 or 2"})
    result = run_longbench(cfg, backend=gen, progress=False)
    assert [r.id for _, r in gen.seen] == ["c1", "c3"]  # every task found; the first 2 good items
    assert result["scores"] == {"passage_count": 75.0}
    (f,) = result["failures"]["passage_count"]
    assert (f["line"], f["field"], f["_id"]) == (2, "answers", "c2") and "list of strings" in f["reason"]


def test_no_data_source_is_a_clear_error(tmp_path: Path):
    cfg = build(RunConfig, {"output_dir": str(tmp_path)})
    with pytest.raises(FileNotFoundError, match="data_dir"):
        run_longbench(cfg, backend=object(), progress=False)


@pytest.mark.integration
def test_run_with_the_real_hf_generator(run_setup, tokenizer, smollm2):
    """SmolLM2 through the HF backend: every truncated prompt fits the backend's own check, raw tasks
    bypass the chat template, and the files are complete."""
    from longcurate.eval.hf_backend import HFModel

    cfg, _, pred_dir = run_setup
    maxlen = pred_dir.parents[4] / "maxlen.json"
    maxlen.write_text(json.dumps({"hotpotqa": 8, "trec": 4}))  # short answers keep the test quick
    cfg.eval.longbench.maxlen_file = str(maxlen)
    gen = HFModel(smollm2, tokenizer, template="chat", batch_size=2, max_context=200, progress=False)
    result = run_longbench(cfg, backend=gen, progress=False)
    assert result["num_failures"] == 0, result["failures"]
    assert result["_stats"]["predictions"]["truncated"] == 1 and gen.template == "chat"
    assert result["counts"] == {"hotpotqa": {"scored": 3, "failed": 0}, "trec": {"scored": 2, "failed": 0}}
    for task in ("hotpotqa", "trec"):
        rows = [json.loads(x) for x in (pred_dir / f"{task}.jsonl").read_text().splitlines()]
        assert all(isinstance(r["pred"], str) for r in rows) and len(rows) == len({r["_id"] for r in rows})
    assert all(0.0 <= s <= 100.0 for s in result["scores"].values())


@pytest.mark.integration
def test_cli_run_mode_with_smollm2(tmp_path: Path):
    """`longcurate eval longbench` end to end: flags and key=value overrides, the hf backend, resume."""
    data = tmp_path / "data"
    write_jsonl(data / "passage_count.jsonl", [data_row("c1", ["1"], context="Paragraph 1: The sky is blue.",
                                                        inp=""), data_row("c2", ["1"])])
    maxlen = tmp_path / "maxlen.json"
    maxlen.write_text(json.dumps({"passage_count": 4}))
    out = tmp_path / "lb"
    argv = ["--data-dir", str(data), "--output-dir", str(out), "--limit", "1", "--backend", "hf",
            "--model", "smollm2-135m-instruct", f"eval.longbench.maxlen_file={maxlen}", "eval.generate.dtype=float32"]
    assert run_cli(argv) == 0
    pred_dir = out / "smollm2-135m-instruct" / "longbench" / "pred"
    result = read_result(pred_dir)
    assert result["counts"] == {"passage_count": {"scored": 1, "failed": 0}}
    assert result["model"] == "smollm2-135m-instruct" and result["label"] == "smollm2-135m-instruct"
    first = (pred_dir / "result.json").read_bytes()
    assert run_cli(argv) == 0  # nothing left to predict: same bytes
    assert (pred_dir / "result.json").read_bytes() == first


def test_tasks_whose_metrics_point_in_opposite_directions_are_not_averaged(monkeypatch):
    from longcurate.eval.longbench_score import TaskResult, build_result

    monkeypatch.setitem(metrics.TASK_METRIC, "lcc", metrics.Metric("errors", metrics.count_score, higher_is_better=False))
    results = [TaskResult("hotpotqa", [1.0], [None], []), TaskResult("lcc", [0.0], [None], [])]
    with pytest.raises(ValueError, match="different directions"):
        build_result(results, e=False)
    assert build_result(results[:1], e=False)["metrics"]["hotpotqa"]["higher_is_better"] is True
