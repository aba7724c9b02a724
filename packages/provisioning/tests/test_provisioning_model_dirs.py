"""`ModelDirs`: which local files a client's model reference may name (CAT-1080, CAT-1083)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llorch_provisioning import (
    FileModelRef,
    ModelDirs,
    ModelPathNotAllowedError,
    cached_model_path,
    discard_cached_model,
    download_path,
    parse_model_ref,
)


@pytest.fixture
def dirs(tmp_path: Path) -> ModelDirs:
    (tmp_path / "models").mkdir()
    (tmp_path / "outside").mkdir()
    return ModelDirs.of(
        cache_root=tmp_path / "cache",
        extra_dirs=[str(tmp_path / "models")],
        configured_refs={"/opt/operator/model.gguf"},
    )


@pytest.mark.req("CAT-1080", "CAT-1081")
def test_paths_resolve_with_symlinks_before_the_check(dirs: ModelDirs, tmp_path: Path) -> None:
    models, outside = tmp_path / "models", tmp_path / "outside"
    (models / "out.gguf").symlink_to(outside / "secret.gguf")
    (models / "in.gguf").symlink_to(models / "real.gguf")
    allowed = [
        f"file:{models / 'in.gguf'}",
        f"{models}/a/../real.gguf",
        str(tmp_path / "cache/models/x.gguf"),
    ]
    for ref in allowed:
        assert isinstance(dirs.check_ref(ref, base_dir=tmp_path), FileModelRef)
    refused = [
        f"file:{models / 'out.gguf'}",
        f"{models}/../outside/secret.gguf",
        "../../etc/passwd",
        "file:/etc/shadow",
        str(tmp_path / "models-sibling" / "x.gguf"),  # a prefix of the name is not a parent
    ]
    for ref in refused:
        with pytest.raises(ModelPathNotAllowedError) as caught:
            dirs.check_ref(ref, base_dir=tmp_path)
        assert caught.value.problem == ModelPathNotAllowedError("x").problem


@pytest.mark.req("CAT-1080")
def test_configured_and_non_file_refs_pass(dirs: ModelDirs, tmp_path: Path) -> None:
    for ref in [
        "/opt/operator/model.gguf",
        "gen:tiny-llama",
        "hf:org/repo/m.gguf",
        "https://h.example/m.gguf",
    ]:
        dirs.check_ref(ref, base_dir=tmp_path)


@pytest.mark.req("CAT-1083")
def test_only_the_cache_file_of_a_fetched_ref_is_discarded(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    url = "https://h.example/m.gguf"
    fetched = download_path(cache, url)
    fetched.parent.mkdir(parents=True)
    fetched.write_bytes(b"GGUF")
    local = tmp_path / "local.gguf"
    local.write_bytes(b"GGUF")
    assert cached_model_path(parse_model_ref(f"file:{local}", base_dir=tmp_path), cache) is None
    assert not discard_cached_model(parse_model_ref(f"file:{local}", base_dir=tmp_path), cache)
    assert local.exists()
    assert discard_cached_model(parse_model_ref(url, base_dir=tmp_path), cache)
    assert not fetched.exists()
