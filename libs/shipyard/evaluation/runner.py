"""The evaluation runner: ``run_evaluation(plan)`` end to end, and ``python -m shipyard.evaluation.runner``.

One run: resolve tasks (closest-name hints for typos) -> load each test split (malformed rows skipped
and reported) -> build prompts/requests -> take what the cache already has -> run the rest in shards
(``execution``) -> cache each finished shard -> score per task -> group and dimension summaries ->
``report.json`` + per-sample files. Failed samples are counted and excluded; cancellation stops between
shards, keeps every finished shard in the cache (a rerun continues from there) and raises ``Cancelled``.

The command line is what the operator's Job runs (``shipyard_operator.contract.EVALUATION_COMMAND``);
with ``--k8s-job`` it reports the scores by annotating its own Job (``SCORES_ANNOTATION``).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from shipyard.errors import Cancelled, InvalidArgument, ShipyardError, Unavailable
from shipyard.evaluation.backends import ENGINE_PREFIX
from shipyard.evaluation.cache import ResultCache, config_key, fingerprint, model_identity
from shipyard.evaluation.datasets import load_split, split_uri
from shipyard.evaluation.execution import BackendSpec, ShardResult, make_executor, make_shards, split_results
from shipyard.evaluation.prompts import DEFAULT_SEED, SampleRequests, build_requests
from shipyard.evaluation.report import EvaluationReport, TaskReport, write_report
from shipyard.evaluation.scoring import aggregate_group, dimension_summary, score
from shipyard.evaluation.tasks import TaskRegistry, TaskSpec
from shipyard.evaluation.types import CodeSandbox, ModelBackend, ModelResult, OutputType, TaskResult
from shipyard.resources.evaluation_job import SCORES_ANNOTATION
from shipyard.storage import Storage, join

if TYPE_CHECKING:
    from shipyard.config import StorageConfig

__all__ = ["SCORES_ANNOTATION", "EvalProgress", "EvaluationPlan", "TaskProgress", "main", "run_evaluation"]

DEFAULT_DATA_PATH = "datasets/eval"  # under the storage root, when no data root is given


@dataclass(frozen=True)
class EvaluationPlan:
    """What to evaluate and how. ``data_root`` holds the benchmark files; the cache lives under
    ``storage_root``/evaluations/cache; ``output_uri`` (optional) receives the report."""

    model: str
    tasks: tuple[str, ...]
    data_root: str
    storage_root: str
    model_name: str | None = None
    limit: int | None = None
    num_fewshot: int | None = None
    batch_size: int = 8
    seed: int = DEFAULT_SEED
    output_uri: str | None = None
    executor: Literal["local", "ray"] = "local"
    workers: int = 1
    ray_address: str | None = None
    device: str = "cpu"
    use_cache: bool = True
    storage_config: StorageConfig | None = None
    judge_model: str | None = None
    judge_model_name: str | None = None

    def validate(self) -> None:
        checks = [
            ("tasks", not self.tasks, "name at least one task"),
            ("batch_size", self.batch_size < 1, f"must be >= 1, got {self.batch_size}"),
            ("workers", self.workers < 1, f"must be >= 1, got {self.workers}"),
            ("limit", self.limit is not None and self.limit < 1, f"must be >= 1, got {self.limit}"),
            ("num_fewshot", (self.num_fewshot or 0) < 0, f"must be >= 0, got {self.num_fewshot}"),
            (
                "executor",
                self.executor not in ("local", "ray"),
                f"must be local or ray, not {self.executor!r}",
            ),
        ]
        for name, bad, why in checks:
            if bad:
                raise InvalidArgument.field(name, why)


@dataclass(frozen=True)
class TaskProgress:
    done: int
    total: int
    failed: int = 0
    cached: int = 0


@dataclass(frozen=True)
class EvalProgress:
    """Samples done/total per task (cached samples count as done) and overall."""

    tasks: Mapping[str, TaskProgress]

    @property
    def samples_done(self) -> int:
        return sum(t.done for t in self.tasks.values())

    @property
    def samples_total(self) -> int:
        return sum(t.total for t in self.tasks.values())


@dataclass
class _Task:
    spec: TaskSpec
    planned: list[SampleRequests]
    num_skipped: int
    skipped: tuple[str, ...]
    cache: ResultCache | None
    results: dict[str, list[ModelResult | None]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    cached: int = 0
    seconds: float = 0.0

    @property
    def pending(self) -> list[SampleRequests]:
        return [p for p in self.planned if p.sample.id not in self.results]


def _identity(plan: EvaluationPlan, storage: Storage) -> str:
    ref = plan.model
    if ref.startswith(("http://", "https://", "grpc://")):  # an endpoint: its address + served name
        return model_identity(ref, model_name=plan.model_name)
    if ref.startswith(ENGINE_PREFIX):  # the same weights as without the prefix (same scores too)
        return _identity(replace(plan, model=ref.removeprefix(ENGINE_PREFIX)), storage)
    if ref.startswith("model:"):
        from shipyard.models import ModelRegistry

        record = ModelRegistry(storage, plan.storage_root).resolve_record(ref, field="model")
        return model_identity(record.ref, resolved_uri=record.uri)  # versions are immutable
    if ref.startswith("s3://"):
        return model_identity(ref) + "#" + fingerprint([(o.uri, o.size) for o in storage.list(ref)])
    from shipyard.models.local import resolve_local_model

    local = resolve_local_model(ref, storage_config=plan.storage_config, field="model")
    return model_identity(ref, local_dir=local.directory, gguf_file=local.gguf_file)


def _prepare(spec: TaskSpec, plan: EvaluationPlan, storage: Storage, identity: str) -> _Task:
    test = load_split(spec, "test", data_root=plan.data_root, storage=storage, limit=plan.limit)
    shots = spec.num_fewshot if plan.num_fewshot is None else plan.num_fewshot
    pool = ()
    if shots and not spec.fewshot_examples and "fewshot" in spec.splits:
        pool = load_split(spec, "fewshot", data_root=plan.data_root, storage=storage).samples
    planned = build_requests(spec, test.samples, fewshot=pool, num_fewshot=shots, seed=plan.seed)
    cache = None
    if plan.use_cache:
        dataset = fingerprint(storage.read_bytes(split_uri(spec.splits["test"], plan.data_root)).hex())
        key = config_key(spec, dataset=dataset, num_fewshot=shots, seed=plan.seed)
        cache = ResultCache(storage, plan.storage_root, model=identity, task=spec.name, config=key)
    task = _Task(spec, planned, test.num_skipped, tuple(str(s) for s in test.skipped_examples), cache)
    if cache is not None:
        for item in planned:
            hit = cache.lookup(item)
            if hit is not None:
                task.results[item.sample.id] = list(hit)
                task.cached += 1
    return task


def _absorb(task: _Task, done: ShardResult) -> None:
    computed = split_results(done, {p.sample.id: p for p in task.planned})
    for item, chunk in computed:
        task.results[item.sample.id] = list(chunk)
        if any(r is None for r in chunk):
            task.errors[item.sample.id] = done.error or "the model backend failed on this sample"
    task.seconds += done.seconds
    if task.cache is not None:
        task.cache.store(computed)  # right away: a cancelled or crashed run keeps this shard


def _progress(tasks: Sequence[_Task]) -> EvalProgress:
    return EvalProgress(
        {t.spec.name: TaskProgress(len(t.results), len(t.planned), len(t.errors), t.cached) for t in tasks}
    )


def _score(task: _Task, sandbox: CodeSandbox | None, judge: ModelBackend | None) -> TaskResult:
    flat = [r for p in task.planned for r in task.results.get(p.sample.id, [None] * len(p.requests))]
    if task.spec.output_type is OutputType.CODE and sandbox is None:
        from shipyard.evaluation.sandbox import ProcessSandbox

        sandbox = ProcessSandbox()
    result = score(task.spec, task.planned, flat, sandbox=sandbox)
    if task.errors:  # the real reason beats scoring's generic one
        records = tuple(
            replace(r, extra={"error": task.errors[r.sample_id]}) if r.sample_id in task.errors else r
            for r in result.records
        )
        result = replace(result, records=records)
    if result.needs_judge and judge is not None:
        from shipyard.evaluation.judge import judge_task

        result = judge_task(result, task.planned, judge)
    return result


def run_evaluation(
    plan: EvaluationPlan,
    *,
    storage: Storage,
    progress: Callable[[EvalProgress], None] | None = None,
    cancel: threading.Event | None = None,
    backend: ModelBackend | None = None,
    sandbox: CodeSandbox | None = None,
) -> EvaluationReport:
    """Evaluate ``plan.model`` on ``plan.tasks``; see the module docstring.

    ``backend`` replaces opening ``plan.model`` (runs in this process); ``sandbox`` runs HumanEval
    programs (default: ``ProcessSandbox``). Raises ``InvalidArgument`` for unknown tasks or bad
    settings, ``NotFound`` for a missing model or data file, ``Cancelled`` when ``cancel`` was set.
    """
    started = time.perf_counter()
    plan.validate()
    cancel = cancel or threading.Event()
    specs = TaskRegistry.builtin().resolve(plan.tasks)
    identity = _identity(plan, storage)
    tasks = [_prepare(spec, plan, storage, identity) for spec in specs]
    prepared_s = time.perf_counter() - started
    report = progress or (lambda _: None)
    report(_progress(tasks))

    shards = [s for t in tasks for s in make_shards(t.spec.name, t.pending, plan.batch_size)]
    by_name = {t.spec.name: t for t in tasks}
    if shards:
        spec = BackendSpec(
            plan.model, plan.model_name, plan.batch_size, plan.device, plan.storage_root, plan.storage_config
        )
        executor = make_executor(
            plan.executor, spec, workers=plan.workers, backend=backend, ray_address=plan.ray_address
        )
        try:
            for done in executor.run(shards, cancel):
                _absorb(by_name[done.shard.task], done)
                report(_progress(tasks))
        finally:
            executor.close()
    if cancel.is_set():
        p = _progress(tasks)
        raise Cancelled(
            f"evaluation cancelled after {p.samples_done} of {p.samples_total} samples; "
            "finished samples are cached and a rerun continues from them"
        )
    model_s = time.perf_counter() - started - prepared_s

    judge = None
    if plan.judge_model is not None and any(s.output_type is OutputType.GENERATE_UNTIL for s in specs):
        judge = BackendSpec(plan.judge_model, plan.judge_model_name, plan.batch_size, plan.device).open()
    results = [_score(t, sandbox, judge) for t in tasks]
    return _finish(plan, identity, tasks, results, storage, started, prepared_s, model_s)


def _finish(
    plan: EvaluationPlan,
    identity: str,
    tasks: Sequence[_Task],
    results: Sequence[TaskResult],
    storage: Storage,
    started: float,
    prepared_s: float,
    model_s: float,
) -> EvaluationReport:
    lines: list[TaskReport] = []
    members: dict[str, list[TaskResult]] = {}
    for task, result in zip(tasks, results, strict=True):
        extra = {"num_skipped": task.num_skipped, "skipped_examples": task.skipped}
        lines.append(
            TaskReport.from_result(result, cached_samples=task.cached, seconds=task.seconds, **extra)
        )
        if result.group is not None:
            members.setdefault(result.group, []).append(result)
    collapsed = [r for r in results if r.group is None]
    for group, subs in members.items():
        grouped = aggregate_group(group, subs)
        collapsed.append(grouped)
        lines.append(TaskReport.from_result(grouped, subtasks=tuple(s.task for s in subs)))
    config = {
        "tasks": list(plan.tasks),
        "limit": plan.limit,
        "numFewshot": plan.num_fewshot,
        "batchSize": plan.batch_size,
        "seed": plan.seed,
        "executor": plan.executor,
        "workers": plan.workers,
        "dataRoot": plan.data_root,
        "modelName": plan.model_name,
        "judgeModel": plan.judge_model,
    }
    report = EvaluationReport(
        model=plan.model,
        model_identity=identity,
        config=config,
        tasks=tuple(lines),
        dimensions={str(d): v for d, v in dimension_summary(collapsed).items()},
        timings={
            "prepareSeconds": round(prepared_s, 3),
            "modelSeconds": round(model_s, 3),
            "totalSeconds": round(time.perf_counter() - started, 3),
        },
        created_at=datetime.now(UTC).isoformat(),
    )
    if plan.output_uri:
        report = replace(report, uri=write_report(report, storage, plan.output_uri))
    return report


# -- command line (what the operator's Job runs) -------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m shipyard.evaluation.runner", description=__doc__.split("\n")[0]
    )
    p.add_argument("--model", required=True, help="Model reference, path/URI or http(s) endpoint.")
    p.add_argument("--tasks", required=True, help="Comma-separated task or group names.")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--output-uri", default=None, help="Where report.json goes.")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--num-fewshot", type=int, default=None)
    p.add_argument("--model-name", default=None, help="Served model name (endpoints).")
    p.add_argument(
        "--data-root", default=None, help=f"Benchmark files; default <storage root>/{DEFAULT_DATA_PATH}."
    )
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--judge-model", default=None)
    p.add_argument("--judge-model-name", default=None)
    p.add_argument("--k8s-job", default=None, help="Annotate this Job with the scores (in-cluster).")
    p.add_argument("--k8s-namespace", default=None)
    return p


def annotate_job(job: str, namespace: str, payload: Mapping[str, Any]) -> None:
    """Set ``SCORES_ANNOTATION`` on Job ``namespace/job`` (in-cluster credentials, else kubeconfig)."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config
    from kubernetes.client.exceptions import ApiException

    configuration = k8s.Configuration()
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)
    except k8s_config.ConfigException:
        k8s_config.load_kube_config(client_configuration=configuration)
    body = {"metadata": {"annotations": {SCORES_ANNOTATION: json.dumps(dict(payload))}}}
    with k8s.ApiClient(configuration) as api:
        try:
            k8s.BatchV1Api(api).patch_namespaced_job(
                job, namespace, body, _request_timeout=30, _preload_content=False
            )  # the reply is not needed; not parsing it keeps us independent of the Job schema
        except ApiException as exc:
            raise Unavailable(
                f"could not annotate Job {namespace}/{job} with the scores: {exc.reason}"
            ) from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run one evaluation; print ``{"scores", "reportUri"}`` as the last stdout line; 0 on success."""
    from shipyard.config import load_config
    from shipyard.storage.routing import RoutingStorage

    args = _parser().parse_args(argv)
    try:
        if (args.k8s_job is None) != (args.k8s_namespace is None):
            raise InvalidArgument.field("k8s_namespace", "--k8s-job and --k8s-namespace go together")
        config = load_config()
        root = config.storage.root
        plan = EvaluationPlan(
            model=args.model,
            tasks=tuple(t.strip() for t in args.tasks.split(",") if t.strip()),
            data_root=args.data_root or join(root, DEFAULT_DATA_PATH),
            storage_root=root,
            model_name=args.model_name,
            limit=args.limit,
            num_fewshot=args.num_fewshot,
            batch_size=args.batch_size,
            seed=args.seed,
            output_uri=args.output_uri,
            executor=args.executor,
            workers=args.workers,
            device=args.device,
            use_cache=not args.no_cache,
            storage_config=config.storage,
            judge_model=args.judge_model,
            judge_model_name=args.judge_model_name,
        )

        def show(p: EvalProgress) -> None:
            print(f"evaluated {p.samples_done}/{p.samples_total} samples", file=sys.stderr, flush=True)

        report = run_evaluation(plan, storage=RoutingStorage(config.storage), progress=show)
        payload = {"scores": report.scores(), "reportUri": report.uri}
        if args.k8s_job is not None:
            annotate_job(args.k8s_job, args.k8s_namespace, payload)
    except ShipyardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(payload), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
