"""Normalize: Unicode form, invisible characters and whitespace."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shipyard.data.document import Document
from shipyard.data.step import ShardContext
from shipyard.data.steps.normalize import Normalize


def norm(text: str, **params) -> str:
    return Normalize(Normalize.Params(**params)).transform(Document("d", text)).text


def test_whitespace_and_line_endings() -> None:
    text = "Title   here  \r\n\r\n\r\n\r\nBody\u00a0 text\tstays\r\nend   \n"
    assert norm(text) == "Title here\n\nBody text\tstays\nend"


def test_invisible_characters_removed_but_joiners_kept() -> None:
    text = "zero\u200bwidth\ufeff soft\u00adhyphen \x07bell \u200d\u200c"
    assert norm(text) == "zerowidth softhyphen bell \u200d\u200c"


def test_nfc_by_default_nfkc_on_request() -> None:
    decomposed = "cafe\u0301 ﬁ １２"
    assert norm(decomposed) == "café ﬁ １２"
    assert norm(decomposed, form="NFKC") == "café fi 12"


def test_dedup_sees_one_spelling(shard_ctx: ShardContext) -> None:
    step = Normalize()
    docs = [Document("a", "Hello  world\r\n"), Document("b", "Hello world"), Document("c", " \u200b\n")]
    out = list(step.run(docs, shard_ctx))
    assert [d.text for d in out] == ["Hello world", "Hello world"]
    assert step.stats.dropped == {"empty": 1}
    assert step.stats.extra["docs_changed"] == 2


def test_bad_params_name_the_field() -> None:
    with pytest.raises(ValidationError, match="form"):
        Normalize.Params(form="NFD")
    with pytest.raises(ValidationError, match="max_newlines"):
        Normalize.Params(max_newlines=0)
