"""GSM8K with and without a Python tool: Shipyard's agent vs Lagent and smolagents on the same endpoint.

Every side answers the same GSM8K questions with SmolLM2-135M-Instruct served by one Shipyard inference
server on loopback (greedy, the same step limit):

* ``shipyard-none``: our agent with no tools (the model answers directly);
* ``shipyard-python``: our agent with the sandboxed Python tool (native function calling, a tool call
  required first; the server's constrained decoding keeps the calls valid JSON that fits the schema);
* ``lagent``: Lagent's ``ReAct`` with its ``PythonInterpreter``;
* ``smolagents``: smolagents' ``ToolCallingAgent`` with its ``PythonInterpreterTool``.

The peers run in their own virtual environment (``--peers-python``; see benchmarks/agents/README.md).
Every side is scored by the same code: lm-eval's flexible extraction (the last number in the answer)
against the number after ``####``. Reported per side: accuracy, mean model steps, tool calls, failed
tool calls (unparsable calls, unknown tools, schema-invalid arguments, tools that raised) and wall time.

    /tmp/venv-probe/bin/python -m benchmarks.agents.gsm8k_tools --limit 20 \
        --peers-python /tmp/venv-bench-agents/bin/python
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.agents.server import MODEL, inference_server
from shipyard.agents.llm import OpenAIChatModel
from shipyard.agents.runtime import AgentRuntime
from shipyard.agents.sessions.store import SessionStore
from shipyard.evaluation.metrics import extract_answer
from shipyard.resources.agent import AgentSpec
from shipyard.storage import open_storage

DATA = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "eval" / "gsm8k"
NUMBER = r"(-?[$0-9.,]{2,})|(-?[0-9]+)"  # lm-eval gsm8k "flexible-extract"
PEERS = pathlib.Path(__file__).resolve().parent / "peers"
SIDES = ("shipyard-none", "shipyard-python", "lagent", "smolagents")
SYSTEM = (
    "You solve grade-school math word problems. Think step by step. When a calculation is needed, "
    "{tool_hint}End with a line 'The answer is N.' where N is a number."
)


# SmolLM2 was not trained on a tool-call format: one example in the system prompt is what makes it use
# the tool at all (Lagent and smolagents put theirs in their own prompts too).
EXAMPLE_CALL = '<tool_call>{"name": "python", "arguments": {"code": "print(12 * 3 - 5)"}}</tool_call>'


@dataclass
class Row:
    id: str
    answer: str
    steps: int
    tool_calls: int
    failed_tool_calls: int
    wall_s: float
    error: str | None = None


def normalize(number: str) -> str:
    text = number.replace("$", "").replace(",", "").strip().rstrip(".")
    try:
        value = float(text)
    except ValueError:
        return text
    return str(int(value)) if value == int(value) else str(value)


def correct(answer: str, gold: str) -> bool:
    predicted = extract_answer(answer, NUMBER, group_select=-1)
    return predicted != "[invalid]" and normalize(predicted) == normalize(gold.split("####")[-1])


def shipyard_side(
    endpoint: str, questions: list[dict[str, Any]], *, tools: bool, max_steps: int
) -> list[Row]:
    spec = AgentSpec.model_validate(
        {
            "model": {"url": endpoint, "name": MODEL},
            "systemPrompt": SYSTEM.format(
                tool_hint=f"call the python tool with code that prints the result, e.g. {EXAMPLE_CALL} "
                if tools
                else ""
            ),
            "protocol": "function-calling",
            # Like smolagents' ToolCallingAgent (tool_choice "required"): a call first, then auto.
            "toolChoice": "required" if tools else "auto",
            "tools": [{"type": "python", "timeoutSeconds": 10}] if tools else [],
            "limits": {"maxSteps": max_steps, "maxTokensPerStep": 256, "wallTimeSeconds": 900},
        }
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = SessionStore.embedded(tmp)
        runtime = AgentRuntime(
            "gsm8k", spec, model=OpenAIChatModel(endpoint, MODEL), store=store, storage=open_storage(tmp)
        )
        try:
            for q in questions:
                started = time.monotonic()
                answer, error, steps, calls, failed = "", None, 0, 0, 0
                for event in runtime.ask(q["question"]):
                    if event.kind == "tool_call":
                        calls += 1
                    elif (
                        event.kind == "tool_result" and event.error or event.kind == "thought" and event.error
                    ):
                        failed += 1
                    elif event.kind == "final_answer":
                        answer = event.text
                        steps = event.usage.model_calls if event.usage else 0
                    elif event.kind == "error":
                        error = event.error or event.text
                        steps = event.usage.model_calls if event.usage else 0
                rows.append(Row(q["id"], answer, steps, calls, failed, time.monotonic() - started, error))
        finally:
            runtime.close()
            store.close()
    return rows


def peer_side(
    script: str, python: str, endpoint: str, questions: list[dict[str, Any]], *, max_steps: int
) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        qfile, out = pathlib.Path(tmp) / "q.jsonl", pathlib.Path(tmp) / "out.jsonl"
        qfile.write_text(
            "".join(json.dumps({"id": q["id"], "question": q["question"]}) + "\n" for q in questions)
        )
        cmd = [python, str(PEERS / script), "--endpoint", endpoint, "--model", MODEL]
        cmd += ["--questions", str(qfile), "--out", str(out), "--max-steps", str(max_steps)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return [Row(**json.loads(line)) for line in out.read_text().splitlines()]


def summarize(name: str, rows: list[Row], gold: dict[str, str]) -> dict[str, Any]:
    n = len(rows)
    return {
        "side": name,
        "questions": n,
        "accuracy": sum(correct(r.answer, gold[r.id]) for r in rows) / n,
        "mean_steps": sum(r.steps for r in rows) / n,
        "tool_calls": sum(r.tool_calls for r in rows),
        "failed_tool_calls": sum(r.failed_tool_calls for r in rows),
        "runs_with_errors": sum(1 for r in rows if r.error),
        "wall_s": sum(r.wall_s for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--port", type=int, default=18230)
    parser.add_argument(
        "--peers-python", help="python of a venv with lagent and smolagents (skipped if unset)"
    )
    parser.add_argument("--json", type=pathlib.Path, help="write every row and the summary here")
    parser.add_argument("--sides", default=",".join(SIDES), help=f"a subset of {','.join(SIDES)}")
    args = parser.parse_args()
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    unknown = sorted(set(sides) - set(SIDES))
    if unknown:
        parser.error(f"--sides: unknown {', '.join(unknown)}; choose from {', '.join(SIDES)}")

    lines = (DATA / "test_first200.jsonl").read_text(encoding="utf-8").splitlines()[: args.limit]
    questions = [{"id": str(i), **json.loads(line)} for i, line in enumerate(lines)]
    gold = {q["id"]: q["answer"] for q in questions}
    results: dict[str, list[Row]] = {}
    with inference_server(args.port) as endpoint:
        for name in sides:
            if name.startswith("shipyard-"):
                tools = name == "shipyard-python"
                results[name] = shipyard_side(endpoint, questions, tools=tools, max_steps=args.max_steps)
            elif args.peers_python:
                results[name] = peer_side(
                    f"{name}_side.py", args.peers_python, endpoint, questions, max_steps=args.max_steps
                )
    summary = [summarize(name, rows, gold) for name, rows in results.items()]
    print(f"GSM8K first {len(questions)} questions, {MODEL}, max {args.max_steps} steps\n")
    print(f"{'side':<17}{'accuracy':>9}{'steps':>7}{'calls':>7}{'failed':>8}{'errors':>8}{'wall s':>9}")
    for s in summary:
        print(
            f"{s['side']:<17}{s['accuracy']:>9.3f}{s['mean_steps']:>7.2f}{s['tool_calls']:>7}"
            f"{s['failed_tool_calls']:>8}{s['runs_with_errors']:>8}{s['wall_s']:>9.1f}"
        )
    ours = next((s for s in summary if s["side"] == "shipyard-python"), None)
    for peer in (s for s in summary if ours and s["side"] in ("lagent", "smolagents")):
        print(
            f"\nshipyard-python vs {peer['side']}: "
            f"accuracy {ours['accuracy']:.3f} vs {peer['accuracy']:.3f}, "
            f"failed tool calls {ours['failed_tool_calls']} vs {peer['failed_tool_calls']}, "
            f"wall time {peer['side']}/shipyard {peer['wall_s'] / max(ours['wall_s'], 1e-9):.2f}x"
        )
    if args.json:
        rows = {name: [asdict(r) for r in rs] for name, rs in results.items()}
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
