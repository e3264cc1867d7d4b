"""Run one ``GlobalStep`` over shards sequentially in this process: collect, reduce, apply.

For tests, benchmarks and notebooks that want a dedup step without the job executor
(``shipyard.data.executor`` runs the same three phases with parallel workers). Shards must be
re-iterable (a list, or an object whose ``__iter__`` re-reads its file) because ``apply`` has to see
the same documents, in the same order, as ``collect``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from shipyard.data.dedup.artifacts import join
from shipyard.data.document import Document
from shipyard.data.step import GlobalContext, GlobalStep, ShardContext, StepStats
from shipyard.storage.base import Storage

__all__ = ["run_global_step"]


def _shard_context(storage: Storage, root_uri: str, shard: int, num_shards: int) -> ShardContext:
    def quarantine(source: str, raw: str, reason: str) -> None:
        raise AssertionError(f"dedup steps never quarantine ({source}: {reason})")

    def add_output(kind: str, uri: str, metadata: dict[str, Any]) -> None:
        return None

    return ShardContext(
        shard_index=shard,
        num_shards=num_shards,
        storage=storage,
        scratch_uri=join(root_uri, f"scratch/{shard:05d}"),
        global_uri=join(root_uri, "global"),
        output_uri=join(root_uri, "output"),
        quarantine=quarantine,
        add_output=add_output,
    )


def run_global_step(
    step_factory: type[GlobalStep] | Any,
    shards: Sequence[Iterable[Document]],
    storage: Storage,
    root_uri: str,
    *,
    sink: Callable[[int, Document], None] | None = None,
) -> tuple[list[list[Document]], StepStats]:
    """Collect every shard, reduce, apply every shard; returns surviving documents per shard and the
    merged stats. ``step_factory()`` makes a fresh step per shard and phase, as separate workers would.
    With ``sink``, survivors go to ``sink(shard, doc)`` instead (lists stay empty: bounded memory)."""
    n = len(shards)
    for i, shard in enumerate(shards):
        passed = list(step_factory().collect(shard, _shard_context(storage, root_uri, i, n)))
        if len(passed) != sum(1 for _ in shard):
            raise AssertionError("collect must pass every document through")
    reducer = step_factory()
    reducer.reduce(
        GlobalContext(
            num_shards=n,
            storage=storage,
            shard_scratch_uris=[join(root_uri, f"scratch/{i:05d}") for i in range(n)],
            global_uri=join(root_uri, "global"),
            output_uri=join(root_uri, "output"),
            add_output=lambda kind, uri, metadata: None,
        )
    )
    stats = StepStats(reducer.name)
    out: list[list[Document]] = []
    for i, shard in enumerate(shards):
        step = step_factory()
        survivors = step.apply(shard, _shard_context(storage, root_uri, i, n))
        if sink is None:
            out.append(list(survivors))
        else:
            out.append([])
            for doc in survivors:
                sink(i, doc)
        stats.merge(step.stats)
    return out, stats
