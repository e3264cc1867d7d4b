"""The same ingest job on the Ray executor gives the same dataset as local processes."""

from __future__ import annotations

import pathlib

import pytest

from shipyard.data.executor.runner import run_ingest
from shipyard.data.manifest import read_manifest
from shipyard.data.steps.writers import read_documents
from shipyard.storage.local import LocalStorage
from tests.fixtures.ray import needs_loopback_netns
from tests.integration.ingest_fixtures import build_corpus, job

pytestmark = [pytest.mark.integration, pytest.mark.ray, pytest.mark.slow]


def _docs(out: pathlib.Path) -> list[tuple[str, str]]:
    storage = LocalStorage()
    m = read_manifest(storage, str(out))
    return sorted(
        (d.id, d.text) for s in m.document_shards for d in read_documents(storage, m.resolve(s.uri))
    )


@needs_loopback_netns
def test_ray_executor_matches_local(
    shared_data: pathlib.Path, tmp_path: pathlib.Path, ray_cluster: None
) -> None:
    build_corpus(shared_data, tmp_path / "in")
    steps = [{"type": "normalize"}, {"type": "exact_dedup"}, {"type": "minhash_dedup"}]
    local = job(str(tmp_path / "in"), str(tmp_path / "local"), steps=steps)
    on_ray = job(str(tmp_path / "in"), str(tmp_path / "ray"), steps=steps, workers=2)
    on_ray = on_ray.model_copy(
        update={
            "spec": on_ray.spec.model_copy(
                update={"execution": on_ray.spec.execution.model_copy(update={"executor": "ray"})}
            )
        }
    )
    a = run_ingest(local)
    b = run_ingest(on_ray)
    assert _docs(tmp_path / "local") == _docs(tmp_path / "ray")
    assert [s.to_dict() for s in a.steps] == [s.to_dict() for s in b.steps]
