"""Drain and reload, forwarded to pool-managerd (OC-CTRL-2002, OC-CTRL-2003, OC-CTRL-2144).

orchestratord acts on pools only through pool-managerd's documented POST
operations (OC-POOL-3160), with the client that carries its bearer token.
pool-managerd's 400, 404 and 409 pass through; not reaching it, or any other
answer from it, is 503 POOL_UNAVAILABLE with Retry-After.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_202_ACCEPTED

from llorch_contracts.api import (
    DrainRequest,
    ErrorEnvelope,
    ErrorKind,
    PoolAction,
    PoolActionAccepted,
    PoolState,
    ReloadRequest,
)
from llorch_contracts.config import LlorchConfig
from llorch_dataplane import Orchestrator
from llorch_http import ApiError, correlation_id_of

from ._bodies import decode_body
from ._pool_api import pool_status
from ._pools import is_local

CONTROL_TIMEOUT = httpx.Timeout(10.0)
_PASSED_THROUGH = {400: ErrorKind.INVALID_PARAMS, 404: ErrorKind.NOT_FOUND, 409: ErrorKind.CONFLICT}
_decode_drain = msgspec.json.Decoder(DrainRequest)
_decode_reload = msgspec.json.Decoder(ReloadRequest)
_decode_envelope = msgspec.json.Decoder(ErrorEnvelope)


def _managed_pool(orchestrator: Orchestrator, config: LlorchConfig, pool_id: str) -> None:
    """400 for a malformed id, 404 for an unknown pool, 400 for a pool pool-managerd does not run."""
    pool_status(orchestrator, pool_id)
    if any(p.id == pool_id and is_local(p) for p in config.pools):
        raise ApiError(
            ErrorKind.INVALID_PARAMS,
            f"pool {pool_id} runs the in-process mock engine; pool-managerd does not manage it",
        )


async def _forward(
    request: Request[Any, Any, Any],
    pool_id: str,
    action: PoolAction,
    decoder: msgspec.json.Decoder[Any],
    *,
    orchestrator: Orchestrator,
    config: LlorchConfig,
    http: httpx.AsyncClient,
) -> PoolActionAccepted:
    """Check the pool, validate the body, POST the action to pool-managerd; its 202 becomes ours."""
    _managed_pool(orchestrator, config, pool_id)
    body = msgspec.json.encode(decode_body(await request.body(), decoder))
    base_url = config.orchestratord.pool_managerd_url
    headers = {"Content-Type": "application/json", "X-Correlation-Id": correlation_id_of(request.scope)}
    try:
        response = await http.post(
            f"{base_url}/v2/pools/{pool_id}/{action}", content=body, headers=headers, timeout=CONTROL_TIMEOUT
        )
    except httpx.HTTPError as exc:
        raise ApiError(
            ErrorKind.POOL_UNAVAILABLE, f"pool-managerd at {base_url} cannot be reached: {type(exc).__name__}"
        ) from exc
    if response.status_code == HTTP_202_ACCEPTED:
        return PoolActionAccepted(pool_id=pool_id, action=action, status_url=f"/v2/pools/{pool_id}/health")
    try:
        message = _decode_envelope.decode(response.content).message
    except msgspec.MsgspecError:
        message = f"status {response.status_code}"
    kind = _PASSED_THROUGH.get(response.status_code)
    if kind is None:
        raise ApiError(ErrorKind.POOL_UNAVAILABLE, f"pool-managerd refused the {action}: {message}")
    raise ApiError(kind, message)


class ControlController(Controller):
    path = "/v2/pools"

    @post("/{pool_id:str}/drain", status_code=HTTP_202_ACCEPTED)
    async def drain(
        self,
        request: Request[Any, Any, Any],
        pool_id: FromPath[str],
        orchestrator: NamedDependency[Orchestrator],
        config: NamedDependency[LlorchConfig],
        pool_managerd_http: NamedDependency[httpx.AsyncClient],
    ) -> PoolActionAccepted:
        """Forward the drain, and stop dispatching to the pool before answering (OC-CTRL-2002)."""
        accepted = await _forward(
            request, pool_id, PoolAction.drain, _decode_drain,
            orchestrator=orchestrator, config=config, http=pool_managerd_http,
        )  # fmt: skip
        # The watch stream brings `draining` a moment later; dispatch must not wait for it.
        reported = orchestrator.view.get(pool_id)
        if reported is not None and not reported.draining:
            draining = msgspec.structs.replace(reported, draining=True, ready=False, state=PoolState.draining)
            orchestrator.view.apply_change(draining)
        return accepted

    @post("/{pool_id:str}/reload", status_code=HTTP_202_ACCEPTED)
    async def reload(
        self,
        request: Request[Any, Any, Any],
        pool_id: FromPath[str],
        orchestrator: NamedDependency[Orchestrator],
        config: NamedDependency[LlorchConfig],
        pool_managerd_http: NamedDependency[httpx.AsyncClient],
    ) -> PoolActionAccepted:
        """Forward the reload; pool-managerd's 409 says a drain or reload of the pool already runs."""
        return await _forward(
            request, pool_id, PoolAction.reload, _decode_reload,
            orchestrator=orchestrator, config=config, http=pool_managerd_http,
        )  # fmt: skip
