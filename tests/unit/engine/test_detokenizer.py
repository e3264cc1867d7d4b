"""Incremental detokenization never splits a character; stop strings cut the text OpenAI's way."""

from __future__ import annotations

from typing import Any

from shipyard.engine.detokenizer import IncrementalDetokenizer


def stream(tokenizer: Any, text: str, stop: tuple[str, ...] = ()) -> tuple[list[str], IncrementalDetokenizer]:
    ids = tokenizer.encode(text, add_special_tokens=False)
    detok = IncrementalDetokenizer(tokenizer, tokenizer.encode("Answer:", add_special_tokens=False), stop)
    deltas = []
    for token in ids:
        deltas.append(detok.add(token))
        if detok.stopped:
            break
    if not detok.stopped:
        deltas.append(detok.flush())
    return deltas, detok


def test_multibyte_characters_are_never_emitted_half_decoded(tokenizer: Any) -> None:
    text = "Tea 龘 costs 𝄞 two ฿ and 🎉!"
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert any(tokenizer.convert_ids_to_tokens(i).startswith("<0x") for i in ids)  # byte fallback in play
    deltas, _ = stream(tokenizer, text)
    assert "".join(deltas) == " " + text  # the leading space SentencePiece gives a word start
    assert not any("\ufffd" in d for d in deltas)
    assert sum(1 for d in deltas if d) > 5  # it streams, not all at the end


def test_stop_string_cuts_output_and_is_never_streamed(tokenizer: Any) -> None:
    deltas, detok = stream(tokenizer, "The answer is 42. Observation: done", stop=("Observation:",))
    assert detok.stopped
    assert "".join(deltas) == " The answer is 42. "
    assert not any("Obs" in d for d in deltas)


def test_earliest_of_several_stop_strings_wins(tokenizer: Any) -> None:
    deltas, detok = stream(tokenizer, "one, two; three", stop=("three", ";"))
    assert detok.stopped and "".join(deltas) == " one, two"


def test_partial_stop_prefix_is_released_when_it_does_not_complete(tokenizer: Any) -> None:
    deltas, detok = stream(tokenizer, "an Obs is not an Observation", stop=("Observation",))
    assert "".join(deltas) == " an Obs is not an "
    deltas, detok = stream(tokenizer, "just Obs", stop=("Observation",))
    assert not detok.stopped and "".join(deltas) == " just Obs"
