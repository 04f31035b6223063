"""Tokenization speed: offset-based labelling (one tokenizer call per sample) against the prefix-diff
reference (one call per rendered prefix), on long single-turn samples and short multi-turn chats,
in the same process; both must give identical tokens and labels.

    .venv/bin/python benchmarks/tokenize_bench.py [--long 20] [--words 6000] [--short 200]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]  # the package; test oracles

from longcurate.core.models import SMOLLM2_ALIAS, load_tokenizer  # noqa: E402
from longcurate.core.prompts import messages_for  # noqa: E402
from longcurate.train.tokenize import encode  # noqa: E402
from oracles.train import encode_reference  # noqa: E402

WORDS = ("river city music model paper score green stone light window number history science "
         "garden market table letter school winter summer north south bridge engine").split()


def long_samples(n: int, words: int, rng: random.Random) -> list[list[dict]]:
    out = []
    for i in range(n):
        ctx = "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(60)) + "." for _ in range(words // 60))
        out.append(messages_for(ctx, f"What is item {i}?", f"Item {i} is the {rng.choice(WORDS)}."))
    return out


def chats(n: int, rng: random.Random) -> list[list[dict]]:
    out = []
    for _ in range(n):
        msgs = []
        for _ in range(rng.randint(1, 6)):
            question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40))) + "?"
            answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 80)))
            msgs += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        out.append(msgs)
    return out


def timed(fn, convs, tok, template):
    t = time.perf_counter()
    res = [fn(m, tok, template=template) for m in convs]
    return time.perf_counter() - t, res


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--long", type=int, default=20)
    ap.add_argument("--words", type=int, default=6000, help="context words per long sample (~1.3 tokens each)")
    ap.add_argument("--short", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    tok = load_tokenizer(SMOLLM2_ALIAS)
    rng = random.Random(0)
    sets = {"long": long_samples(args.long, args.words, rng), "multi-turn": chats(args.short, rng)}
    for name, convs in sets.items():
        for template in ("chat", "film"):
            fast = min(timed(lambda m, t, template: encode(m, t, template=template, max_length=10**7), convs, tok,
                             template)[0] for _ in range(args.repeats))
            ref = min(timed(encode_reference, convs, tok, template)[0] for _ in range(args.repeats))
            a = [encode(m, tok, template=template, max_length=10**7) for m in convs]
            b = [encode_reference(m, tok, template=template) for m in convs]
            same = all(x.input_ids == y.input_ids and x.labels == y.labels for x, y in zip(a, b))
            ntok = sum(len(x.input_ids) for x in a)
            print(f"{name:10s} {template:4s}: {len(convs)} samples, {ntok} tokens | offsets {ntok / fast:,.0f} tok/s, "
                  f"prefix-diff {ntok / ref:,.0f} tok/s | speed-up {ref / fast:.2f}x | identical labels: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
