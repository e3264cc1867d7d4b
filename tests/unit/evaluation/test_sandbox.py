"""The code sandbox: HumanEval programs pass or fail on their merits, and hostile programs are contained."""

from __future__ import annotations

import gzip
import json
import pathlib

import pytest

from shipyard.errors import InvalidArgument
from shipyard.evaluation.sandbox import ProcessSandbox, isolation, run_code
from shipyard.evaluation.types import CodeSandbox, ExecutionStatus

needs_namespaces = pytest.mark.skipif(
    isolation() != "namespaces", reason="network/filesystem isolation needs CAP_SYS_ADMIN (see sandbox.py)"
)


@pytest.fixture(scope="module")
def humaneval(shared_data: pathlib.Path) -> list[dict[str, str]]:
    with gzip.open(shared_data / "eval/humaneval/HumanEval_first40.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f][:4]


def _program(problem: dict[str, str], completion: str) -> str:
    # The human-eval harness's layout: prompt + completion, then the tests, then the check call.
    return f"{problem['prompt']}{completion}\n{problem['test']}\ncheck({problem['entry_point']})\n"


def test_canonical_humaneval_solutions_pass(humaneval: list[dict[str, str]]) -> None:
    for problem in humaneval:
        result = run_code(_program(problem, problem["canonical_solution"]), timeout_s=10, memory_mb=512)
        assert result.passed, (problem["task_id"], result.detail, result.stderr)
        assert result.status is ExecutionStatus.PASSED


def test_wrong_solution_fails_with_the_assertion(humaneval: list[dict[str, str]]) -> None:
    result = run_code(_program(humaneval[0], "    return None\n"), timeout_s=10, memory_mb=512)
    assert result.status is ExecutionStatus.FAILED
    assert "AssertionError" in result.detail


def test_syntax_error_fails() -> None:
    result = run_code("def f(:\n", timeout_s=5, memory_mb=256)
    assert result.status is ExecutionStatus.FAILED
    assert "SyntaxError" in result.detail


def test_infinite_loop_is_killed_at_the_wall_clock_limit() -> None:
    result = run_code("while True:\n    pass\n", timeout_s=1.0, memory_mb=256, cpu_s=30)
    assert result.status is ExecutionStatus.TIMEOUT
    assert "wall-clock" in result.detail


def test_cpu_limit_stops_a_busy_program_before_the_wall_clock() -> None:
    result = run_code("while True:\n    pass\n", timeout_s=30.0, memory_mb=256, cpu_s=1)
    assert result.status is ExecutionStatus.TIMEOUT
    assert "CPU" in result.detail


def test_memory_bomb_is_stopped() -> None:
    result = run_code("x = bytearray(8 * 1024**3)\nprint('allocated')\n", timeout_s=10, memory_mb=256)
    assert result.status is ExecutionStatus.MEMORY
    assert "allocated" not in result.stdout


def test_output_is_captured_and_capped() -> None:
    assert run_code("print('hello')", timeout_s=5, memory_mb=256).stdout == "hello\n"
    flood = run_code("print('x' * 10_000_000)", timeout_s=10, memory_mb=256, output_bytes=4096)
    assert flood.status is ExecutionStatus.FAILED
    assert "output exceeded 4096 bytes" in flood.detail
    assert len(flood.stdout) <= 4096


def test_environment_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    result = run_code("import os; print(sorted(os.environ))", timeout_s=5, memory_mb=256)
    assert result.passed
    assert "AWS_SECRET_ACCESS_KEY" not in result.stdout


def test_program_may_write_its_own_directory() -> None:
    result = run_code(
        "open('out.txt', 'w').write('ok'); print(open('out.txt').read())", timeout_s=5, memory_mb=256
    )
    assert result.passed and result.stdout == "ok\n"


@needs_namespaces
def test_write_outside_the_temp_dir_fails(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "escaped.txt"
    result = run_code(f"open({str(target)!r}, 'w').write('x')", timeout_s=5, memory_mb=256)
    assert result.status is ExecutionStatus.FAILED
    assert "Read-only file system" in result.detail
    assert not target.exists()


@needs_namespaces
def test_socket_connect_fails() -> None:
    program = "import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=2)\nprint('connected')\n"
    result = run_code(program, timeout_s=5, memory_mb=256)
    assert result.status is ExecutionStatus.FAILED
    assert "connected" not in result.stdout
    assert "unreachable" in result.detail


def test_process_sandbox_keeps_order_and_implements_the_protocol(humaneval: list[dict[str, str]]) -> None:
    sandbox = ProcessSandbox(workers=2)
    assert isinstance(sandbox, CodeSandbox)
    programs = [_program(humaneval[0], humaneval[0]["canonical_solution"]), "raise SystemExit(3)", "pass"]
    statuses = [r.status for r in sandbox.run(programs, timeout_s=10, memory_mb=512)]
    assert statuses == [ExecutionStatus.PASSED, ExecutionStatus.FAILED, ExecutionStatus.PASSED]


def test_bad_limits_name_the_field() -> None:
    with pytest.raises(InvalidArgument, match="memory_mb"):
        run_code("pass", timeout_s=5, memory_mb=1)
    with pytest.raises(InvalidArgument, match="timeout_s"):
        run_code("pass", timeout_s=0, memory_mb=256)
