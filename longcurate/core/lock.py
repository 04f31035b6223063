"""One writer per output: an exclusive lock beside it, so two runs on the same output cannot both append.

`<output>.lock` is held with an OS file lock (`filelock`, fcntl on Linux / macOS) for as long as the
step writes; `<output>.lock.owner` says who holds it (pid, host, since). The OS drops the lock when
its process dies, however it dies, so a lock left by a killed run is taken over by the next one
without any guess about staleness; the owner file is then simply rewritten.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from longcurate.core.errors import UserError
from longcurate.core.jsonl import atomic_open


class OutputLocked(UserError):
    """Another run is writing this output right now."""


def lock_path(output: str | os.PathLike) -> Path:
    p = Path(output)
    return p.with_name(p.name + ".lock")


def _owner_path(output: str | os.PathLike) -> Path:
    return lock_path(output).with_name(lock_path(output).name + ".owner")


def _holder(output: str | os.PathLike, wait_s: float = 1.0) -> str:
    """Who holds the lock. The holder writes its owner file just after taking the lock, so a run that
    lost the race a moment ago may look before it exists: it looks again for up to `wait_s`."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            info = json.loads(_owner_path(output).read_text(encoding="utf-8"))
            return f"pid {info['pid']} on {info['host']} (since {info['since']})"
        except (OSError, ValueError, KeyError, TypeError):
            if time.monotonic() >= deadline:
                return "another process"
            time.sleep(0.05)


@contextlib.contextmanager
def output_lock(output: str | os.PathLike) -> Iterator[None]:
    """Hold the output's lock, or stop at once with `OutputLocked` naming the holder."""
    path = lock_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise OutputLocked(f"{output} is being written by {_holder(output)}; wait for it to finish "
                           f"(a lock left by a killed run is released with its process)") from None
    try:
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        with atomic_open(_owner_path(output)) as f:  # a reader sees the whole owner file or none
            f.write(json.dumps(owner) + "\n")
        yield
    finally:
        _owner_path(output).unlink(missing_ok=True)
        lock.release()


__all__ = ["OutputLocked", "output_lock", "lock_path"]
