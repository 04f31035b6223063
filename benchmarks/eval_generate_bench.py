"""Eval generation speed: batched greedy generation vs one prompt at a time (the reference), same
process, same prompts; also checks that both give the same texts.

`--questions Q` asks Q questions about each context (as a probe set asks about 8 positions of one
context): the prompts then share their context, which the batched path runs once per context
(`core.prefixes`) while the reference runs every prompt whole, without any sharing. With
`--answers` it also times the answer NLL of the same prompts (`loglikelihood`: on the prefixes
cached by the generation, vs the plain scoring engine) and prints the largest relative difference.

    .venv/bin/python benchmarks/eval_generate_bench.py                      # SmolLM2, bf16 when the CPU has it
    .venv/bin/python benchmarks/eval_generate_bench.py --tiny --prompts 16  # random tiny Llama
    .venv/bin/python benchmarks/eval_generate_bench.py --prompts 2 --questions 8 --tokens 2048 --batch 8 --answers

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


def make_requests(sents: list[str], prompts: int, questions: int, tokens: int, new: int) -> list:
    """`prompts` contexts of mixed lengths (about `tokens`), each asked `questions` questions."""
    from longcurate.eval.model import GenRequest

    reqs = []
    for i in range(prompts):
        words, text = 0, []
        for s in sents[i * 400:]:
            text.append(s)
            words += len(s.split())
            if words * 1.3 >= tokens * (0.6 + 0.4 * i / max(1, prompts - 1)):  # mixed lengths
                break
        for q in range(questions):
            key = " ".join(text[(q * 7) % len(text)].split()[:4])
            reqs.append(GenRequest(f"p{i}-q{q}", " ".join(text) + f"\n\nWhich sentence contains \"{key}\"? Quote it.", new))
    return reqs


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true", help="a random 2-layer Llama instead of SmolLM2")
    ap.add_argument("--prompts", type=int, default=8, help="contexts")
    ap.add_argument("--questions", type=int, default=1, help="questions (prompts) per context")
    ap.add_argument("--tokens", type=int, default=1024, help="approximate context length")
    ap.add_argument("--new", type=int, default=32, help="new tokens per prompt")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--answers", action="store_true", help="also the answer NLL, shared vs the plain engine")
    args = ap.parse_args()

    from longcurate.core.models import SMOLLM2_ALIAS, load_model, load_tokenizer
    from oracles.models import random_llama
    from longcurate.eval.hf_backend import HFModel
    from longcurate.eval.model import LLRequest
    from longcurate.eval.sources import corpus_sentences

    tok = load_tokenizer(SMOLLM2_ALIAS)
    model = random_llama(seed=0, dtype="float32") if args.tiny else load_model(SMOLLM2_ALIAS, dtype=args.dtype, device="cpu")
    reqs = make_requests(corpus_sentences(), args.prompts, args.questions, args.tokens, args.new)
    reference = HFModel(model, tok, batch_size=1, share_prefixes=False, progress=False)
    batched = HFModel(model, tok, batch_size=args.batch, max_batch_tokens=1 << 20, progress=False)
    reference.generate(reqs[:1])  # warm-up (the batched model's store stays empty)
    w1, c1, ref = timed(lambda: reference.generate(reqs))
    wb, cb, out = timed(lambda: batched.generate(reqs))
    same = sum(a.text == b.text for a, b in zip(ref, out))
    print(f"model={'tiny' if args.tiny else SMOLLM2_ALIAS} dtype={next(model.parameters()).dtype} contexts={args.prompts} "
          f"questions={args.questions} ~tokens={args.tokens} new={args.new} threads={os.environ.get('OMP_NUM_THREADS', 'default')}")
    print(f"one at a time, whole prompts (reference): wall {w1:.2f} s  cpu {c1:.2f} s")
    print(f"batched (batch {args.batch}), shared prefixes:  wall {wb:.2f} s  cpu {cb:.2f} s "
          f"(prefixes run: {batched.prefixes.prefills if batched.prefixes else 0})")
    print(f"speed-up: wall x{w1 / wb:.2f}  cpu x{c1 / cb:.2f}   identical texts: {same}/{len(reqs)}")
    if args.answers:
        lls = [LLRequest(r.id, r.prompt, o.text or "no answer") for r, o in zip(reqs, ref)]
        w1, c1, ref_ll = timed(lambda: reference.loglikelihood(lls))
        wb, cb, out_ll = timed(lambda: batched.loglikelihood(lls))
        worst = max(abs(a.nll - b.nll) / max(abs(a.nll), 1e-9) for a, b in zip(ref_ll, out_ll))
        print(f"answer NLL, scoring engine (reference):       wall {w1:.2f} s  cpu {c1:.2f} s")
        print(f"answer NLL on the cached prefixes:           wall {wb:.2f} s  cpu {cb:.2f} s")
        print(f"speed-up: wall x{w1 / wb:.2f}  cpu x{c1 / cb:.2f}   largest relative NLL difference {worst:.1e}")


if __name__ == "__main__":
    main()
