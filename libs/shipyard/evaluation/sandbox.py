"""Running untrusted generated code (HumanEval completions) in a separate, locked-down process.

Each program runs as ``python -I program.py`` in a fresh temporary directory with:

- rlimits: CPU seconds (``RLIMIT_CPU``), address space (``RLIMIT_AS``, the memory limit), file size
  (``RLIMIT_FSIZE``, which also caps stdout/stderr since they go to files), no core dumps;
- a wall-clock timeout, after which the whole process group is killed;
- a scrubbed environment (no credentials, no ``PYTHON*`` variables; ``-I`` ignores them anyway);
- when the kernel lets us (root, or ``CAP_SYS_ADMIN``): new network and mount namespaces, so the program
  sees no network interface but a down loopback, every mount read-only except its own directory, and it
  runs with every capability dropped so it cannot undo that. Where namespaces are refused, the program
  still runs with rlimits only and ``isolation()`` says so (it is reported once in the log).

The limits are set by a tiny bootstrap that execs the program, not in ``preexec_fn``: ``preexec_fn`` is
unsafe when the parent has threads, and ``ProcessSandbox.run`` runs programs from a thread pool.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

from shipyard.errors import InvalidArgument
from shipyard.evaluation.types import ExecutionResult, ExecutionStatus

__all__ = [
    "SETUP_FAILED",
    "ExecResult",
    "ProcessSandbox",
    "boot_command",
    "isolation",
    "run_code",
    "sandbox_env",
]

_log = logging.getLogger(__name__)

SETUP_FAILED = _SETUP_FAILED = (
    121  # the bootstrap's exit code when it could not apply a limit it was asked for
)
_OUTPUT_LIMIT = 1 << 20
_DETAIL_CHARS = 300

# Runs as ``python -I -c _BOOT <workdir> <cpu_s> <memory_bytes> <output_bytes> <isolate> [<cgroup.procs
# file or -> [command...]]``, then execs ``program.py`` (stdout/stderr to files), or ``command`` with the
# inherited stdio when one is given (the agents' long-lived interpreter). It joins the cgroup first, while
# /sys is still writable. Kept to the standard library and ctypes: it must start in milliseconds.
_BOOT = r"""
import ctypes, os, resource, sys
work, isolate = sys.argv[1], sys.argv[5]
cpu, mem, fsize = (int(arg) for arg in sys.argv[2:5])
cgroup = sys.argv[6] if len(sys.argv) > 6 else "-"
command = sys.argv[7:]
def fail(msg):
    sys.stderr.write("sandbox setup failed: " + msg + "\n"); sys.exit(SETUP_FAILED)
if cgroup != "-":
    try:
        with open(cgroup, "w") as procs: procs.write(str(os.getpid()))
    except OSError as exc: fail("join the cgroup " + cgroup + ": " + str(exc))
if isolate == "1":
    libc = ctypes.CDLL(None, use_errno=True)
    def call(rc, what):
        if rc != 0: fail(what + ": " + os.strerror(ctypes.get_errno()))
    call(libc.unshare(0x00020000 | 0x40000000), "unshare(NEWNS|NEWNET)")
    MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
    call(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
    points = [line.split()[1] for line in open("/proc/self/mounts")]
    for point in points:
        point = point.encode().decode("unicode_escape").encode()
        rc = libc.mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
        if rc != 0 and point == b"/": fail("remount / read-only: " + os.strerror(ctypes.get_errno()))
    call(libc.mount(work.encode(), work.encode(), None, MS_BIND, None), "bind the work dir")
    call(libc.mount(None, work.encode(), None, MS_REMOUNT | MS_BIND, None), "make the work dir writable")
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
if isolate == "1" and os.geteuid() == 0:
    # Stay uid 0 (the interpreter may live where nobody cannot read) but with no capabilities at all,
    # so the program can neither remount the filesystem writable nor bring a network up.
    for cap in range(64):
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP; fails harmlessly past the last capability
    call(libc.prctl(38, 1, 0, 0, 0), "set no_new_privs")
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    call(libc.capset(header, (ctypes.c_uint32 * 6)()), "drop capabilities")
os.chdir(work)
if command:
    os.execv(command[0], command)
out = os.open("stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
err = os.open("stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.dup2(out, 1); os.dup2(err, 2)
os.execv(sys.executable, [sys.executable, "-I", "program.py"])
""".replace("SETUP_FAILED", str(_SETUP_FAILED))


def boot_command(
    work: str,
    *,
    cpu_s: int,
    memory_bytes: int,
    output_bytes: int,
    isolate: bool,
    cgroup_procs: str | None = None,
    command: Sequence[str] = (),
) -> list[str]:
    """The argv that applies the limits (and namespaces when ``isolate``), then execs the program.

    Without ``command`` it runs ``<work>/program.py`` with stdout/stderr going to files in ``work``;
    with one, it execs ``command`` keeping the caller's pipes. ``cgroup_procs`` is a ``cgroup.procs``
    file the process joins before anything else (e.g. a pids cgroup that contains fork bombs).
    """
    args = [work, str(cpu_s), str(memory_bytes), str(output_bytes), "1" if isolate else "0"]
    if cgroup_procs is not None or command:
        args += [cgroup_procs or "-", *command]
    return [sys.executable, "-I", "-c", _BOOT, *args]


def sandbox_env(work: str) -> dict[str, str]:
    """The scrubbed environment sandboxed programs run with: no credentials, nothing from ours."""
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": work, "OMP_NUM_THREADS": "1"}


@dataclass(frozen=True)
class ExecResult:
    """How one program ended, with what it printed (each stream cut at the output limit)."""

    status: ExecutionStatus
    stdout: str = ""
    stderr: str = ""
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status is ExecutionStatus.PASSED

    def to_result(self) -> ExecutionResult:
        """The compact form scoring records (status and a one-line reason)."""
        return ExecutionResult(self.status, self.detail)


@cache
def isolation() -> str:
    """``"namespaces"`` when programs get no network and a read-only filesystem, else ``"rlimits"``.

    Probed once per process by running the bootstrap on an empty program.
    """
    if not sys.platform.startswith("linux"):
        return "rlimits"
    result = _run(
        "", timeout_s=30.0, memory_mb=512, cpu_s=10, output_bytes=4096, isolate=True, check_setup=True
    )
    if result.status is ExecutionStatus.PASSED:
        return "namespaces"
    _log.warning(
        "code sandbox: namespaces unavailable (%s); generated code runs with rlimits only, "
        "without network or filesystem isolation",
        result.detail,
    )
    return "rlimits"


def run_code(
    program: str,
    *,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    cpu_s: int | None = None,
    output_bytes: int = _OUTPUT_LIMIT,
) -> ExecResult:
    """Run ``program`` in the sandbox; ``cpu_s`` defaults to the wall-clock timeout, rounded up."""
    violations = []
    if not timeout_s > 0:
        violations.append(("timeout_s", f"must be > 0, got {timeout_s}"))
    if memory_mb < 64:
        violations.append(("memory_mb", f"must be >= 64 (the interpreter needs it), got {memory_mb}"))
    if cpu_s is not None and cpu_s < 1:
        violations.append(("cpu_s", f"must be >= 1, got {cpu_s}"))
    if output_bytes < 1024:
        violations.append(("output_bytes", f"must be >= 1024, got {output_bytes}"))
    if violations:
        field, reason = violations[0]
        raise InvalidArgument.field(field, reason)
    cpu = cpu_s if cpu_s is not None else max(1, int(timeout_s + 0.999))
    return _run(
        program,
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        cpu_s=cpu,
        output_bytes=output_bytes,
        isolate=isolation() == "namespaces",
    )


def _run(
    program: str,
    *,
    timeout_s: float,
    memory_mb: int,
    cpu_s: int,
    output_bytes: int,
    isolate: bool,
    check_setup: bool = False,
) -> ExecResult:
    work = tempfile.mkdtemp(prefix="shipyard-sandbox-")
    try:
        with open(os.path.join(work, "program.py"), "w", encoding="utf-8") as f:
            f.write(program)
        started = time.monotonic()
        proc = subprocess.Popen(
            boot_command(
                work, cpu_s=cpu_s, memory_bytes=memory_mb << 20, output_bytes=output_bytes, isolate=isolate
            ),
            cwd=work,
            env=sandbox_env(work),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,  # only the bootstrap writes here; the program's stderr is a file
            start_new_session=True,  # its own process group, so a timeout kills its children too
        )
        try:
            _, boot_err = proc.communicate(timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, boot_err = proc.communicate()
            timed_out = True
        elapsed = time.monotonic() - started
        stdout = _read(os.path.join(work, "stdout"), output_bytes)
        stderr = _read(os.path.join(work, "stderr"), output_bytes)
        if proc.returncode == _SETUP_FAILED and boot_err:
            return ExecResult(
                ExecutionStatus.ERROR, stdout, stderr, boot_err.decode(errors="replace").strip()
            )
        if check_setup:
            ok = proc.returncode == 0
            return ExecResult(ExecutionStatus.PASSED if ok else ExecutionStatus.ERROR, detail=stderr[-300:])
        status, detail = _classify(
            proc.returncode,
            timed_out,
            elapsed,
            stderr,
            timeout_s=timeout_s,
            cpu_s=cpu_s,
            output_bytes=output_bytes,
        )
        return ExecResult(status, stdout, stderr, detail)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _read(path: str, limit: int) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _classify(
    code: int,
    timed_out: bool,
    elapsed: float,
    stderr: str,
    *,
    timeout_s: float,
    cpu_s: int,
    output_bytes: int,
) -> tuple[ExecutionStatus, str]:
    last = next((line for line in reversed(stderr.strip().splitlines()) if line.strip()), "")
    if timed_out:
        return ExecutionStatus.TIMEOUT, f"killed after the {timeout_s:g} s wall-clock limit"
    if code == 0:
        return ExecutionStatus.PASSED, ""
    if code == -signal.SIGXCPU:
        return ExecutionStatus.TIMEOUT, "killed at the CPU time limit"
    if code == -signal.SIGKILL:
        # Not our wall-clock kill: the hard CPU limit (one second above the soft one) or the OOM killer.
        if elapsed >= cpu_s:
            return ExecutionStatus.TIMEOUT, "killed at the CPU time limit"
        return ExecutionStatus.MEMORY, "killed (out of memory)"
    if code == -signal.SIGXFSZ or "[Errno 27]" in last:  # Python ignores SIGXFSZ: the write fails EFBIG
        return ExecutionStatus.FAILED, f"output exceeded {output_bytes} bytes"
    if last.startswith("MemoryError"):
        return ExecutionStatus.MEMORY, "exceeded the memory limit"
    if code < 0:
        return ExecutionStatus.FAILED, f"killed by {signal.Signals(-code).name}"
    return ExecutionStatus.FAILED, last[:_DETAIL_CHARS] or f"exit status {code}"


class ProcessSandbox:
    """``CodeSandbox`` over ``run_code``: programs run ``workers`` at a time, results in input order."""

    def __init__(self, *, workers: int = 4, cpu_s: int | None = None) -> None:
        if workers < 1:
            raise InvalidArgument.field("workers", f"must be >= 1, got {workers}")
        self.workers = workers
        self.cpu_s = cpu_s

    def run(
        self, programs: Sequence[str], *, timeout_s: float = 10.0, memory_mb: int = 1024
    ) -> list[ExecutionResult]:
        def one(program: str) -> ExecutionResult:
            return run_code(program, timeout_s=timeout_s, memory_mb=memory_mb, cpu_s=self.cpu_s).to_result()

        if len(programs) <= 1:
            return [one(p) for p in programs]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(programs))) as pool:
            return list(pool.map(one, programs))
