"""Model FLOPs, the accelerator's peak, and timed runs with peak memory.

MFU = model FLOPs / seconds / peak dense bf16 FLOP/s. Model FLOPs count the work the method needs,
not the work a kernel happens to do: padding, the recomputation of gradient checkpointing and
logits nobody reads count nothing, so a path that wastes work shows a lower MFU.
"""

from __future__ import annotations

import gc
import time
from typing import Any, Callable

FORWARD_FORMULA = ("forward FLOPs per sample = 2*P*L + 2*n_layers*L^2*d + 2*V*d*R, with P the non-embedding "
                   "parameters, L the sample's tokens, d the hidden size, V the vocabulary and R the rows that "
                   "need the LM head (the response tokens); causal attention counts QK^T and PV once "
                   "(4*L^2*d per layer, halved by the mask)")
TRAIN_FORMULA = ("training FLOPs per sample = 3 x the forward FLOPs (backward = 2 x forward), per sample of a "
                 "packed row (attention stays inside each sample); padding and the recomputation of "
                 "gradient checkpointing count nothing")

# Dense bf16 peaks in TFLOP/s (no sparsity), most specific name first.
PEAK_BF16_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("GH200", 989.0), ("H100", 989.0),
                    ("H200", 989.0), ("H800", 989.0), ("B200", 2250.0), ("A100", 312.0), ("L40S", 362.0),
                    ("L4", 121.0), ("A10", 125.0))


def non_embedding_params(model) -> int:
    cfg = model.config
    embed = cfg.vocab_size * cfg.hidden_size
    return sum(p.numel() for p in model.parameters()) - embed * (1 if cfg.tie_word_embeddings else 2)


def forward_flops(model, length: int, head_rows: int, params: int | None = None) -> float:
    cfg = model.config
    p = non_embedding_params(model) if params is None else params
    return (2.0 * p * length + 2.0 * cfg.num_hidden_layers * length * length * cfg.hidden_size
            + 2.0 * cfg.vocab_size * cfg.hidden_size * head_rows)


def train_flops(model, samples: list[dict]) -> float:
    p = non_embedding_params(model)
    return sum(3.0 * forward_flops(model, s["length"], s["n_response_tokens"], p) for s in samples)


def peak_tflops(device_name: str, override: float | None = None) -> float | None:
    if override:
        return override
    return next((v for k, v in PEAK_BF16_TFLOPS if k in device_name), None)


def mfu(flops: float, seconds: float, peak: float | None) -> float | None:
    return round(flops / seconds / 1e12 / peak, 4) if peak and seconds > 0 else None


def is_cuda(device) -> bool:
    return str(device).startswith("cuda")


def measure(fn: Callable[[], Any], device) -> tuple[Any, float, float | None]:
    """(result, seconds, peak GPU memory in GiB since the start of `fn`, None on the CPU)."""
    import torch

    gc.collect()
    if is_cuda(device):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out = fn()
    if is_cuda(device):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if is_cuda(device) else None
    return out, seconds, peak


def allocated_gib(device) -> float | None:
    import torch

    return torch.cuda.memory_allocated() / 2**30 if is_cuda(device) else None


def rounded(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(float(x), digits)
