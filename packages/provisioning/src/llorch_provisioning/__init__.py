"""Engine provisioning for llama-orch.

Builds llama.cpp's ``llama-server`` from the source tree vendored in the pinned
llama-cpp-python sdist into a verified, lock-protected cache, plans ``source.git``
builds, and writes the tiny deterministic test model the real-engine tests run on.
``provision_engine`` turns a pool's engine config into something to run in any of the
five modes; ``scan_gpus`` reads the NVML inventory and ``gpu_policy_problem`` says
whether a pool's device request fits this host.
"""

from ._binary_mode import inspect_engine_binary
from ._cmake import CMakeBuilder, EngineBuilder, build_info_options, cmake_options
from ._commands import RunCommand, Which
from ._container_plan import ContainerRunPlan
from ._digest import file_digest, file_digest_until, parse_digest
from ._engine_modes import provision_engine
from ._engine_version import read_engine_version, version_line
from ._errors import (
    BuildError,
    ChecksumMismatchError,
    ContainerRuntimeError,
    EngineBinaryError,
    EngineModeError,
    EngineUrlError,
    GitSourceNotExecutedError,
    InvalidDigestError,
    InvalidModelRefError,
    InvalidSourceSpecError,
    ModelDigestMismatchError,
    ModelFetchError,
    ModelGenerationError,
    ModelNotFoundError,
    ModelPathNotAllowedError,
    ModelSpecError,
    OutboundDeniedError,
    PackageNotInstalledError,
    PolicyForbidsError,
    ProvisioningConfigError,
    ProvisioningError,
    SdistNotFoundError,
    SourceLayoutError,
    ToolNotFoundError,
)
from ._files import sha256_file
from ._git_plan import GitSourcePlan, PlanStep, plan_git_source, validate_ref, validate_repo_url
from ._gpu import GpuDeviceProblem, GpuScan, NvmlApi, read_gpu_inventory, scan_gpus
from ._gpu_policy import gpu_policy_problem
from ._host import Accelerator, HostProbe, cpu_fingerprint, probe_host
from ._install import EngineInstall, ensure_llamacpp_source
from ._layout import PINNED_LLAMA_CPP_PYTHON_VERSION, EngineCacheLayout, default_cache_root
from ._manifest import EngineManifest, read_manifest
from ._model_dirs import ModelDirs, cached_model_path, discard_cached_model
from ._model_progress import (
    ModelProgress,
    ModelProgressCallback,
    ModelStep,
    no_model_progress,
    progress_lines,
)
from ._model_ref import FileModelRef, GenModelRef, HfModelRef, ModelRef, UrlModelRef, parse_model_ref
from ._models import (
    ModelFile,
    ModelSource,
    download_path,
    ensure_model,
    ensure_tiny_model,
    models_dir,
    tiny_model_path,
)
from ._outbound import (
    OutboundAudit,
    OutboundDecision,
    OutboundGate,
    OutboundHook,
    OutboundPurpose,
    log_outbound_decision,
)
from ._package_mode import install_command
from ._progress import BuildProgress, Phase, ProgressCallback, no_progress, parse_build_percent
from ._provisioned import ProvisionedEngine, ProvisionedMode
from ._pypi import SdistRef, resolve_sdist
from ._sdist_fetch import FetchedSdist, LocalSdistFetcher, PyPIFetcher, SdistFetcher
from ._tiny_model import TinyModel, TinyModelSpec, make_tiny_model
from ._urls import redact_url

__all__ = [
    "PINNED_LLAMA_CPP_PYTHON_VERSION",
    "Accelerator",
    "BuildError",
    "BuildProgress",
    "CMakeBuilder",
    "ChecksumMismatchError",
    "ContainerRunPlan",
    "ContainerRuntimeError",
    "EngineBinaryError",
    "EngineBuilder",
    "EngineCacheLayout",
    "EngineInstall",
    "EngineManifest",
    "EngineModeError",
    "EngineUrlError",
    "FetchedSdist",
    "FileModelRef",
    "GenModelRef",
    "GitSourceNotExecutedError",
    "GitSourcePlan",
    "GpuDeviceProblem",
    "GpuScan",
    "HfModelRef",
    "HostProbe",
    "InvalidDigestError",
    "InvalidModelRefError",
    "InvalidSourceSpecError",
    "LocalSdistFetcher",
    "ModelDigestMismatchError",
    "ModelDirs",
    "ModelFetchError",
    "ModelFile",
    "ModelGenerationError",
    "ModelNotFoundError",
    "ModelPathNotAllowedError",
    "ModelProgress",
    "ModelProgressCallback",
    "ModelRef",
    "ModelSource",
    "ModelSpecError",
    "ModelStep",
    "NvmlApi",
    "OutboundAudit",
    "OutboundDecision",
    "OutboundDeniedError",
    "OutboundGate",
    "OutboundHook",
    "OutboundPurpose",
    "PackageNotInstalledError",
    "Phase",
    "PlanStep",
    "PolicyForbidsError",
    "ProgressCallback",
    "ProvisionedEngine",
    "ProvisionedMode",
    "ProvisioningConfigError",
    "ProvisioningError",
    "PyPIFetcher",
    "RunCommand",
    "SdistFetcher",
    "SdistNotFoundError",
    "SdistRef",
    "SourceLayoutError",
    "TinyModel",
    "TinyModelSpec",
    "ToolNotFoundError",
    "UrlModelRef",
    "Which",
    "build_info_options",
    "cached_model_path",
    "cmake_options",
    "cpu_fingerprint",
    "default_cache_root",
    "discard_cached_model",
    "download_path",
    "ensure_llamacpp_source",
    "ensure_model",
    "ensure_tiny_model",
    "file_digest",
    "file_digest_until",
    "gpu_policy_problem",
    "inspect_engine_binary",
    "install_command",
    "log_outbound_decision",
    "make_tiny_model",
    "models_dir",
    "no_model_progress",
    "no_progress",
    "parse_build_percent",
    "parse_digest",
    "parse_model_ref",
    "plan_git_source",
    "probe_host",
    "progress_lines",
    "provision_engine",
    "read_engine_version",
    "read_gpu_inventory",
    "read_manifest",
    "redact_url",
    "resolve_sdist",
    "scan_gpus",
    "sha256_file",
    "tiny_model_path",
    "validate_ref",
    "validate_repo_url",
    "version_line",
]
