"""Word splitting shared by the heuristic filters, fair to scripts written without spaces.

Gopher/C4 rules count whitespace-separated words. Chinese and Japanese have no spaces, so a whole
paragraph would be one "word" and fail every rule. We count each Han / kana character as one word
instead (a Chinese word averages ~1.5 characters, so counts stay comparable), and the rules that only
make sense for space-separated languages (mean word length, English stop words) are skipped for such
documents. datatrove instead loads a word tokenizer per language; this keeps us dependency-free.
"""

from __future__ import annotations

import re

__all__ = ["CJK_LANGUAGES", "is_cjk", "split_words"]

# Han (incl. extension A and compatibility ideographs), hiragana, katakana, CJK symbols and punctuation.
_CJK_CHARS = "\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_WORD = re.compile(f"[{_CJK_CHARS}]|[^\\s{_CJK_CHARS}]+")
_CJK = re.compile(f"[{_CJK_CHARS}]")
CJK_LANGUAGES = frozenset({"zh", "ja", "yue", "wuu", "lzh"})


def split_words(text: str) -> list[str]:
    """Whitespace-separated tokens, with every CJK character a token of its own."""
    return _WORD.findall(text)


def is_cjk(text: str, language: object = None) -> bool:
    """Whether ``text`` is (mostly) Chinese/Japanese: by ``metadata.language`` if set, else by script."""
    if isinstance(language, str) and language:
        return language.split("-")[0].lower() in CJK_LANGUAGES
    sample = text[:2000]
    letters = sum(map(str.isalpha, sample))  # map: no Python-level loop per character
    return letters > 0 and len(_CJK.findall(sample)) / letters > 0.3
