"""The names a config may give for how eval reaches a model: the backends (name -> "module:factory",
imported only when chosen; `model.make_model`) and the prompt templates local backends render with
(`render.render_prompt`). Kept apart so that validating a config imports no backend."""

from __future__ import annotations

# name -> "module:factory"; each factory takes (run config, model name) and returns a `model.EvalModel`.
BACKENDS: dict[str, str] = {
    "hf": "longcurate.eval.hf_backend:from_config",
    "openai": "longcurate.eval.openai_backend:from_config",
    "vllm": "longcurate.eval.vllm_backend:from_config",
}
# chat: the tokenizer's chat template (FILM's [INST] when it has none); film: always [INST]; raw: as is.
TEMPLATES = ("chat", "film", "raw")

__all__ = ["BACKENDS", "TEMPLATES"]
