"""The labelled paragraphs nearest to a scored one: why it was scored as it was, for the report's reader.

Saved in the model folder at train time as plain data (`labelled.json`: texts and labels;
`labelled.npz`: their normalised embeddings as float16), hash-checked like every model file.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import ModelError

TEXTS_FILE, VECTORS_FILE = "labelled.json", "labelled.npz"
K = 3


@dataclass(frozen=True)
class NeighbourIndex:
    texts: tuple[str, ...]
    labels: tuple[str, ...]
    vectors: np.ndarray  # float32[m, d], rows of unit length

    def query(self, embeddings: np.ndarray, k: int = K) -> list[list[tuple[int, float]]]:
        """For each row, the k nearest labelled paragraphs as (row in the labelled set, cosine similarity)."""
        if not len(embeddings) or not len(self.texts):
            return [[] for _ in range(len(embeddings))]
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        similarity = (embeddings / np.where(norms == 0, 1, norms)) @ self.vectors.T
        k = min(k, similarity.shape[1])
        top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        rows = []
        for i, candidates in enumerate(top):
            ordered = sorted(candidates, key=lambda j: (-similarity[i, j], j))  # ties by position: deterministic
            rows.append([(int(j), round(float(similarity[i, j]), 4)) for j in ordered])
        return rows

    def to_files(self) -> dict[str, bytes]:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, vectors=self.vectors.astype(np.float16))
        texts = json.dumps({"texts": list(self.texts), "labels": list(self.labels)}, ensure_ascii=False)
        return {TEXTS_FILE: texts.encode(), VECTORS_FILE: buffer.getvalue()}

    @classmethod
    def from_files(cls, texts: bytes, vectors: bytes, where: str) -> NeighbourIndex:
        try:
            data = json.loads(texts.decode("utf-8"))
            with np.load(io.BytesIO(vectors), allow_pickle=False) as npz:
                matrix = np.asarray(npz["vectors"], dtype=np.float32)
            names, labels = tuple(data["texts"]), tuple(data["labels"])
            if not all(isinstance(t, str) for t in names + labels) or len(names) != len(labels) or \
                    matrix.ndim != 2 or len(matrix) != len(names) or not np.isfinite(matrix).all():
                raise ValueError("inconsistent")
        except (ValueError, KeyError, TypeError, OSError, EOFError, NotImplementedError):
            raise ModelError(f"{where}: the labelled paragraphs saved with the model are unreadable; "
                             "retrain the model") from None
        return cls(names, labels, matrix)


def build_index(texts: Sequence[str], labels: Sequence[str], embeddings: np.ndarray) -> NeighbourIndex:
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return NeighbourIndex(tuple(texts), tuple(labels),
                          np.asarray(embeddings / np.where(norms == 0, 1, norms), dtype=np.float32))
