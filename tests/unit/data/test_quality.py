"""Gopher, C4 and length filters on real books and on one hand-made case per rule; the fast Gopher
implementation against the straightforward one it replaced (kept here as the oracle)."""

from __future__ import annotations

import collections
import itertools
import json
import pathlib
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shipyard.data.document import Document
from shipyard.data.step import ShardContext
from shipyard.data.steps.gopher import NGramHashes, NGramStrings
from shipyard.data.steps.quality import (
    C4LineFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    LengthFilter,
)
from shipyard.data.steps.readers import InputSpec, make_reader
from shipyard.data.steps.words import is_cjk, split_words

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


# --- The fast Gopher implementation against the straightforward one it replaced -------------------------
#
# The oracle below is the former implementation of ``gopher.py`` (joined strings in Counters and sets,
# per-character punctuation tests), kept verbatim as the definition the fast version must match.

ORACLE_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~—–…‘’“”«»、。，！？：；（）《》「」『』")


def oracle_duplicates(items: list[str]) -> tuple[int, int]:
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


def oracle_top_ngram_chars(words: list[str], n: int, sep: str = " ") -> int:
    grams = collections.Counter(sep.join(words[i : i + n]) for i in range(len(words) - n + 1))
    if not grams:
        return 0
    gram, count = grams.most_common(1)[0]
    return len(gram) * count if count > 1 else 0


def oracle_duplicated_ngram_chars(words: list[str], n: int) -> int:
    seen: set[str] = set()
    chars = i = 0
    while i < len(words) - n + 1:
        gram = "".join(words[i : i + n])
        if gram in seen:
            chars += len(gram)
            i += n
        else:
            seen.add(gram)
            i += 1
    return chars


def oracle_repetition(p: GopherRepetitionFilter.Params, doc: Document) -> str | None:
    text = doc.text.strip()
    if not text:
        return "gopher_empty"
    paragraphs = re.split(r"\n{2,}", text)
    count, chars = oracle_duplicates(paragraphs)
    if count / len(paragraphs) > p.dup_para_frac:
        return "gopher_dup_para_frac"
    if chars / len(text) > p.dup_para_char_frac:
        return "gopher_dup_para_char_frac"
    lines = re.split(r"\n+", text)
    count, chars = oracle_duplicates(lines)
    if count / len(lines) > p.dup_line_frac:
        return "gopher_dup_line_frac"
    if chars / len(text) > p.dup_line_char_frac:
        return "gopher_dup_line_char_frac"
    words = split_words(text)
    scale, sep = (2, "") if is_cjk(text, doc.metadata.get("language")) else (1, " ")
    for n, frac in p.top_n_grams:
        if oracle_top_ngram_chars(words, n * scale, sep) / len(text) > frac:
            return f"gopher_top_{n}_gram"
    for n, frac in p.dup_n_grams:
        if oracle_duplicated_ngram_chars(words, n * scale) / len(text) > frac:
            return f"gopher_dup_{n}_grams"
    return None


def oracle_quality(p: GopherQualityFilter.Params, doc: Document) -> str | None:
    text = doc.text
    words = split_words(text)
    if not words:
        return "gopher_short_doc"
    cjk = is_cjk(text, doc.metadata.get("language"))
    content = [w for w in words if not all(c in ORACLE_PUNCTUATION for c in w)]
    if len(content) < p.min_doc_words:
        return "gopher_short_doc"
    if len(content) > p.max_doc_words:
        return "gopher_long_doc"
    if not cjk:
        mean = sum(len(w) for w in content) / len(content)
        if mean < p.min_avg_word_length or mean > p.max_avg_word_length:
            return "gopher_mean_word_length"
    if max(text.count("#"), text.count("...") + text.count("…")) / len(words) > p.max_symbol_word_ratio:
        return "gopher_symbol_ratio"
    lines = [line for line in text.splitlines() if line.strip()] or [text]
    bullets = sum(line.lstrip().startswith(("•", "-", "*", "·", "‣")) for line in lines)
    if bullets / len(lines) > p.max_bullet_lines_ratio:
        return "gopher_bullet_lines"
    ellipsis = sum(line.rstrip().endswith(("...", "…")) for line in lines)
    if ellipsis / len(lines) > p.max_ellipsis_lines_ratio:
        return "gopher_ellipsis_lines"
    counted = content if cjk else words
    alpha = sum(any(c.isalpha() for c in w) for w in counted)
    if alpha / len(counted) < p.min_alpha_words_ratio:
        return "gopher_alpha_words"
    language = doc.metadata.get("language")
    stop_rule = p.stop_words_language is None or language in (None, p.stop_words_language)
    stop_words = {w.lower() for w in p.stop_words}
    if (
        stop_rule
        and not cjk
        and sum(w.lower().strip(".,;:!?\"'()") in stop_words for w in words) < p.min_stop_words
    ):
        return "gopher_stop_words"
    return None


def assert_ngram_counts_match_oracle(words: list[str], ns: range) -> None:
    """Both n-gram representations report the oracle's exact character counts for every n and joiner."""
    groups = [(" ", list(ns)), ("", list(ns))]
    for grams in (NGramStrings(words, groups), NGramHashes(words, groups)):
        for n in ns:
            assert grams.top_chars(0, n) == oracle_top_ngram_chars(words, n, " "), (type(grams), n, words)
            assert grams.top_chars(1, n) == oracle_top_ngram_chars(words, n, ""), (type(grams), n, words)
            assert grams.duplicated_chars(1, n) == oracle_duplicated_ngram_chars(words, n), (type(grams), n)
        repeated = any(oracle_duplicated_ngram_chars(words, n) for n in ns)
        assert grams.any_repeated(1) or not repeated


def paragraphs(path: pathlib.Path) -> list[str]:
    text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    return [p for p in re.split(r"\n{2,}", text) if p.strip()]


def real_documents(shared_data: pathlib.Path) -> list[Document]:
    """Paragraphs and 25-paragraph chunks (past the hashing threshold) of every corpus, with languages."""
    corpus = shared_data / "corpus"
    docs: list[Document] = []
    for name, language in [
        ("books/pride_and_prejudice.en.txt", None),
        ("tinyshakespeare/input.txt", None),
        ("books/wagahai_wa_neko_de_aru.ja.txt", "ja"),
        ("chinese_poetry/lunyu.zh.txt", None),
    ]:
        paras = paragraphs(corpus / name)
        meta = {"language": language} if language else {}
        docs += [Document(f"{name}:{i}", p, meta) for i, p in enumerate(paras[:1500:3])]
        docs += [Document(f"{name}@{i}", "\n\n".join(paras[i : i + 25]), meta) for i in range(0, 1500, 60)]
    with open(corpus / "udhr/udhr_sample.jsonl", encoding="utf-8") as f:
        udhr = [json.loads(line) for line in f]
    docs += [Document(f"udhr:{i}", r["text"], {"language": r["lang"]}) for i, r in enumerate(udhr[::4])]
    with open(corpus / "chinese_poetry/poems.jsonl", encoding="utf-8") as f:
        poems = [json.loads(line) for line in itertools.islice(f, 0, 3000, 10)]
    docs += [Document(f"poem:{p['id']}", "\n".join(p["paragraphs"])) for p in poems]
    return docs


REPETITIVE = [
    "spam " * 300,
    PROSE + " " + "buy cheap watches online today " * 30,
    " ".join(f"the best deal {i % 7} in the whole town of {i % 3}" for i in range(120)),
    PROSE + "\n" + "\n".join(f"line {i}: " + PROSE[: 40 + i] for i in range(80)),
    "人人生而自由，在尊严和权利上一律平等。" * 40,
    "子曰：学而时习之，不亦说乎？" * 5 + "有朋自远方来，不亦乐乐乎？" * 30,
    # Different segmentations of one joined string: datatrove's "".join counts them as the same n-gram.
    " ".join(["a bc d e f g h i j k", "ab c d e f g h i j k"] * 40),
    PROSE + " " + " ".join(["x" * 50] * 12) + " " + PROSE,
]


def test_fast_gopher_filters_decide_like_the_oracle_on_real_and_repetitive_text(shared_data) -> None:
    docs = real_documents(shared_data) + [Document(f"rep{i}", t) for i, t in enumerate(REPETITIVE)]
    repetition, quality = GopherRepetitionFilter(), GopherQualityFilter()
    decisions: collections.Counter[str | None] = collections.Counter()
    for doc in docs:
        expected = oracle_repetition(repetition.params, doc)
        assert repetition.reject(doc) == expected, doc.id
        assert quality.reject(doc) == oracle_quality(quality.params, doc), doc.id
        decisions[expected] += 1
    # The sample exercises both outcomes and the n-gram rules, not only the cheap early ones.
    assert decisions[None] > 0.5 * len(docs)
    assert sum(v for k, v in decisions.items() if k and "gram" in k) >= 5, decisions


def test_ngram_character_counts_match_the_oracle_on_real_text(shared_data) -> None:
    docs = real_documents(shared_data)
    for doc in docs[::7] + [Document(f"rep{i}", t) for i, t in enumerate(REPETITIVE)]:
        assert_ngram_counts_match_oracle(split_words(doc.text), range(1, 11))


def test_early_stop_gives_the_same_decision_and_at_least_the_threshold() -> None:
    words = split_words(" ".join(["one two three four five six"] * 50))
    grams = NGramHashes(words, [("", [5])])
    exact = oracle_duplicated_ngram_chars(words, 5)
    total = len(" ".join(words))
    stopped = grams.duplicated_chars(0, 5, total, 0.1)
    assert stopped / total > 0.1 and stopped < exact  # fired, without scanning the whole document
    assert grams.duplicated_chars(0, 5, total, 0.99) == exact  # never fires: exact count


def test_unusual_characters_hash_like_their_strings() -> None:
    # NUL, astral-plane characters and a lone surrogate (possible after lenient JSON decoding).
    words = ["a\x00", "a", "\x00", "𝔘𝔫𝔦", "\ud800", "x", "a\x00", "a", "\x00", "𝔘𝔫𝔦", "\ud800", "x"] * 8
    assert_ngram_counts_match_oracle(words, range(1, 8))


TOKENS = st.sampled_from(["a", "b", "ab", "ba", "the", "of", "#", "...", "，", "的", "人", "x" * 12, "-"])
SEPARATORS = st.sampled_from([" ", " ", " ", "\n", "\n\n", "\u3000"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tokens=st.lists(TOKENS, max_size=160), seps=st.lists(SEPARATORS, min_size=1, max_size=160))
def test_fast_gopher_matches_the_oracle_on_generated_text(tokens: list[str], seps: list[str]) -> None:
    text = "".join(t + seps[i % len(seps)] for i, t in enumerate(tokens))
    for metadata in ({}, {"language": "zh"}):
        doc = Document("d", text, metadata)
        repetition = GopherRepetitionFilter(GopherRepetitionFilter.Params(top_n_grams=[(2, 0.5), (3, 0.4)]))
        assert repetition.reject(doc) == oracle_repetition(repetition.params, doc)
        quality = GopherQualityFilter(GopherQualityFilter.Params(min_doc_words=3))
        assert quality.reject(doc) == oracle_quality(quality.params, doc)
    assert_ngram_counts_match_oracle(split_words(text), range(1, 7))
