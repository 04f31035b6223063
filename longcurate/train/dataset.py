"""The tokenized mixture as training reads it: loading and checking the `datasets` folder, what it
holds per source (long / short samples and tokens), and the digest that ties a model to its data."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from longcurate.core.errors import UserError
from longcurate.train.chat import SOURCES

REQUIRED_COLUMNS = ("input_ids", "labels", "length")


def load_tokenized(path: str | os.PathLike, limit: int | None = None):
    """The tokenized mixture (a `datasets` folder); `limit` keeps the first N rows."""
    from datasets import load_from_disk

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"tokenized dataset not found: {path} (run `longcurate train tokenize` first)")
    ds = load_from_disk(str(path))
    missing = [c for c in REQUIRED_COLUMNS if c not in ds.column_names]
    if missing:
        raise UserError(f"{path}: tokenized dataset lacks column(s) {missing}; has {ds.column_names}")
    if limit is not None and limit < len(ds):
        ds = ds.select(range(limit))
    if len(ds) == 0:
        raise UserError(f"{path}: the tokenized dataset is empty")
    return ds


def stat_columns(ds) -> dict[str, list]:
    """The columns `data_stats` and `make_plan` read (source, length, n_response_tokens), fetched once."""
    return ds.select_columns([c for c in ("source", "length", "n_response_tokens") if c in ds.column_names]).to_dict()


def data_stats(ds, indices: list[int] | None = None, *, columns: dict[str, list] | None = None) -> dict[str, int]:
    """Samples and tokens per source (`long` / `short`), over `indices` (repeats count) or all rows.
    `columns`: `stat_columns(ds)` already read."""
    cols = stat_columns(ds) if columns is None else columns
    lengths = cols["length"]
    sources = cols["source"] if "source" in cols else ["long"] * len(lengths)
    n_resp = cols.get("n_response_tokens")
    idx = range(len(lengths)) if indices is None else indices
    out: Counter = Counter()
    for i in idx:
        s = sources[i]
        out[f"{s}_samples"] += 1
        out[f"{s}_tokens"] += int(lengths[i])
        if n_resp is not None:
            out[f"{s}_response_tokens"] += int(n_resp[i])
    out["samples"] = sum(v for k, v in out.items() if k.endswith("_samples"))
    out["tokens"] = sum(v for k, v in out.items() if k.endswith("_tokens") and not k.endswith("response_tokens"))
    for s in SOURCES:  # always present, so a manifest shows a zero
        out.setdefault(f"{s}_samples", 0)
        out.setdefault(f"{s}_tokens", 0)
    return dict(sorted(out.items()))
