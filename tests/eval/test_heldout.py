"""Evaluation text is held out from training: with the default config, probes and needle haystacks come
from the bundled corpus's eval part, and no eval answer, key or needle occurs in what synth writes from
its train part; a user corpus is partitioned only when synth reads it too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longcurate.cli import main
from longcurate.core.holdout import HoldoutConfig, side_of
from longcurate.core.overlap import normalize
from longcurate.core.wiki import read_wiki_summaries
from longcurate.eval import sources


def occurs(needle: str, text: str) -> bool:
    """Reference for the check's exact match: the normalised needle inside the normalised text,
    not starting or ending inside a word."""
    n, t = normalize(needle), normalize(text)
    i = t.find(n)
    while n and i >= 0:
        j = i + len(n)
        cut_left = i > 0 and t[i - 1].isalnum() and n[0].isalnum()
        cut_right = j < len(t) and t[j].isalnum() and n[-1].isalnum()
        if not (cut_left or cut_right):
            return True
        i = t.find(n, i + 1)
    return False


def test_reference_match():
    assert occurs("Green  Cardamom", "with green cardamom.") and not occurs("cardamom", "cardamoms")
    assert occurs("(y)", "x(y)") and not occurs("Io", "Iowa")


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The default config's item files, and synth's samples made with the same config (fewer of them:
    the count does not change which part of the corpus synth reads)."""
    root = tmp_path_factory.mktemp("heldout")
    assert main(["eval", "build", f"output_dir={root}"]) == 0
    assert main(["synth", "run", f"output_dir={root}", "synth.num_samples=100"]) == 0
    probes = [json.loads(x) for x in (root / "eval" / "probes.jsonl").read_text().splitlines()]
    needles = [json.loads(x) for x in (root / "eval" / "needle.jsonl").read_text().splitlines()]
    samples = [json.loads(x) for x in (root / "samples.jsonl").read_text().splitlines()]
    return root, probes, needles, samples


def test_no_eval_answer_key_or_needle_occurs_in_the_synth_output(default_run):
    root, probes, needles, samples = default_run
    assert {p["task"] for p in probes} == {"document", "code", "database"} and needles and len(samples) >= 90
    asked = [(p["id"], p["answer"]) for p in probes] + [(p["id"], p["key"]) for p in probes]
    asked += [(n["id"], n["needle"]) for n in needles]
    training = [" ".join([s["context"], s["instruction"], s["response"], *(m["content"] for m in s["messages"])])
                for s in samples]
    found = [(item, text) for item, text in asked if any(occurs(text, t) for t in training)]
    assert found == []
    out = root / "contamination.json"
    assert main(["check", "contamination", "--train", str(root / "samples.jsonl"), "--eval",
                 str(root / "eval" / "probes.jsonl"), str(root / "eval" / "needle.jsonl"), "--output", str(out),
                 "--require-clean"]) == 0
    result = json.loads(out.read_text())
    assert result["exact_items"] == 0 and len(result["items"]) == len(probes) + len(needles)


def test_items_come_from_the_eval_part_and_synth_from_the_other(default_run):
    root, probes, needles, samples = default_run
    holdout = HoldoutConfig()
    articles = list(read_wiki_summaries())
    eval_text = "\n".join(a.text for a in articles if side_of(a.doc_id, holdout) == "eval")
    train_text = "\n".join(a.text for a in articles if side_of(a.doc_id, holdout) == "train")
    eval_titles = {a.title for a in articles if side_of(a.doc_id, holdout) == "eval"}
    for p in probes:
        if p["task"] == "document":
            assert p["answer"] in eval_text and p["answer"] not in train_text
        elif p["task"] == "database":
            assert p["answer"] in eval_titles
        else:
            assert sources.identifier_like(p["answer"])
    haystack = needles[-1]["context"].replace(needles[-1]["needle"], " ")
    sentences = [s for s in haystack.split(". ") if len(s.split()) > 6]
    assert sentences and all(s in eval_text for s in sentences)
    synth_docs = {d for s in samples for d in s["source"].get("doc_ids", [])}
    assert synth_docs and all(side_of(d, holdout) == "train" for d in synth_docs)
    marker = json.loads((root / "eval" / "probes.jsonl.done").read_text())
    assert marker["params"]["corpus"] == "wiki-summaries"
    assert marker["params"]["holdout"] == {"fraction": holdout.fraction, "salt": holdout.salt}


def test_which_corpora_are_partitioned(tmp_path):
    corpus = tmp_path / "mine.jsonl"
    rows = [{"id": f"doc{i}", "title": f"Title {i}", "text": f"Sentence number {i} of my corpus."} for i in range(200)]
    corpus.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    h = HoldoutConfig(fraction=0.3)
    shared = sources.EvalCorpus.of(str(corpus), str(corpus), h)  # synth reads it too: eval keeps to its part
    own = sources.EvalCorpus.of(str(corpus), "wiki-summaries", h)  # eval's own corpus: all of it
    off = sources.EvalCorpus.of(str(corpus), str(corpus), HoldoutConfig(fraction=0.0))  # split turned off
    expected = {f"doc{i}" for i in range(200) if side_of(f"doc{i}", h) == "eval"}
    assert 30 < len(expected) < 90
    assert {a.doc_id for a in sources.eval_articles(shared)} == expected
    assert len(sources.eval_articles(own)) == len(sources.eval_articles(off)) == 200
    assert sources.EvalCorpus.of("wiki-summaries", str(corpus), h).partitioned  # the bundled one always
    # a candidate answer the training part contains is found; one only the eval part holds is not
    train_doc = next(i for i in range(200) if f"doc{i}" not in expected)
    eval_doc = next(i for i in range(200) if f"doc{i}" in expected)
    assert sources.taught(shared, [f"sentence NUMBER {train_doc}", f"Sentence number {eval_doc}"]) == \
        {f"sentence NUMBER {train_doc}"}
    assert sources.taught(own, [f"Sentence number {train_doc}"]) == set()  # nothing to compare against


CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RUN_CONFIGS = sorted(p.name for p in CONFIGS.glob("*.yaml") if p.name != "fsdp.yaml")


@pytest.mark.parametrize("config", [*RUN_CONFIGS, "default"])
def test_the_eval_part_is_large_enough_for_every_config(config, tokenizer):
    """Every config's probes are built from the eval part with every position asked (one set, with the
    SmolLM2 tokenizer); contexts over 4K tokens (paper-7b: 32K, 800 positions, tens of seconds per
    task) only check that the part holds enough sentences and records. Haystack text suffices for the
    longest needle."""
    from longcurate.config import RunConfig
    from longcurate.core.config import build, load_yaml
    from longcurate.eval.items import eval_corpus
    from longcurate.eval.probes import build_probes

    cfg = build(RunConfig, load_yaml(CONFIGS / config) if config != "default" else {})
    corpus = eval_corpus(cfg)
    p = cfg.eval.probes
    assert corpus.partitioned  # every shipped config evaluates on the bundled corpus's eval part
    if p.context_tokens <= 4096:
        items, stats = build_probes(tokenizer, tasks=p.tasks, context_tokens=p.context_tokens,
                                    num_positions=p.num_positions, num_sets=1, seed=cfg.seed, corpus=corpus)
        for task in p.tasks:
            n = sum(1 for it in items if it.task == task)
            assert n + stats.skipped_ambiguous.get(task, 0) == p.num_positions, task
            assert n >= 0.75 * p.num_positions, task
            assert stats.context_tokens[task][0] >= 0.85 * p.context_tokens, task
    else:  # ~35 tokens per sentence, ~20 per record: the units a context of context_tokens holds
        assert len(sources.corpus_sentences(corpus, min_words=12)) >= max(p.num_positions, 2 * p.context_tokens / 35)
        assert len([a for a in sources.eval_articles(corpus) if a.description]) >= p.context_tokens / 20
    words = sum(len(a.text.split()) for a in sources.eval_articles(corpus))
    assert words >= max(cfg.eval.needle.lengths)  # a token is ~0.75 words: ample
