"""Eval results are keyed by model: one folder per label, owned by one model.

`<eval_dir>/<label>/` holds every result of one model (probes/, needle/, nll/, longbench/, ...) and
its `model.json` names that model (`core.eval_layout.EvalModelFiles`). The label is `--label` (a name, never
a path: `core.eval_layout.check_label`), else `model_label(model)` (the last path component), or the stage's
`checkpoint` / `base`. A command that would put another model's results into a label's folder stops
with a `UserError` naming both models, instead of replacing (or, worse, reusing) the first model's
predictions.

Inside a folder, a prediction line is reused only for the same request: its hash covers the prompt,
the generation length and the settings, among them `model_identity(model)`: the model's name and,
for a model a longcurate step made (a folder with a `.done` marker, such as the trained checkpoint),
that step's settings, so a checkpoint trained again in place with other settings is predicted again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longcurate.core.errors import UserError
from longcurate.core.eval_layout import EvalModelFiles, model_label
from longcurate.core.jsonl import done_marker, dumps, read_json_if_valid, write_json
from longcurate.eval.model import EvalModel, LazyModel, ModelRun, make_model

if TYPE_CHECKING:
    from longcurate.eval.config import EvalRunConfig


def model_identity(model: str) -> dict[str, Any]:
    """What names a model in a prediction's request hash: `{"model": name}`, plus `made_with` (a digest
    of the settings in its `<folder>.done` marker) for a model folder a longcurate step finished."""
    ident: dict[str, Any] = {"model": model}
    marker = read_json_if_valid(done_marker(model)) if model and Path(model).is_dir() else None
    if isinstance(marker, dict) and isinstance(marker.get("params"), dict):
        ident["made_with"] = hashlib.sha256(dumps(marker["params"]).encode("utf-8")).hexdigest()[:16]
    return ident


def owner_name(model: str) -> str:
    """The model as its folder records it: a local path made absolute (two spellings of one folder are
    one model), anything else (an alias, a Hub id) as given."""
    path = Path(model)
    return str(path.resolve()) if path.exists() else model


def claim(files: EvalModelFiles, model: str) -> EvalModelFiles:
    """One label's results folder for `model`: recorded in its `model.json` on first use; a folder
    that holds another model's results raises a UserError."""
    recorded = read_json_if_valid(files.owner)
    name = owner_name(model)
    if isinstance(recorded, dict) and recorded.get("model") == name:
        return files
    if isinstance(recorded, dict) and recorded.get("model"):
        raise UserError(f"{files.folder} holds the results of {recorded['model']}, not of {model}: give this "
                        f"model's results another --label (or delete {files.folder} to evaluate {model} there)")
    write_json(files.owner, {"model": name})
    return files


def results_folder(cfg: EvalRunConfig, label: str | None, model: str) -> EvalModelFiles:
    """`<eval_dir>/<label>/`, claimed for `model` (label default: `model_label(model)`)."""
    return claim(cfg.layout().evals.model(label or model_label(model)), model)


def check_loadable(cfg: EvalRunConfig, model: str) -> None:
    """A model the local backends (hf, vllm) cannot load stops here, in one line naming it and why
    (`core.models`), before its label's folder is made: no empty `eval/<label>/` is left behind. Only
    its config is read; the weights load on first use. A served model (openai) is the server's."""
    if cfg.eval.generate.backend in ("hf", "vllm"):
        from longcurate.core.models import load_config

        load_config(model, allow_download=cfg.allow_download, trust_remote_code=cfg.trust_remote_code)


def model_run(cfg: EvalRunConfig, label: str | None, model: str, backend: EvalModel | None = None) -> ModelRun:
    """One model's evaluation under its label (claimed for it): the model interface is `backend` when
    given, else the configured backend, built on first use and shared by every task of the label."""
    if backend is None:
        check_loadable(cfg, model)
    files = results_folder(cfg, label, model)
    return ModelRun(cfg, files.folder.name, model, files, backend or LazyModel(lambda: make_model(cfg, model)))


__all__ = ["model_identity", "owner_name", "claim", "results_folder", "check_loadable", "model_run"]
