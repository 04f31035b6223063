"""Configuration of the eval stage (defaults live here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EvalConfig:
    limit: int | None = None  # process at most this many records
