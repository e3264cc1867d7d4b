"""Sampler: greedy is argmax, penalties follow HF/OpenAI, top-k/top-p restrict, seeds reproduce."""

from __future__ import annotations

import torch

from shipyard.engine.sampler import Sampler, SampleRequest
from shipyard.engine.sampling_params import SamplingParams


def row(
    params: SamplingParams, prompt: list[int] = (), output: list[int] = (), seed: int = 0
) -> SampleRequest:
    return SampleRequest(params, list(prompt), list(output), torch.Generator().manual_seed(seed))


def test_greedy_is_argmax_of_raw_logits_per_row() -> None:
    logits = torch.randn(5, 100, generator=torch.Generator().manual_seed(1))
    tokens, lps = Sampler()(logits, [row(SamplingParams(temperature=0))] * 5)
    assert tokens == logits.argmax(-1).tolist()
    assert lps == [None] * 5


def test_repetition_penalty_follows_hf_semantics() -> None:
    logits = torch.tensor([[2.0, 1.9, -1.0, -1.1]])
    greedy = SamplingParams(temperature=0, repetition_penalty=2.0)
    # Token 0 (seen in the prompt) drops from 2.0 to 1.0, so token 1 wins.
    assert Sampler()(logits, [row(greedy, prompt=[0])])[0] == [1]
    # Negative logits are multiplied: -1.0 seen becomes -2.0, so unseen -1.1 wins among the two.
    logits = torch.tensor([[-1.0, -1.1]])
    assert Sampler()(logits, [row(greedy, output=[0])])[0] == [1]


def test_presence_and_frequency_penalties_count_output_tokens_only() -> None:
    logits = torch.tensor([[3.0, 2.5, 0.0]])
    freq = SamplingParams(temperature=0, frequency_penalty=0.3)
    assert Sampler()(logits, [row(freq, prompt=[0, 0, 0, 0])])[0] == [0]  # prompt does not count
    assert Sampler()(logits, [row(freq, output=[0, 0])])[0] == [1]  # 3.0 - 0.6 < 2.5
    presence = SamplingParams(temperature=0, presence_penalty=0.6)
    assert Sampler()(logits, [row(presence, output=[0])])[0] == [1]


def test_top_k_and_top_p_restrict_the_candidates() -> None:
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0, -1.0]]).repeat(200, 1)
    top_k = [row(SamplingParams(temperature=5.0, top_k=2), seed=i) for i in range(200)]
    assert set(Sampler()(logits, top_k)[0]) == {0, 1}
    probs = torch.softmax(logits[0], -1)  # [0.64, 0.24, 0.09, ...]: 0.9 needs the top three
    assert probs[:2].sum() < 0.9 < probs[:3].sum()
    top_p = [row(SamplingParams(temperature=1.0, top_p=0.9), seed=i) for i in range(200)]
    assert set(Sampler()(logits, top_p)[0]) == {0, 1, 2}
    min_p = [row(SamplingParams(temperature=1.0, min_p=0.3), seed=i) for i in range(200)]
    assert set(Sampler()(logits, min_p)[0]) == {0, 1}  # p >= 0.3 * 0.64


def test_same_seed_same_tokens_regardless_of_batch_neighbours() -> None:
    logits = torch.randn(1, 50, generator=torch.Generator().manual_seed(2))
    params = SamplingParams(temperature=1.0, seed=7)

    def draw(neighbours: int) -> list[int]:
        gen = torch.Generator().manual_seed(7)
        out = []
        for _ in range(20):
            batch = [SampleRequest(params, [], [], gen)] + [row(SamplingParams(temperature=1.0))] * neighbours
            out.append(Sampler()(logits.repeat(1 + neighbours, 1), batch)[0][0])
        return out

    first = draw(0)
    assert first == draw(3)
    assert len(set(first)) > 1  # it really samples


def test_logprobs_report_chosen_token_and_top_n_of_raw_distribution() -> None:
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    tokens, lps = Sampler()(logits, [row(SamplingParams(temperature=0, logprobs=2))])
    expected = torch.log_softmax(logits[0], -1)
    lp = lps[0]
    assert tokens == [1] and lp is not None and lp.token_id == 1
    assert abs(lp.logprob - expected[1].item()) < 1e-6
    assert [t for t, _ in lp.top] == [1, 2]
    _, zero = Sampler()(logits, [row(SamplingParams(temperature=0, logprobs=0))])
    assert zero[0] is not None and zero[0].top == ()
