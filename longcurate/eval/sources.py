"""Offline material for probes and needles: Wikipedia summaries (sentences, entity records) and real
Python functions from the installed standard library (read with `ast`, never imported).

Articles come from the one reader of the bundled summaries (`core.wiki`), sentences from the one
splitter (`core.text.split_sentences`), so synth and eval cut the same text the same way. A user
corpus is a JSON file in the bundled format, or a JSONL file of {title, text, description?} lines.
"""

from __future__ import annotations

import ast
import random
import sysconfig
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from longcurate.core.bundled import WIKI_ALIAS
from longcurate.core.errors import UserError
from longcurate.core.jsonl import read_jsonl
from longcurate.core.text import split_sentences
from longcurate.core.wiki import read_wiki_summaries


@dataclass(frozen=True)
class Article:
    title: str
    text: str
    description: str


def _jsonl_articles(path: Path) -> Iterator[Article]:
    """A user corpus in JSONL: one {title, text (or extract), description?} object per line."""
    for lineno, obj in read_jsonl(path):
        title, text = obj.get("title"), obj.get("text") or obj.get("extract") or ""
        if title is None or not isinstance(text, str):
            raise UserError(f"{path}:{lineno}: bad corpus record; need title and text")
        yield Article(str(title), text.strip(), str(obj.get("description") or "").strip())


def _articles(corpus: str) -> Iterator[Article]:
    if corpus == WIKI_ALIAS:
        path = None
    else:
        path = Path(corpus)
        if not path.exists():
            raise FileNotFoundError(f"corpus not found: {path}")
        if path.suffix == ".jsonl":
            yield from _jsonl_articles(path)
            return
    for a in read_wiki_summaries(path):
        yield Article(a.title, a.text, a.description)


@lru_cache(maxsize=4)
def load_articles(corpus: str = WIKI_ALIAS) -> tuple[Article, ...]:
    """Articles with a text, sorted by title (a stable order whatever the file's order); the first of
    two articles with the same title wins.

    `corpus` is the bundled alias, a JSON dict title -> {title, extract, description} (the bundled
    format), or a JSONL file of {title, text, description?} objects."""
    out: dict[str, Article] = {}
    try:
        for a in _articles(corpus):
            out.setdefault(a.title, a)
    except UserError:
        raise
    except ValueError as e:  # bad JSON, or a JSON file not in the bundled format: the reader names where
        raise UserError(f"corpus {corpus}: {e}") from None
    articles = tuple(a for _, a in sorted(out.items()) if a.text)
    if not articles:
        raise UserError(f"corpus {corpus}: no articles with text")
    return articles


def corpus_sentences(corpus: str = WIKI_ALIAS, min_words: int = 10, max_words: int = 40) -> list[str]:
    """Unique, well-formed sentences (full stop at the end, no line breaks) in corpus order."""
    seen: set[str] = set()
    out = []
    for a in load_articles(corpus):
        for s in split_sentences(a.text):
            n = len(s.split())
            if min_words <= n <= max_words and s.endswith(".") and s not in seen:
                seen.add(s)
                out.append(s)
    return out


@dataclass(frozen=True)
class Function:
    name: str
    source: str  # dedented, as written
    module: str


@lru_cache(maxsize=1)
def stdlib_files() -> tuple[Path, ...]:
    """The standard library's own .py files (no tests, no site-packages), sorted."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idlelib", "site-packages", "dist-packages", "lib2to3", "turtledemo", "__pycache__"}
    return tuple(sorted(p for p in root.rglob("*.py") if not (skip & set(p.relative_to(root).parts))))


@lru_cache(maxsize=None)
def read_functions(path: Path, min_lines: int = 5, max_lines: int = 30) -> tuple[Function, ...]:
    """Top-level functions of one file with `min_lines`..`max_lines` lines (signature to last line)."""
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return ()
    module = path.stem
    out = []
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.decorator_list:
            continue
        seg = ast.get_source_segment(source, node, padded=True)
        if not seg:
            continue
        seg = textwrap.dedent(seg).strip("\n")
        if min_lines <= seg.count("\n") + 1 <= max_lines and not node.name.startswith("__"):
            out.append(Function(node.name, seg, module))
    return tuple(out)


def sample_functions(n: int, seed: int) -> list[Function]:
    """At least `n` functions with distinct names from standard-library files taken in a seeded
    random order (only as many files are parsed as needed)."""
    files = list(stdlib_files())
    random.Random(seed).shuffle(files)
    seen: set[str] = set()
    out: list[Function] = []
    for f in files:
        for fn in read_functions(f):
            if fn.name not in seen:
                seen.add(fn.name)
                out.append(fn)
        if len(out) >= n:
            break
    if len(out) < n:
        raise UserError(f"the standard library gave only {len(out)} usable functions; {n} needed")
    return out
