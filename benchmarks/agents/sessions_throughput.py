"""Concurrent agent sessions against one inference server: turns/s and turn latency as sessions grow.

Each session is a thread running one turn of our agent (calculator tool, native function calling) on
its own question through ``AgentRuntime.chat``, all against one SmolLM2 server on loopback, so the
server's continuous batching is what lets throughput grow with concurrency. Printed per concurrency:
turns/s, the speedup over one session at a time, p50/p95 turn latency, and how many answers held the
right number.

    /tmp/venv-probe/bin/python -m benchmarks.agents.sessions_throughput [--sessions 1,4,16] [--turns 16]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from benchmarks.agents.server import MODEL, inference_server
from shipyard.agents.llm import OpenAIChatModel
from shipyard.agents.runtime import AgentRuntime
from shipyard.agents.sessions.store import SessionStore
from shipyard.resources.agent import AgentSpec
from shipyard.storage import open_storage

QUESTIONS = [
    (f"What is {a} times {b} plus {c}? Use the calculator.", str(a * b + c))
    for a, b, c in [
        (17, 23, 5),
        (41, 12, 9),
        (8, 99, 3),
        (64, 7, 11),
        (13, 13, 13),
        (250, 4, 1),
        (37, 3, 20),
        (6, 6, 6),
    ]
]

EXAMPLE_CALL = '<tool_call>{"name": "calculator", "arguments": {"expression": "2 + 2"}}</tool_call>'


def run_turns(
    runtime: AgentRuntime, store: SessionStore, concurrency: int, turns: int
) -> tuple[float, list[float], int]:
    """Wall time of ``turns`` turns run ``concurrency`` at a time, each turn's latency, and how many
    final answers held the right number."""
    # A fresh session per turn: every level does the same work (no history growing at low concurrency).
    sessions = [store.create_session(runtime.name).id for _ in range(turns)]

    def one(i: int) -> tuple[float, bool]:
        question, expected = QUESTIONS[i % len(QUESTIONS)]
        started, answer = time.monotonic(), ""
        for event in runtime.chat(sessions[i], question):
            if event.kind == "final_answer":
                answer = event.text
        return time.monotonic() - started, expected in answer

    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(turns)))
    return time.monotonic() - started, [r[0] for r in results], sum(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,4,16", help="concurrency levels")
    parser.add_argument("--turns", type=int, default=16, help="turns per level")
    parser.add_argument("--port", type=int, default=18240)
    args = parser.parse_args()
    levels = [int(x) for x in args.sessions.split(",")]

    spec = AgentSpec.model_validate(
        {
            "model": {"url": "http://127.0.0.1/v1", "name": MODEL},
            "systemPrompt": "Use the calculator for arithmetic. Example: " + EXAMPLE_CALL,
            "tools": [{"type": "calculator"}],
            "protocol": "function-calling",
            "toolChoice": "required",  # a call first, then auto: the answer comes from the result
            "limits": {"maxSteps": 3, "maxTokensPerStep": 64},
        }
    )
    with inference_server(args.port) as endpoint, tempfile.TemporaryDirectory() as tmp:
        spec = spec.model_copy(update={"model": spec.model.model_copy(update={"url": endpoint})})
        store = SessionStore.embedded(tmp)
        runtime = AgentRuntime(
            "throughput", spec, model=OpenAIChatModel(endpoint, MODEL), store=store, storage=open_storage(tmp)
        )
        store.create_agent(runtime.name, spec.model_dump(by_alias=True))
        print(f"{args.turns} agent turns per level, {MODEL}, one server\n")
        print(f"{'sessions':>9}{'turns/s':>9}{'speedup':>9}{'p50 s':>8}{'p95 s':>8}{'correct':>9}")
        base = None
        for level in levels:
            wall, latencies, right = run_turns(runtime, store, level, args.turns)
            rate = args.turns / wall
            base = base or rate
            p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) > 1 else latencies[0]
            print(
                f"{level:>9}{rate:>9.2f}{rate / base:>8.2f}x{statistics.median(latencies):>8.2f}{p95:>8.2f}"
                f"{right:>6}/{args.turns}"
            )
        runtime.close()
        store.close()


if __name__ == "__main__":
    main()
