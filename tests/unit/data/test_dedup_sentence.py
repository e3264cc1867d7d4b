"""Sentence/paragraph dedup: repeated spans cut from later documents, short leftovers dropped."""

from __future__ import annotations

import pathlib
import re

from shipyard.data.dedup.inprocess import run_global_step
from shipyard.data.dedup.sentence import SentenceDedup, split_units
from shipyard.data.document import Document
from shipyard.storage.local import LocalStorage
from tests.unit.data.test_dedup_planted import split_shards


def _sentences(shared_data: pathlib.Path) -> list[str]:
    text = (shared_data / "corpus/books/pride_and_prejudice.en.txt").read_text().replace("\r", "")
    flat = " ".join(text.split())
    return [s for s in re.split(r"(?<=[.!?])\s+", flat) if len(s.split()) >= 6]


def _run(shards, root, **params):
    p = SentenceDedup.Params(**params)
    return run_global_step(lambda: SentenceDedup(p), shards, LocalStorage(), f"file://{root}")


def test_repeated_three_sentence_span_is_cut_from_the_later_document(shared_data, tmp_path) -> None:
    s = _sentences(shared_data)
    boiler = s[0:3]
    first = Document("first", " ".join(s[10:25] + boiler))
    later = Document("later", " ".join(s[30:45] + boiler + s[50:60]))
    short = Document("short", " ".join(boiler + s[60:61]))
    kept, stats = _run([[first], [later, short]], tmp_path, min_doc_words=40)
    by_id = {d.id: d for shard in kept for d in shard}
    assert by_id["first"].text == first.text
    assert (
        boiler[1] not in by_id["later"].text and s[50] in by_id["later"].text and s[44] in by_id["later"].text
    )
    assert "short" not in by_id
    assert stats.dropped == {"sentence_duplicates": 1}
    assert stats.extra["removed_spans"] == 2 and stats.extra["removed_units"] == 6


def test_same_output_with_one_or_three_shards(shared_data, tmp_path) -> None:
    s = _sentences(shared_data)
    docs = [Document(str(i), " ".join(s[i * 7 : i * 7 + 12])) for i in range(30)]  # windows overlap
    one, _ = _run([docs], tmp_path / "one", min_doc_words=5)
    three, _ = _run(split_shards(docs, 3), tmp_path / "three", min_doc_words=5)
    assert [(d.id, d.text) for d in one[0]] == [(d.id, d.text) for shard in three for d in shard]
    assert any(d.text != docs[int(d.id)].text for d in one[0])


def test_paragraph_mode_dedups_lines(tmp_path) -> None:
    lines = [f"line number {i} of the shared footer with enough words in it" for i in range(3)]
    a = Document("a", "\n".join(["intro of a " * 8, *lines]))
    b = Document("b", "\n".join(["intro of b " * 8, *lines, "tail of b " * 8]))
    kept, _ = _run([[a, b]], tmp_path, unit="paragraph", min_doc_words=5)
    assert kept[0][0].text == a.text
    assert kept[0][1].text.splitlines() == ["intro of b " * 8, ("tail of b " * 8).strip()]


def test_units_tile_the_text() -> None:
    text = "Mr. Darcy bowed. She smiled!  Then: 吾輩は猫である。名前はまだ無い。\nEnd"
    spans = split_units(text, "sentence")
    assert "".join(text[s:e] for s, e in spans) == text
    assert [text[s:e].strip() for s, e in spans][-3:] == ["Then: 吾輩は猫である。", "名前はまだ無い。", "End"]
