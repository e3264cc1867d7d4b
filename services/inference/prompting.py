"""Turning a request's prompt (text, token ids or chat messages) into the token ids the engine takes.

Both edges (HTTP and gRPC) call ``encode``, so a conversation renders with the same chat template and a
bad prompt fails with the same message on either API. ``field`` names the prompt in the caller's
request (``messages`` for OpenAI chat, ``prompt`` for completions, ``chat.messages`` for gRPC).
``tools`` go to templates that render them (``template_uses_tools``); for the others the OpenAI edge
writes the tools into the messages itself (``openai.tool_calls``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jinja2

from shipyard.errors import InvalidArgument
from shipyard.wire.inference import PromptInput

__all__ = ["encode", "encode_messages", "template_uses_tools"]


def encode(tokenizer: Any, prompt: PromptInput, *, field: str = "prompt") -> list[int]:
    if prompt.token_ids is not None:
        return list(prompt.token_ids)
    if prompt.messages is not None:
        return encode_messages(tokenizer, prompt.messages, field=field)
    assert prompt.text is not None
    if not prompt.text:
        raise InvalidArgument.field(field, "must not be empty")
    return list(tokenizer(prompt.text)["input_ids"])


def template_uses_tools(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template renders a ``tools`` list (vLLM and HF templates name it so)."""
    template = getattr(tokenizer, "chat_template", None)
    templates = template.values() if isinstance(template, Mapping) else [template or ""]
    return any("tools" in t for t in templates)


def encode_messages(
    tokenizer: Any,
    messages: Sequence[Mapping[str, Any]],
    *,
    field: str = "messages",
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> list[int]:
    """The conversation rendered with the tokenizer's chat template, ready for the assistant's turn."""
    if not messages:
        raise InvalidArgument.field(field, "must hold at least one message")
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidArgument.field(
            field, "the served model has no chat template; send a plain prompt to /v1/completions instead"
        )
    try:
        # Render to text first: the template already holds BOS/role tokens, so tokenizing without
        # special tokens keeps them from being added twice.
        text = tokenizer.apply_chat_template(
            list(messages), tools=list(tools) if tools else None, tokenize=False, add_generation_prompt=True
        )
    except (jinja2.TemplateError, ValueError, TypeError) as exc:  # e.g. "roles must alternate"
        raise InvalidArgument.field(field, f"cannot apply the chat template: {exc}") from exc
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
