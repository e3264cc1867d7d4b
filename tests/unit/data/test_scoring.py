"""QualityScore: a character n-gram model trained on reference text ranks prose above garbage."""

from __future__ import annotations

import pathlib
import random

import pytest
from pydantic import ValidationError

from shipyard.data.document import Document
from shipyard.data.step import ShardContext
from shipyard.data.steps.readers import InputSpec, make_reader
from shipyard.data.steps.scoring import QualityScore


def test_prose_scores_above_shuffled_words_and_random_characters(
    shared_data: pathlib.Path, shard_ctx: ShardContext
) -> None:
    # Reference: Shakespeare; scored: Austen (unseen English prose) and garbage made from the same text.
    reader = make_reader(InputSpec(uri=str(shared_data / "corpus/books/pride_and_prejudice.en.txt")))
    paragraphs = [d.text for s in reader.shards(shard_ctx.storage) for d in reader.read(s, shard_ctx)]
    prose = [p for p in paragraphs if len(p) > 400][:30]
    rng = random.Random(0)
    shuffled, char_soup = [], []
    for p in prose:
        words = p.split()
        rng.shuffle(words)
        shuffled.append(" ".join(words))
        chars = list(p)
        rng.shuffle(chars)
        char_soup.append("".join(chars))
    step = QualityScore(
        QualityScore.Params(
            reference_uris=[str(shared_data / "corpus/tinyshakespeare/input.txt")], threshold=0.3
        )
    )
    docs = [
        Document(f"{kind}{i}", t)
        for kind, texts in (("p", prose), ("w", shuffled), ("c", char_soup))
        for i, t in enumerate(texts)
    ]
    kept = list(step.run(docs, shard_ctx))
    score = {d.id: d.metadata["quality_score"] for d in docs}
    for i in range(len(prose)):
        assert score[f"p{i}"] > score[f"w{i}"] > score[f"c{i}"]
        assert 0.0 <= score[f"c{i}"] < 0.3 <= score[f"p{i}"] <= 1.0
    assert {d.id[0] for d in kept} <= {"p", "w"} and all(
        f"p{i}" in {d.id for d in kept} for i in range(len(prose))
    )
    assert step.stats.dropped["low_quality_score"] >= len(prose)


def test_reference_uris_are_required_and_checked() -> None:
    with pytest.raises(ValidationError, match=r"(?i)reference_?uris"):
        QualityScore.Params()
    with pytest.raises(ValidationError, match=r"(?i)reference_?uris"):
        QualityScore.Params(reference_uris=["ftp://x/y"])
    with pytest.raises(ValidationError, match="threshold"):
        QualityScore.Params(reference_uris=["/x"], threshold=2)
