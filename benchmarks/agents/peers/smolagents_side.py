"""smolagents' ``ToolCallingAgent`` with its Python interpreter tool, on GSM8K questions.

    python peers/smolagents_side.py --endpoint http://127.0.0.1:PORT/v1 --model NAME \
        --questions q.jsonl --out out.jsonl [--max-steps 4]

A failed tool call is a step whose ``error`` is set (a call that did not parse, named no tool, or raised).
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--questions", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()

    from smolagents import OpenAIServerModel, PythonInterpreterTool, ToolCallingAgent
    from smolagents.memory import ActionStep

    model = OpenAIServerModel(
        model_id=args.model, api_base=args.endpoint, api_key="-", max_tokens=args.max_tokens, temperature=0.0
    )
    with open(args.questions, encoding="utf-8") as f, open(args.out, "w", encoding="utf-8") as out:
        for line in f:
            q = json.loads(line)
            agent = ToolCallingAgent(
                tools=[PythonInterpreterTool()], model=model, max_steps=args.max_steps, verbosity_level=0
            )
            started = time.monotonic()
            error = None
            try:
                answer = agent.run(q["question"])
            except Exception as exc:  # the framework's own failure is a result, not a crash of the side
                answer, error = "", f"{type(exc).__name__}: {exc}"
            steps = [s for s in agent.memory.steps if isinstance(s, ActionStep)]
            row = {
                "id": q["id"],
                "answer": "" if answer is None else str(answer),
                "steps": len(steps),
                "tool_calls": sum(len(s.tool_calls or []) for s in steps),
                "failed_tool_calls": sum(1 for s in steps if s.error is not None),
                "wall_s": time.monotonic() - started,
                "error": error,
            }
            out.write(json.dumps(row) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
