"""Each part in its own forked process, time-boxed, its result kept whatever happens.

Why fork: a CUDA error (an illegal access, a device-side assert) poisons the process that hit it, an
out-of-memory leaves a fragmented allocator, and a hung kernel cannot be interrupted; a child process
per part keeps every part's failure and its peak memory to itself and can be killed at its limit. The
parent imports torch and transformers once and never touches CUDA, so a fork costs milliseconds and
each child initialises CUDA afresh.

A part writes its figures as it goes (`Context.record`), so a part killed at its limit still reports
what it measured; its output goes to a log whose tail is kept when it fails.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gpu.sizes import Sizes

LOG_TAIL_LINES = 40


class Skip(Exception):
    """A part that cannot run here (DeepSpeed not installed, no CUDA for ZeRO, ...): recorded with its reason."""


@dataclass
class Context:
    """What a part is given: sizes, a scratch folder, the device asked for, and where its figures go."""

    sizes: Sizes
    work: Path
    device_arg: str = "auto"
    peak_tflops: float | None = None
    result_file: Path | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    deadline: float = float("inf")  # time.monotonic() at which the part is killed

    def seconds_left(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def device(self) -> str:
        import torch

        if self.device_arg != "auto":
            return self.device_arg
        return "cuda" if torch.cuda.is_available() else "cpu"

    def record(self, **values: Any) -> None:
        """Add figures to this part's result now (kept if the part fails or is killed later)."""
        self.figures.update(values)
        self._write({"status": "running", "result": self.figures})

    def finish(self, status: str, **extra: Any) -> None:
        self._write({"status": status, "result": self.figures, **extra})

    def _write(self, payload: dict) -> None:
        if self.result_file is None:
            return
        tmp = self.result_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, default=str))
        os.replace(tmp, self.result_file)


@dataclass(frozen=True)
class Part:
    name: str
    run: Callable[[Context], dict | None]
    what: str  # one line for the report


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def child(part: Part, ctx: Context, log: Path) -> None:
    """Runs in the forked process: own process group (killed whole at the limit), output to `log`."""
    os.setsid()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    try:
        result = part.run(ctx)
        if result:
            ctx.figures.update(result)
        ctx.finish("ok")
    except Skip as e:
        ctx.finish("skipped", reason=str(e))
    except BaseException as e:  # noqa: BLE001 - every failure is a finding, recorded, never fatal
        tb = traceback.format_exc().splitlines()
        tb = tb if len(tb) <= 40 else tb[:10] + ["  ..."] + tb[-30:]  # where in the check, and where it broke
        ctx.finish("failed", error=f"{type(e).__name__}: {e}"[:2000], traceback="\n".join(tb))
    finally:
        sys.stdout.flush()  # the child leaves through os._exit, which flushes nothing
        sys.stderr.flush()


def wait(pid: int, limit_s: float) -> tuple[int | None, bool]:
    """(wait status, killed at the limit)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status, False
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)  # the part and whatever it launched (torchrun's workers)
    except ProcessLookupError:
        pass
    return os.waitpid(pid, 0)[1], True


def run_part(part: Part, ctx: Context, limit_s: float) -> dict[str, Any]:
    """Fork, run, wait at most `limit_s`; the part's entry for gpu_check.json."""
    ctx.result_file = ctx.work / f"{part.name}.json"
    log = ctx.work / f"{part.name}.log"
    ctx.result_file.unlink(missing_ok=True)
    ctx.deadline = time.monotonic() + limit_s
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child never returns into the parent's code
        code = 1
        try:
            child(part, ctx, log)
            code = 0
        finally:
            os._exit(code)
    status, killed = wait(pid, limit_s)
    entry: dict[str, Any] = {"what": part.what, "seconds": round(time.perf_counter() - t0, 1),
                             "limit_s": round(limit_s)}
    try:
        entry.update(json.loads(ctx.result_file.read_text()))
    except (OSError, ValueError):
        entry.update(status="running", result={})
    if killed:
        entry.update(status="timeout", error=f"killed at its time limit of {limit_s:.0f} s")
    elif entry["status"] == "running":  # died without finishing: a crash or the OOM killer
        how = (f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
               else f"exit status {os.waitstatus_to_exitcode(status)}")
        entry.update(status="failed", error=f"the part's process ended without a result ({how})")
    if entry["status"] in ("failed", "timeout"):
        entry["log_tail"] = log_tail(log)
    return entry


def run_all(parts: list[Part], ctx: Context, *, on_part: Callable[[str, dict], None]) -> dict[str, dict]:
    """Every part in order, each within min(its limit, what is left of the budget)."""
    start = time.monotonic()
    out: dict[str, dict] = {}
    for part in parts:
        left = ctx.sizes.budget_s - (time.monotonic() - start)
        limit = min(ctx.sizes.limits.get(part.name, 60.0), left)
        if left < 10:
            out[part.name] = {"what": part.what, "status": "skipped", "result": {},
                              "reason": f"the check's budget of {ctx.sizes.budget_s:.0f} s is spent"}
        else:
            print(f"[gpu-check] {part.name}: {part.what} (limit {limit:.0f} s)", flush=True)
            out[part.name] = run_part(part, ctx, limit)
            print(f"[gpu-check] {part.name}: {out[part.name]['status']} in {out[part.name]['seconds']} s",
                  flush=True)
        on_part(part.name, out[part.name])
    return out
