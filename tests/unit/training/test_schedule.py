"""The learning-rate schedule: warmup, then the chosen decay down to the floor."""

from __future__ import annotations

import math

import pytest
import torch

from shipyard.training.schedule import make_scheduler
from shipyard.training.spec import HyperParameters


def _lrs(schedule: str, *, steps: int = 100, warmup: int = 10, min_ratio: float = 0.1) -> list[float]:
    hp = HyperParameters(
        steps=steps, learning_rate=1e-3, warmup_steps=warmup, schedule=schedule, min_lr_ratio=min_ratio
    )
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=hp.learning_rate)
    sched = make_scheduler(opt, hp, steps)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("schedule", ["cosine", "linear", "constant"])
def test_warmup_rises_to_the_peak(schedule: str) -> None:
    lrs = _lrs(schedule)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11], strict=True))
    assert lrs[10] == pytest.approx(1e-3)


def test_cosine_and_linear_decay_to_the_floor() -> None:
    cos, lin = _lrs("cosine"), _lrs("linear")
    for lrs in (cos, lin):
        assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
        assert min(lrs) >= 1e-4 * (1 - 1e-9)  # never below the floor
        assert lrs[-1] < 1.15e-4  # and reaches it on the last step
    # Halfway through the decay: linear is at the midpoint, cosine too (by symmetry), but cosine
    # stays higher early on.
    mid = 10 + 45
    assert lin[mid] == pytest.approx(1e-4 + 0.5 * 9e-4, rel=0.01)
    assert cos[20] > lin[20]
    assert cos[20] == pytest.approx(1e-4 + 9e-4 * 0.5 * (1 + math.cos(math.pi * 10 / 90)), rel=0.01)


def test_constant_stays_at_the_peak() -> None:
    assert _lrs("constant", warmup=0) == [pytest.approx(1e-3)] * 100
