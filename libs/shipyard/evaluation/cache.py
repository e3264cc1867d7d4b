"""The evaluation result cache: a model's raw results per sample, in Shipyard storage, so reruns are cheap.

Layout: ``<root>/evaluations/cache/<model key>/<task>/<config key>/<run>.jsonl``, one line per sample:
``{"id", "req", "results"}``. The config key hashes the task's declaration (its "template version"),
the dataset fingerprint, the few-shot count and the seed; the model key hashes the model's identity
(``model_identity``). ``limit`` is deliberately *not* in the key: entries are per sample, so raising the
limit finds the first samples cached and computes only the new ones. Each entry also stores a hash of
the sample's exact requests (prompt, choices, generation settings) and is ignored if it differs, so a
change the keys do not see (a prompt-building fix) can never serve a stale result.

Each run appends one new file instead of rewriting a shared one: concurrent writers never conflict,
and storage writes stay atomic per file. Failed samples are not cached, so a rerun retries them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shipyard.errors import NotFound
from shipyard.evaluation.prompts import SampleRequests
from shipyard.evaluation.tasks.spec import TaskSpec
from shipyard.evaluation.types import GenerationResult, LoglikelihoodResult, ModelResult
from shipyard.storage import Storage, join

__all__ = [
    "ResultCache",
    "config_key",
    "decode_result",
    "encode_result",
    "fingerprint",
    "model_identity",
    "requests_hash",
]

CACHE_VERSION = 1  # bump when the entry format or the meaning of a key changes


def fingerprint(*parts: Any) -> str:
    """A short, stable hash of JSON-serializable parts (sorted keys, so dict order never matters)."""
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def model_identity(
    model_ref: str,
    *,
    model_name: str | None = None,
    resolved_uri: str | None = None,
    local_dir: pathlib.Path | None = None,
    gguf_file: str | None = None,
) -> str:
    """What makes two runs "the same model", as a readable string.

    An endpoint is its URL + served model name (we cannot see its weights); a registered model is its
    pinned ``model:NAME@VERSION`` (versions are immutable) and the URI it resolves to; a local model is
    its path plus the names, sizes and mtimes of its files, so retraining into the same directory
    changes the identity without hashing gigabytes of weights.
    """
    if model_ref.startswith(("http://", "https://", "grpc://")):
        return f"endpoint:{model_ref.rstrip('/')}#{model_name or ''}"
    identity = model_ref if resolved_uri is None else f"{model_ref}->{resolved_uri}"
    if local_dir is not None and local_dir.is_dir():
        files = (
            [local_dir / gguf_file] if gguf_file else sorted(p for p in local_dir.iterdir() if p.is_file())
        )
        stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files if p.exists()]
        identity += f"#{fingerprint(stats)}"
    return identity


def config_key(task: TaskSpec, *, dataset: str, num_fewshot: int, seed: int) -> str:
    """The prompt configuration of one task's run: declaration, data, shots and seed (not the limit)."""
    return fingerprint(CACHE_VERSION, task.model_dump(mode="json"), dataset, num_fewshot, seed)


def requests_hash(item: SampleRequests) -> str:
    """Hash of one sample's exact backend requests; an entry is only reused when it matches."""
    return fingerprint([dataclasses.asdict(r) for r in item.requests])


def encode_result(result: ModelResult) -> dict[str, Any]:
    if isinstance(result, LoglikelihoodResult):
        return {"logprob": result.logprob, "is_greedy": result.is_greedy, "num_tokens": result.num_tokens}
    return {"text": result.text, "finish_reason": result.finish_reason}


def decode_result(data: Mapping[str, Any]) -> ModelResult:
    if "logprob" in data:
        return LoglikelihoodResult(float(data["logprob"]), bool(data["is_greedy"]), int(data["num_tokens"]))
    return GenerationResult(str(data["text"]), str(data["finish_reason"]))


class ResultCache:
    """Per-sample model results of one (model, task, prompt config), read once and appended per run."""

    def __init__(self, storage: Storage, root_uri: str, *, model: str, task: str, config: str) -> None:
        self._storage = storage
        self.prefix = join(root_uri, "evaluations", "cache", fingerprint(model), task, config)
        self._entries: dict[str, tuple[str, list[ModelResult]]] = {}
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            listing = self._storage.list(self.prefix)
        except NotFound:
            return
        for info in listing:
            if not info.uri.endswith(".jsonl"):
                continue
            for line in self._storage.read_text(info.uri).splitlines():
                try:
                    entry = json.loads(line)
                    self._entries[entry["id"]] = (entry["req"], [decode_result(r) for r in entry["results"]])
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue  # a torn or foreign line only costs a recomputation

    def lookup(self, item: SampleRequests) -> list[ModelResult] | None:
        """The cached results of ``item`` if its requests are exactly the ones cached, else None."""
        self._load()
        entry = self._entries.get(item.sample.id)
        if entry is None or entry[0] != requests_hash(item):
            return None
        return entry[1]

    def store(self, computed: Iterable[tuple[SampleRequests, Sequence[ModelResult | None]]]) -> int:
        """Append the fully successful samples of ``computed`` as one new file; returns how many."""
        lines = []
        for item, results in computed:
            if any(r is None for r in results):
                continue
            done = [r for r in results if r is not None]
            self._entries[item.sample.id] = (requests_hash(item), done)
            encoded = [encode_result(r) for r in done]
            lines.append(json.dumps({"id": item.sample.id, "req": requests_hash(item), "results": encoded}))
        if lines:
            uri = join(self.prefix, f"{uuid.uuid4().hex}.jsonl")
            self._storage.write_text(uri, "\n".join(lines) + "\n")
        return len(lines)
