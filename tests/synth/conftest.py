"""Fixtures of the synth tests: a small corpus file that segments fast, and four short documents for
the openai-backend runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from longcurate.synth.config import CorpusConfig
from longcurate.synth.corpus import read_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """300 longer articles of the bundled corpus as a JSONL file (fast to segment)."""
    docs = [d for d in read_corpus(CorpusConfig()) if len(d.text) > 900][:300]
    p = tmp_path_factory.mktemp("corpus") / "wiki300.jsonl"
    with open(p, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"id": d.doc_id, "title": d.title, "text": d.text}, ensure_ascii=False) + "\n")
    return p


@pytest.fixture
def docs_corpus(tmp_path) -> Path:
    """The four documents of `sample_docs.py` as a JSONL file."""
    sys.path.insert(0, str(Path(__file__).parent))
    from sample_docs import DOCS

    p = tmp_path / "c.jsonl"
    p.write_text("".join(json.dumps({"id": t, "title": t, "text": x}) + "\n" for t, x in DOCS))
    return p
