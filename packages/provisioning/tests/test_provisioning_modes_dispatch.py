"""provision_engine routing, and the source, external and mock modes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from llorch_contracts.config import EngineConfig, PolicyConfig
from llorch_provisioning import (
    ChecksumMismatchError,
    EngineUrlError,
    GitSourceNotExecutedError,
    HostProbe,
    InvalidSourceSpecError,
    LocalSdistFetcher,
    OutboundDeniedError,
    OutboundGate,
    ProvisioningConfigError,
    provision_engine,
)
from llorch_provisioning.testing import StubServerBuilder

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _engine(doc: dict[str, Any]) -> EngineConfig:
    return msgspec.convert(doc, EngineConfig)


def _source(**source: Any) -> EngineConfig:
    sdist = {"version": "9.9.9", **source.pop("sdist", {})}
    return _engine({"provisioning": {"mode": "source", "source": {"sdist": sdist, **source}}})


def test_mock_needs_nothing(tmp_path: Path) -> None:
    engine = provision_engine(_engine({"kind": "mock"}), policy=PolicyConfig(), cache_root=tmp_path)
    assert engine.mode == "mock"
    assert (engine.binary_path, engine.base_url, engine.container) == (None, None, None)


@pytest.mark.parametrize("mode", ["source", "binary", "package"])
def test_remote_engine_kinds_cannot_be_built_or_packaged_here(tmp_path: Path, mode: str) -> None:
    config = _engine({"kind": "vllm", "provisioning": {"mode": mode}})
    with pytest.raises(ProvisioningConfigError, match="use mode external"):
        provision_engine(config, policy=PolicyConfig(), cache_root=tmp_path)


@pytest.mark.parametrize("mode", ["binary", "package", "container", "external"])
def test_a_mode_without_its_section_is_a_config_error(tmp_path: Path, mode: str) -> None:
    with pytest.raises(ProvisioningConfigError, match=f"mode {mode} needs provisioning.{mode}"):
        provision_engine(
            _engine({"provisioning": {"mode": mode}}), policy=PolicyConfig(), cache_root=tmp_path
        )


def test_external_returns_the_base_url_and_nothing_to_run(tmp_path: Path) -> None:
    config = _engine(
        {
            "kind": "openai",
            "provisioning": {
                "mode": "external",
                "external": {"url": "https://api.example.com/v1/", "api_key_env": "OPENAI_API_KEY"},
            },
        }
    )
    engine = provision_engine(config, policy=PolicyConfig(), cache_root=tmp_path)
    assert (engine.mode, engine.base_url, engine.api_key_env) == (
        "external",
        "https://api.example.com/v1",
        "OPENAI_API_KEY",
    )
    assert engine.binary_path is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://user:pw@127.0.0.1:8081", "credentials"),
        ("http://127.0.0.1:99999", "port"),
        ("http://127.0.0.1:8081/?debug=1", "query string"),
    ],
)
def test_external_urls_are_checked(tmp_path: Path, url: str, problem: str) -> None:
    config = _engine({"provisioning": {"mode": "external", "external": {"url": url}}})
    with pytest.raises(EngineUrlError, match=problem) as info:
        provision_engine(config, policy=PolicyConfig(), cache_root=tmp_path)
    assert "pw" not in str(info.value)


def _build(tmp_path: Path, config: EngineConfig, sdist: Path, host: HostProbe, **kwargs: Any) -> Any:
    kwargs.setdefault("builder", StubServerBuilder())
    return provision_engine(
        config,
        policy=PolicyConfig(),
        cache_root=tmp_path / "cache",
        fetcher=LocalSdistFetcher(path=sdist),
        host=host,
        **kwargs,
    )


def test_source_builds_from_the_sdist(tmp_path: Path, stub_sdist: Path, host: HostProbe) -> None:
    engine = _build(tmp_path, _source(), stub_sdist, host)
    assert (engine.mode, engine.variant) == ("source", "cpu")
    assert engine.binary_path is not None
    assert engine.binary_path.is_file()
    assert engine.engine_version == "version: 0.0.0-stub (build 0, commit 0c1e570)"
    assert engine.vocab_dir is not None
    assert (engine.vocab_dir / "ggml-vocab-llama-spm.gguf").read_bytes() == b"spm-vocab"


@pytest.mark.req("OC-POOL-3111")
def test_source_checks_the_configured_sdist_digest_before_building(
    tmp_path: Path, stub_sdist: Path, host: HostProbe
) -> None:
    builder = StubServerBuilder()
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ChecksumMismatchError):
        _build(tmp_path, _source(sdist={"sha256": wrong}), stub_sdist, host, builder=builder)
    assert builder.calls == 0
    right = "sha256:" + hashlib.sha256(stub_sdist.read_bytes()).hexdigest()
    assert (
        _build(tmp_path, _source(sdist={"sha256": right}), stub_sdist, host, builder=builder).mode == "source"
    )
    assert builder.calls == 1


@pytest.mark.req("OC-POOL-3111")
def test_a_cached_build_from_another_sdist_is_refused(
    tmp_path: Path, stub_sdist: Path, host: HostProbe
) -> None:
    _build(tmp_path, _source(), stub_sdist, host)
    with pytest.raises(ChecksumMismatchError):
        _build(tmp_path, _source(sdist={"sha256": "sha256:" + "1" * 64}), stub_sdist, host)


@pytest.mark.req("OC-POOL-3112")
def test_fetching_the_sdist_goes_through_the_outbound_hook(tmp_path: Path, host: HostProbe) -> None:
    asked: list[Any] = []
    gate = OutboundGate(allow=False, allowed_hosts=[], audit=asked.append)
    builder = StubServerBuilder()
    with pytest.raises(OutboundDeniedError, match=r"policy\.outbound\.allow"):
        provision_engine(
            _source(), policy=PolicyConfig(), cache_root=tmp_path, hook=gate, builder=builder, host=host
        )
    assert [(d.purpose, d.host, d.decision) for d in asked] == [("engine_source", "pypi.org", "deny")]
    assert builder.calls == 0


def test_source_git_is_validated_and_planned_not_run(tmp_path: Path) -> None:
    config = _source(git={"repo": "https://github.com/ggml-org/llama.cpp", "ref": COMMIT})
    with pytest.raises(GitSourceNotExecutedError) as info:
        provision_engine(config, policy=PolicyConfig(), cache_root=tmp_path)
    plan = info.value.plan
    assert (plan.repo, plan.ref, plan.pinned) == ("https://github.com/ggml-org/llama.cpp", COMMIT, True)
    message = str(info.value)
    assert "need internet access" in message
    assert (
        f"git -C {tmp_path}/engines/git/work/src fetch --depth 1 -- https://github.com/ggml-org/llama.cpp"
        in message
    )
    assert not (tmp_path / "engines").exists()


def test_an_invalid_git_spec_is_rejected(tmp_path: Path) -> None:
    config = _source(git={"repo": "http://example.com/llama.cpp", "ref": "master"})
    with pytest.raises(InvalidSourceSpecError, match="only https://"):
        provision_engine(config, policy=PolicyConfig(), cache_root=tmp_path)


def test_cmake_flags_are_refused_rather_than_ignored(tmp_path: Path) -> None:
    with pytest.raises(ProvisioningConfigError, match="cmake_flags"):
        provision_engine(
            _source(cmake_flags=["-DGGML_AVX512=ON"]), policy=PolicyConfig(), cache_root=tmp_path
        )
