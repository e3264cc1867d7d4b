"""LanguageId on the UDHR sample: accuracy on major languages, filtering, speed, parameter errors."""

from __future__ import annotations

import collections
import json
import pathlib
import time

import pytest
from pydantic import ValidationError

from shipyard.data.document import Document
from shipyard.data.step import ShardContext
from shipyard.data.steps.language import LanguageId

# The UDHR "fr" file is Welche (a Franco-Provençal dialect), not standard French, so French is
# checked on a hand-written sentence instead.
MAJOR = ("en", "zh", "ja", "de", "es", "ru", "ar", "pt", "it", "ko", "hi")


def udhr(shared_data: pathlib.Path) -> list[Document]:
    lines = (shared_data / "corpus/udhr/udhr_sample.jsonl").read_text("utf-8").splitlines()
    return [
        Document(f"udhr:{i}", r["text"], {"gold": r["lang"].split("-")[0]})
        for i, r in enumerate(map(json.loads, lines))
    ]


def test_major_languages_are_identified(shared_data: pathlib.Path, shard_ctx: ShardContext) -> None:
    docs = [d for d in udhr(shared_data) if d.metadata["gold"] in MAJOR]
    out = list(LanguageId().run(docs, shard_ctx))
    per_lang = collections.defaultdict(list)
    for d in out:
        per_lang[d.metadata["gold"]].append(d.metadata["language"] == d.metadata["gold"])
    assert set(per_lang) == set(MAJOR)
    for lang, hits in per_lang.items():
        assert sum(hits) / len(hits) >= 0.85, lang
    assert all(0.0 <= d.metadata["language_score"] <= 1.0 for d in out)
    french = Document(
        "fr", "Bonjour à tous, je suis très heureux de vous voir aujourd'hui dans notre belle ville."
    )
    assert next(LanguageId().run([french], shard_ctx)).metadata["language"] == "fr"


def test_keeps_only_allowed_languages_and_counts_drops(shared_data: pathlib.Path, shard_ctx) -> None:
    docs = [d for d in udhr(shared_data) if d.metadata["gold"] in ("en", "zh", "de")]
    step = LanguageId(LanguageId.Params(languages=["en", "zh"], min_score=0.5))
    out = list(step.run(docs, shard_ctx))
    assert {d.metadata["language"] for d in out} == {"en", "zh"}
    assert step.stats.dropped["language_not_allowed"] >= 15  # the 16 German paragraphs, give or take one
    assert step.stats.docs_in == len(docs) == step.stats.docs_out + sum(step.stats.dropped.values())


def test_low_confidence_is_dropped(shard_ctx: ShardContext) -> None:
    step = LanguageId(LanguageId.Params(min_score=0.9))
    clear = "The committee will meet on Tuesday to decide what the budget for the coming year should be."
    out = list(step.run([Document("a", "ok 123"), Document("b", clear)], shard_ctx))
    assert [d.id for d in out] == ["b"]
    assert step.stats.dropped == {"language_low_confidence": 1}


def test_faster_than_1000_short_docs_per_second(shard_ctx: ShardContext) -> None:
    step = LanguageId()
    docs = [
        Document(str(i), f"This is short document number {i} about the weather today.") for i in range(2000)
    ]
    start = time.perf_counter()
    assert len(list(step.run(docs, shard_ctx))) == 2000
    assert 2000 / (time.perf_counter() - start) > 1000


def test_unknown_language_code_is_a_field_error() -> None:
    with pytest.raises(ValidationError, match="languages"):
        LanguageId.Params(languages=["english"])
    with pytest.raises(ValidationError, match="min_score"):
        LanguageId.Params(min_score=1.5)
