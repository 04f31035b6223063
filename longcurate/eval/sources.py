"""Offline material for probes and needles: Wikipedia summaries (sentences, entity records) and real
Python functions from the installed standard library (read with `ast`, never imported).

Articles come from the one reader of the bundled summaries (`core.wiki`), sentences from the one
splitter (`core.text.split_sentences`), so synth and eval cut the same text the same way. A user
corpus is a JSON file in the bundled format, or records of {id?, title, text, description?} (JSONL,
Parquet, a datasets folder).

Held out from training: when synth may read the same corpus (`core.holdout.partitioned`), eval reads
only the documents of its part (`EvalCorpus`), and the probe builder also drops any answer or key that
the training part's text contains (`taught`), so no probe asks for something a training sample says.
Code probes come from the Python standard library, which synth never reads: they are held out by
their source; their answers are identifiers, never prose words (see `identifier_like`).
"""

from __future__ import annotations

import ast
import random
import sysconfig
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from longcurate.core.bundled import WIKI_ALIAS
from longcurate.core.errors import UserError
from longcurate.core.holdout import HoldoutConfig, keeps, partitioned
from longcurate.core.reader import SUFFIXES, read_rows
from longcurate.core.text import split_sentences
from longcurate.core.wiki import read_wiki_summaries

_DEFAULT_HOLDOUT = HoldoutConfig()


@dataclass(frozen=True)
class Article:
    doc_id: str  # what the holdout split hashes (synth reads the same corpus with the same ids)
    title: str
    text: str
    description: str


@dataclass(frozen=True)
class EvalCorpus:
    """The text probes and needles are made of: a corpus, and the holdout part eval keeps to (`fraction`
    None: the whole corpus, for a corpus of eval's own). Hashable, so reads are cached per part."""

    path: str = WIKI_ALIAS
    fraction: float | None = _DEFAULT_HOLDOUT.fraction
    salt: str = _DEFAULT_HOLDOUT.salt

    @classmethod
    def of(cls, corpus: str, other_side: str | None, holdout: HoldoutConfig) -> "EvalCorpus":
        """Eval's view of `corpus` when synth reads `other_side` (`core.holdout.partitioned`). A
        holdout fraction of 0 turns the split off: eval then reads the whole corpus, shared with synth."""
        if partitioned(corpus, other_side) and holdout.fraction > 0:
            return cls(str(corpus), holdout.fraction, holdout.salt)
        return cls(str(corpus), None, "")

    @property
    def partitioned(self) -> bool:
        return self.fraction is not None

    def holds(self, doc_id: str, side: str = "eval") -> bool:
        """Whether a document belongs to `side` ("eval" or "train") of this corpus."""
        if self.fraction is None:
            return side == "eval"
        return keeps(doc_id, side, HoldoutConfig(self.fraction, self.salt))  # type: ignore[arg-type]

    def settings(self) -> dict[str, Any]:
        """What the item files record: the corpus and the part read."""
        part = {"fraction": self.fraction, "salt": self.salt} if self.partitioned else None
        return {"corpus": self.path, "holdout": part}


def _record_articles(path: Path) -> Iterator[Article]:
    """A user corpus of records (JSONL, Parquet, a datasets folder: `core.reader.read_rows`): one
    {id?, title, text (or extract), description?} per record; the document id is `id`, else
    `<file name>:<line>` (as synth's reader names it)."""
    for row in read_rows(path):
        lineno, obj = row.line, row.record
        title, text = obj.get("title"), obj.get("text") or obj.get("extract") or ""
        if title is None or not isinstance(text, str):
            raise UserError(f"{path}:{lineno}: bad corpus record; need title and text")
        doc_id = str(obj["id"]) if obj.get("id") not in (None, "") else f"{path.name}:{lineno}"
        yield Article(doc_id, str(title), text.strip(), str(obj.get("description") or "").strip())


def _articles(corpus: str) -> Iterator[Article]:
    if corpus == WIKI_ALIAS:
        path = None
    else:
        path = Path(corpus)
        if not path.exists():
            raise FileNotFoundError(f"corpus not found: {path}")
        if path.suffix in SUFFIXES and path.suffix != ".json" or path.is_dir():
            yield from _record_articles(path)
            return
    for a in read_wiki_summaries(path):
        yield Article(a.doc_id, a.title, a.text, a.description)


@lru_cache(maxsize=4)
def load_articles(corpus: str = WIKI_ALIAS) -> tuple[Article, ...]:
    """Every article of a corpus file with a text, sorted by title (a stable order whatever the
    file's order); the first of two articles with the same title wins.

    `corpus` is the bundled alias, a JSON dict title -> {title, extract, description} (the bundled
    format), or records of {id?, title, text, description?} (JSONL, Parquet, a datasets folder)."""
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


@lru_cache(maxsize=8)
def eval_articles(corpus: EvalCorpus = EvalCorpus()) -> tuple[Article, ...]:
    """The articles eval may use: the corpus's eval part (all of it when it is not partitioned)."""
    out = tuple(a for a in load_articles(corpus.path) if corpus.holds(a.doc_id))
    if not out:
        raise UserError(f"corpus {corpus.path}: its held-out part (holdout.fraction={corpus.fraction}) "
                        "holds no article; raise holdout.fraction or give eval a corpus of its own")
    return out


@lru_cache(maxsize=8)
def corpus_sentences(corpus: EvalCorpus = EvalCorpus(), min_words: int = 10, max_words: int = 40) -> tuple[str, ...]:
    """Unique, well-formed sentences (full stop at the end, no line breaks) of the eval part, in
    corpus order."""
    seen: set[str] = set()
    out = []
    for a in eval_articles(corpus):
        for s in split_sentences(a.text):
            n = len(s.split())
            if min_words <= n <= max_words and s.endswith(".") and s not in seen:
                seen.add(s)
                out.append(s)
    return tuple(out)


@lru_cache(maxsize=4)
def training_texts(corpus: EvalCorpus) -> tuple[str, ...]:
    """The text a training sample of this corpus can carry: every train-part article, and the FILM
    preamble that every synthesized sample's prompt holds (empty when the corpus is not partitioned:
    then synth reads other text, which `longcurate check contamination` compares after the fact)."""
    from longcurate.core.prompts import FILM_PREAMBLE

    if not corpus.partitioned:
        return ()
    return (FILM_PREAMBLE, *(a.text for a in load_articles(corpus.path) if corpus.holds(a.doc_id, "train")))


def taught(corpus: EvalCorpus, texts: Iterable[str]) -> set[str]:
    """The texts that occur in the corpus's training part, matched as `longcurate check contamination`
    matches (`core.overlap`: case- and whitespace-normalised, whole words); one pass over that part."""
    from longcurate.core.overlap import OverlapIndex

    train = training_texts(corpus)
    texts = set(texts)
    if not train or not texts:
        return set()
    index = OverlapIndex(n=1 << 30)  # exact matches only: no text has that many words, so no n-grams
    for t in texts:
        index.add(t, t)
    index.scan_all(train)
    return {t for t, r in index.results().items() if r.exact}


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


def identifier_like(name: str) -> bool:
    """A name no prose contains: it has an underscore, a digit or a capital (`parse_items`, `_code`,
    `b64encode`, `getLogger`), unlike `quote` or `mean`. The code probe's answers are such names:
    its score is "the name occurs in the prediction" and its contamination check looks for the name
    in training text, and a plain word would pass both for reasons that have nothing to do with it."""
    return "_" in name or any(c.isdigit() for c in name) or name != name.lower()


def sample_functions(n: int, seed: int, accept: Callable[[Function], bool] | None = None,
                     strict: bool = True) -> list[Function]:
    """At least `n` functions with distinct names (those `accept` takes) from standard-library files
    taken in a seeded random order (only as many files are parsed as needed); fewer, when the library
    has fewer, raise (`strict`) or are all returned."""
    files = list(stdlib_files())
    random.Random(seed).shuffle(files)
    seen: set[str] = set()
    out: list[Function] = []
    for f in files:
        for fn in read_functions(f):
            if fn.name not in seen and (accept is None or accept(fn)):
                seen.add(fn.name)
                out.append(fn)
        if len(out) >= n:
            break
    if len(out) < n and strict:
        raise UserError(f"the standard library gave only {len(out)} usable functions; {n} needed")
    return out
