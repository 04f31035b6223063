"""What training leaves on disk: which Trainer checkpoint a resume starts from, where the optimizer
state is kept, and the dtype of the final model.

A checkpoint is complete when its `trainer_state.json` reads back (the Trainer writes it last), it holds
model weights, every safetensors file is as long as its header says, and every torch file (optimizer,
scheduler, RNG state: zip archives) ends with its directory. A run killed while saving leaves one that
is not: a resume moves it aside (`<checkpoints>/incomplete/checkpoint-N.incomplete-<k>`, outside the
Trainer's `checkpoint-*` rotation) with a warning and starts from the newest complete one.

Optimizer state (twice the fp32 weights under Adam) is only needed to resume: after each save it is
removed from every checkpoint but the newest (`PruneOptimizerState`), and from that one too once the
final model is written. The final model is saved in the training dtype (`train.save_dtype: auto`:
bf16 for bf16 mixed precision), not in the fp32 of the master weights.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import zipfile
from pathlib import Path

from longcurate.core.jsonl import write_json

log = logging.getLogger("longcurate.train")

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
OPTIMIZER_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt")
SAVE_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def checkpoints(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """The folder's `checkpoint-N` folders, newest (highest N) first."""
    p = Path(folder)
    if not p.is_dir():
        return []
    found = [(int(m.group(1)), d) for d in p.iterdir() if d.is_dir() and (m := CHECKPOINT.match(d.name))]
    return sorted(found, reverse=True)


def safetensors_problem(path: Path) -> str | None:
    """Why a safetensors file is not whole (None when it is): its size against its header's offsets."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return f"{path.name}: truncated ({size} bytes)"
        (n,) = struct.unpack("<Q", head)
        if 8 + n > size:
            return f"{path.name}: truncated header"
        try:
            header = json.loads(f.read(n))
        except (ValueError, UnicodeDecodeError):
            return f"{path.name}: unreadable header"
    end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    return None if size == 8 + n + end else f"{path.name}: {size} bytes, its header needs {8 + n + end}"


def _torch_files(ckpt: Path) -> list[Path]:
    return [f for f in ckpt.rglob("*") if f.is_file() and f.suffix in (".pt", ".pth", ".bin")]


def has_weights(ckpt: Path) -> bool:
    return any((ckpt / w).exists() for w in WEIGHTS) or any(ckpt.glob("global_step*")) \
        or any(ckpt.glob("pytorch_model_fsdp*"))


def has_optimizer_state(ckpt: Path) -> bool:
    return (ckpt / "optimizer.pt").exists() or any(ckpt.glob("global_step*/*optim_states.pt")) \
        or any(ckpt.glob("optimizer_*"))


def checkpoint_problems(ckpt: Path) -> list[str]:
    """Why `ckpt` cannot be resumed from as it is (empty when it is complete)."""
    try:
        state = json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
        problems = [] if isinstance(state, dict) and "global_step" in state else ["trainer_state.json: no global_step"]
    except (OSError, ValueError):
        problems = ["trainer_state.json missing or unreadable"]
    try:
        if not has_weights(ckpt):
            problems.append("no model weights")
        problems += [p for f in sorted(ckpt.glob("*.safetensors")) if (p := safetensors_problem(f))]
        problems += [f"{f.relative_to(ckpt)}: truncated" for f in _torch_files(ckpt) if not zipfile.is_zipfile(f)]
        index = ckpt / "model.safetensors.index.json"
        if index.exists():
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            problems += [f"{s}: missing" for s in sorted(shards) if not (ckpt / s).exists()]
    except (OSError, ValueError, KeyError) as e:
        problems.append(f"unreadable: {e}")
    return problems


def move_aside(ckpt: Path) -> Path:
    """`train/checkpoint-N` -> `train/incomplete/checkpoint-N.incomplete-<k>` (first free k)."""
    target_dir = ckpt.parent / "incomplete"
    target_dir.mkdir(exist_ok=True)
    k = 1
    while (target_dir / f"{ckpt.name}.incomplete-{k}").exists():
        k += 1
    target = target_dir / f"{ckpt.name}.incomplete-{k}"
    os.replace(ckpt, target)
    return target


def resumable_checkpoint(folder: str | os.PathLike, *, need_optimizer: bool = True,
                         move: bool = True) -> str | None:
    """The newest complete checkpoint that holds what a resume needs (its optimizer state, unless the
    run saves models only). Incomplete ones are moved aside with a warning (`move`; only one process
    of a launch moves, the others skip them); complete ones without optimizer state (a finished run's)
    are passed over."""
    for _, ckpt in checkpoints(folder):
        problems = checkpoint_problems(ckpt)
        if problems:
            if move:
                log.warning("checkpoint %s is incomplete (%s); moved to %s", ckpt, "; ".join(problems[:3]),
                            move_aside(ckpt))
            continue
        if need_optimizer and not has_optimizer_state(ckpt):
            log.info("checkpoint %s holds no optimizer state (its run finished); not resumed from", ckpt)
            continue
        return str(ckpt)
    return None


def remove_optimizer_state(ckpt: Path) -> int:
    """Delete what only a resume reads (optimizer, scheduler, scaler, RNG state); bytes freed."""
    doomed = [ckpt / n for n in OPTIMIZER_FILES] + list(ckpt.glob("rng_state*.pth")) \
        + list(ckpt.glob("global_step*/*optim_states.pt")) + list(ckpt.glob("optimizer_*"))
    freed = 0
    for p in doomed:
        if p.is_dir():
            freed += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
            shutil.rmtree(p)
        elif p.exists():
            freed += p.stat().st_size
            p.unlink()
    return freed


def prune_optimizer_state(folder: str | os.PathLike, keep: str | os.PathLike | None) -> int:
    """Remove the optimizer state of every complete checkpoint but `keep`; bytes freed."""
    keep_path = Path(keep).resolve() if keep else None
    return sum(remove_optimizer_state(c) for _, c in checkpoints(folder)
               if c.resolve() != keep_path and not checkpoint_problems(c))


def prune_callback(folder: str | os.PathLike):
    """A TrainerCallback that, after each save (on the main process), keeps optimizer state in the
    checkpoint just written only."""
    from transformers import TrainerCallback

    class PruneOptimizerState(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                newest = Path(folder) / f"checkpoint-{state.global_step}"
                if newest.is_dir():
                    prune_optimizer_state(folder, newest)

    return PruneOptimizerState()


def save_dtype_name(save_dtype: str, precision: str) -> str:
    """`train.save_dtype` (auto | bf16 | fp16 | fp32) as a torch dtype name; auto = the training dtype."""
    choice = ("bf16" if precision == "bf16" else "fp32") if save_dtype == "auto" else save_dtype
    return SAVE_DTYPES[choice]


def cast_saved_model(folder: str | os.PathLike, dtype_name: str) -> None:
    """Rewrite a saved model's floating-point tensors in `dtype_name` (each safetensors file atomically)
    and record the dtype in its config.json (and the new size in a sharded model's index)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    dtype = getattr(torch, dtype_name)
    folder = Path(folder)
    total = 0
    for f in sorted(folder.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as sf:
            metadata = sf.metadata()
        tensors = load_file(str(f))
        cast = {k: t.to(dtype).contiguous() if t.is_floating_point() else t for k, t in tensors.items()}
        total += sum(t.numel() * t.element_size() for t in cast.values())
        if any(t.dtype != cast[k].dtype for k, t in tensors.items()):
            tmp = f.with_name(f".{f.name}.tmp")
            try:
                save_file(cast, str(tmp), metadata=metadata)
            except BaseException:
                tmp.unlink(missing_ok=True)  # a full disk leaves no half-written copy behind
                raise
            os.replace(tmp, f)
    _update_json(folder / "config.json", lambda c: c.update(
        {"dtype": dtype_name, **({"torch_dtype": dtype_name} if "torch_dtype" in c else {})}))
    _update_json(folder / "model.safetensors.index.json", lambda d: d.setdefault("metadata", {}).update(total_size=total))


def _update_json(path: Path, change) -> None:
    """Apply `change` to a JSON file's mapping and write it back as transformers writes its files."""
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        change(data)
        write_json(path, data, sort_keys=True)  # atomic; a non-finite number as null, never a bare NaN


__all__ = ["checkpoints", "checkpoint_problems", "resumable_checkpoint", "move_aside", "prune_optimizer_state",
           "remove_optimizer_state", "prune_callback", "save_dtype_name", "cast_saved_model", "has_optimizer_state"]
