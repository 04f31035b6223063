"""Per-item outcomes of one evaluated model, read from the files its eval stage wrote:

- `nll`: `<eval>/<label>/nll/items.jsonl`, one line per item `{id, source, task, position, nll,
  n_tokens}`: the answer's mean NLL (nats per token) given its long context; lower is better.
- `probes`: `<eval>/<label>/probes/predictions.jsonl`, one line per probe with its `score` (generation
  accuracy, 0..1) and `key_token_fraction` (where the key sits); higher is better.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from longcurate.core.errors import UserError
from longcurate.core.jsonl import read_jsonl

# measure -> (file under the model's eval folder, which direction is better, what the value is)
MEASURE_FILES = {"nll": Path("nll") / "items.jsonl", "probes": Path("probes") / "predictions.jsonl"}
BETTER = {"nll": "lower", "probes": "higher"}
UNITS = {"nll": "answer NLL, nats per answer token", "probes": "probe generation accuracy (0-1)"}


@dataclass(frozen=True)
class Outcome:
    """One item's value for one model; `key` is unique across sources (`probe:<id>`, `heldout:<id>`)."""

    key: str
    source: str
    task: str
    position: float | None  # where the evidence sits in the context, 0 = start, 1 = end
    value: float


def parse_nll(obj: dict, where: str) -> Outcome:
    try:
        pos = obj.get("position")
        return Outcome(f"{obj['source']}:{obj['id']}", str(obj["source"]), str(obj.get("task", "")),
                       None if pos is None else float(pos), float(obj["nll"]))
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{where}: not an nll item line ({e!r})") from None


def parse_probe(obj: dict, where: str) -> Outcome:
    try:
        pos = obj.get("key_token_fraction")
        return Outcome(f"probe:{obj['id']}", "probe", str(obj.get("task", "")),
                       None if pos is None else float(pos), float(obj["score"]))
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{where}: not a probe prediction line ({e!r})") from None


def read_outcomes(model_eval_dir: Path, measure: str) -> dict[str, Outcome]:
    """Every item's outcome of `measure` for one model (a later line for the same item wins)."""
    path = Path(model_eval_dir) / MEASURE_FILES[measure]
    if not path.exists():
        raise UserError(f"{path} not found: the run's eval did not measure {measure}")
    parse = parse_nll if measure == "nll" else parse_probe
    out = {}
    for line, obj in read_jsonl(path):
        o = parse(obj, f"{path}:{line}")
        out[o.key] = o
    return out


__all__ = ["Outcome", "MEASURE_FILES", "BETTER", "UNITS", "read_outcomes"]
