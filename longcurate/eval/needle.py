"""Needle in a haystack: one needle sentence at depth d% of a haystack of L tokens of corpus text,
over a depth × length grid, scored by recall of the needle's key words.

The haystack is text of the corpus's eval part (`sources.EvalCorpus`), never of the part synth trains
on. Haystack sentences that contain any key word are left out, so a key word in the answer can only come
from the needle. The haystack of each length is the same text for every depth (only the needle moves).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
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
