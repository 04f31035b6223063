"""Eval generation speed: batched left-padded greedy generation vs one prompt at a time (the
reference), same process, same prompts; also checks that both give the same texts.

    .venv/bin/python benchmarks/eval_generate_bench.py                      # SmolLM2, bf16 when the CPU has it
    .venv/bin/python benchmarks/eval_generate_bench.py --tiny --prompts 16  # random tiny Llama

Prints wall and CPU seconds (CPU time is the fairer figure on a shared machine) and their ratios.
"""

from __future__ import annotations

import argparse
import os
import time
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]  # the package; test oracles

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true", help="a random 2-layer Llama instead of SmolLM2")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=1024, help="approximate prompt length")
    ap.add_argument("--new", type=int, default=32, help="new tokens per prompt")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--dtype", default="auto")
    args = ap.parse_args()

    from longcurate.core.models import SMOLLM2_ALIAS, load_model, load_tokenizer
    from oracles.models import random_llama
    from longcurate.eval.model import GenRequest
    from longcurate.eval.hf_backend import HFModel
    from longcurate.eval.sources import corpus_sentences

    tok = load_tokenizer(SMOLLM2_ALIAS)
    model = random_llama(seed=0, dtype="float32") if args.tiny else load_model(SMOLLM2_ALIAS, dtype=args.dtype, device="cpu")
    sents = corpus_sentences()
    reqs = []
    for i in range(args.prompts):
        words, text = 0, []
        for s in sents[i * 400:]:
            text.append(s)
            words += len(s.split())
            if words * 1.3 >= args.tokens * (0.6 + 0.4 * i / max(1, args.prompts - 1)):  # mixed lengths
                break
        reqs.append(GenRequest(f"p{i}", " ".join(text) + "\n\nWhich sentence mentions a year? Quote it.", args.new))

    def timed(batch: int):
        gen = HFModel(model, tok, batch_size=batch, max_batch_tokens=1 << 20, progress=False)
        gen.generate(reqs[:1])  # warm-up
        w, c = time.perf_counter(), time.process_time()
        out = gen.generate(reqs)
        return time.perf_counter() - w, time.process_time() - c, out

    w1, c1, ref = timed(1)
    wb, cb, out = timed(args.batch)
    same = sum(a.text == b.text for a, b in zip(ref, out))
    print(f"model={'tiny' if args.tiny else SMOLLM2_ALIAS} dtype={next(model.parameters()).dtype} prompts={len(reqs)} "
          f"~tokens={args.tokens} new={args.new} threads={os.environ.get('OMP_NUM_THREADS', 'default')}")
    print(f"one at a time (reference): wall {w1:.2f} s  cpu {c1:.2f} s")
    print(f"batched (batch {args.batch}):       wall {wb:.2f} s  cpu {cb:.2f} s")
    print(f"speed-up: wall x{w1 / wb:.2f}  cpu x{c1 / cb:.2f}   identical texts: {same}/{len(reqs)}")


if __name__ == "__main__":
    main()
