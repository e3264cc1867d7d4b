"""Cache keys and entries: what makes two runs share results, and what never may."""

from __future__ import annotations

import pathlib

from shipyard.evaluation.cache import (
    ResultCache,
    config_key,
    decode_result,
    encode_result,
    model_identity,
)
from shipyard.evaluation.prompts import SampleRequests
from shipyard.evaluation.tasks import TaskRegistry
from shipyard.evaluation.types import GenerationResult, LoglikelihoodRequest, LoglikelihoodResult, Sample
from shipyard.storage import LocalStorage, from_local_path


def test_model_identity_tracks_weights_and_endpoints(tmp_path: pathlib.Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"1234")
    before = model_identity(str(tmp_path), local_dir=tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"12345")
    assert model_identity(str(tmp_path), local_dir=tmp_path) != before
    a = model_identity("http://127.0.0.1:8000/v1/", model_name="a")
    assert a == "endpoint:http://127.0.0.1:8000/v1#a"
    assert a != model_identity("http://127.0.0.1:8000/v1", model_name="b")


def test_config_key_covers_shots_seed_and_data_but_not_the_limit() -> None:
    task = TaskRegistry.builtin().get("gsm8k")
    base = config_key(task, dataset="d1", num_fewshot=5, seed=1)
    assert base == config_key(task, dataset="d1", num_fewshot=5, seed=1)
    others = {
        config_key(task, dataset="d2", num_fewshot=5, seed=1),
        config_key(task, dataset="d1", num_fewshot=0, seed=1),
        config_key(task, dataset="d1", num_fewshot=5, seed=2),
        config_key(TaskRegistry.builtin().get("gsm8k_cot"), dataset="d1", num_fewshot=5, seed=1),
    }
    assert base not in others and len(others) == 4


def test_results_round_trip_and_changed_requests_miss(tmp_path: pathlib.Path) -> None:
    for result in (LoglikelihoodResult(-1.5, True, 3), GenerationResult("42", "stop")):
        assert decode_result(encode_result(result)) == result
    root = from_local_path(tmp_path)
    item = SampleRequests(Sample("t/test/0", {}), "p", (LoglikelihoodRequest("p", " a"),))
    cache = ResultCache(LocalStorage(), root, model="m", task="t", config="c")
    assert cache.store([(item, [LoglikelihoodResult(-1.0, False, 1)]), (item, [None])]) == 1

    fresh = ResultCache(LocalStorage(), root, model="m", task="t", config="c")
    assert fresh.lookup(item) == [LoglikelihoodResult(-1.0, False, 1)]
    changed = SampleRequests(item.sample, "p", (LoglikelihoodRequest("p2", " a"),))
    assert fresh.lookup(changed) is None
    assert ResultCache(LocalStorage(), root, model="other", task="t", config="c").lookup(item) is None
