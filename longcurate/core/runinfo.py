"""A run folder describes itself: resolved config, git commit, seeds, prompt-format version, stats."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from longcurate.core.jsonl import write_json


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def write_manifest(path: str | os.PathLike, stage: str, config: dict[str, Any],
                   stats: dict[str, Any] | None = None) -> None:
    """Write `<stage>.manifest.json`; no secrets go in (config holds variable names, never keys)."""
    from longcurate import __version__
    from longcurate.core.prompts import PROMPT_FORMAT_VERSION

    write_json(path, {
        "stage": stage,
        "longcurate_version": __version__,
        "git_commit": git_commit(),
        "prompt_format_version": PROMPT_FORMAT_VERSION,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": config,
        "stats": stats or {},
    })
