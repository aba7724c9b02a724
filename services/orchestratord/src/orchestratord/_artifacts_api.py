"""`/v2/artifacts`: store, list and read content-addressed artifacts.

OC-CTRL-2065, OC-CTRL-2066, OC-CTRL-2151; storage rules in CAT-1040..1047.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from llorch_contracts.api import Artifact, ArtifactCreate, ArtifactId, ArtifactKind, ArtifactRef, ErrorKind
from llorch_http import ApiError, checked_id
from llorch_store import ArtifactCorruptError, ArtifactStore, InvalidArtifactError, UnknownArtifactError

from ._bodies import decode_body

# The contract's bounds for `limit` (listArtifacts).
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:=/-]{0,63}$")
_decode_create = msgspec.json.Decoder(ArtifactCreate)


def _kind(value: str | None) -> ArtifactKind | None:
    if value is None:
        return None
    try:
        return ArtifactKind(value)
    except ValueError:
        allowed = ", ".join(k.value for k in ArtifactKind)
        raise ApiError(ErrorKind.INVALID_PARAMS, f"kind: expected one of {allowed}, got {value!r}") from None


class ArtifactsController(Controller):
    path = "/v2/artifacts"

    @post("/")
    async def create_artifact(
        self, request: Request[Any, Any, Any], artifacts: NamedDependency[ArtifactStore]
    ) -> ArtifactRef:
        artifact = decode_body(await request.body(), _decode_create)
        try:
            return await anyio.to_thread.run_sync(artifacts.put, artifact)
        except InvalidArtifactError as exc:
            raise ApiError(ErrorKind.INVALID_PARAMS, str(exc)) from None

    @get("/")
    async def list_artifacts(
        self,
        artifacts: NamedDependency[ArtifactStore],
        kind: FromQuery[str | None] = None,
        tag: FromQuery[str | None] = None,
        limit: FromQuery[int] = DEFAULT_LIMIT,
    ) -> list[ArtifactRef]:
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError(ErrorKind.INVALID_PARAMS, f"limit: expected 1..{MAX_LIMIT}, got {limit}")
        if tag is not None and not _TAG.match(tag):
            raise ApiError(ErrorKind.INVALID_PARAMS, f"tag: {tag!r} is not a valid tag")
        query = functools.partial(artifacts.list, kind=_kind(kind), tag=tag, limit=limit)
        return await anyio.to_thread.run_sync(query)

    @get("/{artifact_id:str}")
    async def get_artifact(
        self, artifact_id: FromPath[str], artifacts: NamedDependency[ArtifactStore]
    ) -> Artifact:
        checked_id(artifact_id, ArtifactId, "artifact_id")
        try:
            return await anyio.to_thread.run_sync(artifacts.get, artifact_id)
        except UnknownArtifactError as exc:
            raise ApiError(ErrorKind.NOT_FOUND, str(exc)) from None
        except ArtifactCorruptError as exc:
            # The store has logged the corruption with the file's path (CAT-1045).
            raise ApiError(ErrorKind.INTERNAL, str(exc)) from None
