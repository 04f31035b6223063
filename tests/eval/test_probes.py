"""Probe construction: unique keys, answers where recorded, positions spread evenly, determinism."""

from __future__ import annotations

import json
import random

import pytest

from longcurate.eval import probes, sources


@pytest.fixture(scope="module")
def built(tokenizer):
    skipped = []
    items, stats = probes.build_probes(tokenizer, context_tokens=1024, num_positions=6, num_sets=2, seed=3,
                                       on_skip=lambda pid, reason: skipped.append((pid, reason)))
    return items, stats, skipped


def test_every_task_and_set_is_built(built):
    items, stats, skipped = built
    assert {it.task for it in items} == set(probes.TASKS)
    for task in probes.TASKS:
        assert {it.set_id for it in items if it.task == task} == {0, 1}
        # every (set, position) is either an item or a counted skip
        n_items = sum(1 for it in items if it.task == task)
        assert n_items + stats.skipped_ambiguous.get(task, 0) == 2 * 6
    assert stats.items == len(items)
    assert len(skipped) == sum(stats.skipped_ambiguous.values())
    assert len({it.id for it in items}) == len(items)


def test_key_occurs_exactly_once(built):
    items, _, _ = built
    for it in items:
        assert it.context.count(it.key) == 1, it.id


def test_answer_and_key_at_recorded_positions(built):
    items, _, _ = built
    for it in items:
        assert it.context[it.key_char:it.key_char + len(it.key)] == it.key
        assert it.context[it.answer_char:it.answer_char + len(it.answer)] == it.answer
        if it.task == "document":  # the key is inside the answer sentence, never at its edges
            assert it.answer_char < it.key_char < it.key_char + len(it.key) < it.answer_char + len(it.answer)
            assert not it.answer.startswith(it.key) and not it.answer.endswith(it.key)
        elif it.task == "code":  # backward: the name comes before the body line
            assert it.answer_char < it.key_char
            assert it.context[it.answer_char - 4:it.answer_char] == "def "
        else:  # forward: label and description come after the id, on the same line
            line_end = it.context.find("\n", it.key_char)
            line = it.context[it.key_char:line_end if line_end >= 0 else None]
            assert f"label: {it.answer}; description: {it.description}" in line
        assert it.key in it.instruction


def test_contexts_within_token_budget(built, tokenizer):
    items, stats, _ = built
    for it in items:
        n = len(tokenizer(it.context, add_special_tokens=False)["input_ids"])
        assert n == it.context_tokens
        assert 0.8 * 1024 <= n <= 1024


def test_positions_cover_the_context_evenly(tokenizer):
    items, stats = probes.build_probes(tokenizer, tasks=["database"], context_tokens=2048, num_positions=10,
                                       num_sets=1, seed=0)
    assert stats.skipped_ambiguous == {}
    by_pos = sorted(items, key=lambda it: it.position_id)
    assert [it.position_id for it in by_pos] == list(range(10))
    unit = 40 / by_pos[0].context_tokens  # a record line is well under 40 tokens
    for it in by_pos:
        target = (it.position_id + 0.5) / 10
        assert abs(it.key_token_fraction - target) <= unit, (it.position_id, it.key_token_fraction)
    fr = [it.key_token_fraction for it in by_pos]
    assert fr == sorted(fr) and fr[0] < 0.1 and fr[-1] > 0.9


def test_place_positions_reference():
    # ten equal units, five positions: centres at 0.5..9.5, targets at 1, 3, 5, 7, 9 -> ties go left
    assert probes.place_positions([10] * 10, 5) == [0, 2, 4, 6, 8]
    # as many positions as units: every unit once, in order
    assert probes.place_positions([3, 50, 7, 20], 4) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="positions"):
        probes.place_positions([10, 10], 3)


def _record(i: int, description: str) -> probes.Unit:
    label = f"Zqx{i}label"  # no training text contains it (held_out keeps it)
    text = f"id: Q{1000000 + i}; label: {label}; description: {description}"
    return probes.Unit(text, label, text.index("label: ") + 7, f"Q{1000000 + i}", 4, description)


def test_ambiguous_key_is_skipped_and_counted(tokenizer, monkeypatch):
    units = [_record(i, f"thing number {i}") for i in range(6)]
    units[5] = _record(5, "successor of Q1000003")  # Q1000003 now occurs twice
    monkeypatch.setattr(probes, "make_units", lambda task, n, rng, seed, corpus, pieces=None: list(units))
    skipped = []
    items, stats = probes.build_probes(tokenizer, tasks=["database"], context_tokens=512, num_positions=6,
                                       seed=1, on_skip=lambda pid, r: skipped.append((pid, r)))
    assert len(items[0].context.split("\n")) == 6
    assert stats.skipped_ambiguous == {"database": 1}
    assert skipped == [("database-s0-p3", "ambiguous key: occurs 2 times in the context")]
    assert sorted(it.position_id for it in items) == [0, 1, 2, 4, 5]
    assert all(it.context.count(it.key) == 1 for it in items)


def test_build_is_deterministic(tokenizer):
    a, _ = probes.build_probes(tokenizer, tasks=["document", "code"], context_tokens=512, num_positions=3, seed=7)
    b, _ = probes.build_probes(tokenizer, tasks=["document", "code"], context_tokens=512, num_positions=3, seed=7)
    c, _ = probes.build_probes(tokenizer, tasks=["document"], context_tokens=512, num_positions=3, seed=8)
    assert [x.to_dict() for x in a] == [x.to_dict() for x in b]
    assert a[0].context != c[0].context


def test_middle_fragment_never_touches_the_edges():
    rng = random.Random(0)
    s = "one two three four five six seven eight nine ten eleven twelve."
    for _ in range(50):
        frag, off = probes.middle_fragment(s, rng)
        words = frag.split()
        assert 4 <= len(words) <= 8
        assert s[off:off + len(frag)] == frag
        assert not s.startswith(frag) and "one two" not in frag and "twelve." not in frag
    assert probes.middle_fragment("too short for a fragment here.", rng) is None


def test_code_key_lines_are_body_code():
    fn = sources.Function("parse_items", 'def parse_items(text, sep=","):\n    """Split text.\n\n    More words here in the doc.\n    """\n'
                          "    # a comment line that is long enough\n    parts = [p.strip() for p in text.split(sep)]\n"
                          "    return parse_items(parts)\n    return None\n", "m")
    keys = [k for k, _ in probes.key_lines(fn)]
    assert keys == ["parts = [p.strip() for p in text.split(sep)]"]
    for k, off in probes.key_lines(fn):
        assert fn.source[off:off + len(k)] == k


def test_stdlib_functions_are_real(tokenizer):
    fns = sources.sample_functions(10, seed=0)
    import ast

    for fn in fns:
        tree = ast.parse(fn.source)
        assert isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef))
        assert tree.body[0].name == fn.name
    assert len({fn.name for fn in fns}) == len(fns)


def test_probe_from_dict_validates(built):
    from longcurate.core.records import RecordError

    d = built[0][0].to_dict()
    assert probes.Probe.from_dict(d) == built[0][0]
    with pytest.raises(RecordError) as e:
        probes.Probe.from_dict({k: v for k, v in d.items() if k != "key"})
    assert e.value.field == "key"
    with pytest.raises(RecordError):
        probes.Probe.from_dict({**d, "task": "poetry"})


def test_user_corpus_jsonl_and_the_shared_splitter(tmp_path):
    from longcurate.core.errors import UserError
    from longcurate.core.holdout import HoldoutConfig
    from longcurate.core.text import split_sentences

    text = "Dr. Smith met J. R. R. Tolkien in 1950. They talked for hours.\nA new paragraph starts here."
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps({"title": "B", "text": text}) + "\n" +
                    json.dumps({"title": "A", "extract": "Only one sentence here.", "description": "d"}) + "\n" +
                    json.dumps({"title": "B", "text": "a second B is ignored."}) + "\n")
    arts = sources.load_articles(str(path))
    assert [(a.title, a.description) for a in arts] == [("A", "d"), ("B", "")]
    assert [a.doc_id for a in arts] == ["corpus.jsonl:2", "corpus.jsonl:1"]  # no `id`: file and line, as synth names them
    whole = sources.EvalCorpus.of(str(path), "wiki-summaries", HoldoutConfig())  # eval's own corpus: all of it
    assert not whole.partitioned
    assert sources.corpus_sentences(whole, min_words=1) == ("Only one sentence here.", *split_sentences(text))
    assert split_sentences(text)[0] == "Dr. Smith met J. R. R. Tolkien in 1950."
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"title": "A", "text": "fine."}) + "\n{not json\n")
    with pytest.raises(UserError, match="bad.jsonl:2"):
        sources.load_articles(str(bad))


def test_a_code_key_that_is_not_unique_gives_way_to_another_line():
    u = probes.Unit("def f():\n    x = shared_line(1)\n    y = own_line(2)", "f", 4, "x = shared_line(1)", 13,
                    alternates=[("y = own_line(2)", 36)])
    assert u.unique_key(u.text) == ("x = shared_line(1)", 13)
    context = u.text + "\n\ndef g():\n    x = shared_line(1)"
    assert u.unique_key(context) == ("y = own_line(2)", 36) and u.text[36:36 + 15] == "y = own_line(2)"
    assert probes.Unit("t", "a", 0, "k", 0).unique_key("k k") is None
