"""DPO: the loss and log-probabilities are the paper's, and training on pairs widens the reward margin."""

from __future__ import annotations

import math
import pathlib

import pytest
import torch

from shipyard.finetune.dpo import DpoObjective, dpo_loss, sequence_logps
from shipyard.finetune.loader import collate_rows
from shipyard.finetune.methods import build_model
from shipyard.finetune.spec import FinetuneSpec
from shipyard.models.local import LocalModel
from tests.integration.training_fixtures import build_tiny_base


def test_sequence_logps_sum_only_the_labelled_tokens() -> None:
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [1 / 3, 1 / 3, 1 / 3]]]))
    labels = torch.tensor([[-100, 1, -100]])  # only token 1 (predicted from position 0) counts
    assert float(sequence_logps(logits, labels)) == pytest.approx(math.log(0.25))


def test_loss_is_log2_at_the_reference_and_falls_as_chosen_wins() -> None:
    zero = torch.zeros(3)
    loss, stats = dpo_loss(zero, zero, zero, zero, beta=0.1)
    assert float(loss) == pytest.approx(math.log(2)) and stats["reward_margin"] == 0.0
    better, stats = dpo_loss(torch.full((3,), 2.0), torch.full((3,), -2.0), zero, zero, beta=0.1)
    assert float(better) < math.log(2)
    assert stats["reward_accuracy"] == 1.0 and stats["reward_margin"] == pytest.approx(0.4)


def _pairs(n: int) -> list[dict[str, list[int]]]:
    """Same prompt; the chosen reply counts upwards, the rejected one repeats a token."""
    rows = []
    for i in range(n):
        prompt = [1, 100 + i, 200 + i]
        chosen, rejected = [300 + i, 301 + i, 302 + i, 2], [400, 400, 400, 2]
        rows.append(
            {
                "chosen_input_ids": prompt + chosen,
                "chosen_labels": [-100] * 3 + chosen,
                "rejected_input_ids": prompt + rejected,
                "rejected_labels": [-100] * 3 + rejected,
            }
        )
    return rows


def test_dpo_with_lora_raises_the_margin_and_keeps_the_base_as_reference(
    shared_data: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    base = LocalModel(pathlib.Path(build_tiny_base(shared_data, tmp_path)), "tiny")
    torch.manual_seed(0)
    model = build_model(
        base,
        FinetuneSpec.model_validate({"method": "dpo", "dataFormat": "preference"}),
        device=torch.device("cpu"),
    )
    objective = DpoObjective(model, beta=0.1, pad_id=0)
    batch = collate_rows(_pairs(8), pad_id=0)
    with torch.no_grad():
        _, before = objective(model, batch)
    assert before["reward_margin"] == pytest.approx(0.0, abs=1e-6)  # policy == reference at the start
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    for _ in range(10):
        loss, stats = objective(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    with torch.no_grad():
        _, after = objective(model, batch)
    assert after["reward_margin"] > 0.5 and after["reward_accuracy"] == 1.0, after
    # The reference is the base with the adapter off: its log-probabilities did not move.
    ids, labels = batch["chosen_input_ids"], batch["chosen_labels"]
    plain = build_model(base, FinetuneSpec.model_validate({"method": "full"}), device=torch.device("cpu"))
    with torch.no_grad(), model.disable_adapter():
        torch.testing.assert_close(
            sequence_logps(model(input_ids=ids).logits, labels),
            sequence_logps(plain(input_ids=ids).logits, labels),
        )
