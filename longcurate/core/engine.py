"""The scoring engine: response NLL and response-to-segment attention for many samples at once (select
scores HMG and CAM with it; eval scores gold answers with it).

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

Segment attention runs the forward with the attention function of `segment_attention.py` registered
through transformers' `AttentionInterface`; see that module for how it reduces the response rows'
attention straight into per-segment sums. `nll_and_attention` takes both the response NLL and the
segment attention from that one forward, so a sample scored for HMG's θ_B and CAM costs one
full-prompt pass, not two; all three methods share one batch loop (`_score`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from longcurate.core.batches import plan_batches
from longcurate.core.errors import UserError


def finite_ppl(nll: float) -> float:
    """exp(mean NLL), inf when it overflows (mean NLL above ~709 nats) or the NLL is not finite: a
    perplexity is never an exception."""
    return math.exp(nll) if math.isfinite(nll) and nll < 709.0 else math.inf


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
        """exp(mean NLL); inf when that overflows a float (mean NLL above ~709 nats), never an error."""
        return finite_ppl(self.nll) if self.n_tokens else float("nan")


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


def default_batch_tokens(device) -> int:
    """Padded tokens per batch when none is given: 16384 on accelerators, 4096 on CPUs. On a CPU big
    batches are slower, not faster (SmolLM2-135M, bf16, 2 cores, demo data: 16384 ran θ_B's full prompts
    1.6x, θ_A's 1024-token windows 1.2x and CAM's segment rows 1.6x slower than 2048-4096): a batch's
    activations outgrow the caches, and the matmuls are already large enough to keep the cores busy."""
    return 16384 if getattr(device, "type", str(device).split(":")[0]) != "cpu" else 4096


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

    def __init__(self, model, *, batch_tokens: int | None = None, max_batch_size: int = 64, device=None,
                 show_progress: bool = True, head_chunk: int = 2048, use_flash_attn: bool | None = None,
                 fp32_head: bool = True):
        import torch

        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        if next(model.parameters()).device != self.device:
            model = model.to(self.device)
        self.model = model.eval()
        self.batch_tokens = int(batch_tokens or default_batch_tokens(self.device))
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

    def pad(self, items: Sequence[ScoreItem], offset: int = 0):
        """The items' tokens from position `offset` on, right-padded into one batch on the device."""
        import torch

        longest = max(len(it) for it in items) - offset
        ids = torch.zeros((len(items), longest), dtype=torch.long)  # pads are never attended by real rows
        for b, it in enumerate(items):
            ids[b, :len(it) - offset] = torch.as_tensor(it.input_ids[offset:], dtype=torch.long)
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

    def head_nll(self, hidden, targets):
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

    # -- one batch loop for NLL, attention, or both ----------------------------------------------

    def response_nll(self, items: list[ScoreItem]) -> list[NLLResult]:
        """Summed NLL of each item's response tokens; same order as `items`."""
        return self._score(items, nll=True, attention=False)[0]  # type: ignore[return-value]

    def segment_attention(self, items: list[ScoreItem], layers: list[int] | None = None,
                          key_block: int = 1024, normalize: bool = True) -> list[np.ndarray]:
        """Per item, the attention mass its response query rows give each context segment's keys,
        averaged over heads, response tokens and `layers` (None = all), then normalised to sum to 1
        over the segments (`normalize=False` keeps the raw averaged mass, whose sum is the share of
        attention that lands on the segments). Items without segments get an empty array and no
        forward. Same order as `items`."""
        return self._score(items, nll=False, attention=True, layers=layers, key_block=key_block,
                           normalize=normalize)[1]  # type: ignore[return-value]

    def nll_and_attention(self, items: list[ScoreItem], layers: list[int] | None = None, key_block: int = 1024,
                          normalize: bool = True) -> tuple[list[NLLResult], list[np.ndarray]]:
        """`response_nll(items)` and `segment_attention(items, ...)` from ONE forward per batch: the
        decoder runs with the probing attention function (layer outputs exactly as SDPA), the probe
        collects the segment attention, and the LM head runs on the response rows of the same hidden
        states. Items without segments get their NLL and an empty array. Same order as `items`."""
        nll, attn = self._score(items, nll=True, attention=True, layers=layers, key_block=key_block,
                                normalize=normalize)
        return nll, attn  # type: ignore[return-value]

    def _chosen_layers(self, layers: list[int] | None) -> list[int]:
        n_layers = self.model.config.num_hidden_layers
        if layers is not None:
            bad = [l for l in layers if not -n_layers <= l < n_layers]
            if bad:
                raise UserError(f"select.layers: {bad} out of range for a model with {n_layers} layers")
        return sorted({(l % n_layers) for l in (range(n_layers) if layers is None else layers)})

    def _score(self, items: list[ScoreItem], *, nll: bool, attention: bool, layers: list[int] | None = None,
               key_block: int = 1024, normalize: bool = True
               ) -> tuple[list[NLLResult] | None, list[np.ndarray] | None]:
        """The batch loop behind the public methods: plan, pad, one decoder forward per batch, then
        the response NLL from its hidden states and/or the segment attention from its probe."""
        import torch

        for it in items:
            validate_item(it, need_segments=attention)
        chosen = self._chosen_layers(layers) if attention else []
        nll_out: list[NLLResult | None] | None = [None] * len(items) if nll else None
        attn_out: list[np.ndarray | None] | None = [None] * len(items) if attention else None
        if attn_out is not None:
            for i, it in enumerate(items):
                if not it.segment_spans:
                    attn_out[i] = np.zeros(0, dtype=np.float64)
        # Attention alone forwards only the items with segments; with NLL every item runs.
        todo = list(range(len(items))) if nll else [i for i, it in enumerate(items) if it.segment_spans]
        if attention:
            from longcurate.core.segment_attention import ATTN_NAME as impl
        else:
            impl = "flash_attention_2" if self.use_flash_attn else None
        desc = " + ".join(d for d, on in (("response nll", nll), ("segment attention", attention)) if on)
        with torch.inference_mode(), attn_implementation(self.model, impl), \
                self._progress(len(todo), desc) as bar:
            for batch in self._plan([items[i] for i in todo]):
                idx = [todo[j] for j in batch]
                batch_items = [items[i] for i in idx]
                probe = None
                if attention and any(it.segment_spans for it in batch_items):
                    from longcurate.core.segment_attention import SegmentProbe

                    probe = SegmentProbe.build(batch_items, chosen, key_block, self.device)
                self._fresh_rope()
                sums = self._forward_batch(batch_items, probe, nll)
                if probe is not None:
                    if probe.calls != len(chosen):
                        raise RuntimeError(
                            f"{type(self.model).__name__} measured {probe.calls} of {len(chosen)} layers: its "
                            "forward does not pass extra keyword arguments to the attention function")
                    for i, vec in zip(idx, probe.result(normalize)):
                        if items[i].segment_spans:
                            attn_out[i] = vec  # type: ignore[index]
                if nll_out is not None:
                    for i, s in zip(idx, sums):
                        it = items[i]
                        nll_out[i] = NLLResult(it.id, s, len(it) - it.response_start)
                bar.update(len(batch))
        return nll_out, attn_out  # type: ignore[return-value]

    def _forward_batch(self, items: Sequence[ScoreItem], probe=None, nll: bool = True) -> list[float]:
        """One decoder forward over the right-padded batch (with the segment probe when given);
        returns each item's summed response NLL, or [] when `nll` is false."""
        ids = self.pad(items)
        kw = {} if probe is None else {"segment_probe": probe}
        hidden = self.decoder(input_ids=ids, use_cache=False, **kw).last_hidden_state
        return self.response_sums(hidden, ids, items) if nll else []

    def response_sums(self, hidden, ids, items: Sequence[ScoreItem], offset: int = 0) -> list[float]:
        """Each item's summed response NLL from the decoder's last hidden states over `ids`, a batch
        of right-padded rows holding each item's tokens from position `offset` on (0: whole items;
        after a shared prefix of `offset` tokens: their tails, `core.prefixes`)."""
        import torch

        # Rows that predict response tokens: positions response_start-1 .. len-2 of each item.
        rows, pos = [], []
        for b, it in enumerate(items):
            p = torch.arange(it.response_start - 1 - offset, len(it) - 1 - offset)
            rows.append(torch.full_like(p, b))
            pos.append(p)
        rows_t = torch.cat(rows).to(self.device)
        pos_t = torch.cat(pos).to(self.device)
        losses = self.head_nll(hidden[rows_t, pos_t], ids[rows_t, pos_t + 1])
        sums = torch.zeros(len(items), dtype=torch.float64, device=losses.device)
        sums.index_add_(0, rows_t, losses.double())
        return sums.tolist()
