"""One writer per output: a second holder is refused with the first one's pid and host; a killed
holder's lock is taken over."""

import os
import signal
import subprocess
import sys
import time

import pytest

from longcurate.core.errors import UserError
from longcurate.core.lock import OutputLocked, lock_path, output_lock

HOLD = """
import sys, time
from longcurate.core.lock import output_lock
with output_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(tmp_path, out):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_writer_is_refused_with_the_holder_named(tmp_path):
    out = tmp_path / "samples.jsonl"
    proc = _holder(tmp_path, out)
    try:
        with pytest.raises(OutputLocked, match=rf"pid {proc.pid} on ") as e:
            with output_lock(out):
                pass
        assert isinstance(e.value, UserError)
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_leaves_a_lock_that_is_taken_over(tmp_path):
    out = tmp_path / "samples.jsonl"
    proc = _holder(tmp_path, out)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert lock_path(out).exists()  # the file stays, the OS lock does not
    t0 = time.time()
    with output_lock(out):
        pass
    assert time.time() - t0 < 2


def test_lock_is_reentrant_across_outputs_and_released(tmp_path):
    with output_lock(tmp_path / "a.jsonl"), output_lock(tmp_path / "b.jsonl"):
        pass
    with output_lock(tmp_path / "a.jsonl"):
        pass
