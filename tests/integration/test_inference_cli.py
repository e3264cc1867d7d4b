"""``shipyard chat`` (in-process and against a server) and the service's ``__main__`` as a process."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys

import openai
import pytest
from click.testing import CliRunner

from shipyard.cli.main import CliContext
from shipyard.cli.serve import chat
from shipyard.config import load_config
from shipyard_services.inference.server import InferenceServers

pytestmark = pytest.mark.integration


def context(tmp_path: pathlib.Path) -> CliContext:
    return CliContext(
        load_config(overrides={"storage.data_dir": str(tmp_path), "inference.kv_cache_memory": 8e6})
    )


def test_chat_answers_each_prompt_and_exits(tiny_model_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    result = CliRunner().invoke(
        chat,
        [
            str(tiny_model_dir),
            "-p",
            "What is 2+2?",
            "-p",
            "Name a colour.",
            "--max-tokens",
            "5",
            "--temperature",
            "0",
        ],
        obj=context(tmp_path),
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "> What is 2+2?" in lines and "> Name a colour." in lines
    answer = lines[lines.index("> What is 2+2?") + 1]
    assert answer.strip()


def test_chat_talks_to_a_running_server(servers: InferenceServers, tmp_path: pathlib.Path) -> None:
    result = CliRunner().invoke(
        chat,
        ["tiny", "--endpoint", servers.http.url, "-p", "hi", "--max-tokens", "4", "--temperature", "0"],
        obj=context(tmp_path),
    )
    assert result.exit_code == 0, result.output
    expected = openai.OpenAI(base_url=servers.http.url + "/v1", api_key="-").chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=4, temperature=0
    )
    assert expected.choices[0].message.content.strip() in result.output


@pytest.mark.slow
def test_service_main_prints_ready_serves_and_stops_on_sigterm(
    tiny_model_dir: pathlib.Path,
    tiny_adapter_dir: pathlib.Path,
    tmp_path: pathlib.Path,
) -> None:
    args = [
        sys.executable,
        "-m",
        "shipyard_services.inference",
        "--model",
        str(tiny_model_dir),
        "--served-model-name",
        "tiny",
        "--http-port",
        "0",
        "--grpc-port",
        "0",
        "--metrics-port",
        "0",
        "--kv-cache-memory-fraction",
        "8000000",
        "--max-num-seqs",
        "4",
        "--adapter",
        f"pirate={tiny_adapter_dir}",
        "--data-dir",
        str(tmp_path),
    ]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, text=True, env={**os.environ, "SHIPYARD_LOG_FORMAT": "text"}
    )
    try:
        assert proc.stdout is not None
        ready = next(line for line in proc.stdout if line.startswith("READY"))
        fields = dict(part.split("=", 1) for part in ready.split()[2:])
        c = openai.OpenAI(base_url=fields["http"] + "/v1", api_key="-", max_retries=0)
        assert [m.id for m in c.models.list()] == ["tiny", "pirate"]
        assert c.completions.create(model="pirate", prompt="hi", max_tokens=3).usage.completion_tokens == 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
