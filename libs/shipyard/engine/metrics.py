"""The engine's Prometheus instruments: latency histograms, load gauges, token counters.

``EngineMetrics`` registers into the registry it is given, or into one of its own (never the
process-global one, so two engines in one process never collide); a server renders ``registry``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["EngineMetrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_REQUEST_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        p = "shipyard_inference_"
        self.time_to_first_token = Histogram(
            p + "time_to_first_token_seconds",
            "Arrival to first generated token.",
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.inter_token_latency = Histogram(
            p + "inter_token_latency_seconds",
            "Time between consecutive generated tokens.",
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.request_latency = Histogram(
            p + "request_latency_seconds",
            "Arrival to finish of a request.",
            registry=r,
            buckets=_REQUEST_BUCKETS,
        )
        self.requests_waiting = Gauge(p + "requests_waiting", "Requests queued for admission.", registry=r)
        self.requests_running = Gauge(p + "requests_running", "Sequences in the running batch.", registry=r)
        self.kv_cache_usage = Gauge(
            p + "kv_cache_usage_ratio", "Fraction of KV-cache blocks held by live sequences.", registry=r
        )
        self.prefix_cache_hit_rate = Gauge(
            p + "prefix_cache_hit_rate", "Prompt tokens served from the prefix cache / looked up.", registry=r
        )
        self.prompt_tokens = Counter(p + "prompt_tokens", "Prompt tokens admitted.", registry=r)
        self.generation_tokens = Counter(p + "generation_tokens", "Tokens generated.", registry=r)
        self.preemptions = Counter(
            p + "preemptions", "Sequences preempted for lack of KV blocks.", registry=r
        )
