"""Text -> token ids the way lm-evaluation-harness does it, for every backend that tokenizes locally.

Shared by ``HFBackend`` and ``EngineBackend`` so both score exactly the same tokens: a request's context
and continuation are encoded the lm-eval way (trailing spaces of the context move to the continuation,
the whole string is encoded once and split after the context's own tokens, no special tokens); an empty
context is scored after the BOS (else EOS) token; chat messages go through the tokenizer's template.
"""

from __future__ import annotations

from typing import Any

from shipyard.errors import FailedPrecondition

__all__ = ["LmEvalTokenization"]


class LmEvalTokenization:
    """Mixin: needs ``tokenizer`` (a transformers tokenizer) and ``name`` (for messages)."""

    tokenizer: Any
    name: str

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def prefix_token_id(self) -> int:
        """The token an empty context is scored after: BOS if the tokenizer has one, else EOS."""
        bos = self.tokenizer.bos_token_id
        token = bos if bos is not None else self.tokenizer.eos_token_id
        if token is None:
            raise FailedPrecondition(
                "the tokenizer has neither a BOS nor an EOS token to score an empty context"
            )
        return int(token)

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Context and continuation token ids, split as lm-eval's ``HFLM._encode_pair`` splits them."""
        if context == "":
            return [self.prefix_token_id], self._encode(continuation)
        spaces = len(context) - len(context.rstrip())
        if spaces > 0:
            continuation = context[-spaces:] + continuation
            context = context[:-spaces]
        whole = self._encode(context + continuation)
        context_ids = self._encode(context)
        return context_ids, whole[len(context_ids) :]

    def render(self, prompt: str | list[dict[str, str]]) -> str:
        """The text the model continues: the prompt itself, or chat messages through the chat template."""
        if isinstance(prompt, str):
            return prompt
        if not getattr(self.tokenizer, "chat_template", None):
            raise FailedPrecondition(
                f"model {self.name!r} has no chat template, so it cannot take chat messages; "
                "use a text prompt (no chat format) for this model"
            )
        return str(self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True))
