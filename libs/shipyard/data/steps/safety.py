"""Safety steps: ``UnsafeContentFilter`` (blocklist) and ``PiiRedact`` (emails, phones, IP addresses).

The blocklist is matched with one compiled alternation regex (longest terms first), whole words,
case-insensitive; terms in scripts without spaces (CJK) are matched as substrings since ``\\b`` means
nothing there. PII patterns aim at precision: a phone number needs a ``+`` country code or the
grouped US layout, so years, prices and plain digit runs are left alone; IPv4 octets must be 0-255 and
IPv6 candidates must parse with ``ipaddress``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from importlib import resources
from typing import Literal

from pydantic import Field

from shipyard.data.document import Document
from shipyard.data.step import PipelineStep, ShardContext, StepParams, Transform
from shipyard.data.steps.words import split_words

__all__ = ["PiiRedact", "UnsafeContentFilter", "builtin_blocklist", "compile_blocklist"]


def builtin_blocklist() -> list[str]:
    """The shipped terms (``shipyard/data/resources/unsafe_words.txt``)."""
    text = resources.files("shipyard.data").joinpath("resources/unsafe_words.txt").read_text("utf-8")
    return parse_word_list(text)


def parse_word_list(text: str) -> list[str]:
    """Terms of a word-list file: one per line, ``#`` comments and blank lines ignored."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def compile_blocklist(terms: Iterable[str]) -> re.Pattern[str]:
    """One regex matching any term as a whole word (spaces in a term match any whitespace)."""
    parts = []
    for term in sorted({t.lower() for t in terms if t.strip()}, key=len, reverse=True):
        body = r"\s+".join(re.escape(w) for w in term.split())
        parts.append(body if split_words(term) != term.split() else rf"(?<!\w){body}(?!\w)")
    if not parts:
        return re.compile(r"(?!x)x")  # matches nothing
    return re.compile("|".join(parts), re.IGNORECASE)


class UnsafeContentFilter(PipelineStep):
    """Drop documents with too many blocklisted terms; record the count in ``metadata.unsafe_hits``."""

    name = "unsafe_content"

    class Params(StepParams):
        use_builtin_list: bool = Field(True, description="include the shipped blocklist")
        words: list[str] = Field([], description="extra terms to block")
        words_uri: str | None = Field(None, min_length=1, description="a word-list file with more terms")
        min_hits: int = Field(1, ge=1, description="drop when at least this many hits ...")
        min_hit_ratio: float = Field(0.0, ge=0.0, le=1.0, description="... and hits/words is at least this")

    params: Params

    def __init__(self, params: StepParams | None = None) -> None:
        super().__init__(params)
        self._pattern: re.Pattern[str] | None = None

    def _compile(self, ctx: ShardContext) -> re.Pattern[str]:
        terms = list(self.params.words)
        if self.params.use_builtin_list:
            terms += builtin_blocklist()
        if self.params.words_uri:
            terms += parse_word_list(ctx.storage.read_text(self.params.words_uri))
        return compile_blocklist(terms)

    def run(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        if self._pattern is None:
            self._pattern = self._compile(ctx)
        p = self.params
        for doc in docs:
            self.stats.docs_in += 1
            hits = sum(1 for _ in self._pattern.finditer(doc.text))
            doc.metadata["unsafe_hits"] = hits
            if hits >= p.min_hits and hits / max(1, len(split_words(doc.text))) >= p.min_hit_ratio:
                self.stats.drop("unsafe_content")
                continue
            self.stats.docs_out += 1
            yield doc


_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\w|\.\d)")
_IPV6_CANDIDATE = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}"  # international: +44 20 7946 0958, +1 (555) 123-4567
    r"|(?:1[ .-])?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}"  # US: (555) 123-4567, 555-123-4567
    r")(?!\w)"
)

PiiKind = Literal["email", "phone", "ip"]


class PiiRedact(Transform):
    """Replace emails, phone numbers and IP addresses with placeholders, counting each kind."""

    name = "pii_redact"

    class Params(StepParams):
        kinds: list[PiiKind] = Field(["email", "phone", "ip"], description="which PII to redact")
        email_replacement: str = Field("<EMAIL>", description="what replaces an email address")
        phone_replacement: str = Field("<PHONE>", description="what replaces a phone number")
        ip_replacement: str = Field("<IP_ADDRESS>", description="what replaces an IP address")

    params: Params

    def transform(self, doc: Document) -> Document | None:
        p = self.params
        text = doc.text
        # Order matters: emails first (they contain dots and digits), IPs before phones (dotted digits).
        if "email" in p.kinds:
            text, n = _EMAIL.subn(p.email_replacement, text)
            self.stats.extra["pii_emails_redacted"] += n
        if "ip" in p.kinds:
            text, n = _IPV4.subn(p.ip_replacement, text)
            text, n6 = self._redact_ipv6(text)
            self.stats.extra["pii_ips_redacted"] += n + n6
        if "phone" in p.kinds:
            text, n = self._redact_phones(text)
            self.stats.extra["pii_phones_redacted"] += n
        doc.text = text
        return doc

    def _redact_ipv6(self, text: str) -> tuple[str, int]:
        count = 0

        def repl(m: re.Match[str]) -> str:
            nonlocal count
            candidate = m.group(0)
            try:
                ipaddress.IPv6Address(candidate)
            except ValueError:
                return candidate
            count += 1
            return self.params.ip_replacement

        return _IPV6_CANDIDATE.sub(repl, text), count

    def _redact_phones(self, text: str) -> tuple[str, int]:
        count = 0

        def repl(m: re.Match[str]) -> str:
            nonlocal count
            if sum(c.isdigit() for c in m.group(0)) < 7:
                return m.group(0)
            count += 1
            return self.params.phone_replacement

        return _PHONE.sub(repl, text), count
