"""Step metrics: the MFU arithmetic and the JSONL log's resume behaviour."""

from __future__ import annotations

import pathlib

import pytest

from shipyard.storage import from_local_path
from shipyard.storage.local import LocalStorage
from shipyard.training.metrics import MetricsLog, StepMetrics, mfu
from shipyard.training.presets import build_config, flops_per_token


def test_mfu_is_achieved_flops_over_peak_times_devices() -> None:
    # 6e9 FLOPs/token x 1000 tokens/s = 6e12 FLOP/s on 2 devices of 10e12 = 30 %.
    assert mfu(6e9, 1000.0, 10e12, 2) == pytest.approx(0.3)
    assert mfu(6e9, 1000.0, None, 2) is None


def test_mfu_of_a_real_config_is_a_plausible_fraction() -> None:
    config = build_config("llama-tiny", vocab_size=2000, seq_len=64)
    per_token = flops_per_token(config, 64)
    value = mfu(per_token, 5000.0, 180e9, 2)
    assert value is not None and 0 < value < 1
    assert value == pytest.approx(per_token * 5000 / 360e9)


def _m(step: int, loss: float) -> StepMetrics:
    return StepMetrics(step, loss, 1e-3, 0.5, 100.0, 0.1, step * 64, step * 0.1)


def test_log_resume_drops_steps_after_the_checkpoint(tmp_path: pathlib.Path) -> None:
    storage = LocalStorage()
    uri = from_local_path(tmp_path / "ckpt" / "metrics.jsonl")
    log = MetricsLog(storage, uri, tmp_path / "a.jsonl")
    for step in range(1, 7):
        log.append(_m(step, 10.0 - step))
    log.upload()
    resumed = MetricsLog(storage, uri, tmp_path / "b.jsonl")
    assert resumed.resume(4) == 4
    resumed.append(_m(5, 1.5))
    resumed.upload()
    rows = MetricsLog.read(storage, uri)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[-1]["loss"] == 1.5


def test_scalars_leave_out_unknown_mfu() -> None:
    assert "mfu" not in _m(1, 2.0).scalars()
    assert _m(1, 2.0).scalars()["loss"] == 2.0
