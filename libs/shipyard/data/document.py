"""The record that flows through an ingest pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Document:
    """One text document.

    ``id`` is stable across reruns (source file + position unless the input carries its own id), so
    dedup decisions and quarantine entries can name documents. ``metadata`` holds what steps learn about
    the document (``language``, ``language_score``, ``quality_score``, ``source``, ...); it is written
    out with the text.
    """

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "metadata": self.metadata}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Document:
        return cls(id=str(record["id"]), text=record["text"], metadata=dict(record.get("metadata") or {}))
