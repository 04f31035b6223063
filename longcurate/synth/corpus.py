"""Corpus readers: every source becomes a stream of `Document(doc_id, title, text)`.

Record sources (`.jsonl`, `.json`, `.parquet`, `datasets` folders, Hub ids with `allow_download`) are
read by the one reader every stage uses, `core.reader.read_rows`; `.txt` files (also `.txt.gz`,
`.txt.zst`) are documents, not records, and are read here: a `.txt` file given as the corpus holds
documents separated by blank lines, each `.txt` file of a folder is one document (`txt_split` says
otherwise: `file`, `blank-line`, `line`); the bundled Wikipedia summaries (`wiki-summaries`) come
through `core.wiki`. Bad input (a non-UTF-8 line, a record without the text field, an empty
document, a duplicate id) goes to the quarantine with file, line and reason, and reading goes on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from longcurate.core import wiki
from longcurate.core.bundled import WIKI_ALIAS, wiki_summaries_path
from longcurate.core.errors import UserError
from longcurate.core.jsonl import RejectSink, file_digest, reject
from longcurate.core.reader import SUFFIXES as RECORD_SUFFIXES
from longcurate.core.reader import is_dataset_folder, open_bytes, read_rows, record_suffix, source_files
from longcurate.synth.config import CorpusConfig

SUFFIXES = (*RECORD_SUFFIXES, ".txt")


def is_txt(path: Path) -> bool:
    return record_suffix(path)[0] == ".txt"


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    text: str
    file: str | None = None  # where it came from, for quarantine entries
    line: int | None = None  # line (jsonl/txt), row (parquet, HF dataset) or entry (json), 1-based


def read_corpus(cfg: CorpusConfig, rejects: RejectSink | None = None,
                keep: Callable[[str], bool] | None = None, allow_download: bool = False) -> Iterator[Document]:
    """All good documents of the configured source, in a fixed order; at most `cfg.limit`. `keep(doc_id)`
    picks a part of the corpus (the train or eval side of the holdout split): the others are passed
    over before any check, so neither their problems nor their count reach this reader's results."""
    seen: set[str] = set()
    n = 0
    for doc in _read_source(cfg, rejects, allow_download):
        if keep is not None and not keep(doc.doc_id):
            continue
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


def _read_source(cfg: CorpusConfig, rejects: RejectSink | None, allow_download: bool) -> Iterator[Document]:
    if cfg.path == WIKI_ALIAS:
        path = wiki_summaries_path()
        for a in wiki.read_wiki_summaries(path, rejects):
            yield Document(doc_id=a.doc_id, title=a.title, text=a.text, file=str(path), line=a.line)
        return
    path = Path(cfg.path)
    if is_dataset_folder(path) or (allow_download and not path.exists()):  # a datasets folder, a Hub id
        yield from _documents(read_rows(cfg.path, rejects, split=cfg.split, allow_download=allow_download),
                              cfg, rejects)
        return
    split = cfg.txt_split or ("blank-line" if path.is_file() else "file")
    for f in corpus_files(cfg):
        if is_txt(f):
            yield from read_txt(f, rejects, split)
        else:
            yield from _documents(read_rows(f, rejects), cfg, rejects)


def _documents(rows: Any, cfg: CorpusConfig, rejects: RejectSink | None) -> Iterator[Document]:
    """Records -> documents; when no record of a source has the text field, say which fields they have."""
    first: Any = None
    found = False
    for row in rows:
        doc = _from_record(row.record, cfg, row.file, row.line, rejects, row.key)
        found = found or cfg.text_field in row.record
        first = first or row
        if doc is not None:
            yield doc
    if first is not None and not found:
        raise UserError(f"{first.file}: no column '{cfg.text_field}' in any record (the first has: "
                        f"{', '.join(sorted(map(str, first.record)))}); set synth.corpus.text_field")


def corpus_files(cfg: CorpusConfig) -> list[Path]:
    """The files the corpus is read from, in reading order (a saved HF dataset: all its files)."""
    if cfg.path == WIKI_ALIAS:
        return [wiki_summaries_path()]
    path = Path(cfg.path)
    if not path.exists():
        hint = " (a Hub dataset id is read only with allow_download: true)" if cfg.path.count("/") == 1 else ""
        raise FileNotFoundError(2, f"corpus not found{hint}", str(path))
    if not path.is_dir() or is_dataset_folder(path):
        return source_files(path)
    files = sorted({*source_files(path), *(p for p in path.rglob("*.txt*") if p.is_file() and is_txt(p))})
    if not files:
        raise UserError(f"corpus folder {path} holds no {'/'.join(SUFFIXES)} files")
    return files


def corpus_digest(cfg: CorpusConfig, allow_download: bool = False) -> str:
    """A digest of the corpus' bytes (16 hex digits): samples made from an edited corpus differ. A Hub
    dataset is named by its id and split (its files live in the datasets cache)."""
    if cfg.path != WIKI_ALIAS and not Path(cfg.path).exists() and allow_download:
        return hashlib.sha256(f"hub:{cfg.path}:{cfg.split}".encode()).hexdigest()[:16]
    files = corpus_files(cfg)
    if len(files) == 1:
        return str(file_digest(files[0]))
    root = Path(cfg.path)
    listing = "".join(f"{f.relative_to(root)}\t{file_digest(f)}\n" for f in files)
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()[:16]


def _from_record(obj: dict[str, Any], cfg: CorpusConfig, file: str, line: int,
                 rejects: RejectSink | None, default_id: str | None = None) -> Document | None:
    text = obj.get(cfg.text_field)
    rid = obj.get(cfg.id_field) if cfg.id_field else None
    doc_id = str(rid) if rid not in (None, "") else (default_id or f"{Path(file).name}:{line}")
    if not isinstance(text, str):
        why = "missing text field" if text is None else "text field is not a string"
        reject(rejects, f"{why}: '{cfg.text_field}'", file=file, line=line,
               field_name=cfg.text_field, record_id=doc_id)
        return None
    title = obj.get(cfg.title_field) if cfg.title_field else None
    return Document(doc_id=doc_id, title=str(title) if title not in (None, "") else "", text=text.strip(),
                    file=file, line=line)


def read_txt(path: Path, rejects: RejectSink | None, split: str = "file") -> Iterator[Document]:
    """The documents of a text file, read a line at a time: the whole file (`file`: named by the file,
    titled by its stem), each run of lines between blank lines (`blank-line`), or each line (`line`;
    named `<file>:<first line>`, untitled). A line that is not UTF-8 is quarantined and left out."""
    lines: list[str] = []
    first = 1
    with open_bytes(path) as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                reject(rejects, f"not UTF-8: {e}", file=str(path), line=lineno, record_id=path.name)
                continue
            if split != "file" and (split == "line" or not text.strip()):
                if split == "line":
                    lines.append(text)
                if "".join(lines).strip():
                    yield Document(f"{path.name}:{first}", "", "".join(lines).strip(), str(path), first)
                lines, first = [], lineno + 1
                continue
            lines.append(text)
    if split == "file":
        title = Path(path.stem).stem if record_suffix(path)[1] else path.stem
        yield Document(doc_id=path.name, title=title, text="".join(lines).strip(), file=str(path), line=1)
    elif "".join(lines).strip():
        yield Document(f"{path.name}:{first}", "", "".join(lines).strip(), str(path), first)
