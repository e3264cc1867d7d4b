"""Build a deterministic benchmark corpus with planted duplicates from the shared corpus.

Base documents are made of sentences sampled from one source each (Pride and Prejudice and Tiny
Shakespeare in English, Wagahai wa Neko de Aru in Japanese, the Analects and Tang poems in Chinese,
the UDHR in one of 158 languages), so two base documents share almost no 5-gram. A fraction of
them get planted copies: exact copies, and near duplicates where a known share of words (characters
for Chinese/Japanese) is replaced, inserted or deleted, plus case and punctuation noise. All documents
are shuffled into JSONL shards (``{"id", "text", "metadata": {"source", ...}}``), so copies land in
other shards than their originals.

Outputs in ``--out``: ``shard-NNNNN.jsonl``, ``ground_truth.jsonl`` (one planted group per line:
``{"group", "members": [{"id", "kind": "original"|"exact"|"near", "rate"}]}``) and ``manifest.json``.

    python benchmarks/ingest/build_corpus.py --out /tmp/corpus-1x --scale 1    # ~20 MB
    python benchmarks/ingest/build_corpus.py --out /tmp/corpus-10x --scale 10  # ~200 MB

Reusable: ``load_ground_truth`` and ``expected_removals`` give what a dedup should remove.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import re
from dataclasses import dataclass

SCALE_BYTES = 20_000_000
NEAR_RATES = (0.01, 0.02, 0.03)
_SENT = re.compile(r"(?<=[.!?;])\s+|(?<=[。！？])")


@dataclass
class Source:
    name: str
    language: str
    sentences: list[str]
    joiner: str  # " " between English sentences, "" between CJK ones
    weight: float


def _sentences(text: str) -> list[str]:
    flat = " ".join(text.split()) if not re.search(r"[\u3040-\u9fff]", text) else "".join(text.split())
    return [s for s in _SENT.split(flat) if len(s) >= 8]


def load_sources(corpus: pathlib.Path) -> list[Source]:
    books = corpus / "books"
    sources = [
        Source(
            "pride_and_prejudice",
            "en",
            _sentences((books / "pride_and_prejudice.en.txt").read_text()),
            " ",
            0.35,
        ),
        Source(
            "tinyshakespeare", "en", _sentences((corpus / "tinyshakespeare/input.txt").read_text()), " ", 0.25
        ),
        Source("wagahai", "ja", _sentences((books / "wagahai_wa_neko_de_aru.ja.txt").read_text()), "", 0.12),
    ]
    poems = [
        "".join(json.loads(line)["paragraphs"])
        for line in (corpus / "chinese_poetry/poems.jsonl").read_text().splitlines()
    ]
    lunyu = _sentences((corpus / "chinese_poetry/lunyu.zh.txt").read_text())
    sources.append(Source("chinese_poetry", "zh", [p for p in poems if len(p) >= 8] + lunyu, "", 0.12))
    for meta_line in (corpus / "udhr/languages.jsonl").read_text().splitlines():
        meta = json.loads(meta_line)
        text = (corpus / "udhr" / meta["file"]).read_text()
        cjk = meta["lang"].split("-")[0] in ("zh", "ja", "th", "lo", "km", "my", "bo", "dz", "ii")
        sources.append(
            Source(f"udhr/{meta['lang']}", meta["lang"], _sentences(text), "" if cjk else " ", 0.16 / 158)
        )
    return [s for s in sources if len(s.sentences) >= 20]


def perturb(text: str, rate: float, rng: random.Random, vocabulary: list[str], cjk: bool) -> str:
    """Edit ``rate`` of the tokens (replace/insert/delete), then add case and punctuation noise."""
    tokens = list(text) if cjk else text.split(" ")
    edits = max(1, round(rate * len(tokens)))
    for _ in range(edits):
        i = rng.randrange(len(tokens))
        op = rng.random()
        if op < 0.5:
            tokens[i] = rng.choice(vocabulary)
        elif op < 0.8:
            tokens.insert(i, rng.choice(vocabulary))
        elif len(tokens) > 1:
            del tokens[i]
    out = ("" if cjk else " ").join(tokens)
    if not cjk and rng.random() < 0.5:
        out = out.replace(",", ";", 3).replace(".", "!", 1)
    if not cjk and rng.random() < 0.5:
        out = out[:1].lower() + out[1:].upper() if rng.random() < 0.2 else out.capitalize()
    return out


def build(
    out: pathlib.Path, corpus: pathlib.Path, scale: float, shards: int, dup_fraction: float, seed: int
) -> dict:
    rng = random.Random(seed)
    sources = load_sources(corpus)
    weights = [s.weight for s in sources]
    vocab = {
        s.name: sorted(
            {w for sent in s.sentences[:2000] for w in (list(sent) if not s.joiner else sent.split())}
        )
        for s in sources
    }
    docs: list[dict] = []
    groups: list[dict] = []
    target = int(scale * SCALE_BYTES)
    size = 0
    while size < target:
        src = rng.choices(sources, weights)[0]
        k = rng.randint(8, 40)
        # Sampled (not contiguous) sentences: overlapping windows of one book would be unplanted
        # near duplicates and blur precision.
        picked = rng.sample(src.sentences, min(k, len(src.sentences)))
        base = {
            "id": f"d{len(docs):08d}",
            "text": src.joiner.join(picked),
            "metadata": {"source": src.name, "language": src.language},
        }
        docs.append(base)
        size += len(base["text"].encode())
        if rng.random() < dup_fraction:
            members = [{"id": base["id"], "kind": "original", "rate": 0.0}]
            for c in range(rng.choice((1, 1, 2, 3))):
                if rng.random() < 0.5:
                    kind, rate, text = "exact", 0.0, base["text"]
                else:
                    rate = rng.choice(NEAR_RATES)
                    kind, text = "near", perturb(base["text"], rate, rng, vocab[src.name], not src.joiner)
                copy = {
                    "id": f"{base['id']}-c{c}",
                    "text": text,
                    "metadata": dict(base["metadata"], planted=kind),
                }
                docs.append(copy)
                size += len(text.encode())
                members.append({"id": copy["id"], "kind": kind, "rate": rate})
            groups.append({"group": len(groups), "members": members})
    rng.shuffle(docs)
    out.mkdir(parents=True, exist_ok=True)
    per = -(-len(docs) // shards)
    for s in range(shards):
        with open(out / f"shard-{s:05d}.jsonl", "w", encoding="utf-8") as f:
            for d in docs[s * per : (s + 1) * per]:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
    with open(out / "ground_truth.jsonl", "w", encoding="utf-8") as f:
        for g in groups:
            f.write(json.dumps(g) + "\n")
    manifest = {
        "scale": scale,
        "seed": seed,
        "shards": shards,
        "docs": len(docs),
        "bytes": size,
        "planted_groups": len(groups),
        "dup_fraction": dup_fraction,
        "near_rates": list(NEAR_RATES),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def load_ground_truth(corpus_dir: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in (corpus_dir / "ground_truth.jsonl").read_text().splitlines()]


def corpus_order(corpus_dir: pathlib.Path) -> dict[str, int]:
    """Position of every document id in (shard, line) order."""
    order: dict[str, int] = {}
    for path in sorted(corpus_dir.glob("shard-*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                order[json.loads(line)["id"]] = len(order)
    return order


def expected_removals(
    corpus_dir: pathlib.Path, kinds: tuple[str, ...] = ("exact", "near")
) -> dict[str, dict]:
    """Ids a perfect dedup removes (every member of a group but the first in corpus order), with the
    member's kind and rate; ``kinds`` limits groups to those whose copies are all of these kinds."""
    order = corpus_order(corpus_dir)
    expected: dict[str, dict] = {}
    for g in load_ground_truth(corpus_dir):
        members = sorted(g["members"], key=lambda m: order[m["id"]])
        if not all(m["kind"] in kinds for m in g["members"] if m["kind"] != "original"):
            continue
        for m in members[1:]:
            # Distance to the survivor: the larger perturbation of the two (0 = exact copy).
            rate = max(m["rate"], members[0]["rate"])
            expected[m["id"]] = {"kind": "exact" if rate == 0 else "near", "rate": rate}
    return expected


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument(
        "--corpus",
        type=pathlib.Path,
        default=pathlib.Path(__file__).resolve().parents[3] / "shared/data/corpus",
    )
    ap.add_argument("--scale", type=float, default=1.0, help="1 = ~20 MB of text")
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--dup-fraction", type=float, default=0.1, help="share of base docs that get copies")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(json.dumps(build(args.out, args.corpus, args.scale, args.shards, args.dup_fraction, args.seed)))


if __name__ == "__main__":
    main()
