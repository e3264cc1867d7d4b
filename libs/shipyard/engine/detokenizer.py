"""Turning generated token ids into streamed text, and matching stop strings on that text.

Decoding one token at a time breaks characters that span several byte-level tokens and drops the
spaces SentencePiece attaches to word starts. So, as vLLM and TGI do, each step decodes a short window
``tokens[prefix_offset:]`` and emits only what it adds over ``tokens[prefix_offset:read_offset]``,
holding back while the text ends in an incomplete character (U+FFFD). Stop strings follow OpenAI: the
text is cut before the stop string, which is never emitted; while a stop string might still be
completing, its possible prefix is held back rather than streamed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["IncrementalDetokenizer"]

_REPLACEMENT = "\ufffd"
_PROMPT_CONTEXT = 5


class IncrementalDetokenizer:
    """Per-request decoder state; ``add`` returns the text that may be streamed now."""

    def __init__(
        self,
        tokenizer: Any,
        prompt_token_ids: list[int] | tuple[int, ...] = (),
        stop: tuple[str, ...] = (),
        *,
        skip_special_tokens: bool = True,
    ) -> None:
        self._tokenizer = tokenizer
        self._stop = stop
        self._hold = max((len(s) for s in stop), default=1) - 1
        self._skip = skip_special_tokens
        # A few prompt tokens give the first generated token its context (e.g. SentencePiece's leading
        # space), as vLLM does; they are never emitted themselves.
        self._tokens: list[int] = list(prompt_token_ids[-_PROMPT_CONTEXT:])
        self._prefix_offset = 0
        self._read_offset = len(self._tokens)
        self.text = ""  # all decoded text so far (cut at a stop string once one matched)
        self._emitted = 0  # characters of ``text`` already returned
        self.stopped = False

    def add(self, token_id: int) -> str:
        """Feed one generated token; returns newly streamable text (maybe empty)."""
        if self.stopped:
            return ""
        self._tokens.append(token_id)
        prefix = self._decode(self._tokens[self._prefix_offset : self._read_offset])
        full = self._decode(self._tokens[self._prefix_offset :])
        if len(full) > len(prefix) and not full.endswith(_REPLACEMENT):
            search_from = max(0, len(self.text) - self._hold)
            self.text += full[len(prefix) :]
            self._prefix_offset = self._read_offset
            self._read_offset = len(self._tokens)
            self._match_stop(search_from)
        return self._take(final=self.stopped)

    def flush(self) -> str:
        """The held-back remainder once the request finished for another reason (length, eos, abort)."""
        return self._take(final=True)

    def _match_stop(self, search_from: int) -> None:
        cut = -1
        for s in self._stop:
            at = self.text.find(s, search_from)
            if at != -1 and (cut == -1 or at < cut):
                cut = at
        if cut != -1:
            self.text = self.text[:cut]
            self.stopped = True

    def _take(self, *, final: bool) -> str:
        end = len(self.text) if final else max(self._emitted, len(self.text) - self._hold)
        delta = self.text[self._emitted : end]
        self._emitted = end
        return delta

    def _decode(self, ids: list[int]) -> str:
        if not ids:
            return ""
        return self._tokenizer.decode(ids, skip_special_tokens=self._skip)
