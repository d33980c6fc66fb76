"""Prometheus metrics, in multiprocess mode so the prefork pool's children add up to one view.

prometheus-client decides at import time whether values live in per-process files
(PROMETHEUS_MULTIPROC_DIR), so `worker.app` prepares that directory before anything imports this module.
The worker's main process serves `/metrics` on APOLOGY_METRICS_PORT: the children's counters from the
shared directory, plus the dead-letter depth read from Redis at scrape time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

EVENTS = Counter("apology_events_total", "Ticket events handled, by outcome", ["outcome"])
VERDICTS = Counter("apology_verdicts_total", "Verdicts, by action", ["action"])
DELIVERIES = Counter("apology_deliveries_total", "Delivery attempts, by target and outcome",
                     ["target", "outcome"])
EVALUATION_SECONDS = Histogram("apology_evaluation_seconds", "Time to judge one reply",
                               buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))
DELIVERY_SECONDS = Histogram("apology_delivery_seconds", "Time of one outbound HTTP request",
                             ["target"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


class DeadLetterDepth:
    """A collector that asks the store for the dead-letter count when Prometheus scrapes."""

    def __init__(self, count: Callable[[], int]) -> None:
        self._count = count

    def collect(self) -> Iterator[Any]:
        gauge = GaugeMetricFamily("apology_dead_letters", "Entries in the dead-letter store")
        try:
            gauge.add_metric([], float(self._count()))
        except Exception:  # a scrape must not fail because Redis is briefly away
            return
        yield gauge


def registry(dead_letters: Callable[[], int] | None = None) -> CollectorRegistry:
    """Every process's metrics in multiprocess mode; this process's alone otherwise."""
    if not os.environ.get(MULTIPROC_ENV):
        if dead_letters is not None:
            REGISTRY.register(DeadLetterDepth(dead_letters))
        return REGISTRY
    reg = CollectorRegistry()
    MultiProcessCollector(reg)  # type: ignore[no-untyped-call]
    if dead_letters is not None:
        reg.register(DeadLetterDepth(dead_letters))
    return reg


def serve(port: int, dead_letters: Callable[[], int] | None = None) -> None:
    """Serve /metrics from a background thread of the calling (main) process."""
    start_http_server(port, registry=registry(dead_letters))


def process_exited(pid: int) -> None:
    """Forget a pool child's live gauges (counters stay, as prometheus-client's docs describe)."""
    if os.environ.get(MULTIPROC_ENV):
        mark_process_dead(pid)  # type: ignore[no-untyped-call]
