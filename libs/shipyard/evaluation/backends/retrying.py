"""Concurrent requests to a remote model with per-request retries: shared by the HTTP and gRPC backends.

``RetryingRequests.map_requests`` runs one call per request ``concurrency`` at a time; a call that raises
``Retryable`` is retried with exponential backoff (``RetryPolicy``) within its deadline. A request that
still fails is recorded and the others go on; the call then raises ``RequestsFailed`` carrying every
result it did get. Errors that are wrong for every request (auth, unknown model) stop the whole call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from shipyard.errors import FailedPrecondition, NotFound, PermissionDenied, ShipyardError, Unauthenticated
from shipyard.evaluation.backends.failures import RequestsFailed

__all__ = ["DEFAULT_RETRY", "RetryPolicy", "Retryable", "RetryingRequests"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently one request is retried.

    ``attempts`` counts the first try; the wait before retry ``n`` (1-based) is
    ``initial_backoff_s * multiplier ** (n - 1)``, capped at ``max_backoff_s``, and no retry starts
    after the request's ``deadline_s`` (measured from its first try).
    """

    attempts: int = 4
    initial_backoff_s: float = 0.5
    multiplier: float = 2.0
    max_backoff_s: float = 8.0
    deadline_s: float = 300.0

    def backoff(self, retry: int) -> float:
        return min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (retry - 1))


DEFAULT_RETRY = RetryPolicy()  # frozen, so one shared default is safe


class Retryable(Exception):
    """One attempt failed in a way another attempt may not: carries the typed error to give up with."""

    def __init__(self, error: ShipyardError) -> None:
        super().__init__(str(error))
        self.error = error


class RetryingRequests:
    """Mixin: needs ``concurrency``, ``retry`` (a ``RetryPolicy``), ``_clock`` and ``_sleep``."""

    concurrency: int
    retry: RetryPolicy
    _clock: Callable[[], float]
    _sleep: Callable[[float], None]

    def map_requests(self, one: Callable[[Any], T], requests: Sequence[Any]) -> list[T]:
        def guarded(request: Any) -> T | ShipyardError:
            try:
                return self.with_retries(one, request)
            except (Unauthenticated, PermissionDenied, NotFound, FailedPrecondition):
                raise  # wrong for every request: stop the whole call
            except ShipyardError as error:
                return error

        if len(requests) <= 1 or self.concurrency == 1:
            outcomes = [guarded(r) for r in requests]
        else:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
                outcomes = list(pool.map(guarded, requests))
        errors = {i: o for i, o in enumerate(outcomes) if isinstance(o, ShipyardError)}
        results = [None if isinstance(o, ShipyardError) else o for o in outcomes]
        if errors:
            raise RequestsFailed(results, errors)
        return results  # type: ignore[return-value]  # no None left when nothing failed

    def with_retries(self, one: Callable[[Any], T], request: Any) -> T:
        started = self._clock()
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return one(request)
            except Retryable as failure:
                wait = self.retry.backoff(attempt)
                out_of_time = self._clock() + wait - started > self.retry.deadline_s
                if attempt == self.retry.attempts or out_of_time:
                    raise failure.error from failure
                self._sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")
