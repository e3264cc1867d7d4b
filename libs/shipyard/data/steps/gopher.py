"""The Gopher heuristics (Rae et al. 2021, as in datatrove): repetition and quality filters.

Defaults are the paper's / datatrove's. Words come from ``words.split_words`` (CJK characters count as
words); for Chinese/Japanese documents the mean-word-length and stop-word rules are skipped because they
presuppose space-separated words (see ``words``). One deliberate difference from datatrove: the top
n-gram rule only fires for n-grams that occur more than once (a unique n-gram is not a repetition, and
datatrove's version rejects very short documents for it).
"""

from __future__ import annotations

import math
import re

import numpy as np

from pydantic import Field, field_validator, model_validator

from shipyard.data.document import Document
from shipyard.data.step import Filter, StepParams
from shipyard.data.steps.words import is_cjk, split_words

__all__ = ["GopherQualityFilter", "GopherRepetitionFilter"]

_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile(r"\n+")
STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~—–…‘’“”«»、。，！？：；（）《》「」『』")


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(number of repeated items, characters in them), counting every occurrence after the first."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


# Odd 64-bit multipliers (from splitmix64) for the n-gram hashes; any odd constants would do.
_BASE = np.uint64(0x9E3779B97F4A7C15)
_LENGTH_MIX = np.uint64(0xBF58476D1CE4E5B9)
_N_MIX = np.uint64(0x94D049BB133111EB)


class NGramTable:
    """64-bit hashes and character lengths of the strings ``sep.join(words[i : i + n])``, for every
    start ``i`` and each ``n`` in ``ns``, computed without building the strings.

    The rules compare n-grams as *joined strings* (datatrove joins duplicate n-grams with ``""``, so
    ``["a", "bc"]`` and ``["ab", "c"]`` count as equal); hashing word ids instead would change decisions.
    So the joined text is hashed once with a polynomial prefix hash over its code points (mod 2**64):
    ``P[j] = sum((c[k] + 1) * B**k for k < j)``; the substring ``[s, e)`` hashes to
    ``(P[e] - P[s]) * B**(m - s)``, which is ``B**m`` times a position-independent polynomial, so equal
    substrings hash equally wherever they occur. The length and ``n`` are mixed in as well. Two different
    n-grams of a document collide with probability about 2**-64 per pair (a 10,000-word document has
    ~5e7 pairs per n, so ~3e-12); a collision could only over-count repetition. Lengths come from
    cumulative word lengths, equal to ``len(sep.join(...))``. All n's are done in one pass because the
    per-call overhead of numpy, not the data, dominates on paragraph-sized documents.
    """

    def __init__(self, words: list[str], sep: str, ns: list[int]) -> None:
        self.ns = ns
        self._count = count = len(words)
        word_lengths = np.fromiter(map(len, words), dtype=np.int64, count=count)
        word_ends = np.cumsum(word_lengths + len(sep)) - len(sep)  # end offset of each word in ``joined``
        word_starts = word_ends - word_lengths
        joined = sep.join(words)
        m = len(joined)
        codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        powers = np.full(m + 1, _BASE, dtype=np.uint64)
        powers[0] = 1
        np.cumprod(powers, out=powers)  # B**k, wrapping mod 2**64 like all uint64 arithmetic here
        prefix = np.zeros(m + 1, dtype=np.uint64)
        # +1 so that a NUL character still changes the hash.
        np.cumsum((codes + np.uint64(1)) * powers[:m], out=prefix[1:])
        n_col = np.array(ns, dtype=np.int64).reshape(-1, 1)
        last_word = np.minimum(np.arange(count) + (n_col - 1), count - 1)  # clipped past the last n-gram
        ends = word_ends[last_word]
        self.lengths = ends - word_starts
        self.hashes = (prefix[ends] - prefix[word_starts]) * powers[m - word_starts]
        self.hashes ^= self.lengths.astype(np.uint64) * _LENGTH_MIX ^ n_col.astype(np.uint64) * _N_MIX

    def row(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(hash, character length) of each n-gram, in document order."""
        r, size = self.ns.index(n), max(0, self._count - n + 1)
        return self.hashes[r, :size], self.lengths[r, :size]

    def any_repeated(self) -> bool:
        """Whether any n-gram (of any of the n's) occurs twice; usually not, for prose and n >= 5."""
        if not self._count:
            return False
        valid = np.arange(self._count) <= self._count - np.array(self.ns).reshape(-1, 1)
        ordered = np.sort(self.hashes[valid])
        return bool((ordered[1:] == ordered[:-1]).any())


def top_ngram_chars(hashes: np.ndarray, lengths: np.ndarray) -> int:
    """Characters covered by the most frequent n-gram, if it occurs more than once.

    Ties go to the n-gram that occurs first, as ``Counter.most_common`` does.
    """
    if hashes.size < 2:
        return 0
    _, first, counts = np.unique(hashes, return_index=True, return_counts=True)
    top = int(counts.max())
    if top < 2:
        return 0
    return int(lengths[first[counts == top].min()]) * top


def duplicated_ngram_chars(
    hashes: np.ndarray, lengths: np.ndarray, n: int, total: int = 1, frac: float = math.inf
) -> int:
    """Characters in n-grams that repeat an earlier n-gram (non-overlapping, as in datatrove).

    The scan moves one word on, or ``n`` words past a duplicate, and remembers only the n-grams it
    visits. It stops as soon as ``chars / total > frac`` (the rule has fired), so the count is then a
    lower bound; with the default ``frac`` it is exact.
    """
    if hashes.size < 2:
        return 0
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    if first.size == hashes.size:
        return 0
    inverse = inverse.reshape(-1)
    first_seen = first[inverse]
    repeats = np.flatnonzero(first_seen != np.arange(hashes.size))
    # Only positions whose n-gram occurred earlier can be duplicates; every other visited position is a
    # first occurrence and just gets remembered. A repeat is a duplicate if its first occurrence was
    # visited (not skipped), or an earlier repeat of it was visited and remembered.
    skipped = bytearray(hashes.size + n)
    skip = b"\x01" * (n - 1)
    remembered: set[int] = set()
    chars = next_pos = 0
    for pos, gram, first_pos, length in zip(
        repeats.tolist(),
        inverse[repeats].tolist(),
        first_seen[repeats].tolist(),
        lengths[repeats].tolist(),
        strict=True,
    ):
        if pos < next_pos:
            continue
        if not skipped[first_pos] or gram in remembered:
            chars += length
            if chars / total > frac:
                return chars
            skipped[pos + 1 : pos + n] = skip
            next_pos = pos + n
        else:
            remembered.add(gram)
            next_pos = pos + 1
    return chars


def _fractions(pairs: list[tuple[int, float]]) -> list[tuple[int, float]]:
    for n, frac in pairs:
        if not 1 <= n <= 20 or not 0.0 <= frac <= 1.0:
            raise ValueError(f"({n}, {frac}): n must be in 1..20 and the fraction in 0..1")
    return pairs


class GopherRepetitionFilter(Filter):
    """Drop documents made of repeated lines, paragraphs or n-grams."""

    name = "gopher_repetition"

    class Params(StepParams):
        dup_line_frac: float = Field(0.3, ge=0, le=1, description="max fraction of duplicated lines")
        dup_para_frac: float = Field(0.3, ge=0, le=1, description="max fraction of duplicated paragraphs")
        dup_line_char_frac: float = Field(0.2, ge=0, le=1, description="max char fraction in dup lines")
        dup_para_char_frac: float = Field(0.2, ge=0, le=1, description="max char fraction in dup paragraphs")
        top_n_grams: list[tuple[int, float]] = Field(
            [(2, 0.2), (3, 0.18), (4, 0.16)], description="(n, max char fraction of the top n-gram)"
        )
        dup_n_grams: list[tuple[int, float]] = Field(
            [(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)],
            description="(n, max char fraction in duplicated n-grams)",
        )

        _check_top = field_validator("top_n_grams")(_fractions)
        _check_dup = field_validator("dup_n_grams")(_fractions)

    params: Params

    def reject(self, doc: Document) -> str | None:
        p = self.params
        text = doc.text.strip()
        if not text:
            return "gopher_empty"
        paragraphs = _PARAGRAPHS.split(text)
        count, chars = _duplicates(paragraphs)
        if count / len(paragraphs) > p.dup_para_frac:
            return "gopher_dup_para_frac"
        if chars / len(text) > p.dup_para_char_frac:
            return "gopher_dup_para_char_frac"
        lines = _LINES.split(text)
        count, chars = _duplicates(lines)
        if count / len(lines) > p.dup_line_frac:
            return "gopher_dup_line_frac"
        if chars / len(text) > p.dup_line_char_frac:
            return "gopher_dup_line_char_frac"
        words = split_words(text)
        # CJK "words" are single characters; a word is ~1.5-2 characters, so n word-grams ≈ 2n characters.
        scale, sep = (2, "") if is_cjk(text, doc.metadata.get("language")) else (1, " ")
        top = NGramTable(words, sep, [n * scale for n, _ in p.top_n_grams])
        for n, frac in p.top_n_grams:
            if top_ngram_chars(*top.row(n * scale)) / len(text) > frac:
                return f"gopher_top_{n}_gram"
        # datatrove joins the words of duplicate n-grams without a separator.
        dup = NGramTable(words, "", [n * scale for n, _ in p.dup_n_grams])
        if not dup.any_repeated():
            return None
        for n, frac in p.dup_n_grams:
            chars = duplicated_ngram_chars(*dup.row(n * scale), n * scale, len(text), frac)
            if chars / len(text) > frac:
                return f"gopher_dup_{n}_grams"
        return None


class GopherQualityFilter(Filter):
    """Drop documents whose word statistics do not look like natural prose."""

    name = "gopher_quality"

    class Params(StepParams):
        min_doc_words: int = Field(50, ge=0, description="fewest words (CJK: characters)")
        max_doc_words: int = Field(100_000, ge=1, description="most words")
        min_avg_word_length: float = Field(3.0, ge=0, description="shortest mean word length")
        max_avg_word_length: float = Field(10.0, gt=0, description="longest mean word length")
        max_symbol_word_ratio: float = Field(0.1, ge=0, description="max ('#' or ellipsis) per word")
        max_bullet_lines_ratio: float = Field(0.9, ge=0, le=1, description="max lines starting with a bullet")
        max_ellipsis_lines_ratio: float = Field(0.3, ge=0, le=1, description="max lines ending in ...")
        min_alpha_words_ratio: float = Field(0.8, ge=0, le=1, description="min words with a letter")
        min_stop_words: int = Field(2, ge=0, description="min occurrences of the stop words")
        stop_words: list[str] = Field(list(STOP_WORDS), description="words natural text always uses")
        stop_words_language: str | None = Field(
            "en", description="apply the stop-word rule only to this metadata.language (and to unknown)"
        )

        @model_validator(mode="after")
        def _ranges(self) -> GopherQualityFilter.Params:
            if self.max_doc_words < self.min_doc_words:
                raise ValueError("max_doc_words must be >= min_doc_words")
            if self.max_avg_word_length < self.min_avg_word_length:
                raise ValueError("max_avg_word_length must be >= min_avg_word_length")
            return self

    params: Params

    def __init__(self, params: StepParams | None = None) -> None:
        super().__init__(params)
        self._stop_words = frozenset(w.lower() for w in self.params.stop_words)

    def reject(self, doc: Document) -> str | None:
        p = self.params
        text = doc.text
        words = split_words(text)
        if not words:
            return "gopher_short_doc"
        cjk = is_cjk(text, doc.metadata.get("language"))
        content = [w for w in words if not all(c in _PUNCTUATION for c in w)]
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
        # One word per CJK character makes punctuation look ~1.5x denser than in space-separated text, so
        # for CJK the ratio is taken over words that are not pure punctuation (digits, symbols remain).
        counted = content if cjk else words
        alpha = sum(any(c.isalpha() for c in w) for w in counted)
        if alpha / len(counted) < p.min_alpha_words_ratio:
            return "gopher_alpha_words"
        language = doc.metadata.get("language")
        stop_rule = p.stop_words_language is None or language in (None, p.stop_words_language)
        if (
            stop_rule
            and not cjk
            and sum(w.lower().strip(".,;:!?\"'()") in self._stop_words for w in words) < p.min_stop_words
        ):
            return "gopher_stop_words"
        return None
