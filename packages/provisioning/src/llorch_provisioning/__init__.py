"""Engine provisioning for llama-orch.

Builds llama.cpp's ``llama-server`` from the source tree vendored in the pinned
llama-cpp-python sdist into a verified, lock-protected cache, plans ``source.git``
builds, and writes the tiny deterministic test model the real-engine tests run on.
"""

from ._cmake import CMakeBuilder, EngineBuilder, build_info_options, cmake_options
from ._engine_version import read_engine_version, version_line
from ._errors import (
    BuildError,
    ChecksumMismatchError,
    InvalidSourceSpecError,
    ModelSpecError,
    ProvisioningError,
    SdistNotFoundError,
    SourceLayoutError,
)
from ._git_plan import GitSourcePlan, PlanStep, plan_git_source, validate_ref, validate_repo_url
from ._host import Accelerator, HostProbe, cpu_fingerprint, probe_host
from ._install import EngineInstall, ensure_llamacpp_source
from ._layout import PINNED_LLAMA_CPP_PYTHON_VERSION, EngineCacheLayout, default_cache_root
from ._manifest import EngineManifest, read_manifest
from ._progress import BuildProgress, Phase, ProgressCallback, no_progress, parse_build_percent
from ._pypi import SdistRef, resolve_sdist
from ._sdist_fetch import FetchedSdist, LocalSdistFetcher, PyPIFetcher, SdistFetcher
from ._tiny_model import TinyModel, TinyModelSpec, make_tiny_model

__all__ = [
    "PINNED_LLAMA_CPP_PYTHON_VERSION",
    "Accelerator",
    "BuildError",
    "BuildProgress",
    "CMakeBuilder",
    "ChecksumMismatchError",
    "EngineBuilder",
    "EngineCacheLayout",
    "EngineInstall",
    "EngineManifest",
    "FetchedSdist",
    "GitSourcePlan",
    "HostProbe",
    "InvalidSourceSpecError",
    "LocalSdistFetcher",
    "ModelSpecError",
    "Phase",
    "PlanStep",
    "ProgressCallback",
    "ProvisioningError",
    "PyPIFetcher",
    "SdistFetcher",
    "SdistNotFoundError",
    "SdistRef",
    "SourceLayoutError",
    "TinyModel",
    "TinyModelSpec",
    "build_info_options",
    "cmake_options",
    "cpu_fingerprint",
    "default_cache_root",
    "ensure_llamacpp_source",
    "make_tiny_model",
    "no_progress",
    "parse_build_percent",
    "plan_git_source",
    "probe_host",
    "read_engine_version",
    "read_manifest",
    "resolve_sdist",
    "validate_ref",
    "validate_repo_url",
    "version_line",
]
