"""``HtmlExtract``: main-content extraction from HTML with trafilatura.

Documents without HTML markup pass through untouched, so the step can sit in front of mixed inputs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from pydantic import Field

from shipyard.data.document import Document
from shipyard.data.step import PipelineStep, ShardContext, StepParams

__all__ = ["HtmlExtract", "looks_like_html"]

_TAG = re.compile(
    r"<(?:!doctype\s+html|html|head|body|div|p|br|span|a\s|table|article|section|main|h[1-6]|ul|ol|li)\b",
    re.IGNORECASE,
)


def looks_like_html(text: str) -> bool:
    """Whether ``text`` carries structural HTML tags (a stray ``<`` in prose does not count)."""
    return _TAG.search(text[:100_000]) is not None


class HtmlExtract(PipelineStep):
    """Replace an HTML document by its main text; drop it (``html_extraction_failed``) if none is found."""

    name = "html_extract"

    class Params(StepParams):
        favor_recall: bool = Field(True, description="keep more text at the risk of some boilerplate")
        include_tables: bool = Field(True, description="keep table cells as text")
        include_comments: bool = Field(False, description="keep user comments below articles")
        include_links: bool = Field(False, description="keep link targets in the text")
        deduplicate: bool = Field(False, description="let trafilatura drop repeated segments")

    params: Params

    def __init__(self, params: StepParams | None = None) -> None:
        super().__init__(params)
        import trafilatura  # imported here so a missing package fails before any work

        self._extract = trafilatura.extract

    def run(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        p = self.params
        for doc in docs:
            self.stats.docs_in += 1
            if not looks_like_html(doc.text):
                self.stats.extra["not_html"] += 1
                self.stats.docs_out += 1
                yield doc
                continue
            text = self._extract(
                doc.text,
                favor_recall=p.favor_recall,
                include_tables=p.include_tables,
                include_comments=p.include_comments,
                include_links=p.include_links,
                deduplicate=p.deduplicate,
            )
            if not text or not text.strip():
                self.stats.drop("html_extraction_failed")
                continue
            doc.text = text
            doc.metadata["html_extracted"] = True
            self.stats.docs_out += 1
            yield doc
