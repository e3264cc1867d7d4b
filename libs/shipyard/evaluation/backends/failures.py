"""The error a backend raises when some requests of a call failed for good but others succeeded.

It is an ``Unavailable`` (the ``types`` convention: endpoint trouble raises), and it carries what the
call did get, so the runner scores the successful samples and counts the failed ones instead of losing
the whole batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shipyard.errors import ShipyardError, Unavailable

__all__ = ["RequestsFailed"]


class RequestsFailed(Unavailable):
    """``results[i]`` is request ``i``'s result, or ``None`` when it failed with ``errors[i]``."""

    def __init__(self, results: Sequence[Any | None], errors: Mapping[int, ShipyardError]) -> None:
        self.results: list[Any | None] = list(results)
        self.errors: dict[int, ShipyardError] = dict(errors)
        first = min(self.errors)
        super().__init__(
            f"{len(self.errors)} of {len(self.results)} requests failed after retries "
            f"(first, request {first}: {self.errors[first]})"
        )
