"""``LanguageId``: offline language identification with py3langid (a naive Bayes byte n-gram model).

The model is loaded once per process (``identifier()``; read-only afterwards) and classifies the first
``max_chars`` characters only: a few hundred characters decide the language as well as the whole text,
and it keeps the step fast on books. ``language_score`` is py3langid's normalized probability.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import Field, field_validator

from shipyard.data.document import Document
from shipyard.data.step import PipelineStep, ShardContext, StepParams

__all__ = ["LanguageId", "identifier", "known_languages"]


@functools.cache
def identifier() -> Any:
    """py3langid's identifier in probability mode, shared (read-only) by every step in the process."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def known_languages() -> frozenset[str]:
    return frozenset(identifier().labels)


class LanguageId(PipelineStep):
    """Write ``metadata.language`` / ``language_score``; optionally keep only some languages."""

    name = "language_id"

    class Params(StepParams):
        languages: list[str] | None = Field(None, description="keep only these ISO 639-1 codes (None: all)")
        min_score: float = Field(0.0, ge=0.0, le=1.0, description="drop documents less certain than this")
        max_chars: int = Field(2000, ge=50, description="classify only this many leading characters")

        @field_validator("languages")
        @classmethod
        def _known(cls, v: list[str] | None) -> list[str] | None:
            if v is None:
                return v
            if not v:
                raise ValueError("must list at least one language, or be null to keep all")
            unknown = sorted(set(v) - known_languages())
            if unknown:
                raise ValueError(
                    f"unknown language code(s) {unknown}; use ISO 639-1 codes such as 'en', 'zh'"
                )
            return v

    params: Params

    def __init__(self, params: StepParams | None = None) -> None:
        super().__init__(params)
        self._identifier = identifier()
        self._allowed = frozenset(self.params.languages) if self.params.languages else None

    def classify(self, text: str) -> tuple[str, float]:
        language, score = self._identifier.classify(text[: self.params.max_chars])
        return str(language), float(score)

    def run(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        for doc in docs:
            self.stats.docs_in += 1
            language, score = self.classify(doc.text)
            doc.metadata["language"] = language
            doc.metadata["language_score"] = round(score, 4)
            if self._allowed is not None and language not in self._allowed:
                self.stats.drop("language_not_allowed")
                continue
            if score < self.params.min_score:
                self.stats.drop("language_low_confidence")
                continue
            self.stats.extra[f"language_{language}"] += 1
            self.stats.docs_out += 1
            yield doc
