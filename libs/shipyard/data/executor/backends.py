"""Where tasks run: in-process, a local process pool, or Ray. Steps know nothing of this.

Every backend offers the same two calls — ``map_unordered`` (many shard tasks, results as they finish)
and ``run`` (one task, e.g. a global reduce) — so the runner is identical locally and on a cluster.
"""

from __future__ import annotations

import abc
import concurrent.futures as cf
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from shipyard.errors import InvalidArgument

T = TypeVar("T")
R = TypeVar("R")


class Backend(abc.ABC):
    @abc.abstractmethod
    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]:
        """Run ``fn`` on every task; yield results in completion order. The first error propagates."""

    @abc.abstractmethod
    def run(self, fn: Callable[[T], R], task: T) -> R:
        """Run one task and return its result."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlineBackend(Backend):
    """Runs tasks in the calling process, one after another (workers=1, and debugging)."""

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]:
        for task in tasks:
            yield fn(task)

    def run(self, fn: Callable[[T], R], task: T) -> R:
        return fn(task)


class ProcessBackend(Backend):
    """A pool of local worker processes. ``spawn`` (not fork): callers such as the gRPC server have
    threads, and forking a threaded process can deadlock the child."""

    def __init__(self, workers: int) -> None:
        self._pool = cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        )

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]:
        futures = [self._pool.submit(fn, t) for t in tasks]
        try:
            for fut in cf.as_completed(futures):
                yield fut.result()
        finally:
            for fut in futures:
                fut.cancel()

    def run(self, fn: Callable[[T], R], task: T) -> R:
        return self._pool.submit(fn, task).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayBackend(Backend):
    """Tasks on Ray: a local Ray instance in embedded mode, or the cluster at ``address``."""

    def __init__(self, workers: int, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise InvalidArgument.field(
                "spec.execution.executor", "ray is not installed; pip install 'shipyard[ray]'"
            ) from None
        self._ray = ray
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = workers
            ray.init(**kwargs)
            self._owns = True
        else:
            self._owns = False

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]:
        remote = self._ray.remote(num_cpus=1, max_retries=2)(fn)
        pending = [remote.remote(t) for t in tasks]
        try:
            while pending:
                done, pending = self._ray.wait(pending, num_returns=1)
                yield self._ray.get(done[0])
        finally:
            for ref in pending:
                self._ray.cancel(ref)

    def run(self, fn: Callable[[T], R], task: T) -> R:
        return self._ray.get(self._ray.remote(num_cpus=1)(fn).remote(task))

    def close(self) -> None:
        if self._owns:
            self._ray.shutdown()


def make_backend(executor: str, workers: int, ray_address: str | None = None) -> Backend:
    if executor == "ray":
        return RayBackend(workers, ray_address)
    if workers <= 1:
        return InlineBackend()
    return ProcessBackend(workers)
