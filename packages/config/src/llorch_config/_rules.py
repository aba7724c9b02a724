"""Cross-field rules the schema cannot express (contracts/config/README.md, "Loader").

Each rule yields `(key path, message)` in the same `$.a[0].b` form that schema
errors use, so a user sees one kind of error whatever layer caught it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from msgspec import UNSET

from llorch_contracts.config import (
    EngineKind,
    LlorchConfig,
    PoolConfig,
    Profile,
    ProvisioningMode,
    TrustPolicy,
)

Problem = tuple[str, str]
_CONTROL = {chr(c) for c in range(32)} | {chr(127)}


def control_characters(raw: Any, path: str = "$") -> Iterator[Problem]:
    """Strings with control characters (Python's `$` would let `"id\\n"` pass an id pattern)."""
    if isinstance(raw, str):
        if _CONTROL.intersection(raw):
            yield path, "control characters are not allowed"
    elif isinstance(raw, dict):
        for key, value in raw.items():
            yield from control_characters(value, f"{path}.{key}")
    elif isinstance(raw, list):
        for index, value in enumerate(raw):
            yield from control_characters(value, f"{path}[{index}]")


def _pool_devices(pool: PoolConfig, at: str, profile: Profile) -> Iterator[Problem]:
    if len(set(pool.devices)) != len(pool.devices):
        yield f"{at}.devices", "a device is listed twice"
    # `devices: []` means "any GPU" (HME-011); whether one exists is pool-managerd's check at start.
    if pool.allow_cpu_inference and profile != Profile.dev:
        yield (
            f"{at}.allow_cpu_inference",
            "CPU inference needs `profile: dev` (the home profile is GPU-only); "
            "set `profile: dev` or remove `allow_cpu_inference`",
        )
    if pool.tensor_split is not UNSET and len(pool.tensor_split) != len(pool.devices):
        yield f"{at}.tensor_split", "needs exactly one ratio per entry of `devices`"


def _pool_provisioning(config: LlorchConfig, pool: PoolConfig, at: str) -> Iterator[Problem]:
    if pool.engine.kind == EngineKind.mock:
        return
    prov = pool.engine.provisioning
    at = f"{at}.engine.provisioning"
    policy = config.policy
    if prov.mode == ProvisioningMode.external and prov.external is UNSET:
        yield f"{at}.external", "mode `external` needs `external.url`"
    if prov.mode == ProvisioningMode.binary:
        binary = prov.binary
        if binary is UNSET or (binary.path is UNSET) == (binary.url is UNSET):
            yield f"{at}.binary", "mode `binary` needs exactly one of `binary.path` or `binary.url`"
        elif binary.url is not UNSET:
            if binary.sha256 is UNSET:
                yield f"{at}.binary.sha256", "a binary `url` needs its `sha256`"
            if not policy.allow_binary_downloads:
                yield f"{at}.binary.url", "downloading a binary needs `policy.allow_binary_downloads: true`"
    if prov.mode == ProvisioningMode.package:
        if prov.package is UNSET:
            yield f"{at}.package", "mode `package` needs the `package` object"
        if not policy.allow_package_installs:
            yield f"{at}.mode", "mode `package` needs `policy.allow_package_installs: true`"
    if prov.mode == ProvisioningMode.container and prov.container is UNSET:
        yield f"{at}.container", "mode `container` needs the `container` object"


def check_rules(config: LlorchConfig) -> Iterator[Problem]:
    """Every cross-field problem in a decoded config, in file order."""
    seen: dict[str, int] = {}
    for index, pool in enumerate(config.pools):
        at = f"$.pools[{index}]"
        if pool.id in seen:
            yield f"{at}.id", f"pool id {pool.id!r} is already used by $.pools[{seen[pool.id]}]"
        seen.setdefault(pool.id, index)
        yield from _pool_devices(pool, at, config.profile)
        yield from _pool_provisioning(config, pool, at)
        strict = config.catalog.trust_policy == TrustPolicy.strict
        if strict and pool.model.sha256 is UNSET and not pool.model.ref.startswith("gen:"):
            yield (
                f"{at}.model.sha256",
                "`catalog.trust_policy: strict` needs a digest for every fetched model",
            )
    ports = config.pool_managerd.engine_ports
    if ports.start > ports.end:
        yield "$.pool_managerd.engine_ports", "`start` must not be above `end`"
    elif ports.end - ports.start + 1 < sum(p.replicas for p in config.pools):
        yield "$.pool_managerd.engine_ports", "the range has fewer ports than there are replicas"
    backoff = config.pool_managerd.supervision
    if backoff.backoff_initial_ms > backoff.backoff_max_ms:
        yield "$.pool_managerd.supervision.backoff_initial_ms", "must not be above `backoff_max_ms`"
