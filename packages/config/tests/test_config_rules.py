"""Cross-field rules the schema cannot express, reported with the same key paths."""

from __future__ import annotations

import pytest

from llorch_config import ConfigError, bind_refusal, parse_config

CPU_POOL = "profile: dev\npools:\n  - id: a\n    allow_cpu_inference: true\n"


def fails_at(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "t.yaml")
    return caught.value.path


def test_duplicate_pool_ids_are_rejected() -> None:
    text = CPU_POOL + "  - id: a\n    allow_cpu_inference: true\n"
    assert fails_at(text) == "$.pools[1].id"


def test_home_profile_refuses_cpu_inference() -> None:
    assert fails_at("pools:\n  - id: a\n    allow_cpu_inference: true\n") == "$.pools[0].allow_cpu_inference"


@pytest.mark.req("HME-011")
def test_a_pool_without_devices_may_use_any_gpu() -> None:
    assert parse_config("pools:\n  - id: a\n").pools[0].devices == []


def test_device_listed_twice() -> None:
    assert fails_at("pools:\n  - id: a\n    devices: [0, 0]\n") == "$.pools[0].devices"


def test_tensor_split_needs_one_ratio_per_device() -> None:
    assert (
        fails_at("pools:\n  - id: a\n    devices: [0, 1]\n    tensor_split: [1.0]\n")
        == "$.pools[0].tensor_split"
    )


def test_binary_url_needs_permission_to_download() -> None:
    text = (
        "pools:\n  - id: a\n    devices: [0]\n    engine:\n      provisioning:\n        mode: binary\n"
        "        binary:\n          url: https://example.org/llama-server\n"
        "          sha256: sha256:" + "0" * 64 + "\n"
    )
    assert fails_at(text) == "$.pools[0].engine.provisioning.binary.url"


def test_binary_mode_needs_a_path_or_url() -> None:
    text = "pools:\n  - id: a\n    devices: [0]\n    engine:\n      provisioning:\n        mode: binary\n"
    assert fails_at(text) == "$.pools[0].engine.provisioning.binary"


def test_engine_port_range_must_hold_every_replica() -> None:
    text = CPU_POOL + "    replicas: 3\npool_managerd:\n  engine_ports: {start: 18000, end: 18001}\n"
    assert fails_at(text) == "$.pool_managerd.engine_ports"


def test_control_characters_are_rejected_even_where_a_pattern_would_pass() -> None:
    assert (
        fails_at('profile: dev\npools:\n  - id: "a\\n"\n    allow_cpu_inference: true\n') == "$.pools[0].id"
    )


@pytest.mark.req("AUTH-1002")
@pytest.mark.parametrize(
    ("bind", "env", "refused"),
    [
        ("127.0.0.1:8080", {}, False),
        ("127.0.0.2:8080", {}, False),
        ("localhost:8080", {}, False),
        ("[::1]:8080", {}, False),
        ("0.0.0.0:8080", {}, True),
        ("192.168.1.5:8080", {"T": "short"}, True),
        ("192.168.1.5:8080", {"T": "x" * 16}, False),
    ],
)
def test_non_loopback_bind_needs_a_token(bind: str, env: dict[str, str], refused: bool) -> None:
    assert (bind_refusal(bind, "T", env) is not None) is refused


@pytest.mark.req("AUTH-1002")
def test_refusal_names_the_bind_the_variable_and_both_fixes() -> None:
    message = bind_refusal("0.0.0.0:8080", "LLORCH_API_TOKEN", {})
    assert message is not None
    assert "0.0.0.0:8080" in message
    assert "LLORCH_API_TOKEN" in message
    assert "127.0.0.1" in message
