"""Constrained decoding: what a request's output must match, compiled with llguidance, masked per step.

``StructuredOutput`` says what the output must be (a JSON schema, any JSON object, a Lark grammar or
a regex). ``GrammarCompiler`` (one per engine, i.e. per model) wraps the tokenizer for llguidance on
first use and keeps an LRU of compiled grammars keyed by their text, so each constrained sequence
gets a cheap copy of a compiled ``LLMatcher`` instead of recompiling. Each step, ``mask_logits`` sets
the logits of tokens the grammar forbids to ``-inf`` for the constrained rows only; after a token is
chosen the sequence's ``GrammarMatcher`` consumes it. This is vLLM's "guidance" backend; masks are
computed on the CPU (tens of microseconds per row) and applied on the logits' device.

A matcher's state depends only on the tokens it consumed, and a preempted sequence keeps its generated
tokens (only its KV cache is recomputed), so preemption needs no rollback.

llguidance ships in the ``serve`` extra; it is imported on first use, so the engine runs without it
until a request asks for structured output.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch

from shipyard.errors import FailedPrecondition, Internal, InvalidArgument

if TYPE_CHECKING:
    import llguidance

__all__ = ["JSON_OPTIONS", "GrammarCompiler", "GrammarMatcher", "StructuredOutput", "mask_logits"]

Kind = Literal["json_schema", "json_object", "lark", "regex"]
KINDS: tuple[str, ...] = ("json_schema", "json_object", "lark", "regex")

# JSON is generated with the separators of Python's json.dumps and no free whitespace: small models
# given "any whitespace" tend to emit newlines forever instead of closing the object.
# A schema's own "x-guidance" options override these.
JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


@dataclass(frozen=True)
class StructuredOutput:
    """What a request's output must match; ``field`` is the request field it came from (named in errors)."""

    kind: Kind
    spec: str = ""  # the JSON schema (as JSON text), Lark grammar or regex; empty for json_object
    field: str = "structured"

    @classmethod
    def json_schema(cls, schema: Mapping[str, Any] | str, *, field: str = "structured") -> StructuredOutput:
        text = schema if isinstance(schema, str) else json.dumps(schema)
        return cls("json_schema", text, field)

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise InvalidArgument.field(self.field, f"unknown kind {self.kind!r}; expected one of {KINDS}")
        if not isinstance(self.spec, str) or (self.kind != "json_object" and not self.spec):
            raise InvalidArgument.field(self.field, f"a {self.kind} constraint needs a non-empty spec")

    def check(self) -> None:
        """Check the grammar alone (no tokenizer): lets an edge name which part of a request is bad."""
        self.validate()
        is_error, messages = _llguidance().LLMatcher.validate_grammar_with_warnings(self.grammar())
        if is_error:
            raise InvalidArgument.field(self.field, f"cannot compile the {self.kind}: {messages[0]}")

    def grammar(self) -> str:
        """The llguidance grammar text (not yet checked); ``InvalidArgument`` if the spec is not JSON."""
        ll = _llguidance()
        try:
            if self.kind == "json_schema":
                return ll.LLMatcher.grammar_from_json_schema(self.spec, defaults=JSON_OPTIONS)
            if self.kind == "json_object":
                return ll.LLMatcher.grammar_from_json_schema('{"type": "object"}', defaults=JSON_OPTIONS)
            if self.kind == "lark":
                return ll.LLMatcher.grammar_from_lark(self.spec)
            return ll.LLMatcher.grammar_from_regex(self.spec)
        except ValueError as exc:
            raise InvalidArgument.field(self.field, f"not a valid {self.kind}: {exc}") from exc


class GrammarMatcher:
    """One sequence's position in its grammar."""

    def __init__(self, matcher: llguidance.LLMatcher) -> None:
        self._matcher = matcher

    @property
    def ll_matcher(self) -> llguidance.LLMatcher:
        return self._matcher

    def accept(self, token_id: int) -> None:
        """Advance past the chosen token; ``Internal`` if the grammar rejects it (the mask forbade it)."""
        if not self._matcher.consume_token(token_id):
            raise Internal(f"constrained decoding rejected token {token_id}: {self._matcher.get_error()}")

    @property
    def done(self) -> bool:
        """The grammar is complete and takes nothing more (EOS consumed, or nothing may follow)."""
        return self._matcher.is_stopped()


class GrammarCompiler:
    """Per model: the llguidance view of the tokenizer (built once, on first use) and compiled grammars."""

    def __init__(self, tokenizer: Any, vocab_size: int, *, cache_size: int = 64) -> None:
        self._tokenizer = tokenizer
        self._vocab_size = vocab_size
        self._cache_size = cache_size
        self._ll_tokenizer: llguidance.LLTokenizer | None = None
        self._compiled: OrderedDict[tuple[str, str], llguidance.LLMatcher] = OrderedDict()
        # Requests are validated on the caller's thread and admitted on the engine's.
        self._lock = threading.Lock()

    def check(self, structured: StructuredOutput) -> None:
        """Compile (or find compiled) ``structured``; ``InvalidArgument`` naming its field if it fails."""
        self._compiled_matcher(structured)

    def matcher(self, structured: StructuredOutput) -> GrammarMatcher:
        """A fresh matcher at the start of ``structured``'s grammar."""
        return GrammarMatcher(self._compiled_matcher(structured).deep_copy())

    def _compiled_matcher(self, structured: StructuredOutput) -> llguidance.LLMatcher:
        structured.validate()
        key = (structured.kind, structured.spec)
        with self._lock:
            if (hit := self._compiled.get(key)) is not None:
                self._compiled.move_to_end(key)
                return hit
        ll = _llguidance()
        grammar = structured.grammar()
        tokenizer = self._llg_tokenizer()
        is_error, messages = ll.LLMatcher.validate_grammar_with_warnings(grammar, tokenizer)
        if is_error:
            raise InvalidArgument.field(
                structured.field, f"cannot compile the {structured.kind}: {messages[0]}"
            )
        matcher = ll.LLMatcher(tokenizer, grammar, log_level=0)
        if matcher.is_error():
            raise InvalidArgument.field(
                structured.field, f"cannot compile the {structured.kind}: {matcher.get_error()}"
            )
        with self._lock:
            self._compiled[key] = matcher
            while len(self._compiled) > self._cache_size:
                self._compiled.popitem(last=False)
        return matcher

    def _llg_tokenizer(self) -> llguidance.LLTokenizer:
        with self._lock:
            if self._ll_tokenizer is None:
                import llguidance.hf

                try:
                    # n_vocab = the model's logits width, which may exceed the tokenizer's vocabulary.
                    self._ll_tokenizer = llguidance.hf.from_tokenizer(
                        self._tokenizer, n_vocab=self._vocab_size
                    )
                except (ValueError, AttributeError) as exc:
                    raise FailedPrecondition(
                        f"structured output needs a fast (Rust) Hugging Face tokenizer: {exc}"
                    ) from exc
            return self._ll_tokenizer


def mask_logits(logits: torch.Tensor, matchers: list[GrammarMatcher | None]) -> torch.Tensor:
    """``logits`` with each constrained row's forbidden tokens at ``-inf``; other rows are untouched."""
    rows = [i for i, m in enumerate(matchers) if m is not None]
    if not rows:
        return logits
    import llguidance.torch as llt

    vocab = logits.shape[-1]
    bitmask = torch.full(llt.get_bitmask_shape(len(rows), vocab), -1, dtype=torch.int32)
    for j, i in enumerate(rows):
        llt.fill_next_token_bitmask(matchers[i].ll_matcher, bitmask, j)  # type: ignore[union-attr]
    # Unpack 32 tokens per int32 word (bit k of word w is token 32*w + k).
    shifts = torch.arange(32, dtype=torch.int32)
    forbidden = ((bitmask.unsqueeze(-1) >> shifts) & 1).reshape(len(rows), -1)[:, :vocab] == 0
    forbidden = forbidden.to(logits.device)
    logits = logits.clone()
    for j, i in enumerate(rows):
        # Row by row on views: advanced indexing (logits[tensor]) costs milliseconds on CPU.
        logits[i].masked_fill_(forbidden[j], float("-inf"))
    return logits


def _llguidance() -> Any:
    try:
        import llguidance
    except ImportError as exc:  # pragma: no cover - the serve extra installs it
        raise FailedPrecondition("structured output needs llguidance: pip install 'shipyard[serve]'") from exc
    return llguidance
