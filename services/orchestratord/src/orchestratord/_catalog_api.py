"""`/v2/catalog/models`: the catalog over HTTP, and its check at admission (OC-CTRL-2152, CAT-1001..1034).

Store calls block, so each runs in a worker thread; a response is sent only
after the store's commit (CAT-1003).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Response
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from llorch_contracts.api import (
    CatalogEntry,
    CatalogModelCreate,
    ErrorKind,
    ModelId,
    ModelLifecycle,
    ModelStateChange,
    PoolState,
    VerificationResult,
    VerifyOutcome,
)
from llorch_contracts.config import LlorchConfig
from llorch_dataplane import Orchestrator
from llorch_http import ApiError, checked_id
from llorch_metrics import ServiceMetrics
from llorch_provisioning import FileModelRef, InvalidModelRefError, file_digest, parse_model_ref
from llorch_store import CatalogStore, ModelExistsError, UnknownModelError

from ._bodies import decode_body

_decode_create = msgspec.json.Decoder(CatalogModelCreate)
_decode_state = msgspec.json.Decoder(ModelStateChange)


def _checked_id(model_id: str) -> str:
    return checked_id(model_id, ModelId, "model_id")


async def _entry_or_404(catalog: CatalogStore, model_id: str) -> CatalogEntry:
    try:
        return await anyio.to_thread.run_sync(catalog.get, _checked_id(model_id))
    except UnknownModelError as exc:
        raise ApiError(ErrorKind.NOT_FOUND, str(exc)) from None


def _local_file(ref: str) -> tuple[str | None, int | None]:
    """Where a `file:` or path reference lives and its size when present; other refs have no file yet."""
    try:
        parsed = parse_model_ref(ref, base_dir=Path.cwd())
    except InvalidModelRefError as exc:
        raise ApiError(ErrorKind.INVALID_PARAMS, f"ref: {exc}") from exc
    if not isinstance(parsed, FileModelRef):
        return None, None
    try:
        return str(parsed.path), parsed.path.stat().st_size
    except OSError:
        return str(parsed.path), None


def verify(catalog: CatalogStore, model_id: str) -> tuple[VerificationResult, str]:
    """Re-hash the model's file and record the outcome (CAT-1021, CAT-1023); blocking.

    Returns the result and the reason label for `catalog_verifications_total`.
    """
    entry = catalog.get(model_id)
    path = Path(entry.local_path) if entry.local_path else None
    actual = size = None
    if path is not None and path.is_file():
        size = path.stat().st_size
        actual = file_digest(path)
    if entry.digest is None:
        outcome, reason, message = (
            VerifyOutcome.warn,
            "no_expected_digest",
            "no expected digest recorded; proceeding with a warning",
        )
    elif actual is None:
        outcome, reason = VerifyOutcome.fail, "no_local_file"
        message = "a digest is recorded but there is no local file to hash"
    elif actual == entry.digest:
        outcome, reason, message = VerifyOutcome.pass_, "match", "digest matches"
    else:
        outcome, reason, message = VerifyOutcome.fail, "mismatch", "digest mismatch"
    recorded = catalog.record_verification(model_id, outcome, size_bytes=size)
    assert recorded.last_verified_ms is not None
    result = VerificationResult(
        model_id=model_id,
        outcome=outcome,
        expected_digest=entry.digest,
        actual_digest=actual,
        message=message,
        verified_ms=recorded.last_verified_ms,
    )
    return result, reason


def _delete(catalog: CatalogStore, model_id: str, cache_dir: str) -> None:
    """Remove the entry, and its file only if the catalog fetched it into `<cache_dir>/models` (CAT-1012)."""
    models_dir = Path(cache_dir).expanduser() / "models"
    entry = catalog.delete(model_id)
    if entry.local_path is None:
        return
    path = Path(entry.local_path).resolve()
    if path.is_relative_to(models_dir.resolve()):
        path.unlink(missing_ok=True)


def _engine_of(config: LlorchConfig, entry: CatalogEntry) -> str:
    engines = {str(p.engine.kind) for p in config.pools if p.model.ref in (entry.id, entry.ref)}
    return min(engines) if engines else "unknown"


def _set_model_state(metrics: ServiceMetrics, entry: CatalogEntry) -> None:
    for state in ModelLifecycle:
        metrics.gauge("model_state", model_id=entry.id, state=state.value).set(entry.lifecycle == state)


class CatalogController(Controller):
    path = "/v2/catalog/models"

    @post("/")
    async def create_model(
        self,
        request: Request[Any, Any, Any],
        catalog: NamedDependency[CatalogStore],
        metrics: NamedDependency[ServiceMetrics],
    ) -> CatalogEntry:
        body = decode_body(await request.body(), _decode_create)
        local_path, size_bytes = await anyio.to_thread.run_sync(_local_file, body.ref)
        put = functools.partial(
            catalog.put,
            body.id,
            body.ref,
            digest=body.digest if isinstance(body.digest, str) else None,
            tags=body.tags if isinstance(body.tags, list) else [],
            local_path=local_path,
            size_bytes=size_bytes,
        )
        try:
            entry = await anyio.to_thread.run_sync(put)
        except ModelExistsError as exc:
            raise ApiError(ErrorKind.CONFLICT, str(exc)) from None
        _set_model_state(metrics, entry)
        return entry

    @get("/")
    async def list_models(self, catalog: NamedDependency[CatalogStore]) -> list[CatalogEntry]:
        return await anyio.to_thread.run_sync(catalog.list)

    @get("/{model_id:str}")
    async def get_model(
        self, model_id: FromPath[str], catalog: NamedDependency[CatalogStore]
    ) -> CatalogEntry:
        return await _entry_or_404(catalog, model_id)

    @delete("/{model_id:str}", status_code=HTTP_204_NO_CONTENT)
    async def delete_model(
        self,
        model_id: FromPath[str],
        catalog: NamedDependency[CatalogStore],
        orchestrator: NamedDependency[Orchestrator],
        config: NamedDependency[LlorchConfig],
    ) -> Response[None]:
        entry = await _entry_or_404(catalog, model_id)
        busy = [
            pool.pool_id
            for pool in orchestrator.pools()
            if pool.model_ref in (entry.id, entry.ref) and pool.state != PoolState.stopped
        ]
        if busy:
            raise ApiError(
                ErrorKind.CONFLICT,
                f"model {entry.id!r} is used by pool(s) {', '.join(busy)}; retire it and stop them first",
            )
        try:
            await anyio.to_thread.run_sync(_delete, catalog, entry.id, config.pool_managerd.cache_dir)
        except UnknownModelError as exc:
            raise ApiError(ErrorKind.NOT_FOUND, str(exc)) from None
        return Response(None, status_code=HTTP_204_NO_CONTENT)

    @post("/{model_id:str}/verify", status_code=HTTP_202_ACCEPTED)
    async def verify_model(
        self,
        model_id: FromPath[str],
        catalog: NamedDependency[CatalogStore],
        metrics: NamedDependency[ServiceMetrics],
        config: NamedDependency[LlorchConfig],
    ) -> VerificationResult:
        entry = await _entry_or_404(catalog, model_id)
        try:
            result, reason = await anyio.to_thread.run_sync(verify, catalog, entry.id)
        except UnknownModelError as exc:
            raise ApiError(ErrorKind.NOT_FOUND, str(exc)) from None
        metrics.counter(
            "catalog_verifications_total",
            result=result.outcome.value,
            reason=reason,
            engine=_engine_of(config, entry),
        ).inc()
        return result

    @post("/{model_id:str}/state", status_code=HTTP_202_ACCEPTED)
    async def set_model_state(
        self,
        model_id: FromPath[str],
        request: Request[Any, Any, Any],
        catalog: NamedDependency[CatalogStore],
        metrics: NamedDependency[ServiceMetrics],
    ) -> CatalogEntry:
        model_id = _checked_id(model_id)
        change = decode_body(await request.body(), _decode_state)
        try:
            entry = await anyio.to_thread.run_sync(catalog.set_state, model_id, change.state)
        except UnknownModelError as exc:
            raise ApiError(ErrorKind.NOT_FOUND, str(exc)) from None
        _set_model_state(metrics, entry)
        return entry
