"""The relevance stage: is a paragraph about Russia, China, the West or their relations at all?

The framing head was trained only on paragraphs about the subject, so on a match report or a recipe it
still names a framing, sometimes confidently. This stage runs first: a class-balanced logistic
regression on the paragraph's (L2-normalised) embedding separates the labelled set (every paragraph is
on topic, whatever its framing label) from `labels/relevance/off_topic.jsonl` (records labelled
"off_topic"). A paragraph whose P(off-topic) reaches the threshold is marked OFF_TOPIC.

The threshold is chosen on grouped out-of-fold probabilities (no authoring batch or document is both
trained and tested on), so that at least `min_on_topic_recall` of on-topic paragraphs stay on topic:
wrongly dropping framed copy hides framing, which is worse than letting a stray recipe through to the
head. Among thresholds that keep that recall, the one that catches the most off-topic paragraphs wins.

The fitted stage is plain JSON (`to_json`/`from_json`: coefficients, intercept, threshold), stored in
the model folder as `relevance.json`; nothing in it can run code.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import LabelError, ModelError
from .labels import Example, Scheme, read_examples

OFF_TOPIC = "off_topic"
RELEVANCE_FILE = "relevance.json"  # its name in the model folder
OFF_TOPIC_FILE = Path("relevance") / "off_topic.jsonl"  # inside the labels folder
FORMAT = "framing-relevance-1"


@dataclass(frozen=True)
class RelevanceOptions:
    """The relevance stage's settings; one place for their defaults (see bench/realcopy.py)."""

    C: float = 1.0
    min_on_topic_recall: float = 0.98
    n_folds: int = 5
    seed: int = 0


# --- the off-topic set --------------------------------------------------------------------------

def off_topic_path(labels: str | os.PathLike) -> Path:
    """Where the off-topic paragraphs live for a labelled set: labels/relevance/off_topic.jsonl."""
    labels = Path(labels)
    return (labels if labels.is_dir() else labels.parent) / OFF_TOPIC_FILE


def read_off_topic(path: str | os.PathLike) -> list[Example]:
    """Read and validate the off-topic paragraphs (JSONL, "label": "off_topic") with the labelled set's
    reader: every problem is reported with its file and line."""
    path = Path(path)
    if not path.is_file():
        raise LabelError(f"{path}: no off-topic paragraphs here; add them (records with \"label\": "
                         f"\"{OFF_TOPIC}\") to train the relevance stage", option="labels")
    return read_examples(path, Scheme(name="relevance", labels=(OFF_TOPIC,), definitions={}), what="off-topic set",
                         wrong_label=lambda label: f"label {label!r}, expected {OFF_TOPIC!r} (framing labels belong "
                                                   "in the labelled set)")


def check_disjoint(on_topic: Sequence[Example], off_topic: Sequence[Example]) -> None:
    """Refuse a paragraph that is both in the labelled set and in the off-topic set."""
    labelled = {e.text.casefold(): e.where for e in on_topic}
    clashes = [f"{e.where}: same text as {labelled[e.text.casefold()]} in the labelled set"
               for e in off_topic if e.text.casefold() in labelled]
    if clashes:
        raise LabelError("a paragraph cannot be both labelled and off-topic: " + "; ".join(clashes[:5]))


# --- pure functions over scores -------------------------------------------------------------------

def choose_threshold(p_on: np.ndarray, p_off: np.ndarray, min_on_topic_recall: float = 0.98) -> float:
    """The threshold on P(off-topic) (off-topic when p >= threshold) that catches the most off-topic
    paragraphs while at least `min_on_topic_recall` of on-topic ones stay below it; among equals, the one
    that keeps the most on-topic paragraphs. Candidates are midpoints between neighbouring scores, so the
    threshold never sits exactly on a training score."""
    p_on, p_off = np.asarray(p_on, dtype=float), np.asarray(p_off, dtype=float)
    if not len(p_on) or not len(p_off):
        raise ModelError("choosing the relevance threshold needs both on-topic and off-topic scores")
    scores = np.unique(np.concatenate([p_on, p_off, [0.0, 1.0]]))
    candidates = np.concatenate([(scores[:-1] + scores[1:]) / 2, [np.nextafter(1.0, 2.0)]])
    on_recall = (p_on[None, :] < candidates[:, None]).mean(axis=1)
    off_recall = (p_off[None, :] >= candidates[:, None]).mean(axis=1)
    feasible = np.flatnonzero(on_recall >= min_on_topic_recall)  # never empty: the last candidate keeps all
    best = max(feasible, key=lambda i: (off_recall[i], on_recall[i]))
    return float(min(candidates[best], 1.0))


def normalise(embeddings: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), so the stage does not depend on the embedder's scale."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.where(norms > 0, norms, 1.0)


# --- the stage ------------------------------------------------------------------------------------

@dataclass
class RelevanceModel:
    """P(off-topic) = sigmoid(coef . normalised embedding + intercept); off-topic when it reaches threshold_.

    Fitted state ends in `_`; `cv_` holds the grouped out-of-fold recalls at the chosen threshold."""

    options: RelevanceOptions = field(default_factory=RelevanceOptions)
    coef_: np.ndarray | None = None
    intercept_: float = 0.0
    threshold_: float = 0.5
    cv_: dict = field(default_factory=dict)

    @property
    def dimension(self) -> int:
        if self.coef_ is None:
            raise ModelError("the relevance stage is not fitted; train the model")
        return int(self.coef_.shape[0])

    def fit(self, embeddings_on: np.ndarray, embeddings_off: np.ndarray, groups_on: Sequence[str] | None = None,
            groups_off: Sequence[str] | None = None) -> RelevanceModel:
        """Choose the threshold on (grouped, when groups are given) out-of-fold probabilities, then fit on all."""
        X, y = _stacked(embeddings_on, embeddings_off)
        groups = None
        if groups_on is not None and groups_off is not None:
            # Prefixed, so an on-topic batch and an off-topic batch of the same name stay two groups.
            groups = np.array([f"on:{g}" for g in groups_on] + [f"off:{g}" for g in groups_off])
        proba = self._out_of_fold(X, y, groups)
        threshold = choose_threshold(proba[y == 0], proba[y == 1], self.options.min_on_topic_recall)
        regression = self._regression().fit(X, y)
        self.coef_, self.intercept_ = regression.coef_[0].copy(), float(regression.intercept_[0])
        self.threshold_ = threshold
        self.cv_ = {"grouped": groups is not None, "n_on_topic": int((y == 0).sum()), "n_off_topic": int(y.sum()),
                    "on_topic_recall": float((proba[y == 0] < threshold).mean()),
                    "off_topic_recall": float((proba[y == 1] >= threshold).mean())}
        return self

    def off_topic_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """P(off-topic) for each row of embeddings: float[n]."""
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dimension:
            raise ModelError(f"the relevance stage expects {self.dimension}-dimensional embeddings, got shape "
                             f"{embeddings.shape}; score with the embedder the model was trained on")
        if not len(embeddings):
            return np.zeros(0)
        logits = normalise(embeddings) @ self.coef_ + self.intercept_
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -500, 500)))

    def is_off_topic(self, embeddings: np.ndarray) -> np.ndarray:
        """bool[n]: the paragraphs this stage marks OFF_TOPIC."""
        return self.off_topic_proba(embeddings) >= self.threshold_

    def to_json(self) -> str:
        """The fitted stage as JSON text: what `relevance.json` holds."""
        return json.dumps({"format": FORMAT, "label": OFF_TOPIC, "dimension": self.dimension,
                           "coef": [float(c) for c in self.coef_], "intercept": self.intercept_,
                           "threshold": self.threshold_, "options": asdict(self.options), "cv": self.cv_})

    @classmethod
    def from_json(cls, data: str | bytes | dict, where: str = RELEVANCE_FILE) -> RelevanceModel:
        """Rebuild a fitted stage from `to_json`'s text (or its parsed dict); ModelError for anything malformed."""
        try:
            if isinstance(data, (str, bytes)):
                data = json.loads(data)
            return _from_dict(data)
        except (ValueError, TypeError, KeyError, RecursionError):
            raise ModelError(f"{where}: not a readable relevance stage; retrain the model") from None

    def _regression(self):
        from sklearn.linear_model import LogisticRegression

        # Balanced: the off-topic set is a fraction of the labelled set, and a missed class is the costly error.
        return LogisticRegression(C=self.options.C, class_weight="balanced", max_iter=5000,
                                  random_state=self.options.seed)

    def _out_of_fold(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
        from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

        smallest = int(min((y == 0).sum(), (y == 1).sum()))
        if smallest < 2 or (groups is not None and min(len(set(groups[y == c])) for c in (0, 1)) < 2):
            raise ModelError("the relevance stage needs at least 2 on-topic and 2 off-topic paragraphs (from 2 "
                             "batches each) to choose its threshold; add off-topic paragraphs")
        if groups is None:
            splits = StratifiedKFold(min(self.options.n_folds, smallest), shuffle=True,
                                     random_state=self.options.seed).split(X, y)
        else:
            n_folds = min(self.options.n_folds, len(set(groups[y == 0])), len(set(groups[y == 1])))
            splits = StratifiedGroupKFold(n_folds, shuffle=True, random_state=self.options.seed).split(X, y, groups)
        proba = np.zeros(len(y))
        for train, test in splits:
            if len(set(y[train])) < 2:
                raise ModelError("a relevance fold has only one class; add off-topic paragraphs in more batches")
            proba[test] = self._regression().fit(X[train], y[train]).predict_proba(X[test])[:, 1]
        return proba


def fit_relevance(on_topic: Sequence[Example], off_topic: Sequence[Example], embeddings_on: np.ndarray,
                  embeddings_off: np.ndarray, options: RelevanceOptions = RelevanceOptions()) -> RelevanceModel:
    """Fit the stage on the labelled set (on topic) and the off-topic set, grouped by batch/document."""
    check_disjoint(on_topic, off_topic)
    return RelevanceModel(options).fit(embeddings_on, embeddings_off, [e.group for e in on_topic],
                                       [e.group for e in off_topic])


def _stacked(embeddings_on: np.ndarray, embeddings_off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    on, off = np.asarray(embeddings_on), np.asarray(embeddings_off)
    if on.ndim != 2 or off.ndim != 2 or on.shape[1] != off.shape[1]:
        raise ModelError(f"on-topic and off-topic embeddings must be 2-D with the same width, got {on.shape} and "
                         f"{off.shape}")
    return normalise(np.vstack([on, off])), np.concatenate([np.zeros(len(on), int), np.ones(len(off), int)])


def _finite(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError("not a finite number")
    return float(value)


def _whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("not an integer")
    return value


_OPTION_TYPES = {"C": _finite, "min_on_topic_recall": _finite, "n_folds": _whole, "seed": _whole}


def _from_dict(data: object) -> RelevanceModel:
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("label") != OFF_TOPIC:
        raise ValueError("not a relevance stage")
    dimension = data["dimension"]
    coef = data["coef"]
    if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1 or \
            not isinstance(coef, list) or len(coef) != dimension:
        raise ValueError("coefficients of the wrong length")
    threshold = _finite(data["threshold"])
    if not 0.0 < threshold <= 1.0:
        raise ValueError("a threshold outside (0, 1]")
    raw = data.get("options", {})
    if not isinstance(raw, dict):
        raise ValueError("options must be an object")
    options = RelevanceOptions(**{name: kind(raw[name]) for name, kind in _OPTION_TYPES.items() if name in raw})
    cv = data.get("cv") if isinstance(data.get("cv"), dict) else {}
    return RelevanceModel(options=options, coef_=np.array([_finite(c) for c in coef]),
                          intercept_=_finite(data["intercept"]), threshold_=threshold, cv_=cv)
