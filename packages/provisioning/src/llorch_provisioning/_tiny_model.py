"""A tiny, deterministic llama-architecture GGUF for exercising a real engine without a real model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gguf
import numpy as np
import numpy.typing as npt

from ._errors import ModelSpecError
from ._files import atomic_write_with, sha256_file

_ARCH = "llama"


@dataclass(frozen=True, kw_only=True)
class TinyModelSpec:
    """Hyper-parameters of the generated model; defaults give a 2-layer, 64-wide llama."""

    n_layers: int = 2
    n_embd: int = 64
    n_ff: int = 128
    n_head: int = 4
    n_head_kv: int = 4
    context_length: int = 2048
    rms_norm_eps: float = 1e-5
    rope_freq_base: float = 10000.0
    dtype: Literal["f32", "f16"] = "f16"
    init_std: float = 0.02

    def validate(self) -> None:
        """Raise ``ModelSpecError`` for shapes llama.cpp would reject at load time."""
        if min(self.n_layers, self.n_embd, self.n_ff, self.n_head, self.n_head_kv, self.context_length) < 1:
            raise ModelSpecError(f"all sizes must be positive: {self}")
        if self.n_embd % self.n_head or self.n_head % self.n_head_kv:
            raise ModelSpecError("n_head must divide n_embd and n_head_kv must divide n_head")
        if (self.n_embd // self.n_head) % 2:
            raise ModelSpecError("head size must be even for RoPE")

    @property
    def head_dim(self) -> int:
        """Width of one attention head (also the RoPE dimension count)."""
        return self.n_embd // self.n_head


@dataclass(frozen=True, kw_only=True)
class TinyModel:
    """The file written by ``make_tiny_model`` and what it contains."""

    path: Path
    sha256: str
    size_bytes: int
    n_vocab: int
    seed: int
    spec: TinyModelSpec


def _copy_tokenizer(reader: gguf.GGUFReader, writer: gguf.GGUFWriter) -> int:
    """Copy every ``tokenizer.*`` key verbatim (raw bytes for strings); return the vocab size."""
    n_vocab = 0
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        main = field.types[0]
        if main is gguf.GGUFValueType.ARRAY:
            sub = field.types[-1]
            if sub is gguf.GGUFValueType.STRING:
                values: list[Any] = [bytes(field.parts[i]) for i in field.data]
            else:
                values = [field.parts[i].tolist()[0] for i in field.data]
            writer.add_key_value(key, values, main, sub_type=sub)
            if key == gguf.Keys.Tokenizer.LIST:
                n_vocab = len(values)
        elif main is gguf.GGUFValueType.STRING:
            writer.add_key_value(key, bytes(field.parts[field.data[0]]), main)
        else:
            writer.add_key_value(key, field.parts[field.data[0]].tolist()[0], main)
    if n_vocab == 0:
        raise ModelSpecError("vocab file has no tokenizer.ggml.tokens")
    return n_vocab


def _tensors(spec: TinyModelSpec, n_vocab: int, seed: int) -> list[tuple[str, npt.NDArray[Any]]]:
    """Seeded weights in a fixed order; numpy shapes are (rows=out, cols=in) as llama.cpp expects."""
    rng = np.random.default_rng(seed)
    dtype = np.float16 if spec.dtype == "f16" else np.float32
    n_kv = spec.n_head_kv * spec.head_dim

    def matrix(rows: int, cols: int) -> npt.NDArray[Any]:
        return (rng.standard_normal((rows, cols), dtype=np.float32) * spec.init_std).astype(dtype)

    def norm() -> npt.NDArray[Any]:
        # Norm weights stay f32: llama.cpp multiplies them element-wise in f32 anyway.
        return np.ones(spec.n_embd, dtype=np.float32)

    # No output.weight: llama.cpp then ties the output projection to token_embd,
    # which halves the file without changing anything we test.
    out: list[tuple[str, npt.NDArray[Any]]] = [("token_embd.weight", matrix(n_vocab, spec.n_embd))]
    for i in range(spec.n_layers):
        out += [
            (f"blk.{i}.attn_norm.weight", norm()),
            (f"blk.{i}.attn_q.weight", matrix(spec.n_embd, spec.n_embd)),
            (f"blk.{i}.attn_k.weight", matrix(n_kv, spec.n_embd)),
            (f"blk.{i}.attn_v.weight", matrix(n_kv, spec.n_embd)),
            (f"blk.{i}.attn_output.weight", matrix(spec.n_embd, spec.n_embd)),
            (f"blk.{i}.ffn_norm.weight", norm()),
            (f"blk.{i}.ffn_gate.weight", matrix(spec.n_ff, spec.n_embd)),
            (f"blk.{i}.ffn_up.weight", matrix(spec.n_ff, spec.n_embd)),
            (f"blk.{i}.ffn_down.weight", matrix(spec.n_embd, spec.n_ff)),
        ]
    out.append(("output_norm.weight", norm()))
    return out


def make_tiny_model(
    out_path: Path, *, seed: int, vocab_gguf_path: Path, spec: TinyModelSpec | None = None
) -> TinyModel:
    """Write a llama GGUF with the vocabulary of ``vocab_gguf_path`` and weights seeded by ``seed``.

    The output is a pure function of (vocab file, seed, spec, numpy's PCG64 stream): the
    gguf writer adds no timestamps or UUIDs, so the same inputs give the same sha256.
    The file appears atomically, so a concurrent reader never loads a half-written model.
    """
    spec = spec if spec is not None else TinyModelSpec()
    spec.validate()
    reader = gguf.GGUFReader(vocab_gguf_path)
    writer = gguf.GGUFWriter(path=None, arch=_ARCH)
    writer.add_name(f"llorch-tiny-l{spec.n_layers}-e{spec.n_embd}-s{seed}")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if spec.dtype == "f16" else gguf.LlamaFileType.ALL_F32)
    n_vocab = _copy_tokenizer(reader, writer)
    writer.add_vocab_size(n_vocab)
    writer.add_context_length(spec.context_length)
    writer.add_embedding_length(spec.n_embd)
    writer.add_block_count(spec.n_layers)
    writer.add_feed_forward_length(spec.n_ff)
    writer.add_head_count(spec.n_head)
    writer.add_head_count_kv(spec.n_head_kv)
    writer.add_layer_norm_rms_eps(spec.rms_norm_eps)
    writer.add_rope_dimension_count(spec.head_dim)
    writer.add_rope_freq_base(spec.rope_freq_base)
    for name, tensor in _tensors(spec, n_vocab, seed):
        writer.add_tensor(name, tensor)

    def write(tmp: Path) -> None:
        writer.write_header_to_file(path=tmp)
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()

    atomic_write_with(out_path, write)
    return TinyModel(
        path=out_path,
        sha256=sha256_file(out_path),
        size_bytes=out_path.stat().st_size,
        n_vocab=n_vocab,
        seed=seed,
        spec=spec,
    )
