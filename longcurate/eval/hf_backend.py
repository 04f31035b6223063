"""The `hf` backend: a transformers model behind the eval model interface (`model.EvalModel`).

`generate`: greedy, batched with LEFT padding, batches cut from length-sorted prompts. Left padding
keeps every prompt's last token at the right edge, so the first new token of each row is predicted from
its own prompt; `generate` derives position ids from the attention mask, so a padded row decodes
exactly as it would alone (tested against one-at-a-time generation).

`loglikelihood`: the answer NLL by `core.engine.ScoringEngine.response_nll` (what select scores with),
over the prompt exactly as `generate` is given it, then the answer's tokens (`render.answer_sequence`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from longcurate.core.progress import bars_shown
from longcurate.eval.model import GenRequest, GenResult, LLRequest, LLResult, failed_ll
from longcurate.eval.render import answer_sequence, encode_for_local, unscorable

if TYPE_CHECKING:
    from longcurate.eval.config import EvalRunConfig

log = logging.getLogger("longcurate.eval")


class HFModel:
    def __init__(self, model: Any, tokenizer: Any, *, template: str = "chat", batch_size: int = 4,
                 max_batch_tokens: int = 16384, max_context: int | None = None, progress: bool = True,
                 score_batch_tokens: int | None = None):
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
        bar = tqdm(total=len(encoded), desc="generate", unit="prompt", disable=not self.progress or not encoded)
        for batch in batches:
            for i, text, err in self._run_batch(batch, requests):
                results[i] = GenResult(requests[i].id, text, err)
            bar.update(len(batch))
        bar.close()
        return [r for r in results if r is not None]

    def loglikelihood(self, requests: list[LLRequest]) -> list[LLResult]:
        """The answer NLL of each request; an empty answer or a sequence over the context fails alone."""
        from longcurate.core.engine import ScoringEngine

        results: list[LLResult | None] = [None] * len(requests)
        scored = []
        for i, r in enumerate(requests):
            seq = answer_sequence(r, self.tokenizer, self.template)
            why = unscorable(seq, self.max_context)
            if why is not None:
                results[i] = failed_ll(r, why)
            else:
                scored.append((i, seq))
        if scored:
            engine = ScoringEngine(self.model, batch_tokens=self.score_batch_tokens, show_progress=self.progress)
            for (i, _), res in zip(scored, engine.response_nll([seq for _, seq in scored])):
                results[i] = LLResult(requests[i].id, res.nll, res.n_tokens)
        return [r for r in results if r is not None]

    def _batches(self, encoded: list[tuple[int, list[int]]], requests: list[GenRequest]) -> list[list[tuple[int, list[int]]]]:
        """Grouped by max_new_tokens, longest first, cut under batch_size and max_batch_tokens
        (padded prompt + new tokens)."""
        from longcurate.core.batches import plan_batches

        budgets = [requests[i].max_new_tokens for i, _ in encoded]
        plan = plan_batches([len(ids) + n for (_, ids), n in zip(encoded, budgets)], self.max_batch_tokens,
                            self.batch_size, groups=budgets)
        return [[encoded[k] for k in batch] for batch in plan]

    def _run_batch(self, batch, requests):
        try:
            texts = self._generate_ids([ids for _, ids in batch], requests[batch[0][0]].max_new_tokens)
            return [(i, t, None) for (i, _), t in zip(batch, texts)]
        except Exception as e:
            if len(batch) == 1:
                log.warning("generation failed for %s: %s", requests[batch[0][0]].id, e)
                return [(batch[0][0], "", f"generation failed: {type(e).__name__}: {e}")]
            # retry one by one so that one bad item does not sink its batch-mates
            out = []
            for item in batch:
                out.extend(self._run_batch([item], requests))
            return out

    def _generate_ids(self, prompts: list[list[int]], max_new_tokens: int) -> list[str]:
        import torch
        from transformers import GenerationConfig

        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, p in enumerate(prompts):
            input_ids[row, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[row, width - len(p):] = 1
        device = next(self.model.parameters()).device
        config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                  eos_token_id=self.eos_token_id, pad_token_id=self.pad_token_id)
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                                      generation_config=config)
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
                   max_context=g.max_context, score_batch_tokens=run_cfg.eval.nll.batch_tokens, progress=bars_shown())
