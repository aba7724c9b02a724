"""`/v2/meta/*`: what this orchestrator is and what its engines can do (OC-CTRL-2060)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from llorch_contracts.api import (
    Capabilities,
    EngineCapability,
    EngineKind,
    PoolStatus,
    ReplicaState,
    ServiceName,
    VersionInfo,
    Workload,
)
from llorch_contracts.config import LlorchConfig
from llorch_dataplane import Orchestrator
from llorch_http import BuildInfo, api_version

SERVICE = "orchestratord"


def capabilities_from(config: LlorchConfig, pools: list[PoolStatus]) -> Capabilities:
    """One entry per engine kind of the configured pools, from the live pool view (OC-CTRL-2060).

    Versions, contexts and slots come from Ready replicas as the engines report them; before a pool
    has one, its configured context and slots stand in and its version is null.
    """
    configured = {pool.id: pool for pool in config.pools}
    engines: dict[EngineKind, EngineCapability] = {}
    for pool in pools:
        ready = [r for r in pool.replicas if r.state == ReplicaState.ready]
        setting = configured[pool.pool_id]
        ctx = max((r.ctx_max for r in ready), default=setting.ctx_max)
        slots = sum(r.slots_total for r in ready) if ready else setting.replicas * setting.slots_per_replica
        version = next((r.engine_version for r in ready if r.engine_version), None)
        cpu = any(r.device_mask == "cpu" for r in ready) or not setting.devices
        known = engines.get(pool.engine)
        features = {**_FEATURES, "cpu": cpu or bool(known and known.features.get("cpu"))}
        engines[pool.engine] = EngineCapability(
            engine=pool.engine,
            engine_version=version or (known.engine_version if known else None),
            ctx_max=max(ctx, known.ctx_max if known else 0),
            pools=[*(known.pools if known else []), pool.pool_id],
            slots_total=slots + (known.slots_total if known else 0),
            supported_workloads=[Workload.completion],
            features=features,
        )
    return Capabilities(api_version=api_version(SERVICE), engines=list(engines.values()))


_FEATURES = {"seed": True, "stop": True, "cancel_aborts_engine": True, "resume": True}


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
    def capabilities(
        self, config: NamedDependency[LlorchConfig], orchestrator: NamedDependency[Orchestrator]
    ) -> Capabilities:
        return capabilities_from(config, orchestrator.pools())
