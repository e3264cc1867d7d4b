"""Retrieval benchmark: recall@1/@5/@10 and queries/s of BM25, dense and hybrid on XQuAD (en + zh).

One collection holds all 480 XQuAD paragraphs of both languages (so each language's passages are
distractors for the other); a query is answered when its source paragraph (``context_id``) is among the
top k. Run from the repository root:

    /tmp/venv-probe/bin/python benchmarks/agents/retrieval.py [--data ../shared/data/retrieval/xquad]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

from shipyard.agents.retrieval import Collection, Encoder
from shipyard.data.document import Document

KS = (1, 5, 10)
MODES = ("bm25", "dense", "hybrid")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "retrieval" / "xquad"
    parser.add_argument("--data", type=pathlib.Path, default=default)
    parser.add_argument("--limit", type=int, default=0, help="queries per language (0 = all)")
    args = parser.parse_args()

    docs = [json.loads(line) for line in (args.data / "corpus.jsonl").open(encoding="utf-8")]
    queries = [json.loads(line) for line in (args.data / "queries.jsonl").open(encoding="utf-8")]
    started = time.perf_counter()
    collection = Collection.build(
        "xquad",
        (Document(d["id"], d["text"], {"title": d["title"].replace("_", " ")}) for d in docs),
        encoder=Encoder(),
        max_chars=4000,  # one passage per paragraph: the paragraph is the unit XQuAD labels
    )
    print(f"indexed {len(collection)} passages (BM25 + MiniLM) in {time.perf_counter() - started:.1f} s\n")
    print(f"{'lang':<5}{'method':<8}{'queries':>8}{'R@1':>8}{'R@5':>8}{'R@10':>8}{'q/s':>9}")
    for lang in ("en", "zh"):
        subset = [q for q in queries if q["lang"] == lang]
        subset = subset[: args.limit] if args.limit else subset
        for mode in MODES:
            hits = dict.fromkeys(KS, 0)
            t0 = time.perf_counter()
            for q in subset:
                ranked = [h.doc_id for h in collection.search(q["question"], k=max(KS), mode=mode)]
                for k in KS:
                    hits[k] += q["context_id"] in ranked[:k]
            rate = len(subset) / (time.perf_counter() - t0)
            recalls = "".join(f"{hits[k] / len(subset):>8.3f}" for k in KS)
            print(f"{lang:<5}{mode:<8}{len(subset):>8}{recalls}{rate:>9.1f}")


if __name__ == "__main__":
    main()
