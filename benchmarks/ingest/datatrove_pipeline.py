"""datatrove's side of ``bench_pipeline.py``: the same ingest pipeline built from datatrove blocks.

Runs inside datatrove's own venv (it is not a Shipyard dependency) as a child of the benchmark:

    /tmp/venv-datatrove/bin/python benchmarks/ingest/datatrove_pipeline.py \
        --corpus /tmp/corpus-1x --work /tmp/w --out /tmp/o --workers 2 --mode full

``--mode full``: JsonlReader -> GopherRepetitionFilter -> GopherQualityFilter -> JsonlWriter (filtered)
-> [ExactDedup: signature, find, filter] -> MinHash (signature, buckets, cluster, filter) -> JsonlWriter.
This is datatrove's documented recipe (FineWeb): each dedup's filter stage re-reads the documents the
signature stage saw, in the same order, so the documents going into a signature stage are written out.
``--mode filters``: reader -> the two Gopher filters -> writer (used, untimed, to score dedup alone).

Prints one JSON line: wall time, peak RSS of this process and of its largest child (``getrusage``).
"""

from __future__ import annotations

import argparse
import glob
import json
import resource
import time

from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.exact_dedup import (
    ExactDedupConfig,
    ExactDedupFilter,
    ExactDedupSignature,
    ExactFindDedups,
)
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.hashing import HashConfig


def normalized_text(doc: Document) -> str:
    # Same normalization as Shipyard's exact_dedup defaults: lowercase, whitespace runs collapsed.
    return " ".join(doc.text.lower().split())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--mode", choices=("full", "filters"), default="full")
    ap.add_argument("--exact-dedup", action="store_true")
    ap.add_argument("--n-grams", type=int, default=5)
    ap.add_argument("--bands", type=int, default=14)
    ap.add_argument("--rows", type=int, default=8)
    a = ap.parse_args()
    work, tasks = a.work, len(glob.glob(f"{a.corpus}/shard-*.jsonl"))

    def run(pipeline: list, n_tasks: int, name: str) -> None:
        LocalPipelineExecutor(
            pipeline=pipeline, tasks=n_tasks, workers=a.workers, logging_dir=f"{work}/logs/{name}"
        ).run()

    def writer(folder: str) -> JsonlWriter:
        return JsonlWriter(folder, output_filename="${rank}.jsonl", compression=None)

    def reader(folder: str, pattern: str = "*.jsonl") -> JsonlReader:
        return JsonlReader(folder, glob_pattern=pattern, id_key="id")

    filters = [GopherRepetitionFilter(), GopherQualityFilter()]
    t = time.perf_counter()
    if a.mode == "filters":
        run([reader(a.corpus, "shard-*.jsonl"), *filters, writer(a.out)], tasks, "filters")
    else:
        minhash_in = f"{work}/filtered"
        first = [reader(a.corpus, "shard-*.jsonl"), *filters, writer(minhash_in)]
        if a.exact_dedup:
            exact = ExactDedupConfig(content_getter=normalized_text, hash_config=HashConfig(precision=64))
            run([*first, ExactDedupSignature(output_folder=f"{work}/esigs", config=exact)], tasks, "e1")
            run([ExactFindDedups(f"{work}/esigs", f"{work}/edups", config=exact)], 1, "e2")
            first = [
                reader(minhash_in),
                ExactDedupFilter(f"{work}/edups", config=exact),
                writer(f"{work}/exact"),
            ]
            minhash_in = f"{work}/exact"
        cfg = MinhashConfig(
            n_grams=a.n_grams,
            num_buckets=a.bands,
            hashes_per_bucket=a.rows,
            seed=1,
            hash_config=HashConfig(precision=64),
        )
        run([*first, MinhashDedupSignature(output_folder=f"{work}/sigs", config=cfg)], tasks, "m1")
        run([MinhashDedupBuckets(f"{work}/sigs", f"{work}/buckets", config=cfg)], a.bands, "m2")
        run([MinhashDedupCluster(f"{work}/buckets", f"{work}/remove", config=cfg)], 1, "m3")
        run(
            [reader(minhash_in), MinhashDedupFilter(f"{work}/remove"), writer(a.out)],
            tasks,
            "m4",
        )
    wall = time.perf_counter() - t
    print(
        json.dumps(
            {
                "wall_s": wall,
                "self_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "children_maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
            }
        )
    )


if __name__ == "__main__":
    main()
