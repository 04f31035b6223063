"""Samples in, token sequences out: what the scorers see, in two prompt formats.

`chat` (default) renders `messages_for(context, instruction, response)` with the model's chat template
(after the sample's `turns_before` and before its `turns_after`, when it was cut from a longer
conversation: `select.conversations`) and tokenizes the whole string once; the scored tokens are the
assistant turn's content tokens (not the end-of-turn marker). `gateau` reproduces the released HMG scripts: the text
`"### Input:" + input + "\\n\\n ### Instruction: " + instruction + "\\n\\n ### Response: " + response`
is tokenized as one string, the loss covers the tokens after the first `len(tokenize(prefix))` tokens,
and an over-long text is truncated on the left. The release's `input` is the user turn minus its last
`\\n\\n`-separated piece (`content[:-len(instruction)]`), so it keeps that blank line: `input` is the
context followed by "\\n\\n" (`release_input`).

IFD's PPL(y) scores the same response tokens after the prompt format with nothing in it
(`alone_view`): Cherry's `"### Response:" + output` for `gateau`, the chat template with an empty user
turn for `chat`.

Every view of a sample (full prompt, θ_A's window, one row per context segment) is cut from that one
tokenization, so the response tokens are identical across views and segment spans line up exactly with
the attention pass.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from longcurate.core.errors import UserError
from longcurate.core.jsonl import RejectSink, reject
from longcurate.core.prompts import gateau_prefix, gateau_text, messages_for, user_prompt
from longcurate.core.reader import read_parsed
from longcurate.core.records import RecordError, Sample
from longcurate.select.conversations import SampleReading

_SENTINEL = "\x00CONTEXT\x00"
GATEAU_RESPONSE_HEADER = "### Response: "  # what precedes the response in the gateau format's empty prompt


def release_input(context: str) -> str:
    """The released scripts' `input`: `content[:-len(instruction)]` keeps the blank line that
    separated the context from the instruction (nothing when there is no context)."""
    return context + "\n\n" if context else ""


class InputReject(ValueError):
    """A sample that cannot be scored; `reason` goes to the rejected file (`field` names the key)."""

    def __init__(self, reason: str, field_name: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.field = field_name


@dataclass
class Prepared:
    """One sample tokenized once. Token spans are [start, end) indices into `input_ids`."""

    id: str
    input_ids: list[int]  # prompt then response (nothing after the response)
    response_start: int
    context_span: tuple[int, int]  # the context's tokens inside the prompt
    context_char_start: list[int]  # char offset (in the sample's context) of each context token
    segments: list[int]  # indices (in the full segmentation) of the kept segments, in order
    segment_spans: list[tuple[int, int]]  # token spans of the kept segments
    num_segments_total: int
    gold_segments: list[int] = field(default_factory=list)  # positions in `segments` overlapping gold
    gold_char_start: int | None = None  # earliest gold start (synth data only)
    truncated: int = 0  # tokens dropped on the left (gateau format / overlong: truncate)

    @property
    def n_response_tokens(self) -> int:
        return len(self.input_ids) - self.response_start

    def item(self, input_ids: list[int] | None = None, response_start: int | None = None,
             segment_spans: list[tuple[int, int]] | None = None):
        """The engine's ScoreItem for this view (the full prompt by default)."""
        from longcurate.core.engine import ScoreItem

        return ScoreItem(id=self.id, input_ids=list(self.input_ids if input_ids is None else input_ids),
                         response_start=self.response_start if response_start is None else response_start,
                         segment_spans=list(self.segment_spans if segment_spans is None else segment_spans))


def parse_sample(record: dict, reading: SampleReading | None = None) -> Sample:
    """The sample `reading` makes of a record of any shape (`select.conversations`; `Sample.from_dict`
    checks counts and gold offsets); any other value it cannot convert is raised as a RecordError,
    so it is quarantined with its reason like any other bad record."""
    try:
        return (reading or SampleReading()).sample(record)
    except RecordError:
        raise
    except (ValueError, TypeError, OverflowError, KeyError) as e:
        raise RecordError("<record>", f"invalid value: {e}") from None


def load_samples(path: str | Path, rejects: RejectSink | None, limit: int | None = None,
                 allow_download: bool = False, reading: SampleReading | None = None) -> list[tuple[int, Sample]]:
    """Read samples from any source `core.reader.read_rows` reads (JSONL, JSON, Parquet, a `datasets`
    folder, each compressed or not, a folder, a glob, a Hub id with `allow_download`) in any shape
    `reading` reads (synth's records, messages, ShareGPT, alpaca, mapped columns); records without an
    id get their content id. Malformed records and repeated ids are quarantined
    (`select.conversations.InputReport` counts what the kept samples were made of).

    Returns (line number, sample) pairs in file order; the first occurrence of an id wins."""
    seen: dict[str, int] = {}
    out: list[tuple[int, Sample]] = []
    reading = reading or SampleReading()
    for row, sample in read_parsed(path, lambda r: parse_sample(r, reading), rejects, allow_download=allow_download):
        if sample.id in seen:
            reason = f"duplicate id: {sample.id!r} already on line {seen[sample.id]}"
            reject(rejects, reason, file=row.file, line=row.line, field_name="id", record_id=sample.id)
            continue
        seen[sample.id] = row.line
        out.append((row.line, sample))
        if limit is not None and len(out) >= limit:
            break
    return out


class PromptBuilder:
    """Tokenizes samples in one prompt format and cuts the views the scorers need."""

    def __init__(self, tokenizer, *, prompt_format: str = "chat", max_length: int = 8192,
                 overlong: str | None = None, segment_tokens: int = 128, max_segments: int | None = None,
                 seed: int = 0):
        overlong = overlong or ("truncate" if prompt_format == "gateau" else "reject")
        if prompt_format == "chat" and getattr(tokenizer, "chat_template", None) is None:
            raise UserError("select.prompt_format 'chat' needs a tokenizer with a chat template; use 'gateau'")
        self.tok = tokenizer
        self.format = prompt_format
        self.max_length = int(max_length)
        self.overlong = overlong
        self.segment_tokens = int(segment_tokens)
        self.max_segments = max_segments
        self.seed = seed
        self._empty: list[int] | None = None

    # --- tokenization -------------------------------------------------------------------------

    def _encode(self, text: str, special: bool) -> tuple[list[int], list[int], list[int]]:
        enc = self.tok(text, add_special_tokens=special, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        return list(enc["input_ids"]), [a for a, _ in offsets], [b for _, b in offsets]

    def _chat_prompt(self, s: Sample) -> str:
        """The chat template over the turns before the scored answer (the context's user turn in
        FILM's form), ending with the generation prompt."""
        turns = [*s.turns_before, messages_for(s.context, s.instruction, s.response)[0], *s.turns_after]
        try:
            return self.tok.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        except Exception as e:  # jinja2's TemplateError / raise_exception(): the template refuses these turns
            raise InputReject(f"chat template error: {e}", "messages") from None

    def _layout(self, s: Sample) -> tuple[list[int], list[int], int, int, int, int]:
        """(ids, token char starts, context char start/end, response token start/end) in the full text."""
        if self.format == "gateau" and (s.turns_before or s.turns_after):
            raise InputReject(f"prompt_format gateau renders one exchange with no system prompt; this sample has "
                              f"{len(s.turns_before) + len(s.turns_after)} turn(s) around it "
                              "(use prompt_format chat)", "messages")
        if self.format == "gateau":
            text = gateau_text(release_input(s.context), s.instruction, s.response)
            ids, starts, _ = self._encode(text, special=True)
            # The released scripts: the loss starts after as many tokens as the prefix has on its own.
            r0 = len(self.tok(gateau_prefix(release_input(s.context), s.instruction))["input_ids"])
            c0 = len("### Input:")
            return ids, starts, c0, c0 + len(s.context), r0, len(ids)
        prompt = self._chat_prompt(s)
        full = prompt + s.response
        ids, starts, ends = self._encode(full, special=False)
        up = user_prompt(s.context, s.instruction)
        at = prompt.find(up)
        if at < 0:
            raise InputReject("chat template does not contain the user turn verbatim", "messages")
        if s.multi_turn and prompt.find(up, at + 1) >= 0:
            raise InputReject("the context's user turn occurs twice in the conversation", "messages")
        c0 = at + user_prompt(_SENTINEL, s.instruction).find(_SENTINEL) if s.context else at
        resp_char = len(prompt)
        # first token that reaches into the response (a token straddling the boundary counts as response)
        r0 = bisect.bisect_left(starts, resp_char)
        if r0 > 0 and ends[r0 - 1] > resp_char:
            r0 -= 1
        r0 = max(r0, 1)
        return ids, starts, c0, c0 + len(s.context), r0, len(ids)

    def prepare(self, s: Sample) -> Prepared:
        """Tokenize a sample; raises InputReject with the reason when it cannot be scored."""
        ids, starts, c0, c1, r0, r1 = self._layout(s)
        if r1 - r0 < 1:
            raise InputReject("empty response: no response tokens after tokenization", "response")
        t0 = bisect.bisect_left(starts, c0)
        t1 = bisect.bisect_left(starts, c1)
        ids = ids[:r1]
        dropped = 0
        if len(ids) > self.max_length:
            if self.overlong == "reject":
                raise InputReject(f"too long: {len(ids)} tokens > max_length {self.max_length}", "context")
            ids, dropped, t0, t1, r0, starts = self._truncate(ids, starts, t0, t1, r0)
        ctx_starts = [starts[i] - c0 for i in range(t0, t1)]
        # A context shorter than one segment has no segments: HMG scores it, CAM rejects it.
        spans = self._segments(t0, t1) if t1 - t0 >= self.segment_tokens else []
        keep = self._sample_segments(s.id, len(spans))
        p = Prepared(id=s.id, input_ids=ids, response_start=r0, context_span=(t0, t1),
                     context_char_start=ctx_starts, segments=keep,
                     segment_spans=[spans[k] for k in keep], num_segments_total=len(spans), truncated=dropped)
        if s.gold:
            p.gold_char_start = min(g.char_start for g in s.gold)
            p.gold_segments = self._gold_positions(p, s)
        return p

    def _truncate(self, ids, starts, t0, t1, r0):
        if self.format == "gateau":
            d = len(ids) - self.max_length  # left truncation of the whole text, as released
            if r0 - d < 1:
                raise InputReject(f"too long: the response alone exceeds max_length {self.max_length}", "response")
            return ids[d:], d, max(t0 - d, 0), max(t1 - d, 0), r0 - d, starts[d:]
        d = len(ids) - self.max_length  # chat: drop the earliest context tokens, keep the template
        if d > t1 - t0:
            raise InputReject(f"too long: {len(ids)} tokens > max_length {self.max_length} "
                              "even without context", "instruction")
        keep = list(range(0, t0)) + list(range(t0 + d, len(ids)))
        return [ids[i] for i in keep], d, t0, t1 - d, r0 - d, [starts[i] for i in keep]

    def _segments(self, t0: int, t1: int) -> list[tuple[int, int]]:
        """Fixed-size token segments of the context; a leftover under half a segment joins the last one."""
        n = self.segment_tokens
        spans = [(a, min(a + n, t1)) for a in range(t0, t1, n)]
        if len(spans) > 1 and spans[-1][1] - spans[-1][0] < n // 2:
            last = spans.pop()
            spans[-1] = (spans[-1][0], last[1])
        return spans

    def _sample_segments(self, sample_id: str, n: int) -> list[int]:
        """At most `max_segments` indices, in order; the draw depends only on the seed and the id."""
        if not self.max_segments or n <= self.max_segments:
            return list(range(n))
        rng = random.Random(f"{self.seed}:{sample_id}")
        return sorted(rng.sample(range(n), self.max_segments))

    def _gold_positions(self, p: Prepared, s: Sample) -> list[int]:
        """Kept segments whose characters overlap any gold span."""
        t0 = p.context_span[0]
        out = []
        for pos, (a, b) in enumerate(p.segment_spans):
            ca = p.context_char_start[a - t0]
            cb = p.context_char_start[b - t0] if b - t0 < len(p.context_char_start) else len(s.context)
            if any(g.char_start < cb and ca < g.char_end for g in s.gold):
                out.append(pos)
        return out

    # --- views --------------------------------------------------------------------------------

    def window_view(self, p: Prepared, window: int) -> tuple[list[int], int, int | None]:
        """θ_A's input: everything but the context, plus the last context tokens that fit in `window`.

        Returns (input_ids, response_start, char offset of the first context token kept or None)."""
        t0, t1 = p.context_span
        fixed = len(p.input_ids) - (t1 - t0)
        k = max(0, min(t1 - t0, window - fixed))
        ids = p.input_ids[:t0] + p.input_ids[t1 - k:]
        r0 = p.response_start - (t1 - t0 - k)
        first_char = p.context_char_start[t1 - k - t0] if k > 0 else None
        if len(ids) > window:  # instruction + response alone exceed the window: cut the template's head
            d = min(len(ids) - window, r0 - 1)
            ids, r0 = ids[d:], r0 - d
        return ids, r0, first_char

    def empty_prompt(self) -> list[int]:
        """The prompt format's tokens with no context and no instruction (computed once)."""
        if self._empty is None:
            if self.format == "gateau":
                self._empty = list(self.tok(GATEAU_RESPONSE_HEADER)["input_ids"])
            else:
                text = self.tok.apply_chat_template([{"role": "user", "content": ""}], tokenize=False,
                                                    add_generation_prompt=True)
                self._empty = list(self.tok(text, add_special_tokens=False)["input_ids"])
        return self._empty

    def alone_view(self, p: Prepared) -> tuple[list[int], int]:
        """IFD's "response alone": the empty prompt then exactly the response tokens scored in the full
        prompt, so PPL(y | x) and PPL(y) average over the same tokens."""
        head = self.empty_prompt()
        if not head:
            raise UserError("the prompt format renders no tokens without a prompt; IFD needs a start token")
        return head + p.input_ids[p.response_start:], len(head)

    def segment_rows(self, p: Prepared) -> list[tuple[list[int], int]]:
        """One (input_ids, response_start) row per kept segment: segment + instruction + response."""
        t0, t1 = p.context_span
        head, tail = p.input_ids[:t0], p.input_ids[t1:]
        r_in_tail = p.response_start - t1
        rows = []
        for a, b in p.segment_spans:
            ids = head + p.input_ids[a:b] + tail
            rows.append((ids, len(head) + (b - a) + r_in_tail))
        return rows


def prepare_all(builder: PromptBuilder, samples: list[tuple[int, Sample]], rejects: RejectSink | None,
                source: str, cache: dict[str, Prepared | InputReject] | None = None
                ) -> Iterator[tuple[int, Sample, Prepared]]:
    """Tokenize samples, quarantining the ones that cannot be scored (with file, line and reason).

    `cache` (sample id -> Prepared or InputReject) lets several scorers of one file share one
    tokenization per sample (ids are unique after `load_samples`); each still records its rejects."""
    for lineno, s in samples:
        p = cache.get(s.id) if cache is not None else None
        if p is None:
            try:
                p = builder.prepare(s)
            except InputReject as e:
                p = e
            if cache is not None:
                cache[s.id] = p
        if isinstance(p, InputReject):
            reject(rejects, p.reason, file=source, line=lineno, field_name=p.field, record_id=s.id)
            continue
        yield lineno, s, p
