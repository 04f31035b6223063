"""`probe build --pieces DIR`: probes from FILM's raw pieces (small hand-written files in FILM's format):
each key once in its context, each answer at its recorded place, positions evenly spread; and every
bundled config's probe set builds at reduced length, positions scaled (paper-7b with FILM-like pieces,
in the paper's shape: 4 sets, 800 / 800 / 750 positions at 32K, scaled)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from longcurate.cli import main
from longcurate.config import RunConfig
from longcurate.core.config import build, load_yaml
from longcurate.core.models import SMOLLM2_ALIAS
from longcurate.eval import pieces, probes
from longcurate.core.runner import step_state
from longcurate.eval.items import ensure_probes, probes_step

CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[2] / "longcurate" / "configs").glob("*.yaml")
                 if p.name != "fsdp.yaml")
ADJ = ("quiet", "northern", "ancient", "bright", "narrow", "golden", "hidden", "wooden", "frozen", "silent")
NOUN = ("harbour", "orchard", "bridge", "lantern", "valley", "market", "tower", "meadow", "engine", "archive")
VERB = ("load", "parse", "merge", "scan", "build", "count", "split", "cache", "flush", "index")


def write_pieces(folder: Path, n: int = 360, seed: int = 0) -> Path:
    """FILM's three pieces files: document sentences with a piece inside, 3-line functions with one of
    their lines as the piece (some lines shared by two functions, as in FILM's file), entities."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    docs, code, ents = [], [], []
    for i in range(n):
        a, b, c = rng.choice(ADJ), rng.choice(NOUN), rng.choice(NOUN)
        piece = f"{b} number {i} near the {c}"
        docs.append({"sentence": f"The {a} {piece} was seen by {rng.randint(2, 90)} people in {1800 + i}.",
                     "piece": piece})
        v = rng.choice(VERB)
        lines = [f"    r{i} = {v}(x)", f"    if r{i} > {rng.randint(1, 99)}:",
                 "    data = json.load(handle)" if i % 25 == 0 else f"    out.append(r{i})"]
        code.append({"function_name": f"{v}_{i}", "function_define": "\n".join(lines),
                     "piece": lines[2 if i % 25 == 0 else rng.randint(0, 2)].strip()})
        ents.append({"id": f"Q{rng.randint(10**7, 10**8 - 1)}", "label": f"{a.title()} {b.title()} {i}",
                     "dcpt": f"{c} in {rng.choice(NOUN)} county"})
    code.append({"function_name": "orphan", "function_define": "    x = 1", "piece": "not in the body"})  # dropped
    for name, rows in (("document_sentences.jsonl", docs), ("code_functions.jsonl", code),
                       ("database_entities.jsonl", ents)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def check_probes(items: list[probes.Probe], positions: dict[str, int], sets: int, slots: float = 0.0) -> None:
    """Every probe: key once, key and answer where recorded, positions evenly spread and in order: a key
    within one unit (FILM's pieces: under 64 tokens) or `slots` positions' share of the context of its target."""
    for it in items:
        assert it.context.count(it.key) == 1, it.id
        assert it.context[it.key_char:it.key_char + len(it.key)] == it.key
        assert it.context[it.answer_char:it.answer_char + len(it.answer)] == it.answer
        if it.task == "code":
            assert it.context[it.answer_char - 4:it.answer_char] == "def " and it.answer_char < it.key_char
        elif it.task == "database":
            line = it.context[it.key_char:].split("\n", 1)[0]
            assert line.startswith(it.key) and f"label: {it.answer}; description: {it.description}" in line
        else:
            assert it.answer_char <= it.key_char < it.answer_char + len(it.answer)
        target = (it.position_id + 0.5) / positions[it.task]
        assert abs(it.key_token_fraction - target) <= max(64 / it.context_tokens, slots / positions[it.task]), it.id
    for task, n in positions.items():
        for s in range(sets):
            got = sorted((it for it in items if it.task == task and it.set_id == s), key=lambda it: it.position_id)
            assert len(got) >= 0.8 * n, (task, s, len(got))  # the rest are ambiguity skips, counted
            fr = [it.key_token_fraction for it in got]
            assert fr == sorted(fr) and len({it.position_id for it in got}) == len(got)


def test_probe_build_pieces_cli(tmp_path: Path, tokenizer, capsys):
    folder = write_pieces(tmp_path / "pieces")
    out = tmp_path / "run"
    assert main(["eval", "build", "--only", "probes", "--pieces", str(folder), "--length", "1024", "--positions", "12", "--sets", "2",
                 "--model", SMOLLM2_ALIAS, f"output_dir={out}"]) == 0
    text = capsys.readouterr().out
    assert "probes:" in text
    items = [probes.Probe.from_dict(json.loads(line)) for line in (out / "eval" / "probes.jsonl").open()]
    assert {it.task for it in items} == set(probes.TASKS)
    check_probes(items, dict.fromkeys(probes.TASKS, 12), sets=2)
    names = {r["function_name"] for r in map(json.loads, (folder / "code_functions.jsonl").open())}
    assert all(it.answer in names for it in items if it.task == "code")
    assert all(it.context_tokens <= 1024 for it in items)
    done = json.loads((out / "eval" / "probes.jsonl.done").read_text())
    assert set(done["params"]["pieces"]["digests"]) == set(probes.TASKS)


def test_ambiguous_piece_is_skipped(tokenizer, tmp_path: Path):
    """Two functions share the key line `data = json.load(handle)`: in a context holding both it is asked
    about never, and counted."""
    folder = write_pieces(tmp_path / "p", n=60)
    items, stats = probes.build_probes(tokenizer, tasks=["code"], context_tokens=2048, num_positions=40,
                                       num_sets=1, seed=0, pieces=str(folder))
    assert stats.skipped_ambiguous.get("code", 0) >= 1
    assert all(it.key != "data = json.load(handle)" for it in items)
    assert len(items) + stats.skipped_ambiguous["code"] == 40
    assert all(it.answer != "orphan" for it in items)  # its piece is not in its body: never a unit


def test_pieces_errors(tmp_path: Path):
    folder = write_pieces(tmp_path / "p", n=5)
    (folder / "database_entities.jsonl").write_text('{"id": "Q1", "label": 3, "dcpt": "x"}\n')
    with pytest.raises(ValueError, match=r"database_entities.jsonl:1: field 'label'"):
        pieces.load_units(str(folder), "database")
    with pytest.raises(FileNotFoundError, match="pieces"):
        pieces.pieces_file(tmp_path / "nowhere", "code")


def scaled(cfg: RunConfig, length: int = 1024) -> dict[str, int]:
    """The config's probe set at `length` tokens, each task's positions scaled by the same factor."""
    p = cfg.eval.probes
    factor = min(1.0, length / p.context_tokens)
    positions = {t: max(2, round(p.task_positions.get(t, p.num_positions) * factor)) for t in p.tasks}
    p.context_tokens = round(p.context_tokens * factor)
    p.num_positions = positions[p.tasks[0]]
    p.task_positions = {t: n for t, n in positions.items() if n != p.num_positions}
    return positions


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_config_probe_set_builds(path: Path, tmp_path: Path, tokenizer):
    cfg = build(RunConfig, load_yaml(path), where=str(path))
    cfg.output_dir = str(tmp_path / "run")
    p = cfg.eval.probes
    shape = (p.context_tokens, p.num_sets, {t: p.task_positions.get(t, p.num_positions) for t in p.tasks})
    if path.stem == "paper-7b":  # the paper's shape, from FILM's pieces
        assert shape == (32768, 4, {"document": 800, "code": 800, "database": 750})
        assert p.pieces_dir and p.span == 50
        p.pieces_dir = str(write_pieces(tmp_path / "film-pieces"))
    positions = scaled(cfg)
    ensure_probes(cfg, lambda: tokenizer)
    items = [probes.Probe.from_dict(json.loads(line)) for line in cfg.layout().probes.open()]
    check_probes(items, positions, p.num_sets, slots=0 if p.pieces_dir else 1)  # stdlib functions are long
    assert {it.set_id for it in items} == set(range(p.num_sets))
    assert step_state(probes_step(cfg))["items"] == len(items)
    if path.stem == "paper-7b":
        assert positions == {"document": 25, "code": 25, "database": 23}
        assert {it.num_positions for it in items if it.task == "database"} == {23}
