"""The evaluation runner end to end on a tiny random model: reports, cache reuse, failures, cancellation."""

from __future__ import annotations

import json
import math
import pathlib
import shutil
import threading
from collections.abc import Sequence

import pytest

from shipyard.errors import Cancelled, InvalidArgument, NotFound, Unavailable
from shipyard.evaluation.backends import RequestsFailed
from shipyard.evaluation.backends.hf import HFBackend
from shipyard.evaluation.report import read_report
from shipyard.evaluation.runner import EvalProgress, EvaluationPlan, run_evaluation
from shipyard.evaluation.types import (
    GenerationRequest,
    GenerationResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
)
from shipyard.storage import LocalStorage, from_local_path
from tests.unit.evaluation.tiny_hf_model import build_tiny_model

MC_TASKS = ("hellaswag", "mmlu_anatomy", "mmlu_astronomy", "truthfulqa_mc1", "truthfulqa_mc2")


@pytest.fixture(scope="module")
def model_dir(shared_data: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return build_tiny_model(shared_data, tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def hf(model_dir: pathlib.Path) -> HFBackend:
    return HFBackend.load(model_dir, batch_size=8)


class Counting:
    """Test instrumentation: forwards to a real backend and counts the requests it is asked."""

    def __init__(self, inner: HFBackend) -> None:
        self.inner, self.name, self.requests = inner, inner.name, 0

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        self.requests += len(requests)
        return self.inner.loglikelihood(requests)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.requests += len(requests)
        return self.inner.generate(requests)


class FlakyEndpoint(Counting):
    """Like an endpoint whose retries ran out on each call's first request: partial results, typed error."""

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        results: list[LoglikelihoodResult | None] = list(super().loglikelihood(requests))
        results[0] = None
        raise RequestsFailed(results, {0: Unavailable("HTTP 503 after 3 retries")})


def plan_for(shared_data: pathlib.Path, root: pathlib.Path, model: str, **kw: object) -> EvaluationPlan:
    base: dict[str, object] = {
        "model": model,
        "tasks": MC_TASKS,
        "data_root": from_local_path(shared_data / "eval"),
        "storage_root": from_local_path(root),
        "limit": 3,
        "batch_size": 2,
    }
    return EvaluationPlan(**{**base, **kw})  # type: ignore[arg-type]


def test_report_has_metrics_with_stderr_groups_dimensions_and_sample_files(
    shared_data: pathlib.Path, tmp_path: pathlib.Path, model_dir: pathlib.Path
) -> None:
    out = from_local_path(tmp_path / "report")
    seen: list[EvalProgress] = []
    plan = plan_for(shared_data, tmp_path / "root", str(model_dir), output_uri=out)
    report = run_evaluation(plan, storage=LocalStorage(), progress=seen.append)

    assert [t.task for t in report.tasks] == [*MC_TASKS, "mmlu"]
    hellaswag = report.task("hellaswag")
    assert hellaswag.num_samples == 3 and set(hellaswag.metrics) == {"acc", "acc_norm"}
    assert 0.0 <= hellaswag.metrics["acc"] <= 1.0 and not math.isnan(hellaswag.stderr["acc"])
    assert 0.0 < report.task("truthfulqa_mc2").metrics["mc2"] < 1.0
    mmlu = report.task("mmlu")  # the group: subjects weighted by size
    assert mmlu.subtasks == ("mmlu_anatomy", "mmlu_astronomy") and mmlu.num_samples == 6
    subjects = [report.task(s).metrics["acc"] for s in mmlu.subtasks]
    assert mmlu.metrics["acc"] == pytest.approx(sum(subjects) / 2)
    assert set(report.dimensions) == {"reasoning", "language", "knowledge", "safety"}
    assert report.scores()["hellaswag/acc_norm"] == hellaswag.metrics["acc_norm"]
    assert seen[-1].samples_done == seen[-1].samples_total == 15
    assert seen[0].samples_done == 0

    again = read_report(LocalStorage(), out)
    assert again.scores() == report.scores() and again.dimensions == report.dimensions
    lines = (tmp_path / "report/samples/hellaswag.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 3 and {"prompt", "prediction", "target", "correct"} <= set(first)
    assert first["prediction"] in first["logprobs"] or isinstance(first["correct"], bool)


def test_cached_rerun_makes_no_model_calls_and_raising_the_limit_computes_only_new_samples(
    shared_data: pathlib.Path, tmp_path: pathlib.Path, model_dir: pathlib.Path, hf: HFBackend
) -> None:
    plan = plan_for(shared_data, tmp_path, str(model_dir), tasks=("hellaswag", "mmlu_anatomy"))
    first = Counting(hf)
    before = run_evaluation(plan, storage=LocalStorage(), backend=first)
    assert first.requests == 3 * 4 + 3 * 4  # four choices per sample

    rerun = Counting(hf)
    after = run_evaluation(plan, storage=LocalStorage(), backend=rerun)
    assert rerun.requests == 0
    assert after.scores() == before.scores()
    assert after.task("hellaswag").cached_samples == 3

    more = Counting(hf)
    bigger = run_evaluation(
        plan_for(shared_data, tmp_path, str(model_dir), tasks=("hellaswag",), limit=5),
        storage=LocalStorage(),
        backend=more,
    )
    assert more.requests == 2 * 4  # samples 3 and 4 only
    assert bigger.task("hellaswag").num_samples == 5

    other_seed = Counting(hf)
    run_evaluation(
        plan_for(shared_data, tmp_path, str(model_dir), tasks=("mmlu_anatomy",), num_fewshot=1),
        storage=LocalStorage(),
        backend=other_seed,
    )
    assert other_seed.requests == 3 * 4  # a different prompt config is a different cache entry


def test_failed_endpoint_samples_are_counted_excluded_and_the_run_continues(
    shared_data: pathlib.Path, tmp_path: pathlib.Path, model_dir: pathlib.Path, hf: HFBackend
) -> None:
    out = from_local_path(tmp_path / "out")
    plan = plan_for(shared_data, tmp_path, str(model_dir), tasks=("hellaswag",), limit=4, output_uri=out)
    report = run_evaluation(plan, storage=LocalStorage(), backend=FlakyEndpoint(hf))
    task = report.task("hellaswag")
    # Two shards of two samples: the first sample of each shard failed.
    assert task.num_failed == 2 and task.num_samples == 2
    healthy_records = [r for r in task.records if not r.failed]
    expected = sum(r.extra["metrics"]["acc"] for r in healthy_records) / 2
    assert task.metrics["acc"] == pytest.approx(expected)  # failed samples do not count as wrong
    data = json.loads((tmp_path / "out/report.json").read_text())
    assert data["numFailed"] == 2 and "excluded" in data["tasks"][0]["note"]
    record = json.loads((tmp_path / "out/samples/hellaswag.jsonl").read_text().splitlines()[0])
    assert record["failed"] is True and "503" in record["error"]

    # Failed samples are not cached: a rerun against a healthy backend computes exactly those.
    healthy = Counting(hf)
    fixed = run_evaluation(plan, storage=LocalStorage(), backend=healthy)
    assert healthy.requests == 2 * 4 and fixed.task("hellaswag").num_failed == 0


def test_cancel_keeps_finished_shards_for_the_rerun(
    shared_data: pathlib.Path, tmp_path: pathlib.Path, model_dir: pathlib.Path, hf: HFBackend
) -> None:
    plan = plan_for(shared_data, tmp_path, str(model_dir), tasks=("hellaswag",), limit=6)
    cancel = threading.Event()

    def stop_after_first_shard(p: EvalProgress) -> None:
        if p.samples_done >= 2:
            cancel.set()

    with pytest.raises(Cancelled, match="after 2 of 6 samples"):
        run_evaluation(
            plan, storage=LocalStorage(), backend=hf, progress=stop_after_first_shard, cancel=cancel
        )
    rest = Counting(hf)
    report = run_evaluation(plan, storage=LocalStorage(), backend=rest)
    assert rest.requests == 4 * 4 and report.task("hellaswag").cached_samples == 2


def test_malformed_rows_are_reported_and_skipped(
    shared_data: pathlib.Path, tmp_path: pathlib.Path, model_dir: pathlib.Path, hf: HFBackend
) -> None:
    data = tmp_path / "data"
    (data / "hellaswag").mkdir(parents=True)
    rows = (shared_data / "eval/hellaswag/val_first500.jsonl").read_text().splitlines()[:4]
    bad = json.loads(rows[1])
    bad["label"] = 7
    (data / "hellaswag/val_first500.jsonl").write_text(
        "\n".join([rows[0], json.dumps(bad), "{oops", *rows[2:]])
    )
    plan = plan_for(
        shared_data, tmp_path, str(model_dir), tasks=("hellaswag",), data_root=from_local_path(data)
    )
    task = run_evaluation(plan, storage=LocalStorage(), backend=hf).task("hellaswag")
    assert task.num_samples == 3 and task.num_skipped == 2
    assert "out of range" in task.skipped_examples[0] and "not valid JSON" in task.skipped_examples[1]


def test_bad_input_is_a_typed_error_naming_the_field(
    shared_data: pathlib.Path, tmp_path: pathlib.Path, model_dir: pathlib.Path
) -> None:
    with pytest.raises(InvalidArgument, match="did you mean 'hellaswag'") as err:
        run_evaluation(
            plan_for(shared_data, tmp_path, str(model_dir), tasks=("helaswag",)), storage=LocalStorage()
        )
    assert err.value.violations[0].field == "tasks"
    with pytest.raises(InvalidArgument) as err:
        run_evaluation(plan_for(shared_data, tmp_path, str(model_dir), batch_size=0), storage=LocalStorage())
    assert err.value.violations[0].field == "batch_size"
    with pytest.raises(NotFound, match="does not exist"):
        run_evaluation(plan_for(shared_data, tmp_path, str(tmp_path / "nope")), storage=LocalStorage())
    with pytest.raises(NotFound):  # a subject whose files are not in the data root
        run_evaluation(
            plan_for(shared_data, tmp_path, str(model_dir), tasks=("mmlu_virology",)), storage=LocalStorage()
        )


def test_retrained_model_in_the_same_directory_is_not_served_from_the_cache(
    shared_data: pathlib.Path, tmp_path: pathlib.Path, model_dir: pathlib.Path
) -> None:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    plan = plan_for(shared_data, tmp_path, str(copy), tasks=("mmlu_anatomy",))
    first = run_evaluation(plan, storage=LocalStorage())
    (copy / "config.json").write_text((copy / "config.json").read_text() + "\n")  # "retrained"
    second = run_evaluation(plan, storage=LocalStorage())
    assert first.model_identity != second.model_identity
    assert second.task("mmlu_anatomy").cached_samples == 0
