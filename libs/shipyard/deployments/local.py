"""``ModelDeployment`` in embedded mode: one local inference server process per deployment.

On a cluster the operator turns a ModelDeployment into a Deployment, Service, HPA and PDB. Here the same
manifest becomes one ``python -m shipyard_services.inference`` process (the program the pods run, with
the same flags), detached from the CLI that started it so it keeps serving after ``shipyard apply``
returns. Its state (pid, endpoints, the spec it runs) is a JSON file under ``<state_dir>/<name>/`` next
to its log, so ``shipyard get modeldeployments`` and ``shipyard delete`` find it from any shell.

Reconcile follows the operator's shape: ``plan_action`` decides purely from the desired spec and what
runs (nothing, the same spec: keep it; another spec or a dead process: replace it; ``replicas: 0``:
stop), and ``LocalDeployments.apply`` carries the decision out. Embedded mode runs at most one replica.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from shipyard.errors import FailedPrecondition, NotFound, Unavailable
from shipyard.resources.model_deployment import ModelDeployment
from shipyard.resources.status import DeploymentPhase, ModelDeploymentStatus

__all__ = [
    "Action",
    "DeploymentRecord",
    "LocalDeployments",
    "ServerLaunch",
    "deployment_status",
    "plan_action",
    "server_command",
]

_READY = re.compile(r"^READY inference (?P<fields>.*)$")
STATE_FILE = "deployment.json"
LOG_FILE = "server.log"


class Action(enum.StrEnum):
    START = "start"
    REPLACE = "replace"
    STOP = "stop"
    KEEP = "keep"


@dataclass(frozen=True)
class ServerLaunch:
    """What to run: the resolved model and adapters plus the spec's serving options."""

    model: str
    served_model_name: str
    adapters: tuple[tuple[str, str], ...] = ()
    max_num_seqs: int = 64
    kv_cache_memory_fraction: float = 0.8
    quantization: str = "none"
    max_model_len: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (tuples as lists), as the state file stores it and ``plan_action`` compares it."""
        data: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return data

    @classmethod
    def from_deployment(cls, deployment: ModelDeployment, model: str) -> ServerLaunch:
        spec, serving = deployment.spec, deployment.spec.serving
        return cls(
            model=model,
            served_model_name=deployment.metadata.name,
            adapters=tuple((a.name, a.uri) for a in spec.adapters),
            max_num_seqs=serving.max_num_seqs,
            kv_cache_memory_fraction=serving.kv_cache_memory_fraction,
            quantization=serving.quantization,
            max_model_len=serving.max_model_len,
        )


@dataclass
class DeploymentRecord:
    """A local deployment as the state file holds it."""

    name: str
    launch: dict[str, Any]
    pid: int | None = None
    endpoint: str | None = None  # OpenAI-compatible base URL
    grpc_target: str | None = None
    create_time: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    log_path: str | None = None

    def alive(self) -> bool:
        return self.pid is not None and _pid_alive(self.pid)


def server_command(launch: ServerLaunch, python: str = sys.executable) -> list[str]:
    """The inference server's command line: the operator's container args, with free local ports."""
    args = [python, "-m", "shipyard_services.inference", "--model", launch.model]
    args += ["--served-model-name", launch.served_model_name, "--http-port", "0", "--grpc-port", "0"]
    args += ["--max-num-seqs", str(launch.max_num_seqs)]
    args += ["--kv-cache-memory-fraction", str(launch.kv_cache_memory_fraction)]
    args += ["--quantization", launch.quantization]
    if launch.max_model_len is not None:
        args += ["--max-model-len", str(launch.max_model_len)]
    for name, uri in launch.adapters:
        args += ["--adapter", f"{name}={uri}"]
    return args


def plan_action(desired: ServerLaunch | None, observed: DeploymentRecord | None, *, alive: bool) -> Action:
    """What to do so that ``observed`` (its server ``alive`` or not) becomes ``desired`` (None: zero)."""
    if desired is None:
        return Action.STOP if observed is not None else Action.KEEP  # a dead server's record goes too
    if observed is None:
        return Action.START
    if not alive or observed.launch != desired.to_json():
        return Action.REPLACE
    return Action.KEEP


class LocalDeployments:
    """Starts, finds and stops local inference servers; state lives under ``state_dir``."""

    def __init__(
        self,
        state_dir: str | pathlib.Path,
        *,
        python: str = sys.executable,
        ready_timeout: float = 300.0,
        extra_args: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state_dir = pathlib.Path(state_dir)
        self.python, self.ready_timeout = python, ready_timeout
        self.extra_args, self.clock = extra_args, clock

    def apply(self, name: str, desired: ServerLaunch | None) -> tuple[Action, DeploymentRecord | None]:
        """Reconcile deployment ``name`` towards ``desired``; returns what was done and the result."""
        observed = self._read(name)
        action = plan_action(desired, observed, alive=observed is not None and observed.alive())
        if action in (Action.STOP, Action.REPLACE) and observed is not None:
            self._stop(observed)
        if action is Action.STOP:
            self._path(name).unlink(missing_ok=True)
            return action, None
        if action is Action.KEEP:
            return action, observed
        assert desired is not None
        return action, self._start(name, desired)

    def get(self, name: str) -> DeploymentRecord:
        record = self._read(name)
        if record is None:
            raise NotFound(f"ModelDeployment {name!r} does not run here")
        return record

    def list(self) -> list[DeploymentRecord]:
        if not self.state_dir.is_dir():
            return []
        found = (self._read(p.name) for p in sorted(self.state_dir.iterdir()) if p.is_dir())
        return [r for r in found if r is not None]

    def delete(self, name: str) -> None:
        record = self.get(name)
        self._stop(record)
        self._path(name).unlink(missing_ok=True)

    # -- internals -------------------------------------------------------------------------------

    def _path(self, name: str) -> pathlib.Path:
        return self.state_dir / name / STATE_FILE

    def _read(self, name: str) -> DeploymentRecord | None:
        path = self._path(name)
        if not path.is_file():
            return None
        return DeploymentRecord(**json.loads(path.read_text(encoding="utf-8")))

    def _write(self, record: DeploymentRecord) -> None:
        path = self._path(record.name)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record), indent=2), encoding="utf-8")
        tmp.replace(path)

    def _start(self, name: str, launch: ServerLaunch) -> DeploymentRecord:
        directory = self.state_dir / name
        directory.mkdir(parents=True, exist_ok=True)
        log_path = directory / LOG_FILE
        with log_path.open("w", encoding="utf-8") as log:
            # A new session: the server outlives this CLI and Ctrl-C in the shell does not reach it.
            proc = subprocess.Popen(
                [*server_command(launch, self.python), *self.extra_args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        record = DeploymentRecord(name, launch.to_json(), pid=proc.pid, log_path=str(log_path))
        try:
            fields = self._await_ready(proc, log_path)
        except BaseException:
            _terminate(proc.pid)
            proc.wait()
            raise
        http = fields["http"]
        record.endpoint = (http if "://" in http else f"http://{http}").rstrip("/") + "/v1"
        record.grpc_target = fields.get("grpc")
        self._write(record)
        return record

    def _await_ready(self, proc: subprocess.Popen[bytes], log_path: pathlib.Path) -> dict[str, str]:
        """The fields of the server's READY line, read from its log as it is written."""
        deadline = self.clock() + self.ready_timeout
        with log_path.open(encoding="utf-8", errors="replace") as log:
            while True:
                line = log.readline()
                if line:
                    match = _READY.match(line.strip())
                    if match:
                        return dict(kv.split("=", 1) for kv in match["fields"].split() if "=" in kv)
                    continue
                if proc.poll() is not None:
                    tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
                    raise FailedPrecondition(f"the inference server exited with {proc.returncode}:\n{tail}")
                if self.clock() > deadline:
                    raise Unavailable(
                        f"the inference server did not become ready in {self.ready_timeout:.0f}s; "
                        f"see {log_path}"
                    )
                # The server is a separate program writing a file: waiting on its output is the only
                # signal there is, so poll the log briefly (bounded by the deadline above).
                time.sleep(0.1)

    def _stop(self, record: DeploymentRecord) -> None:
        if record.pid is not None and record.alive():
            _terminate(record.pid)
            deadline = self.clock() + 30
            while _pid_alive(record.pid) and self.clock() < deadline:
                time.sleep(0.05)
            if _pid_alive(record.pid):
                os.kill(record.pid, signal.SIGKILL)


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live inference server (not a reaped child, a zombie or a reused pid)."""
    with contextlib.suppress(ChildProcessError):  # reap our own exited child: no zombie lingers
        os.waitpid(pid, os.WNOHANG)
    try:
        cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z" and b"shipyard_services.inference" in cmdline


def deployment_status(record: DeploymentRecord) -> ModelDeploymentStatus:
    """A local deployment's status in the CRD's shape (embedded mode runs one replica)."""
    alive = record.alive()
    return ModelDeploymentStatus(
        phase=DeploymentPhase.READY if alive else DeploymentPhase.FAILED,
        replicas=1,
        ready_replicas=1 if alive else 0,
        endpoint=record.endpoint,
        model=str(record.launch.get("model")),
    )
