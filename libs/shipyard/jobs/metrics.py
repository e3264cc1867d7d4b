"""Job lifecycle metrics through the OpenTelemetry API (the service's Prometheus endpoint exports them).

With no meter the hooks record nothing, so the manager works without telemetry set up (CLI, tests).
"""

from __future__ import annotations

from opentelemetry.metrics import Meter

from shipyard.lifecycle import JobState


class JobMetrics:
    def __init__(self, meter: Meter | None = None) -> None:
        self._on = meter is not None
        if meter is None:
            return
        self._finished = meter.create_counter(
            "shipyard.jobs.finished", unit="{job}", description="Jobs that ended, by kind and final state."
        )
        self._running = meter.create_up_down_counter(
            "shipyard.jobs.running", unit="{job}", description="Jobs running now, by kind."
        )

    def state_changed(self, kind: str, old: JobState, new: JobState) -> None:
        if not self._on:
            return
        was_running = old in (JobState.RUNNING, JobState.CANCELLING)
        is_running = new in (JobState.RUNNING, JobState.CANCELLING)
        if is_running and not was_running:
            self._running.add(1, {"kind": kind})
        elif was_running and not is_running:
            self._running.add(-1, {"kind": kind})
        if new.terminal:
            self._finished.add(1, {"kind": kind, "state": new.value})
