"""The metrics contract (contracts/metrics/metrics.yaml) as typed data, from the generated package."""

from __future__ import annotations

from importlib import resources

import msgspec

import llorch_contracts


class MetricSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One metric as the contract defines it (names as on the wire: counters end in `_total`)."""

    name: str
    type: str
    help: str
    labels: list[str]
    service: str
    required: bool
    buckets: list[float] | None = None
    label_values: dict[str, list[str]] | None = None
    unit: str | None = None


class MetricsContract(msgspec.Struct, frozen=True, kw_only=True):
    schema_version: int
    exposition: dict[str, object]
    label_cardinality_budget: dict[str, int]
    metrics: list[MetricSpec]

    def for_service(self, service: str) -> list[MetricSpec]:
        return [m for m in self.metrics if m.service == service]


def load_contract() -> MetricsContract:
    """The contract shipped in llorch_contracts (regenerated from contracts/metrics/metrics.yaml)."""
    text = resources.files(llorch_contracts).joinpath("metrics.json").read_bytes()
    return msgspec.json.decode(text, type=MetricsContract)
