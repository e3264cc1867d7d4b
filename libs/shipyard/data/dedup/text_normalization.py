"""How dedup sees text: the normalized token stream that exact, MinHash and sentence dedup hash.

``simplify`` lowercases, turns every Unicode punctuation/symbol character into a space, every decimal
digit (any script) into ``0`` and every Unicode space separator into a plain space — the same recipe as
datatrove's ``simplify_text`` (minus diacritic folding, which costs a full NFKD pass for little gain in
recall). Scripts written without spaces between words (Han, Hiragana/Katakana, Thai, Lao, Khmer,
Myanmar) get a space around *each character*, so a "word n-gram" over them is a character n-gram; text
mixing English and Japanese therefore shingles English by words and Japanese by characters.

Everything is one ``str.lower`` plus one ``str.translate`` per document (C loops, no Python per
character), so this stays cheap next to the hashing that follows.
"""

from __future__ import annotations

import functools
import sys
import unicodedata

__all__ = ["is_unsegmented", "normalize_exact", "simplify", "simplify_bytes", "word_count"]

# Scripts without spaces between words: each character becomes its own token.
_UNSEGMENTED_RANGES: tuple[tuple[int, int], ...] = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # half-width Katakana
    (0x20000, 0x2FA1F),  # CJK extensions B-F and compatibility supplement
)


def is_unsegmented(char: str) -> bool:
    """Whether ``char`` belongs to a script written without spaces (tokenized per character)."""
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in _UNSEGMENTED_RANGES)


@functools.cache
def _simplify_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for cp in range(sys.maxunicode + 1):
        char = chr(cp)
        category = unicodedata.category(char)
        if category[0] in "PS" or category in ("Zs", "Zl", "Zp", "Cc"):
            table[cp] = " "
        elif category == "Nd":
            table[cp] = "0"
    for lo, hi in _UNSEGMENTED_RANGES:
        for cp in range(lo, hi + 1):
            if cp not in table:
                table[cp] = f" {chr(cp)} "
    # Keep the whitespace that str.split already understands as it is (cheaper than mapping it).
    for ws in " \t\n\r\x0b\x0c":
        table.pop(ord(ws), None)
    return table


def simplify(text: str) -> str:
    """Lowercase, punctuation/symbols to spaces, digits to ``0``, spaces around unsegmented characters.

    Whitespace is *not* collapsed here: callers that tokenize split on any whitespace run.
    """
    return text.lower().translate(_simplify_table())


@functools.cache
def _ascii_bytes_table() -> bytes:
    table = _simplify_table()
    return bytes(ord(table.get(b, chr(b))) for b in range(128)) + bytes(range(128, 256))


def simplify_bytes(text: str) -> bytes:
    """``simplify(text)`` encoded as UTF-8; pure-ASCII text takes a ``bytes.translate`` fast path (~30x)."""
    if text.isascii():
        return text.lower().encode("ascii").translate(_ascii_bytes_table())
    return simplify(text).encode("utf-8")


def normalize_exact(text: str, *, lowercase: bool, collapse_whitespace: bool, strip_punctuation: bool) -> str:
    """The text an exact-duplicate hash is taken over, according to the step's switches."""
    if strip_punctuation:
        text = simplify(text)
    elif lowercase:
        text = text.lower()
    if collapse_whitespace or strip_punctuation:
        text = " ".join(text.split())
    return text


def word_count(text: str) -> int:
    """Words as dedup counts them (an unsegmented-script character counts as one word)."""
    return len(simplify(text).split())
