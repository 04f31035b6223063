"""Planted sample types on a tiny pool (SmolLM2's tokenizer): balance of answer lengths across types,
far / local offsets against an independent tokenization of the chat-formatted prompt, absent answers
nowhere in their context, the shares design's dealing, and taking a context apart and back."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest

from longcurate.core.planted import (ChatView, normalized, put_together, take_apart)
from longcurate.core.planted_pool import allocate, answer_tokens, plant_paired, plant_shares, strata
from longcurate.core.prompts import chat_text, messages_for
from longcurate.core.records import GoldSpan, Sample

WORDS = ("river stone market winter garden signal copper harbor lantern meadow orbit canyon violet engine "
         "falcon marble thunder velvet prairie summit cobalt ember glacier harvest island jungle kettle ladder "
         "mirror nectar oasis pepper quartz rocket saddle timber umbrella valley walnut").split()
WINDOW = 300
MARGIN = 16


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def synth_like(i: int, rng: random.Random) -> Sample:
    """A synthesized-looking sample: ~14 units of ~40 tokens joined by blank lines, one of them the
    gold unit, whose sentence is the answer (answers of 1-4 extra words so lengths differ)."""
    units = [" ".join(_sentence(rng, rng.randint(6, 10)) for _ in range(3)) for _ in range(14)]
    code = " ".join(rng.choice(WORDS) for _ in range(1 + i % 4))
    answer = f"The secret code of item {i} is {code} {rng.randint(100, 999)}."
    g = rng.randrange(len(units))
    units[g] = _sentence(rng, 8) + " " + answer + " " + _sentence(rng, 8)
    context = "\n\n".join(units)
    start = context.index(units[g])
    qtype = ("template:recall", "template:cloze")[i % 2]
    return Sample(id=f"s{i:03d}", context=context, instruction=f"What is the secret code of item {i}?",
                  response=answer, messages=messages_for(context, f"What is the secret code of item {i}?", answer),
                  gold=[GoldSpan(g, start, start + len(units[g]))], num_segments=len(units),
                  source={"generator": qtype, "key_fragments": [f"secret code of item {i} is"]})


@pytest.fixture(scope="module")
def bases():
    rng = random.Random(7)
    return [synth_like(i, rng) for i in range(16)]


@pytest.fixture(scope="module")
def paired(bases, tokenizer):
    view = ChatView(tokenizer, WINDOW)
    return plant_paired(bases, view, ["far", "local", "absent", "wrong"], seed=3, margin=MARGIN, stratum_size=4)


def _by_type(records):
    out = defaultdict(list)
    for r in records:
        out[r.planted["type"]].append(r)
    return out


def test_every_base_sample_once_per_type(paired, bases):
    assert not paired.rejected, paired.rejected
    by_type = _by_type(paired.records)
    assert set(by_type) == {"far", "local", "absent", "wrong"}
    for recs in by_type.values():
        assert sorted(r.planted["base"] for r in recs) == sorted(s.id for s in bases)
    assert len({r.id for r in paired.records}) == len(paired.records)


def test_types_hold_the_same_answers_and_question_forms(paired, tokenizer):
    """Tolerance 0: the donors form a permutation inside each stratum, so every type holds exactly the
    same answers (hence the same answer-length distribution) and the same question types."""
    by_type = _by_type(paired.records)
    answers = {t: sorted(r.response for r in recs) for t, recs in by_type.items()}
    lengths = {t: sorted(answer_tokens(recs, tokenizer).values()) for t, recs in by_type.items()}
    forms = {t: Counter(r.source["generator"] for r in recs) for t, recs in by_type.items()}
    for t in by_type:
        assert answers[t] == answers["far"] and lengths[t] == lengths["far"] and forms[t] == forms["far"], t
    for r in by_type["absent"] + by_type["wrong"]:  # a donor answers a question of its own type
        assert r.planted["donor"] != r.planted["base"]


def _context_tokens_seen(sample: Sample, tokenizer, window: int) -> tuple[int, int]:
    """Reference: tokenize the chat-formatted sample once and return the character range of the
    context that θ_A's window keeps (the last context tokens that fit after the other tokens)."""
    text = chat_text(tokenizer, sample.messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    c0 = text.index(sample.context)
    c1 = c0 + len(sample.context)
    ctx = [i for i, (a, b) in enumerate(enc["offset_mapping"]) if a >= c0 and b <= c1 and b > a]
    keep = max(0, window - (len(enc["input_ids"]) - len(ctx)))
    seen = ctx[len(ctx) - keep:] if keep else []
    first = enc["offset_mapping"][seen[0]][0] - c0 if seen else len(sample.context)
    return first, len(sample.context)


def test_far_and_local_evidence_sit_where_their_type_says(paired, tokenizer):
    by_type = _by_type(paired.records)
    for r in by_type["far"] + by_type["local"]:
        p = r.planted
        first_seen, _ = _context_tokens_seen(r, tokenizer, WINDOW)
        start, end = min(g.char_start for g in r.gold), max(g.char_end for g in r.gold)
        if p["type"] == "far":
            assert end <= first_seen and p["evidence"] == "beyond" and p["evidence_offset"] >= MARGIN, p
        else:
            assert start >= first_seen and p["evidence"] == "inside" and p["evidence_offset"] <= -MARGIN, p
        after_end, from_start = p["evidence_from_end"]
        assert p["evidence_offset"] == (after_end - p["view"] if p["type"] == "far" else from_start - p["view"])
        for g in r.gold:  # the gold text moved whole
            assert r.context[g.char_start:g.char_end].find(r.response) >= 0


def test_variants_of_one_base_share_their_text(paired, bases):
    by_base = defaultdict(dict)
    for r in paired.records:
        by_base[r.planted["base"]][r.planted["type"]] = r
    for s in bases:
        v = by_base[s.id]
        assert sorted(v["far"].context.split("\n\n")) == sorted(s.context.split("\n\n"))
        assert sorted(v["local"].context.split("\n\n")) == sorted(s.context.split("\n\n"))
        assert v["absent"].context == v["far"].context == v["wrong"].context  # one contrast per type
        assert v["wrong"].instruction == s.instruction and v["wrong"].response != s.response


def test_absent_answers_occur_nowhere_in_their_context(paired):
    for r in _by_type(paired.records)["absent"]:
        assert normalized(r.response) not in normalized(r.context)
        assert all(normalized(k) not in normalized(r.context) for k in r.source["key_fragments"])
        assert r.gold == []


def test_take_apart_and_put_together_round_trip(bases):
    s = bases[0]
    pieces = take_apart(s)
    context, gold = put_together(pieces, [s.gold[0].segment])
    assert context == s.context and gold == s.gold


def test_a_gold_span_inside_a_paragraph_cannot_be_moved(bases):
    s = bases[0]
    g = s.gold[0]
    inner = Sample(**{**s.__dict__, "gold": [GoldSpan(g.segment, g.char_start + 5, g.char_end)]})
    assert "not a whole piece" in take_apart(inner)


def test_shares_deal_every_type_its_share_in_every_stratum(tokenizer):
    rng = random.Random(11)
    samples = [synth_like(i, rng) for i in range(36)]
    view = ChatView(tokenizer, WINDOW)
    shares = {"far": 0.5, "local": 1 / 6, "absent": 1 / 6, "wrong": 1 / 6}
    records, counts = plant_shares(samples, view, shares, seed=0, margin=MARGIN, stratum_size=6)
    assert [r.id for r in records] == [s.id for s in samples]
    assert not any(k.endswith("failed") for k in counts), counts
    for t, share in shares.items():
        assert abs(counts[t] - share * len(samples)) <= 1, counts
    kinds = {r.id: r.planted["type"] for r in records}
    for group in strata(samples, answer_tokens(samples, tokenizer), 6):  # within 2 per stratum (prefix bound x 2)
        got = Counter(kinds[s.id] for s in group)
        assert all(abs(got[t] - share * len(group)) <= 2 for t, share in shares.items()), got


def test_allocate_keeps_every_prefix_within_one_of_its_share():
    ordered = [Sample(id=f"x{i}", context="", instruction="q", response="a", messages=[]) for i in range(50)]
    shares = {"far": 0.5, "local": 0.2, "absent": 0.15}
    kinds = allocate(ordered, shares)
    seen = Counter()
    for i, s in enumerate(ordered, start=1):
        seen[kinds[s.id]] += 1
        for t, q in {**shares, "natural": 0.15}.items():
            assert abs(seen[t] - q * i) < 1 + 1e-9


def test_planted_field_round_trips_and_is_absent_when_unset(paired, bases):
    r = paired.records[0]
    assert Sample.from_dict(r.to_dict()).planted == r.planted
    assert "planted" not in bases[0].to_dict()


def test_a_limit_is_reached_when_base_samples_are_left_out(bases, tokenizer):
    """A base sample whose question type has no other sample cannot take a donor's answer: it is left
    out with the reason and the next base sample takes its place, so the pool still has `limit` bases."""
    lonely = Sample(**{**bases[0].__dict__, "id": "lonely", "source": {**bases[0].source, "generator": "template:x"}})
    view = ChatView(tokenizer, WINDOW)
    pool = plant_paired([lonely, *bases], view, ["far", "local", "absent", "wrong"], seed=3, margin=MARGIN,
                        stratum_size=4, limit=8)
    kept = {r.planted["base"] for r in pool.records}
    assert len(kept) >= 8 and "lonely" not in kept
    assert [s.id for s, _ in pool.rejected] == ["lonely"] and "no other sample" in pool.rejected[0][1]
    assert kept <= {s.id for s in bases[:10]}
