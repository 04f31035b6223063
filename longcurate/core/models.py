"""Model and tokenizer loading: HF ids, local folders, and GGUF files (dequantized once, cached
as safetensors so the next load is fast). Local files only unless the caller allows downloads."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longcurate.core.bundled import smollm2_gguf_path

SMOLLM2_ALIAS = "smollm2-135m-instruct"


@dataclass(frozen=True)
class ModelSource:
    """Where weights come from: a folder or hub id, or a GGUF file inside a folder."""

    path: str
    gguf_file: str | None = None

    @property
    def label(self) -> str:
        return f"{self.path}/{self.gguf_file}" if self.gguf_file else self.path


def cache_dir() -> Path:
    return Path(os.environ.get("LONGCURATE_CACHE", Path.home() / ".cache" / "longcurate"))


def resolve(name_or_path: str) -> ModelSource:
    """Map an alias, a `.gguf` path, a local folder or a hub id to a ModelSource."""
    if name_or_path == SMOLLM2_ALIAS:
        gguf = smollm2_gguf_path()
        return ModelSource(str(gguf.parent), gguf.name)
    p = Path(name_or_path)
    if p.suffix == ".gguf":
        if not p.exists():
            raise FileNotFoundError(f"GGUF file not found: {p}")
        return ModelSource(str(p.parent), p.name)
    return ModelSource(name_or_path)


def _gguf_cache(src: ModelSource) -> Path:
    f = Path(src.path) / str(src.gguf_file)
    st = f.stat()
    key = hashlib.sha256(f"{f.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode()).hexdigest()[:16]
    return cache_dir() / "models" / f"{f.stem}-{key}"


def materialize(name_or_path: str) -> str:
    """Return a folder transformers can load with `from_pretrained` (no GGUF), converting and
    caching a GGUF model on first use. Other sources are returned unchanged."""
    src = resolve(name_or_path)
    if src.gguf_file is None:
        return src.path
    target = _gguf_cache(src)
    if (target / "model.safetensors").exists() and (target / "config.json").exists():
        return str(target)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(src.path, gguf_file=src.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(src.path, gguf_file=src.gguf_file, dtype=torch.float32)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        _save_dequantized(model, tmp)
        tok.save_pretrained(tmp)
        if target.exists():  # another process finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


def _save_dequantized(model, folder: Path) -> None:
    """Save a GGUF-loaded (already dequantized) model as plain safetensors + config.

    `save_pretrained` refuses because the GGUF loader marks the model as quantized; the weights in
    memory are ordinary float tensors, so they are saved directly and the marker is left out."""
    from safetensors.torch import save_model

    config = model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.save_pretrained(folder)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(folder)
    save_model(model, str(folder / "model.safetensors"), metadata={"format": "pt"})


def local_files_only(allow_download: bool) -> bool:
    return not allow_download or os.environ.get("HF_HUB_OFFLINE") == "1"


def load_tokenizer(name_or_path: str, allow_download: bool = False, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(materialize(name_or_path), local_files_only=local_files_only(allow_download),
                                        trust_remote_code=trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matrix instructions (AVX-512 BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def pick_dtype(spec: str = "auto", device: str = "cpu"):
    """`auto`: bf16 on CUDA with bf16 support, bf16 on CPUs with native bf16, else fp32."""
    import torch

    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if spec != "auto":
        if spec not in table:
            raise ValueError(f"unknown dtype {spec!r}; use auto, {', '.join(table)}")
        return table[spec]
    if str(device).startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_supports_bf16() else torch.float32


def default_device() -> str:
    import torch

    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        return f"cuda:{local % torch.cuda.device_count()}"
    return "cpu"


def load_model(name_or_path: str, *, dtype: str = "auto", device: str | None = None,
               attn_implementation: str = "sdpa", config_overrides: dict[str, Any] | None = None,
               allow_download: bool = False, trust_remote_code: bool = False):
    """Load a causal LM for inference in eval mode. `config_overrides` edits the config before the
    weights load (e.g. `{"rope_scaling": {"rope_type": "dynamic", "factor": 4.0}}`)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    device = device or default_device()
    folder = materialize(name_or_path)
    local = local_files_only(allow_download)
    config = AutoConfig.from_pretrained(folder, local_files_only=local, trust_remote_code=trust_remote_code)
    for k, v in (config_overrides or {}).items():
        setattr(config, k, v)
    model = AutoModelForCausalLM.from_pretrained(
        folder, config=config, dtype=pick_dtype(dtype, device), attn_implementation=attn_implementation,
        local_files_only=local, trust_remote_code=trust_remote_code)
    return model.to(device).eval()
