"""Planted types in the training samples (`synth.planted`): once the samples file is complete and in
index order, a share of its long samples is turned into `far` / `local` / `absent` / `wrong` samples by
`core.planted_pool.plant_shares` (the code `select audit` plants with) and every record says what it
is in its `planted` field; the file is replaced atomically. Positions are placed against
`synth.planted.window` under the chat template (select's default prompt format).

A file that already holds planted records is left as it is, so a run killed after planting and before
its completion marker finishes without planting twice.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from longcurate.core.jsonl import read_jsonl, write_jsonl
from longcurate.core.planted import ChatView
from longcurate.core.planted_pool import plant_shares
from longcurate.core.records import Sample
from longcurate.synth.streams import TRAINING, Stream


def plant_stream(stream: Stream, tokenizer: Any) -> dict[str, int] | None:
    """Plant the stream's finished samples file when `synth.planted.shares` asks for it (training
    samples only); returns the counts per type (and `<type> failed`), None when nothing is planted."""
    pc = stream.synth.planted
    if stream.name != TRAINING or not pc.shares:
        return None
    samples = [Sample.from_dict(r) for _, r in read_jsonl(stream.output)]
    if any(s.planted is not None for s in samples):
        return dict(sorted(Counter(s.planted["type"] for s in samples if s.planted).items()))
    records, counts = plant_shares(samples, ChatView(tokenizer, int(pc.window)), pc.shares, seed=stream.seed,
                                   margin=pc.margin, stratum_size=pc.stratum_size)
    write_jsonl(stream.output, (r.to_dict() for r in records))
    return counts


__all__ = ["plant_stream"]
