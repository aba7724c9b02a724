"""Streaming a model download into a ``.part`` file, with the outbound policy on every hop.

Stdlib only (urllib). The first URL and each redirect target are put to the policy hook
before a connection is made (CAT-1014, POL-1004). A ``.part`` file left by an interrupted
download is resumed with a range request when the server supports ranges (CAT-1013).
"""

from __future__ import annotations

import http.client
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from ._errors import ModelFetchError
from ._gated_urlopen import GatedRedirects
from ._model_progress import ModelProgress, ModelProgressCallback
from ._outbound import OutboundHook, OutboundPurpose
from ._urls import redact_url

DEFAULT_TIMEOUT_S = 60.0
_CHUNK_BYTES = 256 * 1024
_USER_AGENT = "llama-orch"
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


@dataclass(frozen=True, kw_only=True)
class _Opened:
    response: http.client.HTTPResponse
    offset: int
    bytes_total: int | None


def _total(response: http.client.HTTPResponse, offset: int) -> int | None:
    if response.status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
        if match is not None and match.group(2) != "*":
            return int(match.group(2))
    length = response.headers.get("Content-Length")
    return offset + int(length) if length is not None and length.isdigit() else None


def _open(opener: urllib.request.OpenerDirector, url: str, part: Path, timeout_s: float) -> _Opened:
    shown = redact_url(url)
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = cast("http.client.HTTPResponse", opener.open(request, timeout=timeout_s))
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            # The .part is complete or longer than the file now is: start again from zero.
            part.unlink()
            return _open(opener, url, part, timeout_s)
        raise ModelFetchError(
            f"GET {shown} answered HTTP {exc.code} {exc.reason}", url=shown, status=exc.code
        ) from None
    except OSError as exc:  # URLError, TLS and socket errors, timeouts
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise ModelFetchError(f"GET {shown} failed: {reason}", url=shown) from exc
    status = response.status
    if status == 206 and offset:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
        if match is not None and int(match.group(1)) == offset:
            return _Opened(response=response, offset=offset, bytes_total=_total(response, offset))
        status = 0  # a range we did not ask for: refuse rather than splice wrong bytes
    if status == 200:
        # Either a fresh download or a server that ignores ranges: the body is the whole file.
        return _Opened(response=response, offset=0, bytes_total=_total(response, 0))
    response.close()
    raise ModelFetchError(
        f"GET {shown} answered HTTP {response.status}, not 200", url=shown, status=response.status
    )


def download_to_part(
    url: str,
    part: Path,
    *,
    hook: OutboundHook,
    on_progress: ModelProgressCallback,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    pool_id: str | None = None,
) -> int:
    """Download ``url`` into ``part`` (resuming it when possible) and return its size in bytes.

    ``part`` is fsynced before this returns. A short body raises ``ModelFetchError`` and
    keeps ``part`` so the next attempt resumes; checking the digest is the caller's job.
    ``timeout_s`` bounds each blocking network operation, not the whole download.
    """
    shown = redact_url(url)
    hook.check(url, OutboundPurpose.MODEL_FETCH, pool_id=pool_id)
    # No ProxyHandler from the environment: proxies are used only when configured explicitly.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), GatedRedirects(hook, OutboundPurpose.MODEL_FETCH, pool_id)
    )
    part.parent.mkdir(parents=True, exist_ok=True)
    opened = _open(opener, url, part, timeout_s)
    done, total = opened.offset, opened.bytes_total

    def report() -> None:
        size = "?" if total is None else str(total)
        on_progress(
            ModelProgress(
                step="download", bytes_done=done, bytes_total=total, message=f"{shown} {done}/{size} bytes"
            )
        )

    with opened.response as response, part.open("ab" if opened.offset else "wb") as out:
        report()
        try:
            # read1 returns what has arrived, so progress keeps flowing on a slow link.
            while chunk := response.read1(_CHUNK_BYTES):
                out.write(chunk)
                done += len(chunk)
                report()
        except (OSError, http.client.HTTPException) as exc:
            raise ModelFetchError(
                f"download of {shown} broke off after {done} bytes: {exc}", url=shown
            ) from exc
        finally:
            out.flush()
            os.fsync(out.fileno())
    if total is not None and done != total:
        raise ModelFetchError(
            f"download of {shown} ended after {done} of {total} bytes; retry to resume", url=shown
        )
    return done
