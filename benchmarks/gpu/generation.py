"""Part `generation`: the eval stage's `hf` backend (longcurate.eval.hf_backend.HFModel) with
8K-token prompts on a random ~1B Llama: greedy tokens/s batched (left padding) against one prompt at a
time, in bf16; then the same comparison in fp32, where the outputs must be identical (in bf16 a
near-tie between two logits may flip the argmax of a batched row, which is rounding, not a bug)."""

from __future__ import annotations

import random

from gpu.fixtures import build_llama, random_ids, word_tokenizer
from gpu.flops import is_cuda, measure, rounded
from gpu.runner import Context


def requests(ctx: Context, vocab: int, new_tokens: int) -> list:
    from longcurate.eval.model import GenRequest

    s = ctx.sizes
    rng = random.Random(5)
    return [GenRequest(f"g{i}", "", new_tokens, ids=random_ids(rng, rng.randint(*s.gen_lengths), vocab))
            for i in range(s.gen_prompts)]


def first_difference(a: str, b: str) -> int | None:
    """Index of the first generated token (word) where two outputs differ; None when identical."""
    wa, wb = a.split(), b.split()
    if wa == wb:
        return None
    return next((i for i, (x, y) in enumerate(zip(wa, wb)) if x != y), min(len(wa), len(wb)))


def compare(model, tokenizer, reqs: list, batch: int, device: str) -> dict:
    """One prompt at a time, then `batch` at a time: seconds, new tokens/s, and where outputs differ."""
    from longcurate.eval.hf_backend import HFModel

    context = model.config.max_position_embeddings

    def generator(batch_size: int):
        return HFModel(model, tokenizer, batch_size=batch_size, max_batch_tokens=1 << 30, max_context=context,
                       progress=False)

    generator(1).generate(reqs[:1])  # warm-up
    single, t1, _ = measure(lambda: generator(1).generate(reqs), device)
    batched, tb, peak = measure(lambda: generator(batch).generate(reqs), device)
    errors = [r.error for r in single + batched if r.error]
    if errors:
        raise RuntimeError(f"generation failed: {errors[0]}")
    new = sum(len(r.text.split()) for r in batched)
    diffs = [first_difference(a.text, b.text) for a, b in zip(single, batched)]
    return {"prompts": len(reqs), "prompt_tokens": sum(len(r.ids) for r in reqs), "new_tokens": new,
            "one_at_a_time_s": rounded(t1), "batched_s": rounded(tb), "batch_size": batch,
            "one_at_a_time_tokens_per_s": rounded(new / t1, 1), "batched_tokens_per_s": rounded(new / tb, 1),
            "speedup": rounded(t1 / tb), "peak_gib": rounded(peak, 2),
            "identical": sum(d is None for d in diffs), "first_differences": diffs}


def run(ctx: Context) -> dict:
    import torch

    s, device = ctx.sizes, ctx.device
    context = s.gen_lengths[1] + s.gen_new + 64
    fast = torch.bfloat16 if is_cuda(device) else torch.float32
    model = build_llama(s.gen_shape, device=device, dtype=fast, max_positions=context)
    tokenizer = word_tokenizer(model.config.vocab_size)
    vocab = model.config.vocab_size
    ctx.record(model=s.gen_shape, prompt_lengths=list(s.gen_lengths))
    timing = compare(model, tokenizer, requests(ctx, vocab, s.gen_new), s.gen_prompts, device)
    ctx.record(timing={"dtype": str(fast).split(".")[-1], **timing})
    if fast == torch.float32:  # the timing run already was the fp32 run
        equality = timing
    else:
        model = model.float()
        equality = compare(model, tokenizer, requests(ctx, vocab, s.gen_equal_new), s.gen_prompts, device)
    ctx.record(equality={"dtype": "float32", **equality})
    if equality["identical"] != equality["prompts"]:
        raise AssertionError(f"batched greedy output differs from one-at-a-time output in fp32: first differing "
                             f"token per prompt {equality['first_differences']}")
    return {}
