"""``Normalize``: Unicode normalization form, invisible characters and whitespace.

Zero-width *joiners* (U+200C/U+200D) are kept on purpose: they carry meaning in Persian, Indic scripts
and emoji sequences. Tabs are kept because they are indentation in code; only runs of spaces collapse.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from typing import Literal

from pydantic import Field, model_validator

from shipyard.data.document import Document
from shipyard.data.step import StepParams, Transform

__all__ = ["Normalize"]

# C0/C1 controls except tab and newline (CR is handled by the newline rule), plus invisible format
# characters that only ever get in the way: zero-width space, word joiner, BOM, soft hyphen, bidi marks.
_INVISIBLE = {c: None for c in range(0x20) if chr(c) not in "\t\n\r"}
_INVISIBLE.update({c: None for c in range(0x7F, 0xA0)})
_INVISIBLE.update(
    dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u00ad\u200e\u200f\u202a\u202b\u202c\u202d\u202e"))
)
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x85]")
_SPACES = re.compile(r"[ \u00a0]{2,}")
_TRAILING = re.compile(r"[ \t\u00a0]+$", re.MULTILINE)


class Normalize(Transform):
    """Normalize Unicode and whitespace so later steps (dedup above all) see one spelling per text."""

    name = "normalize"

    class Params(StepParams):
        form: Literal["NFC", "NFKC", "none"] = Field("NFC", description="Unicode normalization form")
        remove_invisible: bool = Field(True, description="drop control and zero-width characters")
        collapse_spaces: bool = Field(True, description="runs of spaces become one space")
        strip_trailing: bool = Field(True, description="remove spaces at line ends")
        max_newlines: int = Field(2, ge=1, le=100, description="longest run of newlines kept")
        fix_mojibake: bool = Field(False, description="repair mis-decoded text with ftfy (needs ftfy)")

        @model_validator(mode="after")
        def _ftfy_available(self) -> Normalize.Params:
            if self.fix_mojibake and "ftfy" not in sys.modules:
                try:
                    import ftfy  # noqa: F401
                except ImportError as exc:
                    raise ValueError("fix_mojibake needs the 'ftfy' package, which is not installed") from exc
            return self

    params: Params

    def __init__(self, params: StepParams | None = None) -> None:
        super().__init__(params)
        self._newlines = re.compile("\n{" + str(self.params.max_newlines + 1) + ",}")

    def transform(self, doc: Document) -> Document | None:
        p = self.params
        text = doc.text
        if p.fix_mojibake:
            import ftfy

            text = ftfy.fix_text(text)
        if p.form != "none":
            text = unicodedata.normalize(p.form, text)
        text = _LINE_BREAKS.sub("\n", text)
        if p.remove_invisible:
            text = text.translate(_INVISIBLE)
        if p.collapse_spaces:
            text = _SPACES.sub(" ", text)
        if p.strip_trailing:
            text = _TRAILING.sub("", text)
        text = self._newlines.sub("\n" * p.max_newlines, text).strip("\n")
        if text != doc.text:
            self.stats.extra["docs_changed"] += 1
            self.stats.extra["chars_removed"] += max(0, len(doc.text) - len(text))
            doc.text = text
        return doc
