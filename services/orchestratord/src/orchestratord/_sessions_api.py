"""`/v2/sessions/{session_id}`: read and forget sessions (OC-CTRL-2136..2138).

Sessions are created only by admitting a task that names one, never here (OC-CORE-1140).
"""

from __future__ import annotations

from litestar import Controller, delete, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Response
from litestar.status_codes import HTTP_204_NO_CONTENT

from llorch_contracts.api import ErrorKind, SessionId, SessionInfo
from llorch_dataplane import Orchestrator
from llorch_http import ApiError, checked_id


def _valid(session_id: str) -> str:
    return checked_id(session_id, SessionId, "session_id")


def _not_found(session_id: str) -> ApiError:
    return ApiError(ErrorKind.NOT_FOUND, f"no session {session_id!r} (unknown or expired)")


class SessionsController(Controller):
    path = "/v2/sessions"

    @get("/{session_id:str}", sync_to_thread=False)
    def get_session(
        self, session_id: FromPath[str], orchestrator: NamedDependency[Orchestrator]
    ) -> SessionInfo:
        info = orchestrator.session(_valid(session_id))
        if info is None:
            raise _not_found(session_id)
        return info

    @delete("/{session_id:str}", status_code=HTTP_204_NO_CONTENT, sync_to_thread=False)
    def delete_session(
        self, session_id: FromPath[str], orchestrator: NamedDependency[Orchestrator]
    ) -> Response[None]:
        if not orchestrator.delete_session(_valid(session_id)):
            raise _not_found(session_id)
        return Response(None, status_code=HTTP_204_NO_CONTENT)
