"""Inputs for ingest tests, built from the shared corpus with planted duplicates and bad records."""

from __future__ import annotations

import json
import pathlib
from typing import Any

from shipyard.data.spec import IngestJob, parse_job


def build_corpus(shared_data: pathlib.Path, root: pathlib.Path, *, files: int = 4) -> dict[str, Any]:
    """Text files cut from Shakespeare, one exact copy of a file, and a jsonl with 2 malformed lines."""
    root.mkdir(parents=True, exist_ok=True)
    paragraphs = [
        p.strip()
        for p in (shared_data / "corpus/tinyshakespeare/input.txt").read_text().split("\n\n")
        if len(p.strip()) > 200
    ]
    per = len(paragraphs) // (files * 4)
    for i in range(files):
        (root / f"part-{i}.txt").write_text("\n\n".join(paragraphs[i * per : (i + 1) * per]))
    (root / "part-copy.txt").write_text((root / "part-0.txt").read_text())  # every paragraph a duplicate
    udhr = [json.loads(line) for line in (shared_data / "corpus/udhr/udhr_sample.jsonl").open()][:40]
    lines = [json.dumps({"text": r["text"], "lang": r["lang"]}, ensure_ascii=False) for r in udhr]
    lines.insert(5, "{not json")
    lines.insert(9, json.dumps({"body": "no text field"}))
    (root / "udhr.jsonl").write_text("\n".join(lines) + "\n")
    return {"paragraphs_per_file": per, "malformed": 2}


def job(
    input_uri: str, output_uri: str, *, workers: int = 1, steps: list[dict[str, Any]] | None = None
) -> IngestJob:
    return parse_job(
        {
            "apiVersion": "shipyard.dev/v1alpha1",
            "kind": "IngestJob",
            "metadata": {"name": "test-job"},
            "spec": {
                "input": {"uri": input_uri, "textSplit": "paragraph"},
                "output": {"uri": output_uri, "format": "jsonl"},
                "steps": steps
                if steps is not None
                else [
                    {"type": "normalize"},
                    {"type": "pii_redact"},
                    {"type": "exact_dedup"},
                    {"type": "minhash_dedup"},
                    {"type": "train_tokenizer", "vocabSize": 600},
                    {"type": "tokenize", "seqLen": 64},
                ],
                "execution": {"workers": workers},
            },
        }
    )
