"""The positive control `control-wrong`: each random draw's samples with their answers swapped between
samples of one question type by the planted `wrong` construction: the same ids, contexts and questions,
the draw's own answers permuted inside each type (no sample keeps its own), a pool donor only where the
draw has no other sample of the type."""

from __future__ import annotations

from collections import Counter

from longcurate.ablate.arms import write_arms
from longcurate.ablate.control import swap_answers
from longcurate.config import RunConfig
from longcurate.core.config import build
from longcurate.core.jsonl import read_jsonl
from longcurate.core.records import Sample
from longcurate.select.pool import ScoredPool


def sample(i: int, generator: str, response: str) -> Sample:
    context = "\n\n".join(f"Piece {i}.{j} of a long context about topic {i}." for j in range(6))
    return Sample.from_dict({"id": f"s{i:02d}", "kind": "fine", "context": context, "instruction": f"Question {i}?",
                             "response": response, "messages": [], "length": 200,
                             "source": {"generator": generator}})


def test_answers_are_permuted_within_question_type_and_a_lone_type_takes_a_pool_donor(tmp_path):
    draw = [sample(0, "cloze", "red"), sample(1, "cloze", "green apples"), sample(2, "cloze", "blue"),
            sample(3, "topic", "Paris"), sample(4, "topic", "Rome"), sample(5, "recall", "It rained all day.")]
    rest = [sample(6, "recall", "The river froze."), sample(7, "topic", "Oslo")]
    pool = ScoredPool([], {s.id: s for s in draw + rest}, {s.id: 200 for s in draw + rest},
                      {s.id: 10 + int(s.id[1:]) for s in draw + rest})
    cfg = build(RunConfig, {"output_dir": str(tmp_path), "select": {"window": 64}})
    records, stats = swap_answers(cfg, draw, pool, seed=3)
    assert [r.id for r in records] == [s.id for s in draw]
    for host, rec in zip(draw, records):
        assert (rec.context, rec.instruction) == (host.context, host.instruction)
        assert rec.response != host.response and rec.planted["type"] == "wrong"
        assert rec.messages[1]["content"] == rec.response
    by_type = {t: Counter(r.response for r, h in zip(records, draw) if h.source["generator"] == t)
               for t in ("cloze", "topic")}
    assert by_type == {t: Counter(h.response for h in draw if h.source["generator"] == t) for t in by_type}
    assert records[5].response == "The river froze." and records[5].planted["donor"] == "s06"
    assert stats == {"response_tokens": 10 + 11 + 12 + 13 + 14 + 16, "swapped": 6, "donors_from_pool": 1,
                     "left_correct": 0}
    assert swap_answers(cfg, draw, pool, seed=3)[0] == records  # deterministic by seed


def test_the_control_arm_is_each_random_draw_with_its_answers_swapped(tmp_path, fake_pool):
    fake_pool(tmp_path, n=30, hmg=True)
    cfg = build(RunConfig, {"output_dir": str(tmp_path), "select": {"window": 64},
                            "ablate": {"arms": ["random", "control-wrong"], "subsets": 2, "budget": 8}})
    arms = {a.key: a for a in write_arms(cfg, cfg.layout().ablation(None))}
    for k in range(2):
        random_arm, control = arms[f"random/subset-{k}"], arms[f"control-wrong/subset-{k}"]
        plain = [r for _, r in read_jsonl(random_arm.path)]
        swapped = [r for _, r in read_jsonl(control.path)]
        assert [r["id"] for r in swapped] == [r["id"] for r in plain] and len(plain) == 8
        assert [r["context"] for r in swapped] == [r["context"] for r in plain]
        assert all(a["response"] != b["response"] for a, b in zip(plain, swapped))
        assert sorted(r["response"] for r in swapped) == sorted(r["response"] for r in plain)
        assert control.response_tokens == random_arm.response_tokens and control.samples == 8
    assert arms["random/subset-0"].path.read_bytes() != arms["random/subset-1"].path.read_bytes()
