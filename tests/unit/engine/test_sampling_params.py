"""SamplingParams validation names the bad field and the reason."""

from __future__ import annotations

import pytest

from shipyard.engine import SamplingParams
from shipyard.errors import InvalidArgument


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": -2}, "top_k"),
        ({"min_p": 2.0}, "min_p"),
        ({"repetition_penalty": 0.0}, "repetition_penalty"),
        ({"presence_penalty": 3.0}, "presence_penalty"),
        ({"frequency_penalty": -2.5}, "frequency_penalty"),
        ({"stop": ["ok", ""]}, "stop[1]"),
        ({"stop_token_ids": [5, 99]}, "stop_token_ids[1]"),
        ({"seed": -1}, "seed"),
        ({"logprobs": 21}, "logprobs"),
        ({"n": 2}, "n"),
    ],
)
def test_invalid_values_name_their_field(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        SamplingParams(**kwargs).validate(vocab_size=64)
    assert [v.field for v in info.value.violations] == [field]
    assert info.value.violations[0].description


def test_valid_params_pass_and_lists_become_tuples() -> None:
    params = SamplingParams(
        max_tokens=4, temperature=0, top_k=-1, stop=["\n"], stop_token_ids=[2], seed=3, logprobs=0
    ).validate(64)
    assert params.greedy
    assert params.stop == ("\n",) and params.stop_token_ids == (2,)
    assert hash(params)  # frozen and hashable
    assert SamplingParams(stop="END").stop == ("END",)
