"""Model references: every supported form parses to its typed ref; anything else is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from llorch_provisioning import (
    FileModelRef,
    GenModelRef,
    HfModelRef,
    InvalidModelRefError,
    UrlModelRef,
    parse_model_ref,
)

BASE = Path("/etc/llorch")


@pytest.mark.req("CAT-1010")
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("gen:tiny-llama", GenModelRef(raw="gen:tiny-llama", recipe="tiny-llama", seed=0)),
        ("gen:tiny-llama?seed=42", GenModelRef(raw="gen:tiny-llama?seed=42", recipe="tiny-llama", seed=42)),
        ("file:/srv/m/a.gguf", FileModelRef(raw="file:/srv/m/a.gguf", path=Path("/srv/m/a.gguf"))),
        ("file:///srv/m/a.gguf", FileModelRef(raw="file:///srv/m/a.gguf", path=Path("/srv/m/a.gguf"))),
        ("models/a.gguf", FileModelRef(raw="models/a.gguf", path=Path("/etc/llorch/models/a.gguf"))),
        ("../m/./a.gguf", FileModelRef(raw="../m/./a.gguf", path=Path("/etc/m/a.gguf"))),
        ("/srv/m/a.gguf", FileModelRef(raw="/srv/m/a.gguf", path=Path("/srv/m/a.gguf"))),
        ("./c:d.gguf", FileModelRef(raw="./c:d.gguf", path=Path("/etc/llorch/c:d.gguf"))),
        (
            "https://example.org/m/a.gguf?download=1",
            UrlModelRef(
                raw="https://example.org/m/a.gguf?download=1", url="https://example.org/m/a.gguf?download=1"
            ),
        ),
        (
            "http://127.0.0.1:8000/a.gguf",
            UrlModelRef(raw="http://127.0.0.1:8000/a.gguf", url="http://127.0.0.1:8000/a.gguf"),
        ),
        ("http://[::1]/a.gguf", UrlModelRef(raw="http://[::1]/a.gguf", url="http://[::1]/a.gguf")),
        (
            "http://localhost/a.gguf",
            UrlModelRef(raw="http://localhost/a.gguf", url="http://localhost/a.gguf"),
        ),
        (
            "hf:TheOrg/some-repo.GGUF/q4/model Q4.gguf",
            HfModelRef(
                raw="hf:TheOrg/some-repo.GGUF/q4/model Q4.gguf",
                repo="TheOrg/some-repo.GGUF",
                revision="main",
                path_in_repo="q4/model Q4.gguf",
            ),
        ),
        (
            "hf:org/repo@v1.2/a.gguf",
            HfModelRef(
                raw="hf:org/repo@v1.2/a.gguf", repo="org/repo", revision="v1.2", path_in_repo="a.gguf"
            ),
        ),
    ],
)
def test_supported_forms_parse_to_typed_refs(raw: str, expected: object) -> None:
    assert parse_model_ref(raw, base_dir=BASE) == expected


def test_home_is_expanded_in_file_refs_and_plain_paths() -> None:
    home = Path("~").expanduser()
    assert parse_model_ref("file:~/m/a.gguf", base_dir=BASE) == FileModelRef(
        raw="file:~/m/a.gguf", path=home / "m/a.gguf"
    )
    assert parse_model_ref("~/a.gguf", base_dir=BASE) == FileModelRef(raw="~/a.gguf", path=home / "a.gguf")


def test_hf_refs_resolve_to_the_revision_url() -> None:
    main = parse_model_ref("hf:org/repo/dir/model Q4.gguf", base_dir=BASE)
    pinned = parse_model_ref("hf:org/repo@0123abcd/model.gguf", base_dir=BASE)
    assert isinstance(main, HfModelRef)
    assert isinstance(pinned, HfModelRef)
    assert main.url == "https://huggingface.co/org/repo/resolve/main/dir/model%20Q4.gguf"
    assert pinned.url == "https://huggingface.co/org/repo/resolve/0123abcd/model.gguf"


@pytest.mark.req("CAT-1010")
@pytest.mark.parametrize("raw", ["s3://bucket/model.gguf", "oci://registry/model:tag", "ftp://host/m.gguf"])
def test_unknown_schemes_are_refused_naming_the_supported_ones(raw: str) -> None:
    with pytest.raises(InvalidModelRefError, match="unsupported scheme") as info:
        parse_model_ref(raw, base_dir=BASE)
    message = str(info.value)
    for form in ("gen:tiny-llama", "file:/absolute/path", "https://", "hf:org/repo[@revision]"):
        assert form in message
    assert info.value.ref == raw


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "empty"),
        (" gen:tiny-llama", "whitespace"),
        ("a\nb.gguf", "control characters"),
        ("gen:big-llama", "unknown generated model"),
        ("gen:tiny-llama?seed=-1", "seed must be"),
        ("gen:tiny-llama?seed=²", "seed must be"),
        ("gen:tiny-llama?seed=99999999999999999999", "seed must be"),
        ("gen:tiny-llama?seed=1&seed=2", "repeated"),
        ("gen:tiny-llama?temp=1", "only seed=N"),
        ("file:relative/a.gguf", "absolute path"),
        ("file://host/a.gguf", "must not name a host"),
        ("http://example.org/a.gguf", "only allowed for loopback"),
        ("https://user:secret@example.org/a.gguf", "credentials"),
        ("https:///a.gguf", "no host"),
        ("https://example.org:99999/a.gguf", "bad port"),
        ("hf:org/a.gguf", "path in the repository"),
        ("hf:org/repo", "path in the repository"),
        ("hf:org/repo/../x.gguf", "not normalised"),
        ("hf:org/repo@/a.gguf", "bad revision"),
        ("hf:-org/repo/a.gguf", "expected hf:"),
    ],
)
def test_malformed_refs_say_what_is_wrong(raw: str, problem: str) -> None:
    with pytest.raises(InvalidModelRefError, match=problem):
        parse_model_ref(raw, base_dir=BASE)


def test_url_errors_never_repeat_credentials_or_query_strings() -> None:
    with pytest.raises(InvalidModelRefError) as info:
        parse_model_ref("https://user:secret@example.org/a.gguf?token=abc", base_dir=BASE)
    assert "secret" not in str(info.value)
    assert "abc" not in str(info.value)
    assert "https://example.org/a.gguf" in str(info.value)
