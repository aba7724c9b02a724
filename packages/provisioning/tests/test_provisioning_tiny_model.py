"""The tiny test model: deterministic bytes per seed, llama metadata llama.cpp needs."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from llorch_provisioning import (
    EngineInstall,
    ModelSpecError,
    TinyModelSpec,
    make_tiny_model,
)

N_VOCAB = 300


@pytest.fixture(scope="module")
def synthetic_vocab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small SPM-style vocab GGUF, so these tests never depend on the engine cache."""
    path = tmp_path_factory.mktemp("vocab") / "ggml-vocab-synthetic.gguf"
    writer = gguf.GGUFWriter(path=None, arch="llama")
    writer.add_tokenizer_model("llama")
    writer.add_token_list(["<unk>", "<s>", "</s>", *(f"tok{i}" for i in range(N_VOCAB - 3))])
    writer.add_token_scores([0.0] * N_VOCAB)
    writer.add_token_types([2, 3, 3, *([1] * (N_VOCAB - 3))])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.write_header_to_file(path=path)
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_same_seed_same_bytes_different_seed_different_bytes(synthetic_vocab: Path, tmp_path: Path) -> None:
    a = make_tiny_model(tmp_path / "a.gguf", seed=7, vocab_gguf_path=synthetic_vocab)
    b = make_tiny_model(tmp_path / "b.gguf", seed=7, vocab_gguf_path=synthetic_vocab)
    c = make_tiny_model(tmp_path / "c.gguf", seed=8, vocab_gguf_path=synthetic_vocab)
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.sha256 == b.sha256 != c.sha256
    assert a.size_bytes == c.size_bytes == a.path.stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gguf", "b.gguf", "c.gguf"]


def test_metadata_and_tensors_are_what_llamacpp_expects(synthetic_vocab: Path, tmp_path: Path) -> None:
    spec = TinyModelSpec(n_layers=3, n_embd=32, n_ff=48, n_head=4, n_head_kv=2, dtype="f32")
    model = make_tiny_model(tmp_path / "m.gguf", seed=1, vocab_gguf_path=synthetic_vocab, spec=spec)
    reader = gguf.GGUFReader(model.path)

    def scalar(key: str) -> object:
        return reader.fields[key].contents()

    assert scalar("general.architecture") == "llama"
    assert scalar("llama.block_count") == 3
    assert scalar("llama.embedding_length") == 32
    assert scalar("llama.feed_forward_length") == 48
    assert scalar("llama.attention.head_count") == 4
    assert scalar("llama.attention.head_count_kv") == 2
    assert scalar("llama.rope.dimension_count") == 8
    assert scalar("llama.vocab_size") == N_VOCAB
    assert scalar("llama.context_length") == 2048
    assert scalar("llama.attention.layer_norm_rms_epsilon") == pytest.approx(1e-5)
    assert reader.fields["tokenizer.ggml.tokens"].contents()[:4] == ["<unk>", "<s>", "</s>", "tok0"]
    assert scalar("tokenizer.ggml.bos_token_id") == 1

    tensors = {t.name: t for t in reader.tensors}
    assert len(tensors) == 2 + 9 * 3
    assert list(tensors["token_embd.weight"].shape) == [32, N_VOCAB]  # GGUF stores ne0 first
    assert list(tensors["blk.2.attn_k.weight"].shape) == [32, 16]  # n_head_kv * head_dim rows
    assert tensors["blk.0.ffn_down.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    assert np.all(tensors["output_norm.weight"].data == 1.0)
    assert float(np.std(tensors["token_embd.weight"].data)) == pytest.approx(0.02, rel=0.2)


def test_f16_is_the_default_and_norms_stay_f32(synthetic_vocab: Path, tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "m.gguf", seed=1, vocab_gguf_path=synthetic_vocab)
    tensors = {t.name: t for t in gguf.GGUFReader(model.path).tensors}
    assert tensors["blk.0.attn_q.weight"].tensor_type == gguf.GGMLQuantizationType.F16
    assert tensors["blk.0.attn_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32


@pytest.mark.parametrize(
    "spec",
    [
        TinyModelSpec(n_embd=64, n_head=5),
        TinyModelSpec(n_head=4, n_head_kv=3),
        TinyModelSpec(n_embd=12, n_head=4),
        TinyModelSpec(n_layers=0),
    ],
)
def test_inconsistent_specs_are_rejected_before_writing(
    spec: TinyModelSpec, synthetic_vocab: Path, tmp_path: Path
) -> None:
    with pytest.raises(ModelSpecError):
        make_tiny_model(tmp_path / "m.gguf", seed=1, vocab_gguf_path=synthetic_vocab, spec=spec)
    assert list(tmp_path.iterdir()) == []


def test_real_spm_vocab_from_the_engine_cache(llamacpp: EngineInstall, tmp_path: Path) -> None:
    vocab = llamacpp.vocab_path("llama-spm")
    a = make_tiny_model(tmp_path / "a.gguf", seed=42, vocab_gguf_path=vocab)
    b = make_tiny_model(tmp_path / "b.gguf", seed=42, vocab_gguf_path=vocab)
    c = make_tiny_model(tmp_path / "c.gguf", seed=43, vocab_gguf_path=vocab)
    assert a.n_vocab == 32000
    assert a.sha256 == b.sha256 != c.sha256
    tokens = gguf.GGUFReader(a.path).fields["tokenizer.ggml.tokens"]
    original = gguf.GGUFReader(vocab).fields["tokenizer.ggml.tokens"]
    assert tokens.contents() == original.contents()
