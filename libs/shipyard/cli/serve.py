"""``shipyard serve MODEL`` and ``shipyard chat MODEL``: run the inference server, talk to a model.

``serve`` runs the inference service (``python -m shipyard_services.inference``) in the foreground, the
same process a pod runs, so the CLI never imports the services package. ``chat`` streams answers in
the terminal, keeping the conversation; with ``-p`` it answers each given prompt (each in a fresh
conversation) and exits. It loads the model in-process with the engine, or with ``--endpoint`` talks
to a running server's OpenAI API.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from typing import Any, Protocol

import click

from shipyard.cli import display
from shipyard.cli.main import CliContext
from shipyard.errors import FailedPrecondition, InvalidArgument

__all__ = ["chat", "serve"]


@click.command("serve")
@click.argument("model")
@click.option("--port", type=int, help="OpenAI HTTP port (default: inference.http_port, 8000).")
@click.option("--grpc-port", type=int, help="gRPC port (default: grpc.ports.inference, 50055).")
@click.option("--served-model-name", help="Name clients use for the model (default: its own name).")
@click.option(
    "--adapter", "adapters", multiple=True, metavar="NAME=URI", help="LoRA adapter to serve (repeatable)."
)
@click.option("--max-model-len", type=int, help="Context window (default: the model's).")
@click.pass_obj
def serve(
    obj: CliContext,
    model: str,
    port: int | None,
    grpc_port: int | None,
    served_model_name: str | None,
    adapters: tuple[str, ...],
    max_model_len: int | None,
) -> None:
    """Serve MODEL over the OpenAI API and gRPC until Ctrl-C (MODEL: a name, model:NAME or a path/URI)."""
    args = [sys.executable, "-m", "shipyard_services.inference", "--model", model]
    args += ["--data-dir", str(obj.config.storage.data_dir)]
    optional = {
        "--http-port": port,
        "--grpc-port": grpc_port,
        "--served-model-name": served_model_name,
        "--max-model-len": max_model_len,
    }
    for flag, value in optional.items():
        if value is not None:
            args += [flag, str(value)]
    for adapter in adapters:
        args += ["--adapter", adapter]
    # The server replaces this process, so a supervisor's SIGTERM (or Ctrl-C) reaches it directly:
    # a child would be orphaned, still holding its ports, when only this CLI process is signalled.
    os.execv(sys.executable, args)


class _ChatBackend(Protocol):
    raw: bool  # prompts are plain text to complete, not chat turns

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]: ...

    def close(self) -> None: ...


class _LocalChat:
    """The model loaded in this process with the inference engine."""

    raw = False

    def __init__(self, obj: CliContext, model: str, max_tokens: int, temperature: float) -> None:
        from shipyard.engine.async_engine import AsyncLLMEngine
        from shipyard.models.registry import ModelRegistry
        from shipyard.storage.routing import RoutingStorage

        config = obj.config
        registry = ModelRegistry(RoutingStorage(config.storage), config.storage.root)
        with display.console.status(f"loading {model}…"):
            self._engine = AsyncLLMEngine.from_config(
                model, config.inference, storage_config=config.storage, registry=registry
            )
        self._engine.start()
        self._max_tokens = max_tokens
        self._temperature = temperature

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        from shipyard.engine.sampling_params import SamplingParams

        tokenizer = self._engine.tokenizer
        if self.raw:
            prompt = list(tokenizer(messages[-1]["content"])["input_ids"])
        else:
            if not getattr(tokenizer, "chat_template", None):
                raise FailedPrecondition(
                    f"model {self._engine.model_name!r} has no chat template; use --raw to complete text"
                )
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            prompt = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        room = self._engine.max_model_len - len(prompt)
        if room < 1:
            raise InvalidArgument.field(
                "prompt", f"the conversation no longer fits the context window ({room})"
            )
        params = SamplingParams(max_tokens=min(self._max_tokens, room), temperature=self._temperature)
        with self._engine.generate_sync(prompt, params, request_id=f"chat-{uuid.uuid4().hex}") as outputs:
            for out in outputs:
                yield out.text

    def close(self) -> None:
        self._engine.shutdown()


class _RemoteChat:
    """A running server's OpenAI-compatible API (ours, vLLM, ...), through the official client."""

    raw = False

    def __init__(self, endpoint: str, model: str, max_tokens: int, temperature: float) -> None:
        try:
            import openai
        except ImportError as exc:
            raise FailedPrecondition("chat --endpoint needs the openai package: pip install openai") from exc
        base = endpoint.rstrip("/")
        self._client = openai.OpenAI(base_url=base if base.endswith("/v1") else base + "/v1", api_key="-")
        self._model, self._max_tokens, self._temperature = model, max_tokens, temperature

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        import openai

        try:
            if self.raw:
                completions = self._client.completions.create(
                    model=self._model,
                    prompt=messages[-1]["content"],
                    max_tokens=self._max_tokens,
                    temperature=self._temperature,
                    stream=True,
                )
                for part in completions:
                    if part.choices and part.choices[0].text:
                        yield part.choices[0].text
                return
            chunks = self._client.chat.completions.create(
                model=self._model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=self._max_tokens,
                temperature=self._temperature,
                stream=True,
            )
            for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except openai.APIStatusError as exc:
            raise FailedPrecondition(
                f"{self._model}: the server answered {exc.status_code}: {exc.message}"
            ) from exc
        except openai.APIConnectionError as exc:
            raise FailedPrecondition(f"cannot reach {self._client.base_url}: {exc}") from exc

    def close(self) -> None:
        self._client.close()


@click.command("chat")
@click.argument("model")
@click.option("-p", "--prompt", "prompts", multiple=True, help="Answer this prompt and exit (repeatable).")
@click.option("--endpoint", help="Talk to a running server (http://host:8000) instead of loading MODEL here.")
@click.option("--system", help="System message opening the conversation.")
@click.option("--max-tokens", type=int, default=256, show_default=True, help="Tokens per answer at most.")
@click.option("--temperature", type=float, default=0.7, show_default=True, help="0 = greedy.")
@click.option("--raw", is_flag=True, help="Complete prompts as plain text (base models).")
@click.pass_obj
def chat(
    obj: CliContext,
    model: str,
    prompts: tuple[str, ...],
    endpoint: str | None,
    system: str | None,
    max_tokens: int,
    temperature: float,
    raw: bool,
) -> None:
    """Chat with MODEL in the terminal (streaming); /reset starts over, /exit or Ctrl-D leaves.

    MODEL is the name of a ModelDeployment running here (`shipyard apply`), which is then talked to over
    its endpoint, or any model reference, loaded in this process.
    """
    if endpoint is None:
        endpoint = _local_deployment_endpoint(obj, model)
    backend: _ChatBackend = (
        _RemoteChat(endpoint, model, max_tokens, temperature)
        if endpoint
        else _LocalChat(obj, model, max_tokens, temperature)
    )
    backend.raw = raw
    opening = [{"role": "system", "content": system}] if system else []
    try:
        if prompts:
            for prompt in prompts:
                display.out.print(f"[bold cyan]> {prompt}[/]", highlight=False)
                _answer(backend, [*opening, {"role": "user", "content": prompt}])
            return
        _interactive(backend, opening)
    finally:
        backend.close()


def _local_deployment_endpoint(obj: CliContext, name: str) -> str | None:
    """The endpoint of the live local ModelDeployment called ``name``, if there is one."""
    from shipyard.cli.embedded_kinds import local_deployments
    from shipyard.errors import NotFound

    try:
        record = local_deployments(obj).get(name)
    except NotFound:
        return None
    return record.endpoint.removesuffix("/v1") if record.alive() and record.endpoint else None


def _answer(backend: _ChatBackend, messages: list[dict[str, str]]) -> str:
    """Stream one answer to stdout as it is generated; returns it."""
    parts: list[str] = []
    for text in backend.stream(messages):
        parts.append(text)
        display.out.print(text, end="", markup=False, highlight=False, soft_wrap=True)
    display.out.print()
    return "".join(parts)


def _interactive(backend: _ChatBackend, opening: list[dict[str, Any]]) -> None:
    messages = list(opening)
    display.console.print("[dim]/reset starts a new conversation; /exit or Ctrl-D leaves[/]")
    while True:
        try:
            line = display.console.input("[bold cyan]you> [/]")
        except (EOFError, KeyboardInterrupt):
            display.console.print()
            return
        if line.strip() in ("/exit", "/quit"):
            return
        if line.strip() == "/reset":
            messages = list(opening)
            continue
        if not line.strip():
            continue
        messages.append({"role": "user", "content": line})
        messages.append({"role": "assistant", "content": _answer(backend, messages)})
