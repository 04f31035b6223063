"""Peak memory of CAM segment attention on one long sample: the engine vs eager `output_attentions`.

Each measurement runs in a fresh subprocess and reports its own peak RSS (`ru_maxrss`), so the
numbers do not mix. The engine runs at the full length (default 8,192 tokens: 63 segments of 128
tokens, an instruction, a 128-token response). The eager path (`attn_implementation="eager"`,
`output_attentions=True`, what a straightforward script does) is measured at two short lengths and
extrapolated quadratically to the full length; the size of the attention tensors it returns
(layers x heads x N^2 x bytes) is printed too.

    python benchmarks/cam_memory.py                      # SmolLM2, fp32, CPU
    python benchmarks/cam_memory.py --dtype bfloat16 --eager-tokens 1024 2048
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the package; test oracles

SEGMENT = 128


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def _item(n_tokens: int, vocab: int, seed: int = 0):
    """Random token ids: segments of 128 tokens, then a 64-token instruction and a 128-token
    response (memory and time do not depend on the values)."""
    from longcurate.core.engine import ScoreItem

    rng = random.Random(seed)
    ids = [rng.randrange(vocab) for _ in range(n_tokens)]
    response, instruction = min(128, n_tokens // 8), min(64, n_tokens // 8)
    ctx_end = n_tokens - response - instruction
    spans = [(s, min(s + SEGMENT, ctx_end)) for s in range(0, ctx_end, SEGMENT)]
    return ScoreItem("cam", ids, n_tokens - response, spans)


def child(mode: str, n_tokens: int, model_name: str, dtype: str, key_block: int) -> dict:
    import torch

    from longcurate.core.models import load_model

    model = load_model(model_name, dtype=dtype, device="cpu")
    item = _item(n_tokens, model.config.vocab_size)
    base = _peak_rss_gib()
    t = time.perf_counter()
    if mode == "engine":
        from longcurate.core.engine import ScoringEngine

        vec = ScoringEngine(model, show_progress=False).segment_attention([item], key_block=key_block)[0]
        extra = {"segments": len(vec), "sum": float(vec.sum())}
    else:
        from oracles.select import reference_segment_attention

        vec = reference_segment_attention(model, [item])[0]
        extra = {"segments": len(vec), "sum": float(vec.sum())}
    return {"mode": mode, "tokens": n_tokens, "seconds": time.perf_counter() - t, "rss_after_load_gib": base,
            "peak_rss_gib": _peak_rss_gib(), "threads": torch.get_num_threads(), **extra}


def run_child(args, mode: str, n_tokens: int) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--tokens", str(n_tokens), "--model", args.model,
           "--dtype", args.dtype, "--key-block", str(args.key_block)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--eager-tokens", type=int, nargs=2, default=[1024, 1536])
    ap.add_argument("--key-block", type=int, default=1024)
    ap.add_argument("--target-gib", type=float, default=3.0)
    ap.add_argument("--child", choices=["engine", "eager"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.tokens, args.model, args.dtype, args.key_block)))
        return 0

    eng = run_child(args, "engine", args.tokens)
    print(f"engine  N={eng['tokens']}: peak RSS {eng['peak_rss_gib']:.2f} GiB (model loaded: "
          f"{eng['rss_after_load_gib']:.2f} GiB), {eng['seconds']:.1f} s, {eng['segments']} segments, "
          f"target < {args.target_gib} GiB: {'OK' if eng['peak_rss_gib'] < args.target_gib else 'MISSED'}")
    (n1, n2) = args.eager_tokens
    e1, e2 = run_child(args, "eager", n1), run_child(args, "eager", n2)
    for e in (e1, e2):
        print(f"eager   N={e['tokens']}: peak RSS {e['peak_rss_gib']:.2f} GiB, {e['seconds']:.1f} s")
    # peak = a + c N^2 through the two measurements
    c = (e2["peak_rss_gib"] - e1["peak_rss_gib"]) / (n2 ** 2 - n1 ** 2)
    a = e1["peak_rss_gib"] - c * n1 ** 2
    from transformers import AutoConfig

    from longcurate.core.models import materialize

    cfg = AutoConfig.from_pretrained(materialize(args.model))
    nbytes = 4 if args.dtype == "float32" else 2
    tensors = cfg.num_hidden_layers * cfg.num_attention_heads * args.tokens ** 2 * nbytes / 2**30
    print(f"eager   N={args.tokens}: extrapolated peak RSS {a + c * args.tokens ** 2:.1f} GiB; the returned "
          f"attentions alone are {cfg.num_hidden_layers} layers x {cfg.num_attention_heads} heads x N^2 x "
          f"{nbytes} B = {tensors:.1f} GiB")
    return 0 if eng["peak_rss_gib"] < args.target_gib else 1


if __name__ == "__main__":
    raise SystemExit(main())
