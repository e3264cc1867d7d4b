"""Run an ingest job to completion: plan stages, fan shard tasks out to a backend, resume, publish.

``run_ingest`` is the one entry point used by the CLI (embedded mode), the ingest gRPC service and the
benchmarks. It is resumable (finished tasks are skipped on rerun), cancellable (a cancel marker that
workers poll; partial output is removed) and reports progress through a callback. The dataset becomes
visible only when ``manifest.json`` is written, last.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipyard.config import StorageConfig
from shipyard.data.executor.backends import make_backend
from shipyard.data.executor.manifest_builder import build_manifest
from shipyard.data.executor.plan import WorkLayout, fingerprint, plan_stages
from shipyard.data.executor.tasks import ReduceTask, ShardTask, TaskResult, run_reduce_task, run_shard_task
from shipyard.data.manifest import DatasetManifest, read_manifest, write_manifest
from shipyard.data.spec import IngestJob, build_steps, is_global
from shipyard.data.step import StepStats
from shipyard.data.steps.readers import make_reader
from shipyard.errors import Cancelled, NotFound
from shipyard.storage.routing import RoutingStorage
from shipyard.storage.uri import join, normalize


@dataclass(frozen=True)
class ProgressUpdate:
    """Where a run is: ``completed``/``total`` tasks, documents read so far, seconds elapsed."""

    stage: str
    completed: int
    total: int
    documents_read: int
    elapsed: float

    @property
    def fraction(self) -> float:
        return self.completed / self.total if self.total else 0.0


@dataclass
class IngestResult:
    manifest_uri: str
    manifest: DatasetManifest
    steps: list[StepStats] = field(default_factory=list)
    documents_read: int = 0
    documents_written: int = 0
    tokens_written: int = 0
    quarantined: int = 0
    quarantine_uri: str = ""
    resumed_tasks: int = 0


def run_ingest(
    job: IngestJob,
    *,
    storage_config: StorageConfig | None = None,
    workers: int = 1,
    on_progress: Callable[[ProgressUpdate], None] | None = None,
    cancel: threading.Event | None = None,
) -> IngestResult:
    """Run ``job`` (already validated) and return what it produced. Raises ``Cancelled`` if cancelled."""
    spec = job.spec
    spec_dict: dict[str, Any] = spec.model_dump(mode="json")
    steps = build_steps(spec)
    stages = plan_stages([is_global(s) for s in steps])
    storage = RoutingStorage(storage_config)
    output_uri = normalize(spec.output.uri, field="spec.output.uri")
    layout = WorkLayout(output_uri, fingerprint(spec_dict))

    done = _already_complete(storage, layout, spec_dict)
    if done is not None:
        return done

    shards = _shards(storage, layout, job)
    n = len(shards)
    total = n * len(stages) + sum(1 for st in stages if st.collect_global is not None)
    started = time.monotonic()
    completed = docs_read = 0
    results: list[TaskResult] = []
    outputs: list[tuple[str, str, dict[str, Any]]] = []
    workers = spec.execution.workers or workers

    def report(stage_name: str) -> None:
        if on_progress is not None:
            on_progress(ProgressUpdate(stage_name, completed, total, docs_read, time.monotonic() - started))

    stop_watch = _watch_cancel(cancel, storage, layout)
    try:
        with make_backend(spec.execution.executor, workers, spec.execution.ray_address) as backend:
            for stage in stages:
                name = f"stage {stage.index + 1}/{len(stages)}"
                report(name)
                tasks = [
                    ShardTask(spec_dict, storage_config or StorageConfig(), layout, stage, i, shards[i], n)
                    for i in range(n)
                ]
                for res in backend.map_unordered(run_shard_task, tasks):
                    results.append(res)
                    outputs.extend(res.outputs)
                    completed += 1
                    if stage.index == 0:
                        docs_read += res.docs_in
                    report(name)
                if stage.collect_global is not None:
                    _raise_if_cancelled(cancel)
                    step_name = steps[stage.collect_global].name
                    report(f"{name}: {step_name} (global)")
                    task = ReduceTask(
                        spec_dict, storage_config or StorageConfig(), layout, stage.collect_global, n
                    )
                    outputs.extend(backend.run(run_reduce_task, task))
                    completed += 1
                    report(name)
        _raise_if_cancelled(cancel)
    except Cancelled:
        _remove_partial_output(storage, layout)
        raise
    finally:
        stop_watch()

    stats = _merge_stats(steps, results)
    last = stages[-1].index
    written = sum(r.docs_out for r in results if r.stage == last)
    quarantined = sum(r.quarantined for r in results)
    manifest = build_manifest(
        job=job,
        output_uri=output_uri,
        spec_fingerprint=layout.fingerprint,
        outputs=outputs,
        stats=stats,
        documents=written,
        documents_read=docs_read,
        quarantined=quarantined,
        quarantine_uri=join(output_uri, "quarantine") if quarantined else "",
    )
    write_manifest(storage, manifest)
    storage.delete_prefix(layout.root)  # intermediates are large; the manifest is the record now
    report("done")
    result = _result(manifest, layout, stats, docs_read, written, quarantined)
    result.resumed_tasks = sum(1 for r in results if r.resumed)
    return result


def _result(
    manifest: DatasetManifest,
    layout: WorkLayout,
    stats: list[StepStats],
    docs_read: int,
    written: int,
    quarantined: int,
) -> IngestResult:
    return IngestResult(
        manifest_uri=layout.manifest_uri,
        manifest=manifest,
        steps=stats,
        documents_read=docs_read,
        documents_written=written,
        tokens_written=manifest.num_tokens,
        quarantined=quarantined,
        quarantine_uri=manifest.quarantined.uri if manifest.quarantined else "",
    )


def _already_complete(
    storage: RoutingStorage, layout: WorkLayout, spec: dict[str, Any]
) -> IngestResult | None:
    """A rerun of a finished job returns its result instead of redoing it (a changed spec does not)."""
    if not storage.exists(layout.manifest_uri):
        return None
    manifest = read_manifest(storage, layout.manifest_uri)
    if manifest.lineage.get("specFingerprint") != layout.fingerprint:
        return None
    stats = [StepStats.from_dict(s) for s in manifest.stats]
    return _result(
        manifest,
        layout,
        stats,
        int(manifest.lineage.get("documentsRead", 0)),
        manifest.num_documents,
        manifest.quarantined.count if manifest.quarantined else 0,
    )


def _shards(storage: RoutingStorage, layout: WorkLayout, job: IngestJob) -> list[str]:
    """The input's shards, fixed at the first run so a resumed run sees the same list."""
    if storage.exists(layout.shards_uri):
        return list(json.loads(storage.read_text(layout.shards_uri)))
    shards = make_reader(job.spec.input).shards(storage)
    if not shards:
        raise NotFound(f"spec.input.uri: no input files match {job.spec.input.uri!r}")
    storage.write_text(layout.shards_uri, json.dumps(shards))
    return shards


def _merge_stats(steps: list[Any], results: list[TaskResult]) -> list[StepStats]:
    merged = [StepStats(s.name) for s in steps]
    for res in sorted(results, key=lambda r: (r.stage, r.shard)):
        for idx, d in res.step_stats.items():
            merged[idx].merge(StepStats.from_dict(d))
    return merged


def _watch_cancel(
    cancel: threading.Event | None, storage: RoutingStorage, layout: WorkLayout
) -> Callable[[], None]:
    """Turn an in-process cancel event into the marker that worker processes poll."""
    if cancel is None:
        return lambda: None
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            if cancel.wait(0.2):
                storage.write_text(layout.cancel_marker, "cancelled")
                return

    thread = threading.Thread(target=watch, name="ingest-cancel-watch", daemon=True)
    thread.start()

    def stop() -> None:
        finished.set()
        thread.join()

    return stop


def _raise_if_cancelled(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("ingest job was cancelled")


def _remove_partial_output(storage: RoutingStorage, layout: WorkLayout) -> None:
    for prefix in layout.published_prefixes():
        storage.delete_prefix(prefix)
