"""`/v2/meta/*`: what this orchestrator is and what its engines can do (OC-CTRL-2060)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from llorch_contracts.api import (
    Capabilities,
    EngineCapability,
    EngineKind,
    ServiceName,
    VersionInfo,
    Workload,
)
from llorch_contracts.config import LlorchConfig
from llorch_http import BuildInfo, api_version

SERVICE = "orchestratord"


def capabilities_from(config: LlorchConfig) -> Capabilities:
    """One entry per configured engine kind, summed over its pools."""
    engines: dict[str, EngineCapability] = {}
    for pool in config.pools:
        kind = str(pool.engine.kind)
        slots = pool.replicas * pool.slots_per_replica
        known = engines.get(kind)
        engines[kind] = EngineCapability(
            engine=EngineKind(kind),
            engine_version=None,
            ctx_max=max(pool.ctx_max, known.ctx_max if known else 0),
            pools=[*(known.pools if known else []), pool.id],
            slots_total=slots + (known.slots_total if known else 0),
            supported_workloads=[Workload.completion],
            features={"seed": True, "stop": True, "cancel_aborts_engine": True},
        )
    return Capabilities(api_version=api_version(SERVICE), engines=list(engines.values()))


class MetaController(Controller):
    path = "/v2/meta"

    @get("/version", sync_to_thread=False)
    def version(self, build: NamedDependency[BuildInfo]) -> VersionInfo:
        return VersionInfo(
            api_version=api_version(SERVICE),
            service=ServiceName.orchestratord,
            build_commit=build.commit,
            build_time=build.time,
        )

    @get("/capabilities", sync_to_thread=False)
    def capabilities(self, config: NamedDependency[LlorchConfig]) -> Capabilities:
        return capabilities_from(config)
