"""One runner owns the lifecycle of every step, the way datatrove's executor wraps each pipeline step.

A step *declares* what it writes and what decides its content (`StepSpec`: output, settings with the
digests of its inputs, a policy on a change, whether it appends as it goes); its work is a plain
function that writes the output and returns its stats. `run_step` does everything around it, in one
order, for every stage:

1. lock the output (and any other paths the step names), so a second run on it stops at once;
2. skip when the output is complete with equal settings (the `.done` marker's `params`), returning
   the recorded stats with `skipped: True`;
3. otherwise apply the step's policy to output made with other settings: `redo` discards it,
   `refuse` stops with `SettingsChanged` naming the keys that differ (`core.completion.Step`),
   unless that output holds no record (a run that stopped on a bad field, or whose every input
   record was rejected, binds nobody to its settings); a resumable step records its settings before
   the first record (`<output>.settings.json`) and is told whether partial output made under the
   same settings is there to extend;
4. drop the old marker and the old quarantine (a fresh, non-resumed run rebuilds both);
5. run the work; it writes its output atomically (`core.jsonl`) and returns stats;
6. write the marker last, unless the work reports itself incomplete (`complete: False` in its stats,
   with `pending` / `failed` counts): then no marker is written and the stats say what is left, so
   the command exits with the shared "incomplete" code (`core.errors.EXIT_INCOMPLETE`) and a rerun
   picks the step up again.

`run_steps` does the same for several outputs one pass makes together (the joint HMG + CAM pass).
No module outside `core` calls the completion primitives (`is_complete`, `begin`, `unfinish`,
`finish`, `discard`) or takes an output lock itself; `tests/test_lifecycle.py` checks it.
"""

from __future__ import annotations

import functools
import logging
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from longcurate.core.completion import Policy, Step
from longcurate.core.errors import Incomplete, SettingsChanged
from longcurate.core.jsonl import rejected_path
from longcurate.core.lock import output_lock

log = logging.getLogger("longcurate.runner")


@dataclass(frozen=True)
class StepSpec:
    """What a step writes, what decides it, and how it behaves on a change or a resume.

    - `settings`: the values that decide the output's content, including digests of the inputs it
      reads (`core.reader.source_digest`): equal settings mean an equal output, so the step is skipped.
    - `on_change`: `redo` (cheap, derived outputs) or `refuse` (expensive or appended-to outputs).
    - `resumable`: the work appends records as it goes and can extend partial output made under the
      same settings; the settings are recorded before the first record is written.
    - `begun_at`: where a resumable step records those settings (default `<output>.settings.json`);
      the shards of one score file share the score file's, so no shard is begun under settings
      another was begun with; training records them beside its checkpoints.
    - `partial`: whether partial output of the step is there (default: the output holds a record);
      for output that lives elsewhere (the other shards' part files, the Trainer's checkpoints).
      It only reads (`step_state` calls it too, without the lock). Settings recorded by a run that
      left no record bind nobody: a corrected rerun with other settings goes ahead, even under `refuse`.
    - `also_outputs`: further files the step writes; the step is complete only when they exist too.
    - `also_locks`: further paths held while the step runs (e.g. the trained model's checkpoints).
    - `done_when`: an extra test of a finished output's recorded stats (e.g. "holds as many samples as
      asked for"); when it fails, the step runs again as a resume of that output.
    - `quarantine`: the step writes `<output>.rejected.jsonl`; a fresh run starts it anew.
    - `main_process`: False on the non-main ranks of a multi-process launch: they do their share of
      the work but take no lock and write no marker (rank 0 owns both).
    """

    name: str
    output: Path
    settings: dict[str, Any]
    on_change: Policy = "redo"
    resumable: bool = False
    begun_at: Path | None = None
    partial: Callable[[], bool] | None = None
    also_outputs: tuple[Path, ...] = ()
    also_locks: tuple[Path, ...] = ()
    done_when: Callable[[dict[str, Any]], bool] | None = None
    quarantine: bool = True
    main_process: bool = True

    @property
    def completion(self) -> Step:
        return Step(Path(self.output), self.settings, self.on_change, name=self.name, begun_at=self.begun_at)


@dataclass
class StepRun:
    """What the work is told: whether partial output made under these settings is there to extend
    (`resumed`), and the stats of a finished output that `done_when` sent back to work (`previous`)."""

    spec: StepSpec
    resumed: bool = False
    previous: dict[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> Path:
        return Path(self.spec.output)

    @property
    def rejected(self) -> Path:
        """The step's quarantine file, beside its output."""
        return rejected_path(self.spec.output)


def is_incomplete(stats: dict[str, Any] | None) -> bool:
    """Work that returns `complete: False` left items pending or failed: it gets no marker."""
    return isinstance(stats, dict) and stats.get("complete") is False


def holds_records(path: str | Path) -> bool:
    """Whether an output holds anything: a non-empty file, or a folder with an entry."""
    out = Path(path)
    if out.is_dir():
        return any(out.iterdir())
    return out.is_file() and out.stat().st_size > 0


def step_state(spec: StepSpec) -> dict[str, Any] | None:
    """The recorded stats of a step that is complete with these settings (None when it is not);
    for a caller that only reads what a step made (a report, an ablation's bookkeeping). Under the
    `refuse` policy, output finished with other settings raises `SettingsChanged`, unless it holds
    no record."""
    step = spec.completion
    if _unbound(spec, step, functools.partial(_holds, spec)) or not step.is_complete():
        return None
    if any(not Path(p).exists() for p in spec.also_outputs):
        return None
    stats = step.stats()
    if spec.done_when is not None and not spec.done_when(stats):
        return None
    return stats


def finished_stats(output: str | Path) -> dict[str, Any] | None:
    """The stats a finished output's marker records, whatever settings made it (None while it is not
    finished): for a caller that only reads what another stage's step made (an ablation's tokens
    table, whether an arm has trained models) and never decides whether to redo it."""
    step = Step(Path(output), {})
    return step.stats() if step.recorded_settings() is not None else None


def run_step(spec: StepSpec, work: Callable[[StepRun], dict[str, Any] | None]) -> dict[str, Any]:
    """Run `work` under the step's lifecycle (module docstring); returns its stats, the recorded ones
    with `skipped: True` when the output was already complete."""
    return run_steps([spec], lambda runs: {spec.name: work(runs[0])})[spec.name]


def run_steps(specs: Sequence[StepSpec], work: Callable[[list[StepRun]], dict[str, dict[str, Any] | None]]
              ) -> dict[str, dict[str, Any]]:
    """Several outputs that one pass makes together (HMG's and CAM's part files from one forward per
    sample), each with its own settings, policy and marker: every output is locked and checked first;
    `work` gets the runs of those still to make and returns their stats by step name (it is not
    called when every output is complete). Returns every step's stats by name."""
    if len({s.name for s in specs}) != len(specs):
        raise ValueError(f"step names repeat: {[s.name for s in specs]}")
    with ExitStack() as held:
        for spec in specs:
            if spec.main_process:
                for path in (spec.output, *spec.also_locks):
                    held.enter_context(output_lock(path))
        results: dict[str, dict[str, Any]] = {}
        runs = []
        for spec in specs:
            state = _check(spec)
            if isinstance(state, StepRun):
                runs.append(state)
            else:
                results[spec.name] = state
        for run in runs:
            _open(run)
        produced = work(runs) if runs else {}
        for run in runs:
            results[run.spec.name] = _conclude(run.spec, dict(produced.get(run.spec.name) or {}))
    return {spec.name: results[spec.name] for spec in specs}


def _check(spec: StepSpec) -> StepRun | dict[str, Any]:
    """The recorded stats (`skipped: True`) of a step complete with these settings, else its run:
    resumable output begun under these settings is resumed, under other settings refused or redone."""
    step = spec.completion

    @functools.cache
    def held() -> bool:  # looked for only when needed: `partial` may read (or tidy) many files
        return _holds(spec)

    if _unbound(spec, step, held):
        if not spec.main_process:  # rank 0 drops what binds nobody and starts afresh
            return StepRun(spec)
        step.unfinish()
        if spec.resumable:
            step.begun_at.unlink(missing_ok=True)
    previous: dict[str, Any] = {}
    if step.is_complete() and all(Path(p).exists() for p in spec.also_outputs):
        previous = step.stats()
        if spec.done_when is None or spec.done_when(previous):
            log.info("%s: %s is complete; nothing to do", spec.name, spec.output)
            return {**previous, "skipped": True}
    return StepRun(spec, _begin(spec, step, held()) if spec.resumable else False, previous)


def _holds(spec: StepSpec) -> bool:
    """Whether the step's output, or its partial output elsewhere, holds a record."""
    return holds_records(spec.output) or (spec.partial is not None and spec.partial())


def _unbound(spec: StepSpec, step: Step, held: Callable[[], bool]) -> bool:
    """Settings recorded (finished, or begun by a resumable step) by a run that left no record bind
    nobody: when they differ from these and nothing is `held`, a corrected rerun goes ahead, even
    under `refuse`."""
    begun = step.begun_settings() if spec.resumable else None
    recorded = [s for s in (step.recorded_settings(), begun) if s is not None]
    return any(s != step.settings for s in recorded) and not held()


def _begin(spec: StepSpec, step: Step, held: bool) -> bool:
    """Record a resumable step's settings before its first record; True when partial output made
    under the same settings is there to extend. Output on disk that records no settings (made by
    hand or by an older version) is refused rather than mixed into."""
    out = Path(spec.output)
    if held and out.is_file() and holds_records(out) and step.begun_settings() is None:
        raise SettingsChanged(f"{out} exists but records no settings ({step.begun_at.name} is missing); "
                              f"use another output (or output_dir), or delete it to redo {spec.name}")
    if not spec.main_process:
        return held and step.begun_at.exists()
    if not held:
        step.begun_at.unlink(missing_ok=True)  # settings of a run that wrote nothing bind nobody
    return step.begin()


def _open(run: StepRun) -> None:
    """Drop the old marker and, unless resuming, the old quarantine: the output is about to change."""
    spec = run.spec
    if spec.main_process:
        spec.completion.unfinish()
        if spec.quarantine and not run.resumed:
            rejected_path(spec.output).unlink(missing_ok=True)


def _conclude(spec: StepSpec, stats: dict[str, Any]) -> dict[str, Any]:
    """Write the marker last, unless the work reports itself incomplete."""
    if is_incomplete(stats):
        log.info("%s: incomplete (%s); rerun to finish", spec.name, describe_incomplete(stats) or "items left")
        return stats
    if spec.main_process:
        spec.completion.finish(stats)
    return stats


def incomplete_parts(stats: Any, where: str = "") -> list[str]:
    """Every place in a (nested) stats tree whose work reported itself incomplete, as
    `where: 3 pending, 1 failed (why)`, named by its `output` when the stats give one: what a
    command that ran many steps tells the user at the end."""
    if not isinstance(stats, dict):
        return []
    found = []
    if is_incomplete(stats):
        found.append(f"{stats.get('output') or where or 'run'}: {describe_incomplete(stats) or 'not finished'}")
    for key, value in stats.items():
        if isinstance(value, dict):
            found += incomplete_parts(value, f"{where}.{key}" if where else str(key))
    return found


def raise_if_incomplete(stats: dict[str, Any], what: str) -> None:
    """End a command that finished with items pending or failed: `Incomplete` (the shared exit code),
    naming each unfinished part. Called once, after the command did all the work it could."""
    parts = incomplete_parts(stats)
    if parts:
        raise Incomplete(f"{what} incomplete: " + "; ".join(parts) + " (rerun to retry)")


def describe_incomplete(stats: dict[str, Any]) -> str:
    """`3 pending, 1 failed (why)` from a step's stats (empty when it names no counts); `why` is the
    stats' own account of what stopped it (an endpoint down, a cap reached)."""
    parts = ", ".join(f"{stats[k]} {k}" for k in ("pending", "failed") if stats.get(k))
    return f"{parts} ({stats['why']})" if parts and stats.get("why") else parts


def discard_output(spec: StepSpec) -> None:
    """Remove a step's output, marker and recorded settings (an explicit `--force` style redo)."""
    spec.completion.discard()


__all__ = ["StepSpec", "StepRun", "run_step", "run_steps", "step_state", "finished_stats", "holds_records", "is_incomplete",
           "describe_incomplete", "incomplete_parts", "raise_if_incomplete", "discard_output"]
