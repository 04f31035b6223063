"""Run probe / needle items through a Generator: resumable predictions, per-item scores, results.

Predictions are appended (with fsync) as each chunk of requests finishes, keyed by item id, so a
killed run resumes where it stopped and a finished run redoes nothing. A generation error fails its
own item only: it is counted and listed in the results (and retried on the next run), the rest are
scored.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Callable

from longcurate.core.jsonl import (ResumableWriter, Rejects, dumps, read_records, read_valid_prefix, rejected_path,
                                   write_json, write_jsonl)
from longcurate.core.prompts import user_prompt
from longcurate.eval.generate import GenRequest, Generator
from longcurate.eval.scoring import aggregate_needle, aggregate_probes, needle_recall, score_probe

log = logging.getLogger("longcurate.eval")


def request_hash(prompt: str, max_new_tokens: int, settings: dict[str, Any] | None) -> str:
    """What a prediction depends on: the prompt, the budget and the model / backend settings."""
    blob = dumps({"prompt": prompt, "max_new_tokens": max_new_tokens, "settings": settings or {}})
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def _drop_stale(predictions: Path, current: dict[str, str]) -> list[dict[str, Any]]:
    """Keep only the predictions made for the current prompt and settings (a rebuilt probe file or a
    changed template reuses ids); rewrites the file atomically when something is dropped. Returns the
    kept ones: what ResumableWriter then finds in the file (a torn last line is left out by both)."""
    records, _ = read_valid_prefix(predictions)
    keep = [obj for obj in records if current.get(str(obj.get("id"))) == obj.get("request_hash")]
    if len(keep) < len(records):
        log.warning("%s: %d prediction(s) made for other prompts or settings are redone", predictions,
                    len(records) - len(keep))
        write_jsonl(predictions, keep)
    return keep


def predict(generator: Generator, items: list[dict[str, Any]], *, prompt: Callable[[dict[str, Any]], str],
            score: Callable[[dict[str, Any], str], float], keep: tuple[str, ...], predictions: Path,
            max_new_tokens: int, settings: dict[str, Any] | None = None,
            chunk: int = 8) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Generate for the items not yet in `predictions`, append them with their score; return every
    prediction of `items` (in item order) and this run's failures [{id, error}]."""
    failures: list[dict[str, str]] = []
    prompts = {it["id"]: prompt(it) for it in items}
    hashes = {i: request_hash(p, max_new_tokens, settings) for i, p in prompts.items()}
    by_id = {obj["id"]: obj for obj in _drop_stale(predictions, hashes)}  # + this run's: no re-read
    with ResumableWriter(predictions) as out:
        todo = [it for it in items if it["id"] not in out]
        if len(todo) < len(items):
            log.info("%s: %d of %d items already predicted", predictions, len(items) - len(todo), len(items))
        for start in range(0, len(todo), chunk):
            part = todo[start:start + chunk]
            requests = [GenRequest(it["id"], prompts[it["id"]], max_new_tokens) for it in part]
            results = generator.generate(requests)
            if [r.id for r in results] != [r.id for r in requests]:
                raise RuntimeError("generator returned results out of order")
            for it, res in zip(part, results):
                if res.error is not None:
                    failures.append({"id": it["id"], "error": res.error})
                    continue
                rec = {k: it[k] for k in keep if k in it}
                rec["pred"] = res.text
                rec["score"] = score(it, res.text)
                rec["request_hash"] = hashes[it["id"]]
                if out.write(rec):
                    by_id[it["id"]] = rec
    return [by_id[it["id"]] for it in items if it["id"] in by_id], failures


def load_items(path: str | Path, parse: Callable[[dict[str, Any]], Any] | None = None,
               limit: int | None = None, rejects_path: str | Path | None = None) -> tuple[list[dict[str, Any]], Rejects]:
    """Read an items file; malformed lines (bad JSON, or `parse` raising) are quarantined in
    `rejects_path` (default `<file>.read.rejected.jsonl`) with file, line and field, and the rest go on.
    Items are the raw objects: `parse` only validates."""
    def check(obj: dict[str, Any]) -> dict[str, Any]:
        if parse is not None:
            parse(obj)
        return obj

    path = Path(path)
    rejects = Rejects(Path(rejects_path) if rejects_path else rejected_path(path.with_name(path.stem + ".read.jsonl")))
    items = []
    for _, obj in read_records(path, check, rejects):
        items.append(obj)
        if limit is not None and len(items) >= limit:
            break  # lines after the limit are not read (nor quarantined)
    rejects.close()
    if rejects.total:
        log.warning("%s: %s", path, rejects.summary())
    return items, rejects


def check_needle(obj: dict[str, Any]) -> None:
    from longcurate.core.records import RecordError

    for f in ("id", "length", "depth", "context", "question", "key_words"):
        if f not in obj:
            raise RecordError(f, "missing field")
    if not isinstance(obj["key_words"], list) or not obj["key_words"]:
        raise RecordError("key_words", "must be a non-empty list")


def _finish(kind: str, out_dir: Path, model: str, scored: list[dict[str, Any]], failures: list[dict[str, str]],
            n_items: int, summary: dict[str, Any], meta: dict[str, Any] | None) -> dict[str, Any]:
    results = {"kind": kind, "model": model, **(meta or {}), "n_items": n_items, "n_scored": len(scored),
               "n_failed": len(failures), "failures": failures, **summary}
    write_json(out_dir / "results.json", results)
    if failures:
        log.warning("%s on %s: %d of %d items failed (listed in %s)", kind, model, len(failures), n_items,
                    out_dir / "results.json")
    return results


def _settings(model: str, meta: dict[str, Any] | None) -> dict[str, Any]:
    return {"model": model, **((meta or {}).get("generation") or {})}


def run_probes(generator: Generator, items: list[dict[str, Any]], out_dir: str | Path, *, model: str,
               span: int, max_new_tokens: int, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Predict, score and aggregate probe items into `out_dir/{predictions.jsonl,results.json}`."""
    out_dir = Path(out_dir)
    scored, failures = predict(
        generator, items, prompt=lambda it: user_prompt(it["context"], it["instruction"]), score=score_probe,
        keep=("id", "task", "set_id", "position_id", "key_token_fraction"),
        predictions=out_dir / "predictions.jsonl", max_new_tokens=max_new_tokens, settings=_settings(model, meta))
    return _finish("probes", out_dir, model, scored, failures, len(items), aggregate_probes(scored, span), meta)


def run_needle(generator: Generator, items: list[dict[str, Any]], out_dir: str | Path, *, model: str,
               max_new_tokens: int, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    out_dir = Path(out_dir)
    scored, failures = predict(
        generator, items, prompt=lambda it: user_prompt(it["context"], it["question"]),
        score=lambda it, pred: needle_recall(pred, it["key_words"]), keep=("id", "length", "depth"),
        predictions=out_dir / "predictions.jsonl", max_new_tokens=max_new_tokens, settings=_settings(model, meta))
    return _finish("needle", out_dir, model, scored, failures, len(items), aggregate_needle(scored), meta)
