"""The scoring engine: response NLL and response-to-segment attention for many samples at once.

Why it is fast: samples are sorted by length and cut into right-padded batches under a token
budget (padded tokens = rows x longest row), the decoder runs with the model's own SDPA (or
flash-attn 2 on CUDA when installed), and the LM head runs only on the hidden states that predict
response tokens, gathered across the batch, so full-vocabulary logits over the context are never
built. Cross-entropy is always computed in fp32.

Why right-padding needs no attention mask: with causal attention a real token only sees keys at
positions <= its own, and every pad sits after the last real token of its row, so the causal mask
alone is exact for every real row (pad rows produce values that are never read). Position ids are
the default `arange`, which is also exact for right-padded rows. Without a padding mask SDPA takes
its `is_causal` fast path.

Segment attention runs one extra forward with the attention function of `attention.py`
registered through transformers' `AttentionInterface`; see that module for how it reduces the
response rows' attention straight into per-segment sums.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np


@dataclass
class ScoreItem:
    """One scored sequence: prompt then response, with the context segments' token spans."""

    id: str
    input_ids: list[int]
    response_start: int  # index of the first response token; loss covers input_ids[response_start:]
    segment_spans: list[tuple[int, int]] = field(default_factory=list)  # [start, end) context segments

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class NLLResult:
    id: str
    nll_sum: float  # summed natural-log NLL of the response tokens
    n_tokens: int

    @property
    def nll(self) -> float:
        """Mean NLL per response token."""
        return self.nll_sum / self.n_tokens if self.n_tokens else float("nan")

    @property
    def ppl(self) -> float:
        return math.exp(self.nll) if self.n_tokens else float("nan")


def validate_item(item: ScoreItem, need_segments: bool = False) -> None:
    """Raise ValueError naming the item when it cannot be scored (the caller quarantines first;
    this is the engine's last line of defence against silent garbage)."""
    n = len(item.input_ids)
    if n < 2:
        raise ValueError(f"item {item.id!r}: needs at least 2 tokens, has {n}")
    if not 1 <= item.response_start < n:
        raise ValueError(f"item {item.id!r}: response_start={item.response_start} must be in [1, {n - 1}] "
                         "(at least one prompt token and one response token)")
    if need_segments:
        for s, e in item.segment_spans:
            if not 0 <= s < e <= n:
                raise ValueError(f"item {item.id!r}: segment span ({s}, {e}) is empty or outside [0, {n}]")


def plan_batches(lengths: Sequence[int], batch_tokens: int, max_batch_size: int,
                 same_length: bool = False) -> list[list[int]]:
    """Indices grouped into batches: longest first (an out-of-memory shows up at once), each batch
    holding at most `max_batch_size` rows and at most `batch_tokens` padded tokens (rows x its
    longest row). A single item longer than the budget gets a batch of its own. `same_length`
    batches only items of equal length (needed when the padded length changes the result, as
    with dynamic-NTK RoPE). Deterministic: ties keep input order."""
    if batch_tokens < 1 or max_batch_size < 1:
        raise ValueError("batch_tokens and max_batch_size must be >= 1")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        longest = lengths[cur[0]] if cur else lengths[i]
        if cur and (len(cur) + 1 > max_batch_size or (len(cur) + 1) * longest > batch_tokens
                    or (same_length and lengths[i] != longest)):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def length_dependent_rope(config) -> bool:
    """True when the RoPE frequencies depend on the batch's longest position (dynamic NTK,
    LongRoPE): then a padded batch would score a short row differently from the same row alone."""
    for params in (getattr(config, "rope_parameters", None), getattr(config, "rope_scaling", None)):
        if isinstance(params, dict):
            kinds = [params] + [v for v in params.values() if isinstance(v, dict)]  # per layer type
            if any(p.get("rope_type", p.get("type")) in ("dynamic", "longrope") for p in kinds):
                return True
    return False


def _flash_attn_available() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


@contextlib.contextmanager
def attn_implementation(model, name: str | None) -> Iterator[None]:
    """Temporarily switch the model's attention implementation; always restores the original."""
    original = model.config._attn_implementation
    if name is None or name == original:
        yield
        return
    model.set_attn_implementation(name)
    try:
        yield
    finally:
        model.set_attn_implementation(original)


class ScoringEngine:
    """Batched scorer over one causal LM. Results come back in the order of the input items.

    The model's dtype decides the matmul precision (load bf16 on GPUs and on CPUs with native bf16);
    losses and attention probabilities are always reduced in fp32 / fp64."""

    def __init__(self, model, *, batch_tokens: int = 16384, max_batch_size: int = 64, device=None,
                 show_progress: bool = True, head_chunk: int = 2048, use_flash_attn: bool | None = None,
                 fp32_head: bool = True):
        import torch

        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        if next(model.parameters()).device != self.device:
            model = model.to(self.device)
        self.model = model.eval()
        self.batch_tokens = int(batch_tokens)
        self.max_batch_size = int(max_batch_size)
        self.show_progress = show_progress
        self.head_chunk = int(head_chunk)  # LM-head rows per matmul: bounds the fp32 logits buffer
        # The LM head runs on the response rows only, so doing it in fp32 costs little and removes
        # part of a bf16 model's NLL error (SmolLM2, 1K tokens: 4e-4..9e-4 -> 2e-4..5e-4 relative).
        self.fp32_head = fp32_head
        self._head32: tuple | None = None
        if use_flash_attn is None:
            dtype = next(model.parameters()).dtype
            use_flash_attn = (self.device.type == "cuda" and _flash_attn_available()
                              and dtype in (torch.float16, torch.bfloat16))
        self.use_flash_attn = bool(use_flash_attn)
        self.same_length = length_dependent_rope(model.config)

    def _fresh_rope(self) -> None:
        """Dynamic-NTK RoPE caches the longest length it has seen and only grows (HF's design for
        generation), so a sample's score would depend on what ran before it. A call of the rotary
        module's forward with one position resets it to the original frequencies; the batch that
        follows then sets them for its own length, as if the sample ran alone on a fresh model."""
        import torch

        rotary = getattr(self.decoder, "rotary_emb", None)
        if self.same_length and rotary is not None:
            x = torch.zeros(1, dtype=next(self.model.parameters()).dtype, device=self.device)
            rotary(x, position_ids=torch.zeros((1, 1), dtype=torch.long, device=self.device))

    def _plan(self, items: Sequence[ScoreItem]) -> list[list[int]]:
        return plan_batches([len(it) for it in items], self.batch_tokens, self.max_batch_size, self.same_length)

    # -- helpers ---------------------------------------------------------------------------------

    @property
    def decoder(self):
        """The transformer body without the LM head (e.g. `LlamaModel`)."""
        return self.model.base_model

    def _pad(self, items: Sequence[ScoreItem]):
        import torch

        longest = max(len(it) for it in items)
        ids = torch.zeros((len(items), longest), dtype=torch.long)  # pads are never attended by real rows
        for b, it in enumerate(items):
            ids[b, :len(it)] = torch.as_tensor(it.input_ids, dtype=torch.long)
        return ids.to(self.device)

    def _progress(self, total: int, desc: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="sample", disable=not self.show_progress, leave=False)

    def _head(self):
        """The LM head as a callable, in fp32 when asked (an fp32 copy of its weight, made once)."""
        import torch
        import torch.nn.functional as F

        head = self.model.get_output_embeddings()
        weight = getattr(head, "weight", None)
        if not self.fp32_head or not isinstance(head, torch.nn.Linear) or weight.dtype == torch.float32:
            return head
        key = (weight.data_ptr(), weight.dtype, weight.device)  # redo the copy if the model moved
        if self._head32 is None or self._head32[0] != key:
            bias = None if head.bias is None else head.bias.detach().float()
            self._head32 = (key, weight.detach().float(), bias)
        _, w, b = self._head32
        return lambda h: F.linear(h.float(), w, b)

    def _head_nll(self, hidden, targets):
        """fp32 cross-entropy of the LM head over the given hidden rows, in chunks."""
        import torch
        import torch.nn.functional as F

        head = self._head()
        cfg = self.model.config
        softcap = getattr(cfg, "final_logit_softcapping", None)
        logit_scale = getattr(cfg, "logits_scaling", None)  # Granite divides logits by this
        out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
        for s in range(0, hidden.shape[0], self.head_chunk):
            logits = head(hidden[s:s + self.head_chunk]).float()
            if logit_scale:
                logits = logits / logit_scale
            if softcap:
                logits = torch.tanh(logits / softcap) * softcap
            out[s:s + self.head_chunk] = F.cross_entropy(logits, targets[s:s + self.head_chunk], reduction="none")
        return out

    # -- response NLL ----------------------------------------------------------------------------

    def response_nll(self, items: list[ScoreItem]) -> list[NLLResult]:
        """Summed NLL of each item's response tokens; same order as `items`."""
        import torch

        for it in items:
            validate_item(it)
        results: list[NLLResult | None] = [None] * len(items)
        batches = self._plan(items)
        impl = "flash_attention_2" if self.use_flash_attn else None
        with torch.inference_mode(), attn_implementation(self.model, impl), \
                self._progress(len(items), "response nll") as bar:
            for batch in batches:
                self._fresh_rope()
                sums = self._batch_nll([items[i] for i in batch])
                for i, s in zip(batch, sums):
                    it = items[i]
                    results[i] = NLLResult(it.id, s, len(it) - it.response_start)
                bar.update(len(batch))
        return results  # type: ignore[return-value]

    def _batch_nll(self, items: Sequence[ScoreItem]) -> list[float]:
        import torch

        ids = self._pad(items)
        hidden = self.decoder(input_ids=ids, use_cache=False).last_hidden_state
        # Rows that predict response tokens: positions response_start-1 .. len-2 of each item.
        rows, pos = [], []
        for b, it in enumerate(items):
            p = torch.arange(it.response_start - 1, len(it) - 1)
            rows.append(torch.full_like(p, b))
            pos.append(p)
        rows_t = torch.cat(rows).to(self.device)
        pos_t = torch.cat(pos).to(self.device)
        h = hidden[rows_t, pos_t]
        del hidden
        nll = self._head_nll(h, ids[rows_t, pos_t + 1])
        sums = torch.zeros(len(items), dtype=torch.float64, device=nll.device)
        sums.index_add_(0, rows_t, nll.double())
        return sums.tolist()

    # -- segment attention ----------------------------------------------------------------------

    def segment_attention(self, items: list[ScoreItem], layers: list[int] | None = None,
                          key_block: int = 1024, normalize: bool = True) -> list[np.ndarray]:
        """Per item, the attention mass its response query rows give each context segment's keys,
        averaged over heads, response tokens and `layers` (None = all), then normalised to sum to 1
        over the segments (`normalize=False` keeps the raw averaged mass, whose sum is the share of
        attention that lands on the segments). Same order as `items`."""
        import torch

        from longcurate.select.attention import ATTN_NAME, SegmentProbe

        for it in items:
            validate_item(it, need_segments=True)
        n_layers = self.model.config.num_hidden_layers
        chosen = sorted({(l % n_layers) for l in (range(n_layers) if layers is None else layers)})
        if layers is not None:
            bad = [l for l in layers if not -n_layers <= l < n_layers]
            if bad:
                raise ValueError(f"layers {bad} out of range for a model with {n_layers} layers")
        results: list[np.ndarray | None] = [None] * len(items)
        todo = [i for i, it in enumerate(items) if it.segment_spans]
        for i, it in enumerate(items):
            if not it.segment_spans:
                results[i] = np.zeros(0, dtype=np.float64)
        batches = self._plan([items[i] for i in todo])
        with torch.inference_mode(), attn_implementation(self.model, ATTN_NAME), \
                self._progress(len(todo), "segment attention") as bar:
            for batch in batches:
                idx = [todo[j] for j in batch]
                batch_items = [items[i] for i in idx]
                probe = SegmentProbe.build(batch_items, chosen, key_block, self.device)
                self._fresh_rope()
                self.decoder(input_ids=self._pad(batch_items), use_cache=False, segment_probe=probe)
                if probe.calls != len(chosen):
                    raise RuntimeError(
                        f"{type(self.model).__name__} measured {probe.calls} of {len(chosen)} layers: its forward "
                        "does not pass extra keyword arguments to the attention function")
                for i, vec in zip(idx, probe.result(normalize)):
                    results[i] = vec
                bar.update(len(batch))
        return results  # type: ignore[return-value]
