"""Shipyard's full ingest pipeline vs the same pipeline in datatrove, on a corpus with planted duplicates.

Pipeline in both systems: jsonl reader -> Gopher repetition -> Gopher quality (the same default
thresholds) -> exact dedup (lowercased, whitespace-collapsed text; ``--no-exact-dedup`` drops it from
both) -> MinHash dedup (same n-grams, bands, rows, seed 1) -> jsonl writer, with the same number of
worker processes. Language filtering is left out of both: datatrove's ``LanguageFilter`` needs a
fastText model download. Ours runs ``shipyard.data.executor.runner.run_ingest``; datatrove runs
``datatrove_pipeline.py`` in its own venv.

Each system runs in a child process whose process tree is sampled every 0.1 s (``psutil``): the peak
of the summed PSS (shared pages split between processes, fair between fork and spawn) and of the
summed RSS; the child also reports the largest single process's ``ru_maxrss``. Dedup quality: an
untimed filters-only run of each system gives the documents that reach dedup; of those, a planted
group of k surviving members should lose k-1. Precision = removals that are such expected losses /
all dedup removals; recall = expected losses achieved / expected. Survivor choice does not matter.

    python benchmarks/ingest/bench_pipeline.py --scale 1     # builds /tmp/corpus-1x if missing
    python benchmarks/ingest/bench_pipeline.py --scale 10    # ~200 MB
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

import psutil

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_corpus import build, load_ground_truth  # noqa: E402

SHARED_CORPUS = HERE.parents[2] / "shared/data/corpus"


def ours_job(
    corpus: str, out: str, *, workers: int, mode: str, exact: bool, mh: dict, stop_words_all: bool = False
) -> dict:
    """The IngestJob document of our side (``mode`` "filters": the two Gopher filters only).

    ``stop_words_all`` applies the English stop-word rule to every document, as datatrove's single
    English ``GopherQualityFilter`` does, so both keep about the same documents (ours applies it to
    English and untagged documents only, which keeps the other languages).
    """
    quality: dict = {"type": "gopher_quality"} | ({"stopWordsLanguage": None} if stop_words_all else {})
    steps: list[dict] = [{"type": "gopher_repetition"}, quality]
    if mode == "full":
        steps += [{"type": "exact_dedup"}] if exact else []
        steps += [{"type": "minhash_dedup", "nGrams": mh["n"], "bands": mh["bands"], "rows": mh["rows"]}]
    return {
        "apiVersion": "shipyard.dev/v1alpha1",
        "kind": "IngestJob",
        "metadata": {"name": f"bench-pipeline-{mode}"},
        "spec": {
            "input": {"uri": corpus, "glob": "shard-*.jsonl", "format": "jsonl", "idField": "id"},
            "output": {"uri": out, "format": "jsonl"},
            "steps": steps,
            "execution": {"executor": "local", "workers": workers},
        },
    }


def child_ours(args: argparse.Namespace) -> None:
    """Runs in the child process: our pipeline, then one JSON line with wall time and ``ru_maxrss``."""
    import resource

    from shipyard.data.executor.runner import run_ingest
    from shipyard.data.spec import parse_job

    mh = {"n": args.n_grams, "bands": args.bands, "rows": args.rows}
    doc = ours_job(
        str(args.corpus),
        args.out,
        workers=args.workers,
        mode=args.mode,
        exact=args.exact_dedup,
        mh=mh,
        stop_words_all=args.stop_words_all,
    )
    job = parse_job(doc)
    t = time.perf_counter()
    result = run_ingest(job, workers=args.workers)
    wall = time.perf_counter() - t
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "wall_s": wall,
                "self_maxrss_kb": own,
                "children_maxrss_kb": children,
                "documents_written": result.documents_written,
            }
        )
    )


def run_sampled(cmd: list[str]) -> dict:
    """Run ``cmd``; return its JSON result plus the peak summed PSS/RSS of its process tree."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    peak_pss = peak_rss = 0
    while proc.poll() is None:
        pss = rss = 0
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for p in procs:
            try:
                m = p.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # a worker that just exited
            pss, rss = pss + m.pss, rss + m.rss
        peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
        time.sleep(0.1)  # sampling period of the memory probe, not a wait for a result
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed (rc={proc.returncode}):\n{err[-4000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_pss_tree_MB"] = peak_pss / 2**20
    result["peak_rss_tree_MB"] = peak_rss / 2**20
    result["peak_rss_proc_MB"] = max(result["self_maxrss_kb"], result["children_maxrss_kb"]) / 1024
    return result


def output_ids(folder: pathlib.Path) -> set[str]:
    ids: set[str] = set()
    for path in sorted(folder.rglob("*.jsonl")):
        if ".shipyard" in path.parts:
            continue
        with open(path, encoding="utf-8") as f:
            ids.update(json.loads(line)["id"] for line in f if line.strip())
    return ids


def score(survivors: set[str], kept: set[str], groups: list[dict]) -> dict:
    """Dedup precision/recall on the documents that passed the filters (see the module docstring)."""
    removed = survivors - kept
    expected = achieved = 0
    by_kind = {"exact": [0, 0], "near": [0, 0]}
    for g in groups:
        present = [m["id"] for m in g["members"] if m["id"] in survivors]
        need = max(0, len(present) - 1)
        got = min(need, sum(1 for i in present if i in removed))
        expected, achieved = expected + need, achieved + got
        kind = "near" if any(m["kind"] == "near" for m in g["members"]) else "exact"
        by_kind[kind][0] += need
        by_kind[kind][1] += got
    return {
        "after_filters": len(survivors),
        "dedup_removed": len(removed),
        "precision": achieved / len(removed) if removed else 1.0,
        "recall": achieved / expected if expected else 1.0,
        "recall_exact_groups": by_kind["exact"][1] / max(1, by_kind["exact"][0]),
        "recall_near_groups": by_kind["near"][1] / max(1, by_kind["near"][0]),
    }


def run_system(name: str, args: argparse.Namespace, mode: str, work: pathlib.Path) -> tuple[dict, set[str]]:
    out = work / f"{name}-{mode}-out"
    common = ["--corpus", str(args.corpus), "--out", str(out), "--workers", str(args.workers), "--mode", mode]
    common += ["--n-grams", str(args.n_grams), "--bands", str(args.bands), "--rows", str(args.rows)]
    common += ["--exact-dedup"] if args.exact_dedup else []
    if name == "shipyard":
        cmd = [args.ours_python, str(pathlib.Path(__file__).resolve()), "--child-ours", *common]
        cmd += ["--stop-words-all"] if args.stop_words_all else []
    else:
        cmd = [args.datatrove_python, str(HERE / "datatrove_pipeline.py"), "--work", str(work / "dt-work")]
        cmd += common
    print(f"[{time.strftime('%H:%M:%S')}] {name} {mode} ...", file=sys.stderr, flush=True)
    result = run_sampled(cmd)
    print(f"[{time.strftime('%H:%M:%S')}] {name} {mode}: {result['wall_s']:.1f} s", file=sys.stderr)
    return result, output_ids(out)


METRICS = (
    "wall_s", "docs/s", "MB/s", "peak_pss_tree_MB", "peak_rss_tree_MB", "peak_rss_proc_MB", "kept",
    "after_filters", "dedup_removed", "precision", "recall", "recall_exact_groups", "recall_near_groups",
)  # fmt: skip


def print_table(rows: dict[str, dict]) -> None:
    names = list(rows)
    both = len(names) > 1
    print(f"{'metric':<22}" + "".join(f"{n:>14}" for n in names) + ("   ours/datatrove" if both else ""))
    for m in METRICS:
        vals = [rows[n].get(m, float("nan")) for n in names]
        line = f"{m:<22}" + "".join(f"{v:>14.3f}" if isinstance(v, float) else f"{v:>14}" for v in vals)
        if both and rows["datatrove"].get(m):
            line += f"   {rows['shipyard'][m] / rows['datatrove'][m]:>10.2f}x"
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="corpus size: 1 = ~20 MB, 10 = ~200 MB")
    ap.add_argument("--corpus", type=pathlib.Path, help="default /tmp/corpus-<scale>x (built if missing)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--n-grams", type=int, default=5)
    ap.add_argument("--bands", type=int, default=14)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--exact-dedup", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument(
        "--stop-words-all",
        action="store_true",
        help="ours: English stop-word rule on every language, like datatrove's English-only filter",
    )
    ap.add_argument("--datatrove-python", default="/tmp/venv-datatrove/bin/python")
    ap.add_argument("--ours-python", default=sys.executable)
    ap.add_argument("--skip-datatrove", action="store_true")
    ap.add_argument("--no-score", action="store_true", help="skip the untimed filters-only runs")
    ap.add_argument("--child-ours", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="full", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_ours:
        child_ours(args)
        return

    args.corpus = args.corpus or pathlib.Path(f"/tmp/corpus-{args.scale:g}x")
    if not (args.corpus / "manifest.json").exists():
        print(f"building {args.corpus} (scale {args.scale:g}) ...", file=sys.stderr, flush=True)
        build(args.corpus, SHARED_CORPUS, args.scale, shards=8, dup_fraction=0.1, seed=0)
    manifest = json.loads((args.corpus / "manifest.json").read_text())
    docs, mb = manifest["docs"], manifest["bytes"] / 1e6
    groups = load_ground_truth(args.corpus)
    systems = ["shipyard"] + ([] if args.skip_datatrove else ["datatrove"])
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        for name in systems:
            work = pathlib.Path(tmp) / name
            result, kept = run_system(name, args, "full", work)
            row = {"docs/s": docs / result["wall_s"], "MB/s": mb / result["wall_s"], "kept": len(kept)}
            row |= result
            if not args.no_score:
                _, survivors = run_system(name, args, "filters", work)
                row |= score(survivors, kept, groups)
            rows[name] = row
    print(
        f"corpus: {args.corpus} ({docs} docs, {mb:.1f} MB, {len(groups)} planted groups); workers "
        f"{args.workers}; exact dedup {'on' if args.exact_dedup else 'off'}; MinHash {args.n_grams}-grams, "
        f"{args.bands} bands x {args.rows} rows; ours' stop-word rule on "
        f"{'all languages' if args.stop_words_all else 'en + untagged'}"
    )
    print_table(rows)
    print(json.dumps({"corpus": str(args.corpus), "manifest": manifest, "results": rows}))


if __name__ == "__main__":
    main()
