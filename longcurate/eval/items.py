"""The eval item files, shared by every evaluated model: `probes.jsonl` and `needle.jsonl` under the run's
eval folder, each a step of `core.runner` whose settings name what decides its text (sizes, seed,
tokenizer, corpus and the holdout part read), so a build is locked, skipped when complete and redone
when its settings change.

`eval build` (and the stage, `eval run`) build them to their settings; a command that only reads
them (`eval probes`, `eval needle`, `eval nll`) uses the file `eval build` made, whatever settings it
was built with, and says which of its own differ (`reuse_built`), rather than replacing it with items
of its defaults. Only a file of an older item format is rebuilt.

Their text is held out from training: when synth may read the same corpus (`core.holdout.partitioned`
on `eval.corpus` and `synth.corpus.path`), probes and needle haystacks read only its eval part (see
`sources.EvalCorpus`); a corpus given to eval alone is read whole.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from longcurate.core.completion import describe_change
from longcurate.core.jsonl import Rejects, done_marker, write_jsonl
from longcurate.core.runner import StepRun, StepSpec, run_step
from longcurate.eval.sources import EvalCorpus

if TYPE_CHECKING:
    from longcurate.eval.config import EvalRunConfig

log = logging.getLogger("longcurate.eval")

# The item files' format version: 2 = sentences from core.text's splitter, articles from core.wiki;
# 3 = the corpus's eval part only, answers and keys absent from its train part, identifier-named code
# answers, one unit per answer within a context.
ITEM_FORMAT = 3


def eval_corpus(cfg: EvalRunConfig) -> EvalCorpus:
    """The text eval's items are made of: `eval.corpus`, kept to its eval part when synth reads it too."""
    return EvalCorpus.of(cfg.eval.corpus, cfg.synth.corpus.path, cfg.holdout)


def probes_step(cfg: EvalRunConfig) -> StepSpec:
    """probes.jsonl, policy `redo`: items are cheap to rebuild and every prediction made from an old
    item is recognised by its request hash and redone, so other settings simply rebuild the file."""
    p = cfg.eval.probes
    settings = {"tasks": list(p.tasks), "context_tokens": p.context_tokens, "num_positions": p.num_positions,
                "num_sets": p.num_sets, "seed": cfg.seed, **eval_corpus(cfg).settings(), "tokenizer": cfg.model,
                "format": ITEM_FORMAT}
    if p.task_positions:
        settings["task_positions"] = dict(p.task_positions)
    if p.pieces_dir:  # FILM's raw pieces: the folder and the digest of each file read
        from longcurate.eval.pieces import pieces_settings

        settings["pieces"] = pieces_settings(p.pieces_dir, p.tasks)
    return StepSpec("the probe items", cfg.layout().probes, settings, on_change="redo")


def needle_step(cfg: EvalRunConfig) -> StepSpec:
    """needle.jsonl, policy `redo` (as probes_step, for the same reason)."""
    n = cfg.eval.needle
    settings = {"lengths": list(n.lengths), "depths": list(n.depths), "needle": n.needle, "question": n.question,
                "key_words": list(n.key_words), "seed": cfg.seed, **eval_corpus(cfg).settings(),
                "tokenizer": cfg.model, "format": ITEM_FORMAT}
    return StepSpec("the needle items", cfg.layout().needle, settings, on_change="redo")


def ensure_probes(cfg: EvalRunConfig, tokenizer_loader: Callable[[], Any] | None = None, *,
                  rebuild: bool = False) -> Path:
    """`probes.jsonl`: the user's, or the one built here when complete (with any settings, unless
    `rebuild`: then only with these), else built now; its path."""
    from longcurate.eval import probes

    spec = probes_step(cfg)
    if given_by_user(spec) or (not rebuild and reuse_built(spec)):
        return spec.output

    def build(run: StepRun) -> dict[str, Any]:
        p = cfg.eval.probes
        tok = (tokenizer_loader or (lambda: item_tokenizer(cfg)))()
        with Rejects(run.rejected) as rejects:  # the skipped units, with the reason
            items, stats = probes.build_probes(
                tok, tasks=p.tasks, context_tokens=p.context_tokens, num_positions=p.num_positions,
                num_sets=p.num_sets, seed=cfg.seed, corpus=eval_corpus(cfg),
                on_skip=lambda pid, reason: rejects.add(reason, file=str(run.output), record_id=pid),
                pieces=p.pieces_dir, task_positions=p.task_positions)
        write_jsonl(run.output, (it.to_dict() for it in items))
        log.info("probes: %d items -> %s (skipped as ambiguous: %s)", stats.items, run.output,
                 stats.skipped_ambiguous or 0)
        return {"items": stats.items, "skipped_ambiguous": stats.skipped_ambiguous,
                "context_tokens": stats.context_tokens}

    run_step(spec, build)
    return spec.output


def ensure_needles(cfg: EvalRunConfig, tokenizer_loader: Callable[[], Any] | None = None, *,
                   rebuild: bool = False) -> Path:
    """`needle.jsonl`, as `ensure_probes`."""
    from longcurate.eval.needle import build_needles

    spec = needle_step(cfg)
    if given_by_user(spec) or (not rebuild and reuse_built(spec)):
        return spec.output

    def build(run: StepRun) -> dict[str, Any]:
        n = cfg.eval.needle
        tok = (tokenizer_loader or (lambda: item_tokenizer(cfg)))()
        items = build_needles(tok, lengths=n.lengths, depths=n.depths, needle=n.needle, question=n.question,
                              key_words=n.key_words, seed=cfg.seed, corpus=eval_corpus(cfg))
        write_jsonl(run.output, (it.to_dict() for it in items))
        log.info("needle: %d items -> %s", len(items), run.output)
        return {"items": len(items)}

    run_step(spec, build)
    return spec.output


def given_by_user(spec: StepSpec) -> bool:
    """An item file with no completion marker was not built here: it is the user's (`--probes FILE`,
    `eval.needle.output`), read as it is (any format `core.reader.read_rows` reads) and never rewritten.
    Our builds always leave a marker (written right after the file, by the step runner)."""
    output, marker = Path(spec.output), done_marker(spec.output)
    if output.exists() and not marker.exists():
        log.info("%s: no %s, so not built here: read as given", output, marker.name)
        return True
    return False


def reuse_built(spec: StepSpec) -> bool:
    """Whether an item file built here (`eval build`), complete and of this item format, is read as it
    is by a command that only evaluates on it, though its settings differ from this command's: the
    differences are logged, with how to rebuild it. False when it is missing, incomplete, of another
    format, or built with these very settings (the step runner then simply skips it)."""
    recorded = spec.completion.recorded_settings()
    if not isinstance(recorded, dict) or recorded.get("format") != ITEM_FORMAT or not Path(spec.output).exists():
        return False
    wanted = spec.completion.settings
    if recorded == wanted:
        return False
    log.warning("%s was built with other settings than this command's (%s): evaluating on it as built; "
                "`longcurate eval build` with these settings rebuilds it", spec.output, describe_change(recorded, wanted))
    return True


# The shared item files, each with its builder (`eval build --only` takes these names).
ITEM_FILES: dict[str, Callable[..., Path]] = {"probes": ensure_probes, "needle": ensure_needles}


def item_tokenizer(cfg: EvalRunConfig) -> Any:
    """The tokenizer that measures the item files' lengths: the run's model's."""
    from longcurate.core.models import load_tokenizer

    return load_tokenizer(cfg.model, allow_download=cfg.allow_download, trust_remote_code=cfg.trust_remote_code)


def build_items(cfg: EvalRunConfig, kinds: Iterable[str]) -> dict[str, Path]:
    """The item files of `kinds` (probes, needle: what `tasks.Task.items` names), built when missing or
    made with other settings; the tokenizer is loaded once, and only when a file is built."""
    tokenizer = functools.cache(lambda: item_tokenizer(cfg))
    wanted = set(kinds)
    return {kind: build(cfg, tokenizer, rebuild=True) for kind, build in ITEM_FILES.items() if kind in wanted}


__all__ = ["ITEM_FORMAT", "ITEM_FILES", "eval_corpus", "probes_step", "needle_step", "ensure_probes", "ensure_needles",
           "build_items", "item_tokenizer", "given_by_user", "reuse_built"]
