"""Heuristic quality filters: C4's line rules and plain length bounds (Gopher's live in ``gopher``).

``GopherRepetitionFilter`` and ``GopherQualityFilter`` are re-exported here so the registry can name
every heuristic filter from one module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from pydantic import Field, model_validator

from shipyard.data.document import Document
from shipyard.data.step import Filter, PipelineStep, ShardContext, StepParams
from shipyard.data.steps.gopher import GopherQualityFilter, GopherRepetitionFilter
from shipyard.data.steps.words import split_words

__all__ = ["C4LineFilter", "GopherQualityFilter", "GopherRepetitionFilter", "LengthFilter"]

# ASCII terminal punctuation as in C4, plus the full-width forms used by Chinese and Japanese.
END_PUNCTUATION = (".", "?", "!", '"', "'", "。", "！", "？", "」", "』", "”", "’", "．")
POLICY_SUBSTRINGS = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
_CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?。！？]+[\"'”’」』)]*(?:\s|$)")


def count_sentences(line: str) -> int:
    """Sentence ends in ``line`` (a line without one still counts as one sentence)."""
    return max(1, len(_SENTENCE_END.findall(line)))


class C4LineFilter(PipelineStep):
    """C4's cleaning (Raffel et al. 2020): drop bad lines, then drop documents with too little left.

    Lines go when they lack terminal punctuation, have too few words, mention javascript or a site
    policy, or carry an overlong word. Whole documents go for "lorem ipsum", curly braces (code), or
    fewer than ``min_sentences`` sentences left.
    """

    name = "c4_lines"

    class Params(StepParams):
        filter_no_terminal_punct: bool = Field(True, description="drop lines not ending in . ? ! or quote")
        min_words_per_line: int = Field(3, ge=0, description="drop lines with fewer words (CJK: chars)")
        max_word_length: int = Field(1000, ge=1, description="drop lines with a longer word")
        remove_citations: bool = Field(True, description="strip [1], [edit], [citation needed]")
        filter_javascript: bool = Field(True, description="drop lines mentioning javascript")
        filter_policy: bool = Field(True, description="drop terms-of-use / privacy / cookie lines")
        filter_lorem_ipsum: bool = Field(True, description="drop documents containing lorem ipsum")
        filter_curly_bracket: bool = Field(True, description="drop documents with a curly brace")
        min_sentences: int = Field(3, ge=0, description="drop documents with fewer sentences left")

    params: Params

    def run(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        for doc in docs:
            self.stats.docs_in += 1
            reason = self._clean(doc)
            if reason is not None:
                self.stats.drop(reason)
                continue
            self.stats.docs_out += 1
            yield doc

    def _clean(self, doc: Document) -> str | None:
        p = self.params
        kept: list[str] = []
        sentences = 0
        for raw in doc.text.splitlines():
            line = raw.strip()
            if not line:
                continue
            words = split_words(line)
            if any(len(w) > p.max_word_length for w in words):
                self.stats.extra["c4_lines_too_long_word"] += 1
                continue
            if p.remove_citations:
                line = _CITATION.sub("", line)
            if p.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith("...")):
                self.stats.extra["c4_lines_no_terminal_punct"] += 1
                continue
            if len(words) < p.min_words_per_line:
                self.stats.extra["c4_lines_too_few_words"] += 1
                continue
            lower = line.lower()
            if p.filter_lorem_ipsum and "lorem ipsum" in lower:
                return "c4_lorem_ipsum"
            if p.filter_javascript and "javascript" in lower:
                self.stats.extra["c4_lines_javascript"] += 1
                continue
            if p.filter_curly_bracket and "{" in line:
                return "c4_curly_bracket"
            if p.filter_policy and any(s in lower for s in POLICY_SUBSTRINGS):
                self.stats.extra["c4_lines_policy"] += 1
                continue
            sentences += count_sentences(line)
            kept.append(line)
        if not kept:
            return "c4_empty"
        if sentences < p.min_sentences:
            return "c4_too_few_sentences"
        doc.text = "\n".join(kept)
        return None


class LengthFilter(Filter):
    """Keep documents whose length in characters and words lies within bounds (CJK chars are words)."""

    name = "length"

    class Params(StepParams):
        min_chars: int = Field(0, ge=0, description="fewest characters")
        max_chars: int | None = Field(None, ge=1, description="most characters (None: no limit)")
        min_words: int = Field(0, ge=0, description="fewest words")
        max_words: int | None = Field(None, ge=1, description="most words (None: no limit)")

        @model_validator(mode="after")
        def _ordered(self) -> LengthFilter.Params:
            if self.max_chars is not None and self.max_chars < self.min_chars:
                raise ValueError("max_chars must be >= min_chars")
            if self.max_words is not None and self.max_words < self.min_words:
                raise ValueError("max_words must be >= min_words")
            return self

    params: Params

    def reject(self, doc: Document) -> str | None:
        p = self.params
        n = len(doc.text)
        if n < p.min_chars:
            return "length_too_few_chars"
        if p.max_chars is not None and n > p.max_chars:
            return "length_too_many_chars"
        if p.min_words or p.max_words is not None:
            words = len(split_words(doc.text))
            if words < p.min_words:
                return "length_too_few_words"
            if p.max_words is not None and words > p.max_words:
                return "length_too_many_words"
        return None
