"""Configuration of the select stage (defaults live here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SelectConfig:
    limit: int | None = None  # process at most this many records
