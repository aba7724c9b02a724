"""Catalog files stay inside the model directories (CAT-1080..1084), through the HTTP API.

The hostile cases come from issue 8: `file:/etc/shadow`, `../../etc/passwd`, a symlink inside a
model directory pointing outside, verify of an old entry outside, and DELETE of a served file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from litestar import Litestar

from llorch_config import parse_config
from llorch_contracts.api import VerifyOutcome
from llorch_provisioning import ModelDirs, download_path
from llorch_store import CATALOG_FILE, CatalogStore
from llorch_testkit import assert_conforms, serving
from orchestratord import create_app
from orchestratord._catalog_api import VerificationSlot, VerificationStoppedError, verify

SERVICE = "orchestratord"
SERVED_REF = "hf:org/repo/served.gguf"


@dataclass(frozen=True)
class Stack:
    http: httpx.Client
    app: Litestar
    models: Path  # the configured model directory (catalog.model_dirs)
    outside: Path  # a directory that is no model directory
    cache: Path
    state: Path


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    models, outside, cache, state = (tmp_path / name for name in ("models", "outside", "cache", "state"))
    models.mkdir()
    outside.mkdir()
    config = parse_config(
        f"pools:\n  - id: p\n    engine: {{kind: mock}}\n    model: {{ref: '{SERVED_REF}'}}\n"
        f"pool_managerd: {{cache_dir: '{cache}'}}\ncatalog: {{model_dirs: ['{models}']}}\n"
    )
    app = create_app(config, state_dir=state)
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield Stack(http=http, app=app, models=models, outside=outside, cache=cache, state=state)


def create(stack: Stack, model_id: str, ref: str) -> httpx.Response:
    response = stack.http.post("/v2/catalog/models", json={"id": model_id, "ref": ref})
    assert_conforms(SERVICE, response)
    return response


def refusal(stack: Stack, model_id: str, ref: str) -> str:
    """Create must be a 400 with no entry left behind; returns the message with the ref taken out."""
    response = create(stack, model_id, ref)
    assert (response.status_code, response.json()["code"]) == (400, "INVALID_PARAMS"), response.text
    assert stack.http.get(f"/v2/catalog/models/{model_id}").status_code == 404
    message: str = response.json()["message"]
    return message.replace(repr(ref), "<ref>")


@pytest.mark.req("CAT-1080", "CAT-1081")
def test_paths_outside_the_model_directories_are_one_refusal_that_says_nothing_about_the_file(
    stack: Stack,
) -> None:
    secret = stack.outside / "secret.gguf"
    secret.write_bytes(b"GGUF top secret bytes")
    link = stack.models / "link.gguf"
    link.symlink_to(secret)
    dir_link = stack.models / "elsewhere"
    dir_link.symlink_to(stack.outside, target_is_directory=True)
    refs = [
        "file:/etc/shadow",
        "file:/etc/passwd",
        "../../etc/passwd",
        "/proc/self/mem",
        f"file:{secret}",
        f"file:{stack.outside / 'absent.gguf'}",
        f"file:{link}",  # a symlink inside a model directory that points outside
        f"file:{dir_link / 'secret.gguf'}",
        f"file:{stack.models}/../outside/secret.gguf",
        f"file://{secret}",
    ]
    messages = {refusal(stack, f"bad-{i}", ref) for i, ref in enumerate(refs)}
    assert len(messages) == 1, messages
    (message,) = messages
    for leak in ("secret", "bytes", "21", "sha256", "exist", "permission"):
        assert leak not in message.lower()


@pytest.mark.req("CAT-1080")
def test_files_inside_a_model_directory_or_the_cache_are_catalogued_and_verified(stack: Stack) -> None:
    data = b"GGUF inside"
    inside = stack.models / "sub" / "inside.gguf"
    inside.parent.mkdir()
    inside.write_bytes(data)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (stack.models / "alias.gguf").symlink_to(inside)  # a symlink that stays inside is fine
    cached = stack.cache / "models" / "local.gguf"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(data)
    for model_id, ref in [
        ("inside", f"file:{inside}"),
        ("alias", f"file:{stack.models / 'alias.gguf'}"),
        ("cached", str(cached)),
        ("served", SERVED_REF),  # the configured pool's ref
        ("generated", "gen:tiny-llama"),
    ]:
        response = create(stack, model_id, ref)
        assert response.status_code == 201, response.text
    assert create(stack, "gone", f"file:{stack.models / 'not-yet.gguf'}").status_code == 201
    for model_id in ["inside", "alias", "cached"]:
        checked = stack.http.post(f"/v2/catalog/models/{model_id}/verify")
        assert_conforms(SERVICE, checked)
        assert (checked.status_code, checked.json()["actual_digest"]) == (202, digest)


@pytest.mark.req("CAT-1082")
def test_verify_refuses_an_entry_whose_file_is_now_outside(stack: Stack) -> None:
    secret = stack.outside / "secret.gguf"
    secret.write_bytes(b"root:x:0:0:secret")
    inside = stack.models / "swapped.gguf"
    inside.write_bytes(b"GGUF")
    assert create(stack, "swapped", f"file:{inside}").status_code == 201
    inside.unlink()
    inside.symlink_to(secret)  # swapped for a link outside after the entry was created
    # An entry written before CAT-1080 existed, straight into the store.
    store = CatalogStore(stack.state / "catalog" / CATALOG_FILE)
    store.put("legacy", "file:/etc/passwd", local_path="/etc/passwd", size_bytes=1)
    store.close()
    for model_id in ["swapped", "legacy"]:
        response = stack.http.post(f"/v2/catalog/models/{model_id}/verify")
        assert_conforms(SERVICE, response)
        assert (response.status_code, response.json()["code"]) == (400, "INVALID_PARAMS"), response.text
        assert "sha256" not in response.text
        entry = stack.http.get(f"/v2/catalog/models/{model_id}").json()
        assert (entry["last_verification"], entry["last_verified_ms"]) == (None, None)


@pytest.mark.req("CAT-1083", "CAT-1034")
def test_delete_never_removes_a_file_a_pool_serves_or_one_named_by_path(stack: Stack) -> None:
    # The pool serves hf:org/repo/served.gguf, kept in the cache at its download path.
    served = download_path(stack.cache, "https://huggingface.co/org/repo/resolve/main/served.gguf")
    served.parent.mkdir(parents=True)
    served.write_bytes(b"GGUF served")
    assert create(stack, "by-path", f"file:{served}").status_code == 201
    same_url = "https://huggingface.co/org/repo/resolve/main/served.gguf"
    assert create(stack, "by-url", same_url).status_code == 201
    for model_id in ["by-path", "by-url"]:
        busy = stack.http.delete(f"/v2/catalog/models/{model_id}")
        assert_conforms(SERVICE, busy)
        assert (busy.status_code, busy.json()["code"]) == (409, "CONFLICT")
    assert served.exists()
    other = download_path(stack.cache, "https://models.example/other.gguf")
    other.parent.mkdir(parents=True)
    other.write_bytes(b"GGUF other")
    assert create(stack, "other", "https://models.example/other.gguf").status_code == 201
    assert stack.http.delete("/v2/catalog/models/other").status_code == 204
    assert not other.exists()


@pytest.mark.req("CAT-1084")
def test_a_second_verification_meanwhile_is_409(stack: Stack) -> None:
    inside = stack.models / "m.gguf"
    inside.write_bytes(b"GGUF")
    assert create(stack, "m", f"file:{inside}").status_code == 201
    assert stack.http.post("/v2/catalog/models/m/verify").status_code == 202  # creates the slot
    slot = stack.app.state["catalog_verify_slot"]
    assert isinstance(slot, VerificationSlot)
    assert slot.try_acquire()  # stands in for a verification that is still hashing
    try:
        busy = stack.http.post("/v2/catalog/models/m/verify")
        assert_conforms(SERVICE, busy)
        assert (busy.status_code, busy.json()["code"]) == (409, "CONFLICT")
    finally:
        slot.release()
    assert stack.http.post("/v2/catalog/models/m/verify").status_code == 202


@pytest.mark.req("CAT-1084")
def test_a_stopped_verification_records_nothing(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "m.gguf").write_bytes(b"GGUF" * 1024)
    store = CatalogStore(tmp_path / CATALOG_FILE)
    store.put("m", f"file:{models / 'm.gguf'}", local_path=str(models / "m.gguf"))
    dirs = ModelDirs.of(cache_root=tmp_path / "cache", extra_dirs=[str(models)])
    with pytest.raises(VerificationStoppedError):
        verify(store, "m", dirs, tmp_path / "cache", lambda: True)
    assert store.get("m").last_verified_ms is None
    result, _ = verify(store, "m", dirs, tmp_path / "cache", lambda: False)
    assert result.outcome == VerifyOutcome.warn
    store.close()
