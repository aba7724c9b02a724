"""binary mode: a configured path, or a pinned download from a (local) HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import io
import subprocess
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest

from llorch_contracts.config import EngineConfig, PolicyConfig
from llorch_provisioning import (
    ChecksumMismatchError,
    EngineBinaryError,
    EngineUrlError,
    OutboundDeniedError,
    OutboundPurpose,
    PolicyForbidsError,
    ProvisioningConfigError,
    inspect_engine_binary,
    provision_engine,
)

VERSION_TEXT = "version: 4242 (abcdef0)\nbuilt with cc for x86_64-linux-gnu"
SCRIPT = f"#!/bin/sh\necho '{VERSION_TEXT}' >&2\nexit 0\n".encode()


def _script(path: Path, body: bytes = SCRIPT, mode: int = 0o755) -> Path:
    path.write_bytes(body)
    path.chmod(mode)
    return path


def _engine(binary: dict[str, str]) -> EngineConfig:
    doc = {"kind": "llamacpp", "provisioning": {"mode": "binary", "binary": binary}}
    return msgspec.convert(doc, EngineConfig)


def _policy(*, downloads: bool) -> PolicyConfig:
    return msgspec.convert({"allow_binary_downloads": downloads}, PolicyConfig)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- binary.path -------------------------------------------------------------------------------


def test_a_working_binary_path_reports_its_version(tmp_path: Path) -> None:
    binary = _script(tmp_path / "llama-server")
    engine = provision_engine(_engine({"path": str(binary)}), policy=PolicyConfig(), cache_root=tmp_path)
    assert engine.mode == "binary"
    assert engine.binary_path == binary
    assert engine.engine_version == "version: 4242 (abcdef0)"
    assert engine.base_url is None


@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        ("missing", "does not exist"),
        ("directory", "is not a regular file"),
        ("not-executable", "is not executable (try: chmod +x"),
        ("version-fails", "`--version` failed (exit 3): cannot open libcuda.so.1"),
        ("not-a-program", "`--version` failed (exit -1)"),
    ],
)
def test_a_bad_binary_path_names_the_path_and_the_problem(tmp_path: Path, setup: str, problem: str) -> None:
    path = tmp_path / "llama-server"
    if setup == "directory":
        path.mkdir()
    elif setup == "not-executable":
        _script(path, mode=0o644)
    elif setup == "version-fails":
        _script(path, b"#!/bin/sh\necho 'cannot open libcuda.so.1' >&2\nexit 3\n")
    elif setup == "not-a-program":
        _script(path, b"\x7fELF garbage")
    with pytest.raises(EngineBinaryError) as info:
        provision_engine(_engine({"path": str(path)}), policy=PolicyConfig(), cache_root=tmp_path)
    assert info.value.path == path
    assert str(path) in str(info.value)
    assert problem in str(info.value)


def test_a_hanging_version_check_times_out(tmp_path: Path) -> None:
    path = _script(tmp_path / "llama-server", b"#!/bin/sh\nexec sleep 10\n")
    with pytest.raises(EngineBinaryError, match="timed out"):
        inspect_engine_binary(path, run=subprocess.run, timeout_s=0.2)


def test_binary_mode_needs_a_path_or_url(tmp_path: Path) -> None:
    with pytest.raises(ProvisioningConfigError, match=r"binary\.path or binary\.url"):
        provision_engine(_engine({}), policy=PolicyConfig(), cache_root=tmp_path)


# --- binary.url --------------------------------------------------------------------------------


@dataclass
class Served:
    """A local HTTP server: ``files`` by path, ``redirects`` path -> Location; ``requests`` seen."""

    base_url: str
    files: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    served: ClassVar[Served]

    def do_GET(self) -> None:
        self.served.requests.append(self.path)
        if self.path in self.served.redirects:
            self.send_response(302)
            self.send_header("Location", self.served.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.served.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean."""


@pytest.fixture
def served() -> Iterator[Served]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    state = Served(base_url=f"http://127.0.0.1:{server.server_address[1]}")
    handler = type("Handler", (_Handler,), {"served": state})
    server.RequestHandlerClass = handler
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.req("OC-POOL-3119")
def test_a_pinned_download_is_verified_cached_and_run(tmp_path: Path, served: Served) -> None:
    served.files["/llama-server"] = SCRIPT
    config = _engine({"url": f"{served.base_url}/llama-server", "sha256": _sha(SCRIPT)})
    engine = provision_engine(config, policy=_policy(downloads=True), cache_root=tmp_path)
    expected = tmp_path / "engines" / "binary" / hashlib.sha256(SCRIPT).hexdigest() / "llama-server"
    assert engine.binary_path == expected
    assert engine.engine_version == "version: 4242 (abcdef0)"
    assert served.requests == ["/llama-server"]
    again = provision_engine(config, policy=_policy(downloads=True), cache_root=tmp_path)
    assert again.binary_path == expected
    assert served.requests == ["/llama-server"]  # the verified cache entry needs no network


@pytest.mark.req("OC-POOL-3119")
def test_a_digest_mismatch_deletes_the_download_and_runs_nothing(tmp_path: Path, served: Served) -> None:
    marker = tmp_path / "ran"
    body = f"#!/bin/sh\ntouch {marker}\n".encode()
    served.files["/llama-server"] = body
    wrong = _sha(b"something else")
    config = _engine({"url": f"{served.base_url}/llama-server", "sha256": wrong})
    with pytest.raises(ChecksumMismatchError) as info:
        provision_engine(config, policy=_policy(downloads=True), cache_root=tmp_path)
    assert info.value.expected == wrong.removeprefix("sha256:")
    assert info.value.actual == hashlib.sha256(body).hexdigest()
    entry = tmp_path / "engines" / "binary" / wrong.removeprefix("sha256:")
    assert list(entry.iterdir()) == []  # neither the file nor a temp file is left
    assert not marker.exists()


@pytest.mark.req("OC-POOL-3119", "POL-1006")
def test_downloads_need_allow_binary_downloads_even_for_loopback(tmp_path: Path, served: Served) -> None:
    served.files["/llama-server"] = SCRIPT
    config = _engine({"url": f"{served.base_url}/llama-server", "sha256": _sha(SCRIPT)})
    assert PolicyConfig().allow_binary_downloads is False  # the default is off
    with pytest.raises(PolicyForbidsError, match=r"policy\.allow_binary_downloads: true") as info:
        provision_engine(config, policy=PolicyConfig(), cache_root=tmp_path)
    assert info.value.setting == "policy.allow_binary_downloads"
    assert served.requests == []


class DenyHosts:
    """An outbound hook that denies URLs containing a marker and records what it was asked."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.asked: list[tuple[str, str]] = []

    def check(
        self,
        url: str,
        purpose: OutboundPurpose,
        *,
        pool_id: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        self.asked.append((url, str(purpose)))
        if self.marker in url:
            raise OutboundDeniedError(
                f"denied {url}", url=url, purpose=str(purpose), rule="test", setting=None
            )


@pytest.mark.req("OC-POOL-3119")
def test_the_outbound_hook_is_asked_before_downloading(tmp_path: Path, served: Served) -> None:
    served.files["/llama-server"] = SCRIPT
    config = _engine({"url": f"{served.base_url}/llama-server", "sha256": _sha(SCRIPT)})
    hook = DenyHosts(marker="127.0.0.1")
    with pytest.raises(OutboundDeniedError):
        provision_engine(config, policy=_policy(downloads=True), cache_root=tmp_path, hook=hook)
    assert hook.asked == [(f"{served.base_url}/llama-server", "engine_binary")]
    assert served.requests == []


@pytest.mark.req("POL-1004")
def test_each_redirect_is_decided_again(tmp_path: Path, served: Served) -> None:
    served.redirects["/latest"] = f"{served.base_url}/blocked/llama-server"
    served.files["/blocked/llama-server"] = SCRIPT
    config = _engine({"url": f"{served.base_url}/latest", "sha256": _sha(SCRIPT)})
    hook = DenyHosts(marker="/blocked/")
    with pytest.raises(OutboundDeniedError):
        provision_engine(config, policy=_policy(downloads=True), cache_root=tmp_path, hook=hook)
    assert [url for url, _ in hook.asked] == [
        f"{served.base_url}/latest",
        f"{served.base_url}/blocked/llama-server",
    ]
    assert served.requests == ["/latest"]  # the redirect target was never fetched


def test_an_http_error_is_a_typed_error_naming_the_url(tmp_path: Path, served: Served) -> None:
    config = _engine({"url": f"{served.base_url}/nope?token=secret", "sha256": _sha(SCRIPT)})
    with pytest.raises(EngineUrlError, match="HTTP 404") as info:
        provision_engine(config, policy=_policy(downloads=True), cache_root=tmp_path)
    assert "secret" not in str(info.value)


def _zip(entries: dict[str, tuple[bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, (data, mode) in entries.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _tar(entries: dict[str, tuple[bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, (data, mode) in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("pack", [_zip, _tar], ids=["zip", "tar.gz"])
def test_an_archive_is_unpacked_after_verification(tmp_path: Path, served: Served, pack: Any) -> None:
    archive = pack({"build/bin/llama-server": (SCRIPT, 0o755), "build/bin/libggml.so": (b"lib", 0o644)})
    served.files["/llama-b4242-bin-ubuntu-x64.zip"] = archive
    config = _engine({"url": f"{served.base_url}/llama-b4242-bin-ubuntu-x64.zip", "sha256": _sha(archive)})
    engine = provision_engine(config, policy=_policy(downloads=True), cache_root=tmp_path)
    assert engine.binary_path is not None
    assert engine.binary_path.parts[-3:] == ("build", "bin", "llama-server")
    assert (engine.binary_path.parent / "libggml.so").read_bytes() == b"lib"
    assert engine.engine_version == "version: 4242 (abcdef0)"


def test_an_archive_without_the_server_is_refused(tmp_path: Path, served: Served) -> None:
    archive = _zip({"bin/llama-cli": (SCRIPT, 0o755)})
    served.files["/engine.zip"] = archive
    config = _engine({"url": f"{served.base_url}/engine.zip", "sha256": _sha(archive)})
    with pytest.raises(EngineBinaryError, match="no file named 'llama-server'"):
        provision_engine(config, policy=_policy(downloads=True), cache_root=tmp_path)
