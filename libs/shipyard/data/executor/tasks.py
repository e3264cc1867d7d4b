"""The units of work an executor backend runs: one stage on one shard, and one global reduce.

These functions run in worker processes (local pool or Ray), so they take plain picklable task
objects, rebuild the steps from the spec, and report through a done-marker written atomically at the
end: a task either finished (marker present, outputs visible) or it did not (nothing visible).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shipyard.config import StorageConfig
from shipyard.data.document import Document
from shipyard.data.executor.plan import Stage, WorkLayout
from shipyard.data.spec import IngestSpec, build_steps
from shipyard.data.step import GlobalContext, GlobalStep, PipelineStep, ShardContext
from shipyard.data.steps.readers import make_reader
from shipyard.data.steps.writers import WriteDocuments, read_documents
from shipyard.errors import Cancelled
from shipyard.storage.routing import RoutingStorage

CANCEL_CHECK_EVERY = 1000  # documents between looks at the cancel marker


@dataclass(frozen=True)
class ShardTask:
    spec: dict[str, Any]
    storage: StorageConfig
    layout: WorkLayout
    stage: Stage
    shard_index: int
    shard: str  # the reader's shard descriptor (used by stage 0)
    num_shards: int


@dataclass
class TaskResult:
    """What a finished task reports (and what its done-marker holds)."""

    stage: int
    shard: int
    docs_in: int = 0
    docs_out: int = 0
    # step index -> StepStats.to_dict() of this shard
    step_stats: dict[int, dict[str, Any]] = field(default_factory=dict)
    outputs: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    quarantined: int = 0
    resumed: bool = False  # True when a rerun found this task already done

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TaskResult:
        d = json.loads(text)
        d["step_stats"] = {int(k): v for k, v in d["step_stats"].items()}
        d["outputs"] = [tuple(o) for o in d["outputs"]]
        return cls(**d)


@dataclass(frozen=True)
class ReduceTask:
    spec: dict[str, Any]
    storage: StorageConfig
    layout: WorkLayout
    step_index: int
    num_shards: int


class _Counted:
    """Counts documents flowing past a point of the generator chain."""

    def __init__(self, docs: Iterable[Document], on_item: Any = None) -> None:
        self.docs, self.count, self.on_item = docs, 0, on_item

    def __iter__(self) -> Iterator[Document]:
        for doc in self.docs:
            self.count += 1
            if self.on_item is not None and self.count % CANCEL_CHECK_EVERY == 0:
                self.on_item()
            yield doc


def run_shard_task(task: ShardTask) -> TaskResult:
    """Run one stage over one shard; skip it if its done-marker says it already ran."""
    storage = RoutingStorage(task.storage)
    layout, stage, i = task.layout, task.stage, task.shard_index
    marker = layout.done_marker(stage.index, i)
    if storage.exists(marker):
        done = TaskResult.from_json(storage.read_text(marker))
        done.resumed = True
        return done

    spec = IngestSpec.model_validate(task.spec)
    steps = build_steps(spec)
    quarantine: list[str] = []
    outputs: list[tuple[str, str, dict[str, Any]]] = []

    def check_cancelled() -> None:
        if storage.exists(layout.cancel_marker):
            raise Cancelled("ingest job was cancelled")

    def ctx_for(step_index: int | None) -> ShardContext:
        return ShardContext(
            shard_index=i,
            num_shards=task.num_shards,
            storage=storage,
            scratch_uri=layout.scratch(step_index, i) if step_index is not None else layout.root,
            global_uri=layout.global_dir(step_index) if step_index is not None else layout.root,
            output_uri=layout.output_uri,
            quarantine=lambda src, raw, reason: quarantine.append(
                json.dumps({"source": src, "reason": reason, "record": raw}, ensure_ascii=False)
            ),
            add_output=lambda kind, uri, meta: outputs.append((kind, uri, meta)),
            check_cancelled=check_cancelled,
        )

    if stage.index == 0:
        source: Iterable[Document] = make_reader(spec.input).read(task.shard, ctx_for(None))
    else:
        source = read_documents(storage, layout.intermediate(stage.index - 1, i))
    counted_in = _Counted(source, check_cancelled)
    docs: Iterable[Document] = counted_in
    used: list[tuple[int, PipelineStep]] = []
    if stage.apply_global is not None:
        g = steps[stage.apply_global]
        assert isinstance(g, GlobalStep)
        docs = g.apply(docs, ctx_for(stage.apply_global))
        used.append((stage.apply_global, g))
    for s in stage.map_steps:
        docs = steps[s].run(docs, ctx_for(s))
        used.append((s, steps[s]))
    if stage.collect_global is not None:
        g = steps[stage.collect_global]
        assert isinstance(g, GlobalStep)
        docs = g.collect(docs, ctx_for(stage.collect_global))
        docs_out = _write_intermediate(storage, layout.intermediate(stage.index, i), docs)
    else:
        writer = WriteDocuments(WriteDocuments.Params(format=spec.output.format))
        docs_out = sum(1 for _ in writer.run(docs, ctx_for(None)))

    if quarantine:
        storage.write_text(layout.quarantine(stage.index, i), "\n".join(quarantine) + "\n")
    result = TaskResult(
        stage=stage.index,
        shard=i,
        docs_in=counted_in.count,
        docs_out=docs_out,
        step_stats={idx: step.stats.to_dict() for idx, step in used},
        outputs=outputs,
        quarantined=len(quarantine),
    )
    storage.write_text(marker, result.to_json())
    return result


def _write_intermediate(storage: RoutingStorage, uri: str, docs: Iterable[Document]) -> int:
    n = 0
    with storage.open_write(uri) as f:
        for doc in docs:
            f.write(json.dumps(doc.to_dict(), ensure_ascii=False).encode("utf-8") + b"\n")
            n += 1
    return n


def run_reduce_task(task: ReduceTask) -> list[tuple[str, str, dict[str, Any]]]:
    """Run a global step's reduce once; skip it if it already finished. Returns declared outputs."""
    storage = RoutingStorage(task.storage)
    marker = task.layout.reduce_marker(task.step_index)
    if storage.exists(marker):
        return [tuple(o) for o in json.loads(storage.read_text(marker))["outputs"]]  # type: ignore[misc]
    spec = IngestSpec.model_validate(task.spec)
    step = build_steps(spec)[task.step_index]
    assert isinstance(step, GlobalStep)
    outputs: list[tuple[str, str, dict[str, Any]]] = []
    layout = task.layout
    step.reduce(
        GlobalContext(
            num_shards=task.num_shards,
            storage=storage,
            shard_scratch_uris=[layout.scratch(task.step_index, i) for i in range(task.num_shards)],
            global_uri=layout.global_dir(task.step_index),
            output_uri=layout.output_uri,
            add_output=lambda kind, uri, meta: outputs.append((kind, uri, meta)),
            check_cancelled=lambda: None,
        )
    )
    storage.write_text(marker, json.dumps({"outputs": outputs}))
    return outputs
