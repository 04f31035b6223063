"""The models a scoring job runs: θ_B (the long model) and, for HMG, θ_A (the short one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from longcurate.select.hmg import ShortModel
from longcurate.select.steps import model_b_name

if TYPE_CHECKING:
    from longcurate.select.config import SelectRun
    from longcurate.core.engine import ScoringEngine


@dataclass
class Engines:
    """θ_B's scoring engine and name; for HMG also θ_A as a ShortModel and the window it can use
    (the diagnostics' "gold beyond the window" label). `short` is None for CAM."""

    engine_b: ScoringEngine
    name_b: str
    short: ShortModel | None = None
    short_window: int | None = None


def max_positions(name: str, allow_download: bool, trust_remote_code: bool = False) -> int:
    """A model's max_position_embeddings, from its config alone (no weights loaded)."""
    from longcurate.core.models import load_config

    return int(load_config(name, allow_download, trust_remote_code).max_position_embeddings)


def load_engines(cfg: SelectRun, kind: str, show_progress: bool = False) -> Engines:
    """θ_B's engine, and for HMG θ_A as a ShortModel (its own checkpoint / RoPE, or θ_B windowed)."""
    from longcurate.core.models import load_model, load_tokenizer
    from longcurate.core.engine import ScoringEngine
    from longcurate.select.hmg import check_same_tokenizer, rope_overrides, short_window_of

    sel = cfg.select
    name_b = model_b_name(cfg)
    if kind == "hmg" and sel.model_a and sel.model_a != name_b:  # checked before any weights load
        # a separate θ_A must tokenize as θ_B: HMG compares the two models' perplexity of the same tokens
        check_same_tokenizer(load_tokenizer(sel.model_a, cfg.allow_download, cfg.trust_remote_code),
                             load_tokenizer(name_b, cfg.allow_download, cfg.trust_remote_code), sel.model_a, name_b)
    kw = dict(dtype=sel.dtype, device=sel.device, allow_download=cfg.allow_download,
              trust_remote_code=cfg.trust_remote_code)
    model_b = load_model(name_b, **kw)
    # the engine's own bar advances per batch (samples/s, ETA) under the chunk bar of `run_joint_parts`
    eng = dict(batch_tokens=sel.batch_tokens, max_batch_size=sel.max_batch_size, show_progress=show_progress)
    engine_b = ScoringEngine(model_b, **eng)
    if kind != "hmg":
        return Engines(engine_b, name_b)
    if sel.model_a is None and sel.rope_scaling is None:  # then `select.window` is set (SelectConfig)
        short = ShortModel(f"{name_b}@window{sel.window}", engine_b, sel.window, same_as_b=True)
        model_a = model_b
    else:
        name_a = sel.model_a or name_b
        overrides = (rope_overrides(name_a, sel.rope_scaling, cfg.allow_download, cfg.trust_remote_code)
                     if sel.rope_scaling else None)
        model_a = load_model(name_a, config_overrides=overrides, **kw)
        dyn = bool(sel.rope_scaling) and "dynamic" in str(sel.rope_scaling.get("rope_type", sel.rope_scaling.get("type")))
        # Dynamic NTK rescales RoPE by the longest sequence in the batch: score θ_A one sample at a time.
        engine_a = ScoringEngine(model_a, **{**eng, "max_batch_size": 1 if dyn else sel.max_batch_size})
        label = name_a + (f"+rope{sel.rope_scaling}" if sel.rope_scaling else "")
        if sel.window:
            label += f"@window{sel.window}"
        short = ShortModel(label, engine_a, sel.window, same_as_b=False)
    return Engines(engine_b, name_b, short, short_window_of(sel.window, model_a))


def lazy(load: Callable[[], Engines]) -> Callable[[], Engines]:
    """`load` on the first call only, so a shard with nothing left to score never loads a model."""
    loaded: list[Engines] = []

    def get() -> Engines:
        if not loaded:
            loaded.append(load())
        return loaded[0]

    return get


__all__ = ["Engines", "load_engines", "max_positions", "lazy"]
