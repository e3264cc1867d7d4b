"""A pids cgroup per sandboxed interpreter: a hard cap on its process count, and a way to kill them all.

``RLIMIT_NPROC`` does not contain a fork bomb run by root (the kernel exempts uid 0 and
``CAP_SYS_RESOURCE``), and a killed process group misses children that called ``setsid``. A pids
cgroup does both jobs: ``pids.max`` makes ``fork`` fail with ``EAGAIN`` past the cap, and
``cgroup.procs`` lists every member to kill. Works with the v1 ``pids`` hierarchy or a v2 unified one
where the ``pids`` controller is enabled; ``create`` returns ``None`` where neither is writable, and
the caller falls back to ``RLIMIT_NPROC`` (effective for non-root users only).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
import uuid
from pathlib import Path

__all__ = ["PidsCgroup"]

_log = logging.getLogger(__name__)
_CANDIDATES = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))


class PidsCgroup:
    """One cgroup directory with ``pids.max`` set; ``procs_file`` is what a process writes to join."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def procs_file(self) -> str:
        return str(self.path / "cgroup.procs")

    @classmethod
    def create(cls, max_pids: int, prefix: str = "shipyard-sandbox") -> PidsCgroup | None:
        for root in _CANDIDATES:
            if not (root / "cgroup.procs").exists():
                continue
            path = root / f"{prefix}-{uuid.uuid4().hex[:12]}"
            try:
                path.mkdir()
            except OSError:
                continue
            try:
                (path / "pids.max").write_text(str(max_pids))
                return cls(path)
            except OSError:
                # A v2 hierarchy without the pids controller enabled has no pids.max.
                path.rmdir()
        return None

    def pids(self) -> list[int]:
        try:
            return [int(line) for line in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def kill_all(self, deadline_s: float = 5.0) -> None:
        """SIGKILL every member until none is left (members may fork while we kill)."""
        end = time.monotonic() + deadline_s
        while (pids := self.pids()) and time.monotonic() < end:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):  # already gone
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)  # let the kernel reap them before we list again

    def remove(self) -> None:
        """Kill what is left and delete the directory (a cgroup with members cannot be removed)."""
        self.kill_all()
        end = time.monotonic() + 5.0
        while time.monotonic() < end:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)  # the last members are still being torn down
        _log.warning("could not remove cgroup %s", self.path)
