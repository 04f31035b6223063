"""The one resumable prediction loop of every eval kind (probes, needle, LongBench).

Each item becomes one request (id, prompt, max new tokens). A prediction line records the hash of
what it depends on: the prompt, the generation budget and the generation settings (model, backend,
template, ...). On start, lines made for another request under the same id are stale: they are
dropped and redone; lines for ids not asked about now are kept (a smaller `limit` deletes nothing).
New predictions are appended with fsync after each chunk, so a killed run resumes where it stopped
and a finished run redoes nothing; the model is not even built then (`model.LazyModel`).

A failed item (its prompt could not be prepared, or the backend returned an error) is not written:
it is reported to the caller and retried by the next run.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar

from longcurate.core.errors import UserError
from longcurate.core.jsonl import ResumableWriter, dumps, read_valid_prefix, write_jsonl
from longcurate.eval.model import EvalModel, GenRequest, check_order

log = logging.getLogger("longcurate.eval")

T = TypeVar("T")
HASH_FIELD = "request_hash"


def request_hash(prompt: str | list[dict[str, str]], max_new_tokens: int, settings: dict[str, Any] | None) -> str:
    """What a prediction depends on: the prompt, the budget and the model / backend settings."""
    blob = dumps({"prompt": prompt, "max_new_tokens": max_new_tokens, "settings": settings or {}})
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Failed:
    """An item without a prediction this run: its prompt could not be prepared, or generation failed."""

    id: str
    error: str
    stage: Literal["prompt", "generation"] = "generation"

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "error": self.error}


@dataclass
class Predicted:
    """Every prediction of the asked items (in item order, old and new) and this run's failures."""

    records: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Failed] = field(default_factory=list)
    predicted: int = 0  # made by this run
    skipped: int = 0  # already there, for the same request


def keep_current(predictions: Path, hashes: dict[str, str], key: str) -> dict[str, dict[str, Any]]:
    """The prediction lines still valid for `hashes` ({id: request hash}), by id. Lines of an asked id
    made for another request are dropped (the file is rewritten atomically); lines of other ids stay.
    A torn last line is left out here as ResumableWriter leaves it out."""
    records, _ = read_valid_prefix(predictions)
    for lineno, obj in enumerate(records, start=1):
        if not isinstance(obj, dict) or key not in obj:
            raise UserError(f"{predictions}:{lineno}: field '{key}' missing; cannot resume into this prediction "
                            "file (score it on its own, or move it away to predict again)")
    kept = [obj for obj in records if hashes.get(str(obj[key]), obj.get(HASH_FIELD)) == obj.get(HASH_FIELD)]
    if len(kept) < len(records):
        log.warning("%s: %d prediction(s) made for other prompts or settings are redone", predictions,
                    len(records) - len(kept))
        write_jsonl(predictions, kept)
    return {str(obj[key]): obj for obj in kept if str(obj[key]) in hashes}


def predict(generator: EvalModel, items: list[T], predictions: str | Path, *,
            request: Callable[[T], GenRequest], record: Callable[[T, str], dict[str, Any]],
            settings: dict[str, Any] | None = None, key: str = "id",
            prepare: Callable[[GenRequest], GenRequest] | None = None, chunk: int = 8,
            desc: str | None = None) -> Predicted:
    """Predict the items not yet in `predictions` (JSONL keyed by `key`).

    `request(item)` is what the prediction depends on (hashed with `settings`); `prepare(request)`, when
    given, turns it into what the generator is sent (e.g. fitted to the context; raising ValueError,
    KeyError or IndexError fails that item only); `record(item, text)` is the prediction line, to which
    the request hash is added.
    """
    predictions = Path(predictions)
    asked = [(it, request(it)) for it in items]
    hashes = {r.id: request_hash(r.prompt, r.max_new_tokens, settings) for _, r in asked}
    by_id = keep_current(predictions, hashes, key)
    out = Predicted(skipped=len(by_id))
    todo = [(it, r) for it, r in asked if r.id not in by_id]
    if by_id:
        log.info("%s: %d of %d items already predicted", predictions, len(by_id), len(asked))
    bar = _progress(desc, len(todo))
    with ResumableWriter(predictions, key=key) as writer:
        for start in range(0, len(todo), chunk):
            part = todo[start:start + chunk]
            for (it, r), text in _generate(generator, part, prepare, out.failures):
                rec = {**record(it, text), HASH_FIELD: hashes[r.id]}
                if writer.write(rec):
                    by_id[r.id] = rec
                    out.predicted += 1
            if bar is not None:
                bar.update(len(part))
    if bar is not None:
        bar.close()
    out.records = [by_id[r.id] for _, r in asked if r.id in by_id]
    return out


def _generate(generator: EvalModel, part: list[tuple[T, GenRequest]],
              prepare: Callable[[GenRequest], GenRequest] | None,
              failures: list[Failed]) -> list[tuple[tuple[T, GenRequest], str]]:
    """One chunk: prepare, generate, and split the results into texts and failures."""
    sent, kept = [], []
    for it, r in part:
        try:
            sent.append(prepare(r) if prepare is not None else r)
        except (ValueError, KeyError, IndexError) as e:
            failures.append(Failed(r.id, f"prompt failed: {type(e).__name__}: {e}", "prompt"))
            continue
        kept.append((it, r))
    results = generator.generate(sent) if sent else []
    check_order(sent, results, "generation")
    done = []
    for pair, res in zip(kept, results):
        if res.error is not None:
            failures.append(Failed(res.id, res.error))
        else:
            done.append((pair, res.text))
    return done


def _progress(desc: str | None, total: int) -> Any:
    if desc is None or not total:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="item")


__all__ = ["request_hash", "Failed", "Predicted", "keep_current", "predict", "HASH_FIELD"]
