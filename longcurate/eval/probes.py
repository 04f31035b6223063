"""VaL-style probes (FILM): can the model use information at *every* position of a long context?

Three tasks, each a long context of many small units with one key asked about per position:

- `document` (bi-directional): units are corpus sentences; key = a fragment from the middle of one
  sentence; answer = the whole sentence (reading both left and right of the key).
- `code` (backward): units are real standard-library functions; key = a line of one function's body;
  answer = that function's name (written *before* the key).
- `database` (forward): units are records `id: …; label: …; description: …`; key = an id; answer =
  the label and description (written *after* the key).

Per set (`set_id`) one context of `context_tokens` tokens is built; `num_positions` keys are placed at
evenly spread fractions (p + 0.5) / P of the context (`position_id` p), each on the unit nearest its
target. Ambiguity check: a key that does not occur exactly once in the context is skipped and counted
(a code unit first tries its function's other lines).

Held out (`sources`): sentences and records come from the corpus's eval part, and a unit whose answer
or key occurs in the training part's text is never asked about (it may only fill a context up; see
`fill_context`); functions come from the standard library. Within a context no two units share an
answer, so every answer names one unit.
"""

from __future__ import annotations

import bisect
import logging
import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from longcurate.core.errors import UserError
from longcurate.eval import sources

log = logging.getLogger("longcurate.eval")

TASKS = ("document", "code", "database")

INSTRUCTIONS = {
    "document": 'In the context above, one sentence contains the piece "{key}". Quote that complete sentence.',
    "code": 'In the context above, which function contains the code line "{key}"? Answer with the function name only.',
    "database": 'In the context above, what are the label and the description of the record with the id "{key}"? '
                "Answer with the label and the description.",
}
SEPARATORS = {"document": " ", "code": "\n\n", "database": "\n"}
TOKENS_PER_UNIT = {"document": 30, "code": 120, "database": 20}  # a first guess, refined per context


@dataclass
class Probe:
    id: str
    task: str
    set_id: int
    position_id: int
    key: str
    answer: str  # the sentence / the function name / the record's label
    context: str
    instruction: str
    # Recorded by the builder; a probe file of the user's may leave them out (None).
    num_positions: int | None = None
    key_char: int | None = None  # where the key starts in the context
    answer_char: int | None = None  # where the answer starts in the context
    key_token: int | None = None  # the key's first token in the tokenized context
    key_token_fraction: float | None = None  # key_token / context_tokens: where the key sits, 0 = start, 1 = end
    context_tokens: int | None = None
    description: str | None = None  # database: the record's description (also accepted as an answer)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Probe":
        """A probe line, every field it is scored or aggregated by checked (`item_checks.check_probe`:
        a bad one raises `RecordError` naming it, and the line is quarantined, never scored)."""
        from longcurate.eval.item_checks import check_probe

        check_probe(d, TASKS)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Unit:
    """One piece of a context: its text, where its answer sits, and the key it would be asked by."""

    text: str
    answer: str
    answer_offset: int
    key: str
    key_offset: int
    description: str | None = None
    alternates: list[tuple[str, int]] = field(default_factory=list)  # other keys (key, offset), in preference order

    def unique_key(self, context: str) -> tuple[str, int] | None:
        """Its key, or the first alternate, that occurs exactly once in the context (None: none does)."""
        return next(((k, o) for k, o in [(self.key, self.key_offset), *self.alternates] if context.count(k) == 1),
                    None)


@dataclass
class BuildStats:
    items: int = 0
    skipped_ambiguous: dict[str, int] = field(default_factory=dict)
    context_tokens: dict[str, list[int]] = field(default_factory=dict)


# --- units per task -----------------------------------------------------------------------------

def middle_fragment(sentence: str, rng: random.Random, min_words: int = 4, max_words: int = 8) -> tuple[str, int] | None:
    """A run of words strictly inside the sentence (never its first two or last two words), so the
    whole sentence can only be recovered by reading both sides of it. Returns (fragment, char offset)."""
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", sentence)]
    inner = len(spans) - 4
    if inner < min_words:
        return None
    k = rng.randint(min_words, min(max_words, inner))
    start = rng.randint(2, len(spans) - 2 - k)
    a, b = spans[start][0], spans[start + k - 1][1]
    return sentence[a:b], a


def document_units(n: int, rng: random.Random, corpus: sources.EvalCorpus) -> list[Unit]:
    pool = sources.corpus_sentences(corpus, min_words=12)
    out = []
    for i in rng.sample(range(len(pool)), min(len(pool), n)):
        s = pool[i]
        frag = middle_fragment(s, rng)
        if frag is not None:
            out.append(Unit(s, s, 0, frag[0], frag[1]))
    return out


_TRIVIAL = re.compile(r"^(return|pass|break|continue|else:|try:|finally:|raise)\b\s*\w{0,12}$")


def key_lines(fn: sources.Function) -> list[tuple[str, int]]:
    """Body lines that can serve as a key: code (not comments, docstrings or brackets), at least 16
    characters, three or more tokens, and not naming the function itself."""
    lines = fn.source.split("\n")
    offsets, pos = [], 0
    for line in lines:
        offsets.append(pos)
        pos += len(line) + 1
    body_start = next((i + 1 for i, line in enumerate(lines) if line.rstrip().endswith(":")), 1)
    out = []
    in_doc = False
    for i in range(body_start, len(lines)):
        s = lines[i].strip()
        quotes = s.count('"""') + s.count("'''")
        if in_doc or quotes:
            in_doc = in_doc != (quotes % 2 == 1)
            continue
        if (len(s) < 16 or s.startswith("#") or fn.name in s or _TRIVIAL.match(s)
                or len(re.findall(r"\w+|[^\w\s]", s)) < 3):
            continue
        out.append((s, offsets[i] + lines[i].index(s)))
    return out


def code_units(n: int, rng: random.Random, seed: int) -> list[Unit]:
    fns = sources.sample_functions(n, seed, accept=lambda fn: sources.identifier_like(fn.name), strict=False)
    rng.shuffle(fns)
    out = []
    for fn in fns:
        keys = key_lines(fn)
        if not keys:
            continue
        rng.shuffle(keys)
        name_at = re.search(r"def\s+(\w+)", fn.source)
        # another line of the function stands in when a common line (a shared idiom) is not unique
        out.append(Unit(fn.source, fn.name, name_at.start(1) if name_at else 0, *keys[0], alternates=keys[1:]))
    return out


def database_units(n: int, rng: random.Random, corpus: sources.EvalCorpus) -> list[Unit]:
    articles = [a for a in sources.eval_articles(corpus) if a.description and "\n" not in a.title + a.description]
    chosen = rng.sample(articles, min(n, len(articles)))
    ids = rng.sample(range(1_000_000, 10_000_000), len(chosen))  # fixed width: no id is a prefix of another
    out = []
    for a, num in zip(chosen, ids):
        key = f"Q{num}"
        text = f"id: {key}; label: {a.title}; description: {a.description}"
        out.append(Unit(text, a.title, text.index("label: ") + 7, key, 4, a.description))
    return out


def make_units(task: str, n: int, rng: random.Random, seed: int, corpus: sources.EvalCorpus,
               pieces: str | None = None) -> list[Unit]:
    """`n` units of a task: from FILM's raw pieces in `pieces` (a folder) when given, else from the
    corpus (document, database) and the standard library (code)."""
    if pieces is not None and task in TASKS:
        from longcurate.eval.pieces import draw

        return [Unit(*u) for u in draw(pieces, task, n, rng)]
    if task == "document":
        return document_units(n, rng, corpus)
    if task == "code":
        return code_units(n, rng, seed)
    if task == "database":
        return database_units(n, rng, corpus)
    raise UserError(f"unknown probe task {task!r}; known: {', '.join(TASKS)}")


def draw_units(task: str, context_tokens: int, num_positions: int, rng: random.Random, seed: int,
               corpus: sources.EvalCorpus, count: Callable[[list[str]], list[int]],
               pieces: str | None = None) -> list[Unit]:
    """About twice the text a context holds, one unit per answer. When the units are too long on
    average for the context to hold one per position (standard-library functions, ~120 tokens, in a
    1,536-token context with 16 positions), those over 0.9 × context_tokens / num_positions are left out."""
    sep = SEPARATORS[task]
    units: list[Unit] = []
    limit, tokens, n = float("inf"), 0, max(8, 2 * context_tokens // TOKENS_PER_UNIT[task])
    for attempt in range(3):  # the first draw measures the unit size; the others make up the rest
        drawn = make_units(task, n, rng, seed + 500 * attempt, corpus, pieces)
        sizes = count([u.text + sep for u in drawn])
        if attempt == 0 and sizes and sum(sizes) / len(sizes) * num_positions > 0.9 * context_tokens:
            limit = 0.9 * context_tokens / num_positions
        kept = [(u, k) for u, k in zip(drawn, sizes) if k <= limit]
        units = units + [u for u, _ in kept]
        tokens += sum(k for _, k in kept)
        if tokens >= 2 * context_tokens or not drawn:
            break
        avg = sum(sizes) / len(sizes)
        n = int((2 * context_tokens - tokens) / avg * len(drawn) / max(1, len(kept))) + 8
    return distinct_answers(units)


def fill_context(units: list[Unit], asked: set[int], sep: str, target_tokens: int,
                 count: Callable[[list[str]], list[int]], rng: random.Random) -> tuple[list[Unit], list[int]]:
    """The context's units: those that may be asked about (`asked`: their ids) in drawn order. When they
    cannot fill the context (a long database context: most entity names occur in the training part's
    text), the others fill it up as plain context, never asked about, shuffled in among them."""
    first = [u for u in units if id(u) in asked]
    kept, lengths = assemble(first, sep, target_tokens, count)
    rest = [u for u in units if id(u) not in asked]
    if sum(lengths) >= 0.9 * target_tokens or not rest:
        return kept, lengths
    kept, lengths = assemble(first + rest, sep, target_tokens, count)
    order = list(range(len(kept)))
    rng.shuffle(order)
    return [kept[i] for i in order], [lengths[i] for i in order]


def held_out(units: list[Unit], corpus: sources.EvalCorpus) -> list[Unit]:
    """The units whose answer and key the training part does not contain (`sources.taught`)."""
    found = sources.taught(corpus, [t for u in units for t in (u.answer, u.key, *(k for k, _ in u.alternates))])
    for u in units:
        u.alternates = [(k, o) for k, o in u.alternates if k not in found]
    return [u for u in units if u.answer not in found and u.key not in found]


def distinct_answers(units: list[Unit]) -> list[Unit]:
    """The first unit of each answer: a second draw may repeat an entity or a function name."""
    seen: set[str] = set()
    return [u for u in units if not (u.answer in seen or seen.add(u.answer))]


# --- assembly -----------------------------------------------------------------------------------

def assemble(units: list[Unit], sep: str, target_tokens: int, count: Callable[[list[str]], list[int]]) -> tuple[list[Unit], list[int]]:
    """Take units in order while the context stays within `target_tokens`; returns the units and each
    one's token count (separator included)."""
    lengths = count([u.text + sep for u in units])
    kept, kept_len, total = [], [], 0
    for u, n in zip(units, lengths):
        if total + n > target_tokens:
            if total >= 0.9 * target_tokens:
                break
            continue  # a long unit at the end: try a shorter one
        kept.append(u)
        kept_len.append(n)
        total += n
    return kept, kept_len


def place_positions(unit_tokens: list[int], num_positions: int, allowed: list[bool] | None = None) -> list[int]:
    """For each position p, the index of the unit whose centre is nearest (p + 0.5) / P of the
    context's tokens; a unit already taken gives way to the nearest free one. Only `allowed` units
    (default: all) are asked about."""
    allowed = allowed if allowed is not None else [True] * len(unit_tokens)
    if num_positions > sum(allowed):
        raise UserError(f"{num_positions} positions need at least as many units; the context holds "
                         f"{sum(allowed)} that can be asked about: raise context_tokens or lower num_positions")
    total = sum(unit_tokens)
    centres, acc = [], 0
    for n in unit_tokens:
        centres.append(acc + n / 2)
        acc += n
    taken: set[int] = set()
    out = []
    for p in range(num_positions):
        target = (p + 0.5) / num_positions * total
        order = sorted(range(len(centres)), key=lambda i: (abs(centres[i] - target), i))
        idx = next(i for i in order if i not in taken and allowed[i])
        taken.add(idx)
        out.append(idx)
    return out


def token_counter(tokenizer) -> Callable[[list[str]], list[int]]:
    def count(texts: list[str]) -> list[int]:
        if not texts:
            return []
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    return count


def build_task(task: str, tokenizer, *, context_tokens: int, num_positions: int, num_sets: int, seed: int,
               corpus: sources.EvalCorpus = sources.EvalCorpus(), on_skip: Callable[[str, str], None] | None = None,
               stats: BuildStats | None = None, pieces: str | None = None) -> list[Probe]:
    """All probes of one task: `num_sets` contexts × `num_positions` keys (minus ambiguous ones);
    units from FILM's raw pieces when `pieces` names their folder."""
    count = token_counter(tokenizer)
    sep = SEPARATORS[task]
    stats = stats if stats is not None else BuildStats()
    out: list[Probe] = []
    for set_id in range(num_sets):
        rng = random.Random(f"{seed}:{task}:{set_id}")
        units = draw_units(task, context_tokens, num_positions, rng, seed * 1000 + set_id, corpus, count, pieces)
        asked = {id(u) for u in held_out(units, corpus)}
        kept, lengths = fill_context(units, asked, sep, context_tokens, count, rng)
        while True:  # tokens merge across unit boundaries: trim until the real count fits
            context = sep.join(u.text for u in kept)
            enc = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)
            if len(enc["input_ids"]) <= context_tokens or len(kept) <= num_positions:
                break
            kept, lengths = kept[:-1], lengths[:-1]
        token_ends = [end for _, end in enc["offset_mapping"]]
        n_tokens = len(token_ends)
        starts, pos = [], 0
        for u in kept:
            starts.append(pos)
            pos += len(u.text) + len(sep)
        stats.context_tokens.setdefault(task, []).append(n_tokens)
        for p, idx in enumerate(place_positions(lengths, num_positions, [id(u) in asked for u in kept])):
            u = kept[idx]
            pid = f"{task}-s{set_id}-p{p}"
            found = u.unique_key(context)
            if found is None:
                stats.skipped_ambiguous[task] = stats.skipped_ambiguous.get(task, 0) + 1
                if on_skip:
                    on_skip(pid, f"ambiguous key: occurs {context.count(u.key)} times in the context")
                continue
            key, key_offset = found
            key_char = starts[idx] + key_offset
            key_token = bisect.bisect_right(token_ends, key_char)  # the first token reaching past key_char
            out.append(Probe(
                id=pid, task=task, set_id=set_id, position_id=p, num_positions=num_positions, key=key,
                answer=u.answer, context=context, instruction=INSTRUCTIONS[task].format(key=key),
                key_char=key_char, answer_char=starts[idx] + u.answer_offset, key_token=key_token,
                key_token_fraction=round(key_token / n_tokens, 6), context_tokens=n_tokens,
                description=u.description))
    stats.items += len(out)
    return out


def build_probes(tokenizer, *, tasks: list[str] | tuple[str, ...] = TASKS, context_tokens: int = 2048,
                 num_positions: int = 4, num_sets: int = 1, seed: int = 0,
                 corpus: sources.EvalCorpus = sources.EvalCorpus(),
                 on_skip: Callable[[str, str], None] | None = None, pieces: str | None = None,
                 task_positions: dict[str, int] | None = None) -> tuple[list[Probe], BuildStats]:
    """Every task's probes; `task_positions` gives a task its own number of positions (FILM's database
    task has 750 where the others have 800), `pieces` FILM's raw pieces as the units."""
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise UserError(f"unknown probe task(s) {unknown}; known: {', '.join(TASKS)}")
    positions = {t: int((task_positions or {}).get(t, num_positions)) for t in tasks}
    if context_tokens < 64 or min(positions.values(), default=1) < 1 or num_sets < 1:
        raise UserError("need context_tokens >= 64, num_positions >= 1, num_sets >= 1")
    stats = BuildStats()
    items: list[Probe] = []
    for task in tasks:
        items.extend(build_task(task, tokenizer, context_tokens=context_tokens, num_positions=positions[task],
                                num_sets=num_sets, seed=seed, corpus=corpus, on_skip=on_skip, stats=stats,
                                pieces=pieces))
    return items, stats
