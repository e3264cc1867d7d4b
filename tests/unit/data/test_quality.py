"""Gopher, C4 and length filters on real books and on one hand-made case per rule."""

from __future__ import annotations

import pathlib

import pytest
from pydantic import ValidationError
from shipyard.data.document import Document
from shipyard.data.step import ShardContext
from shipyard.data.steps.quality import (
    C4LineFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    LengthFilter,
)
from shipyard.data.steps.readers import InputSpec, make_reader

PROSE = (
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in "
    "want of a wife. However little known the feelings or views of such a man may be on his first entering "
    "a neighbourhood, this truth is so well fixed in the minds of the surrounding families, that he is "
    "considered the rightful property of some one or other of their daughters. My dear Mr. Bennet, said his "
    "lady to him one day, have you heard that Netherfield Park is let at last?"
)

LONG_LINE = "a long line that is repeated and so takes up a large share of all the characters " * 3


def book(shared_data: pathlib.Path, name: str, ctx: ShardContext) -> list[Document]:
    reader = make_reader(InputSpec(uri=str(shared_data / "corpus" / name)))
    return [d for s in reader.shards(ctx.storage) for d in reader.read(s, ctx)]


def reason(step, text: str, **metadata) -> str | None:
    return step.reject(Document("d", text, metadata))


def test_real_prose_passes_gopher_in_english_chinese_and_japanese(shared_data, shard_ctx) -> None:
    english = [
        d
        for d in book(shared_data, "books/pride_and_prejudice.en.txt", shard_ctx)
        if len(d.text.split()) >= 60
    ]
    chinese = book(shared_data, "chinese_poetry/lunyu.zh.txt", shard_ctx)
    japanese = [
        d for d in book(shared_data, "books/wagahai_wa_neko_de_aru.ja.txt", shard_ctx) if len(d.text) >= 200
    ]
    for docs in (english, chinese, japanese):
        for step in (GopherQualityFilter(), GopherRepetitionFilter()):
            kept = list(step.run(docs, shard_ctx))
            assert len(kept) >= 0.9 * len(docs), (step.name, docs[0].id, step.stats.dropped)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the cat and the dog " * 3, "gopher_short_doc"),
        ("a b c d e to of the and " * 10, "gopher_mean_word_length"),
        (PROSE + " #tag" * 20, "gopher_symbol_ratio"),
        ("\n".join(f"- item number {i} of the list and more" for i in range(20)), "gopher_bullet_lines"),
        (
            "\n".join(
                f"the story of line {i} goes on and on with the people of the old town..." for i in range(20)
            ),
            "gopher_ellipsis_lines",
        ),
        ("12 34 56 78 90 " * 20 + PROSE, "gopher_alpha_words"),
        (
            "Lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor " * 8,
            "gopher_stop_words",
        ),
        (PROSE, None),
    ],
)
def test_gopher_quality_rules(text: str, expected: str | None) -> None:
    assert reason(GopherQualityFilter(), text) == expected


def test_stop_word_rule_only_for_english_and_word_length_skipped_for_cjk() -> None:
    german = "Alle Menschen sind frei und gleich an Würde und Rechten geboren. " * 8
    assert reason(GopherQualityFilter(), german) == "gopher_stop_words"
    assert reason(GopherQualityFilter(), german, language="de") is None
    assert (
        reason(GopherQualityFilter(), "人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心。" * 3)
        is None
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\n\n".join(["Same paragraph of words here."] * 5 + [PROSE]), "gopher_dup_para_frac"),
        ("\n".join(["Buy now!"] * 5 + ["other line " + str(i) for i in range(6)]), "gopher_dup_line_frac"),
        ("\n".join([LONG_LINE, LONG_LINE, *PROSE.split(". ")]), "gopher_dup_line_char_frac"),
        (PROSE + " " + "click here " * 40, "gopher_top_2_gram"),
        (PROSE + " " + " ".join(f"the best deal {i} in town" for i in range(30)), "gopher_top_3_gram"),
        (PROSE, None),
    ],
)
def test_gopher_repetition_rules(text: str, expected: str | None) -> None:
    assert reason(GopherRepetitionFilter(), text) == expected


def test_c4_removes_bad_lines_and_keeps_sentences(shard_ctx: ShardContext) -> None:
    text = (
        "Home | About | Contact\n"
        "Please enable JavaScript to view this page properly.\n"
        "This site uses cookies to improve your experience.\n"
        "The harbour opened in 1850 and grew quickly[1]. Ships came from every port.\n"
        "Trade in grain made the town rich. Many merchants built houses by the water.\n"
        "Short line.\n"
    )
    step = C4LineFilter()
    [doc] = list(step.run([Document("d", text)], shard_ctx))
    assert doc.text == (
        "The harbour opened in 1850 and grew quickly. Ships came from every port.\n"
        "Trade in grain made the town rich. Many merchants built houses by the water."
    )
    assert step.stats.extra["c4_lines_javascript"] == 1 and step.stats.extra["c4_lines_policy"] == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 4, "c4_lorem_ipsum"),
        ("function f() { return 1; } is the code we ran.\n" + PROSE, "c4_curly_bracket"),
        ("One sentence only here.", "c4_too_few_sentences"),
        ("menu\nlogin\nsearch", "c4_empty"),
    ],
)
def test_c4_document_rules(text: str, expected: str, shard_ctx: ShardContext) -> None:
    step = C4LineFilter()
    assert list(step.run([Document("d", text)], shard_ctx)) == []
    assert step.stats.dropped == {expected: 1}


def test_c4_keeps_chinese_with_full_width_punctuation(shard_ctx: ShardContext) -> None:
    text = "子曰：“学而时习之，不亦说乎？”\n有朋自远方来，不亦乐乎？\n人不知而不愠，不亦君子乎？"
    assert len(list(C4LineFilter().run([Document("d", text)], shard_ctx))) == 1


def test_length_bounds(shard_ctx: ShardContext) -> None:
    step = LengthFilter(LengthFilter.Params(min_chars=10, max_words=5))
    docs = [
        Document("short", "tiny"),
        Document("long", "one two three four five six"),
        Document("ok", "just fine here"),
    ]
    assert [d.id for d in step.run(docs, shard_ctx)] == ["ok"]
    assert step.stats.dropped == {"length_too_few_chars": 1, "length_too_many_words": 1}


def test_bad_params_name_the_field() -> None:
    with pytest.raises(ValidationError, match="max_words must be >= min_words"):
        LengthFilter.Params(min_words=10, max_words=5)
    with pytest.raises(ValidationError, match="dup_line_frac"):
        GopherRepetitionFilter.Params(dup_line_frac=2)
    with pytest.raises(ValidationError, match="top_n_grams"):
        GopherRepetitionFilter.Params(top_n_grams=[(0, 0.2)])
    with pytest.raises(ValidationError, match="min_sentences"):
        C4LineFilter.Params(min_sentences=-1)
