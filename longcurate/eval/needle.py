"""Needle in a haystack: one needle sentence at depth d% of a haystack of L tokens of corpus text,
over a depth × length grid, scored by recall of the needle's key words, and optionally also rated 1-10
by a judge (`eval.needle.judge`: LongAlign's needle rating, `judge_needles`).

The haystack is text of the corpus's eval part (`sources.EvalCorpus`), never of the part synth trains
on. Haystack sentences that contain any key word are left out, so a key word in the answer can only come
from the needle. The haystack of each length is the same text for every depth (only the needle moves).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from longcurate.core.errors import UserError
from longcurate.core.text import split_sentences
from longcurate.eval import sources
from longcurate.eval.probes import token_counter
from longcurate.eval.scoring import needle_words


@dataclass
class NeedleItem:
    id: str
    length: int  # target haystack length in tokens (needle included)
    depth: float  # percent: 0 = the very start, 100 = the very end
    context: str
    needle: str
    question: str
    key_words: list[str]
    needle_char: int
    needle_token_fraction: float
    context_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def haystack_sentences(corpus: sources.EvalCorpus, key_words: list[str], seed: int) -> list[str]:
    """Sentences of the corpus's eval part in a seeded article order (each article's sentences kept in
    order), without the ones that contain a key word."""
    keys = {k.lower() for k in key_words}
    articles = list(sources.eval_articles(corpus))
    random.Random(f"{seed}:needle").shuffle(articles)
    out = []
    for a in articles:
        for s in split_sentences(a.text):
            if not keys & needle_words(s):
                out.append(s)
        if len(out) > 20000:
            break
    return out


def build_needles(tokenizer, *, lengths: list[int], depths: list[float], needle: str, question: str,
                  key_words: list[str], seed: int = 0,
                  corpus: sources.EvalCorpus = sources.EvalCorpus()) -> list[NeedleItem]:
    if not lengths or not depths:
        raise UserError("needle: lengths and depths must not be empty")
    if any(not 0 <= d <= 100 for d in depths):
        raise UserError(f"needle depths are percentages in [0, 100], got {depths}")
    missing = [k for k in key_words if k.lower() not in needle_words(needle)]
    if missing:
        raise UserError(f"needle key word(s) {missing} do not occur in the needle {needle!r}")
    count = token_counter(tokenizer)
    needle_tokens = count([needle + " "])[0]
    pool = haystack_sentences(corpus, key_words, seed)
    # sentences are counted once, enough for the longest haystack (each length takes a prefix)
    sizes_all = count(pool[: max(64, max(lengths) // 8)])
    items = []
    for L in sorted(set(lengths)):
        budget = L - needle_tokens
        if budget <= 0:
            raise UserError(f"needle length {L} is shorter than the needle ({needle_tokens} tokens)")
        sents, sizes, total = [], [], 0
        for s, n in zip(pool, sizes_all):
            if total + n > budget:
                break
            sents.append(s)
            sizes.append(n)
            total += n
        bounds = [0]  # token offset of every gap between sentences
        for n in sizes:
            bounds.append(bounds[-1] + n)
        for d in depths:
            target = d / 100 * total
            gap = min(range(len(bounds)), key=lambda i: (abs(bounds[i] - target), i))
            parts = sents[:gap] + [needle] + sents[gap:]
            context = " ".join(parts)
            needle_char = len(" ".join(sents[:gap])) + (1 if gap else 0)
            assert context[needle_char:needle_char + len(needle)] == needle
            n_tokens = len(tokenizer(context, add_special_tokens=False)["input_ids"])
            items.append(NeedleItem(
                id=f"needle-L{L}-d{d:g}", length=L, depth=float(d), context=context, needle=needle,
                question=question, key_words=list(key_words), needle_char=needle_char,
                needle_token_fraction=round(bounds[gap] / max(1, total), 6), context_tokens=n_tokens))
    return items


# --- LongAlign's judge rating (eval.needle.judge) ---------------------------------------------------

NEEDLE_SYSTEM = "You are a helpful assistant."
# LongAlign's Needle_test/eval.py: its criteria text (typo included) and its user template, verbatim.
NEEDLE_CRITERIA = (
    "For this evaluation, you should primarily consider the following criteria:\naccuracy: \n"
    "    Score 1: The answer is completely unrelated to the reference.\n"
    "    Score 3: The answer has minor relevance but does not align with the reference.\n"
    "    Score 5: The answer has moderate relevance but contains inaccuracies.\n"
    "    Score 7: The answer aligns with the reference but has minor omissions.\n"
    "    Score 10: The answer is completely accurate and aligns perfectly with the reference.\n"
    "    Only respond with a numberical score\n    \n")
NEEDLE_TEMPLATE = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI "
    "assistant to the user question displayed below. {criteria}[Ground truth]\n{reference}\nBegin your evaluation "
    "by providing a short explanation. Be as objective as possible. After providing your explanation, you must rate "
    "the response on a scale of 1 to 10 by strictly following this format: \"[[rating]]\", for example: "
    "\"Rating: [[5]]\".\n\n[Question]\n{input}\n\n[The Start of Assistant's Answer]\n{prediction}\n"
    "[The End of Assistant's Answer]")


def needle_judge_messages(question: str, needle: str, prediction: str) -> list[dict[str, str]]:
    """LongAlign's needle rating request: the needle is the ground truth, the answer is stripped."""
    user = NEEDLE_TEMPLATE.format(criteria=NEEDLE_CRITERIA, reference=needle, input=question,
                                  prediction=prediction.strip())
    return [{"role": "system", "content": NEEDLE_SYSTEM}, {"role": "user", "content": user}]


def judge_needles(cfg: Any, items: list[dict[str, Any]], results: dict[str, Any], predictions: Path) -> dict[str, Any]:
    """Rate each predicted needle item 1-10 (`eval.judge`, LongAlign's first `[[n]]`): `results` with the
    grid of mean ratings under `judge`, beside the key-word recall."""
    from longcurate.core.jsonl import read_valid_prefix
    from longcurate.eval.judge import Judge, first_integer_rating, judge_cache, usage_total
    from longcurate.eval.scoring import aggregate_needle

    records, _ = read_valid_prefix(predictions)
    preds = {str(r["id"]): r["pred"] for r in records if isinstance(r, dict) and "id" in r and "pred" in r}
    asked = [it for it in items if str(it["id"]) in preds]
    with Judge(cfg.eval.judge, judge_cache(cfg)) as judge:
        ratings = judge.rate_all([needle_judge_messages(it["question"], it["needle"], preds[str(it["id"])])
                                  for it in asked], first_integer_rating, desc="needle judge")
        stats = judge.stats()
    rated = [{"length": it["length"], "depth": it["depth"], "score": r.value} for it, r in zip(asked, ratings)
             if r.value is not None]
    return {**results, "judge": {
        **(aggregate_needle(rated) if rated else {"avg": None}), "scale": "judge rating 1-10 (LongAlign's needle rating)",
        "n_rated": len(rated), "n_failed": sum(r.status == "failed" for r in ratings),
        "n_pending": sum(r.status == "pending" for r in ratings), "judge": stats, "usage": usage_total(ratings),
        "ratings": [{"id": it["id"], "rating": r.value, "status": r.status, "reply": r.reply,
                     **({"error": r.error} if r.error else {})} for it, r in zip(asked, ratings)]}}
