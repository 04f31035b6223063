"""A run folder describes itself: one manifest shape for every stage (`<stage>.manifest.json`).

    stage                   synth | select | train | eval | run | ablate
    config                  the whole resolved config (every section, not only the stage's own)
    git_commit              the checkout's commit, or null outside a git checkout
    versions                longcurate, the prompt format, Python and the libraries that decide outputs
    platform, finished_at
    stats                   the stage's stats, each step's as its step runner returned them

Every stage writes it through `write_manifest`, the same way, with the whole config.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from longcurate.core.config import to_dict
from longcurate.core.jsonl import write_json

# The libraries whose version can change what a stage writes (tokenization, scores, training, generation).
LIBRARIES = ("torch", "transformers", "tokenizers", "datasets", "accelerate", "numpy", "scipy", "scikit-learn",
             "openai", "vllm")


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def versions() -> dict[str, str | None]:
    """longcurate's, the prompt format's, Python's and each installed library's version (null when
    not installed); read from the package metadata, so nothing heavy is imported."""
    from longcurate import __version__
    from longcurate.core.prompts import PROMPT_FORMAT_VERSION

    found: dict[str, str | None] = {"longcurate": __version__, "prompt_format": PROMPT_FORMAT_VERSION,
                                    "python": sys.version.split()[0]}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def write_manifest(path: str | os.PathLike, stage: str, config: Any, stats: dict[str, Any] | None = None) -> None:
    """Write `<stage>.manifest.json` (shape in the module docstring); `config` is the whole resolved
    config. No secrets go in: the config holds variable names, never keys."""
    write_json(path, {
        "stage": stage,
        "config": to_dict(config),
        "git_commit": git_commit(),
        "versions": versions(),
        "platform": platform.platform(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "stats": stats or {},
    })
