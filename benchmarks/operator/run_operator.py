"""One controller as its own process, so its memory and CPU are its own: the operator or the naive loop.

    python run_operator.py --mode kopf|naive --kubeconfig FILE [--tracemalloc]

Prints ``{"ready": true}`` once running, then answers on stdin: ``report`` prints one JSON line (API calls
by verb from ``KubeClient.calls``, RSS, peak RSS, CPU seconds, tracemalloc figures when on, and the naive
loop's pass count); ``stop`` stops the controller and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import sys
import threading
import tracemalloc
from typing import Any

import kopf

from shipyard_operator.config import OperatorConfig
from shipyard_operator.handlers import build_registry, configure
from shipyard_operator.kube import KubeClient, load_api_client
from shipyard_operator.reconcile import Reconciler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from naive_loop import NaiveLoop  # noqa: E402

# The tests' operator configuration: a known GPU pool, so every benchmark job gets a RayJob.
CONFIG = OperatorConfig(
    storage_root="s3://bucket",
    node_pools={"a100": {"nodeSelector": {"pool": "a100"}, "tolerations": [{"key": "nvidia.com/gpu"}]}},
)


def proc_status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def report(client: KubeClient, naive: NaiveLoop | None) -> dict[str, Any]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out: dict[str, Any] = {
        "calls": dict(client.calls),
        "rss_kb": proc_status_kb("VmRSS"),
        "hwm_kb": proc_status_kb("VmHWM"),
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "threads": threading.active_count(),
    }
    if tracemalloc.is_tracing():
        current, peak = tracemalloc.get_traced_memory()
        out |= {"traced_kb": current // 1024, "traced_peak_kb": peak // 1024}
    if naive is not None:
        out |= {"passes": naive.passes, "events_seen": naive.events_seen}
    return out


def start_kopf(reconciler: Reconciler, stop: threading.Event, ready: threading.Event) -> None:
    settings = kopf.OperatorSettings()
    configure(settings)  # exactly the operator's settings (workers, timeouts, annotation storages)
    coro = kopf.operator(
        registry=build_registry(reconciler),
        settings=settings,
        standalone=True,
        clusterwide=True,
        stop_flag=stop,
        ready_flag=ready,
    )
    threading.Thread(target=asyncio.run, args=(coro,), daemon=True, name="kopf").start()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("kopf", "naive"), required=True)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--tracemalloc", action="store_true", help="trace Python allocations (slower)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.tracemalloc:
        tracemalloc.start()
    api = load_api_client(args.kubeconfig)
    client = KubeClient(api)
    stop, ready = threading.Event(), threading.Event()
    naive: NaiveLoop | None = None
    if args.mode == "kopf":
        start_kopf(Reconciler(client, CONFIG), stop, ready)
        if not ready.wait(timeout=60):
            print(json.dumps({"error": "kopf did not become ready in 60 s"}), flush=True)
            return 1
    else:
        # The watch streams from the kubernetes client: its own ApiClient, so the counted client is ours.
        naive = NaiveLoop(client, load_api_client(args.kubeconfig), CONFIG)
        threading.Thread(target=naive.run, daemon=True, name="naive").start()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "report":
            print(json.dumps(report(client, naive)), flush=True)
        elif command == "stop":
            break
    stop.set()
    if naive is not None:
        naive.stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
