"""Downloads from a real local HTTP server: streamed, verified, resumed, reused, and gated."""

from __future__ import annotations

import contextlib
import hashlib
import random
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from llorch_provisioning import (
    ModelDigestMismatchError,
    ModelFetchError,
    ModelFile,
    ModelProgress,
    ModelSource,
    OutboundDecision,
    OutboundDeniedError,
    OutboundGate,
    download_path,
    ensure_model,
)

BODY = random.Random(0).randbytes(700_000)
DIGEST = "sha256:" + hashlib.sha256(BODY).hexdigest()


@dataclass
class Site:
    """What the test server serves, and what it saw."""

    files: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    truncate_to: dict[str, int] = field(default_factory=dict)
    delay_s: float = 0.0
    ranges: bool = True
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    base_url: str = ""

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output clean."""

        def do_GET(self) -> None:
            site.requests.append((self.path, self.headers.get("Range")))
            if self.path in site.redirects:
                self.send_response(302)
                self.send_header("Location", site.redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = site.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            time.sleep(site.delay_s)
            start = 0
            wanted = self.headers.get("Range")
            if site.ranges and wanted and wanted.startswith("bytes=") and wanted.endswith("-"):
                start = int(wanted[len("bytes=") : -1])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            self.wfile.write(body[start : site.truncate_to.get(self.path, len(body))])

    return Handler


@contextlib.contextmanager
def _serve(site: Site, tls: ssl.SSLContext | None = None) -> Iterator[Site]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls is not None else "http"
    site.base_url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def site() -> Iterator[Site]:
    with _serve(Site(files={"/models/tiny.gguf": BODY})) as serving:
        yield serving


@dataclass
class Calls:
    """One ensure_model setup: a gate whose decisions are recorded, and the progress reports."""

    cache: Path
    decisions: list[OutboundDecision] = field(default_factory=list)
    progress: list[ModelProgress] = field(default_factory=list)
    allowed_hosts: tuple[str, ...] = ("huggingface.co",)
    allow: bool = True

    def ensure(self, ref: str, expected: str | None = DIGEST) -> ModelFile:
        gate = OutboundGate(allow=self.allow, allowed_hosts=self.allowed_hosts, audit=self.decisions.append)
        return ensure_model(
            ref,
            expected_sha256=expected,
            cache_root=self.cache,
            base_dir=self.cache,
            gate=gate,
            vocab_path=None,
            on_progress=self.progress.append,
            timeout_s=10.0,
        )

    def downloads(self) -> list[ModelProgress]:
        return [p for p in self.progress if p.step == "download"]


@pytest.fixture
def calls(tmp_path: Path) -> Calls:
    return Calls(cache=tmp_path / "cache")


def test_download_streams_with_progress_is_verified_and_then_reused(site: Site, calls: Calls) -> None:
    url = f"{site.base_url}/models/tiny.gguf"
    model = calls.ensure(url)
    dest = download_path(calls.cache, url)
    assert dest.parent.parent == calls.cache / "models" / "by-url"
    assert model == ModelFile(
        path=dest, sha256=DIGEST, size_bytes=len(BODY), ref=url, source=ModelSource.DOWNLOAD, reused=False
    )
    assert dest.read_bytes() == BODY
    assert not dest.with_name("tiny.gguf.part").exists()

    reports = calls.downloads()
    done = [p.bytes_done for p in reports]
    assert len(reports) > 2
    assert done == sorted(done)
    assert len(set(done)) == len(done)
    assert done[-1] == len(BODY)
    assert {p.bytes_total for p in reports} == {len(BODY)}
    assert reports[-1].pct == 100.0
    assert [(d.decision, d.rule) for d in calls.decisions] == [("allow", "loopback")]

    again = calls.ensure(url)
    assert again.reused
    assert (again.path, again.sha256) == (model.path, model.sha256)
    assert site.count("/models/tiny.gguf") == 1  # reused without a request
    assert len(calls.decisions) == 1  # and without asking the policy


def test_without_an_expected_digest_the_computed_one_is_recorded_and_reused(site: Site, calls: Calls) -> None:
    url = f"{site.base_url}/models/tiny.gguf"
    assert calls.ensure(url, expected=None).sha256 == DIGEST
    assert calls.ensure(url, expected=DIGEST).reused
    assert site.count("/models/tiny.gguf") == 1


def test_digest_mismatch_deletes_the_download(site: Site, calls: Calls) -> None:
    url = f"{site.base_url}/models/tiny.gguf"
    wrong = "sha256:" + hashlib.sha256(b"another model").hexdigest()
    with pytest.raises(ModelDigestMismatchError) as info:
        calls.ensure(url, expected=wrong)
    dest = download_path(calls.cache, url)
    assert (info.value.expected, info.value.actual, info.value.deleted) == (wrong, DIGEST, True)
    assert str(dest) in str(info.value)
    assert list(dest.parent.iterdir()) == []  # no file, no .part, no record


def test_a_cached_download_with_another_digest_is_fetched_again(site: Site, calls: Calls) -> None:
    url = f"{site.base_url}/models/tiny.gguf"
    calls.ensure(url)
    new_body = BODY[::-1]
    site.files["/models/tiny.gguf"] = new_body
    model = calls.ensure(url, expected="sha256:" + hashlib.sha256(new_body).hexdigest())
    assert not model.reused
    assert model.path.read_bytes() == new_body
    assert site.count("/models/tiny.gguf") == 2


def test_http_errors_are_typed_and_leave_nothing_behind(site: Site, calls: Calls) -> None:
    url = f"{site.base_url}/models/missing.gguf"
    with pytest.raises(ModelFetchError, match="HTTP 404") as info:
        calls.ensure(url)
    assert info.value.status == 404
    dest = download_path(calls.cache, url)
    assert not dest.exists()
    assert not dest.with_name("missing.gguf.part").exists()


@pytest.mark.req("CAT-1013")
def test_an_interrupted_download_resumes_with_a_range_request(site: Site, calls: Calls) -> None:
    url = f"{site.base_url}/models/tiny.gguf"
    site.truncate_to["/models/tiny.gguf"] = 300_000
    with pytest.raises(ModelFetchError, match="ended after 300000 of 700000 bytes"):
        calls.ensure(url)
    dest = download_path(calls.cache, url)
    part = dest.with_name("tiny.gguf.part")
    assert part.stat().st_size == 300_000
    assert not dest.exists()  # only a verified file gets its final name

    del site.truncate_to["/models/tiny.gguf"]
    calls.progress.clear()
    model = calls.ensure(url)
    assert site.requests[-1] == ("/models/tiny.gguf", "bytes=300000-")
    assert calls.downloads()[0].bytes_done == 300_000
    assert model.path.read_bytes() == BODY
    assert not part.exists()


def test_without_an_expected_digest_a_part_file_is_not_resumed(site: Site, calls: Calls) -> None:
    url = f"{site.base_url}/models/tiny.gguf"
    part = download_path(calls.cache, url).with_name("tiny.gguf.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"bytes of an older upstream version")
    assert calls.ensure(url, expected=None).path.read_bytes() == BODY
    assert site.requests == [("/models/tiny.gguf", None)]


def test_a_server_without_ranges_restarts_the_download(calls: Calls) -> None:
    with _serve(Site(files={"/m.gguf": BODY}, ranges=False)) as site:
        url = f"{site.base_url}/m.gguf"
        part = download_path(calls.cache, url).with_name("m.gguf.part")
        part.parent.mkdir(parents=True)
        part.write_bytes(b"stale bytes from an older attempt")
        assert calls.ensure(url).path.read_bytes() == BODY


@pytest.mark.req("CAT-1016")
def test_concurrent_ensures_of_one_ref_share_one_download(calls: Calls) -> None:
    with _serve(Site(files={"/m.gguf": BODY}, delay_s=0.3)) as site:
        url = f"{site.base_url}/m.gguf"
        results: list[ModelFile] = []
        threads = [threading.Thread(target=lambda: results.append(calls.ensure(url))) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert site.count("/m.gguf") == 1
        assert len(results) == 3
        assert sorted(r.reused for r in results) == [False, True, True]
        assert {r.sha256 for r in results} == {DIGEST}


@pytest.mark.req("CAT-1014")
@pytest.mark.req("CAT-1017")
def test_a_denied_host_fails_at_once_naming_ref_rule_and_setting(calls: Calls) -> None:
    ref = "https://models.example/tiny.gguf?token=secret"
    with pytest.raises(OutboundDeniedError) as info:
        calls.ensure(ref)
    message = str(info.value)
    assert "model 'https://models.example/tiny.gguf' is not in the cache" in message
    assert "policy.outbound.allowed_hosts" in message
    assert "add 'models.example'" in message
    assert "secret" not in message
    assert [(d.decision, d.host) for d in calls.decisions] == [("deny", "models.example")]
    assert not download_path(calls.cache, ref).parent.exists()  # nothing was created for it


@pytest.mark.req("CAT-1017")
def test_a_missing_hf_model_with_outbound_switched_off_says_how_to_allow_it(calls: Calls) -> None:
    calls.allow = False
    with pytest.raises(OutboundDeniedError) as info:
        calls.ensure("hf:org/repo@v1/m.gguf")
    message = str(info.value)
    assert "model 'hf:org/repo@v1/m.gguf'" in message
    assert "https://huggingface.co/org/repo/resolve/v1/m.gguf" in message
    assert "set policy.outbound.allow: true" in message
    assert info.value.rule == "policy.outbound.allow"


@pytest.mark.req("CAT-1014")
@pytest.mark.req("POL-1004")
def test_each_redirect_is_decided_before_it_is_followed(calls: Calls) -> None:
    site = Site(files={"/models/tiny.gguf": BODY})
    site.redirects["/away"] = "https://cdn.blocked.example/tiny.gguf"
    site.redirects["/here"] = "/models/tiny.gguf"
    with _serve(site) as site:
        with pytest.raises(OutboundDeniedError, match=r"cdn\.blocked\.example"):
            calls.ensure(f"{site.base_url}/away")
        assert [p for p, _ in site.requests] == ["/away"]  # the denied target was never contacted
        assert [(d.decision, d.host) for d in calls.decisions] == [
            ("allow", "127.0.0.1"),
            ("deny", "cdn.blocked.example"),
        ]

        calls.decisions.clear()
        model = calls.ensure(f"{site.base_url}/here")
        assert model.path.read_bytes() == BODY
        assert [p for p, _ in site.requests[1:]] == ["/here", "/models/tiny.gguf"]
        assert [(d.decision, d.rule) for d in calls.decisions] == [
            ("allow", "loopback"),
            ("allow", "loopback"),
        ]


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    argv = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    argv += ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(argv, check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.req("POL-1005")
def test_tls_certificates_are_verified(tmp_path: Path, calls: Calls) -> None:
    with _serve(Site(files={"/m.gguf": BODY}), tls=_self_signed(tmp_path)) as site:
        with pytest.raises(ModelFetchError, match="CERTIFICATE_VERIFY_FAILED"):
            calls.ensure(f"{site.base_url}/m.gguf")
        assert site.requests == []
