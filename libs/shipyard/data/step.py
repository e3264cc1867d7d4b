"""The ``PipelineStep`` contract: a generator over documents with its own counters.

Two kinds of step:

* ``PipelineStep`` — works document by document inside one shard (readers' successors, filters,
  transforms, writers). ``run(docs, ctx)`` yields the documents that survive.
* ``GlobalStep`` — needs to see every shard before deciding (deduplication, tokenizer training). The
  executor runs it in three phases: ``collect`` on every shard (in parallel; writes per-shard artifacts
  under ``ctx.scratch_uri``), ``reduce`` once (reads all artifacts, writes its decision), then ``apply``
  on every shard (in parallel; filters/annotates using the decision).

Each step is declared in a spec by ``type`` (its ``name``) and validated ``Params`` (a pydantic model);
steps are created through ``shipyard.data.registry``. Optional heavy dependencies are imported in
``__init__`` so a missing package fails before any work, with a message naming the extra to install.
"""

from __future__ import annotations

import abc
import collections
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from shipyard.data.document import Document
from shipyard.storage.base import Storage


class StepParams(BaseModel):
    """Base of every step's parameters: unknown keys are errors; specs may spell names in camelCase
    (Kubernetes style, ``minDocWords``) or snake_case (``min_doc_words``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, alias_generator=to_camel)


@dataclass
class StepStats:
    """Counters of one step: documents in and out, and documents dropped grouped by reason."""

    name: str
    docs_in: int = 0
    docs_out: int = 0
    dropped: collections.Counter[str] = field(default_factory=collections.Counter)
    # Free-form counters a step may add (characters removed, PII found, ...).
    extra: collections.Counter[str] = field(default_factory=collections.Counter)

    def drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    def merge(self, other: StepStats) -> None:
        self.docs_in += other.docs_in
        self.docs_out += other.docs_out
        self.dropped.update(other.dropped)
        self.extra.update(other.extra)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "docs_in": self.docs_in,
            "docs_out": self.docs_out,
            "dropped": dict(self.dropped),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StepStats:
        return cls(
            name=d["name"],
            docs_in=d["docs_in"],
            docs_out=d["docs_out"],
            dropped=collections.Counter(d.get("dropped", {})),
            extra=collections.Counter(d.get("extra", {})),
        )


@dataclass
class ShardContext:
    """What a step may use while processing one shard.

    ``scratch_uri`` is a directory private to this (step, shard) for intermediate artifacts;
    ``global_uri`` is shared by all shards of the step (where ``reduce`` writes its decision);
    ``output_uri`` is the job's output root. ``quarantine`` records a malformed input record with the
    reason (it is written to the job's quarantine file, never dropped silently). ``add_output``
    declares a file this shard produced for the dataset manifest (kind, uri, metadata).
    ``check_cancelled`` raises ``shipyard.errors.Cancelled`` when the job was cancelled.
    """

    shard_index: int
    num_shards: int
    storage: Storage
    scratch_uri: str
    global_uri: str
    output_uri: str
    quarantine: Callable[[str, str, str], None]  # (source, raw record, reason)
    add_output: Callable[[str, str, dict[str, Any]], None]  # (kind, uri, metadata)
    check_cancelled: Callable[[], None] = lambda: None


@dataclass
class GlobalContext:
    """What ``GlobalStep.reduce`` sees: every shard's scratch directory and the shared directory."""

    num_shards: int
    storage: Storage
    shard_scratch_uris: list[str]
    global_uri: str
    output_uri: str
    add_output: Callable[[str, str, dict[str, Any]], None]
    check_cancelled: Callable[[], None] = lambda: None


class PipelineStep(abc.ABC):
    """A per-shard step. Subclasses set ``name`` and ``Params`` and implement ``run``."""

    name: ClassVar[str]
    Params: ClassVar[type[StepParams]] = StepParams

    def __init__(self, params: StepParams | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.stats = StepStats(self.name)

    @abc.abstractmethod
    def run(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        """Yield the documents that continue down the pipeline, updating ``self.stats``."""


class Filter(PipelineStep):
    """A step that keeps or drops each document; ``reject`` returns a drop reason or ``None``."""

    @abc.abstractmethod
    def reject(self, doc: Document) -> str | None:
        """Return why ``doc`` is dropped (a short snake_case reason), or ``None`` to keep it."""

    def run(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        for doc in docs:
            self.stats.docs_in += 1
            reason = self.reject(doc)
            if reason is None:
                self.stats.docs_out += 1
                yield doc
            else:
                self.stats.drop(reason)


class Transform(PipelineStep):
    """A step that rewrites each document; returning ``None`` drops it with reason ``empty``."""

    @abc.abstractmethod
    def transform(self, doc: Document) -> Document | None:
        """Return the rewritten document (may be the same object), or ``None`` if nothing is left."""

    def run(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        for doc in docs:
            self.stats.docs_in += 1
            out = self.transform(doc)
            if out is None or not out.text.strip():
                self.stats.drop("empty")
                continue
            self.stats.docs_out += 1
            yield out


class GlobalStep(PipelineStep):
    """A step that must see all shards: ``collect`` → ``reduce`` → ``apply`` (see module docstring)."""

    @abc.abstractmethod
    def collect(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        """Pass every document through unchanged, recording what ``reduce`` needs under scratch."""

    @abc.abstractmethod
    def reduce(self, ctx: GlobalContext) -> None:
        """Read every shard's artifacts and write the decision under ``ctx.global_uri``."""

    @abc.abstractmethod
    def apply(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        """Yield the surviving documents of one shard according to the decision; count in stats."""

    def run(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        raise TypeError(f"{self.name} is a global step; the executor calls collect/reduce/apply")


class Reader(abc.ABC):
    """Turns an input URI into shards and each shard into documents (not a step: it starts the flow).

    Malformed records go to ``ctx.quarantine`` and are counted; they never raise.
    """

    name: ClassVar[str]

    @abc.abstractmethod
    def shards(self, storage: Storage) -> list[str]:
        """Stable, sorted list of shard descriptors (file URIs, optionally with a byte range)."""

    @abc.abstractmethod
    def read(self, shard: str, ctx: ShardContext) -> Iterator[Document]:
        """Yield the documents of one shard."""
