"""core.shared_cache: a cache shared by steps keeps what was written, drops a torn line, and is held by
one run at a time."""

from __future__ import annotations

import pytest

from longcurate.core.lock import OutputLocked
from longcurate.core.shared_cache import SharedCache


def test_entries_survive_a_reopen_and_a_torn_last_line(tmp_path):
    path = tmp_path / "cache.jsonl"
    with SharedCache(path) as cache:
        cache.put({"key": "a", "value": 1})
        cache.put({"key": "b", "value": 2})
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"key": "c", "val')  # a crash mid-line
    with SharedCache(path) as cache:
        assert cache.get("a") == {"key": "a", "value": 1} and cache.get("c") is None
        cache.put({"key": "c", "value": 3})
    with SharedCache(path) as cache:
        assert sorted(cache.entries) == ["a", "b", "c"]


def test_two_runs_never_append_at_once(tmp_path):
    path = tmp_path / "cache.jsonl"
    with SharedCache(path):
        with pytest.raises(OutputLocked):
            SharedCache(path).__enter__()


def test_writing_outside_with_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match="with"):
        SharedCache(tmp_path / "c.jsonl").put({"key": "a"})
