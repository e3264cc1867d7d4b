"""Tokens/s of Shipyard's Ray Train path vs a plain single-process PyTorch loop vs ``torchrun`` DDP.

Same model (a preset shape), data (the token shards of one manifest, in the same order), global batch,
micro batch, steps, LR schedule, fp32 on CPU. Each side runs as its own child process, started from
here, so wall time covers interpreter start, imports and (for the distributed sides) process-group or
Ray start-up:

* ``plain``: ``plain_loop.py``, 1 process, gradient accumulation to the global batch;
* ``torchrun``: ``torchrun --nproc_per_node 2`` of ``torchrun_ddp.py`` (DDP, gloo, 127.0.0.1);
* ``ray``: ``ray_train_run.py``, ``run_training`` with 2 Ray workers, checkpoint only at the end.

Steady state is the step window ``(warmup, steps]``, timed from each side's per-step ``elapsed``
(``bench_setup.steady_state``). MFU = flops_per_token x tokens/s / 180e9, the fp32 peak of the whole
machine (both cores), whatever the number of processes. Ray and torch.distributed bind every
interface, so this refuses to run outside a loopback-only network namespace:

    unshare -n bash -c 'ip link set lo up && /tmp/venv-probe/bin/python \\
        benchmarks/training/bench_training.py --shape llama-tiny --steps 60'
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench_setup import HERE, MACHINE_PEAK_FLOPS, REPO, BenchConfig, model_figures, steady_state

PYTHON = sys.executable
SYSTEMS = ("plain", "torchrun", "ray")


def ensure_dataset(data_dir: pathlib.Path) -> str:
    """The benchmark's dataset: built once with the training tests' ingest job (Tiny Shakespeare)."""
    manifest = data_dir / "dataset" / "manifest.json"
    if not manifest.exists():
        from tests.integration.training_fixtures import build_dataset

        build_dataset(REPO.parent / "shared/data", data_dir)
    return json.loads(manifest.read_text())["uri"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(system: str, cfg: BenchConfig, out: str, baseline_nice: int) -> list[str]:
    args = [*cfg.to_args(), f"--out={out}"]
    if system == "ray":
        return [PYTHON, str(HERE / "ray_train_run.py"), *args]
    nice = ["nice", "-n", str(baseline_nice)] if baseline_nice else []
    if system == "plain":
        return [*nice, PYTHON, str(HERE / "plain_loop.py"), *args]
    torchrun = str(pathlib.Path(PYTHON).parent / "torchrun")
    return [
        *nice, torchrun, "--nnodes", "1", f"--nproc_per_node={cfg.workers}", "--master_addr", "127.0.0.1",
        "--master_port", str(free_port()), str(HERE / "torchrun_ddp.py"), *args,
    ]  # fmt: skip


def run_one(system: str, cfg: BenchConfig, figures: dict[str, float], nice: argparse.Namespace) -> dict:
    """One child run of ``system``; its steady-state figures, start-up and wall time.

    Ray's raylet starts its workers at nice ``RAY_worker_niceness`` (15 by default), below everything
    else on a shared machine; ``nice`` sets it for the Ray side, and a ``nice`` for the baselines.
    """
    env = dict(os.environ)
    if nice.ray_worker_niceness is not None:
        env["RAY_worker_niceness"] = str(nice.ray_worker_niceness)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        out = os.path.join(tmp, "result.json")
        load_before = os.getloadavg()[0]
        spawned = time.time()
        argv = command(system, cfg, out, nice.baseline_niceness)
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env)
        ended = time.time()
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
            raise SystemExit(f"{system} failed with exit code {proc.returncode}")
        result = json.loads(pathlib.Path(out).read_text())
    stats = steady_state(result["records"], cfg.warmup, int(figures["tokens_per_step"]))
    row: dict[str, Any] = {
        "system": system,
        **stats,
        "mfu": figures["flops_per_token"] * stats["tokens_per_s"] / MACHINE_PEAK_FLOPS,
        "startup_s": result["loop_began_wall"] - spawned,
        "teardown_s": ended - result["loop_ended_wall"],
        "wall_s": ended - spawned,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "processes": result["processes"],
        "threads": result.get("threads"),
    }
    window = [r for r in result["records"] if r["step"] > cfg.warmup]
    row["warmup_step_s"] = [round(float(r["step_time_s"]), 3) for r in result["records"][: cfg.warmup]]
    if system == "ray":
        # What run_training itself reports, to check its MFU against the machine's peak.
        reported = [r["mfu"] for r in window if r.get("mfu") is not None]
        row["reported_mfu"] = statistics.fmean(reported) if reported else None
        row["reported_tokens_per_s"] = statistics.fmean(r["tokens_per_s"] for r in window)
        row["startup_in_run_training_s"] = result["loop_began_wall"] - result["run_training_called_wall"]
    else:
        row["data_s"] = statistics.fmean(r["data_s"] for r in window)
    return row


def summarize(rows: list[dict[str, Any]], how: str) -> dict[str, dict[str, float]]:
    """Per system over its repeats: the ``median`` of each figure, or the ``best`` run (most tokens/s).

    On a machine shared with other jobs, a run that lost cores to them is slow in every figure; the
    best run is the one closest to an idle machine, the median shows the typical one.
    """
    out: dict[str, dict[str, float]] = {}
    for system in SYSTEMS:
        mine = [r for r in rows if r["system"] == system]
        if not mine:
            continue
        keys = [k for k, v in mine[0].items() if isinstance(v, int | float) and v is not None]
        if how == "best":
            best = max(mine, key=lambda r: r["tokens_per_s"])
            out[system] = {k: best[k] for k in keys}
        else:
            out[system] = {k: statistics.median(r[k] for r in mine if r.get(k) is not None) for k in keys}
    return out


def table(summary: dict[str, dict[str, float]]) -> str:
    fields = [
        ("tokens_per_s", "tokens/s (steady)", "{:.1f}"),
        ("step_s", "step time s (window/steps)", "{:.4f}"),
        ("step_compute_s", "step time s (timed step only)", "{:.4f}"),
        ("mfu", "MFU vs 180 GFLOP/s machine", "{:.2%}"),
        ("startup_s", "start-up s (spawn -> loop)", "{:.1f}"),
        ("loop_s", "training loop s", "{:.1f}"),
        ("teardown_s", "teardown s (loop -> exit)", "{:.1f}"),
        ("wall_s", "wall s (total)", "{:.1f}"),
        ("final_loss", "final loss", "{:.4f}"),
        ("load_before", "load avg (1 min) before", "{:.2f}"),
    ]
    systems = [s for s in SYSTEMS if s in summary]
    header = "".join(f"{s:>12}" for s in systems)
    lines = [f"{'metric':32}{header}{'ray/torchrun':>14}{'ray/plain':>11}"]
    for key, label, fmt in fields:
        cells = "".join(f"{fmt.format(summary[s][key]):>12}" for s in systems)
        ratios = ""
        if "ray" in summary:
            for base, width in (("torchrun", 14), ("plain", 11)):
                if base in summary and summary[base].get(key):
                    ratios += f"{summary['ray'][key] / summary[base][key]:>{width - 1}.3f}x"
        lines.append(f"{label:32}{cells}{ratios}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="llama-tiny")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--global-batch", type=int, default=32)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1, help="runs per system, interleaved; medians shown")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--data-dir", type=pathlib.Path, default=pathlib.Path("/tmp/shipyard-bench-training"))
    parser.add_argument(
        "--ray-worker-niceness", type=int, help="RAY_worker_niceness for the Ray side (Ray's default: 15)"
    )
    parser.add_argument("--baseline-niceness", type=int, default=0, help="nice level of plain and torchrun")
    parser.add_argument("--json", type=pathlib.Path, help="write every run's figures here")
    args = parser.parse_args()
    if {name for _, name in socket.if_nameindex()} - {"lo"}:
        raise SystemExit("Ray and torch.distributed bind every interface: run it under `unshare -n` (--help)")
    dataset = ensure_dataset(args.data_dir)
    cfg = BenchConfig(dataset, args.shape, args.steps, args.warmup, args.global_batch, args.micro_batch)
    figures = model_figures(cfg)
    ray_nice = 15 if args.ray_worker_niceness is None else args.ray_worker_niceness
    print(
        f"shape {cfg.shape}: {figures['params'] / 1e6:.2f}M params, {figures['flops_per_token'] / 1e6:.1f} "
        f"MFLOP/token, seq_len {figures['seq_len']}, global batch {cfg.global_batch} "
        f"(micro {cfg.micro_batch}), {cfg.steps} steps, window ({cfg.warmup}, {cfg.steps}]; "
        f"nice: Ray workers {ray_nice}, baselines {args.baseline_niceness}",
        flush=True,
    )
    rows = []
    for repeat in range(args.repeats):
        for system in args.systems.split(","):
            row = run_one(system, cfg, figures, args)
            rows.append(row)
            print(f"  run {repeat + 1} {system:9} {row['tokens_per_s']:9.1f} tokens/s  "
                  f"load {row['load_before']:.2f}->{row['load_after']:.2f}", flush=True)  # fmt: skip
    for how in ("median", "best") if args.repeats > 1 else ("median",):
        print(f"-- {how} of {args.repeats} run(s) per system" if args.repeats > 1 else "")
        print(table(summarize(rows, how)))
    summary = summarize(rows, "median")
    if "ray" in summary and summary["ray"].get("reported_mfu") is not None:
        ray = summary["ray"]
        expected = figures["flops_per_token"] * ray["reported_tokens_per_s"] / MACHINE_PEAK_FLOPS
        print(
            f"run_training's own metrics: tokens_per_s {ray['reported_tokens_per_s']:.1f} (per timed step), "
            f"mfu {ray['reported_mfu']:.2%}; that rate against the 180 GFLOP/s machine is {expected:.2%}"
        )
    if args.json:
        doc = {"config": cfg.__dict__, "args": {k: str(v) for k, v in vars(args).items()}, "figures": figures}
        args.json.write_text(json.dumps({**doc, "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
