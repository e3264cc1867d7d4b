"""``LabelledTokenLoss``: the finetune loss with the LM head run only where a label counts.

What a user would notice if it were wrong is a different loss or different gradients from the model's
own loss, so every test compares against ``model(**batch).loss`` on the same batch.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import torch

from shipyard.finetune.encode import IGNORE_INDEX, EncodedExample
from shipyard.finetune.packing import collate, pack
from shipyard.training.objective import LabelledTokenLoss

VOCAB = 96
PAD = 0


def _tiny_llama(seed: int = 0) -> Any:
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").train()


def _examples(n: int, seed: int = 0) -> list[EncodedExample]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randrange(4, 14)
        ids = [rng.randrange(1, VOCAB) for _ in range(length)]
        prompt = rng.randrange(1, length)  # a prompt of unlabelled tokens, then the labelled answer
        out.append(EncodedExample(ids, [IGNORE_INDEX] * prompt + ids[prompt:]))
    return out


def _grads(model: Any) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("layout", ["padded", "packed"])
def test_loss_and_gradients_match_the_models_own_loss(layout: str) -> None:
    examples = _examples(5)
    batch = collate(examples, PAD) if layout == "padded" else collate(pack(examples, 32), PAD)
    reference = _tiny_llama()
    expected = reference(**batch, use_cache=False).loss
    expected.backward()

    model = _tiny_llama()
    objective = LabelledTokenLoss(model)
    shapes: list[torch.Size] = []
    model.get_output_embeddings().register_forward_hook(lambda m, a, out: shapes.append(out.shape))
    loss, extras = objective(model, batch)
    loss.backward()

    labelled = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    assert shapes == [torch.Size([labelled, VOCAB])]  # the head ran on the labelled positions only
    assert labelled < batch["input_ids"].numel() * 0.6  # ... about half of them here
    assert extras == {}
    torch.testing.assert_close(loss, expected, atol=1e-6, rtol=1e-6)
    want = _grads(reference)
    got = _grads(model)
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=1e-6, rtol=1e-5, msg=name)


def test_the_hook_is_inert_outside_the_objective() -> None:
    batch = collate(_examples(3, seed=1), PAD)
    model = _tiny_llama().eval()
    LabelledTokenLoss(model)
    with torch.no_grad():
        logits = model(**batch, use_cache=False).logits
    assert logits.shape == (*batch["input_ids"].shape, VOCAB)


def test_a_forward_that_bypasses_the_hooked_head_still_gets_the_same_loss() -> None:
    batch = collate(_examples(4, seed=2), PAD)
    hooked, plain = _tiny_llama(), _tiny_llama()
    objective = LabelledTokenLoss(hooked)
    with torch.no_grad():
        loss, _ = objective(plain, batch)  # full [batch, length, vocab] logits come back: selected after
        expected = plain(**batch, use_cache=False).loss
    torch.testing.assert_close(loss, expected, atol=1e-6, rtol=1e-6)


def test_a_micro_batch_without_labelled_tokens_adds_zero_not_nan() -> None:
    unlabelled = [EncodedExample([5, 6, 7, 8], [IGNORE_INDEX] * 4), EncodedExample([9], [IGNORE_INDEX])]
    model = _tiny_llama()
    loss, _ = LabelledTokenLoss(model)(model, collate(unlabelled, PAD))
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
