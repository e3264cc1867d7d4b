"""The caller's side of one request: an iterator of ``RequestOutput`` deltas, async or blocking.

The engine thread pushes outputs into the stream's queue through ``put`` (for the async stream via
``loop.call_soon_threadsafe``, the only safe way into an event loop from another thread). Leaving a
stream early — ``aclose()``/``close()``, task cancellation, or a passed deadline — aborts the request,
which frees its KV blocks. Each stream owns the request's OpenTelemetry span and ends it.
"""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import Span, Status, StatusCode

from shipyard.engine.outputs import RequestOutput
from shipyard.errors import DeadlineExceeded, ShipyardError

__all__ = ["AsyncRequestStream", "SyncRequestStream"]

Item = RequestOutput | ShipyardError
# Put into a blocking stream's queue by ``close()``: wakes a reader that would otherwise wait forever for
# an engine that may already have stopped (a cancelled gRPC call closes the stream from another thread).
_CLOSED = object()


class _StreamState:
    def __init__(
        self, request_id: str, deadline: float | None, span: Span, abort: Callable[[str], None]
    ) -> None:
        self.request_id = request_id
        self.deadline = deadline
        self._span = span
        self._abort = abort
        self.done = False

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def deadline_error(self) -> DeadlineExceeded:
        self.close(aborted=True, error=None)
        self._span.set_attribute("shipyard.inference.finish_reason", "abort")
        err = DeadlineExceeded(f"request {self.request_id!r} did not finish before its deadline")
        self._span.set_status(Status(StatusCode.ERROR, err.message))
        return err

    def accept(self, item: Item) -> RequestOutput:
        """The output to hand to the caller; raises the request's error instead where it failed."""
        error = item if isinstance(item, ShipyardError) else item.error
        if error is not None:
            self.close(aborted=False, error=error)
            raise error
        assert isinstance(item, RequestOutput)
        if item.finished:
            self._span.set_attributes(
                {
                    "shipyard.inference.finish_reason": item.finish_reason or "",
                    "shipyard.inference.completion_tokens": item.completion_tokens,
                    "shipyard.inference.cached_tokens": item.cached_tokens,
                }
            )
            self.close(aborted=False, error=None)
        return item

    def close(self, *, aborted: bool, error: BaseException | None) -> None:
        if self.done:
            return
        self.done = True
        if aborted:
            self._abort(self.request_id)
            self._span.set_attribute("shipyard.inference.finish_reason", "abort")
        if error is not None:
            self._span.record_exception(error)
            self._span.set_status(Status(StatusCode.ERROR, str(error)))
        self._span.end()


class AsyncRequestStream:
    """``async for out in stream``; ``await stream.aclose()`` (or cancelling the task) aborts it."""

    def __init__(
        self, request_id: str, deadline: float | None, span: Span, abort: Callable[[str], None]
    ) -> None:
        self._state = _StreamState(request_id, deadline, span, abort)
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Item] = asyncio.Queue()

    @property
    def request_id(self) -> str:
        return self._state.request_id

    def put(self, item: Item) -> None:
        """Called from the engine thread."""
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the caller's event loop is gone: nobody will read this request
            self._state.close(aborted=True, error=None)

    def __aiter__(self) -> AsyncRequestStream:
        return self

    async def __anext__(self) -> RequestOutput:
        if self._state.done:
            raise StopAsyncIteration
        try:
            item = await asyncio.wait_for(self._queue.get(), self._state.remaining())
        except TimeoutError:
            raise self._state.deadline_error() from None
        except BaseException:  # cancelled: the client went away
            self._state.close(aborted=True, error=None)
            raise
        return self._state.accept(item)

    async def aclose(self) -> None:
        self._state.close(aborted=True, error=None)


class SyncRequestStream:
    """A blocking iterator for thread-pool servicers; ``close()`` aborts the request."""

    def __init__(
        self, request_id: str, deadline: float | None, span: Span, abort: Callable[[str], None]
    ) -> None:
        self._state = _StreamState(request_id, deadline, span, abort)
        self._queue: queue.SimpleQueue[Item | object] = queue.SimpleQueue()

    @property
    def request_id(self) -> str:
        return self._state.request_id

    def put(self, item: Item) -> None:
        self._queue.put(item)

    def __iter__(self) -> SyncRequestStream:
        return self

    def __next__(self) -> RequestOutput:
        if self._state.done:
            raise StopIteration
        try:
            item = self._queue.get(timeout=self._state.remaining())
        except queue.Empty:
            raise self._state.deadline_error() from None
        except BaseException:
            self._state.close(aborted=True, error=None)
            raise
        if item is _CLOSED:
            raise StopIteration
        assert isinstance(item, RequestOutput | ShipyardError)
        return self._state.accept(item)

    def close(self) -> None:
        if not self._state.done:
            self._state.close(aborted=True, error=None)
            self._queue.put(_CLOSED)

    def __enter__(self) -> SyncRequestStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
