"""Template question types: answers are verbatim slices of the segments, errors are per item."""

from __future__ import annotations

import re

from longcurate.synth.qa import QABackend, QARequest, SegmentText, backend_class
from longcurate.synth.template_qa import BLANK, TemplateBackend

KUBRICK = SegmentText("2001", "2001: A Space Odyssey", 0,
                      "2001: A Space Odyssey is a 1968 epic science fiction film produced and directed by Stanley "
                      "Kubrick, who co-wrote the screenplay with Arthur C. Clarke. Its plot was inspired by several "
                      "short stories optioned from Clarke, primarily The Sentinel and Encounter in the Dawn. The film "
                      "follows a voyage by astronauts, scientists, and the sentient supercomputer HAL to Jupiter.")
DANUBE = SegmentText("danube", "Danube", 0,
                     "The Danube is the second-longest river in Europe, after the Volga in Russia. It flows through "
                     "much of Central and Southeastern Europe, from the Black Forest into the Black Sea. Its drainage "
                     "basin extends into nine more countries, and it was once a long-standing frontier of the Roman Empire.")
NO_TITLE = SegmentText("x", "Something Else Entirely", 0, DANUBE.text)


def _req(qtype, *segs, kind=None, rid="r1", seed=0):
    kind = kind or ("multihop" if len(segs) > 1 else "fine")
    return QARequest(request_id=rid, kind=kind, qtype=qtype, segments=tuple(segs), seed=seed)


def _quoted(q):
    return re.findall(r'"([^"]+)"', q)


def test_lookup_by_name():
    assert backend_class("template") is TemplateBackend


def test_template_backend_is_a_qa_backend():
    from longcurate.config import RunConfig

    b = TemplateBackend.from_config(RunConfig())
    assert isinstance(b, QABackend) and b.name == "template" and b.exhausted is False
    assert b.stats() == {}


def test_sentence_recall():
    (r,) = TemplateBackend().generate([_req("sentence_recall", KUBRICK)])
    assert r.ok and r.generator == "template:sentence_recall"
    (frag,) = _quoted(r.question)
    assert 4 <= len(frag.split()) <= 8 and frag in r.answer and r.answer in KUBRICK.text
    assert r.answer != frag and r.key_fragments == [frag]
    ev = r.evidence[0]
    assert KUBRICK.text[ev.char_start:ev.char_end] == r.answer


def test_cloze():
    for seed in range(5):
        (r,) = TemplateBackend().generate([_req("cloze", KUBRICK, seed=seed)])
        assert r.ok
        blanked = r.question[r.question.index('"') + 1:r.question.rindex('"')]
        assert blanked.count(BLANK) == 1 and blanked.replace(BLANK, r.answer) in KUBRICK.text
        assert r.key_fragments[0] in blanked and len(r.key_fragments[0].split()) >= 4


def test_topic_needs_the_title_in_the_segment():
    (r,) = TemplateBackend().generate([_req("topic", DANUBE)])
    assert r.ok and r.answer == "Danube"
    (frag,) = _quoted(r.question)
    assert frag in DANUBE.text and "danube" not in frag.lower()
    (bad,) = TemplateBackend().generate([_req("topic", NO_TITLE)])
    assert not bad.ok and "title" in bad.error


def test_order_answer_is_the_first_segment_fragment():
    seen_first_shown = set()
    for seed in range(8):
        (r,) = TemplateBackend().generate([_req("order", KUBRICK, DANUBE, seed=seed)])
        assert r.ok
        a, b = _quoted(r.question)
        assert r.answer in KUBRICK.text and r.answer in (a, b)
        other = b if r.answer == a else a
        assert other in DANUBE.text and other not in KUBRICK.text
        seen_first_shown.add(r.answer == a)
    assert seen_first_shown == {True, False}  # the answer is not always the phrase shown first


def test_pair_recall_quotes_in_request_order():
    (r,) = TemplateBackend().generate([_req("pair_recall", DANUBE, KUBRICK)])
    assert r.ok
    first, second = r.answer.split("\n")
    assert first in DANUBE.text and second in KUBRICK.text
    assert sorted(r.key_fragments) == sorted(_quoted(r.question))


def test_failures_are_per_item():
    b = TemplateBackend()
    res = b.generate([_req("order", KUBRICK, KUBRICK), _req("sentence_recall", KUBRICK, rid="ok"),
                      _req("nope", KUBRICK, rid="x"), _req("cloze", KUBRICK, DANUBE, kind="fine", rid="y"),
                      _req("sentence_recall", SegmentText("s", "S", 0, "Too short to quote."), rid="z")])
    assert [r.ok for r in res] == [False, True, False, False, False]
    assert "distinct segments" in res[0].error and "unknown" in res[2].error
    assert [r.request_id for r in res] == ["r1", "ok", "x", "y", "z"]
    assert b.stats()["requests"] == 5 and b.stats()["ok"] == 1


def test_deterministic_by_request():
    reqs = [_req(t, KUBRICK, seed=3) for t in ("sentence_recall", "cloze")]
    assert TemplateBackend().generate(reqs) == TemplateBackend().generate(reqs)
    other = TemplateBackend().generate([_req("sentence_recall", KUBRICK, seed=4, rid="r9")])
    assert other[0].ok


def test_multihop_types_over_segments_of_one_document():
    """IN2's multi-hop: two segments of one text (same document, different positions)."""
    first = SegmentText("2001", "2001: A Space Odyssey", 0, KUBRICK.text)
    later = SegmentText("2001", "2001: A Space Odyssey", 4, DANUBE.text)
    for qtype in ("order", "pair_recall"):
        (r,) = TemplateBackend().generate([_req(qtype, first, later)])
        assert r.ok, r.error
        assert {e.segment for e in r.evidence} == {0, 1}
        frags = _quoted(r.question)
        assert sum(f in first.text for f in frags) == 1 and sum(f in later.text for f in frags) == 1
        assert "article" not in r.question  # nothing says the phrases come from different texts
    (same,) = TemplateBackend().generate([_req("order", first, first)])
    assert not same.ok and "distinct segments" in same.error
