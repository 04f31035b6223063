"""One way to say "this output is complete, and was made with these settings".

Every step of every stage (synth's samples, a score file, the ranked file, a budget set, the mixture,
the tokenized dataset, the trained model, an eval item file, ...) is a `Step`: an output path, the
settings that decide the output's content (including digests of the inputs it read), and one stated
policy for what happens when a later run asks for the same output with other settings:

- `redo`: the old output is stale; the step runs again and replaces it (rank, budgets, mixture, ...);
- `refuse`: the old output is kept and the run stops with a `SettingsChanged` error naming the keys
  that differ (for outputs that are expensive or appended to: samples, scores, a trained model).

The marker `<output>.done` is written last, after the output is closed and fsynced; it holds the
step's stats and, under `params`, its settings. Steps that append as they go (resumable) also record
their settings when they start (`<output>.settings.json`, or the `begun_at` path several writers of
one output share), so a resumed run never mixes records made under other settings into the same file.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from longcurate.core.errors import SettingsChanged
from longcurate.core.jsonl import done_marker, read_json_if_valid, write_json

Policy = Literal["redo", "refuse"]
POLICIES = ("redo", "refuse")


def normalize(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as they read back from JSON (tuples become lists, keys become strings)."""
    return json.loads(json.dumps(settings))


def describe_change(old: dict[str, Any], new: dict[str, Any]) -> str:
    """`key: old -> new` for every key whose value differs."""
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys)


def settings_file(output: str | os.PathLike) -> Path:
    p = Path(output)
    return p.with_name(p.name + ".settings.json")


@dataclass
class Step:
    """A resumable step: its output, the settings that decide it, and its policy on a change."""

    output: Path
    settings: dict[str, Any]
    on_change: Policy = "redo"
    name: str = ""
    begun_at: Path | None = None  # where `begin` records the settings (default <output>.settings.json)

    def __post_init__(self) -> None:
        if self.on_change not in POLICIES:
            raise ValueError(f"on_change must be one of {POLICIES}, got {self.on_change!r}")
        self.output = Path(self.output)
        self.settings = normalize(self.settings)
        self.name = self.name or self.output.name
        self.begun_at = Path(self.begun_at) if self.begun_at is not None else settings_file(self.output)

    def begun_settings(self) -> dict[str, Any] | None:
        """The settings recorded when the output was begun (None when none are)."""
        recorded = read_json_if_valid(self.begun_at)
        return recorded if isinstance(recorded, dict) else None

    @property
    def marker(self) -> Path:
        return done_marker(self.output)

    def _marker(self) -> dict[str, Any] | None:
        if not self.output.exists():
            return None
        marker = read_json_if_valid(self.marker)
        return marker if isinstance(marker, dict) else None

    def recorded_settings(self) -> dict[str, Any] | None:
        """The settings of the finished output (None when it is not finished)."""
        marker = self._marker()
        return marker.get("params") if marker is not None else None

    def stats(self) -> dict[str, Any]:
        """The stats the finished output's marker records (empty when it is not finished)."""
        marker = self._marker() or {}
        return {k: v for k, v in marker.items() if k != "params"}

    def is_complete(self) -> bool:
        """True when the output is finished with these settings (skip the step). False when it must
        be made; under `refuse`, an output finished with other settings raises instead."""
        marker = self._marker()
        if marker is None:
            return False
        recorded = marker.get("params")
        if recorded == self.settings:
            return True
        if self.on_change == "refuse" and isinstance(recorded, dict):
            self._refuse(recorded)
        return False

    def begin(self) -> bool:
        """Before an appending step writes: True when partial output made under these settings may
        be resumed. Under `redo`, output begun with other settings is discarded (False); under
        `refuse`, it raises. Records the settings for the next run."""
        recorded = self.begun_settings()
        if recorded is not None and recorded != self.settings:
            if self.on_change == "refuse":
                self._refuse(recorded)
            self.discard()
            recorded = None
        if recorded is None:
            write_json(self.begun_at, self.settings)
            return False
        return True

    def finish(self, stats: dict[str, Any] | None = None) -> None:
        """Mark the output complete: its stats and the settings it was made with."""
        write_json(self.marker, {**(stats or {}), "params": self.settings})

    def unfinish(self) -> None:
        """Drop the completion marker (the output is being rewritten)."""
        self.marker.unlink(missing_ok=True)

    def discard(self) -> None:
        """Remove the output, its marker and its recorded settings."""
        self.unfinish()
        if self.output.is_dir():
            shutil.rmtree(self.output)
        else:
            self.output.unlink(missing_ok=True)
        self.begun_at.unlink(missing_ok=True)

    def _refuse(self, recorded: dict[str, Any]) -> None:
        raise SettingsChanged(
            f"{self.output} was made with other settings ({describe_change(recorded, self.settings)}); "
            f"use another output (or output_dir), or delete it to redo {self.name}")


__all__ = ["Step", "Policy", "normalize", "describe_change", "settings_file"]
