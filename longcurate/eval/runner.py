"""Run probe / needle items through a Generator (the shared loop of `predict.py`): per-item scores
and results. A generation error fails its own item only: it is counted and listed in the results (and
retried on the next run), the rest are scored.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from longcurate.core.jsonl import Rejects, rejected_path, write_json
from longcurate.core.reader import read_parsed
from longcurate.core.prompts import user_prompt
from longcurate.core.records import RecordError
from longcurate.eval.generate import GenRequest, Generator
from longcurate.eval.labels import model_identity
from longcurate.eval.predict import Failed, predict
from longcurate.eval.scoring import aggregate_needle, aggregate_probes, needle_recall, score_probe

log = logging.getLogger("longcurate.eval")


def load_items(path: str | Path, parse: Callable[[dict[str, Any]], Any] | None = None,
               limit: int | None = None, rejects_path: str | Path | None = None) -> tuple[list[dict[str, Any]], Rejects]:
    """Read an items file (any record file `core.reader.read_rows` reads: JSONL, JSON, Parquet, a
    datasets folder); malformed records (bad JSON, or `parse` raising) are quarantined in `rejects_path`
    (default `<file>.read.rejected.jsonl`) with file, line and field, and the rest go on. Items are the
    raw objects: `parse` only validates."""
    path = Path(path)
    rejects = Rejects(Path(rejects_path) if rejects_path else rejected_path(path.with_name(path.stem + ".read.jsonl")))
    items = []
    for row, _ in read_parsed(path, parse or (lambda obj: obj), rejects):
        items.append(row.record)
        if limit is not None and len(items) >= limit:
            break  # lines after the limit are not read (nor quarantined)
    rejects.close()
    if rejects.total:
        log.warning("%s: %s", path, rejects.summary())
    return items, rejects


def check_needle(obj: dict[str, Any]) -> None:
    for f in ("id", "length", "depth", "context", "question", "key_words"):
        if f not in obj:
            raise RecordError(f, "missing field")
    if not isinstance(obj["key_words"], list) or not obj["key_words"]:
        raise RecordError("key_words", "must be a non-empty list")


def _finish(kind: str, out_dir: Path, model: str, scored: list[dict[str, Any]], failures: list[Failed],
            n_items: int, summary: dict[str, Any], meta: dict[str, Any] | None) -> dict[str, Any]:
    results = {"kind": kind, "model": model, **(meta or {}), "n_items": n_items, "n_scored": len(scored),
               "n_failed": len(failures), "failures": [f.to_dict() for f in failures], **summary}
    write_json(out_dir / "results.json", results)
    if failures:
        log.warning("%s on %s: %d of %d items failed (listed in %s)", kind, model, len(failures), n_items,
                    out_dir / "results.json")
    return results


def _settings(model: str, meta: dict[str, Any] | None) -> dict[str, Any]:
    return {**model_identity(model), **((meta or {}).get("generation") or {})}


def _scored(fields: tuple[str, ...], score: Callable[[dict[str, Any], str], float]) -> Callable[[dict[str, Any], str], dict[str, Any]]:
    """A prediction line: the item's `fields`, the prediction and its score."""
    def record(item: dict[str, Any], pred: str) -> dict[str, Any]:
        return {**{k: item[k] for k in fields if k in item}, "pred": pred, "score": score(item, pred)}
    return record


def run_probes(generator: Generator, items: list[dict[str, Any]], out_dir: str | Path, *, model: str,
               span: int, max_new_tokens: int, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Predict, score and aggregate probe items into `out_dir/{predictions.jsonl,results.json}`."""
    out_dir = Path(out_dir)
    done = predict(
        generator, items, out_dir / "predictions.jsonl",
        request=lambda it: GenRequest(it["id"], user_prompt(it["context"], it["instruction"]), max_new_tokens),
        record=_scored(("id", "task", "set_id", "position_id", "key_token_fraction"), score_probe),
        settings=_settings(model, meta))
    return _finish("probes", out_dir, model, done.records, done.failures, len(items),
                   aggregate_probes(done.records, span), meta)


def run_needle(generator: Generator, items: list[dict[str, Any]], out_dir: str | Path, *, model: str,
               max_new_tokens: int, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Predict, score and aggregate needle items into `out_dir/{predictions.jsonl,results.json}`."""
    out_dir = Path(out_dir)
    done = predict(
        generator, items, out_dir / "predictions.jsonl",
        request=lambda it: GenRequest(it["id"], user_prompt(it["context"], it["question"]), max_new_tokens),
        record=_scored(("id", "length", "depth"), lambda it, pred: needle_recall(pred, it["key_words"])),
        settings=_settings(model, meta))
    return _finish("needle", out_dir, model, done.records, done.failures, len(items),
                   aggregate_needle(done.records), meta)
