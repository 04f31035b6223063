"""Configuration of the train stage (defaults live here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    limit: int | None = None  # process at most this many records
