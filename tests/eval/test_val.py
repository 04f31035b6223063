"""`eval val` scores FILM's released VaL files as FILM's plot.py does: hand-made files in the official
layout (skip lists, both prediction shapes, positions at span edges, a partial last span) against a
transcription of the released loops (tests/oracles/film_val.py), to 1e-9."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from longcurate.cli import main
from longcurate.eval import val
from oracles.film_val import released_scores

WORDS = ("the river city north old Bridge bridge stone market of tower green.", "harbour", "mill", "Old",
         "king", "road", "winter", "song", "gate", "lake", "hill", "church", "garden")
# task -> (positions, sets, prediction shape): positions and sets are read from the data, never assumed
SHAPES = {"document": (100, 3, "samples"), "code": (150, 2, "sample"), "database": (125, 4, "samples")}


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS).split()[0] if rng.random() < 0.7 else rng.choice(WORDS) for _ in range(rng.randint(3, 9))]
    return " ".join(words) + rng.choice([".", "", " ."])


def _item(task: str, rng: random.Random) -> tuple[dict, str]:
    """One data line's ground truth and a prediction that hits it fully, partly or not at all."""
    r = rng.random()
    if task == "document":
        gt = _sentence(rng)
        words = gt.split()
        keep = words if r < 0.3 else rng.sample(words, rng.randint(0, len(words)))
        pred = " ".join(w.upper() if rng.random() < 0.3 else w for w in keep) + (" extra words" if r > 0.8 else "")
        return {"prompt": "ctx", "completion": "  " + gt + "\n"}, pred
    if task == "code":
        name = f"fn_{rng.randint(0, 10**6)}"
        gt = name + ("." if rng.random() < 0.3 else "")
        pred = f"The function is {name}" if r < 0.5 else (f"{name.upper()}" if r < 0.7 else "no idea")
        return {"prompt": "ctx", "completion": gt}, pred
    label, desc = f"Label {rng.randint(0, 999)} Hall.", f"building in Town {rng.randint(0, 99)}"
    pred = (label.lower().rstrip(".") if r < 0.35 else f"It is a {desc.upper()}!" if r < 0.6
            else label[:-3] if r < 0.8 else "unknown")
    return {"prompt": "ctx", "label": label, "description": desc}, pred


def write_task(data: Path, preds: Path, task: str, seed: int, flip: tuple[int, ...] = ()) -> dict:
    """One task's data file, skip list and prediction file; lines shuffled, so line index != position.
    Predictions at the positions in `flip` are replaced by the right answer (to show which are read)."""
    positions, sets, shape = SHAPES[task]
    rng = random.Random(seed)
    rows = []
    for s in range(sets):
        for p in range(positions):
            obj, pred = _item(task, rng)
            right = obj.get("completion") or obj.get("label", "")
            rows.append(({**obj, "position_id": p, "set_id": s}, right if p in flip else pred))
    random.Random(seed + 1).shuffle(rows)
    name = val.FILES[task]
    skip = sorted(random.Random(seed + 2).sample(range(len(rows)), len(rows) // 10))
    # and span edges: a span's first and last read position (0, 48, 50, 98) of set 0
    skip += [i for i, (o, _) in enumerate(rows) if o["set_id"] == 0 and o["position_id"] in (0, 48, 50) and i not in skip]
    (data / f"{name}.jsonl").write_text("".join(json.dumps(o) + "\n" for o, _ in rows), encoding="utf-8")
    (data / f"{name}_skip_list.json").write_text(json.dumps(skip), encoding="utf-8")
    with open(preds / f"sample_{name}.jsonl", "w", encoding="utf-8") as f:
        for _, pred in rows:
            f.write(json.dumps({"samples": [pred, "a second sample is never read"]} if shape == "samples"
                               else {"sample": pred}) + "\n")
    return {"positions": positions, "sets": sets, "gpt4": shape == "sample", "skip": len(skip)}


@pytest.fixture()
def official(tmp_path: Path):
    data, preds = tmp_path / "VaLProbing-32K", tmp_path / "results" / "my-model"
    data.mkdir()
    preds.mkdir(parents=True)
    meta = {task: write_task(data, preds, task, seed) for seed, task in enumerate(SHAPES)}
    return data, preds, meta


def oracle(data: Path, preds: Path, task: str, meta: dict) -> tuple[float, float, list[float], list[float]]:
    name = val.FILES[task]
    return released_scores(task, data / f"{name}.jsonl", data / f"{name}_skip_list.json", preds / f"sample_{name}.jsonl",
                           total_len=meta["positions"], set_count=meta["sets"], gpt4=meta["gpt4"])


def test_eval_val_equals_the_released_rules(official, tmp_path: Path, capsys):
    data, preds, meta = official
    out = tmp_path / "out" / "val.json"
    assert main(["eval", "val", "--data", str(data), "--predictions", str(preds), "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    avgs, gaps = [], []
    for task, m in meta.items():
        avg, gap, spans, stds = oracle(data, preds, task, m)
        got = result["tasks"][task]
        assert got["avg"] == pytest.approx(100 * avg, abs=1e-9)
        assert got["gap"] == pytest.approx(100 * gap, abs=1e-9)
        assert [s["score"] for s in got["spans"]] == pytest.approx([100 * x for x in spans], abs=1e-9)
        assert [s["std"] for s in got["spans"]] == pytest.approx([100 * x for x in stds], abs=1e-9)
        assert len(got["spans"]) == m["positions"] // 50 and got["sets"] == list(range(m["sets"]))
        assert got["n_skipped"] == m["skip"] and got["n_lines"] == m["positions"] * m["sets"]
        assert got["n_left_out"] > 0  # each span's last position (and database's partial last span)
        avgs.append(100 * avg)
        gaps.append(100 * gap)
    assert result["all"]["avg"] == pytest.approx(sum(avgs) / 3, abs=1e-9)
    assert result["all"]["gap"] == pytest.approx(sum(gaps) / 3, abs=1e-9)
    assert 0 < result["all"]["avg"] < 100  # the hand-made predictions hit some items, not all
    md, png = out.with_suffix(".md"), out.with_suffix(".png")
    assert "| **all** |" in md.read_text() and png.stat().st_size > 1000
    assert "wrote" in capsys.readouterr().out


def test_a_span_last_position_is_never_read(tmp_path: Path):
    """Right answers at positions 49, 99, 149 (each span's last) change nothing, as released; at 48,
    98, 148 (each span's last position read) they raise the score."""
    results = []
    for flip in ((), (49, 99, 149)):
        root = tmp_path / str(len(flip))
        data, preds = root / "data", root / "preds"
        data.mkdir(parents=True)
        preds.mkdir()
        write_task(data, preds, "code", seed=7, flip=flip)
        results.append(val.score_val(data, preds))
    assert results[0]["tasks"]["code"]["avg"] == results[1]["tasks"]["code"]["avg"]
    flipped = tmp_path / "flip48"
    (flipped / "data").mkdir(parents=True)
    (flipped / "preds").mkdir()
    write_task(flipped / "data", flipped / "preds", "code", seed=7, flip=(48, 98, 148))
    assert val.score_val(flipped / "data", flipped / "preds")["tasks"]["code"]["avg"] > results[0]["tasks"]["code"]["avg"]


def test_default_output_and_errors(official, capsys):
    data, preds, _ = official
    assert main(["eval", "val", "--data", str(data), "--predictions", str(preds)]) == 0
    assert (preds / "val_result.json").exists() and (preds / "val_result.md").exists()
    name = val.FILES["database"]
    lines = (preds / f"sample_{name}.jsonl").read_text().splitlines()
    (preds / f"sample_{name}.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    capsys.readouterr()
    assert main(["eval", "val", "--data", str(data), "--predictions", str(preds)]) == 2
    assert "line-aligned" in capsys.readouterr().err
    (preds / f"sample_{name}.jsonl").write_text("\n".join(lines[:-1] + ['{"text": "x"}']) + "\n")
    assert main(["eval", "val", "--data", str(data), "--predictions", str(preds)]) == 2
    assert "need 'samples'" in capsys.readouterr().err
