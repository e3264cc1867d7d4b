"""N TrainingJobs created at once against kmock: the operator (kopf) vs a naive reconcile-everything loop.

For each N and each side: a fresh kmock API server on 127.0.0.1 (in this process), the controller as a
child process (``run_operator.py``), N TrainingJobs POSTed by 8 threads, then

* settle: time until every TrainingJob has ``status.phase`` and its RayJob exists, then until the
  controller's calls stop (no call for ``--quiet-gap`` seconds);
* calls: every request the controller made, from the server's request log (kopf's own watches and
  annotation patches included), by verb and resource, total and per object;
* steady: the requests made during a ``--quiet-s`` window after that (a steady object should cost none);
* one more object: the calls one extra TrainingJob costs once the N others have settled;
* memory and CPU of the controller process: RSS before the creates and after settling, CPU seconds.

    /tmp/venv-probe/bin/python benchmarks/operator/bench_operator.py --n 100,1000
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))  # the repository root: `tests` (the kmock tests' resource table)

from mock_api import DRIVER_AGENT, MockApiServer  # noqa: E402

from shipyard_operator.kube import KubeClient, load_api_client, object_path  # noqa: E402
from tests.integration.kmock_harness import NS, SY, TRAINING_SPEC  # noqa: E402

SYSTEMS = ("kopf", "naive")
WRITES = {"create", "apply", "patch", "delete"}


def poll(what: str, probe: Callable[[], Any], deadline: float, interval: float = 0.05) -> Any:
    """Call ``probe`` until truthy; None once ``deadline`` (monotonic) passes."""
    while time.monotonic() < deadline:
        if out := probe():
            return out
        time.sleep(interval)  # a poll interval: the deadline decides, not the sleep
    print(f"  ! deadline passed waiting for {what}", file=sys.stderr)
    return None


class Controller:
    """The child process and its stdin/stdout line protocol."""

    def __init__(self, mode: str, kubeconfig: pathlib.Path, log: pathlib.Path, tracemalloc: bool) -> None:
        cmd = [sys.executable, str(HERE / "run_operator.py"), "--mode", mode, "--kubeconfig", str(kubeconfig)]
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            cmd + (["--tracemalloc"] if tracemalloc else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        )
        first = json.loads(self.proc.stdout.readline() or "{}")  # type: ignore[union-attr]
        if not first.get("ready"):
            raise RuntimeError(f"{mode} did not start: {first}; log: {log}")

    def report(self) -> dict[str, Any]:
        self.proc.stdin.write("report\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return json.loads(self.proc.stdout.readline())  # type: ignore[union-attr]

    def stop(self) -> None:
        self.proc.stdin.write("stop\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def training_job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": SY,
        "kind": "TrainingJob",
        "spec": TRAINING_SPEC,
        # The real API server assigns uid and generation; the mock stores what it is given.
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "generation": 1,
            "resourceVersion": "1",
        },
    }


def quiet_for(server: MockApiServer, gap: float, deadline: float) -> float | None:
    """Wait until no request arrives for ``gap`` seconds; the monotonic time of the last one (or None)."""
    last_count, last_change = server.request_count(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)  # a poll interval
        count = server.request_count()
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        elif time.monotonic() - last_change >= gap:
            return last_change
    return None


def tally(requests: list[tuple[str, str, str]]) -> dict[str, int]:
    """'verb resource[/sub]' -> count, plus totals by verb."""
    out: collections.Counter[str] = collections.Counter()
    for verb, plural, sub in requests:
        out[f"{verb} {plural}{'/' + sub if sub else ''}"] += 1
        out[f"= {verb}"] += 1
        out["= total"] += 1
        out["= writes" if verb in WRITES else "= reads"] += 1
    return dict(out)


def run_one(system: str, n: int, args: argparse.Namespace, work: pathlib.Path) -> dict[str, Any]:
    with MockApiServer(realistic=not args.raw_kmock) as server:
        kubeconfig = server.write_kubeconfig(work / f"kubeconfig-{system}-{n}")
        api = load_api_client(str(kubeconfig))
        api.user_agent = DRIVER_AGENT
        api.configuration.connection_pool_maxsize = args.threads
        driver = KubeClient(api)
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "shipyard-storage", "namespace": NS},
        }
        driver.request("POST", object_path("v1", "Secret", NS), secret)
        ctl = Controller(system, kubeconfig, work / f"{system}-{n}.log", args.tracemalloc)
        try:
            deadline = time.monotonic() + 60
            watching = poll(
                "the controller's watch on trainingjobs",
                lambda: ("watch", "trainingjobs", "") in server.requests_since(0),
                deadline,
            )
            if not watching or quiet_for(server, 1.0, deadline) is None:
                raise RuntimeError(f"{system} never watched TrainingJobs / never went idle")
            before, start_index = ctl.report(), server.request_count()
            names = [f"tj-{i:05d}" for i in range(n)]

            t0 = time.monotonic()
            with ThreadPoolExecutor(args.threads) as pool:
                list(
                    pool.map(
                        lambda name: driver.request(
                            "POST", object_path(SY, "TrainingJob", NS), training_job(name)
                        ),
                        names,
                    )
                )
            t_created = time.monotonic()
            deadline = t0 + args.deadline_s
            done = poll(
                "every TrainingJob's first status and RayJob",
                lambda: server.settled(names) == (n, n),
                deadline,
            )
            t_settled = time.monotonic() if done else None
            progress = server.settled(names)
            last = quiet_for(server, args.quiet_gap, deadline) if done else None
            settle_requests = server.requests_since(start_index)
            after = ctl.report()

            steady_index = server.request_count()
            window_end = time.monotonic() + args.quiet_s
            while time.monotonic() < window_end:
                time.sleep(0.1)  # the quiet window itself: nothing is awaited, calls are counted after
            steady_requests = server.requests_since(steady_index)

            # One more TrainingJob into the settled world: what a single new object costs with N others.
            extra_index, t_extra = server.request_count(), time.monotonic()
            driver.request("POST", object_path(SY, "TrainingJob", NS), training_job("tj-extra"))
            deadline = t_extra + 60
            extra_done = poll("the extra object", lambda: server.settled(["tj-extra"]) == (1, 1), deadline)
            t_extra_done = time.monotonic() if extra_done else None
            if extra_done:
                quiet_for(server, args.quiet_gap, deadline)
            extra_requests = server.requests_since(extra_index)
            end = ctl.report()
        finally:
            ctl.stop()
    calls_by_client = {k: after["calls"].get(k, 0) - before["calls"].get(k, 0) for k in after["calls"]}
    return {
        "system": system,
        "n": n,
        "raw_kmock": args.raw_kmock,
        "create_s": t_created - t0,
        "settle_s": (t_settled - t0) if t_settled else None,
        "settled": {"with_phase": progress[0], "with_rayjob": progress[1]},
        "calls_stop_s": (last - t0) if last else None,
        "settle_calls": tally(settle_requests),
        "kubeclient_calls": calls_by_client,
        "steady_calls": tally(steady_requests),
        "steady_window_s": args.quiet_s,
        "extra_s": (t_extra_done - t_extra) if t_extra_done else None,
        "extra_calls": tally(extra_requests),
        "rss_before_kb": before["rss_kb"],
        "rss_after_kb": after["rss_kb"],
        "rss_end_kb": end["rss_kb"],
        "hwm_kb": end["hwm_kb"],
        "cpu_settle_s": after["cpu_s"] - before["cpu_s"],
        "cpu_steady_s": end["cpu_s"] - after["cpu_s"],  # window + the extra object
        "traced_before_kb": before.get("traced_kb"),
        "traced_after_kb": after.get("traced_kb"),
        "traced_end_kb": end.get("traced_kb"),
        "passes": after.get("passes"),
        "load_avg": os.getloadavg()[0],
    }


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def table(results: list[dict[str, Any]]) -> str:
    """One block per N: metric rows, one column per system, then naive/kopf."""
    lines = []
    for n in sorted({r["n"] for r in results}):
        lines += block(n, {r["system"]: r for r in results if r["n"] == n})
    return "\n".join(lines)


def block(n: int, row: dict[str, dict[str, Any]]) -> list[str]:
    systems = [s for s in SYSTEMS if s in row]
    raw = (
        " (raw kmock: no resourceVersions, every PATCH emits MODIFIED)"
        if row[systems[0]]["raw_kmock"]
        else ""
    )
    lines = [f"-- N = {n}{raw}"]
    lines.append(
        f"{'metric':<40}"
        + "".join(f"{s:>12}" for s in systems)
        + ("   naive/kopf" if len(systems) == 2 else "")
    )

    def metric(label: str, get: Callable[[dict[str, Any]], Any]) -> None:
        values = [get(row[s]) for s in systems]
        ratio = ""
        if (
            len(values) == 2
            and isinstance(values[0], int | float)
            and isinstance(values[1], int | float)
            and values[0]
        ):
            ratio = f"{values[1] / values[0]:>12.2f}x"
        lines.append(f"{label:<40}" + "".join(f"{fmt(v):>12}" for v in values) + ratio)

    metric("create all N (s)", lambda r: r["create_s"])
    metric("all have phase + RayJob (s)", lambda r: r["settle_s"])
    metric("controller's calls stop (s)", lambda r: r["calls_stop_s"])
    metric("controller CPU to settle (s)", lambda r: r["cpu_settle_s"])
    metric("calls to settle, total", lambda r: r["settle_calls"].get("= total", 0))
    metric("calls per object", lambda r: r["settle_calls"].get("= total", 0) / n)
    keys = sorted({k for s in systems for k in row[s]["settle_calls"] if not k.startswith("= t")})
    for key in keys:
        metric(f"  per object: {key}", lambda r, key=key: r["settle_calls"].get(key, 0) / n)
    metric(
        f"steady window calls ({row[systems[0]]['steady_window_s']:.0f} s)",
        lambda r: r["steady_calls"].get("= total", 0),
    )
    metric("  of which writes", lambda r: r["steady_calls"].get("= writes", 0))
    for key in sorted({k for s in systems for k in row[s]["steady_calls"] if not k.startswith("=")}):
        metric(f"  steady: {key}", lambda r, key=key: r["steady_calls"].get(key, 0))
    metric("controller CPU, window + extra (s)", lambda r: r["cpu_steady_s"])
    metric("one more object: phase + RayJob (s)", lambda r: r["extra_s"])
    metric("one more object: calls", lambda r: r["extra_calls"].get("= total", 0))
    metric("  of which writes", lambda r: r["extra_calls"].get("= writes", 0))
    metric("RSS before creates (MiB)", lambda r: r["rss_before_kb"] / 1024)
    metric("RSS after settle (MiB)", lambda r: r["rss_after_kb"] / 1024)
    metric("RSS growth per object (KiB)", lambda r: (r["rss_after_kb"] - r["rss_before_kb"]) / n)
    metric("RSS after window + extra (MiB)", lambda r: r["rss_end_kb"] / 1024)
    if row[systems[0]].get("traced_after_kb") is not None:
        metric(
            "traced Python heap growth / object (KiB)",
            lambda r: (r["traced_after_kb"] - r["traced_before_kb"]) / n,
        )
        metric(
            "  the same after the window (KiB)",
            lambda r: (r["traced_end_kb"] - r["traced_before_kb"]) / n,
        )
    metric("naive passes", lambda r: r["passes"])
    metric("load avg (1 min) at end", lambda r: r["load_avg"])
    lines.append("")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", default="100,1000", help="comma-separated object counts")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--deadline-s", type=float, default=240.0, help="per run, from the first create")
    parser.add_argument("--quiet-gap", type=float, default=2.0, help="no call for this long = calls stopped")
    parser.add_argument("--quiet-s", type=float, default=10.0, help="the steady window after settling")
    parser.add_argument("--threads", type=int, default=8, help="threads POSTing the TrainingJobs")
    parser.add_argument(
        "--raw-kmock",
        action="store_true",
        help="kmock 0.8 as is: one resourceVersion forever, every PATCH emits MODIFIED",
    )
    parser.add_argument("--tracemalloc", action="store_true", help="trace the controller's allocations")
    parser.add_argument("--json", help="write every run's figures here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-operator-") as tmp:
        for n in (int(x) for x in args.n.split(",")):
            for system in args.systems.split(","):
                print(f"running {system} N={n} ...", file=sys.stderr, flush=True)
                results.append(run_one(system, n, args, pathlib.Path(tmp)))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(table(results))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
