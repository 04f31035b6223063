"""FILM's raw VaL pieces (`VaLProbing/pieces/` of FILM's release, downloaded by the user) as probe units,
so `eval build --pieces DIR` builds probes of any length from the material FILM built its own from.

    document_sentences.jsonl   {sentence, piece}                      key = piece, answer = the sentence
    code_functions.jsonl       {function_name, function_define, piece}  key = piece (a line of the body),
                                                                        answer = the name
    database_entities.jsonl    {id, label, dcpt}                      key = id, answer = label (+ dcpt)

A function is written into the context as `def <name>():` followed by its (indented) body lines; an
entity as `id: <id>; label: <label>; description: <dcpt>` (the records of `probes.database_units`). The
probe builder then does what it does for every source: contexts of `context_tokens` tokens, keys at
evenly spread positions, and FILM's ambiguity skip (a key that is not unique in its context is not
asked). A record whose key cannot be found in its own text (or whose entity text has a line break) can
not be placed and is left out, counted in the log; a record without its fields is an error naming the
file and line. The pieces are FILM's, never read by synth: held out by their source.
"""

from __future__ import annotations

import logging
import random
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from longcurate.core.errors import UserError
from longcurate.core.reader import read_rows, source_digest

log = logging.getLogger("longcurate.eval")

FILES = {"document": "document_sentences.jsonl", "code": "code_functions.jsonl",
         "database": "database_entities.jsonl"}
FIELDS = {"document": ("sentence", "piece"), "code": ("function_name", "function_define", "piece"),
          "database": ("id", "label", "dcpt")}


def pieces_file(pieces_dir: str | Path, task: str) -> Path:
    path = Path(pieces_dir) / FILES[task]
    if not path.exists():
        raise FileNotFoundError(2, f"FILM pieces file not found (eval.probes.pieces_dir holds FILM's "
                                   f"VaLProbing/pieces/: {', '.join(FILES.values())})", str(path))
    return path


class PieceUnit(NamedTuple):
    text: str
    answer: str
    answer_offset: int
    key: str
    key_offset: int
    description: str | None


def unit_of(task: str, rec: dict[str, str]) -> PieceUnit | None:
    """One record as a unit of a context; None when its key cannot be placed in its own text."""
    start, description = 0, None
    if task == "document":
        text, key, answer, answer_at = rec["sentence"], rec["piece"], rec["sentence"], 0
    elif task == "code":
        header = f"def {rec['function_name']}():\n"
        text, key, answer, answer_at = header + rec["function_define"], rec["piece"].strip(), rec["function_name"], 4
        start = len(header)  # the key is a line of the body, never the name
    else:
        text = f"id: {rec['id']}; label: {rec['label']}; description: {rec['dcpt']}"
        if "\n" in text:  # one record per line
            return None
        key, answer, answer_at, description = rec["id"], rec["label"], text.index("; label: ") + 9, rec["dcpt"]
    at = text.find(key, start) if key.strip() else -1
    return None if at < 0 else PieceUnit(text, answer, answer_at, key, at, description)


def load_units(pieces_dir: str | Path, task: str) -> tuple[PieceUnit, ...]:
    """Every placeable record of a task's pieces file, in file order (read once per version of the file)."""
    st = pieces_file(pieces_dir, task).stat()
    return read_units(str(pieces_dir), task, (st.st_mtime_ns, st.st_size))


@lru_cache(maxsize=8)
def read_units(pieces_dir: str, task: str, stamp: tuple[int, int]) -> tuple[PieceUnit, ...]:
    """`load_units`, cached by the file's version `stamp` (mtime, size)."""
    path = pieces_file(pieces_dir, task)
    out, dropped = [], 0
    for row in read_rows(path):
        rec = row.record
        bad = next((f for f in FIELDS[task] if not isinstance(rec.get(f), str)), None)
        if bad is not None:
            raise UserError(f"{row.file}:{row.line}: field '{bad}' must be a string, got {rec.get(bad)!r:.60}")
        unit = unit_of(task, rec)
        if unit is None:
            dropped += 1
        else:
            out.append(unit)
    if dropped:
        log.info("%s: %d record(s) whose key is not in their own text are left out", path, dropped)
    if not out:
        raise UserError(f"{path}: no usable record")
    return tuple(out)


def draw(pieces_dir: str, task: str, n: int, rng: random.Random) -> list[PieceUnit]:
    """`n` records (at most all of them), drawn without replacement."""
    pool = load_units(pieces_dir, task)
    return [pool[i] for i in rng.sample(range(len(pool)), min(n, len(pool)))]


def pieces_settings(pieces_dir: str | Path, tasks: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """What the probe file records of its pieces: the folder and each file's content digest."""
    return {"dir": str(pieces_dir), "digests": {t: source_digest(pieces_file(pieces_dir, t)) for t in tasks}}


__all__ = ["FILES", "FIELDS", "PieceUnit", "pieces_file", "unit_of", "load_units", "read_units", "draw", "pieces_settings"]
