"""The Gopher heuristics (Rae et al. 2021, as in datatrove): repetition and quality filters.

Defaults are the paper's / datatrove's. Words come from ``words.split_words`` (CJK characters count as
words); for Chinese/Japanese documents the mean-word-length and stop-word rules are skipped because they
presuppose space-separated words (see ``words``). One deliberate difference from datatrove: the top
n-gram rule only fires for n-grams that occur more than once (a unique n-gram is not a repetition, and
datatrove's version rejects very short documents for it).

The n-gram rules are the hot path of ingest. They compare n-grams as joined strings, exactly as the
straightforward version (kept in ``tests/unit/data/test_quality.py`` as the oracle) did, but never build
one string per position: short documents slice n-grams out of one joined string (``NGramStrings``),
longer ones hash every n-gram of every n in one numpy pass (``NGramHashes``); repeated n-grams are
found by sorting, and the duplicate scan only visits positions whose n-gram occurred before.
"""

from __future__ import annotations

import collections
import itertools
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
# A word made only of these is punctuation; ``w.strip(_PUNCTUATION)`` is empty exactly then (one C call).
_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~—–…‘’“”«»、。，！？：；（）《》「」『』"
_STOP_WORD_STRIP = ".,;:!?\"'()"


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
# Below this many words, slicing the n-gram strings out of the joined text beats numpy's fixed
# per-call cost (measured: ~45 µs per document for the hash table); above it, hashing wins (4x at 350).
HASH_MIN_WORDS = 64

Groups = list[tuple[str, list[int]]]  # (separator, [n, ...]) per rule family


def _duplicate_walk(
    repeats: list[int], firsts: list[int], lengths: list[int], n: int, total: int, frac: float
) -> int:
    """datatrove's duplicate n-gram scan, visiting only the positions whose n-gram occurred before.

    The scan moves one word on, or ``n`` words past a duplicate, and remembers only the n-grams it
    visits. A visited position that is a first occurrence is just remembered; a repeat (at ``repeats``,
    first seen at ``firsts``) is a duplicate if that first occurrence was visited, not skipped, or an
    earlier repeat of it was visited and remembered. Stops once ``chars / total > frac``.
    """
    skipped = bytearray(max(repeats, default=0) + n + 1)
    skip = b"\x01" * (n - 1)
    remembered: set[int] = set()  # n-grams (named by their first position) remembered at a repeat
    chars = next_pos = 0
    for pos, first, length in zip(repeats, firsts, lengths, strict=True):
        if pos < next_pos:
            continue
        if not skipped[first] or first in remembered:
            chars += length
            if chars / total > frac:
                break
            skipped[pos + 1 : pos + n] = skip
            next_pos = pos + n
        else:
            remembered.add(first)
            next_pos = pos + 1
    return chars


class NGramStrings:
    """The n-gram strings ``sep.join(words[i : i + n])`` themselves, sliced from one joined string."""

    def __init__(self, words: list[str], groups: Groups) -> None:
        self._groups, self._joins, self._count = groups, {}, len(words)
        for sep, _ in groups:
            starts = list(itertools.accumulate([len(w) + len(sep) for w in words], initial=0))
            self._joins[sep] = sep.join(words), starts, [s - len(sep) for s in starts[1:]]

    def _grams(self, group: int, n: int) -> list[str]:
        joined, starts, ends = self._joins[self._groups[group][0]]
        return [joined[s:e] for s, e in zip(starts, ends[n - 1 :], strict=False)]

    def any_repeated(self, group: int) -> bool:
        """Whether any n-gram of the group occurs twice."""
        ns = [n for n in self._groups[group][1] if n < self._count]  # a repeat needs two n-grams
        return any(len(set(g)) < len(g) for g in map(self._grams, itertools.repeat(group), ns))

    def top_chars(self, group: int, n: int) -> int:
        """Characters covered by the most frequent n-gram, if it occurs more than once (ties: the first)."""
        if n >= self._count:
            return 0  # fewer than two n-grams
        gram, top = collections.Counter(self._grams(group, n)).most_common(1)[0]
        return len(gram) * top if top > 1 else 0

    def duplicated_chars(self, group: int, n: int, total: int = 1, frac: float = math.inf) -> int:
        """Characters in n-grams repeating an earlier one, non-overlapping; see ``_duplicate_walk``."""
        grams = self._grams(group, n)
        seen: dict[str, int] = {}
        firsts = [seen.setdefault(g, i) for i, g in enumerate(grams)]
        repeats = [i for i, f in enumerate(firsts) if f != i]
        if not repeats:
            return 0
        return _duplicate_walk(
            repeats, [firsts[i] for i in repeats], [len(grams[i]) for i in repeats], n, total, frac
        )


class NGramHashes:
    """64-bit hashes and character lengths of the strings ``sep.join(words[i : i + n])``, for every start
    ``i`` and every n of every group, computed in one numpy pass without building the strings.

    The rules compare n-grams as *joined strings* (datatrove joins duplicate n-grams with ``""``, so
    ``["a", "bc"]`` and ``["ab", "c"]`` count as equal); hashing word ids instead would change decisions.
    So one string holding each separator's join is hashed with a polynomial prefix hash over its code
    points (mod 2**64): ``P[j] = sum(c[k] * B**k for k < j)``; the substring ``[s, e)`` hashes to
    ``(P[e] - P[s]) * B**(M - s)``, which is ``B**M`` times a position-independent polynomial, so equal
    substrings hash equally wherever they occur. Length (so NULs count) and n are mixed in. Two n-grams
    of a document collide with probability about 2**-64 per pair (a 10,000-word document has ~5e7 pairs
    per n, so ~3e-12); a collision could only over-count repetition. Character lengths come from
    cumulative word lengths, equal to ``len(sep.join(...))``.
    """

    def __init__(self, words: list[str], groups: Groups) -> None:
        self._count = count = len(words)
        seps = list(dict.fromkeys(sep for sep, _ in groups))
        word_lengths = np.fromiter(map(len, words), dtype=np.int64, count=count)
        bounds, joins, offset = [], [], 0  # each word's (start, end) in ``text``, per separator
        for sep in seps:
            joins.append(sep.join(words))
            ends = np.cumsum(word_lengths + len(sep)) + (offset - len(sep))
            bounds.append((ends - word_lengths, ends))
            offset += len(joins[-1])
        codes = np.frombuffer("".join(joins).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        powers = np.full(offset + 1, _BASE, dtype=np.uint64)
        powers[0] = 1
        np.cumprod(powers, out=powers)  # B**k, wrapping mod 2**64 like all uint64 arithmetic here
        prefix = np.zeros(offset + 1, dtype=np.uint64)
        np.cumsum(codes * powers[:offset], out=prefix[1:])
        keys = [(g, n) for g, (_, ns) in enumerate(groups) for n in ns]
        self._rows = {key: r for r, key in enumerate(keys)}
        row_sep = np.array([seps.index(groups[g][0]) for g, _ in keys], dtype=np.intp).reshape(-1, 1)
        n_col = np.array([n for _, n in keys], dtype=np.int64).reshape(-1, 1)
        word_starts = np.stack([b[0] for b in bounds])[row_sep[:, 0]]  # (rows, words)
        last_word = np.minimum(np.arange(count) + (n_col - 1), count - 1)  # clipped past the last n-gram
        ends = np.stack([b[1] for b in bounds])[row_sep, last_word]
        self._lengths = ends - word_starts
        self._hashes = (prefix[ends] - prefix[word_starts]) * powers[offset - word_starts]
        self._hashes ^= self._lengths.astype(np.uint64) * _LENGTH_MIX ^ n_col.astype(np.uint64) * _N_MIX
        self._valid = np.arange(count) <= count - n_col

    def row(self, group: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(hash, character length) of the n-gram at each start, in document order."""
        r, size = self._rows[group, n], max(0, self._count - n + 1)
        return self._hashes[r, :size], self._lengths[r, :size]

    def any_repeated(self, group: int) -> bool:
        """Whether any n-gram of the group occurs twice (one sort for all its n's)."""
        rows = [r for (g, _), r in self._rows.items() if g == group]
        ordered = np.sort(self._hashes[rows][self._valid[rows]])
        return bool((ordered[1:] == ordered[:-1]).any())

    def top_chars(self, group: int, n: int) -> int:
        """Characters covered by the most frequent n-gram, if it occurs more than once (ties: the first)."""
        hashes, lengths = self.row(group, n)
        if hashes.size < 2:
            return 0
        _, first, counts = np.unique(hashes, return_index=True, return_counts=True)
        top = int(counts.max())
        return int(lengths[first[counts == top].min()]) * top if top > 1 else 0

    def duplicated_chars(self, group: int, n: int, total: int = 1, frac: float = math.inf) -> int:
        """Characters in n-grams repeating an earlier one, non-overlapping; see ``_duplicate_walk``."""
        hashes, lengths = self.row(group, n)
        _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
        if first.size == hashes.size:
            return 0
        firsts = first[inverse.reshape(-1)]
        repeats = np.flatnonzero(firsts != np.arange(hashes.size))
        return _duplicate_walk(
            repeats.tolist(), firsts[repeats].tolist(), lengths[repeats].tolist(), n, total, frac
        )


def ngrams(words: list[str], groups: Groups) -> NGramStrings | NGramHashes:
    """The cheaper representation of the n-grams of ``words``; both give the same answers."""
    return NGramHashes(words, groups) if len(words) >= HASH_MIN_WORDS else NGramStrings(words, groups)


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
        # datatrove joins the words of duplicate n-grams without a separator.
        top_ns, dup_ns = [n * scale for n, _ in p.top_n_grams], [n * scale for n, _ in p.dup_n_grams]
        grams = ngrams(words, [(sep, top_ns), ("", dup_ns)])
        for n, frac in p.top_n_grams:
            if grams.top_chars(0, n * scale) / len(text) > frac:
                return f"gopher_top_{n}_gram"
        if not grams.any_repeated(1):
            return None
        for n, frac in p.dup_n_grams:
            if grams.duplicated_chars(1, n * scale, len(text), frac) / len(text) > frac:
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

    def _has_stop_words(self, words: list[str], at_least: int) -> bool:
        """Whether ``words`` hold ``at_least`` stop words; stops reading at the last one needed."""
        if at_least <= 0:
            return True
        stripped = (w.lower().strip(_STOP_WORD_STRIP) for w in words)
        return (
            next(itertools.islice(filter(self._stop_words.__contains__, stripped), at_least - 1, None), None)
            is not None
        )

    def reject(self, doc: Document) -> str | None:
        p = self.params
        text = doc.text
        words = split_words(text)
        if not words:
            return "gopher_short_doc"
        cjk = is_cjk(text, doc.metadata.get("language"))
        content = [w for w in words if w.strip(_PUNCTUATION)]
        if len(content) < p.min_doc_words:
            return "gopher_short_doc"
        if len(content) > p.max_doc_words:
            return "gopher_long_doc"
        if not cjk:
            mean = sum(map(len, content)) / len(content)
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
        alpha = sum(w.isalpha() or any(map(str.isalpha, w)) for w in counted)
        if alpha / len(counted) < p.min_alpha_words_ratio:
            return "gopher_alpha_words"
        language = doc.metadata.get("language")
        stop_rule = p.stop_words_language is None or language in (None, p.stop_words_language)
        if stop_rule and not cjk and not self._has_stop_words(words, p.min_stop_words):
            return "gopher_stop_words"
        return None
