"""Checkpoint storage: a checkpoint counts only once COMPLETE exists; the newest K are kept."""

from __future__ import annotations

import pathlib

import pytest

from shipyard.storage import from_local_path, join
from shipyard.storage.base import Storage
from shipyard.storage.local import LocalStorage
from shipyard.training.checkpoint import CheckpointStore


def _local_files(tmp_path: pathlib.Path) -> pathlib.Path:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "model.safetensors").write_bytes(b"\x00" * 1000)
    (src / "sub" / "config.json").write_text('{"a": 1}')
    return src


def _write(store: CheckpointStore, step: int, src: pathlib.Path) -> None:
    store.begin(step)
    store.upload(step, src, "model")
    store.commit(step, {"step": step, "data_position": {"epoch": 0, "offset": step * 4}})


def _assert_writes_finds_latest_and_keeps_newest_k(
    storage: Storage, root: str, tmp_path: pathlib.Path
) -> None:
    src = _local_files(tmp_path)
    store = CheckpointStore(storage, join(root, "ckpt"), keep=2)
    assert store.latest() is None
    for step in (10, 20, 30):
        _write(store, step, src)
        store.prune()
    assert store.complete_steps() == [20, 30]
    assert storage.list(store.step_uri(10)) == []
    assert store.read_state(30)["data_position"] == {"epoch": 0, "offset": 120}
    out = tmp_path / "out"
    assert store.download(30, "model", out) == 2
    assert (out / "sub" / "config.json").read_text() == '{"a": 1}'
    assert (out / "model.safetensors").stat().st_size == 1000


def test_write_find_latest_and_keep_newest_k(tmp_path: pathlib.Path) -> None:
    _assert_writes_finds_latest_and_keeps_newest_k(
        LocalStorage(), from_local_path(tmp_path / "store"), tmp_path
    )


@pytest.mark.integration
def test_checkpoints_on_s3(s3_env, tmp_path: pathlib.Path) -> None:  # type: ignore[no-untyped-def]
    _assert_writes_finds_latest_and_keeps_newest_k(s3_env.storage, s3_env.root, tmp_path)


def test_an_incomplete_checkpoint_is_ignored_and_later_removed(tmp_path: pathlib.Path) -> None:
    src = _local_files(tmp_path)
    store = CheckpointStore(LocalStorage(), from_local_path(tmp_path / "ckpt"), keep=3)
    _write(store, 10, src)
    store.begin(20)
    store.upload(20, src, "model")  # crashed before commit: no COMPLETE
    assert store.latest() == 10
    _write(store, 30, src)
    assert store.prune() == [20]
    assert store.complete_steps() == [10, 30]


def test_rewriting_a_step_clears_the_leftovers_of_a_crashed_attempt(tmp_path: pathlib.Path) -> None:
    src = _local_files(tmp_path)
    store = CheckpointStore(LocalStorage(), from_local_path(tmp_path / "ckpt"), keep=3)
    store.upload(20, src, "stale")
    _write(store, 20, src)
    names = {obj.uri.rsplit("/", 2)[-2] for obj in store.storage.list(store.step_uri(20))}
    assert "stale" not in names and store.latest() == 20
