"""Choosing next tokens from one step's logits, batched over the sequences that asked for them.

Order of operations follows Hugging Face's ``generate`` so greedy output is token-identical: penalties,
then (for sampled rows) temperature, top-k, top-p and min-p, then a draw from each row's own
``torch.Generator``. A greedy row is the argmax of its (penalised) logits; without penalties that is the
argmax of the raw logits. Log-probabilities are reported from the raw distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shipyard.engine.outputs import TokenLogprob
from shipyard.engine.sampling_params import SamplingParams

__all__ = ["SampleRequest", "Sampler", "score_tokens"]


@dataclass(frozen=True)
class SampleRequest:
    """One row of the logits: whose it is, and the history its penalties look at."""

    params: SamplingParams
    prompt_token_ids: list[int]
    output_token_ids: list[int]
    generator: torch.Generator


class Sampler:
    def __call__(
        self, logits: torch.Tensor, rows: list[SampleRequest]
    ) -> tuple[list[int], list[TokenLogprob | None]]:
        """Next token per row, and its logprob record where the row's params ask for one."""
        logits = logits.float()
        raw = logits
        if any(r.params.has_penalties for r in rows):
            logits = apply_penalties(logits, rows)
        greedy = torch.tensor([r.params.greedy for r in rows], device=logits.device)
        chosen = logits.argmax(dim=-1)
        if not bool(greedy.all()):
            sampled = self._sample(logits, rows)
            chosen = torch.where(greedy, chosen, sampled)
        tokens = chosen.tolist()
        return tokens, _logprobs(raw, tokens, rows)

    def _sample(self, logits: torch.Tensor, rows: list[SampleRequest]) -> torch.Tensor:
        dev = logits.device
        temps = torch.tensor([r.params.temperature or 1.0 for r in rows], device=dev)
        logits = logits / temps[:, None]
        vocab = logits.shape[-1]
        top_k = torch.tensor([r.params.top_k if r.params.top_k > 0 else vocab for r in rows], device=dev)
        top_p = torch.tensor([r.params.top_p for r in rows], device=dev)
        min_p = torch.tensor([r.params.min_p for r in rows], device=dev)
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        ranks = torch.arange(vocab, device=dev)
        drop = ranks[None, :] >= top_k[:, None]
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        probs = sorted_logits.softmax(dim=-1)
        # Keep the smallest set whose mass reaches top_p; the most likely token always survives.
        drop |= (probs.cumsum(dim=-1) - probs) >= top_p[:, None]
        drop |= probs < (min_p[:, None] * probs[:, :1])
        drop[:, 0] = False
        probs = probs.masked_fill(drop, 0.0)
        out = torch.empty(len(rows), dtype=torch.long, device=dev)
        for i, row in enumerate(rows):
            gen = row.generator
            # Draw on the generator's device so a seed gives the same tokens regardless of batch.
            pick = torch.multinomial(probs[i].to(gen.device), 1, generator=gen)
            out[i] = order[i, pick.to(dev)]
        return out


def apply_penalties(logits: torch.Tensor, rows: list[SampleRequest]) -> torch.Tensor:
    """Repetition (HF: prompt + output), presence and frequency (OpenAI: output only) penalties."""
    logits = logits.clone()
    for i, row in enumerate(rows):
        p = row.params
        if not p.has_penalties:
            continue
        dev = logits.device
        if p.repetition_penalty != 1.0:
            seen = torch.tensor(sorted(set(row.prompt_token_ids) | set(row.output_token_ids)), device=dev)
            if seen.numel():
                vals = logits[i, seen]
                logits[i, seen] = torch.where(
                    vals > 0, vals / p.repetition_penalty, vals * p.repetition_penalty
                )
        if (p.presence_penalty or p.frequency_penalty) and row.output_token_ids:
            out = torch.tensor(row.output_token_ids, device=dev)
            counts = torch.zeros(logits.shape[-1], device=dev).scatter_add_(
                0, out, torch.ones_like(out, dtype=torch.float32)
            )
            logits[i] -= p.frequency_penalty * counts + p.presence_penalty * (counts > 0).float()
    return logits


def _logprobs(raw: torch.Tensor, tokens: list[int], rows: list[SampleRequest]) -> list[TokenLogprob | None]:
    wanted = [i for i, r in enumerate(rows) if r.params.logprobs is not None]
    result: list[TokenLogprob | None] = [None] * len(rows)
    if not wanted:
        return result
    logp = raw[wanted].log_softmax(dim=-1)
    k = max(rows[i].params.logprobs or 0 for i in wanted)
    top_vals, top_ids = logp.topk(k, dim=-1) if k else (None, None)
    for j, i in enumerate(wanted):
        n = rows[i].params.logprobs or 0
        top: tuple[tuple[int, float], ...] = ()
        if n and top_vals is not None and top_ids is not None:
            # Under a grammar, masked tokens are -inf: they were never candidates, so they are not listed.
            top = tuple(
                (t, v)
                for t, v in zip(top_ids[j, :n].tolist(), top_vals[j, :n].tolist(), strict=True)
                if v != float("-inf")
            )
        result[i] = TokenLogprob(tokens[i], float(logp[j, tokens[i]]), top)
    return result


def score_tokens(logits: torch.Tensor, targets: list[int], top_n: int) -> list[TokenLogprob]:
    """Prompt logprobs: row ``i`` of ``logits`` predicts ``targets[i]``; its logprob and the top ``top_n``."""
    logp = logits[: len(targets)].float().log_softmax(dim=-1)
    ids = torch.tensor(targets, dtype=torch.long, device=logp.device)
    chosen = logp.gather(1, ids[:, None])[:, 0].tolist()
    if not top_n:
        return [TokenLogprob(t, v) for t, v in zip(targets, chosen, strict=True)]
    top_vals, top_ids = logp.topk(top_n, dim=-1)
    return [
        TokenLogprob(t, v, tuple(zip(i, tv, strict=True)))
        for t, v, i, tv in zip(targets, chosen, top_ids.tolist(), top_vals.tolist(), strict=True)
    ]
