"""UnsafeContentFilter (blocklist) and PiiRedact (emails, phones, IPs)."""

from __future__ import annotations

import pathlib

import pytest
from pydantic import ValidationError

from shipyard.data.document import Document
from shipyard.data.step import ShardContext
from shipyard.data.steps.safety import PiiRedact, UnsafeContentFilter


def test_blocklist_matches_whole_words_case_insensitively(shard_ctx: ShardContext) -> None:
    step = UnsafeContentFilter()
    docs = [
        Document("bad", "Watch free PORN videos and a Sex  Video here."),
        Document("ok", "The pornographer's lawsuit was reported; Xxxenia is a name; pornography-free."),
        Document("clean", "The harbour opened in 1850."),
    ]
    out = list(step.run(docs, shard_ctx))
    assert [d.id for d in out] == ["clean"]
    assert docs[0].metadata["unsafe_hits"] == 2
    assert docs[2].metadata["unsafe_hits"] == 0
    assert step.stats.dropped == {"unsafe_content": 2}  # "pornography" is listed; "pornographer's" is not


def test_shakespeare_is_not_flagged(shared_data: pathlib.Path, shard_ctx: ShardContext) -> None:
    text = (shared_data / "corpus/tinyshakespeare/input.txt").read_text("utf-8")
    docs = [Document(str(i), p) for i, p in enumerate(text.split("\n\n"))]
    step = UnsafeContentFilter()
    assert len(list(step.run(docs, shard_ctx))) == len(docs)


def test_user_words_from_params_and_uri_with_thresholds(
    tmp_path: pathlib.Path, shard_ctx: ShardContext
) -> None:
    (tmp_path / "words.txt").write_text("# team list\nforbidden phrase\n禁止\n", "utf-8")
    params = UnsafeContentFilter.Params(
        use_builtin_list=False, words=["zorblax"], words_uri=str(tmp_path / "words.txt"), min_hits=2
    )
    step = UnsafeContentFilter(params)
    docs = [
        Document("one", "zorblax appears once"),
        Document("two", "zorblax and a Forbidden\nphrase together"),
        Document("cjk", "这里禁止吸烟，禁止停车"),
    ]
    assert [d.id for d in step.run(docs, shard_ctx)] == ["one"]
    assert docs[2].metadata["unsafe_hits"] == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Write to jane.doe+news@mail.example.co.uk today.", "Write to <EMAIL> today."),
        ("Call +44 20 7946 0958 or +1 (555) 123-4567.", "Call <PHONE> or <PHONE>."),
        ("US: (555) 123-4567, 555-123-4567 and 555.123.4567.", "US: <PHONE>, <PHONE> and <PHONE>."),
        (
            "In 1999 we sold 12,000 units for $1234567 on 2023-01-15.",
            "In 1999 we sold 12,000 units for $1234567 on 2023-01-15.",
        ),
        (
            "Hosts 192.168.0.1 and 10.0.0.255, not 999.1.1.1 or v1.2.3.",
            "Hosts <IP_ADDRESS> and <IP_ADDRESS>, not 999.1.1.1 or v1.2.3.",
        ),
        (
            "IPv6 2001:db8::8a2e:370:7334 and fe80::1 at 12:30:45.",
            "IPv6 <IP_ADDRESS> and <IP_ADDRESS> at 12:30:45.",
        ),
    ],
)
def test_pii_redaction(text: str, expected: str) -> None:
    assert PiiRedact().transform(Document("d", text)).text == expected


def test_pii_counters_and_custom_placeholders(shard_ctx: ShardContext) -> None:
    step = PiiRedact(PiiRedact.Params(kinds=["email", "ip"], email_replacement="[mail]"))
    [doc] = list(step.run([Document("d", "a@b.io, c@d.org, 8.8.8.8, +1 555 123 4567")], shard_ctx))
    assert doc.text == "[mail], [mail], <IP_ADDRESS>, +1 555 123 4567"
    assert step.stats.extra["pii_emails_redacted"] == 2 and step.stats.extra["pii_ips_redacted"] == 1


def test_bad_params_name_the_field() -> None:
    with pytest.raises(ValidationError, match="kinds"):
        PiiRedact.Params(kinds=["ssn"])
    with pytest.raises(ValidationError, match="min_hits"):
        UnsafeContentFilter.Params(min_hits=0)
