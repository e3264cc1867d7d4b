"""Executing an evaluation's model calls: shards of samples run in-process, on local processes, or on Ray.

A ``Shard`` is a run of consecutive samples of one task, flattened into the backend requests scoring
expects. Executors yield a ``ShardResult`` per shard as shards finish (in any order); the runner puts
results back by sample id, so the merged scores are identical however the work was split.

Each worker process (or Ray actor) opens its backend once from a picklable ``BackendSpec`` and keeps
it for every shard it runs. Backend trouble never escapes a shard: ``RequestsFailed`` keeps its partial
results, any other ``ShipyardError`` marks the whole shard's requests failed (``None``), and the run
continues. Cancellation is checked between shards: shards not yet started are dropped.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from shipyard.errors import Internal, InvalidArgument, ShipyardError
from shipyard.evaluation.backends import RequestsFailed, open_backend
from shipyard.evaluation.prompts import SampleRequests
from shipyard.evaluation.types import LoglikelihoodRequest, ModelBackend, ModelRequest, ModelResult

if TYPE_CHECKING:
    from shipyard.config import StorageConfig

__all__ = [
    "BackendSpec",
    "Executor",
    "InProcessExecutor",
    "ProcessExecutor",
    "RayExecutor",
    "Shard",
    "ShardResult",
    "make_executor",
    "make_shards",
    "run_shard",
    "split_results",
]

ExecutorKind = Literal["local", "ray"]


@dataclass(frozen=True)
class BackendSpec:
    """Everything a worker needs to open the backend itself (picklable: no live model or socket)."""

    model: str
    model_name: str | None = None
    batch_size: int = 8
    device: str = "cpu"
    storage_root: str | None = None
    storage_config: StorageConfig | None = None

    def open(self) -> ModelBackend:
        registry = None
        if self.model.startswith("model:") and self.storage_root is not None:
            from shipyard.models import ModelRegistry
            from shipyard.storage.routing import RoutingStorage

            registry = ModelRegistry(RoutingStorage(self.storage_config), self.storage_root)
        return open_backend(
            self.model,
            model_name=self.model_name,
            batch_size=self.batch_size,
            device=self.device,
            registry=registry,
            storage_config=self.storage_config,
        )


@dataclass(frozen=True)
class Shard:
    """Consecutive samples of one task: their ids and their requests in ``prompts.flatten`` order."""

    task: str
    index: int
    sample_ids: tuple[str, ...]
    requests: tuple[ModelRequest, ...]


@dataclass(frozen=True)
class ShardResult:
    """One result per request (``None`` where it failed for good) and the first error's message."""

    shard: Shard
    results: list[ModelResult | None]
    error: str = ""
    seconds: float = 0.0


def make_shards(task: str, pending: Sequence[SampleRequests], size: int) -> list[Shard]:
    """``pending`` samples of ``task`` in runs of ``size`` samples, in order."""
    return [
        Shard(task, i // size, tuple(p.sample.id for p in chunk), tuple(r for p in chunk for r in p.requests))
        for i in range(0, len(pending), size)
        if (chunk := pending[i : i + size])
    ]


def split_results(
    done: ShardResult, planned: Mapping[str, SampleRequests]
) -> list[tuple[SampleRequests, list[ModelResult | None]]]:
    """A shard's flat results cut back into each sample's own results (by sample id, not position)."""
    out, offset = [], 0
    for sample_id in done.shard.sample_ids:
        item = planned[sample_id]
        out.append((item, done.results[offset : offset + len(item.requests)]))
        offset += len(item.requests)
    return out


def run_shard(backend: ModelBackend, shard: Shard) -> ShardResult:
    """Run one shard's requests in one backend call; endpoint failures become ``None`` results."""
    import time

    start = time.perf_counter()
    requests = list(shard.requests)
    try:
        if requests and isinstance(requests[0], LoglikelihoodRequest):
            results: list[Any] = backend.loglikelihood(requests)  # type: ignore[arg-type]
        else:
            results = backend.generate(requests)  # type: ignore[arg-type]
        return ShardResult(shard, list(results), seconds=time.perf_counter() - start)
    except RequestsFailed as exc:
        return ShardResult(shard, exc.results, str(exc), time.perf_counter() - start)
    except ShipyardError as exc:
        # Whole-call failures (endpoint down after retries): the shard's samples are failed, not the run.
        return ShardResult(shard, [None] * len(requests), str(exc), time.perf_counter() - start)


class Executor(Protocol):
    """Runs shards, yielding each result as it completes; stops starting shards once ``cancel`` is set."""

    def run(self, shards: Sequence[Shard], cancel: threading.Event) -> Iterator[ShardResult]: ...

    def close(self) -> None: ...


class InProcessExecutor:
    """Shards one after the other on a backend object in this process (also the test hook for backends)."""

    def __init__(self, backend: ModelBackend) -> None:
        self.backend = backend

    def run(self, shards: Sequence[Shard], cancel: threading.Event) -> Iterator[ShardResult]:
        for shard in shards:
            if cancel.is_set():
                return
            yield run_shard(self.backend, shard)

    def close(self) -> None:
        return None


# Per worker process: the backend opened once by the pool initializer, reused for every shard.
_WORKER_BACKEND: ModelBackend | None = None


def _init_worker(spec: BackendSpec) -> None:
    global _WORKER_BACKEND
    _WORKER_BACKEND = spec.open()


def _worker_run(shard: Shard) -> ShardResult:
    assert _WORKER_BACKEND is not None, "worker used before its initializer ran"
    return run_shard(_WORKER_BACKEND, shard)


class ProcessExecutor:
    """``workers`` spawned processes (spawn: torch and threads do not survive fork), each loading the model.

    At most ``workers`` shards are in flight, so a cancel leaves few shards to finish.
    """

    def __init__(self, spec: BackendSpec, workers: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pool = cf.ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(spec,)
        )
        self._workers = workers

    def run(self, shards: Sequence[Shard], cancel: threading.Event) -> Iterator[ShardResult]:
        pending = list(reversed(shards))
        running: set[cf.Future[ShardResult]] = set()
        while pending or running:
            while pending and len(running) < self._workers and not cancel.is_set():
                running.add(self._pool.submit(_worker_run, pending.pop()))
            if not running:
                return
            done, running = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for future in done:
                yield _unwrap(future.result)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _unwrap(get: Any) -> ShardResult:
    try:
        return get()
    except cf.process.BrokenProcessPool as exc:
        raise Internal(f"an evaluation worker died (out of memory?): {exc}") from exc


class _RayWorker:
    """A Ray actor body: opens the backend once, then runs shards."""

    def __init__(self, spec: BackendSpec) -> None:
        self.backend = spec.open()

    def run(self, shard: Shard) -> ShardResult:
        return run_shard(self.backend, shard)


class RayExecutor:
    """``workers`` Ray actors, one model each; uses an initialized Ray or starts a local one."""

    def __init__(self, spec: BackendSpec, workers: int, *, address: str | None = None) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        actor = ray.remote(num_cpus=1)(_RayWorker)
        self._ray = ray
        self._actors = [actor.remote(spec) for _ in range(workers)]  # type: ignore[attr-defined]

    def run(self, shards: Sequence[Shard], cancel: threading.Event) -> Iterator[ShardResult]:
        pending = list(reversed(shards))
        idle = list(self._actors)
        running: dict[Any, Any] = {}
        while pending or running:
            while pending and idle and not cancel.is_set():
                actor = idle.pop()
                running[actor.run.remote(pending.pop())] = actor
            if not running:
                return
            done, _ = self._ray.wait(list(running), num_returns=1)
            for ref in done:
                idle.append(running.pop(ref))
                yield self._ray.get(ref)

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)


def make_executor(
    kind: str,
    spec: BackendSpec,
    *,
    workers: int = 1,
    backend: ModelBackend | None = None,
    ray_address: str | None = None,
) -> Executor:
    """In-process for one local worker (or a given backend object), else processes or Ray actors."""
    if workers < 1:
        raise InvalidArgument.field("workers", f"must be >= 1, got {workers}")
    if kind not in ("local", "ray"):
        raise InvalidArgument.field("executor", f"must be 'local' or 'ray', got {kind!r}")
    if backend is not None:
        return InProcessExecutor(backend)
    if kind == "ray":
        return RayExecutor(spec, workers, address=ray_address)
    if workers == 1:
        return InProcessExecutor(spec.open())
    return ProcessExecutor(spec, workers)
