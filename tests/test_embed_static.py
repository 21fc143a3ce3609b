"""The static (model2vec) embedder read with numpy: the same vectors as sentence-transformers' own module."""

from __future__ import annotations

import json

import numpy as np
import pytest

from framing.embed import SentenceTransformerEmbedder, StaticEmbedder, embedder_named, is_static_folder
from framing.errors import ModelError

WORDS = ["[UNK]", "the", "minister", "said", "nato", "expansion", "threatens", "peace", "talks", "in", "moscow"]


def write_static_folder(folder, table: np.ndarray, extra: dict | None = None, key: str = "embeddings",
                        normalize: bool = True) -> None:
    """A real sentence-transformers static folder: a word-level tokenizer, a safetensors table, modules.json."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.enable_truncation(max_length=4)  # as a distilled model's tokenizer is saved: the loader lifts it
    tokenizer.save(str(folder / "tokenizer.json"))
    save_file({key: table, **(extra or {})}, str(folder / "model.safetensors"))
    modules = [{"idx": 0, "name": "0", "path": ".", "type": "sentence_transformers.models.StaticEmbedding"}]
    if normalize:
        modules.append({"idx": 1, "name": "1", "path": "1_Normalize", "type": "sentence_transformers.models.Normalize"})
        (folder / "1_Normalize").mkdir(exist_ok=True)
    (folder / "modules.json").write_text(json.dumps(modules))


@pytest.fixture
def table():
    return np.random.default_rng(0).normal(size=(len(WORDS), 6)).astype(np.float32)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def test_a_static_folder_is_read_with_numpy_as_the_mean_of_its_token_vectors(tmp_path, table):
    write_static_folder(tmp_path / "m", table)
    embedder = embedder_named(str(tmp_path / "m"))
    assert isinstance(embedder, StaticEmbedder) and embedder.dimension == 6
    vectors = embedder.embed(["the minister said", "nato nato peace", "", "zebra"])
    assert vectors.dtype == np.float32 and vectors.shape == (4, 6)
    np.testing.assert_allclose(vectors[0], unit(table[[1, 2, 3]].mean(0)), atol=1e-6)
    np.testing.assert_allclose(vectors[1], unit(table[[4, 4, 7]].mean(0)), atol=1e-6)  # a repeat counts twice
    assert not vectors[2].any()  # no tokens: a zero vector, never NaN
    np.testing.assert_allclose(vectors[3], unit(table[0]), atol=1e-6)  # unknown words are [UNK]


def test_a_long_text_is_averaged_whole_not_cut_at_the_tokenizers_limit(tmp_path, table):
    write_static_folder(tmp_path / "m", table)
    long_text = "the minister said nato expansion threatens peace"  # 7 tokens, the saved limit is 4
    vector = embedder_named(str(tmp_path / "m")).embed([long_text])[0]
    np.testing.assert_allclose(vector, unit(table[[1, 2, 3, 4, 5, 6, 7]].mean(0)), atol=1e-6)
    assert not np.allclose(vector, unit(table[[1, 2, 3, 4]].mean(0)), atol=1e-3)


def test_the_vectors_match_sentence_transformers_static_module(tmp_path, table):
    write_static_folder(tmp_path / "m", table.astype(np.float16))  # as make fast-embedder saves it
    texts = ["the minister said", "talks in moscow", "nato expansion threatens peace"]  # within the limit
    ours = embedder_named(str(tmp_path / "m")).embed(texts)
    theirs = SentenceTransformerEmbedder(str(tmp_path / "m")).embed(texts)
    np.testing.assert_allclose(ours, theirs, atol=2e-3)  # theirs are computed in float16


def test_model2vec_mapping_and_token_weights_are_folded_in(tmp_path, table):
    mapping = np.arange(len(WORDS))[::-1].copy()
    weights = np.linspace(0.5, 1.5, len(WORDS)).astype(np.float32)
    write_static_folder(tmp_path / "m", table, {"mapping": mapping, "weights": weights})
    vector = embedder_named(str(tmp_path / "m")).embed(["the minister"])[0]
    rows = table[mapping[[1, 2]]] * weights[[1, 2], None]
    np.testing.assert_allclose(vector, unit(rows.mean(0)), atol=1e-6)


def test_other_folders_stay_with_sentence_transformers_and_fingerprints_never_mix(tmp_path, table):
    write_static_folder(tmp_path / "m", table)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "modules.json").write_text(json.dumps(
        [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]))
    assert is_static_folder(str(tmp_path / "m")) and not is_static_folder(str(tmp_path / "other"))
    assert not is_static_folder(str(tmp_path / "missing"))
    assert isinstance(embedder_named(str(tmp_path / "other")), SentenceTransformerEmbedder)
    ours = StaticEmbedder(str(tmp_path / "m")).fingerprint
    assert ours != SentenceTransformerEmbedder(str(tmp_path / "m")).fingerprint  # their float16 vectors differ


@pytest.mark.parametrize("damage", ["table", "vocabulary", "no-table"])
def test_a_damaged_static_folder_fails_with_a_model_error(tmp_path, table, damage):
    if damage == "no-table":
        write_static_folder(tmp_path / "m", table, key="something_else")
    else:
        write_static_folder(tmp_path / "m", table[:5] if damage == "vocabulary" else table)
    if damage == "table":
        (tmp_path / "m" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="static embedder"):
        embedder_named(str(tmp_path / "m")).embed(["the minister"])
