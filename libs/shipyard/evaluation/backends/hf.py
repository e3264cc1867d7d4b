"""A local Hugging Face causal LM as a ``ModelBackend``: batched log-likelihoods and generation on CPU/GPU.

Log-likelihoods follow lm-evaluation-harness's ``HFLM`` token for token, so scores match it:

- a request's context and continuation are encoded the lm-eval way (``encode_pair``): trailing spaces of
  the context move to the continuation, the whole string is encoded once and split after the context's
  own tokens, no special tokens are added; an empty context is scored after the BOS (else EOS) token;
- the model input is ``(context + continuation)[-(max_length + 1):][:-1]``, right-padded, batched
  longest first; the continuation's log-probabilities are read from a log-softmax over the vocabulary,
  and ``is_greedy`` means the argmax equals the continuation at every position.

Requests whose model inputs are identical (multiple choice with single-token answers, e.g. MMLU's
" A"/" B"/" C"/" D") share one forward pass, like lm-eval's logits cache.

Generation renders chat messages with the tokenizer's chat template, left-pads a batch, and cuts the
text at the first stop string. Greedy requests are batched; sampled ones run one at a time under their
own seed, so a completion does not depend on which other requests were in the batch.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from shipyard.errors import InvalidArgument, NotFound
from shipyard.evaluation.backends.tokenization import LmEvalTokenization
from shipyard.evaluation.types import (
    GenerationRequest,
    GenerationResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
)

__all__ = ["HFBackend"]

_DEFAULT_MAX_LENGTH = 2048  # lm-eval's fallback when neither config nor tokenizer says
_HF_NO_MAX = 1e10  # tokenizers without a limit report model_max_length ~1e30


class HFBackend(LmEvalTokenization):
    """A ``transformers`` causal LM and its tokenizer, in eval mode, scored in ``inference_mode``."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        batch_size: int = 16,
        max_length: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise InvalidArgument.field("batch_size", f"must be >= 1, got {batch_size}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.batch_size = batch_size
        self.max_length = max_length or _max_length(model, tokenizer)
        self.device = next(model.parameters()).device

    @classmethod
    def load(
        cls,
        path: str | pathlib.Path,
        *,
        gguf_file: str | None = None,
        name: str | None = None,
        batch_size: int = 16,
        max_length: int | None = None,
        dtype: torch.dtype = torch.float32,
        device: str = "cpu",
    ) -> HFBackend:
        """Load an HF model directory (or a GGUF file in it) offline; never contacts a hub."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        directory = pathlib.Path(path)
        if not directory.is_dir():
            raise NotFound(f"model directory {str(directory)!r} does not exist")
        if gguf_file is not None and not (directory / gguf_file).is_file():
            raise NotFound(f"GGUF file {gguf_file!r} not found in {str(directory)!r}")
        if gguf_file is None and not (directory / "config.json").is_file():
            raise InvalidArgument.field(
                "model", f"{str(directory)!r} is not a Hugging Face model directory (no config.json)"
            )
        kwargs: dict[str, Any] = {"local_files_only": True}
        if gguf_file is not None:
            kwargs["gguf_file"] = gguf_file
        tokenizer = AutoTokenizer.from_pretrained(directory, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype, **kwargs).to(device)
        label = name or (gguf_file.removesuffix(".gguf") if gguf_file else directory.name)
        return cls(model, tokenizer, name=label, batch_size=batch_size, max_length=max_length)

    # -- log-likelihood ----------------------------------------------------------------------------

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        return self.loglikelihood_tokens([self.encode_pair(r.context, r.continuation) for r in requests])

    @torch.inference_mode()
    def loglikelihood_tokens(self, pairs: Sequence[tuple[list[int], list[int]]]) -> list[LoglikelihoodResult]:
        """Score pre-tokenized ``(context_ids, continuation_ids)`` pairs; one result per pair, in order."""
        for i, (_, continuation) in enumerate(pairs):
            if not continuation:
                raise InvalidArgument.field(f"requests[{i}].continuation", "encodes to no tokens")
        inputs = [tuple((c + k)[-(self.max_length + 1) :][:-1]) for c, k in pairs]
        # Longest first, like lm-eval: the first batch shows an out-of-memory at once, and padding is small.
        unique = sorted(set(inputs), key=lambda toks: (-len(toks), toks))
        row_of: dict[tuple[int, ...], tuple[torch.Tensor, int]] = {}
        for start in range(0, len(unique), self.batch_size):
            batch = unique[start : start + self.batch_size]
            width = len(batch[0])
            ids = torch.zeros((len(batch), width), dtype=torch.long)  # right padding: it never leaks left
            for row, toks in enumerate(batch):
                ids[row, : len(toks)] = torch.tensor(toks, dtype=torch.long)
            logits = self.model(ids.to(self.device)).logits.float()
            for row, toks in enumerate(batch):
                row_of[toks] = (logits[row], len(toks))
        results = []
        for inp, (_, continuation) in zip(inputs, pairs, strict=True):
            logits, length = row_of[inp]
            count = min(len(continuation), length)  # a continuation longer than max_length is truncated
            targets = torch.tensor(continuation[-count:], dtype=torch.long, device=logits.device)
            logprobs = F.log_softmax(logits[length - count : length], dim=-1)
            greedy = bool((logprobs.argmax(dim=-1) == targets).all())
            total = float(logprobs.gather(1, targets.unsqueeze(1)).sum())
            results.append(LoglikelihoodResult(total, greedy, count))
        return results

    # -- generation --------------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        for i, r in enumerate(requests):
            if r.max_tokens < 1:
                raise InvalidArgument.field(f"requests[{i}].max_tokens", f"must be >= 1, got {r.max_tokens}")
        results: list[GenerationResult | None] = [None] * len(requests)
        encoded = [self._encode(self.render(r.prompt)) for r in requests]
        greedy: dict[tuple[tuple[str, ...], int], list[int]] = {}
        for i, r in enumerate(requests):
            if r.temperature > 0:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(r.seed)
                    results[i] = self._generate_batch([encoded[i]], r)[0]
            else:
                greedy.setdefault((r.stop, r.max_tokens), []).append(i)
        for indices in greedy.values():
            indices.sort(key=lambda i: -len(encoded[i]))
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                outputs = self._generate_batch([encoded[i] for i in chunk], requests[chunk[0]])
                for i, out in zip(chunk, outputs, strict=True):
                    results[i] = out
        return [r for r in results if r is not None]

    @torch.inference_mode()
    def _generate_batch(self, prompts: list[list[int]], request: GenerationRequest) -> list[GenerationResult]:
        tok = self.tokenizer
        keep = max(1, self.max_length - request.max_tokens)
        prompts = [p[-keep:] or [self.prefix_token_id] for p in prompts]
        width = max(len(p) for p in prompts)
        pad = tok.pad_token_id if tok.pad_token_id is not None else self.prefix_token_id
        ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, p in enumerate(prompts):  # left padding: every prompt ends where generation starts
            ids[row, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            mask[row, width - len(p) :] = 1
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": request.temperature, "top_k": 0, "top_p": 1.0}
            if request.temperature > 0
            else {"do_sample": False, "temperature": None, "top_k": None, "top_p": None}
        )
        out = self.model.generate(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            max_new_tokens=request.max_tokens,
            pad_token_id=pad,
            eos_token_id=tok.eos_token_id,
            stopping_criteria=[_StopStrings(tok, request.stop, width)] if request.stop else None,
            **sampling,
        )
        results = []
        for row in out[:, width:].tolist():
            ended_eos = tok.eos_token_id is not None and tok.eos_token_id in row
            text = tok.decode(row, skip_special_tokens=True)
            cut = min((text.find(s) for s in request.stop if s and s in text), default=-1)
            if cut >= 0:
                text = text[:cut]
            results.append(GenerationResult(text, "stop" if cut >= 0 or ended_eos else "length"))
        return results


class _StopStrings:
    """Stops a row once its *generated* text contains a stop string (like lm-eval's stop criteria).

    ``transformers``' own ``stop_strings`` also matches text that began in the prompt (prompt ``"Q:"``,
    stop ``"::"``, first new token ``":"``), which would end a generation before it started.
    """

    def __init__(self, tokenizer: Any, stop: tuple[str, ...], prompt_width: int) -> None:
        self.tokenizer, self.stop, self.prompt_width = tokenizer, [s for s in stop if s], prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_width :], skip_special_tokens=True)
        done = [any(s in text for s in self.stop) for text in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _max_length(model: Any, tokenizer: Any) -> int:
    """lm-eval's rule: the model config's context size, else the tokenizer's, else 2048."""
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(model.config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < _HF_NO_MAX:
        return limit
    return _DEFAULT_MAX_LENGTH
