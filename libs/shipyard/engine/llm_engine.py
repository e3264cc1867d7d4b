"""The synchronous engine: admission, one ``step()`` of schedule → compute → sample → detokenize.

``LLMEngine`` is single-threaded by design; ``AsyncLLMEngine`` drives it from one background thread.
Each step returns a ``RequestOutput`` delta for every request that produced a token. A runner failure
fails only the requests of that step (their outputs carry ``error``); the engine keeps serving.
Constrained requests (``SamplingParams.structured``) have their grammar compiled when validated, and
their rows of the logits masked before sampling; a request whose grammar is complete stops ("stop").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from shipyard.config import InferenceConfig
from shipyard.engine.batch import ModelRunner
from shipyard.engine.block_manager import BlockManager
from shipyard.engine.detokenizer import IncrementalDetokenizer
from shipyard.engine.metrics import EngineMetrics
from shipyard.engine.outputs import EngineStats, RequestOutput, TokenLogprob
from shipyard.engine.sampler import Sampler, SampleRequest, score_tokens
from shipyard.engine.sampling_params import SamplingParams
from shipyard.engine.scheduler import ScheduledChunk, Scheduler
from shipyard.engine.sequence import Sequence
from shipyard.engine.structured import GrammarCompiler, mask_logits
from shipyard.errors import Internal, InvalidArgument, NotFound, ResourceExhausted, ShipyardError

__all__ = ["LLMEngine"]

log = logging.getLogger(__name__)


@dataclass
class _Request:
    seq: Sequence
    detokenizer: IncrementalDetokenizer
    generator: torch.Generator


class LLMEngine:
    def __init__(
        self,
        runner: ModelRunner,
        tokenizer: Any,
        config: InferenceConfig,
        *,
        metrics: EngineMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runner = runner
        self.tokenizer = tokenizer
        self.config = config
        self.metrics = metrics
        self._clock = clock
        self.max_model_len = min(runner.max_model_len, config.max_model_len or runner.max_model_len)
        self.block_manager = BlockManager(
            runner.num_blocks, runner.block_size, enable_prefix_caching=config.enable_prefix_caching
        )
        self.scheduler = Scheduler(
            self.block_manager,
            max_num_seqs=config.max_num_seqs,
            max_num_batched_tokens=config.max_num_batched_tokens,
            max_model_len=self.max_model_len,
        )
        self.sampler = Sampler()
        self.grammars = GrammarCompiler(tokenizer, runner.vocab_size)
        self._requests: dict[str, _Request] = {}
        self._next_seq_id = 0
        # Requests without their own seed draw from one engine-wide stream (config.seed).
        self._generator = torch.Generator().manual_seed(config.seed)
        eos = getattr(tokenizer, "eos_token_id", None)
        self.eos_token_ids: frozenset[int] = frozenset([eos] if isinstance(eos, int) else eos or [])
        self._prompt_tokens_total = 0
        self._generation_tokens_total = 0

    # -- admission ---------------------------------------------------------------------------------

    def validate_request(
        self, prompt_token_ids: list[int], params: SamplingParams, adapter: str | None = None
    ) -> None:
        """Everything ``add_request`` checks before queueing, without side effects (thread-safe)."""
        if not isinstance(params, SamplingParams):
            raise InvalidArgument.field("params", f"must be SamplingParams, not {type(params).__name__}")
        params.validate(self.runner.vocab_size)
        vocab = self.runner.vocab_size
        for i, t in enumerate(prompt_token_ids):
            if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < vocab:
                raise InvalidArgument.field(f"prompt[{i}]", f"token id {t!r} is not in [0, {vocab})")
        self.scheduler.check_fits(len(prompt_token_ids), params.max_tokens)
        if params.structured is not None:
            self.grammars.check(params.structured)  # compiled once here; admission copies it
        if adapter is not None and adapter not in self.runner.adapters():
            raise NotFound(f"model {adapter!r} is not served here (no such adapter)")

    def add_request(
        self,
        request_id: str,
        prompt_token_ids: list[int],
        params: SamplingParams,
        adapter: str | None = None,
        *,
        arrival_time: float | None = None,
    ) -> None:
        """Queue a request; ``InvalidArgument``/``NotFound``/``ResourceExhausted`` before queueing."""
        if not request_id or request_id in self._requests:
            raise InvalidArgument.field("request_id", f"{request_id!r} is empty or already in use")
        self.validate_request(prompt_token_ids, params, adapter)
        if len(self.scheduler.waiting) >= self.config.max_queue_len:
            raise ResourceExhausted(
                f"the inference queue is full ({self.config.max_queue_len} waiting requests); retry later"
            )
        seq = Sequence(
            self._next_seq_id,
            request_id,
            list(prompt_token_ids),
            params,
            adapter,
            arrival_time=self._clock() if arrival_time is None else arrival_time,
        )
        self._next_seq_id += 1
        if params.structured is not None:
            seq.grammar = self.grammars.matcher(params.structured)
        gen = self._generator
        if params.seed is not None:
            gen = torch.Generator().manual_seed(params.seed)
        self.scheduler.add(seq)
        detok = IncrementalDetokenizer(self.tokenizer, seq.prompt_token_ids, params.stop)
        self._requests[request_id] = _Request(seq, detok, gen)
        self._prompt_tokens_total += seq.num_prompt_tokens
        if self.metrics:
            self.metrics.prompt_tokens.inc(seq.num_prompt_tokens)
        self._update_gauges()

    def abort(self, request_id: str) -> RequestOutput | None:
        """Stop a request and free its blocks now; its final output, or None if it is not here."""
        req = self._requests.get(request_id)
        if req is None:
            return None
        return self._finish(req, "abort", "", (), None)

    def request_ids(self) -> list[str]:
        """Requests queued or running."""
        return list(self._requests)

    def has_unfinished(self) -> bool:
        return self.scheduler.has_unfinished()

    @property
    def num_waiting(self) -> int:
        return len(self.scheduler.waiting)

    # -- the step ----------------------------------------------------------------------------------

    def step(self) -> list[RequestOutput]:
        sched = self.scheduler.schedule()
        if sched.preempted and self.metrics:
            self.metrics.preemptions.inc(len(sched.preempted))
        if not sched.scheduled:
            self._update_gauges()
            return []
        try:
            model_input = sched.model_input()
            logits = self.runner.execute(model_input)
            sampling = [c for c in sched.scheduled if c.needs_logits]
            expected = sum(c.num_logit_rows for c in model_input.chunks)
            if tuple(logits.shape[:1]) != (expected,):
                raise Internal(f"runner returned logits of shape {tuple(logits.shape)} for {expected} rows")
            logits = self._score_prompts(sched.scheduled, logits)
        except Exception as exc:  # noqa: BLE001 - a bad step must not take the engine down
            log.exception("engine step failed; failing its %d requests", len(sched.scheduled))
            return self._fail([c.seq for c in sched.scheduled], exc)
        for chunk in sched.scheduled:
            chunk.seq.num_computed += chunk.num_tokens
            self.block_manager.cache_computed(chunk.seq)
        rows = [
            SampleRequest(
                c.seq.params,
                c.seq.prompt_token_ids,
                c.seq.output_token_ids,
                self._requests[c.seq.request_id].generator,
            )
            for c in sampling
        ]
        outputs: list[RequestOutput] = []
        if rows:
            logits = mask_logits(logits, [c.seq.grammar for c in sampling])
            tokens, logprobs = self.sampler(logits, rows)
            now = self._clock()
            for chunk, token, lp in zip(sampling, tokens, logprobs, strict=True):
                outputs.append(self._append_token(self._requests[chunk.seq.request_id], token, lp, now))
        self._update_gauges()
        return outputs

    def _score_prompts(self, scheduled: list[ScheduledChunk], logits: torch.Tensor) -> torch.Tensor:
        """Record prompt logprobs from the ``all_logits`` chunks' rows; the next-token rows are returned."""
        if not any(c.all_logits for c in scheduled):
            return logits
        keep: list[int] = []
        row = 0
        for chunk in scheduled:
            if not chunk.all_logits:
                if chunk.needs_logits:
                    keep.append(row)
                    row += 1
                continue
            seq, start = chunk.seq, chunk.seq.num_computed
            # Row j predicts prompt token start + j + 1; the prompt's last row predicts the first output.
            targets = seq.prompt_token_ids[start + 1 : start + 1 + chunk.num_tokens]
            del seq.prompt_logprobs[start + 1 :]  # a preempted sequence recomputes from the start
            if targets:
                top_n = seq.params.prompt_logprobs or 0
                seq.prompt_logprobs.extend(score_tokens(logits[row : row + len(targets)], targets, top_n))
            row += chunk.num_tokens
            if chunk.needs_logits:
                keep.append(row - 1)
        return logits[keep]

    def _append_token(self, req: _Request, token: int, lp: TokenLogprob | None, now: float) -> RequestOutput:
        seq = req.seq
        seq.token_ids.append(token)
        self._generation_tokens_total += 1
        if self.metrics:
            self.metrics.generation_tokens.inc()
            if seq.first_token_time is None:
                self.metrics.time_to_first_token.observe(now - seq.arrival_time)
            elif seq.last_token_time is not None:
                self.metrics.inter_token_latency.observe(now - seq.last_token_time)
        if seq.first_token_time is None:
            seq.first_token_time = now
        seq.last_token_time = now
        params = seq.params
        lps = None if lp is None else (lp,)
        reason: str | None = None
        if seq.grammar is not None:
            try:
                seq.grammar.accept(token)
            except ShipyardError as exc:
                log.error("request %s: %s", seq.request_id, exc)
                return self._finish(req, "abort", "", (token,), lps, exc)
            if seq.grammar.done:  # complete: the grammar allows nothing more (not even more EOS)
                reason = "stop"
        if (token in self.eos_token_ids and not params.ignore_eos) or token in params.stop_token_ids:
            reason = "stop"  # the stop token is counted but not shown, as in OpenAI's API
            text = ""
        elif reason is not None and token in self.eos_token_ids:
            text = ""  # the grammar ended on EOS (even with ignore_eos): not shown
        else:
            text = req.detokenizer.add(token)
            if req.detokenizer.stopped:
                reason = "stop"
            elif reason is None and (
                seq.num_output_tokens >= params.max_tokens or seq.num_tokens >= self.max_model_len
            ):
                reason = "length"
        if reason is not None:
            return self._finish(req, reason, text, (token,), lps)
        return self._output(seq, text, (token,), lps, finished=False)

    def _finish(
        self,
        req: _Request,
        reason: str,
        text: str,
        tokens: tuple[int, ...],
        lps: tuple[TokenLogprob, ...] | None,
        error: ShipyardError | None = None,
    ) -> RequestOutput:
        seq = req.seq
        if reason != "abort" or error is None:
            text += req.detokenizer.flush()
        self.scheduler.finish(seq, reason)
        del self._requests[seq.request_id]
        if self.metrics:
            self.metrics.request_latency.observe(self._clock() - seq.arrival_time)
        self._update_gauges()
        if lps is None and seq.params.logprobs is not None:
            lps = ()
        return self._output(seq, text, tokens, lps, finished=True, error=error)

    def _fail(self, seqs: list[Sequence], exc: Exception) -> list[RequestOutput]:
        error = exc if isinstance(exc, ShipyardError) else Internal(f"the model step failed: {exc}")
        return [self._finish(self._requests[s.request_id], "abort", "", (), None, error) for s in seqs]

    def _output(
        self,
        seq: Sequence,
        text: str,
        tokens: tuple[int, ...],
        lps: tuple[TokenLogprob, ...] | None,
        *,
        finished: bool,
        error: ShipyardError | None = None,
    ) -> RequestOutput:
        prompt_lps = None
        if seq.params.prompt_logprobs is not None and seq.num_output_tokens == len(tokens) == 1:
            prompt_lps = tuple(seq.prompt_logprobs)  # the first output: the prompt is fully scored
        return RequestOutput(
            request_id=seq.request_id,
            text=text,
            token_ids=tokens,
            logprobs=lps,
            finished=finished,
            finish_reason=seq.finish_reason if finished else None,
            prompt_tokens=seq.num_prompt_tokens,
            completion_tokens=seq.num_output_tokens,
            cached_tokens=seq.num_cached_tokens,
            error=error,
            prompt_logprobs=prompt_lps,
        )

    # -- adapters and stats ------------------------------------------------------------------------

    def load_adapter(self, name: str, path: str) -> None:
        self.runner.load_adapter(name, path)
        # A reloaded name may carry different weights: cached blocks keyed by it are stale.
        self.block_manager.reset_prefix_cache()

    def unload_adapter(self, name: str) -> list[RequestOutput]:
        """Unload ``name``; requests still using it are aborted (their final outputs are returned)."""
        if name not in self.runner.adapters():
            raise NotFound(f"model {name!r} is not served here (no such adapter)")
        users = [r.seq.request_id for r in self._requests.values() if r.seq.adapter == name]
        aborted = [out for rid in users if (out := self.abort(rid)) is not None]
        self.runner.unload_adapter(name)
        self.block_manager.reset_prefix_cache()
        return aborted

    def stats(self) -> EngineStats:
        bm = self.block_manager
        return EngineStats(
            num_waiting=len(self.scheduler.waiting),
            num_running=len(self.scheduler.running),
            num_blocks=bm.num_blocks,
            num_free_blocks=bm.num_free_blocks,
            kv_cache_usage=bm.usage,
            prefix_cache_hit_rate=bm.hit_rate,
            num_preemptions=self.scheduler.num_preemptions,
            prompt_tokens_total=self._prompt_tokens_total,
            generation_tokens_total=self._generation_tokens_total,
        )

    def _update_gauges(self) -> None:
        m = self.metrics
        if m is None:
            return
        m.requests_waiting.set(len(self.scheduler.waiting))
        m.requests_running.set(len(self.scheduler.running))
        m.kv_cache_usage.set(self.block_manager.usage)
        m.prefix_cache_hit_rate.set(self.block_manager.hit_rate)
