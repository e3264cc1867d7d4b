"""Chat templates: which Jinja template turns a conversation into tokens, and rendering with it.

A template is the tokenizer's own (``tokenizer.chat_template``, what the model was trained with) or one of
the bundled named templates (``chatml``, ``llama-3``, ``zephyr``, ``mistral``), written to match the
templates those model families publish. Rendering always goes through ``tokenizer.apply_chat_template``
so training sees exactly the ids inference will build, with ``sanitize_control_tokens`` on: a record whose
text contains ``<|im_end|>`` is trained on those characters, not on a forged end-of-turn token.

A named template may need control tokens the tokenizer lacks (``chatml`` on a Llama tokenizer):
``missing_control_tokens`` lists them so the trainer can add them and resize the embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jinja2

from shipyard.errors import InvalidArgument
from shipyard.finetune.formats import InvalidRecord, Message

__all__ = ["BUNDLED_TEMPLATES", "ChatTemplate", "missing_control_tokens", "render_ids", "resolve_template"]


@dataclass(frozen=True)
class ChatTemplate:
    """A Jinja chat template. ``control_tokens`` must each be one token for the template to work as meant."""

    name: str
    source: str
    control_tokens: tuple[str, ...] = ()


_CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Meta-Llama-3-8B-Instruct's published template.
_LLAMA3 = (
    "{% for message in messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
# HuggingFaceH4/zephyr-7b-beta's template, rendered output identical (tags are plain text, turns end in EOS).
_ZEPHYR = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
# Mistral-7B-Instruct: [INST] blocks, the system prompt folded into the first user turn.
_MISTRAL = (
    "{% if messages[0]['role'] == 'system' %}"
    "{% set system = messages[0]['content'] + '\\n\\n' %}{% set turns = messages[1:] %}"
    "{% else %}{% set system = '' %}{% set turns = messages %}{% endif %}"
    "{{ bos_token }}"
    "{% for message in turns %}"
    "{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + (system if loop.first else '') + message['content'] + ' [/INST]' }}"
    "{% else %}{{ ' ' + message['content'] + eos_token }}{% endif %}"
    "{% endfor %}"
)

BUNDLED_TEMPLATES: dict[str, ChatTemplate] = {
    t.name: t
    for t in (
        ChatTemplate("chatml", _CHATML, ("<|im_start|>", "<|im_end|>")),
        ChatTemplate("llama-3", _LLAMA3, ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")),
        ChatTemplate("zephyr", _ZEPHYR),
        ChatTemplate("mistral", _MISTRAL),
    )
}


def resolve_template(tokenizer: Any, name: str | None, *, field: str = "template") -> ChatTemplate:
    """``None`` or ``"tokenizer"``: the tokenizer's own template; a bundled name; or inline Jinja source."""
    if name is None or name == "tokenizer":
        own = getattr(tokenizer, "chat_template", None)
        if isinstance(own, dict):  # tokenizers that ship several named templates
            own = own.get("default")
        if not isinstance(own, str) or not own:
            raise InvalidArgument.field(
                field, f"the tokenizer has no chat_template; name one of: {', '.join(BUNDLED_TEMPLATES)}"
            )
        return ChatTemplate("tokenizer", own)
    if name in BUNDLED_TEMPLATES:
        return BUNDLED_TEMPLATES[name]
    if "{%" in name or "{{" in name:
        return ChatTemplate("custom", name)
    raise InvalidArgument.field(
        field,
        f"unknown chat template {name!r}; expected 'tokenizer', one of {', '.join(BUNDLED_TEMPLATES)}, "
        "or Jinja source",
    )


def missing_control_tokens(tokenizer: Any, template: ChatTemplate) -> list[str]:
    """The template's control tokens that the tokenizer would split into several tokens."""
    return [t for t in template.control_tokens if len(tokenizer.encode(t, add_special_tokens=False)) != 1]


def render_ids(
    tokenizer: Any,
    template: ChatTemplate,
    messages: Sequence[Message],
    *,
    add_generation_prompt: bool = False,
) -> list[int]:
    """The token ids of ``messages`` rendered with ``template`` (no extra special tokens added)."""
    try:
        ids = tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in messages],
            chat_template=template.source,
            add_generation_prompt=add_generation_prompt,
            tokenize=True,
            return_dict=False,
            sanitize_control_tokens=True,
        )
    except (jinja2.TemplateError, TypeError, ValueError) as exc:
        # A template may refuse a conversation (raise_exception on a system role): that record is bad, not
        # the run. TypeError/ValueError come from templates doing arithmetic on unexpected content.
        raise InvalidRecord(
            "template_error", "messages", f"chat template {template.name!r} cannot render it: {exc}"
        ) from exc
    return list(ids)
