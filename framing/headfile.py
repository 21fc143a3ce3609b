"""The fitted head as plain data: `head.json` (structure, parameters, TF-IDF vocabulary) and `head.npz`
(the weights, NumPy arrays loaded with allow_pickle=False).

Neither format can carry code, so loading a model never runs anything from its files, with no
allow-list to keep up to date; and loading imports no serialisation library (skops costs 2 s of
start-up, enumerating every scikit-learn estimator). The loaded head gives the fitted StackingClassifier's
probabilities (tested to 1e-12), computed with NumPy alone: scoring never imports scikit-learn.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import ModelError

FORMAT = "framing-stack-1"
MAX_HEAD_BYTES = 512 * 2**20  # a head inflates to ~20 MB; refuse to inflate a zip bomb
# The parameters of the stock parts that prediction depends on, and their JSON types.
_TFIDF_PARAMS = {"lowercase": bool, "strip_accents": (str, type(None)), "token_pattern": str, "analyzer": str,
                 "ngram_range": list, "norm": (str, type(None)), "use_idf": bool, "smooth_idf": bool,
                 "sublinear_tf": bool, "binary": bool}


def export_head(head, text_column: int, embedding_columns: slice) -> tuple[dict, dict[str, np.ndarray]]:
    """The fitted StackingClassifier of `classify.build_head` as (JSON spec, arrays)."""
    embedding = head.named_estimators_["embedding"].named_steps["logreg"]
    text = head.named_estimators_["text"]
    tfidf = text.named_steps["columns"].named_transformers_["tfidf"]
    text_lr = text.named_steps["logreg"]
    params = tfidf.get_params()
    spec = {"format": FORMAT, "classes": [int(c) for c in head.classes_],
            "text_column": text_column, "embedding_start": embedding_columns.start,
            "n_features": int(head.n_features_in_),
            "tfidf": {name: list(params[name]) if name == "ngram_range" else params[name] for name in _TFIDF_PARAMS},
            "vocabulary": {term: int(i) for term, i in tfidf.vocabulary_.items()}}
    arrays = {"idf": tfidf.idf_}
    for name, lr in (("embedding", embedding), ("text", text_lr), ("final", head.final_estimator_)):
        arrays[f"{name}_coef"], arrays[f"{name}_intercept"] = lr.coef_, lr.intercept_
        arrays[f"{name}_classes"] = lr.classes_
    return spec, arrays


def arrays_to_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


@dataclass
class Regression:
    """A fitted logistic regression as its weights: predict_proba as scikit-learn computes it."""

    coef: np.ndarray  # float[rows, features]; one row for two classes
    intercept: np.ndarray
    n_classes: int

    def predict_proba(self, decision_input) -> np.ndarray:
        return self.from_decision(decision_input @ self.coef.T + self.intercept)

    def from_decision(self, decision: np.ndarray) -> np.ndarray:
        if self.n_classes == 2:  # one decision column: the second class's log-odds
            positive = 1 / (1 + np.exp(-decision[:, 0]))
            return np.column_stack([1 - positive, positive])
        decision = decision - decision.max(axis=1, keepdims=True)
        exp = np.exp(decision)
        return exp / exp.sum(axis=1, keepdims=True)


@dataclass
class WordTfidf:
    """scikit-learn's TfidfVectorizer transform for the parameters the head uses (word n-grams, lower case,
    sublinear tf, l2 norm), fused with the regression over it: no sparse matrix, and no scikit-learn
    import when scoring (it costs 1.4 s of start-up). The tests pin it to scikit-learn's own output."""

    vocabulary: dict[str, int]
    idf: np.ndarray
    token_pattern: re.Pattern
    ngram_range: tuple[int, int]
    lowercase: bool
    sublinear_tf: bool
    norm: str | None

    @classmethod
    def supports(cls, params: dict) -> bool:
        return (params["analyzer"] == "word" and params["strip_accents"] is None and params["use_idf"]
                and not params["binary"] and params["norm"] in ("l2", None))

    def terms(self, text: str) -> list[str]:
        tokens = self.token_pattern.findall(text.lower() if self.lowercase else text)
        low, high = self.ngram_range
        found = list(tokens) if low == 1 else []
        for n in range(max(low, 2), high + 1):
            found += [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
        return found

    def decision(self, texts, regression: Regression) -> np.ndarray:
        out = np.tile(regression.intercept, (len(texts), 1)).astype(np.float64)
        for row, text in enumerate(texts):
            columns, counts = np.unique([self.vocabulary[t] for t in self.terms(text) if t in self.vocabulary],
                                        return_counts=True)
            if not len(columns):
                continue
            weights = (1 + np.log(counts) if self.sublinear_tf else counts.astype(np.float64)) * self.idf[columns]
            if self.norm == "l2":
                weights = weights / np.sqrt((weights ** 2).sum())
            out[row] += regression.coef[:, columns] @ weights
        return out


@dataclass
class PlainHead:
    """The stacked head rebuilt for prediction: embedding LR and TF-IDF LR under a final LR."""

    classes_: np.ndarray
    n_features_in_: int
    text_column: int
    embedding_start: int
    tfidf: WordTfidf
    embedding_lr: Regression
    text_lr: Regression
    final_lr: Regression

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        embedded = np.asarray(X[:, self.embedding_start:], dtype=np.float64)
        words = self.text_lr.from_decision(self.tfidf.decision(list(X[:, self.text_column]), self.text_lr))
        meta = [self._stacked(self.embedding_lr.predict_proba(embedded)), self._stacked(words)]
        return self.final_lr.predict_proba(np.hstack(meta))

    def _stacked(self, proba: np.ndarray) -> np.ndarray:
        # As StackingClassifier does: with two classes the first column is redundant and left out.
        return proba[:, 1:] if len(self.classes_) == 2 else proba


def load_head(spec_bytes: bytes, array_bytes: bytes, where: str) -> PlainHead:
    """Rebuild the head from its two files; ModelError for anything malformed, however crafted."""
    try:
        spec = json.loads(spec_bytes.decode("utf-8"))
        arrays = _read_arrays(array_bytes)
        return _build(spec, arrays)
    except ModelError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, zipfile.BadZipFile,
            OSError, EOFError, NotImplementedError):  # NotImplementedError: a zip feature (version) zipfile lacks
        raise ModelError(f"{where}: not a readable framing head; retrain the model") from None


def _read_arrays(data: bytes) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        # zipfile reads no more than each member's declared size, so the declared sizes bound the inflation.
        if sum(member.file_size for member in archive.infolist()) > MAX_HEAD_BYTES:
            raise ValueError("the archive is implausibly large")
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:  # object arrays (pickles) are refused
        return {name: npz[name] for name in npz.files}


def _build(spec: dict, arrays: dict[str, np.ndarray]) -> PlainHead:
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise ValueError("unknown head format")
    params = spec["tfidf"]
    for name, kind in _TFIDF_PARAMS.items():
        if not isinstance(params[name], kind):
            raise ValueError(f"bad TF-IDF parameter {name}")
    if not WordTfidf.supports(params):
        raise ValueError("TF-IDF parameters this loader does not reproduce")
    vocabulary = spec["vocabulary"]
    if not isinstance(vocabulary, dict) or not all(isinstance(i, int) and 0 <= i < len(vocabulary)
                                                   for i in vocabulary.values()):
        raise ValueError("bad vocabulary")
    low, high = params["ngram_range"]
    tfidf = WordTfidf(vocabulary=vocabulary, idf=_numeric(arrays["idf"], (len(vocabulary),)).astype(np.float64),
                      token_pattern=re.compile(params["token_pattern"]), ngram_range=(int(low), int(high)),
                      lowercase=params["lowercase"], sublinear_tf=params["sublinear_tf"], norm=params["norm"])
    classes = np.asarray(spec["classes"], dtype=int)
    n_features = int(spec["n_features"])
    embedding_start = int(spec["embedding_start"])
    return PlainHead(classes_=classes, n_features_in_=n_features, text_column=int(spec["text_column"]),
                     embedding_start=embedding_start, tfidf=tfidf,
                     embedding_lr=_logreg(arrays, "embedding", n_features - embedding_start),
                     text_lr=_logreg(arrays, "text", len(vocabulary)),
                     final_lr=_logreg(arrays, "final", None))


def _numeric(array: np.ndarray, shape: Sequence[int | None]) -> np.ndarray:
    if array.dtype.kind not in "fi" or array.ndim != len(shape) or \
            any(want is not None and got != want for got, want in zip(array.shape, shape)) or \
            not np.isfinite(array).all():
        raise ValueError("an array of the wrong type or shape")
    return array


def _logreg(arrays: dict[str, np.ndarray], name: str, n_features: int | None) -> Regression:
    classes = _numeric(arrays[f"{name}_classes"], (None,)).astype(int)
    rows = 1 if len(classes) == 2 else len(classes)
    return Regression(coef=_numeric(arrays[f"{name}_coef"], (rows, n_features)).astype(np.float64),
                      intercept=_numeric(arrays[f"{name}_intercept"], (rows,)).astype(np.float64),
                      n_classes=len(classes))
