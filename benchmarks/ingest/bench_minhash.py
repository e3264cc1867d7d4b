"""Shipyard's ``minhash_dedup`` vs datatrove's MinHash pipeline (stages 1-4) on the same corpus.

Both run single-process in a child (datatrove from its own venv, ``--datatrove-python``), with the
same 5-grams, 14 bands x 8 rows, seed 1. Each child reports wall time, its peak RSS
(``getrusage``) and the ids it removed; this script scores them against the planted ground truth of
``build_corpus.py`` and prints a side-by-side table with ratios (ours / datatrove).

    python benchmarks/ingest/build_corpus.py --out /tmp/corpus-1x --scale 1
    python benchmarks/ingest/bench_minhash.py --corpus /tmp/corpus-1x \
        --datatrove-python /tmp/venv-datatrove/bin/python
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_corpus import expected_removals  # noqa: E402

OURS = r"""
import json, pathlib, resource, sys, time
from shipyard.data.dedup.inprocess import run_global_step
from shipyard.data.dedup.minhash import MinHashDedup
from shipyard.data.document import Document
from shipyard.storage.local import LocalStorage

corpus, work, n, bands, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

class Shard:
    def __init__(self, path): self.path = path
    def __iter__(self):
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                yield Document.from_dict(json.loads(line))

shards = [Shard(p) for p in sorted(pathlib.Path(corpus).glob("shard-*.jsonl"))]
params = MinHashDedup.Params(n_grams=n, bands=bands, rows=rows, seed=1)
t = time.perf_counter()
kept_ids = set()
_, stats = run_global_step(lambda: MinHashDedup(params), shards, LocalStorage(), "file://" + work,
                           sink=lambda shard, doc: kept_ids.add(doc.id))
wall = time.perf_counter() - t
peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
removed = [d.id for s in shards for d in s if d.id not in kept_ids]
print(json.dumps({"wall_s": wall, "peak_rss_kb": peak, "docs": stats.docs_in, "removed": removed}))
"""

DATATROVE = r"""
import glob, gzip, json, pathlib, resource, sys, time
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
    MinhashDedupFilter, MinhashDedupSignature)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.hashing import HashConfig

corpus, work, n, bands, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
shards = len(glob.glob(corpus + "/shard-*.jsonl"))
cfg = MinhashConfig(n_grams=n, num_buckets=bands, hashes_per_bucket=rows, seed=1,
                    hash_config=HashConfig(precision=64))
reader = lambda: JsonlReader(corpus, glob_pattern="shard-*.jsonl", id_key="id")
def run(pipeline, tasks, name):
    LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=f"{work}/logs/{name}").run()
t = time.perf_counter()
run([reader(), MinhashDedupSignature(output_folder=f"{work}/sigs", config=cfg)], shards, "s1")
run([MinhashDedupBuckets(input_folder=f"{work}/sigs", output_folder=f"{work}/buckets", config=cfg)],
    bands, "s2")
run([MinhashDedupCluster(input_folder=f"{work}/buckets", output_folder=f"{work}/remove", config=cfg)],
    1, "s3")
run([reader(), MinhashDedupFilter(input_folder=f"{work}/remove",
     exclusion_writer=JsonlWriter(f"{work}/removed", compression=None))], shards, "s4")
wall = time.perf_counter() - t
removed = []
for p in sorted(glob.glob(f"{work}/removed/*.jsonl")):
    with open(p) as f:
        removed += [json.loads(line)["id"] for line in f]
peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print(json.dumps({"wall_s": wall, "peak_rss_kb": peak, "docs": None, "removed": removed}))
"""


def run_child(python: str, code: str, corpus: pathlib.Path, n: int, bands: int, rows: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-minhash-") as work:
        proc = subprocess.run(
            [python, "-c", code, str(corpus), work, str(n), str(bands), str(rows)],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        raise SystemExit(f"{python} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def score(removed: list[str], expected: dict[str, dict]) -> dict:
    got = set(removed)
    hits = got & set(expected)
    out = {
        "removed": len(got),
        "precision": len(hits) / len(got) if got else 1.0,
        "recall": len(hits) / len(expected) if expected else 1.0,
    }
    for kind, rate in {(e["kind"], e["rate"]) for e in expected.values()}:
        ids = [i for i, e in expected.items() if e["kind"] == kind and e["rate"] == rate]
        out[f"recall_{kind}" + (f"@{rate:g}" if kind == "near" else "")] = len(got & set(ids)) / len(ids)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=pathlib.Path, required=True)
    ap.add_argument("--datatrove-python", default="/tmp/venv-datatrove/bin/python")
    ap.add_argument("--ours-python", default=sys.executable)
    ap.add_argument("--n-grams", type=int, default=5)
    ap.add_argument("--bands", type=int, default=14)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--skip-datatrove", action="store_true")
    args = ap.parse_args()

    manifest = json.loads((args.corpus / "manifest.json").read_text())
    mb = manifest["bytes"] / 1e6
    docs = manifest["docs"]
    expected = expected_removals(args.corpus)
    results = {
        "shipyard": run_child(args.ours_python, OURS, args.corpus, args.n_grams, args.bands, args.rows)
    }
    if not args.skip_datatrove:
        results["datatrove"] = run_child(
            args.datatrove_python, DATATROVE, args.corpus, args.n_grams, args.bands, args.rows
        )
    rows: dict[str, dict] = {}
    for name, r in results.items():
        rows[name] = {
            "docs/s": docs / r["wall_s"],
            "MB/s": mb / r["wall_s"],
            "wall_s": r["wall_s"],
            "peak_rss_MB": r["peak_rss_kb"] / 1024,
            **score(r["removed"], expected),
        }
    metrics = list(rows["shipyard"])
    print(
        f"corpus: {args.corpus} ({docs} docs, {mb:.1f} MB, {len(expected)} planted removals); "
        f"{args.n_grams}-grams, {args.bands} bands x {args.rows} rows"
    )
    header = (
        f"{'metric':<22}" + "".join(f"{n:>14}" for n in rows) + ("   ours/datatrove" if len(rows) > 1 else "")
    )
    print(header)
    for m in metrics:
        line = f"{m:<22}" + "".join(f"{rows[n].get(m, float('nan')):>14.3f}" for n in rows)
        if len(rows) > 1 and rows["datatrove"].get(m):
            line += f"   {rows['shipyard'][m] / rows['datatrove'][m]:>10.2f}x"
        print(line)
    print(json.dumps({"corpus": str(args.corpus), "manifest": manifest, "results": rows}))


if __name__ == "__main__":
    main()
