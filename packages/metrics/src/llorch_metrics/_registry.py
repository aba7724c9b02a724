"""A prometheus-client registry holding exactly the contract's metrics for one service (OC-METRICS-7101).

Metric objects are created from the contract, so a name, type, label set or
bucket can only differ from it by changing the contract. Label values beyond
a label's cardinality budget collapse into `__overflow__` (OC-METRICS-7124),
so a runaway label can never blow up a scrape.
"""

from __future__ import annotations

from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from ._contract import MetricsContract, MetricSpec, load_contract

OVERFLOW = "__overflow__"
Metric = Counter | Gauge | Histogram
M = TypeVar("M", Counter, Gauge, Histogram)


def _build(spec: MetricSpec, registry: CollectorRegistry) -> Metric:
    # prometheus-client appends `_total` to counters itself.
    if spec.type == "counter":
        return Counter(spec.name.removesuffix("_total"), spec.help, spec.labels, registry=registry)
    if spec.type == "gauge":
        return Gauge(spec.name, spec.help, spec.labels, registry=registry)
    if spec.type == "histogram":
        return Histogram(spec.name, spec.help, spec.labels, buckets=spec.buckets or (), registry=registry)
    raise ValueError(f"metric {spec.name}: unknown type {spec.type!r}")


class ServiceMetrics:
    """The metrics one service exposes, looked up by their wire name."""

    def __init__(self, service: str, contract: MetricsContract | None = None) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # the contract has no *_created series
        self.contract = contract or load_contract()
        # The contract's content type (the text format generate_latest writes), not the library default.
        self.content_type = str(self.contract.exposition["content_type"])
        self.registry = CollectorRegistry()
        self._specs = {spec.name: spec for spec in self.contract.for_service(service)}
        self._metrics = {name: _build(spec, self.registry) for name, spec in self._specs.items()}
        self._seen: dict[tuple[str, str], set[str]] = {}

    def _bounded(self, metric: str, labels: dict[str, str]) -> dict[str, str]:
        budget = self.contract.label_cardinality_budget
        bounded = {}
        for label, value in labels.items():
            seen = self._seen.setdefault((metric, label), set())
            over = value not in seen and label in budget and len(seen) >= budget[label]
            kept = OVERFLOW if over else value
            seen.add(kept)
            bounded[label] = kept
        return bounded

    def _child(self, name: str, kind: type[M], labels: dict[str, str]) -> M:
        spec = self._specs[name]
        if set(labels) != set(spec.labels):
            raise ValueError(f"{name} takes labels {spec.labels}, got {sorted(labels)}")
        metric = self._metrics[name]
        if not isinstance(metric, kind):
            raise TypeError(f"{name} is a {spec.type}, not a {kind.__name__.lower()}")
        return metric.labels(**self._bounded(name, labels))

    def counter(self, name: str, **labels: str) -> Counter:
        """The labelled child of contract counter `name` (every contract label must be given)."""
        return self._child(name, Counter, labels)

    def gauge(self, name: str, **labels: str) -> Gauge:
        """The labelled child of contract gauge `name`."""
        return self._child(name, Gauge, labels)

    def histogram(self, name: str, **labels: str) -> Histogram:
        """The labelled child of contract histogram `name`."""
        return self._child(name, Histogram, labels)

    def metric(self, name: str) -> Metric:
        """The parent metric, for `.clear()` or `.remove(...)` of derived series."""
        return self._metrics[name]

    def register_collector(self, collector: Collector) -> None:
        self.registry.register(collector)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
