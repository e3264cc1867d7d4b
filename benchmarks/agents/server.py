"""The one inference server every side of the agent benchmarks talks to: SmolLM2 behind our OpenAI API.

Started as a subprocess (``shipyard serve``) on a loopback port and stopped at exit, so each side, ours
and the peers' (which run in their own virtual environment), calls the same endpoint and model.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import IO

from shipyard.models.local import SMOLLM2

MODEL = SMOLLM2


@contextlib.contextmanager
def inference_server(port: int, *, timeout_s: float = 180.0) -> Iterator[str]:
    """Serve SmolLM2 on 127.0.0.1:``port``; yields the ``/v1`` base URL once ``/v1/models`` answers."""
    cmd = [sys.executable, "-m", "shipyard", "serve", MODEL, "--port", str(port)]
    cmd += ["--grpc-port", str(port + 1)]
    env = {**os.environ, "SHIPYARD_METRICS_PORT": "0"}  # no Prometheus port to collide with
    # The server's log goes to a file: a pipe nobody drains would fill up and block the server.
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
        try:
            base = f"http://127.0.0.1:{port}/v1"
            _await_ready(proc, base, log, timeout_s)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _await_ready(proc: subprocess.Popen[str], base: str, log: IO[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the inference server exited: {log.read()[-4000:]}")
        try:
            with urllib.request.urlopen(base + "/models", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no inference server on {base} after {timeout_s:.0f} s") from None
            time.sleep(0.5)  # polling a subprocess we started; there is no readiness event to wait on
