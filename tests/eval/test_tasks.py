"""The task registry is the one place that names eval's tasks: their code resolves, their files come
from `core.layout`, their metrics declare direction and aggregation, and the stage, the report and the
ablation read them from it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from longcurate.core.errors import UserError
from longcurate.core.eval_layout import EvalModelFiles
from longcurate.eval import tasks
from longcurate.eval.tasks import TASKS, Metric, PerItem, Task, get_task, register

PACKAGE = Path(__file__).resolve().parents[2] / "longcurate"


def test_every_task_resolves_its_code_and_names_its_files(tmp_path):
    files = EvalModelFiles(tmp_path / "label")
    assert list(TASKS) == ["probes", "needle", "nll", "longbench", "longbench-chat"]
    for task in TASKS.values():
        for ref in (task.run, task.section, task.figures):
            assert ref is None or callable(tasks.resolve(ref)), (task.name, ref)
        assert task.needs and set(task.needs) <= set(tasks.NEEDS)
        assert all(p.is_relative_to(files.folder) for p in task.results(files))
        assert task.results_file(files) is None  # nothing written yet
        assert all(m.aggregation in tasks.AGGREGATIONS for m in task.metrics)
    assert {n: t.primary.better for n, t in TASKS.items()} == {
        "probes": "higher", "needle": "higher", "nll": "lower", "longbench": "higher", "longbench-chat": "higher"}
    assert TASKS["nll"].per_item.file(files) == files.nll_items
    assert TASKS["probes"].per_item.file(files) == files.predictions("probes")
    assert tasks.measured_tasks() == ["probes", "nll"]


def test_a_metric_reads_its_figure_from_the_results():
    m = TASKS["probes"].metrics
    results = {"all": {"mean": {"mean": 0.5, "n": 4}, "avg": 0.4, "gap": 0.2}}
    assert [x.value(results) for x in m] == [{"mean": 0.5, "n": 4}, 0.4, 0.2]
    assert [x.better for x in m] == ["higher", "higher", "lower"]
    assert Metric("x.y", True, "mean", "").value({"x": 3}) is None


def test_unknown_names_are_refused():
    with pytest.raises(UserError, match="unknown eval task 'val'; eval.run takes probes, needle, nll"):
        get_task("val")
    with pytest.raises(ValueError, match="registered twice"):
        register(TASKS["nll"])
    with pytest.raises(ValueError, match="unknown aggregation"):
        Metric("m", True, "median", "")
    with pytest.raises(ValueError, match="needs must be among"):
        Task("t", needs=("telepathy",), metrics=(Metric("m", True, "mean", ""),), run="m:f",
             results=lambda f: (), section="m:s")


def test_the_ablation_reads_directions_units_and_files_from_the_registry(tmp_path):
    from longcurate.ablate.outcomes import BETTER, UNITS, outcome_file, read_outcomes
    from longcurate.core.jsonl import write_jsonl

    assert BETTER == {"probes": "higher", "nll": "lower"}
    assert UNITS == {"probes": "probe generation accuracy (0-1)", "nll": "answer NLL, nats per answer token"}
    files = EvalModelFiles(tmp_path)
    write_jsonl(files.nll_items, [{"id": "a", "source": "heldout", "task": "fine", "position": 0.5, "nll": 1.5,
                                   "n_tokens": 3}])
    write_jsonl(files.predictions("probes"), [{"id": "p", "task": "code", "key_token_fraction": 0.25, "score": 1.0}])
    assert outcome_file(tmp_path, "nll") == files.nll_items
    (nll,) = read_outcomes(tmp_path, "nll").values()
    (probe,) = read_outcomes(tmp_path, "probes").values()
    assert (nll.key, nll.source, nll.position, nll.value) == ("heldout:a", "heldout", 0.5, 1.5)
    assert (probe.key, probe.source, probe.position, probe.value) == ("probe:p", "probe", 0.25, 1.0)
    with pytest.raises(UserError, match="not an eval task measured item by item"):
        read_outcomes(tmp_path, "longbench")


def test_no_other_list_of_task_names():
    """Outside the registry, no eval module spells a set of task names (a tuple, list or set literal
    holding two or more of them: a second list that could drift). A config default (`eval.run`'s
    default factory) chooses tasks; it lists nothing the code relies on."""
    names = set(TASKS)
    found = []
    for path in sorted((PACKAGE / "eval").glob("*.py")) + [PACKAGE / "ablate" / "outcomes.py"]:
        if path.name == "tasks.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defaults = {id(n.body) for n in ast.walk(tree) if isinstance(n, ast.Lambda)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and id(node) not in defaults:
                consts = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
                if len(consts & names) >= 2:
                    found.append(f"{path.name}:{node.lineno}: {sorted(consts & names)}")
    assert found == []


def test_the_report_has_one_section_per_task_in_registry_order(tmp_path):
    """A task's section comes from the registry: a task registered for the test (and removed after)
    gets its section in the report with no change to the report's code."""
    import json

    from longcurate.eval import report
    from longcurate.eval.results import load_results

    folder = tmp_path / "m"
    (folder / "extra").mkdir(parents=True)
    (folder / "extra" / "results.json").write_text(json.dumps({"score": 7}))
    extra = Task("extra", needs=("generate",), metrics=(Metric("score", True, "mean", "points"),),
                 run="longcurate.eval.stage:run_stage", results=lambda f: (f.results("extra"),),
                 section=f"{__name__}:extra_section", per_item=None)
    register(extra)
    try:
        res = load_results(folder)
        assert res.get("extra") == {"score": 7}
        text = report.markdown([res], {})
        assert "## Extra: m scored 7" in text
    finally:
        del TASKS["extra"]


def extra_section(results, figures):
    return [f"## Extra: {r.label} scored {r.get('extra')['score']}" for r in results if r.get("extra")]


def test_per_item_declares_where_values_are():
    spec = PerItem(lambda f: f.folder / "x.jsonl", value="v", position="p", source="s")
    assert spec.file(EvalModelFiles(Path("/r"))) == Path("/r/x.jsonl") and spec.source == "s"
