"""``GET /metrics``: the server's counters in Prometheus' text format.

One registry per app (not prometheus_client's global one), so several apps in one process, as
in the tests, keep their own counts.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
COUNT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


class Metrics:
    """Requests by route and status, latency, engine calls (requests and sequences merged into
    each), tokens read and queue depth, per model."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "jinarag_requests",
            "HTTP requests answered, by route and status code",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "jinarag_request_duration_seconds",
            "Time from a request's arrival to the end of its answer",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "jinarag_batch_requests",
            "Requests merged into one engine call",
            ["model"],
            buckets=COUNT_BUCKETS,
            registry=self.registry,
        )
        self.batch_sequences = Histogram(
            "jinarag_batch_sequences",
            "Texts or (query, document) pairs in one engine call",
            ["model"],
            buckets=COUNT_BUCKETS,
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "jinarag_batch_duration_seconds",
            "Time of one engine call (the model's busy time is the sum)",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "jinarag_tokens", "Tokens read by the model", ["model"], registry=self.registry
        )
        self.queue_depth = Gauge(
            "jinarag_queue_depth",
            "Requests waiting for the model",
            ["model"],
            registry=self.registry,
        )

    def observer(self, model: str) -> Callable[[int, int, int, float], None]:
        """What a model's batcher calls after each engine call: (requests, sequences, tokens,
        seconds)."""
        requests = self.batch_requests.labels(model)
        sequences = self.batch_sequences.labels(model)
        tokens = self.tokens.labels(model)
        busy = self.batch_seconds.labels(model)

        def observe(
            request_count: int, sequence_count: int, token_count: int, seconds: float
        ) -> None:
            requests.observe(request_count)
            sequences.observe(sequence_count)
            tokens.inc(token_count)
            busy.observe(seconds)

        return observe

    def track_queue(self, model: str, depth: Callable[[], float]) -> None:
        self.queue_depth.labels(model).set_function(depth)

    def record(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
