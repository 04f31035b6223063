"""LongBench-Chat as LongAlign released it and GATEAU used it (docs/reference.md, "LongBench-Chat").

    <data>/test_cases.json     [{idx, query, prompt, answer}], idx from 1
    <data>/few_shots.json      per case, in idx order: [{answer, score}] x 3 (reference ratings)
    <data>/prompt_fs.txt       the judge template: question, reference answer, (answer, rating) x 3, answer
    <label>/longbench-chat/pred.jsonl    {"idx": i, "pred": text} (+ request_hash), resumable
    <label>/longbench-chat/result.json   score = mean rating x 10 over rated cases; counts; per-case
                                         ratings and judge replies; the judge's token usage

Generation: each case's `prompt` (context and question), cut in the middle when it does not fit the
model (`eval.longbench_chat.max_input_tokens`, else what the window leaves), up to 1,024 new tokens,
greedy. Rating: the judge (`eval/judge.py`) gets the system message "You're a good assistant at
evaluating the quality of texts." and the template filled in order, at temperature 0; the rating is
the first number in the reply's last `[[...]]`. As in the released script, the prediction the judge
sees is stripped with its line breaks turned into spaces (it kept one prediction per line). A case
whose replies hold no rating on the 1-10 scale is *failed*, one whose request did not get through is
*pending*; neither counts in the score, neither is ever a 0, and `complete` is false while any is left:
the task is then incomplete (`core.runner`: no completion marker, the command exits with the shared
"incomplete" code, and a rerun asks the judge again for exactly those). Generating and rating one model
is one step (`chat_task`), and so is rating given predictions (`score_only`): locked while they run,
skipped when complete with the same settings.
"""

from __future__ import annotations

import json
import logging
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longcurate.core.errors import UserError
from longcurate.core.eval_layout import ChatFiles, EvalFiles
from longcurate.core.jsonl import Rejects, read_json_if_valid, rejected_path, write_json
from longcurate.core.reader import read_parsed, source_digest
from longcurate.core.records import RecordError
from longcurate.core.runner import StepRun, StepSpec, run_step
from longcurate.eval.config import EvalRunConfig
from longcurate.eval.judge import Judge, Rating, judge_cache, last_bracket_rating, usage_total
from longcurate.eval.labels import model_run
from longcurate.eval.longbench import generation_settings
from longcurate.eval.longbench_predict import PromptFitter
from longcurate.eval.model import EvalModel, GenRequest, ModelRun, task_stats
from longcurate.eval.predict import predict

log = logging.getLogger("longcurate.eval")

SYSTEM = "You're a good assistant at evaluating the quality of texts."


@dataclass
class ChatCase:
    idx: int
    query: str
    prompt: str
    answer: str
    shots: list[tuple[str, Any]]  # (reference answer, its rating)


def _load_json(path: Path) -> Any:
    if not path.exists():
        raise FileNotFoundError(2, "LongBench-Chat file not found (the data folder holds test_cases.json, "
                                   "few_shots.json, prompt_fs.txt)", str(path))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None


def load_cases(data_dir: str | Path, limit: int | None = None) -> tuple[list[ChatCase], str]:
    """The cases (the first `limit`) and the judge template, checked against each other."""
    data_dir = Path(data_dir)
    cases, shots = _load_json(data_dir / "test_cases.json"), _load_json(data_dir / "few_shots.json")
    template = (data_dir / "prompt_fs.txt").read_text(encoding="utf-8")
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    if any(fields) or len(fields) < 3 or len(fields) % 2 == 0:
        raise UserError(f"{data_dir / 'prompt_fs.txt'}: need positional {{}} fields: question, reference answer, "
                        f"(answer, rating) pairs, the answer to rate; found {len(fields)} ({fields[:4]})")
    pairs = (len(fields) - 3) // 2
    if not isinstance(cases, list) or not isinstance(shots, list):
        raise UserError(f"{data_dir}: test_cases.json and few_shots.json must be JSON lists")
    out = []
    for n, c in enumerate(cases[:limit] if limit is not None else cases):
        where = f"{data_dir / 'test_cases.json'}: entry {n}"
        if not isinstance(c, dict) or not isinstance(c.get("idx"), int) or c["idx"] < 1:
            raise UserError(f"{where}: needs an integer idx >= 1")
        bad = next((k for k in ("query", "prompt", "answer") if not isinstance(c.get(k), str)), None)
        if bad:
            raise UserError(f"{where} (idx {c['idx']}): field '{bad}' must be a string")
        refs = shots[c["idx"] - 1] if c["idx"] <= len(shots) else None
        if not isinstance(refs, list) or len(refs) != pairs or not all(isinstance(r, dict) and "answer" in r
                                                                       and "score" in r for r in refs):
            raise UserError(f"{data_dir / 'few_shots.json'}: entry {c['idx'] - 1} (idx {c['idx']}) must hold "
                            f"{pairs} {{answer, score}} objects, as the template asks")
        out.append(ChatCase(c["idx"], c["query"], c["prompt"], c["answer"], [(r["answer"], r["score"]) for r in refs]))
    if len({c.idx for c in out}) != len(out):
        raise UserError(f"{data_dir / 'test_cases.json'}: duplicate idx")
    return out, template


def judge_messages(template: str, case: ChatCase, prediction: str) -> list[dict[str, str]]:
    """The released judge request: system message, then the template filled in order."""
    flat = [x for pair in case.shots for x in pair]
    prompt = template.format(case.query, case.answer, *flat, prediction.strip().replace("\n", " "))
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def read_predictions(path: Path, cases: list[ChatCase], rejects: Rejects) -> dict[int, str]:
    """{idx: pred} of a prediction file; bad lines, unknown and repeated idx are quarantined."""
    known = {c.idx for c in cases}

    def parse(obj: dict[str, Any]) -> tuple[int, str]:
        if not isinstance(obj.get("idx"), int) or isinstance(obj.get("idx"), bool):
            raise RecordError("idx", "must be an integer")
        if not isinstance(obj.get("pred"), str):
            raise RecordError("pred", "must be a string")
        if obj["idx"] not in known:
            raise RecordError("idx", f"no case {obj['idx']} in the data")
        return obj["idx"], obj["pred"]

    if not path.exists():
        raise FileNotFoundError(2, "prediction file not found", str(path))
    out: dict[int, str] = {}
    for row, (idx, pred) in read_parsed(path, parse, rejects):
        if idx in out:
            rejects.add("repeated idx (the first is rated)", file=str(path), line=row.line, field_name="idx",
                        record_id=str(idx))
        else:
            out[idx] = pred
    return out


def rate_predictions(cfg: EvalRunConfig, cases: list[ChatCase], template: str, preds: dict[int, str],
                     path: Path, extra: dict[str, Any] | None = None, cache: Path | None = None) -> dict[str, Any]:
    """Rate every case with a prediction and write the result to `path` (judge replies cached in
    `cache`, default `judge_cache(cfg)`)."""
    asked = [c for c in cases if c.idx in preds]
    with Judge(cfg.eval.judge, cache or judge_cache(cfg)) as judge:
        ratings = judge.rate_all([judge_messages(template, c, preds[c.idx]) for c in asked], last_bracket_rating,
                                 desc="longbench-chat judge")
        stats = judge.stats()
    by_idx: dict[int, Rating] = {c.idx: r for c, r in zip(asked, ratings)}
    rated = [r.value for r in ratings if r.value is not None]
    n_failed, n_pending = sum(r.status == "failed" for r in ratings), sum(r.status == "pending" for r in ratings)
    result = {"benchmark": "LongBench-Chat", "score": 10 * sum(rated) / len(rated) if rated else None,
              "scale": "mean judge rating (1-10) x 10 over the rated cases", "n_cases": len(cases),
              "n_rated": len(rated), "n_failed": n_failed, "n_pending": n_pending, "n_missing": len(cases) - len(asked),
              "complete": n_failed == n_pending == 0,
              **(extra or {}),
              "judge": {**stats, "max_retries": cfg.eval.judge.max_retries, "system": SYSTEM},
              "usage": {**usage_total(ratings), "requests_sent": stats["requests_sent"],
                        "cache_hits": stats["cache_hits"]},
              "cases": [case_line(c, preds.get(c.idx), by_idx.get(c.idx)) for c in cases]}
    write_json(path, result)
    return result


def case_line(case: ChatCase, pred: str | None, r: Rating | None) -> dict[str, Any]:
    if r is None:
        return {"idx": case.idx, "query": case.query, "status": "missing", "rating": None}
    return {"idx": case.idx, "query": case.query, "prediction": pred, "rating": r.value, "status": r.status,
            "judge_reply": r.reply, "tries": r.tries, "used_tokens": r.usage["total_tokens"],
            **({"error": r.error} if r.error else {})}


def outcome(result: dict[str, Any], failed: int = 0) -> dict[str, Any]:
    """The step's stats: the score and counts; incomplete while a case is failed or pending."""
    stats = {k: result[k] for k in ("score", "n_rated", "n_failed", "n_pending", "n_missing")}
    return task_stats(stats, failed=result["n_failed"] + failed, pending=result["n_pending"])


def score_only(cfg: EvalRunConfig, pred_file: str | Path, output_dir: str | Path | None = None) -> dict[str, Any]:
    """Rate existing predictions (`{"idx": i, "pred": text}` lines); result.json beside them by default,
    the judge's replies in `eval.judge.cache_dir`, else `judge-cache/` beside result.json. A case without
    a prediction line is `missing` (the input's), not left for a rerun."""
    data_dir, pred_file = require_data(cfg), Path(pred_file)
    files = ChatFiles(Path(output_dir) if output_dir else pred_file.parent)
    settings = {"predictions": source_digest(pred_file), "data": source_digest(data_dir), "limit": _limit(cfg),
                "judge": cfg.eval.judge.rating_settings(), "format": 1}

    def work(run: StepRun) -> dict[str, Any]:
        cases, template = load_cases(data_dir, _limit(cfg))
        bad_lines = rejected_path(files.predictions)
        bad_lines.unlink(missing_ok=True)  # this run's bad lines replace the last run's
        with Rejects(bad_lines) as rejects:
            preds = read_predictions(pred_file, cases, rejects)
        cache = Path(cfg.eval.judge.cache_dir) if cfg.eval.judge.cache_dir else EvalFiles(files.folder).judge_cache
        return outcome(rate_predictions(cfg, cases, template, preds, files.result,
                                        {"predictions": str(pred_file), "n_bad_lines": rejects.total}, cache))

    stats = run_step(StepSpec("the LongBench-Chat ratings", files.result, settings, quarantine=False), work)
    return {**(read_json_if_valid(files.result) or {}), "_path": str(files.result), "_stats": stats}


def chat_step(run: ModelRun, n: int) -> StepSpec:
    """`<label>/longbench-chat/pred.jsonl` (+ result.json), policy `redo`: answers already made for the
    same request are kept by their hash, and the judge's replies are cached by theirs, so a redo pays
    only for what changed. Settings: the generation settings, the data, the limit, the judge."""
    cfg, lc = run.cfg, run.cfg.eval.longbench_chat
    files = run.files.longbench_chat
    settings = {**generation_settings(cfg, run.model, lc.max_input_tokens), "max_new_tokens": n,
                "data": source_digest(require_data(cfg)), "limit": _limit(cfg),
                "judge": cfg.eval.judge.rating_settings(), "format": 1}
    return StepSpec(f"LongBench-Chat on {run.label}", files.predictions, settings, also_outputs=(files.result,))


def chat_task(run: ModelRun) -> dict[str, Any]:
    """Generate (resumable) and rate every case for one model into `<label>/longbench-chat/`."""
    cfg, lc = run.cfg, run.cfg.eval.longbench_chat
    n = cfg.eval.generate.new_tokens(lc.max_new_tokens)
    files = run.files.longbench_chat

    def work(step: StepRun) -> dict[str, Any]:
        cases, template = load_cases(require_data(cfg), _limit(cfg))
        fitter = PromptFitter(run.backend, lc.max_input_tokens)
        done = predict(run.backend, cases, step.output, request=lambda c: GenRequest(str(c.idx), c.prompt, n),
                       record=lambda c, text: {"idx": c.idx, "pred": text},
                       settings=generation_settings(cfg, run.model, lc.max_input_tokens), key="idx",
                       prepare=lambda r: fitter(r, "longbench-chat"), chunk=4, desc="longbench-chat")
        preds = {int(r["idx"]): r["pred"] for r in done.records}
        result = rate_predictions(cfg, cases, template, preds, files.result, {
            "model": run.model, "label": run.label, "predictions": str(step.output), "max_new_tokens": n,
            "truncated": fitter.truncated, "generation_failures": [f.to_dict() for f in done.failures]})
        return outcome(result, failed=len(done.failures))

    return run_step(chat_step(run, n), work)


def run_longbench_chat(cfg: EvalRunConfig, *, label: str | None = None, model: str | None = None,
                       backend: EvalModel | None = None) -> dict[str, Any]:
    """`eval longbench-chat`: generate and rate every case for `model` (default: the run's model) into
    `<eval_dir>/<label>/longbench-chat/`; its result.json, with the step's stats under `_stats`."""
    run = model_run(cfg, label, model or cfg.model, backend)
    stats = chat_task(run)
    path = run.files.longbench_chat.result
    return {**(read_json_if_valid(path) or {}), "_path": str(path), "_stats": stats}


def require_data(cfg: EvalRunConfig) -> str:
    if not cfg.eval.longbench_chat.data_dir:
        raise UserError("LongBench-Chat needs its data: --data DIR (eval.longbench_chat.data_dir), a folder with "
                        "test_cases.json, few_shots.json and prompt_fs.txt")
    return cfg.eval.longbench_chat.data_dir


def _limit(cfg: EvalRunConfig) -> int | None:
    lc = cfg.eval.longbench_chat
    return lc.limit if lc.limit is not None else cfg.eval.limit


def format_result(result: dict[str, Any]) -> str:
    score = "-" if result["score"] is None else f"{result['score']:.2f}"
    u = result["usage"]
    return (f"LongBench-Chat: {score} (mean rating x 10 over {result['n_rated']} rated of {result['n_cases']} cases; "
            f"failed {result['n_failed']}, pending {result['n_pending']}, missing {result['n_missing']})\n"
            f"judge {result['judge']['model']}: {u['requests_sent']} requests sent, {u['cache_hits']} replies from "
            f"the cache, {u['total_tokens']} tokens")


__all__ = ["SYSTEM", "ChatCase", "load_cases", "judge_messages", "read_predictions", "rate_predictions",
           "score_only", "chat_step", "chat_task", "run_longbench_chat", "require_data", "format_result"]
