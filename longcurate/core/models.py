"""Model and tokenizer loading: HF ids, local folders, and GGUF files (dequantized once, cached
as safetensors so the next load is fast). Local files only unless the caller allows downloads.

Every stage loads through these functions (or inside `model_errors`), so a model that cannot be
loaded is one line that names it and says why: no such folder, not in the Hugging Face cache while
the hub is offline (`HF_HUB_OFFLINE`) or downloads are off (`allow_download`), or code of its own
that `trust_remote_code` does not allow. `trust_remote_code` is always passed as a bool, so
transformers never stops an unattended run to ask on the terminal.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from longcurate.core.bundled import smollm2_gguf_path
from longcurate.core.errors import UserError

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


def hub_offline() -> bool:
    """`HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) is set: nothing is fetched from the hub."""
    return any(os.environ.get(v, "").strip().upper() in ("1", "ON", "YES", "TRUE")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def local_files_only(allow_download: bool) -> bool:
    return not allow_download or hub_offline()


def not_loadable(name_or_path: str, allow_download: bool, error: BaseException) -> str:
    """The one-line reason a model cannot be loaded, naming it."""
    text = str(error)
    if "trust_remote_code" in text:
        return (f"model {name_or_path!r} needs the code that comes with it (custom modelling code); set "
                "trust_remote_code=true if you trust that code")
    p = Path(name_or_path).expanduser()
    if p.exists():
        first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
        return f"model {name_or_path!r} cannot be loaded: {first}"
    if p.is_absolute() or name_or_path.startswith((".", "~")) or name_or_path.count("/") > 1:
        return f"model {name_or_path!r}: no such file or folder"
    off = [why for cond, why in ((hub_offline(), "the hub is offline (HF_HUB_OFFLINE)"),
                                 (not allow_download, "downloads are off (allow_download: false)")) if cond]
    if not off:
        return f"model {name_or_path!r}: no such folder, and the hub has no such model or could not be reached"
    return f"model {name_or_path!r}: no such folder, and not in the Hugging Face cache; {' and '.join(off)}"


@contextlib.contextmanager
def model_errors(name_or_path: str, allow_download: bool) -> Iterator[None]:
    """Around a transformers `from_pretrained`: what it raises for a model that cannot be loaded
    becomes a `UserError` (`not_loadable`); an OS error with an errno (a full disk) stays itself."""
    try:
        yield
    except OSError as e:
        if e.errno is not None:
            raise
        raise UserError(not_loadable(name_or_path, allow_download, e)) from e
    except ValueError as e:
        if isinstance(e, UserError) or not any(k in str(e) for k in ("trust_remote_code", "Unrecognized model")):
            raise
        raise UserError(not_loadable(name_or_path, allow_download, e)) from e


def load_config(name_or_path: str, allow_download: bool = False, trust_remote_code: bool = False):
    """A model's config alone (no weights)."""
    from transformers import AutoConfig

    with model_errors(name_or_path, allow_download):
        return AutoConfig.from_pretrained(materialize(name_or_path), local_files_only=local_files_only(allow_download),
                                          trust_remote_code=trust_remote_code)


def load_tokenizer(name_or_path: str, allow_download: bool = False, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    with model_errors(name_or_path, allow_download):
        tok = AutoTokenizer.from_pretrained(materialize(name_or_path),
                                            local_files_only=local_files_only(allow_download),
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
    from transformers import AutoModelForCausalLM

    device = device or default_device()
    config = load_config(name_or_path, allow_download, trust_remote_code)
    for k, v in (config_overrides or {}).items():
        setattr(config, k, v)
    with model_errors(name_or_path, allow_download):
        model = AutoModelForCausalLM.from_pretrained(
            materialize(name_or_path), config=config, dtype=pick_dtype(dtype, device),
            attn_implementation=attn_implementation, local_files_only=local_files_only(allow_download),
            trust_remote_code=trust_remote_code)
    return model.to(device).eval()
