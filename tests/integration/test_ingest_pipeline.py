"""The ingest pipeline end to end on real text: outputs, dedup, quarantine, resume, S3, cancel."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml

from shipyard.data.executor.runner import run_ingest
from shipyard.data.manifest import open_token_shard, read_manifest
from shipyard.data.steps.writers import read_documents
from shipyard.errors import Cancelled, NotFound
from shipyard.storage.local import LocalStorage
from tests.integration.ingest_fixtures import build_corpus, job

pytestmark = pytest.mark.integration


def _docs(output: pathlib.Path) -> list[tuple[str, str]]:
    storage = LocalStorage()
    manifest = read_manifest(storage, str(output))
    return [
        (d.id, d.text)
        for s in manifest.document_shards
        for d in read_documents(storage, manifest.resolve(s.uri))
    ]


@pytest.fixture
def corpus(shared_data: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    build_corpus(shared_data, tmp_path / "in")
    return tmp_path / "in"


def test_pipeline_writes_a_dataset_that_training_can_read(
    corpus: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    out = tmp_path / "out"
    result = run_ingest(job(str(corpus), str(out)))

    stats = {s.name: s for s in result.steps}
    # part-copy.txt repeats part-0.txt paragraph for paragraph: exact dedup removes every one.
    per_file = len([p for p in (corpus / "part-0.txt").read_text().split("\n\n") if p.strip()])
    assert stats["exact_dedup"].dropped["exact_duplicate"] >= per_file
    assert result.quarantined == 2
    quarantined = [json.loads(line) for f in (out / "quarantine").iterdir() for line in f.open()]
    assert "{not json" in {q["record"].strip() for q in quarantined}  # the raw record is kept, not lost

    docs = _docs(out)
    assert len(docs) == result.documents_written == result.manifest.num_documents
    assert len({t for _, t in docs}) == len(docs), "no exact duplicates survive"
    manifest = read_manifest(LocalStorage(), str(out))
    assert manifest.num_tokens > 0 and manifest.seq_len == 64
    first = open_token_shard(LocalStorage(), manifest, 0)
    assert first.shape[1] == 64 and int(first.max()) < manifest.tokenizer.vocab_size
    assert not (out / ".shipyard" / "work").exists() or not any((out / ".shipyard" / "work").rglob("*.jsonl"))


def test_results_do_not_depend_on_worker_count(corpus: pathlib.Path, tmp_path: pathlib.Path) -> None:
    steps = [{"type": "normalize"}, {"type": "exact_dedup"}, {"type": "minhash_dedup"}]
    one = run_ingest(job(str(corpus), str(tmp_path / "a"), steps=steps), workers=1)
    two = run_ingest(job(str(corpus), str(tmp_path / "b"), steps=steps, workers=2))
    assert sorted(_docs(tmp_path / "a")) == sorted(_docs(tmp_path / "b"))
    assert [s.to_dict() for s in one.steps] == [s.to_dict() for s in two.steps]


def test_rerun_of_a_finished_job_does_nothing(corpus: pathlib.Path, tmp_path: pathlib.Path) -> None:
    spec = job(str(corpus), str(tmp_path / "out"), steps=[{"type": "normalize"}])
    first = run_ingest(spec)
    manifest_mtime = (tmp_path / "out" / "manifest.json").stat().st_mtime_ns
    again = run_ingest(spec)
    assert again.documents_written == first.documents_written
    assert (tmp_path / "out" / "manifest.json").stat().st_mtime_ns == manifest_mtime


def test_crashed_run_resumes_without_redoing_or_duplicating(
    corpus: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    out = tmp_path / "out"
    steps = [{"type": "normalize"}, {"type": "exact_dedup"}, {"type": "length", "minChars": 10}]
    spec_file = tmp_path / "job.yaml"
    spec_file.write_text(
        yaml.safe_dump(job(str(corpus), str(out), steps=steps).model_dump(mode="json", by_alias=True))
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shipyard",
            "--data-dir",
            str(tmp_path / "data"),
            "ingest",
            "run",
            "-f",
            str(spec_file),
        ]
        + ["--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(".shipyard/work/*/stage-0/*.done.json")):
            assert proc.poll() is None, "the run ended before it could be interrupted"
            assert time.monotonic() < deadline, "no shard finished in time"
            threading.Event().wait(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # a crash: no cleanup runs
    finally:
        proc.wait()
    assert not (out / "manifest.json").exists()

    resumed = run_ingest(job(str(corpus), str(out), steps=steps))
    assert resumed.resumed_tasks >= 1
    clean = run_ingest(job(str(corpus), str(tmp_path / "clean"), steps=steps))
    assert sorted(_docs(out)) == sorted(_docs(tmp_path / "clean"))
    assert resumed.documents_written == clean.documents_written


def test_output_on_s3(corpus: pathlib.Path, s3_env) -> None:  # type: ignore[no-untyped-def]
    out = f"{s3_env.root}/datasets/d1"
    result = run_ingest(
        job(str(corpus), out, steps=[{"type": "normalize"}, {"type": "exact_dedup"}]),
        storage_config=s3_env.config,
    )
    manifest = read_manifest(s3_env.storage, out)
    assert manifest.num_documents == result.documents_written > 0
    keys = [o.uri for o in s3_env.storage.list(out)]
    assert f"{out}/manifest.json" in keys and not any(
        "/.shipyard/work/" in k and k.endswith(".jsonl") for k in keys
    )


def test_missing_input_is_not_found(tmp_path: pathlib.Path) -> None:
    with pytest.raises(NotFound) as exc:
        run_ingest(job(str(tmp_path / "nope"), str(tmp_path / "out"), steps=[]))
    assert "nope" in str(exc.value)


def test_cancel_leaves_no_partial_output(corpus: pathlib.Path, tmp_path: pathlib.Path) -> None:
    out = tmp_path / "out"
    cancel = threading.Event()

    def on_progress(p) -> None:  # type: ignore[no-untyped-def]
        if p.completed >= 1:
            cancel.set()

    with pytest.raises(Cancelled):
        run_ingest(
            job(str(corpus), str(out), steps=[{"type": "normalize"}, {"type": "exact_dedup"}]),
            on_progress=on_progress,
            cancel=cancel,
        )
    left = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert left == []
