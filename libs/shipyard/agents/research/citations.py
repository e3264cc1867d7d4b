"""Citation markers in model text: finding ``[n]`` (also ``[[n]]``, ``[1, 2]``), renumbering, dropping.

Searchers cite their own numbered passages ``[1]..[k]``; the run numbers every retrieved passage once
(``Sources``, in plan order) and rewrites each searcher's markers into that global numbering, so the
responder and the final answer speak one numbering. Markers that name no retrieved passage are
removed from the final text rather than shown as a source that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from shipyard.agents.events import Citation
from shipyard.agents.retrieval.collection import SearchHit

__all__ = ["Sources", "cited_numbers", "rewrite_markers", "strip_markers"]

# "[3]", "[[3]]", "[1, 2]", "[1][2]": the bracket groups models write. The inner group is what counts.
_MARKER = re.compile(r"([ \t]*)\[\[?\s*(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\s*\]?\]")


def _numbers(group: str) -> list[int]:
    return [int(n) for n in re.split(r"\s*[,;]\s*", group.strip())]


def cited_numbers(text: str) -> list[int]:
    """Every number cited in ``text``, in order of first appearance."""
    return list(dict.fromkeys(n for m in _MARKER.finditer(text) for n in _numbers(m.group(2))))


def rewrite_markers(text: str, mapping: Callable[[int], int | None]) -> str:
    """``text`` with each cited number replaced by ``mapping(n)``; numbers mapped to ``None`` vanish."""

    def replace(match: re.Match[str]) -> str:
        mapped = [m for n in _numbers(match.group(2)) if (m := mapping(n)) is not None]
        # A vanished marker takes the space before it along ("Paris [9]." -> "Paris.").
        return match.group(1) + "".join(f"[{m}]" for m in dict.fromkeys(mapped)) if mapped else ""

    return _MARKER.sub(replace, text)


def strip_markers(text: str) -> str:
    """``text`` without citation markers (a dependency's answer given to another searcher as context)."""
    return rewrite_markers(text, lambda _n: None).strip()


@dataclass
class Sources:
    """Every passage the searchers retrieved, numbered once globally ``1..n`` in plan order."""

    hits: list[SearchHit] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)

    def add(self, hit: SearchHit) -> int:
        """The global number of ``hit`` (a passage retrieved twice keeps its first number)."""
        if hit.passage_id not in self._index:
            self.hits.append(hit)
            self._index[hit.passage_id] = len(self.hits)
        return self._index[hit.passage_id]

    def add_all(self, hits: Sequence[SearchHit]) -> list[int]:
        return [self.add(h) for h in hits]

    def __contains__(self, number: object) -> bool:
        return isinstance(number, int) and 1 <= number <= len(self.hits)

    def citations(self, numbers: Iterable[int]) -> tuple[Citation, ...]:
        """``Citation``s for the valid numbers among ``numbers``, each once, in the given order."""
        return tuple(
            Citation(index=n, doc_id=h.doc_id, text=h.text, title=h.title, score=h.score)
            for n in dict.fromkeys(numbers)
            if n in self
            for h in (self.hits[n - 1],)
        )
