"""`/v2/catalog/models`: the catalog over HTTP, and its check at admission (OC-CTRL-2152, CAT-1001..1034).

Store calls block, so each runs in a worker thread; a response is sent only
after the store's commit (CAT-1003).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
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
from llorch_provisioning import (
    FileModelRef,
    InvalidModelRefError,
    ModelDirs,
    ModelRef,
    cached_model_path,
    discard_cached_model,
    file_digest_until,
    parse_model_ref,
)
from llorch_store import CatalogStore, ModelExistsError, UnknownModelError

from ._bodies import decode_body

_decode_create = msgspec.json.Decoder(CatalogModelCreate)
_decode_state = msgspec.json.Decoder(ModelStateChange)

# CAT-1084: a verification hashes for at most this long, one at a time per service.
VERIFY_TIME_LIMIT_S = 1800.0


def _checked_id(model_id: str) -> str:
    return checked_id(model_id, ModelId, "model_id")


async def _entry_or_404(catalog: CatalogStore, model_id: str) -> CatalogEntry:
    try:
        return await anyio.to_thread.run_sync(catalog.get, _checked_id(model_id))
    except UnknownModelError as exc:
        raise ApiError(ErrorKind.NOT_FOUND, str(exc)) from None


def model_dirs(config: LlorchConfig) -> ModelDirs:
    """The directories clients may name files in (CAT-1080); resolving them touches the disk."""
    return ModelDirs.of(
        cache_root=Path(config.pool_managerd.cache_dir),
        extra_dirs=config.catalog.model_dirs,
        configured_refs={pool.model.ref for pool in config.pools},
    )


def _local_file(ref: str, dirs: ModelDirs) -> tuple[str | None, int | None]:
    """Where a `file:` or path reference lives and its size when present; other refs have no file yet.

    A path outside the model directories is refused before anything else is learned about it (CAT-1081).
    """
    try:
        parsed = dirs.check_ref(ref, base_dir=Path.cwd())
    except InvalidModelRefError as exc:
        raise ApiError(ErrorKind.INVALID_PARAMS, f"ref: {exc}") from exc
    if not isinstance(parsed, FileModelRef):
        return None, None
    try:
        return str(parsed.path), parsed.path.stat().st_size
    except OSError:
        return str(parsed.path), None


class VerificationStoppedError(Exception):
    """A verification gave up: its time bound passed or its request went away (CAT-1084)."""


def _file_to_hash(entry: CatalogEntry, dirs: ModelDirs, cache_root: Path) -> Path | None:
    """The file a verification may read: the entry's local file, or the cache file of a fetched ref.

    Re-checked at every verification, so an entry from before CAT-1080 or a symlink changed since
    creation cannot point verify outside the model directories.
    """
    parsed: ModelRef | None
    try:
        parsed = parse_model_ref(entry.ref, base_dir=Path.cwd())
    except InvalidModelRefError:
        parsed = None
    if entry.local_path:
        path = Path(entry.local_path)
        if entry.ref in dirs.configured_refs:
            return path
        try:
            return dirs.resolve(path, entry.ref)
        except InvalidModelRefError as exc:
            raise ApiError(ErrorKind.INVALID_PARAMS, f"ref: {exc}") from None
    return None if parsed is None else cached_model_path(parsed, cache_root)


def verify(
    catalog: CatalogStore,
    model_id: str,
    dirs: ModelDirs,
    cache_root: Path,
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[VerificationResult, str]:
    """Re-hash the model's file and record the outcome (CAT-1021, CAT-1023); blocking.

    Returns the result and the reason label for `catalog_verifications_total`. Raises
    `VerificationStoppedError`, recording nothing, when `should_stop()` says so (CAT-1084).
    """
    entry = catalog.get(model_id)
    path = _file_to_hash(entry, dirs, cache_root)
    actual = size = None
    if path is not None and path.is_file():
        try:
            size = path.stat().st_size
            actual = file_digest_until(path, should_stop)
        except OSError:
            # OC-CTRL-2181: unreadable (EACCES, EIO, gone since is_file) is the caller's problem to
            # fix, not a 500; the OS error stays out of the message, nothing is recorded.
            raise ApiError(
                ErrorKind.INVALID_PARAMS,
                f"the model file of {model_id!r} cannot be read; nothing was recorded",
            ) from None
        if actual is None:
            raise VerificationStoppedError(model_id)
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


def _parsed(ref: str) -> ModelRef | None:
    try:
        return parse_model_ref(ref, base_dir=Path.cwd())
    except InvalidModelRefError:
        return None


def _model_file(ref: str, cache_root: Path) -> Path | None:
    """The file a ref stands for, resolved: a local path or the cache's file for a fetched ref."""
    parsed = _parsed(ref)
    if parsed is None:
        return None
    path = parsed.path if isinstance(parsed, FileModelRef) else cached_model_path(parsed, cache_root)
    return None if path is None else path.resolve()


def _users(entry: CatalogEntry, pools: list[tuple[str, str]], cache_root: Path) -> list[str]:
    """Pools (id, model ref) that serve this entry, by name or because their model is the same file."""
    cache_root = cache_root.expanduser()
    fetched = _model_file(entry.ref, cache_root)
    return [
        pool_id
        for pool_id, ref in pools
        if ref in (entry.id, entry.ref) or (fetched is not None and _model_file(ref, cache_root) == fetched)
    ]


def _delete(catalog: CatalogStore, entry: CatalogEntry, cache_root: Path) -> None:
    """Remove the entry, and only the file the cache fetched for its ref (CAT-1012, CAT-1083).

    The file is derived from the ref, never from `local_path`, so an entry naming a cache
    file by path cannot delete it.
    """
    catalog.delete(entry.id)
    cache_root = cache_root.expanduser()
    parsed = _parsed(entry.ref)
    if parsed is not None:
        discard_cached_model(parsed, cache_root)


class VerificationSlot:
    """One verification at a time per app (CAT-1084): hashing must not take every worker thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        return self._lock.acquire(blocking=False)

    def release(self) -> None:
        self._lock.release()


def _verification_slot(request: Request[Any, Any, Any]) -> VerificationSlot:
    slot = request.app.state.get("catalog_verify_slot")
    if not isinstance(slot, VerificationSlot):
        slot = request.app.state.setdefault("catalog_verify_slot", VerificationSlot())
    assert isinstance(slot, VerificationSlot)
    return slot


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
        config: NamedDependency[LlorchConfig],
    ) -> CatalogEntry:
        body = decode_body(await request.body(), _decode_create)
        dirs = await anyio.to_thread.run_sync(model_dirs, config)
        local_path, size_bytes = await anyio.to_thread.run_sync(_local_file, body.ref, dirs)
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
        cache_root = Path(config.pool_managerd.cache_dir)
        serving = [(p.pool_id, p.model_ref) for p in orchestrator.pools() if p.state != PoolState.stopped]
        # CAT-1034, CAT-1083: a pool serving the same file under another name counts as a user.
        busy = await anyio.to_thread.run_sync(_users, entry, serving, cache_root)
        if busy:
            raise ApiError(
                ErrorKind.CONFLICT,
                f"model {entry.id!r} is used by pool(s) {', '.join(busy)}; retire it and stop them first",
            )
        try:
            await anyio.to_thread.run_sync(_delete, catalog, entry, cache_root)
        except UnknownModelError as exc:
            raise ApiError(ErrorKind.NOT_FOUND, str(exc)) from None
        return Response(None, status_code=HTTP_204_NO_CONTENT)

    @post("/{model_id:str}/verify", status_code=HTTP_202_ACCEPTED)
    async def verify_model(
        self,
        model_id: FromPath[str],
        request: Request[Any, Any, Any],
        catalog: NamedDependency[CatalogStore],
        metrics: NamedDependency[ServiceMetrics],
        config: NamedDependency[LlorchConfig],
    ) -> VerificationResult:
        entry = await _entry_or_404(catalog, model_id)
        slot = _verification_slot(request)
        if not slot.try_acquire():
            raise ApiError(ErrorKind.CONFLICT, "another model verification is running; retry when it ends")
        stop = threading.Event()
        deadline = time.monotonic() + VERIFY_TIME_LIMIT_S

        def should_stop() -> bool:
            return stop.is_set() or time.monotonic() > deadline

        def run() -> tuple[VerificationResult, str]:
            try:
                dirs = model_dirs(config)
                cache_root = Path(config.pool_managerd.cache_dir).expanduser()
                return verify(catalog, entry.id, dirs, cache_root, should_stop)
            finally:
                slot.release()  # released by the hashing thread, so an abandoned hash still holds it

        try:
            # abandon_on_cancel: a client that goes away frees its handler at once; `stop` then
            # ends the hash at its next chunk (CAT-1084).
            result, reason = await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
        except UnknownModelError as exc:
            raise ApiError(ErrorKind.NOT_FOUND, str(exc)) from None
        except VerificationStoppedError:
            raise ApiError(
                ErrorKind.DEADLINE_UNMET,
                f"verifying {entry.id!r} stopped after {VERIFY_TIME_LIMIT_S:.0f} s; nothing was recorded",
            ) from None
        finally:
            stop.set()
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
