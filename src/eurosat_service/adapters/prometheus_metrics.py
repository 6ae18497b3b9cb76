"""The service's Prometheus metrics, in a registry of their own (one per app, so tests that
build several apps never collide in the process-wide default registry)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)

disable_created_metrics()  # the *_created series only add noise to every scrape


class ServiceMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # process_resident_memory_bytes and CPU seconds (a Fargate task has 0.5 GB), and the
        # collector's runs per generation (start-up turns it off until the model is loaded).
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Counter(
            "eurosat_http_requests", "HTTP requests by endpoint, method and status",
            ["endpoint", "method", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "eurosat_http_request_duration_seconds", "HTTP request latency by endpoint, method and status",
            ["endpoint", "method", "status"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.batch_size = Histogram(
            "eurosat_inference_batch_size", "Images per micro-batch run by the inference worker",
            buckets=BATCH_BUCKETS, registry=self.registry,
        )
        self.images = Counter("eurosat_images_classified", "Images classified", registry=self.registry)
        self.queue_depth = Gauge(
            "eurosat_inference_queue_depth", "Images waiting for the inference worker", registry=self.registry
        )
        self.model_info = Gauge(
            "eurosat_model_info", "The model being served, and how many views it averages (value is always 1)",
            ["name", "version", "architecture", "views"], registry=self.registry,
        )
        self.ready = Gauge("eurosat_ready", "1 once the model is loaded and warmed up", registry=self.registry)

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        labels = (endpoint, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def observe_batch(self, size: int) -> None:
        """Called from the inference worker thread (prometheus_client is thread-safe)."""
        self.batch_size.observe(size)
        self.images.inc(size)

    def track_queue_depth(self, depth: Callable[[], float]) -> None:
        self.queue_depth.set_function(depth)

    def set_model(self, name: str, version: str, architecture: str, views: int = 1) -> None:
        self.model_info.clear()
        self.model_info.labels(name, version, architecture, str(views)).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
