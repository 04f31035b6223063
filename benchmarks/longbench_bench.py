"""LongBench prompt fitting: `fit_prompt` (tokenize the long prompt once, re-render only the short
candidate) vs the straightforward loop that re-tokenizes the whole prompt for every try, same process.

Prompts are LongBench-sized: our hotpotqa template around a context of `--context-tokens` tokens
made of numbered sentences, truncated in the middle to fit `--max-context` minus the generation budget
under the SmolLM2 chat template (system prompt included). Both paths must return the same text.

    python benchmarks/longbench_bench.py                                  # 8 prompts of ~60K tokens -> 8K
    python benchmarks/longbench_bench.py --context-tokens 120000 --num-prompts 4
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]  # the package; test oracles


def reference_fit(text, tokenizer, budget, template):
    """Re-tokenize the whole prompt for every candidate limit."""
    from longcurate.eval.render import render_prompt
    from longcurate.eval.longbench_prompts import truncate_middle

    n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    limit = budget
    while True:
        candidate, _ = truncate_middle(text, tokenizer, limit)
        rendered, special = render_prompt(candidate, tokenizer, template)
        over = len(tokenizer(rendered, add_special_tokens=special)["input_ids"]) - budget
        if over <= 0:
            return candidate
        limit = min(limit, n) - over


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--context-tokens", type=int, default=60000)
    ap.add_argument("--num-prompts", type=int, default=8)
    ap.add_argument("--max-context", type=int, default=8192)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--template", default="chat", choices=["chat", "film", "raw"])
    args = ap.parse_args()

    from longcurate.core.models import SMOLLM2_ALIAS, load_tokenizer
    from longcurate.eval.longbench_data import LongBenchItem
    from longcurate.eval.longbench_prompts import build_prompt, fit_prompt, load_prompts

    tok = load_tokenizer(SMOLLM2_ALIAS)
    template = load_prompts()["hotpotqa"]
    prompts = []
    for p in range(args.num_prompts):
        words, i = [], 0
        while len(words) < args.context_tokens * 5 // 9:  # ~1.8 tokens per word here
            words.extend(f"Passage {p} sentence {i} says that item {i * 7 % 1000} is stored in room {i % 97}.".split())
            i += 1
        item = LongBenchItem(str(p), "hotpotqa", f"Where is item {p}?", " ".join(words), ["x"])
        prompts.append(build_prompt(template, item))
    n_tokens = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in prompts)
    budget = args.max_context - args.max_new_tokens

    def run(fn):
        t0 = time.perf_counter()
        out = [fn(t) for t in prompts]
        return out, time.perf_counter() - t0

    ref, t_ref = run(lambda t: reference_fit(t, tok, budget, args.template))
    new, t_new = run(lambda t: fit_prompt(t, tok, max_input_tokens=None, max_context=args.max_context,
                                          max_new_tokens=args.max_new_tokens, template=args.template)[0])
    assert new == ref, "fit_prompt and the reference disagree"
    print(f"{args.num_prompts} prompts, {n_tokens / args.num_prompts:,.0f} tokens each on average -> "
          f"{budget} tokens ({args.template} template)")
    print(f"reference (re-tokenize per try): {t_ref:.3f} s  ({n_tokens / t_ref:,.0f} prompt tokens/s)")
    print(f"fit_prompt (tokenize once):      {t_new:.3f} s  ({n_tokens / t_new:,.0f} prompt tokens/s)")
    print(f"speed-up: {t_ref / t_new:.2f}x   identical outputs: yes")


if __name__ == "__main__":
    main()
