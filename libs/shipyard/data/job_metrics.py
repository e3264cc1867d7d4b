"""Ingest job metrics, recorded through the OpenTelemetry API (exported by the service's Prometheus endpoint).

The manager calls these hooks; with no meter given they record nothing, so the core stays usable
without telemetry set up (CLI embedded runs, unit tests).
"""

from __future__ import annotations

from opentelemetry.metrics import Meter

from shipyard.lifecycle import JobState


class IngestMetrics:
    def __init__(self, meter: Meter | None = None) -> None:
        self._on = meter is not None
        if meter is None:
            return
        self._docs = meter.create_counter(
            "shipyard.ingest.documents_read", unit="{document}", description="Input documents read."
        )
        self._finished = meter.create_counter(
            "shipyard.ingest.jobs_finished", unit="{job}", description="Jobs ended, by state."
        )
        self._active = meter.create_up_down_counter(
            "shipyard.ingest.jobs_running", unit="{job}", description="Ingest jobs running now."
        )

    def documents_read(self, delta: int) -> None:
        if self._on and delta > 0:
            self._docs.add(delta)

    def state_changed(self, old: JobState, new: JobState) -> None:
        if not self._on:
            return
        if new is JobState.RUNNING:
            self._active.add(1)
        elif old in (JobState.RUNNING, JobState.CANCELLING) and new is not JobState.CANCELLING:
            self._active.add(-1)
        if new.terminal:
            self._finished.add(1, {"state": new.value})
