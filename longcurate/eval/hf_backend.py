"""The `hf` backend: a transformers model behind the eval model interface (`model.EvalModel`).

`generate`: greedy, batched with LEFT padding, batches cut from length-sorted prompts. Left padding
keeps every prompt's last token at the right edge, so the first new token of each row is predicted from
its own prompt; `generate` derives position ids from the attention mask, so a padded row decodes
exactly as it would alone (tested against one-at-a-time generation).

Shared prefixes (`core.prefixes`): prompts that start with the same long run of tokens (the probes
of one context, needle haystacks) are grouped; the prefix runs once into a KV cache, kept for the
model's later calls, and each batch of the group continues from a copy of it: its rows are the prefix,
then pads, then each prompt's own tail (the attention mask hides the pads, the position ids continue
from the prefix). `loglikelihood` scores the answers of such a group on the same cached prefixes, so
the probe generation and the answer NLL of one model share their prefill.

`loglikelihood`: the answer NLL by `core.engine.ScoringEngine.response_nll` (what select scores with),
over the prompt exactly as `generate` is given it, then the answer's tokens (`render.answer_sequence`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from longcurate.core.prefixes import PrefixGroup
from longcurate.core.progress import bars_shown
from longcurate.eval.model import GenRequest, GenResult, LLRequest, LLResult
from longcurate.eval.render import encode_for_local, scorable_answers

if TYPE_CHECKING:
    from longcurate.eval.config import EvalRunConfig

log = logging.getLogger("longcurate.eval")

# A generation batch: the length of the prefix its prompts share (0: none), and (request index, prompt ids) rows.
Batch = tuple[int, list[tuple[int, list[int]]]]


class HFModel:
    def __init__(self, model: Any, tokenizer: Any, *, template: str = "chat", batch_size: int = 4,
                 max_batch_tokens: int = 16384, max_context: int | None = None, progress: bool = True,
                 score_batch_tokens: int | None = None, share_prefixes: bool = True,
                 prefix_cache_bytes: int = 1 << 30):
        from longcurate.core.prefixes import PrefixStore, can_share_prefixes

        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.batch_size = max(1, batch_size)
        self.max_batch_tokens = max(1, max_batch_tokens)
        self.max_context = int(max_context or getattr(model.config, "max_position_embeddings", 2048))
        self.progress = progress
        self.score_batch_tokens = score_batch_tokens  # padded tokens per scoring batch (None: the engine's)
        gen_cfg = getattr(model, "generation_config", None)
        eos = getattr(gen_cfg, "eos_token_id", None) if gen_cfg is not None else None
        self.eos_token_id = eos if eos is not None else tokenizer.eos_token_id
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = self.eos_token_id[0] if isinstance(self.eos_token_id, list) else self.eos_token_id
        self.pad_token_id = pad
        # prefix KV caches, shared by this model's generate and loglikelihood calls (None: no sharing)
        self.prefixes = PrefixStore(model, prefix_cache_bytes) if share_prefixes and can_share_prefixes(model) else None

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        from tqdm.auto import tqdm

        results: list[GenResult | None] = [None] * len(requests)
        encoded: list[tuple[int, list[int]]] = []
        for i, r in enumerate(requests):
            ids = encode_for_local(r, self.tokenizer, self.template, self.max_context)
            if isinstance(ids, GenResult):
                results[i] = ids
                continue
            encoded.append((i, ids))
        batches = self._batches(encoded, requests)
        bar = tqdm(total=len(encoded), desc="generate", unit="prompt", disable=not self.progress or not encoded,
                   leave=False)  # one call's bar: the caller's (a task's) bar stays
        for batch in batches:
            for i, text, err in self._run_batch(batch, requests):
                results[i] = GenResult(requests[i].id, text, err)
            bar.update(len(batch[1]))
        bar.close()
        return [r for r in results if r is not None]

    def loglikelihood(self, requests: list[LLRequest]) -> list[LLResult]:
        """The answer NLL of each request; an empty answer or a sequence over the context fails alone."""
        from longcurate.core.engine import ScoringEngine
        from longcurate.core.prefixes import shared_response_nll

        results, scored = scorable_answers(requests, self.tokenizer, self.template, self.max_context)
        if scored:
            engine = ScoringEngine(self.model, batch_tokens=self.score_batch_tokens, show_progress=self.progress)
            seqs = [seq for _, seq in scored]
            done = (shared_response_nll(engine, seqs, self.prefixes, self.progress) if self.prefixes is not None
                    else engine.response_nll(seqs))
            for (i, _), res in zip(scored, done):
                results[i] = LLResult(requests[i].id, res.nll, res.n_tokens)
        return [r for r in results if r is not None]

    def _batches(self, encoded: list[tuple[int, list[int]]], requests: list[GenRequest]) -> list[Batch]:
        """Grouped by max_new_tokens and by shared prefix (`core.prefixes`, when the store is on),
        longest first, cut under batch_size and max_batch_tokens (rows x (padded prompt + new tokens)):
        (shared prefix length, [(request index, prompt ids)]) each."""
        from longcurate.core.batches import plan_batches
        from longcurate.core.prefixes import group_by_prefix

        out: list[Batch] = []
        budgets = sorted({requests[i].max_new_tokens for i, _ in encoded})
        for budget in budgets:
            part = [e for e in encoded if requests[e[0]].max_new_tokens == budget]
            groups = (group_by_prefix([ids for _, ids in part]) if self.prefixes is not None
                      else [PrefixGroup(0, list(range(len(part))))])
            alone = [part[k] for g in groups if not g.shared for k in g.members]
            for shared, members in [(0, alone)] + [(g.shared, [part[k] for k in g.members]) for g in groups if g.shared]:
                plan = plan_batches([len(ids) + budget for _, ids in members], self.max_batch_tokens, self.batch_size)
                out.extend((shared, [members[k] for k in b]) for b in plan)
        return out

    def _run_batch(self, batch: Batch, requests: list[GenRequest]) -> list[tuple[int, str, str | None]]:
        shared, rows = batch
        try:
            texts = self._generate_ids([ids for _, ids in rows], requests[rows[0][0]].max_new_tokens, shared)
            return [(i, t, None) for (i, _), t in zip(rows, texts)]
        except Exception as e:
            if len(rows) == 1 and not shared:
                log.warning("generation failed for %s: %s", requests[rows[0][0]].id, e)
                return [(rows[0][0], "", f"generation failed: {type(e).__name__}: {e}")]
            # retry one by one, whole prompts, so that one bad item (or the shared prefix) does not sink the rest
            log.warning("generation of %d prompt(s) failed (%s: %s); retrying one whole prompt at a time", len(rows),
                        type(e).__name__, e)
            out = []
            for item in rows:
                out.extend(self._run_batch((0, [item]), requests))
            return out

    def _generate_ids(self, prompts: list[list[int]], max_new_tokens: int, shared: int = 0) -> list[str]:
        """Greedy continuations of `prompts`, which start with the same `shared` tokens (0: none):
        each row is LEFT-padded, or with a shared prefix: the prefix (from the store's cache), pads,
        then its own tail."""
        import torch
        from transformers import GenerationConfig

        width = shared + max(len(p) - shared for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, p in enumerate(prompts):
            input_ids[row, :shared], mask[row, :shared] = torch.tensor(p[:shared], dtype=torch.long), 1
            input_ids[row, width - len(p) + shared:] = torch.tensor(p[shared:], dtype=torch.long)
            mask[row, width - len(p) + shared:] = 1
        device = next(self.model.parameters()).device
        config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                  eos_token_id=self.eos_token_id, pad_token_id=self.pad_token_id)
        kw = {}
        if shared:
            from longcurate.core.prefixes import cache_kwarg

            kw[cache_kwarg(self.model)] = self.prefixes.batch(prompts[0][:shared], len(prompts))  # type: ignore[union-attr]
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                                      generation_config=config, **kw)
        new = out[:, width:].tolist()
        eos = set(self.eos_token_id if isinstance(self.eos_token_id, list) else [self.eos_token_id])
        texts = []
        for row in new:
            cut = next((k for k, t in enumerate(row) if t in eos), len(row))
            texts.append(self.tokenizer.decode(row[:cut], skip_special_tokens=True).strip())
        return texts


def from_config(run_cfg: EvalRunConfig, model_name: str) -> HFModel:
    """Load `model_name` (and its tokenizer, falling back to the run's model's)."""
    from longcurate.core.models import load_model, load_tokenizer

    g = run_cfg.eval.generate
    model = load_model(model_name, dtype=g.dtype, device=g.device, allow_download=run_cfg.allow_download,
                       trust_remote_code=run_cfg.trust_remote_code)
    try:
        tokenizer = load_tokenizer(model_name, allow_download=run_cfg.allow_download,
                                   trust_remote_code=run_cfg.trust_remote_code)
    except (OSError, ValueError) as e:  # a bare checkpoint folder without tokenizer files
        log.info("no tokenizer with %s (%s); using %s's", model_name, e, run_cfg.model)
        tokenizer = load_tokenizer(run_cfg.model, allow_download=run_cfg.allow_download,
                                   trust_remote_code=run_cfg.trust_remote_code)
    return HFModel(model, tokenizer, template=g.template, batch_size=g.batch_size, max_batch_tokens=g.max_batch_tokens,
                   max_context=g.max_context, score_batch_tokens=run_cfg.eval.nll.batch_tokens, progress=bars_shown(),
                   share_prefixes=g.share_prefixes)
