"""Prometheus metrics from llama-orch's metrics contract."""

from ._contract import MetricsContract, MetricSpec, load_contract
from ._registry import OVERFLOW, ServiceMetrics

__all__ = ["OVERFLOW", "MetricSpec", "MetricsContract", "ServiceMetrics", "load_contract"]
