"""The Python tool against escapes: each attempt is contained, reported to the model, and the host is fine."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest

from shipyard.agents.tools.base import ToolContext, call_tool
from shipyard.agents.tools.python_sandbox import PythonSandbox, SandboxLimits
from shipyard.errors import InvalidArgument


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PythonSandbox]:
    # The wall-clock limit is far above the 1 s CPU limit: on a loaded machine a CPU second takes many
    # wall seconds, and the CPU-limit test must hit the CPU limit, not the wall one.
    limits = SandboxLimits(timeout_s=30.0, cpu_s=1, memory_mb=256, output_chars=1000, max_pids=16)
    with PythonSandbox(limits, scratch_root=str(tmp_path_factory.mktemp("scratch"))) as box:
        yield box


def run(box: PythonSandbox, code: str, session: str = "s") -> tuple[str, str | None]:
    result = call_tool(box, {"code": code}, ToolContext(session_id=session))
    return result.content, result.error


def test_variables_persist_across_calls_and_sessions_are_separate(sandbox: PythonSandbox) -> None:
    assert run(sandbox, "total = 6 * 7", "a") == ("(no output)", None)
    assert run(sandbox, "print('answer', total)\ntotal + 1", "a") == ("answer 42\n43", None)
    content, error = run(sandbox, "total", "b")
    assert error is not None and "NameError" in error and "total" in content


def test_a_traceback_shows_only_the_models_code(sandbox: PythonSandbox) -> None:
    content, error = run(sandbox, "def f():\n    return 1 / 0\nf()")
    assert error == "ZeroDivisionError: division by zero"
    assert 'File "<cell>", line 2, in f' in content and "run_cell" not in content


def test_writes_outside_scratch_fail_and_scratch_is_writable(sandbox: PythonSandbox) -> None:
    if sandbox.isolation != "namespaces":
        pytest.skip(f"filesystem isolation needs namespaces; isolation here is {sandbox.isolation}")
    outside = f"/tmp/shipyard-escape-{os.getpid()}"
    content, error = run(sandbox, f"open({outside!r}, 'w').write('x')")
    assert error is not None and "Read-only file system" in error
    assert not os.path.exists(outside)
    assert run(sandbox, "open('notes.txt', 'w').write('kept')\nopen('notes.txt').read()") == ("'kept'", None)
    scratch = sandbox.scratch_dir("s")
    assert scratch is not None
    with open(os.path.join(scratch, "notes.txt")) as f:
        assert f.read() == "kept"


def test_network_is_unreachable(sandbox: PythonSandbox) -> None:
    if sandbox.isolation != "namespaces":
        pytest.skip(f"network isolation needs namespaces; isolation here is {sandbox.isolation}")
    accepted = threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        server.settimeout(0.5)
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)"
        _, error = run(sandbox, code)
        try:
            server.accept()
            accepted.set()
        except TimeoutError:
            pass
    assert error is not None and "Network is unreachable" in error
    assert not accepted.is_set()


def test_infinite_loop_hits_the_cpu_limit_and_keeps_state(sandbox: PythonSandbox) -> None:
    run(sandbox, "kept = 'still here'", "loop")
    content, error = run(sandbox, "while True:\n    pass", "loop")
    assert error == "the cell exceeded its CPU time limit"
    assert run(sandbox, "kept", "loop") == ("'still here'", None)


def test_memory_hog_gets_a_memory_error(sandbox: PythonSandbox) -> None:
    _, error = run(sandbox, "hog = bytearray(1 << 30)", "mem")
    assert error is not None and "MemoryError" in error
    assert run(sandbox, "2 + 2", "mem") == ("4", None)


def test_output_is_cut_at_the_limit(sandbox: PythonSandbox) -> None:
    content, error = run(sandbox, "print('y' * 50_000)")
    assert error is None
    assert content.count("y") == 1000 and "[output truncated at 1000 characters]" in content


def test_blocking_call_is_killed_at_the_wall_timeout_and_the_next_call_says_state_was_lost(
    tmp_path: os.PathLike[str],
) -> None:
    sandbox = PythonSandbox(SandboxLimits(timeout_s=2.0), scratch_root=str(tmp_path))
    run(sandbox, "lost = 1", "wall")
    content, error = run(sandbox, "import time\ntime.sleep(60)", "wall")
    assert error is not None and "wall-clock limit" in error and "state was lost" in error
    content, error = run(sandbox, "lost", "wall")
    sandbox.close_all()
    assert "new interpreter was started" in content and error is not None and "NameError" in error


def test_fork_bomb_is_contained(sandbox: PythonSandbox) -> None:
    content, error = run(sandbox, "import os\nwhile True:\n    os.fork()", "bomb")
    assert error is not None
    assert "Resource temporarily unavailable" in error or "limit" in error
    # The host still forks, and the session still answers (or says it restarted).
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    content, error = run(sandbox, "'alive'", "bomb")
    assert content.endswith("'alive'") and error is None


def test_close_kills_the_interpreter_and_removes_scratch(tmp_path: os.PathLike[str]) -> None:
    box = PythonSandbox(SandboxLimits(timeout_s=4.0), scratch_root=str(tmp_path))
    assert run(box, "import os\nos.getpid()", "c")[1] is None
    scratch = box.scratch_dir("c")
    assert scratch is not None and os.path.isdir(scratch)
    box.close("c")
    assert not os.path.exists(scratch) and box.scratch_dir("c") is None


def test_invalid_limits_name_the_field() -> None:
    with pytest.raises(InvalidArgument, match="limits.memory_mb"):
        SandboxLimits(memory_mb=1)


def test_schema_invalid_call_never_runs(sandbox: PythonSandbox) -> None:
    result = call_tool(sandbox, {"source": "print(1)"}, ToolContext(session_id="schema"))
    assert result.error is not None and "'code' is a required property" in result.error
    assert sandbox.scratch_dir("schema") is None
