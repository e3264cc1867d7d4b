"""``LocalStorage``: atomic writes, NotFound, sorted recursive listings that never show temp files."""

from __future__ import annotations

import os
import pathlib

import pytest

from shipyard.errors import NotFound
from shipyard.storage import LocalStorage, ObjectInfo, from_local_path, join


@pytest.fixture
def storage() -> LocalStorage:
    return LocalStorage()


@pytest.fixture
def root(tmp_path: pathlib.Path) -> str:
    return from_local_path(tmp_path)


class Boom(Exception):
    pass


def test_write_then_read_round_trips_and_creates_parents(storage: LocalStorage, root: str) -> None:
    uri = join(root, "datasets", "wiki", "manifest.json")

    storage.write_text(uri, '{"docs": 3}')

    assert storage.exists(uri)
    assert storage.read_text(uri) == '{"docs": 3}'
    assert storage.local_path(uri) == uri.removeprefix("file://")


def test_object_is_invisible_until_the_write_block_succeeds(storage: LocalStorage, root: str) -> None:
    uri = join(root, "shard-0000.bin")

    with storage.open_write(uri) as f:
        f.write(b"first half ")
        assert not storage.exists(uri)
        assert storage.list(root) == []
        with pytest.raises(NotFound):
            storage.open_read(uri)
        f.write(b"second half")

    assert storage.read_bytes(uri) == b"first half second half"


def test_reader_sees_the_old_version_while_a_new_one_is_written(storage: LocalStorage, root: str) -> None:
    uri = join(root, "model", "config.json")
    storage.write_bytes(uri, b"version 1")

    with storage.open_write(uri) as f:
        f.write(b"version 2, partly written")
        assert storage.read_bytes(uri) == b"version 1"

    assert storage.read_bytes(uri) == b"version 2, partly written"


def test_failing_write_block_leaves_nothing_behind(storage: LocalStorage, root: str, tmp_path) -> None:
    uri = join(root, "out", "shard.bin")

    with pytest.raises(Boom), storage.open_write(uri) as f:
        f.write(b"partial")
        raise Boom

    assert not storage.exists(uri)
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


def test_failing_overwrite_keeps_the_previous_object(storage: LocalStorage, root: str) -> None:
    uri = join(root, "checkpoint.bin")
    storage.write_bytes(uri, b"good checkpoint")

    with pytest.raises(Boom), storage.open_write(uri) as f:
        f.write(b"torn")
        raise Boom

    assert storage.read_bytes(uri) == b"good checkpoint"


def test_closing_the_file_early_still_commits(storage: LocalStorage, root: str) -> None:
    uri = join(root, "early.txt")

    with storage.open_write(uri) as f:
        f.write(b"data")
        f.close()

    assert storage.read_bytes(uri) == b"data"


def test_missing_object_raises_not_found_with_the_uri(storage: LocalStorage, root: str) -> None:
    uri = join(root, "missing.bin")

    with pytest.raises(NotFound, match="missing.bin"):
        storage.open_read(uri)
    with pytest.raises(NotFound, match="is a directory"):
        storage.open_read(root)


def test_list_is_recursive_sorted_and_hides_temp_files(storage: LocalStorage, root: str) -> None:
    for name in ("b/2.bin", "a.bin", "b/1.bin", "c/d/e.bin"):
        storage.write_bytes(join(root, name), b"x" * len(name))
    outside = join(root + "-sibling", "x.bin")  # same string prefix, different directory
    storage.write_bytes(outside, b"x")

    with storage.open_write(join(root, "b", "3.bin")) as f:
        f.write(b"in flight")
        listed = storage.list(root)

    assert listed == [
        ObjectInfo(join(root, "a.bin"), 5),
        ObjectInfo(join(root, "b/1.bin"), 7),
        ObjectInfo(join(root, "b/2.bin"), 7),
        ObjectInfo(join(root, "c/d/e.bin"), 9),
    ]
    assert storage.list(join(root, "nothing-here")) == []


def test_delete_and_delete_prefix(storage: LocalStorage, root: str) -> None:
    for name in ("run/a", "run/b", "keep"):
        storage.write_bytes(join(root, name), b"x")

    storage.delete(join(root, "never-existed"))  # not an error
    assert storage.delete_prefix(join(root, "run")) == 2

    assert [o.uri for o in storage.list(root)] == [join(root, "keep")]


def test_bare_paths_are_accepted(storage: LocalStorage, tmp_path: pathlib.Path) -> None:
    path = os.path.join(tmp_path, "plain.txt")

    storage.write_text(path, "hello")

    assert pathlib.Path(path).read_text() == "hello"
    assert storage.list(str(tmp_path))[0].uri == from_local_path(path)
