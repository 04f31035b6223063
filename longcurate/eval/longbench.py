"""LongBench (v1) and LongBench-E: read the data, build per-task prompts, truncate in the middle,
generate, write predictions in LongBench's own format, score (REFERENCE.md, "LongBench (v1) scoring").

Files (LongBench's own layout, so its tools and ours read each other's output):

    <data_dir>/<task>.jsonl              data lines: input, context, answers, length, dataset, all_classes, _id
    <data_dir>/<task>_e.jsonl            the same for LongBench-E
    <output_dir>/pred/<task>.jsonl       predictions: pred, answers, all_classes, length, _id  (pred_e/ for -E)
    <output_dir>/pred/result.json        one score per task (0-100, 2 decimals), averages, failures
    <output_dir>/pred/result.rejected.jsonl   every failure with file, line, field, _id and reason

Failures — a data line that cannot be used, a generation error, a missing or malformed prediction
line, a prediction file with fewer lines than the data — are never scored as 0 silently: the item is
*excluded* from its task's mean, and `result.json` lists it under `failures` and counts it under
`counts.<task>.failed` (next to `counts.<task>.scored`, the number of items the score averages).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longcurate.core.jsonl import Rejects, ResumableWriter, read_jsonl, read_valid_prefix, write_json
from longcurate.core.records import RecordError
from longcurate.eval import metrics
from longcurate.eval.longbench_defaults import DEFAULT_MAXLEN, DEFAULT_PROMPTS, PROMPT_VERSION, RAW_PROMPT_TASKS

log = logging.getLogger("longcurate.eval.longbench")

RESULT_NAME = "result.json"
REJECTED_NAME = "result.rejected.jsonl"
FAILURE_POLICY = "failed items are excluded from their task's mean; counts.<task>.failed says how many"
CHUNK_SIZE = 16  # requests per generate() call: predictions are saved (and resumable) after each chunk


# --- records ---------------------------------------------------------------------------------

@dataclass
class LongBenchItem:
    """One data line of a LongBench task."""

    id: str
    task: str
    input: str
    context: str
    answers: list[str]
    length: int | None = None
    all_classes: list[str] | None = None


@dataclass
class Failure:
    """An item that could not be scored, and why (file and line point at the offending input)."""

    task: str
    reason: str
    file: str | None = None
    line: int | None = None
    field: str | None = None
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "_id": self.id, "reason": self.reason}

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else (self.file or self.task)
        what = f" field '{self.field}'" if self.field else ""
        ident = f" (_id {self.id})" if self.id else ""
        return f"{where}:{what}{ident} {self.reason}"


def _str_list(obj: dict[str, Any], key: str, *, required: bool) -> list[str] | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise RecordError(key, "missing" if key not in obj else "is null")
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordError(key, f"must be a list of strings, got {type(value).__name__}")
    return value


def _check_common(obj: dict[str, Any], task: str, need_length: bool) -> tuple[list[str], int | None, list[str] | None]:
    """The fields data lines and prediction lines share: answers, length, all_classes."""
    answers = _str_list(obj, "answers", required=True)
    if not answers:
        raise RecordError("answers", "is empty")
    length = obj.get("length")
    if length is None:
        if need_length:
            raise RecordError("length", "missing (LongBench-E buckets need it)")
    elif isinstance(length, bool) or not isinstance(length, int):
        raise RecordError("length", f"must be an integer, got {length!r}")
    all_classes = _str_list(obj, "all_classes", required=metrics.TASK_METRIC[task] is metrics.CLASSIFICATION)
    return answers, length, all_classes


def parse_item(obj: dict[str, Any], task: str, *, need_length: bool = False, default_id: str = "") -> LongBenchItem:
    """Validate one data line; raises RecordError(field, reason)."""
    for key in ("input", "context"):
        if key not in obj:
            raise RecordError(key, "missing")
        if not isinstance(obj[key], str):
            raise RecordError(key, f"must be a string, got {type(obj[key]).__name__}")
    answers, length, all_classes = _check_common(obj, task, need_length)
    rid = obj.get("_id", default_id)
    if not isinstance(rid, (str, int)) or isinstance(rid, bool) or rid == "":
        raise RecordError("_id", f"must be a non-empty string, got {rid!r}")
    return LongBenchItem(id=str(rid), task=task, input=obj["input"], context=obj["context"], answers=answers,
                         length=length, all_classes=all_classes)


# --- reading data ----------------------------------------------------------------------------

class _FailureSink:
    """Collects `read_jsonl`'s bad lines (the `Rejects.add` interface) as Failures of one task."""

    def __init__(self, task: str, failures: list[Failure]):
        self.task = task
        self.failures = failures

    def add(self, reason: str, *, file: str | None = None, line: int | None = None, field_name: str | None = None,
            record_id: str | None = None, raw: Any = None) -> None:
        self.failures.append(Failure(self.task, reason, file, line, field_name, record_id))


def data_file(data_dir: str | os.PathLike, task: str, e: bool) -> Path:
    return Path(data_dir) / (f"{task}_e.jsonl" if e else f"{task}.jsonl")


def discover_tasks(data_dir: str | os.PathLike, e: bool) -> list[str]:
    """Known tasks that have a data file in `data_dir`, in LongBench's task order."""
    return [t for t in metrics.TASKS if data_file(data_dir, t, e).exists()]


def read_items(rows: Iterable[tuple[int, dict[str, Any]]], task: str, source: str, failures: list[Failure], *,
               e: bool = False, limit: int | None = None) -> list[LongBenchItem]:
    """Validate data rows; bad ones (and duplicate `_id`s) become Failures; keeps the first `limit` good ones."""
    items: list[LongBenchItem] = []
    seen: set[str] = set()
    for lineno, obj in rows:
        if limit is not None and len(items) >= limit:
            break
        try:
            item = parse_item(obj, task, need_length=e, default_id=f"{task}-{lineno}")
        except RecordError as err:
            rid = obj.get("_id")
            failures.append(Failure(task, f"bad data line: {err.reason}", source, lineno, err.field,
                                    str(rid) if rid is not None else None))
            continue
        if item.id in seen:
            failures.append(Failure(task, "bad data line: duplicate _id", source, lineno, "_id", item.id))
            continue
        seen.add(item.id)
        items.append(item)
    return items


def load_local(data_dir: str | os.PathLike, tasks: list[str], e: bool, failures: list[Failure],
               limit: int | None = None) -> dict[str, list[LongBenchItem]]:
    out: dict[str, list[LongBenchItem]] = {}
    for task in tasks:
        path = data_file(data_dir, task, e)
        if not path.exists():
            raise FileNotFoundError(f"LongBench data file not found: {path}")
        rows = read_jsonl(path, _FailureSink(task, failures))  # type: ignore[arg-type]
        out[task] = read_items(rows, task, str(path), failures, e=e, limit=limit)
    return out


def _hf_rows(hf_dataset: str, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of one LongBench config from the hub: `datasets.load_dataset`, or else the repository's
    `data.zip` (LongBench ships a loading script, which recent `datasets` no longer runs)."""
    import datasets

    try:
        ds = datasets.load_dataset(hf_dataset, name, split="test")
    except Exception as first:  # noqa: BLE001 - fall back to the raw files, and say why if that fails too
        import zipfile

        from huggingface_hub import hf_hub_download

        from longcurate.core.models import cache_dir

        log.info("load_dataset(%s, %s) failed (%s); reading the repository's data.zip", hf_dataset, name, first)
        target = cache_dir() / "longbench" / hf_dataset.replace("/", "--")
        path = next(iter(target.rglob(f"{name}.jsonl")), None) if target.exists() else None
        if path is None:
            archive = hf_hub_download(hf_dataset, "data.zip", repo_type="dataset")
            with zipfile.ZipFile(archive) as z:
                z.extractall(target)
            path = next(iter(target.rglob(f"{name}.jsonl")), None)
        if path is None:
            raise FileNotFoundError(f"{hf_dataset}: no {name}.jsonl in the dataset's data.zip") from first
        yield from read_jsonl(path)
        return
    for i, row in enumerate(ds, start=1):
        yield i, dict(row)


def load_data(lb_cfg, allow_download: bool, failures: list[Failure],
              limit: int | None = None) -> dict[str, list[LongBenchItem]]:
    """Data for the configured tasks: a local folder, else (only when downloads are allowed) the hub."""
    tasks = list(lb_cfg.tasks)
    for t in tasks:
        metrics.metric_for(t)  # unknown task names fail early, with the list of known ones
    if lb_cfg.data_dir:
        tasks = tasks or discover_tasks(lb_cfg.data_dir, lb_cfg.e)
        if not tasks:
            raise FileNotFoundError(f"no LongBench task files ({'<task>_e' if lb_cfg.e else '<task>'}.jsonl) "
                                    f"in {lb_cfg.data_dir}")
        return load_local(lb_cfg.data_dir, tasks, lb_cfg.e, failures, limit)
    if not allow_download:
        raise FileNotFoundError("LongBench needs eval.longbench.data_dir (a folder of <task>.jsonl files), "
                                "or allow_download=true to read the hub dataset")
    tasks = tasks or list(metrics.E_TASKS if lb_cfg.e else metrics.TASKS)
    out = {}
    for task in tasks:
        name = f"{task}_e" if lb_cfg.e else task
        out[task] = read_items(_hf_rows(lb_cfg.hf_dataset, name), task, f"hf:{lb_cfg.hf_dataset}/{name}",
                               failures, e=lb_cfg.e, limit=limit)
    return out


# --- prompts ---------------------------------------------------------------------------------

def _load_json_map(path: str | os.PathLike, what: str, value_type: type) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: must be a JSON object {{task: {value_type.__name__}}}")
    for task, value in data.items():
        if not isinstance(value, value_type) or isinstance(value, bool):
            raise ValueError(f"{path}: task {task!r}: {what} must be a {value_type.__name__}, got {value!r}")
    return data


def load_prompts(prompt_file: str | None = None) -> dict[str, str]:
    """Our templates, overridden task by task by a LongBench `dataset2prompt.json`-style file."""
    prompts = dict(DEFAULT_PROMPTS)
    if prompt_file:
        given = _load_json_map(prompt_file, "prompt template", str)
        for task, template in given.items():
            try:
                template.format(context="", input="")
            except (KeyError, IndexError, ValueError) as e:
                raise ValueError(f"{prompt_file}: task {task!r}: the template may use only {{context}} and "
                                 f"{{input}} (write literal braces as {{{{ }}}}): {type(e).__name__}: {e}") from None
        prompts.update(given)
    return prompts


def load_maxlens(maxlen_file: str | None = None) -> dict[str, int]:
    """Our generation lengths, overridden task by task by a `dataset2maxlen.json`-style file."""
    maxlens = dict(DEFAULT_MAXLEN)
    if maxlen_file:
        given = _load_json_map(maxlen_file, "max new tokens", int)
        bad = {k: v for k, v in given.items() if v < 1}
        if bad:
            raise ValueError(f"{maxlen_file}: max new tokens must be >= 1: {bad}")
        maxlens.update(given)
    return maxlens


def build_prompt(template: str, item: LongBenchItem) -> str:
    return template.format(context=item.context, input=item.input)


def _middle(ids: list[int], tokenizer: Any, max_tokens: int) -> str:
    """The first and the last `max_tokens // 2` tokens of `ids`, decoded and joined."""
    half = max(0, max_tokens // 2)
    head = tokenizer.decode(ids[:half], skip_special_tokens=True)
    tail = tokenizer.decode(ids[len(ids) - half:], skip_special_tokens=True) if half else ""
    return head + tail


def truncate_middle(text: str, tokenizer: Any, max_tokens: int) -> tuple[str, bool]:
    """LongBench's truncation: when `text` has more than `max_tokens` tokens, keep the first and the last
    `max_tokens // 2` tokens (decoded back to text). Returns (text, truncated)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return text, False
    return _middle(ids, tokenizer, max_tokens), True


def _rendered_ids(text: str, tokenizer: Any, template: str) -> list[int]:
    """The token ids the generator will see for `text` under `template` (chat turn, FILM or raw)."""
    from longcurate.eval.generate import render_prompt

    rendered, special = render_prompt(text, tokenizer, template)
    return tokenizer(rendered, add_special_tokens=special)["input_ids"]


def fit_prompt(text: str, tokenizer: Any, *, max_input_tokens: int | None, max_context: int,
               max_new_tokens: int, template: str) -> tuple[str, bool]:
    """Truncate `text` in the middle so that the model can take it. Returns (text, truncated).

    With `max_input_tokens` set, that is the limit for the prompt text (LongBench's `max_length`).
    Otherwise the limit is what the context leaves after the generation budget *and* the template's own
    tokens: start from the budget and shrink by the measured overflow until the rendered prompt fits.
    The long text is tokenized once; each try renders only the (short) candidate.
    """
    text, truncated, _ = _fit(text, tokenizer, max_input_tokens=max_input_tokens, max_context=max_context,
                              max_new_tokens=max_new_tokens, template=template)
    return text, truncated


def _fit(text: str, tokenizer: Any, *, max_input_tokens: int | None, max_context: int, max_new_tokens: int,
         template: str) -> tuple[str, bool, list[int] | None]:
    """`fit_prompt`, plus the rendered prompt's ids when it measured them (None with `max_input_tokens`),
    so the backend need not render and tokenize the prompt again."""
    if max_input_tokens is not None:
        return (*truncate_middle(text, tokenizer, max_input_tokens), None)
    budget = max_context - max_new_tokens
    if budget < 2:
        raise ValueError(f"context limit {max_context} leaves no room for a prompt after {max_new_tokens} new tokens")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    limit = budget
    for _ in range(8):
        candidate = text if len(ids) <= limit else _middle(ids, tokenizer, limit)
        rendered = _rendered_ids(candidate, tokenizer, template)
        over = len(rendered) - budget
        if over <= 0:
            return candidate, len(ids) > limit, rendered
        limit = min(limit, len(ids)) - over
        if limit < 2:
            break
    raise ValueError(f"cannot fit the prompt into {budget} tokens with template {template!r}")


# --- prediction ------------------------------------------------------------------------------

def pred_dir_for(output_dir: str | os.PathLike, e: bool) -> Path:
    return Path(output_dir) / ("pred_e" if e else "pred")


def prediction_line(item: LongBenchItem, pred: str) -> dict[str, Any]:
    """LongBench's prediction format plus `_id` (which makes the file resumable)."""
    return {"pred": pred, "answers": item.answers, "all_classes": item.all_classes, "length": item.length,
            "_id": item.id}


def _predicted_ids(path: Path) -> set[str]:
    """`_id`s already in a prediction file (a torn last line is left out, as ResumableWriter drops it);
    a file without them (e.g. LongBench's own) cannot be resumed."""
    records, _ = read_valid_prefix(path)
    for lineno, obj in enumerate(records, start=1):
        if not isinstance(obj, dict) or "_id" not in obj:
            raise ValueError(f"{path}:{lineno}: field '_id' missing; cannot resume into this prediction file "
                             "(score it with --score-only, or move it away to predict again)")
    return {str(obj["_id"]) for obj in records}


def predict(data: dict[str, list[LongBenchItem]], pred_dir: str | os.PathLike,
            get_generator: Callable[[], Any], *, prompts: dict[str, str], maxlens: dict[str, int],
            max_input_tokens: int | None = None, chunk_size: int = CHUNK_SIZE,
            progress: bool = True) -> tuple[dict[tuple[str, str], str], dict[str, int]]:
    """Generate the missing predictions of every task into `<pred_dir>/<task>.jsonl`.

    Resumable: `_id`s already in a file are skipped, and results are appended (fsync) after each chunk.
    The generator is created only when something is left to predict. Returns ({(task, _id): error} for
    failed generations — they are not written, so a re-run retries them — and counts).
    """
    from tqdm.auto import tqdm

    pred_dir = Path(pred_dir)
    pending: dict[str, list[LongBenchItem]] = {}
    for task, items in data.items():
        done = _predicted_ids(pred_dir / f"{task}.jsonl")
        todo = [it for it in items if it.id not in done]
        if todo:
            pending[task] = todo
    stats = {"predicted": 0, "skipped": sum(len(v) for v in data.values()) - sum(len(v) for v in pending.values()),
             "truncated": 0, "errors": 0}
    errors: dict[tuple[str, str], str] = {}
    if not pending:
        return errors, stats
    generator = get_generator()
    tokenizer = getattr(generator, "tokenizer", None)
    if tokenizer is None:
        log.warning("the generation backend has no tokenizer: prompts are sent without middle truncation")
    from longcurate.eval.generate import GenRequest

    for task, items in pending.items():
        # continuation tasks (few-shot, code) are sent as raw text; the rest as the backend renders them
        template = "raw" if task in RAW_PROMPT_TASKS else (getattr(generator, "template", None) or "chat")
        max_new = maxlens[task]
        bar = tqdm(total=len(items), desc=f"longbench {task}", unit="item", disable=not progress)
        with ResumableWriter(pred_dir / f"{task}.jsonl", key="_id") as writer:
            for start in range(0, len(items), chunk_size):
                chunk = items[start:start + chunk_size]
                requests, kept = [], []
                for item in chunk:
                    ids = None
                    try:
                        text = build_prompt(prompts[task], item)
                        if tokenizer is not None:
                            text, cut, ids = _fit(text, tokenizer, max_input_tokens=max_input_tokens,
                                                  max_context=int(generator.max_context),
                                                  max_new_tokens=max_new, template=template)
                            stats["truncated"] += int(cut)
                    except (ValueError, KeyError, IndexError) as e:
                        errors[(task, item.id)] = f"prompt failed: {type(e).__name__}: {e}"
                        continue
                    requests.append(GenRequest(id=item.id, prompt=text, max_new_tokens=max_new, template=template,
                                               ids=ids))
                    kept.append(item)
                results = generator.generate(requests) if requests else []
                if len(results) != len(requests):
                    raise RuntimeError(f"generator returned {len(results)} results for {len(requests)} requests")
                for item, res in zip(kept, results):
                    if res.id != item.id:
                        raise RuntimeError(f"generator returned result {res.id!r} in the place of {item.id!r}")
                    if res.error is not None:
                        errors[(task, item.id)] = f"generation error: {res.error}"
                        continue
                    writer.write(prediction_line(item, res.text))
                    stats["predicted"] += 1
                bar.update(len(chunk))
        bar.close()
    stats["errors"] = len(errors)
    return errors, stats


# --- scoring ---------------------------------------------------------------------------------

@dataclass
class TaskResult:
    task: str
    scores: list[float]
    lengths: list[int | None]
    failures: list[Failure]
    extra: int = 0  # prediction lines for items outside the given data (ignored)

    def score(self) -> float | None:
        return metrics.task_score(self.scores)

    def buckets(self) -> dict[str, float | None]:
        return metrics.bucket_scores(self.scores, [int(n) for n in self.lengths])


def _parse_prediction(obj: dict[str, Any], task: str, e: bool) -> tuple[str, list[str], int | None, list[str] | None]:
    if "pred" not in obj:
        raise RecordError("pred", "missing (no prediction)")
    if not isinstance(obj["pred"], str):
        raise RecordError("pred", f"must be a string, got {type(obj['pred']).__name__}")
    answers, length, all_classes = _check_common(obj, task, need_length=e)
    return obj["pred"], answers, length, all_classes


def score_task(task: str, pred_path: str | os.PathLike, *, e: bool = False,
               items: list[LongBenchItem] | None = None,
               known_errors: dict[tuple[str, str], str] | None = None) -> TaskResult:
    """Score one prediction file. With the task's data (`items`), every data item must have a prediction
    (matched by `_id`, or by line when the file has no `_id`s); the missing ones are failures."""
    pred_path = Path(pred_path)
    failures: list[Failure] = []
    known_errors = known_errors or {}
    rows: list[tuple[int, dict[str, Any]]] = []
    if pred_path.exists():
        rows = list(read_jsonl(pred_path, _FailureSink(task, failures)))  # type: ignore[arg-type]
    elif items is None:
        raise FileNotFoundError(f"prediction file not found: {pred_path}")

    if items is not None:
        rows, missing, extra = _align(rows, items, pred_path)
        for item, reason in missing:
            reason = known_errors.get((task, item.id), reason)
            failures.append(Failure(task, reason, str(pred_path), None, "pred", item.id))
    else:
        extra = 0
    result = TaskResult(task, [], [], failures, extra)
    seen: set[str] = set()
    for lineno, obj in rows:
        rid = obj.get("_id")
        rid = str(rid) if rid is not None else None
        if rid is not None:
            if rid in seen:
                failures.append(Failure(task, "duplicate _id (only the first is scored)", str(pred_path), lineno,
                                        "_id", rid))
                continue
            seen.add(rid)
        try:
            pred, answers, length, all_classes = _parse_prediction(obj, task, e)
            value = metrics.score_record(task, pred, answers, all_classes)
        except RecordError as err:
            failures.append(Failure(task, err.reason, str(pred_path), lineno, err.field, rid))
            continue
        except ValueError as err:  # e.g. a retrieval answer without a paragraph number
            failures.append(Failure(task, str(err), str(pred_path), lineno, "answers", rid))
            continue
        result.scores.append(value)
        result.lengths.append(length)
    failures.sort(key=lambda f: (f.line is None, f.line or 0, f.id or ""))
    return result


def _align(rows: list[tuple[int, dict[str, Any]]], items: list[LongBenchItem], path: Path):
    """Match prediction lines to data items: by `_id` when the lines carry one, else by position."""
    if rows and all("_id" in obj for _, obj in rows):
        wanted = {it.id for it in items}
        have = {str(obj["_id"]) for _, obj in rows}
        kept = [(n, obj) for n, obj in rows if str(obj["_id"]) in wanted]
        missing = [(it, "no prediction for this _id") for it in items if it.id not in have]
        return kept, missing, len(rows) - len(kept)
    missing = [(it, f"no prediction: {path.name} has {len(rows)} lines for {len(items)} data items")
               for it in items[len(rows):]]
    return rows[:len(items)], missing, max(0, len(rows) - len(items))


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(sum(vals) / len(vals), 2) if vals else None


def build_result(results: list[TaskResult], e: bool) -> dict[str, Any]:
    """result.json: scores per task (buckets with -E), averages over tasks, counts and failures."""
    out: dict[str, Any] = {"benchmark": "LongBench-E" if e else "LongBench"}
    if e:
        scores = {r.task: r.buckets() for r in results}
        out["scores"] = scores
        out["average"] = {b: _mean(s[b] for s in scores.values()) for b in metrics.BUCKETS}
    else:
        task_scores = {r.task: r.score() for r in results}
        out["scores"] = task_scores
        out["average"] = _mean(task_scores.values())
        categories: dict[str, list[float | None]] = {}
        for task, s in task_scores.items():
            categories.setdefault(metrics.CATEGORY[task], []).append(s)
        out["categories"] = {c: _mean(v) for c, v in categories.items()}
    counts = {}
    for r in results:
        counts[r.task] = {"scored": len(r.scores), "failed": len(r.failures)}
        if r.extra:  # prediction lines for items outside the data: not scored
            counts[r.task]["extra"] = r.extra
    out["counts"] = counts
    out["num_failures"] = sum(len(r.failures) for r in results)
    out["failures"] = {r.task: [f.to_dict() for f in r.failures] for r in results if r.failures}
    out["failure_policy"] = FAILURE_POLICY
    return out


def score_dir(pred_dir: str | os.PathLike, *, tasks: list[str] | None = None, e: bool = False,
              data: dict[str, list[LongBenchItem]] | None = None,
              known_errors: dict[tuple[str, str], str] | None = None,
              extra_failures: list[Failure] | None = None) -> tuple[dict[str, Any], list[Failure]]:
    """Score `<pred_dir>/<task>.jsonl` for `tasks` (default: every known task with a file there, or the
    tasks of `data`). Returns (result dict, every failure)."""
    pred_dir = Path(pred_dir)
    if tasks is None:
        tasks = list(data) if data is not None else [t for t in metrics.TASKS if (pred_dir / f"{t}.jsonl").exists()]
    if not tasks:
        raise FileNotFoundError(f"no prediction files <task>.jsonl for a known LongBench task in {pred_dir}")
    for t in tasks:
        metrics.metric_for(t)
    results = []
    for task in tasks:
        items = data.get(task, []) if data is not None else None
        results.append(score_task(task, pred_dir / f"{task}.jsonl", e=e, items=items, known_errors=known_errors))
    for f in extra_failures or []:  # bad data lines: failures of their task too
        for r in results:
            if r.task == f.task:
                r.failures.insert(0, f)
    result = build_result(results, e)
    return result, [f for r in results for f in r.failures]


def write_result(out_dir: str | os.PathLike, result: dict[str, Any], failures: list[Failure]) -> Path:
    """`result.json` (atomic) and `result.rejected.jsonl` (every failure; removed when there is none)."""
    out_dir = Path(out_dir)
    path = out_dir / RESULT_NAME
    rejected = out_dir / REJECTED_NAME
    with contextlib.suppress(FileNotFoundError):
        rejected.unlink()
    with Rejects(rejected) as rejects:
        for f in failures:
            rejects.add(f"{f.task}: {f.reason}", file=f.file, line=f.line, field_name=f.field, record_id=f.id)
    write_json(path, result)
    return path


# --- entry points ----------------------------------------------------------------------------

def score_only(pred_dir: str | os.PathLike, *, output_dir: str | os.PathLike | None = None,
               tasks: list[str] | None = None, e: bool = False, data_dir: str | None = None,
               limit: int | None = None) -> dict[str, Any]:
    """Score existing LongBench-format predictions; with `data_dir` (its first `limit` items per task),
    also check that no prediction is missing."""
    data = None
    data_failures: list[Failure] = []
    if data_dir:
        tasks = tasks or [t for t in metrics.TASKS if (Path(pred_dir) / f"{t}.jsonl").exists()]
        data = load_local(data_dir, tasks, e, data_failures, limit)
    result, failures = score_dir(pred_dir, tasks=tasks or None, e=e, data=data, extra_failures=data_failures)
    result["pred_dir"] = str(pred_dir)
    path = write_result(output_dir or pred_dir, result, failures)
    result["_path"] = str(path)
    return result


def run_longbench(cfg, *, model: str | None = None, generator: Any = None,
                  output_dir: str | os.PathLike | None = None, progress: bool = True) -> dict[str, Any]:
    """Predict (resumable) and score LongBench for `model` (default: the run's model).

    `generator` (a `longcurate.eval.generate.Generator`) is built with `make_generator` when not given,
    and only when a prediction is missing, so a finished run redoes nothing.
    """
    lb = cfg.eval.longbench
    out = Path(output_dir) if output_dir else cfg.path(lb.output_dir, "eval/longbench")
    limit = lb.limit if lb.limit is not None else cfg.eval.limit
    data_failures: list[Failure] = []
    data = load_data(lb, cfg.allow_download, data_failures, limit=limit)
    prompts, maxlens = load_prompts(lb.prompt_file), load_maxlens(lb.maxlen_file)
    for task in data:
        if task not in prompts or task not in maxlens:
            raise ValueError(f"task {task!r} has no prompt template or max new tokens")

    def get_generator():
        if generator is not None:
            return generator
        from longcurate.eval.generate import make_generator

        return make_generator(cfg, model)

    pred_dir = pred_dir_for(out, lb.e)
    errors, stats = predict(data, pred_dir, get_generator, prompts=prompts, maxlens=maxlens,
                            max_input_tokens=lb.max_input_tokens, progress=progress)
    result, failures = score_dir(pred_dir, e=lb.e, data=data, known_errors=errors, extra_failures=data_failures)
    result["model"] = model or cfg.model
    result["prompt_version"] = PROMPT_VERSION if not lb.prompt_file else f"file:{lb.prompt_file}"
    result["max_input_tokens"] = lb.max_input_tokens
    path = write_result(pred_dir, result, failures)
    result["_path"] = str(path)
    result["_stats"] = stats
    return result


def format_result(result: dict[str, Any], max_failures: int = 20) -> str:
    """A plain-text table of the scores and the failures, for the terminal."""
    lines = []
    e = result["benchmark"] == "LongBench-E"
    header = ["task", *metrics.BUCKETS] if e else ["task", "score"]
    header += ["scored", "failed"]
    rows = []
    for task, s in result["scores"].items():
        c = result["counts"][task]
        vals = [s[b] for b in metrics.BUCKETS] if e else [s]
        rows.append([task, *("-" if v is None else f"{v:.2f}" for v in vals), str(c["scored"]), str(c["failed"])])
    avg = result["average"]
    avg_vals = [avg[b] for b in metrics.BUCKETS] if e else [avg]
    rows.append(["average", *("-" if v is None else f"{v:.2f}" for v in avg_vals), "", ""])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        lines.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))))
    n = result["num_failures"]
    lines.append(f"failures: {n} (excluded from the scores)")
    shown = 0
    for task, fs in result.get("failures", {}).items():
        for f in fs:
            if shown >= max_failures:
                break
            fail = Failure(task, f["reason"], f["file"], f["line"], f["field"], f["_id"])
            lines.append(f"  {task}: {fail}")
            shown += 1
    if n > shown:
        lines.append(f"  ... {n - shown} more in {REJECTED_NAME}")
    return "\n".join(lines)


__all__ = ["LongBenchItem", "Failure", "TaskResult", "parse_item", "read_items", "load_local", "load_data",
           "discover_tasks", "load_prompts", "load_maxlens", "build_prompt", "truncate_middle", "fit_prompt",
           "predict", "prediction_line", "pred_dir_for", "score_task", "score_dir",
           "build_result", "write_result", "score_only", "run_longbench", "format_result"]
