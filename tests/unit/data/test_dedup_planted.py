"""Planted-duplicate corpora for the dedup tests, built from real paragraphs of the shared corpus."""

from __future__ import annotations

import pathlib
import random
import re
from dataclasses import dataclass

from shipyard.data.document import Document


@dataclass
class Planted:
    docs: list[Document]
    expected_removed: set[str]  # every planted copy (originals come first in order)


def paragraphs(shared_data: pathlib.Path) -> list[str]:
    """Distinct real paragraphs: English novel, Shakespeare, Japanese novel (50+ words/characters)."""
    corpus = shared_data / "corpus"
    en = (corpus / "books/pride_and_prejudice.en.txt").read_text().replace("\r", "")
    sh = (corpus / "tinyshakespeare/input.txt").read_text()
    ja = (corpus / "books/wagahai_wa_neko_de_aru.ja.txt").read_text()
    out = [" ".join(p.split()) for p in re.split(r"\n\s*\n", en) if len(p.split()) >= 60]
    out += [" ".join(p.split()) for p in re.split(r"\n\s*\n", sh) if len(p.split()) >= 60]
    out += [p.strip() for p in ja.split("\n") if len(p.strip()) >= 150]
    return list(dict.fromkeys(out))


def perturb(text: str, rng: random.Random, edits: int) -> str:
    """A near duplicate: a few words replaced/inserted/deleted, punctuation and case changed."""
    cjk = " " not in text
    tokens = list(text) if cjk else text.split(" ")
    for _ in range(edits):
        i = rng.randrange(len(tokens))
        op = rng.randrange(3)
        if op == 0:
            tokens[i] = "猫" if cjk else "zebra"
        elif op == 1:
            tokens.insert(i, "犬" if cjk else "quietly")
        else:
            del tokens[i]
    out = ("" if cjk else " ").join(tokens)
    return out if cjk else out.replace(",", ";").upper()


def planted_corpus(shared_data: pathlib.Path, *, distinct: int = 240, seed: int = 7) -> Planted:
    rng = random.Random(seed)
    paras = paragraphs(shared_data)
    rng.shuffle(paras)
    base = [Document(f"p{i}", t) for i, t in enumerate(paras[:distinct])]
    copies: list[Document] = []
    for i, doc in enumerate(base[: distinct // 4]):
        if i % 2 == 0:
            copies.append(Document(f"{doc.id}-exact", "  " + doc.text.lower().replace(" ", "\n ") + " "))
        else:
            edits = max(1, len(doc.text.split() if " " in doc.text else doc.text) // 100)
            copies.append(Document(f"{doc.id}-near", perturb(doc.text, rng, edits)))
    # Originals first (so they are the survivors), copies interleaved among the rest afterwards.
    tail = base[distinct // 4 :] + copies
    rng.shuffle(tail)
    return Planted(base[: distinct // 4] + tail, {d.id for d in copies})


def split_shards(docs: list[Document], n: int) -> list[list[Document]]:
    per = -(-len(docs) // n)
    return [docs[i * per : (i + 1) * per] for i in range(n)]


def test_planted_corpus_mixes_exact_and_near_copies_of_real_paragraphs(shared_data: pathlib.Path) -> None:
    planted = planted_corpus(shared_data)
    ids = [d.id for d in planted.docs]
    assert len(ids) == len(set(ids)) == 300
    assert sum(i.endswith("-exact") for i in planted.expected_removed) == 30
    assert sum(i.endswith("-near") for i in planted.expected_removed) == 30
    assert any(" " not in d.text for d in planted.docs), "Japanese paragraphs are part of the mix"
