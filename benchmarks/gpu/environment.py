"""Part `environment`: the machine, the library versions (and where each package was imported from, so
a carried wheel is told from the image's own), and which attention implementations load and run."""

from __future__ import annotations

import importlib
import importlib.util
import platform
import shutil
import subprocess
import time
from typing import Any

from gpu.fixtures import build_llama
from gpu.runner import Context
from gpu.flops import is_cuda

PACKAGES = ("torch", "transformers", "accelerate", "datasets", "deepspeed", "flash_attn", "pydantic", "numpy",
            "pyarrow", "huggingface_hub", "tokenizers")
IMPLEMENTATIONS = ("eager", "sdpa", "flex_attention", "flash_attention_2")


def package_versions() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in PACKAGES:
        if importlib.util.find_spec(name) is None:
            out[name] = None
            continue
        try:
            mod = importlib.import_module(name)
            out[name] = {"version": getattr(mod, "__version__", "?"), "from": str(getattr(mod, "__file__", ""))}
        except Exception as e:  # noqa: BLE001 - an unimportable package is a finding
            out[name] = {"error": f"{type(e).__name__}: {e}"[:500]}
    return out


def device_info(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"device": device, "python": platform.python_version(), "cuda": torch.version.cuda,
                            "cpu_threads": torch.get_num_threads()}
    if is_cuda(device):
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    multiprocessors=props.multi_processor_count, capability=f"{props.major}.{props.minor}",
                    gpus=torch.cuda.device_count(), bf16=torch.cuda.is_bf16_supported())
        if shutil.which("nvidia-smi"):
            smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                                  "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
            info["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
    return info


def check_attention(model, impl: str, device: str, reference) -> dict[str, Any]:
    """Switch the model to `impl` through the public API, run a padded batch forward (and backward
    where the kernel has one), compare the real rows' logits with eager."""
    import torch

    if impl == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        return {"status": "skipped", "reason": "flash-attn is not installed"}
    if impl == "flex_attention" and not reference["flex"]:
        return {"status": "skipped", "reason": "left to the packing part in the smoke (compiling it costs ~20 s)"}
    ids, mask = reference["ids"], reference["mask"]
    t0 = time.perf_counter()
    try:
        model.set_attn_implementation(impl)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
        diff = float((logits - reference["logits"])[mask.bool()].abs().max())
        backward = is_cuda(device) or impl != "flex_attention"  # FlexAttention has no CPU backward
        if backward:
            model(input_ids=ids, attention_mask=mask).logits.float().square().mean().backward()
            model.zero_grad(set_to_none=True)
        tol = 5e-2 if is_cuda(device) else 1e-4  # bf16 on the GPU, fp32 on the CPU
        return {"status": "ok" if diff <= tol * max(1.0, reference["scale"]) else "differs",
                "max_abs_diff_vs_eager": diff, "backward": backward, "seconds": round(time.perf_counter() - t0, 2)}
    except Exception as e:  # noqa: BLE001 - an implementation that does not run is the finding
        return {"status": "failed", "error": f"{type(e).__name__}: {e}"[:800], "seconds": round(time.perf_counter() - t0, 2)}
    finally:
        model.set_attn_implementation("eager")


def run(ctx: Context) -> dict:
    import torch
    import transformers

    device = ctx.device
    ctx.record(**device_info(device), packages=package_versions(), torch=torch.__version__,
               transformers=transformers.__version__)
    dtype = torch.bfloat16 if is_cuda(device) else torch.float32
    model = build_llama("tiny", device=device, dtype=dtype, attn="eager")
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, model.config.vocab_size, (2, 96), generator=gen).to(device)
    mask = torch.ones_like(ids)
    mask[1, 64:] = 0  # a right-padded row: masks are exercised too
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
    reference = {"ids": ids, "mask": mask, "logits": logits, "scale": float(logits.abs().max()),
                 "flex": ctx.sizes.env_flex}
    attention = {}
    for impl in IMPLEMENTATIONS[1:]:
        attention[impl] = check_attention(model, impl, device, reference)
        ctx.record(attention=attention)
    return {"attention": attention}
