"""HtmlExtract: main text out of HTML pages; plain text untouched; empty pages dropped."""

from __future__ import annotations

from shipyard.data.document import Document
from shipyard.data.step import ShardContext
from shipyard.data.steps.extraction import HtmlExtract

ARTICLE = """<!DOCTYPE html><html><head><title>Harbour news</title><script>var x = 1;</script></head>
<body><nav><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li></ul></nav>
<article><h1>New ships arrive in the harbour</h1>
<p>Three cargo ships arrived in the harbour on Monday morning, carrying grain and timber from the north.
The harbour master said the arrivals were the largest this year and that unloading would take a week.</p>
<p>Local traders welcomed the news, noting that prices for timber had risen sharply over the winter
months and that the new supply should bring them back to normal levels before the summer.</p>
</article><footer>Copyright 2024 Harbour Gazette. All rights reserved.</footer></body></html>"""


def test_extracts_article_text_without_markup_or_scripts(shard_ctx: ShardContext) -> None:
    step = HtmlExtract()
    [doc] = list(step.run([Document("a", ARTICLE)], shard_ctx))
    assert "Three cargo ships arrived in the harbour" in doc.text
    assert "prices for timber" in doc.text
    assert "<p>" not in doc.text and "var x" not in doc.text
    assert doc.metadata["html_extracted"] is True


def test_plain_text_passes_unchanged_and_empty_html_is_dropped(shard_ctx: ShardContext) -> None:
    step = HtmlExtract()
    plain = Document("p", "Prices rose when 3 < 4 held true.\nNo markup here.")
    empty = Document("e", "<html><body><div></div><script>track()</script></body></html>")
    out = list(step.run([plain, empty], shard_ctx))
    assert out == [Document("p", "Prices rose when 3 < 4 held true.\nNo markup here.")]
    assert step.stats.dropped == {"html_extraction_failed": 1}
    assert step.stats.extra["not_html"] == 1
