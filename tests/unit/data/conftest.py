"""A ``ShardContext`` on a temporary directory (real ``LocalStorage``) that records quarantine and outputs."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Any

import pytest

from shipyard.data.step import ShardContext
from shipyard.storage import LocalStorage, from_local_path


@dataclass
class Recorded:
    """What steps reported through the context: quarantined records and declared outputs."""

    quarantined: list[tuple[str, str, str]] = field(default_factory=list)
    outputs: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def reasons(self) -> list[str]:
        return [reason for _source, _raw, reason in self.quarantined]


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


@pytest.fixture
def shard_ctx(tmp_path: pathlib.Path, recorded: Recorded) -> ShardContext:
    root = from_local_path(tmp_path / "job")
    return ShardContext(
        shard_index=0,
        num_shards=1,
        storage=LocalStorage(),
        scratch_uri=f"{root}/scratch",
        global_uri=f"{root}/global",
        output_uri=f"{root}/out",
        quarantine=lambda source, raw, reason: recorded.quarantined.append((source, raw, reason)),
        add_output=lambda kind, uri, meta: recorded.outputs.append((kind, uri, meta)),
    )
