"""On-disk cache of API answers, one JSON file per request key, so a re-run never pays twice.

The key is a hash of what determines the answer (model, messages, sampling settings, prompt version);
it never includes credentials, and neither does the stored entry. Each file is written atomically
(temp file, fsync, rename), so a killed process leaves either the whole entry or none, and several
processes may share one cache folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from longcurate.core.jsonl import write_json


def request_key(payload: dict[str, Any]) -> str:
    """A stable hash of a request payload (canonical JSON: sorted keys, no whitespace)."""
    canon = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


class ResponseCache:
    """`get(key)` / `put(key, entry)` over `<root>/<key[:2]>/<key>.json`."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry, or None when absent or unreadable (an unreadable entry is just a miss)."""
        p = self.path(key)
        try:
            with open(p, encoding="utf-8") as f:
                entry = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) and entry.get("key") == key else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        write_json(self.path(key), {"key": key, **entry}, sort_keys=True, indent=1)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.exists() else 0
