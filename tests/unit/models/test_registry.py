"""The model registry: versions per name, lineage, reference resolution, and races between writers."""

from __future__ import annotations

import json
import pathlib
import threading

import pytest

from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound
from shipyard.models import Lineage, ModelRegistry, parse_model_ref
from shipyard.storage import LocalStorage, from_local_path, join


@pytest.fixture
def root(tmp_path: pathlib.Path) -> str:
    return from_local_path(tmp_path / "shipyard")


@pytest.fixture
def registry(root: str) -> ModelRegistry:
    return ModelRegistry(LocalStorage(), root)


def lineage(job: str = "pretrain-1") -> Lineage:
    return Lineage(
        dataset_uri="file:///data/datasets/wiki",
        job_name=job,
        spec={"model": "llama-tiny", "hyperparameters": {"steps": 100}},
        metrics={"loss": 3.25, "tokens": 1_000_000},
    )


def test_versions_count_up_per_name_and_the_latest_wins(registry: ModelRegistry, root: str) -> None:
    first = registry.register("llama-tiny-pretrain", f"{root}/models/job-1", lineage=lineage("job-1"))
    second = registry.register("llama-tiny-pretrain", f"{root}/models/job-2", lineage=lineage("job-2"))
    other = registry.register("other", f"{root}/models/job-3")

    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert registry.get("llama-tiny-pretrain").uri == f"{root}/models/job-2"
    assert registry.get("llama-tiny-pretrain", 1).lineage.job_name == "job-1"
    assert [(r.name, r.version) for r in registry.list()] == [
        ("llama-tiny-pretrain", 1),
        ("llama-tiny-pretrain", 2),
        ("other", 1),
    ]
    assert [r.version for r in registry.list("llama-tiny-pretrain")] == [1, 2]


def test_records_are_json_next_to_the_artifacts_and_keep_lineage(registry: ModelRegistry, root: str) -> None:
    registry.register("m", "/tmp/models/m", lineage=lineage(), tags={"stage": "pretrain"})
    path = pathlib.Path(LocalStorage().local_path(join(root, "registry/models/m/1.json")) or "")
    data = json.loads(path.read_text())

    assert data["uri"] == "file:///tmp/models/m"  # normalized on the way in
    assert data["lineage"]["metrics"]["loss"] == 3.25
    assert data["lineage"]["spec"]["model"] == "llama-tiny"
    assert data["tags"] == {"stage": "pretrain"}
    assert registry.get("m") == registry.list("m")[0]


def test_resolve_accepts_references_names_and_uris(registry: ModelRegistry) -> None:
    registry.register("m", "file:///models/a")
    registry.register("m", "file:///models/b")

    assert registry.resolve("model:m") == "file:///models/b"
    assert registry.resolve("model:m@1") == "file:///models/a"
    assert registry.resolve("m") == "file:///models/b"
    assert registry.resolve("s3://bucket/models/x") == "s3://bucket/models/x"
    assert registry.resolve("/models//c") == "file:///models/c"
    assert registry.resolve_record("model:m@2").ref == "model:m@2"


@pytest.mark.parametrize("ref", ["model:nope", "model:m@7", "nope"])
def test_unknown_references_are_not_found_naming_the_ref(registry: ModelRegistry, ref: str) -> None:
    registry.register("m", "file:///models/a")
    with pytest.raises(NotFound) as err:
        registry.resolve(ref, field="spec.model")
    assert repr(ref) in str(err.value)


@pytest.mark.parametrize("ref", ["model:@", "model:", "model:x@abc", "model:x@0", "model:X", "a/b", ""])
def test_malformed_references_name_the_field(registry: ModelRegistry, ref: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        registry.resolve(ref, field="spec.baseModel")
    assert [v.field for v in err.value.violations] == ["spec.baseModel"]


def test_parse_model_ref_reads_name_and_version() -> None:
    assert parse_model_ref("model:llama-7b@12") == ("llama-7b", 12)
    assert parse_model_ref("llama-7b") == ("llama-7b", None)
    assert str(parse_model_ref("model:x@3")) == "model:x@3"


def test_adapters_pin_their_base_model_to_the_version_of_the_day(registry: ModelRegistry) -> None:
    registry.register("base", "file:///models/base-1")
    adapter = registry.register("chat-lora", "file:///adapters/a", kind="adapter", base_model="model:base")
    registry.register("base", "file:///models/base-2")

    assert adapter.base_model == "model:base@1"
    assert registry.resolve(registry.get("chat-lora").base_model or "") == "file:///models/base-1"


def test_invalid_registrations_name_the_field(registry: ModelRegistry) -> None:
    cases = [
        ({"name": "Bad Name", "uri": "file:///m"}, "name"),
        ({"name": "ok", "uri": "ftp://host/m"}, "uri"),
        ({"name": "ok", "uri": "file:///m", "kind": "adapter"}, "base_model"),
        ({"name": "ok", "uri": "file:///m", "base_model": "model:missing"}, None),
        ({"name": "ok", "uri": "file:///m", "lineage": {"job": "x"}}, "lineage.job"),
        ({"name": "ok", "uri": "file:///m", "kind": "dataset"}, "kind"),
        ({"name": "ok", "uri": "file:///m", "tags": {"stage": 3}}, "tags.stage"),
    ]
    for kwargs, field in cases:
        with pytest.raises((InvalidArgument, NotFound)) as err:
            registry.register(**kwargs)  # type: ignore[arg-type]
        if field is None:
            assert isinstance(err.value, NotFound) and "missing" in str(err.value)
        else:
            assert isinstance(err.value, InvalidArgument)
            assert field in [v.field for v in err.value.violations]
    assert registry.list() == []


def test_get_of_an_unknown_name_or_version_says_what_exists(registry: ModelRegistry) -> None:
    with pytest.raises(NotFound, match="no model named 'ghost'"):
        registry.get("ghost")
    registry.register("m", "file:///a")
    with pytest.raises(NotFound, match=r"no version 4 \(versions: 1\)"):
        registry.get("m", 4)


def test_a_corrupt_record_names_its_file(registry: ModelRegistry, root: str) -> None:
    LocalStorage().write_text(join(root, "registry/models/m/1.json"), "{not json")
    with pytest.raises(FailedPrecondition, match="registry/models/m/1.json"):
        registry.get("m")


def test_concurrent_registrations_each_get_their_own_version(root: str) -> None:
    # Separate registry objects, as separate job drivers would have; all start together.
    workers = 8
    barrier = threading.Barrier(workers)
    records = []

    def register(i: int) -> None:
        barrier.wait()
        records.append(ModelRegistry(LocalStorage(), root).register("race", f"file:///models/{i}"))

    threads = [threading.Thread(target=register, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    registry = ModelRegistry(LocalStorage(), root)
    assert sorted(r.version for r in records) == list(range(1, workers + 1))
    expected = sorted(f"file:///models/{i}" for i in range(workers))
    assert sorted(r.uri for r in registry.list("race")) == expected


def test_create_if_absent_never_replaces_an_existing_object(root: str) -> None:
    storage, uri = LocalStorage(), join(root, "x.json")
    assert storage.write_bytes_if_absent(uri, b"first") is True
    assert storage.write_bytes_if_absent(uri, b"second") is False
    assert storage.read_bytes(uri) == b"first"
    assert [o.uri for o in storage.list(root)] == [uri]  # no temporary file left behind


@pytest.mark.integration
def test_registry_on_s3_versions_resolves_and_refuses_to_overwrite(s3_env) -> None:  # type: ignore[no-untyped-def]
    registry = ModelRegistry(s3_env.storage, s3_env.root)
    registry.register("m", f"{s3_env.root}/models/job-1", lineage=lineage("job-1"))
    registry.register("m", f"{s3_env.root}/models/job-2", lineage=lineage("job-2"))

    assert registry.resolve("model:m") == f"{s3_env.root}/models/job-2"
    assert registry.get("m", 1).lineage.job_name == "job-1"
    assert [r.version for r in ModelRegistry(s3_env.storage, s3_env.root).list()] == [1, 2]

    taken = f"{s3_env.root}/registry/models/m/2.json"
    assert s3_env.storage.write_bytes_if_absent(taken, b"{}") is False
    assert json.loads(s3_env.storage.read_text(taken))["uri"] == f"{s3_env.root}/models/job-2"
