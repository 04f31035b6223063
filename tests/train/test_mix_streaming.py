"""The mixture holds a hash, an id and a spill slot per conversation, never the conversations: at 10×
the rows the traced peak grows by a small fraction of the extra input (`bounded_memory` in conftest);
and the mixture is exactly what shuffling the conversations in memory gives."""

from __future__ import annotations

import json
import random
from pathlib import Path

from longcurate.core.jsonl import dumps
from longcurate.core.prompts import messages_for
from longcurate.train.mix import build_mixture

FILLER = "The long context goes on with more words about rivers, markets and winter gardens. "


def _long(i: int) -> dict:
    ctx, ins, resp = f"Context {i}. " + FILLER * 100, f"What is item {i}?", f"Item {i} is thing {i}."
    return {"id": f"in2-{i:06d}", "kind": "fine", "context": ctx, "instruction": ins, "response": resp,
            "messages": messages_for(ctx, ins, resp), "gold": [], "num_segments": 3, "length": 100, "source": {}}


def _short(i: int) -> dict:
    turns = [{"from": "human" if k % 2 == 0 else "gpt", "value": f"Turn {k} of chat {i}. " + FILLER * 4} for k in range(6)]
    return {"id": f"sg-{i}", "conversations": turns}


def _inputs(folder: Path, n: int) -> tuple[str, str, int]:
    long, short = folder / "long.jsonl", folder / "short.jsonl"
    for path, make in ((long, _long), (short, _short)):
        with open(path, "w", encoding="utf-8") as f:
            for i in range(n):
                f.write(dumps(make(i)) + "\n")
    return str(long), str(short), long.stat().st_size + short.stat().st_size


def test_mix_memory_is_bounded_by_a_record(bounded_memory):
    def make(folder: Path, n: int) -> int:
        return _inputs(folder, n)[2]

    def run(folder: Path) -> None:
        stats = build_mixture([str(folder / "long.jsonl")], str(folder / "short.jsonl"), folder / "mix.jsonl",
                              short_size=50, seed=3, progress=False)
        assert stats["short"] == 50

    bounded_memory(run, make, rows=100)


def test_mixture_is_the_in_memory_shuffle_of_the_conversations(tmp_path):
    """The spilled, slot-permuted mixture equals the plain construction: long in file order, the seeded
    short draw in file order, `random.Random(f"{seed}:mix").shuffle` of the records."""
    long, short, _ = _inputs(tmp_path, 40)
    out = tmp_path / "mix.jsonl"
    build_mixture([long], short, out, short_size=15, seed=7, progress=False)
    read = lambda p: [json.loads(x) for x in Path(p).read_text().splitlines()]  # noqa: E731
    longs = [{"id": r["id"], "source": "long", "origin": long, "messages": r["messages"]} for r in read(long)]
    pool = read(short)
    chosen = sorted(random.Random("7:short").sample(range(len(pool)), 15))
    roles = {"human": "user", "gpt": "assistant"}
    shorts = [{"id": pool[i]["id"], "source": "short", "origin": short,
               "messages": [{"role": roles[t["from"]], "content": t["value"]} for t in pool[i]["conversations"]]}
              for i in chosen]
    want = longs + shorts
    random.Random("7:mix").shuffle(want)
    assert read(out) == want
