"""The search tool: hybrid (BM25 + dense) search over one document collection, with citable results."""

from __future__ import annotations

from typing import Any

from shipyard.agents.retrieval.collection import Collection, Mode
from shipyard.agents.tools.base import ToolContext, ToolResult, ToolSpec

__all__ = ["SearchTool"]


class SearchTool:
    """``search``: the top passages for a query; each result names its document id for citations."""

    def __init__(
        self, collection: Collection, *, mode: Mode = "hybrid", max_k: int = 10, name: str = "search"
    ) -> None:
        self.collection = collection
        self.mode: Mode = mode if collection.dense is not None else "bm25"
        self.spec = ToolSpec(
            name=name,
            description=f"Search the '{collection.name}' document collection; returns passages with their "
            "document ids, to cite as [doc id].",
            parameters={
                "type": "object",
                "properties": {
                    "query": {"type": "string", "minLength": 1, "description": "What to look for."},
                    "k": {"type": "integer", "minimum": 1, "maximum": max_k, "default": 3},
                },
                "required": ["query"],
                "additionalProperties": False,
            },
        )

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        hits = self.collection.search(args["query"], k=args.get("k", 3), mode=self.mode)
        if not hits:
            return ToolResult(content="No passage matches the query.", data=[])
        content = "\n\n".join(f"[{i}] ({h.doc_id}) {h.text}" for i, h in enumerate(hits, start=1))
        return ToolResult(content=content, data=hits)
