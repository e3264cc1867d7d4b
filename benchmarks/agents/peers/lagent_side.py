"""Lagent's ``ReAct`` agent with its ``PythonInterpreter`` action, on GSM8K questions.

    python peers/lagent_side.py --endpoint http://127.0.0.1:PORT/v1 --model NAME \
        --questions q.jsonl --out out.jsonl [--max-steps 4]

A failed tool call is an action whose return state is not success (unparsable action, unknown action,
or an interpreter error).
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

    from lagent.actions import ActionExecutor, PythonInterpreter
    from lagent.agents import ReAct
    from lagent.llms import GPTAPI
    from lagent.schema import ActionStatusCode

    class OpenAICompatible(GPTAPI):
        """Lagent's OpenAI client only accepts gpt/internlm/qwen model names; any other name is sent the
        way it sends gpt requests (the plain OpenAI chat API), which is what our endpoint speaks."""

        def generate_request_data(self, model_type, messages, gen_params, json_mode=False):  # type: ignore[no-untyped-def]
            header, data = super().generate_request_data("gpt", messages, gen_params, json_mode)
            data["model"] = model_type
            return header, data

    llm = OpenAICompatible(
        model_type=args.model,
        key="-",
        openai_api_base=args.endpoint.rstrip("/") + "/chat/completions",
        max_new_tokens=args.max_tokens,
        temperature=0.0,
        retry=1,
    )
    with open(args.questions, encoding="utf-8") as f, open(args.out, "w", encoding="utf-8") as out:
        for line in f:
            q = json.loads(line)
            agent = ReAct(
                llm=llm,
                action_executor=ActionExecutor(actions=[PythonInterpreter(timeout=10)]),
                max_turn=args.max_steps,
            )
            started = time.monotonic()
            error = None
            actions = []
            try:
                ret = agent.chat(q["question"])
                answer, actions = ret.response, ret.actions
            except Exception as exc:  # the framework's own failure is a result, not a crash of the side
                answer, error = "", f"{type(exc).__name__}: {exc}"
            tools = [a for a in actions if a.type != "FinishAction"]
            row = {
                "id": q["id"],
                "answer": answer or "",
                "steps": len(actions),
                "tool_calls": len(tools),
                "failed_tool_calls": sum(1 for a in tools if a.state != ActionStatusCode.SUCCESS),
                "wall_s": time.monotonic() - started,
                "error": error,
            }
            out.write(json.dumps(row) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
