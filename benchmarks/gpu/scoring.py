"""Parts `scoring` and `cam`: the scoring engine (longcurate.core.engine) against the per-sample
references of tests/oracles/select.py, on a randomly initialised Llama-2-7B in bf16.

scoring: response NLL of 16K-32K-token samples, engine vs one forward per sample with full-vocabulary
         logits: throughput of each, the ratio, MFU, peak memory, the largest NLL difference.
cam:     segment attention of one 32K-token sample through the engine (never an N x N matrix): peak
         memory against the model's weights; then on a 2K slice, equality with eager attention's
         `output_attentions`.
"""

from __future__ import annotations

from gpu.fixtures import build_llama, cam_item, score_items, weights_gib
from gpu.flops import FORWARD_FORMULA, allocated_gib, forward_flops, is_cuda, measure, mfu, peak_tflops, rounded
from gpu.runner import Context

NLL_TOLERANCE = {"float32": 1e-4, "bfloat16": 2e-2}  # largest relative |engine - reference| per sample
ATTENTION_TOLERANCE = {"float32": 1e-5, "bfloat16": 2e-2}  # largest |difference| / largest reference value
CAM_HEADROOM_GIB = 4.0  # target: peak memory within the weights + 4 GiB at 32K


def model_dtype(device: str):
    import torch

    return torch.bfloat16 if is_cuda(device) else torch.float32


def device_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name() if is_cuda(device) else "cpu"


def path_figures(seconds: float, peak: float | None, tokens: int, flops: float, peak_tf: float | None) -> dict:
    return {"seconds": rounded(seconds), "tokens_per_s": round(tokens / seconds), "peak_gib": rounded(peak, 2),
            "tflops": rounded(flops / seconds / 1e12, 1), "mfu": mfu(flops, seconds, peak_tf)}


def run_scoring(ctx: Context) -> dict:
    from longcurate.core.engine import ScoringEngine
    from oracles.select import reference_response_nll

    s, device = ctx.sizes, ctx.device
    dtype = model_dtype(device)
    model = build_llama(s.score_shape, device=device, dtype=dtype, max_positions=s.score_lengths[1] + 64)
    items = score_items(s.score_samples, s.score_lengths, model.config.vocab_size)
    tokens = sum(len(it) for it in items)
    peak_tf = peak_tflops(device_name(device), ctx.peak_tflops)
    ctx.record(model=s.score_shape, dtype=str(dtype).split(".")[-1], weights_gib=rounded(weights_gib(model), 2),
               samples=len(items), tokens=tokens, lengths=[len(it) for it in items], flop_formula=FORWARD_FORMULA,
               peak_tflops=peak_tf)
    flops = sum(forward_flops(model, len(it), len(it) - it.response_start) for it in items)
    engine = ScoringEngine(model, batch_tokens=s.score_batch_tokens, device=device, show_progress=False)
    warm = score_items(1, (512, 512), model.config.vocab_size, seed=1)
    reference_response_nll(model, warm)
    engine.response_nll(warm)

    ref, t_ref, mem_ref = measure(lambda: reference_response_nll(model, items), device)
    ctx.record(reference=path_figures(t_ref, mem_ref, tokens, flops, peak_tf))
    got, t_eng, mem_eng = measure(lambda: engine.response_nll(items), device)
    ctx.record(engine=path_figures(t_eng, mem_eng, tokens, flops, peak_tf), engine_batch_tokens=s.score_batch_tokens)
    rel = max(abs(g.nll - r.nll) / abs(r.nll) for g, r in zip(got, ref))
    absolute = max(abs(g.nll - r.nll) for g, r in zip(got, ref))
    ctx.record(speedup=round(t_ref / t_eng, 3), max_abs_dnll=absolute, max_rel_dnll=rel)
    tol = NLL_TOLERANCE[str(dtype).split(".")[-1]]
    if not rel <= tol:
        raise AssertionError(f"engine NLL differs from the reference by {rel:.2e} (relative) > {tol:.0e}")
    return {}


def slice_item(item, n_tokens: int, segment: int):
    """The first `n_tokens` of a CAM item as its own item: the segments that fit, then an instruction and
    a response of `segment` tokens each."""
    from longcurate.core.engine import ScoreItem

    ids = item.input_ids[:n_tokens]
    ctx_end = n_tokens - 2 * segment
    spans = [(a, b) for a, b in item.segment_spans if b <= ctx_end]
    return ScoreItem(f"{item.id}-slice{n_tokens}", ids, n_tokens - segment, spans)


def run_cam(ctx: Context) -> dict:
    import numpy as np

    from longcurate.core.engine import ScoringEngine
    from oracles.select import reference_segment_attention

    s, device = ctx.sizes, ctx.device
    dtype = model_dtype(device)
    model = build_llama(s.cam_shape, device=device, dtype=dtype, max_positions=s.cam_tokens + 64)
    weights = allocated_gib(device)
    item = cam_item(s.cam_tokens, s.segment_tokens, model.config.vocab_size)
    engine = ScoringEngine(model, device=device, show_progress=False)
    engine.segment_attention([slice_item(item, min(1024, s.cam_tokens), s.segment_tokens)])  # warm-up
    vec, seconds, peak = measure(lambda: engine.segment_attention([item])[0], device)
    figures = {"model": s.cam_shape, "dtype": str(dtype).split(".")[-1], "tokens": s.cam_tokens,
               "segments": len(item.segment_spans), "layers": model.config.num_hidden_layers,
               "seconds": rounded(seconds), "weights_gib": rounded(weights, 2), "peak_gib": rounded(peak, 2),
               "attention_sum": float(np.sum(vec))}
    if peak is not None:
        figures.update(over_weights_gib=rounded(peak - weights, 2),
                       within_target=bool(peak <= weights + CAM_HEADROOM_GIB))
    ctx.record(**figures)

    small = slice_item(item, s.cam_slice, s.segment_tokens)
    got = engine.segment_attention([small])[0]
    want = reference_segment_attention(model, [small])[0]
    diff = float(np.max(np.abs(got - want)))
    scale = float(np.max(np.abs(want)))
    tol = ATTENTION_TOLERANCE[str(dtype).split(".")[-1]]
    ctx.record(slice_tokens=s.cam_slice, slice_segments=len(small.segment_spans), slice_max_abs_diff=diff,
               slice_max_rel_diff=diff / scale, slice_equal=bool(diff <= tol * scale))
    if not diff <= tol * scale:
        raise AssertionError(f"segment attention differs from eager output_attentions by {diff:.2e} "
                             f"({diff / scale:.2e} of the largest value) > {tol:.0e}")
    return {}
