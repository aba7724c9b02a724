"""Drain and reload over HTTP (OC-POOL-3150..3153): accept at once, act in the background.

Progress and the outcome, including a rolled-back reload, show in the pool's status.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED
from msgspec import UNSET

from llorch_contracts.api import DrainRequest, ErrorKind, PoolAction, PoolActionAccepted, ReloadRequest
from llorch_http import ApiError
from llorch_pools import PoolBusyError, PoolManager
from llorch_provisioning import InvalidModelRefError, ModelDirs

from ._pools import pool_or_error


def _accepted(pool_id: str, action: PoolAction) -> PoolActionAccepted:
    return PoolActionAccepted(pool_id=pool_id, action=action, status_url=f"/v2/pools/{pool_id}")


class ControlController(Controller):
    path = "/v2/pools"

    @post("/{pool_id:str}/drain", status_code=HTTP_202_ACCEPTED, sync_to_thread=False)
    def drain(
        self, pool_id: FromPath[str], data: JSONBody[DrainRequest], manager: NamedDependency[PoolManager]
    ) -> PoolActionAccepted:
        """`draining` is published before the 202; a drain of a draining pool keeps its deadline."""
        pool_or_error(manager.registry, pool_id)
        try:
            manager.drain(pool_id, data.deadline_ms)
        except PoolBusyError as exc:
            raise ApiError(ErrorKind.CONFLICT, str(exc)) from None
        return _accepted(pool_id, PoolAction.drain)

    @post("/{pool_id:str}/reload", status_code=HTTP_202_ACCEPTED, sync_to_thread=False)
    def reload(
        self,
        pool_id: FromPath[str],
        data: JSONBody[ReloadRequest],
        manager: NamedDependency[PoolManager],
        model_dirs: NamedDependency[ModelDirs],
        base_dir: NamedDependency[Path],
    ) -> PoolActionAccepted:
        """Stage, verify, drain, restart; any failure keeps or restores the previous model."""
        pool_or_error(manager.registry, pool_id)
        try:
            # OC-POOL-3180: a client names files only inside the model directories; refused
            # before anything opens the file, with one message whether it exists or not.
            model_dirs.check_ref(data.new_model_ref, base_dir=base_dir)
        except InvalidModelRefError as exc:
            raise ApiError(ErrorKind.INVALID_PARAMS, f"new_model_ref: {exc}") from None
        sha256 = None if data.sha256 is UNSET else data.sha256
        try:
            manager.reload(pool_id, data.new_model_ref, sha256)
        except PoolBusyError as exc:
            raise ApiError(ErrorKind.CONFLICT, str(exc)) from None
        return _accepted(pool_id, PoolAction.reload)
