"""The Python interpreter tool: one long-lived, sandboxed interpreter process per agent session.

Each session gets its own process (``python_repl.REPL_SOURCE``) started through the evaluation
sandbox's bootstrap (``shipyard.evaluation.sandbox.boot_command``), so variables persist across calls.
What is enforced, and by what:

- **kernel, always:** CPU seconds per call (soft ``RLIMIT_CPU``: the cell fails, state survives) and per
  session (hard ``RLIMIT_CPU``), memory (``RLIMIT_AS``: ``MemoryError``), file size (``RLIMIT_FSIZE``);
- **kernel, where namespaces work** (``isolation() == "namespaces"``, e.g. as root): no network (a new
  network namespace with loopback down), every mount read-only except the session's scratch
  directory, all capabilities dropped; elsewhere the interpreter only starts in its scratch directory
  and ``isolation`` says so;
- **kernel, where a pids cgroup is writable:** at most ``max_pids`` processes (a fork bomb fails with
  ``EAGAIN``) and every member is killed on timeout; elsewhere ``RLIMIT_NPROC`` (not enforced for root);
- **this process:** the wall-clock timeout (the interpreter and all its children are killed and reaped;
  the next call starts a fresh interpreter and says the state was lost) and the output size.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from shipyard.agents.tools.base import ToolContext, ToolResult, ToolSpec
from shipyard.agents.tools.pids_cgroup import PidsCgroup
from shipyard.agents.tools.python_repl import REPL_SOURCE
from shipyard.errors import InvalidArgument
from shipyard.evaluation.sandbox import SETUP_FAILED, boot_command, isolation, sandbox_env

__all__ = ["PythonSandbox", "SandboxLimits"]

_REPLY_CAP = 4 << 20  # a reply line longer than this means the interpreter is misbehaving


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one session's interpreter."""

    timeout_s: float = 10.0
    """Wall-clock seconds per call; past it the interpreter is killed (state lost)."""
    cpu_s: int = 5
    """CPU seconds per call; past it the call fails and the state survives."""
    session_cpu_s: int = 600
    """CPU seconds over the interpreter's life (a hard limit)."""
    memory_mb: int = 512
    """Address space of the interpreter (and of each process it starts)."""
    output_chars: int = 16_384
    """Characters of stdout and of stderr kept per call; the rest is cut with a notice."""
    max_pids: int = 32
    """Processes the interpreter may have at once (itself included)."""

    def __post_init__(self) -> None:
        for name, low in (("timeout_s", 0.1), ("cpu_s", 1), ("session_cpu_s", 1), ("memory_mb", 64)):
            if getattr(self, name) < low:
                raise InvalidArgument.field(f"limits.{name}", f"must be >= {low}, got {getattr(self, name)}")
        if self.output_chars < 256:
            raise InvalidArgument.field("limits.output_chars", f"must be >= 256, got {self.output_chars}")
        if self.max_pids < 2:
            raise InvalidArgument.field("limits.max_pids", f"must be >= 2, got {self.max_pids}")


@dataclass
class _Interpreter:
    proc: subprocess.Popen[bytes]
    scratch: str
    cgroup: PidsCgroup | None
    buffer: bytearray = field(default_factory=bytearray)


class PythonSandbox:
    """The ``python`` tool. Thread-safe; calls within one session run one at a time."""

    spec = ToolSpec(
        name="python",
        description="Run Python code in a persistent interpreter (variables survive between calls). "
        "Print what you need to see; the value of a final expression is shown too. No network access; "
        "files can be written only in the current directory.",
        parameters={
            "type": "object",
            "properties": {
                "code": {"type": "string", "minLength": 1, "description": "Python source to run."}
            },
            "required": ["code"],
            "additionalProperties": False,
        },
    )

    def __init__(self, limits: SandboxLimits | None = None, *, scratch_root: str | None = None) -> None:
        self.limits = limits or SandboxLimits()
        self.scratch_root = scratch_root
        self._lock = threading.Lock()
        self._sessions: dict[str, _Interpreter] = {}
        self._session_locks: dict[str, threading.Lock] = {}
        self._lost: dict[str, str] = {}  # session -> why its previous interpreter ended

    @property
    def isolation(self) -> str:
        """``"namespaces"`` (no network, read-only filesystem but scratch) or ``"rlimits"``."""
        return isolation()

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        with self._lock:
            lock = self._session_locks.setdefault(ctx.session_id, threading.Lock())
        with lock:
            return self._run_locked(ctx.session_id, args["code"])

    def scratch_dir(self, session_id: str) -> str | None:
        """The session's scratch directory while its interpreter runs."""
        interp = self._sessions.get(session_id)
        return interp.scratch if interp else None

    def close(self, session_id: str) -> None:
        """End a session's interpreter and delete its scratch directory."""
        with self._lock:
            interp = self._sessions.pop(session_id, None)
            self._lost.pop(session_id, None)
            self._session_locks.pop(session_id, None)
        if interp is not None:
            self._destroy(interp)

    def close_all(self) -> None:
        for session_id in list(self._sessions):
            self.close(session_id)

    def __enter__(self) -> PythonSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_all()

    def _run_locked(self, session_id: str, code: str) -> ToolResult:
        notes = []
        interp = self._sessions.get(session_id)
        if interp is None or interp.proc.poll() is not None:
            if interp is not None:
                self._lost[session_id] = self._ended(interp)
                self._destroy(interp)
            if session_id in self._lost:
                notes.append(
                    f"[note: a new interpreter was started; the previous one {self._lost.pop(session_id)}, "
                    "so earlier variables and files are gone]"
                )
            started = self._start()
            if isinstance(started, ToolResult):
                return started
            interp = self._sessions[session_id] = started
        request = {"code": code, "cpu_s": self.limits.cpu_s, "output_chars": self.limits.output_chars}
        assert interp.proc.stdin is not None
        try:
            interp.proc.stdin.write(json.dumps(request).encode() + b"\n")
            interp.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it died between calls; reading the reply sees EOF and reports why
        line, why = self._read_reply(interp)
        if line is None:
            self._destroy(interp)
            del self._sessions[session_id]
            self._lost[session_id] = why
            return ToolResult.failure(
                f"the interpreter {why}; its state was lost (the next call starts a fresh one)"
            )
        reply = json.loads(line)
        return _to_result(reply, notes, self.limits.output_chars)

    def _start(self) -> _Interpreter | ToolResult:
        scratch = tempfile.mkdtemp(prefix="shipyard-python-", dir=self.scratch_root)
        cgroup = PidsCgroup.create(self.limits.max_pids)
        # Where the cgroup holds fork bombs, RLIMIT_NPROC (which counts all of a user's processes) is off.
        nproc = 0 if cgroup is not None else self.limits.max_pids
        argv = boot_command(
            scratch,
            cpu_s=self.limits.session_cpu_s,
            memory_bytes=self.limits.memory_mb << 20,
            output_bytes=max(self.limits.output_chars * 4, 1 << 20),
            isolate=isolation() == "namespaces",
            cgroup_procs=cgroup.procs_file if cgroup else "-",
            command=[sys.executable, "-I", "-c", REPL_SOURCE, str(nproc)],
        )
        proc = subprocess.Popen(
            argv,
            cwd=scratch,
            env=sandbox_env(scratch),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        return _Interpreter(proc, scratch, cgroup)

    def _read_reply(self, interp: _Interpreter) -> tuple[bytes | None, str]:
        assert interp.proc.stdout is not None
        fd = interp.proc.stdout.fileno()
        deadline = time.monotonic() + self.limits.timeout_s
        while b"\n" not in interp.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self._kill(interp)
                return None, f"was killed after the {self.limits.timeout_s:g} s wall-clock limit"
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self._kill(interp)
                return None, self._ended(interp)
            interp.buffer += chunk
            if len(interp.buffer) > _REPLY_CAP:
                self._kill(interp)
                return None, "sent an oversized reply and was killed"
        line, _, rest = bytes(interp.buffer).partition(b"\n")
        interp.buffer = bytearray(rest)
        return line, ""

    def _ended(self, interp: _Interpreter) -> str:
        code = interp.proc.wait()
        if code == SETUP_FAILED and interp.proc.stderr is not None:
            return "could not start: " + interp.proc.stderr.read(2000).decode(errors="replace").strip()
        if code == -signal.SIGKILL:
            return "was killed (out of memory or past its session CPU limit)"
        if code == -signal.SIGXCPU:
            return "used up its session CPU time limit"
        if code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"

    def _kill(self, interp: _Interpreter) -> None:
        if interp.cgroup is not None:
            interp.cgroup.kill_all()
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(interp.proc.pid, signal.SIGKILL)
        interp.proc.wait()

    def _destroy(self, interp: _Interpreter) -> None:
        self._kill(interp)
        for pipe in (interp.proc.stdin, interp.proc.stdout, interp.proc.stderr):
            if pipe is not None:
                pipe.close()
        if interp.cgroup is not None:
            interp.cgroup.remove()
        shutil.rmtree(interp.scratch, ignore_errors=True)


def _to_result(reply: dict[str, Any], notes: list[str], limit: int) -> ToolResult:
    parts = [*notes]
    if reply["stdout"]:
        parts.append(reply["stdout"].rstrip("\n"))
    if reply["stderr"]:
        parts.append(reply["stderr"].rstrip("\n"))
    if reply["value"] is not None:
        parts.append(reply["value"][:limit])
    if reply["truncated"]:
        parts.append(f"[output truncated at {limit} characters]")
    if reply["error"] and not reply["stderr"]:
        parts.append(reply["error"])
    content = "\n".join(parts) if parts else "(no output)"
    return ToolResult(content=content, data=reply, error=reply["error"])
