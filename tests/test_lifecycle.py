"""Every step's lifecycle goes through `core.runner` (`run_step`, `run_steps`, `step_state`): no module
outside `longcurate/core` calls the completion primitives (`is_complete`, `begin`, `unfinish`,
`finish`, `discard` on a `core.completion.Step`) or takes an output lock (`core.lock.output_lock`)
itself. Checked by reading the source with `ast` (comments and strings do not count), and the check
is shown to fail on a planted violation.

A method of another class with one of those names (`set.discard`, say) is flagged too: write it
another way (`s -= {x}`) rather than widen this list.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "longcurate"
LIFECYCLE_METHODS = frozenset({"is_complete", "begin", "unfinish", "finish", "discard"})
LOCK = "output_lock"

# Modules that still run their steps' lifecycle by hand, until they move to core.runner. Remove an
# entry when its module migrates (the last test fails on a stale entry).
NOT_YET_ON_THE_RUNNER: frozenset[str] = frozenset()


def lifecycle_calls(path: Path) -> list[str]:
    """`line: what` for every lifecycle call, and every use or import of `output_lock`, in one module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LIFECYCLE_METHODS:
            found.append((node.lineno, f".{node.func.attr}()"))
        elif (isinstance(node, ast.Name) and node.id == LOCK) or (isinstance(node, ast.Attribute) and node.attr == LOCK):
            found.append((node.lineno, LOCK))
        elif isinstance(node, ast.ImportFrom) and any(a.name == LOCK for a in node.names):
            found.append((node.lineno, f"import {LOCK}"))
    return [f"{line}: {what}" for line, what in sorted(found)]


def violations(package: Path = PACKAGE, root: Path = ROOT) -> dict[str, list[str]]:
    """Module (relative to `root`) -> its lifecycle calls, for every module outside `<package>/core`."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        if (package / "core") in path.parents:
            continue
        calls = lifecycle_calls(path)
        if calls:
            out[path.relative_to(root).as_posix()] = calls
    return out


def test_no_module_outside_core_runs_a_step_lifecycle_itself():
    found = {m: calls for m, calls in violations().items() if m not in NOT_YET_ON_THE_RUNNER}
    assert not found, "run these steps through core.runner (StepSpec + run_step) instead:\n" + "\n".join(
        f"  {m}:{c}" for m, calls in found.items() for c in calls)


def test_the_check_fails_on_a_planted_violation(tmp_path):
    package = tmp_path / "longcurate"
    (package / "core").mkdir(parents=True)
    (package / "stage").mkdir()
    (package / "core" / "runner.py").write_text("def run(step):\n    step.finish({})\n")  # core may
    (package / "stage" / "clean.py").write_text(
        "# step.finish() in a comment is fine\nx = 'output_lock'\ns = set()\ns -= {1}\n")
    (package / "stage" / "bad.py").write_text(
        "from longcurate.core.lock import output_lock\n\n\n"
        "def work(step, out):\n"
        "    with output_lock(out):\n"
        "        if not step.is_complete():\n"
        "            step.unfinish()\n"
        "            step.finish({'n': 1})\n")
    assert violations(package, tmp_path) == {"longcurate/stage/bad.py": [
        "1: import output_lock", "5: output_lock", "6: .is_complete()", "7: .unfinish()", "8: .finish()"]}


def test_the_allow_list_names_only_modules_that_still_offend():
    found = violations()
    stale = sorted(m for m in NOT_YET_ON_THE_RUNNER if m not in found)
    assert not stale, f"these modules run their steps through core.runner now; remove them from " \
                      f"NOT_YET_ON_THE_RUNNER: {stale}"
