"""The plan-only ``source.git {repo, ref}`` form: validation and the steps it would run."""

from __future__ import annotations

from pathlib import Path

import pytest

from llorch_provisioning import Accelerator, InvalidSourceSpecError, plan_git_source

SHA = "0c1e57098bba43ac29e6e3b677cdceebdd22334f"


@pytest.mark.parametrize(
    "repo",
    [
        "https://github.com/ggml-org/llama.cpp",
        "https://github.com/ggml-org/llama.cpp.git",
        "https://git.example.org:8443/mirrors/llama.cpp.git",
        "git@github.com:ggml-org/llama.cpp.git",
    ],
)
def test_accepted_repo_urls(repo: str, tmp_path: Path) -> None:
    assert plan_git_source(repo, "master", tmp_path).repo == repo


@pytest.mark.parametrize(
    "repo",
    [
        "",
        "http://github.com/ggml-org/llama.cpp",
        "file:///etc/passwd",
        "/home/me/llama.cpp",
        "--upload-pack=touch /tmp/x",
        "https://user:secret@github.com/ggml-org/llama.cpp",
        "https://token@github.com/ggml-org/llama.cpp",
        "https://github.com/ggml-org/llama.cpp?ref=x",
        "https://github.com/ggml-org/../llama.cpp",
        "https://github.com/a b",
        " https://github.com/ggml-org/llama.cpp",
        "ext::sh -c touch% /tmp/pwned",
        "git@github.com:../../etc",
    ],
)
def test_rejected_repo_urls(repo: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidSourceSpecError):
        plan_git_source(repo, "master", tmp_path)


@pytest.mark.parametrize("ref", ["master", "b6000", "release/v1.2", "v0.3.36", SHA])
def test_accepted_refs(ref: str, tmp_path: Path) -> None:
    assert plan_git_source("https://github.com/ggml-org/llama.cpp", ref, tmp_path).ref == ref


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "-b",
        "--output=x",
        "a..b",
        "a b",
        "a~1",
        "HEAD^",
        "a:b",
        "x.lock",
        "a/.hidden",
        "a//b",
        "@{1}",
        "@",
        "/a",
        "a/",
    ],
)
def test_rejected_refs(ref: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidSourceSpecError):
        plan_git_source("https://github.com/ggml-org/llama.cpp", ref, tmp_path)


def test_only_a_full_commit_is_pinned(tmp_path: Path) -> None:
    repo = "https://github.com/ggml-org/llama.cpp"
    assert plan_git_source(repo, SHA, tmp_path).pinned
    assert not plan_git_source(repo, "master", tmp_path).pinned
    assert not plan_git_source(repo, SHA[:7], tmp_path).pinned


def test_plan_steps_fetch_the_ref_then_build_only_the_server(tmp_path: Path) -> None:
    plan = plan_git_source("https://github.com/ggml-org/llama.cpp", SHA, tmp_path, jobs=2)
    argvs = [step.argv for step in plan.steps]
    fetch = next(a for a in argvs if "fetch" in a)
    # `--` precedes the user-supplied values so git cannot read them as options.
    assert fetch[-3:] == ("--", "https://github.com/ggml-org/llama.cpp", SHA)
    configure = next(a for a in argvs if a[:2] == ("cmake", "-S"))
    assert "-DGGML_CUDA=OFF" in configure
    assert "-DLLAMA_BUILD_TESTS=OFF" in configure
    assert argvs[-1][-4:] == ("--target", "llama-server", "-j", "2")
    cuda = plan_git_source(
        "https://github.com/ggml-org/llama.cpp", SHA, tmp_path, accelerator=Accelerator.CUDA
    )
    assert any("-DGGML_CUDA=ON" in step.argv for step in cuda.steps)
