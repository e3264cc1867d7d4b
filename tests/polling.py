"""Waiting for something another thread or process does: poll a probe until a deadline, never sleep blind."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 15.0, interval: float = 0.01) -> Any:
    """Poll ``probe`` until it returns something truthy (returned), or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)  # a poll interval, not a wait for an outcome: the deadline decides
    pytest.fail(f"timed out waiting for {what}; last saw {last!r}")
