"""The samples files of the synth stage and what decides each one's content.

Two streams go through the same pipeline: the training samples (`samples.jsonl`), drawn from the
corpus's train part whenever the corpus is split, and, when `synth.heldout_samples > 0`, held-out IN2
samples (`heldout.jsonl`) for evaluation, drawn from its eval part. A stream names which part of the
corpus it reads, how its samples are named and which seed its draws come from, so the held-out
samples never share a document, an id or a random stream with the training samples.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longcurate.core.config import to_dict
from longcurate.core.holdout import Side, partitioned
from longcurate.core.runner import StepSpec
from longcurate.synth.config import SynthConfig
from longcurate.synth.corpus import corpus_digest
from longcurate.synth.plan import derived_seed

if TYPE_CHECKING:
    from longcurate.synth.config import SynthRun

TRAINING = "synth"
HELDOUT = "heldout"


@dataclass(frozen=True)
class Stream:
    """One samples file: where it goes, how many samples, from which part of the corpus."""

    name: str  # "synth" (training samples) | "heldout"
    prefix: str  # sample ids are <prefix>-000000, ...
    output: Path
    count: int  # samples asked for (after `synth.limit`)
    side: Side | None  # the part of the corpus it reads (None: all of it)
    seed: int  # the seed every draw of the stream comes from
    synth: SynthConfig  # the section it is made with (held-out: long kinds only)


def training_side(cfg: SynthRun) -> Side | None:
    """The training samples keep to the train part when the corpus is partitioned (the bundled one, or
    the one eval reads too) and whenever held-out samples are made from the same corpus."""
    split = cfg.synth.heldout_samples > 0 or partitioned(cfg.synth.corpus.path, cfg.corpora().eval)
    return "train" if split else None


def _count(sc: SynthConfig, asked: int) -> int:
    return asked if sc.limit is None else min(asked, sc.limit)


def training_stream(cfg: SynthRun) -> Stream:
    sc = cfg.synth
    return Stream(TRAINING, "in2", cfg.layout().samples, _count(sc, sc.num_samples), training_side(cfg), cfg.seed, sc)


def heldout_stream(cfg: SynthRun) -> Stream:
    """Held-out samples: the eval part, fine and multi-hop questions only (a short sample is its
    document copied whole, no long-context test)."""
    sc = cfg.synth
    return Stream(HELDOUT, HELDOUT, cfg.layout().heldout, _count(sc, sc.heldout_samples), "eval",
                  derived_seed(cfg.seed, HELDOUT), replace(sc, short_fraction=0.0))


def streams(cfg: SynthRun) -> list[Stream]:
    """What the stage writes, in order."""
    return [training_stream(cfg)] + ([heldout_stream(cfg)] if cfg.synth.heldout_samples > 0 else [])


def holdout_record(cfg: SynthRun, stream: Stream) -> dict[str, Any]:
    """The part of the corpus a stream read, for its settings, stats and the manifest."""
    if stream.side is None:
        return {"side": None}
    return {"side": stream.side, "fraction": cfg.holdout.fraction, "salt": cfg.holdout.salt}


def stream_settings(cfg: SynthRun, stream: Stream) -> dict[str, Any]:
    """What decides a stream's content (not how many, nor how requests are sent and capped): sample
    `i` depends only on these and `i`, so a run with more samples extends a finished file."""
    s = to_dict(stream.synth)
    for k in ("output", "num_samples", "heldout_samples", "heldout_output", "limit", "batch_size", "retry_failed"):
        s.pop(k, None)
    if stream.name == HELDOUT:
        s.pop("short_fraction")  # held-out samples have no short kind
    planted = s.pop("planted")
    if stream.name == TRAINING and planted["shares"]:  # a planted pool is dealt over all its samples,
        s["planted"], s["num_samples"] = planted, stream.count  # so its size decides every sample's type
    for k in ("max_concurrency", "max_retries", "timeout_s", "backoff_initial_s", "backoff_max_s", "max_requests",
              "budget_usd", "cache_dir", "api_key_env", "price_input_per_1m", "price_output_per_1m",
              "max_consecutive_failures"):
        s.get("openai", {}).pop(k, None)  # how requests are sent and capped, not what they return
    return {**_dotted("synth", s), "seed": cfg.seed, "model": cfg.model,
            "corpus_digest": corpus_digest(stream.synth.corpus, cfg.allow_download),
            **_dotted("holdout", holdout_record(cfg, stream))}


def _dotted(prefix: str, tree: dict[str, Any]) -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"prefix.a.b": 1}: a refused change then names the exact config key."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        out.update(_dotted(f"{prefix}.{k}", v) if isinstance(v, dict) else {f"{prefix}.{k}": v})
    return out


def stream_spec(cfg: SynthRun, stream: Stream) -> StepSpec:
    """A samples file (training or held-out) as a step. Policy `refuse`: a file begun or finished with
    other settings is kept and the run stops naming the keys (the samples may have cost API money);
    a partial file with the same settings is resumed (resumable). Settings: `stream_settings` (with
    the holdout split's side, fraction and salt). A finished file counts as done when its marker
    records the count asked for and, with `synth.retry_failed`, no sample the endpoint refused."""
    def done(stats: dict[str, Any]) -> bool:
        retry = stream.synth.retry_failed and stats.get("refused", 0) > 0
        return stats.get("num_samples") == stream.count and not retry

    return StepSpec(stream.name, stream.output, stream_settings(cfg, stream), on_change="refuse", resumable=True,
                    done_when=done)


__all__ = ["Stream", "TRAINING", "HELDOUT", "training_side", "derived_seed", "training_stream", "heldout_stream",
           "streams", "holdout_record", "stream_settings", "stream_spec"]
