"""The classifier head: a stock scikit-learn estimator over each paragraph's text and embedding.

The head stacks two logistic regressions, one on the sentence embedding (meaning, paraphrase) and one
on TF-IDF word n-grams (the framing vocabulary itself: "win-win", "hegemony", "said"), under a third
logistic regression that weighs and calibrates their probabilities. Its input is one object array per
batch: column 0 the paragraph text, the other columns its embedding (see `head_input`).

A saved model is a folder of plain files: `model.json` (metadata, including the sha256
of the head), `head.skops` (the fitted estimator in skops format, loaded only when every
type in it is on an explicit allow-list, so loading never runs code from the file) and
`MODEL_CARD.md`. Files are written to a temporary folder and swapped in, so a crash
leaves the previous model whole.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import StackingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from .errors import ModelError, OutputError

FORMAT_VERSION = 1
HEAD_FILE, META_FILE, CARD_FILE = "head.skops", "model.json", "MODEL_CARD.md"
# Every type a saved head may contain. Anything else in a file means it was not written by us.
TRUSTED_TYPES = [
    "sklearn.ensemble._stacking.StackingClassifier",
    "sklearn.pipeline.Pipeline",
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.preprocessing._function_transformer.FunctionTransformer",  # what "passthrough" becomes once fitted
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.preprocessing._label.LabelEncoder",
    "sklearn.utils._bunch.Bunch",
    "numpy.ndarray", "numpy.dtype", "numpy.float64", "numpy.int64", "numpy.float32",
    "builtins.dict", "builtins.list", "builtins.tuple", "builtins.str", "builtins.int", "builtins.float",
    "builtins.bool", "builtins.NoneType", "builtins.slice",
]
MAX_HEAD_BYTES = 512 * 2**20  # a head inflates to ~16 MB; refuse to inflate a zip bomb
TEXT, EMBEDDING = 0, slice(1, None)  # the columns of the head's input


@dataclass(frozen=True)
class HeadOptions:
    """The classifier's settings; one place for its defaults (chosen on grouped CV, see bench/accuracy.py)."""

    C: float = 10.0  # the embedding regression's inverse regularisation
    text_C: float = 30.0  # the TF-IDF regression's
    min_df: int = 2  # an n-gram must occur in two training paragraphs: drops names and typos, keeps the file small
    class_weight: str | None = "balanced"
    n_folds: int = 5  # cross-validation that reports quality
    stack_folds: int = 5  # inner folds that give the top regression out-of-fold probabilities to learn from
    seed: int = 0


def head_input(texts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
    """One row per paragraph: its text in column TEXT, its embedding in columns EMBEDDING."""
    rows = np.empty((len(texts), 1 + embeddings.shape[1]), dtype=object)
    rows[:, TEXT] = list(texts)
    rows[:, EMBEDDING] = np.asarray(embeddings, dtype=np.float64)
    return rows


def build_head(options: HeadOptions = HeadOptions()) -> StackingClassifier:
    """Embedding LR and TF-IDF LR, stacked under a plain LR that weighs and calibrates their probabilities.

    The embedding alone misses lexical cues that define the labels (official slogans, distancing verbs);
    TF-IDF alone misses paraphrase and is badly calibrated; stacked, both improve on grouped CV.
    """
    def regression(C: float) -> LogisticRegression:
        return LogisticRegression(C=C, class_weight=options.class_weight, max_iter=5000, random_state=options.seed)

    embedding = Pipeline([("columns", ColumnTransformer([("embedding", "passthrough", EMBEDDING)])),
                          ("logreg", regression(options.C))])
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=options.min_df)
    text = Pipeline([("columns", ColumnTransformer([("tfidf", words, TEXT)])), ("logreg", regression(options.text_C))])
    return StackingClassifier([("embedding", embedding), ("text", text)], final_estimator=LogisticRegression(),
                              cv=options.stack_folds)


def fit_head(X: np.ndarray, y: np.ndarray, options: HeadOptions = HeadOptions()) -> StackingClassifier:
    """Fit the head on `head_input` rows; the inner folds shrink to what the rarest label allows."""
    head = build_head(options).set_params(cv=_n_folds(y, options.stack_folds))
    try:
        # One BLAS thread: these fits are small, and with torch loaded, threads only fight (3.5x slower here).
        with threadpool_limits(1):
            return head.fit(X, y)
    except ValueError as error:
        if "no terms remain" in str(error) or "empty vocabulary" in str(error):
            raise ModelError("the labelled paragraphs share too few words to build the text features; "
                             "add labelled paragraphs") from None
        raise


def top_terms(head: StackingClassifier, labels: Sequence[str], n: int = 12) -> dict[str, list[str]]:
    """The n-grams that most raise each label's probability in the text half of the head."""
    text = head.named_estimators_["text"]
    vocabulary = text.named_steps["columns"].named_transformers_["tfidf"].get_feature_names_out()
    coef = text.named_steps["logreg"].coef_
    if coef.shape[0] == 1:  # two classes: one row of weights, for the second class
        coef = np.vstack([-coef, coef])
    return {labels[int(c)]: [str(vocabulary[j]) for j in np.argsort(-coef[row])[:n]]
            for row, c in enumerate(text.named_steps["logreg"].classes_)}


# --- cross-validation ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Metrics:
    macro_f1: float
    per_label: dict[str, dict[str, float]]  # label -> precision, recall, f1, support
    confusion: list[list[int]]  # rows: true label, columns: predicted, in scheme order
    ece: float
    labels: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        return {"macro_f1": self.macro_f1, "per_label": self.per_label, "confusion": self.confusion,
                "ece": self.ece, "labels": list(self.labels)}


def evaluate_predictions(y_true: np.ndarray, proba: np.ndarray, labels: tuple[str, ...]) -> Metrics:
    """Macro-F1, per-label precision/recall/F1, confusion matrix and ECE from class probabilities."""
    y_pred = proba.argmax(axis=1)
    codes = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=codes,
                                                                     zero_division=0)
    per_label = {label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                         "support": int(support[i])} for i, label in enumerate(labels)}
    return Metrics(macro_f1=float(f1_score(y_true, y_pred, labels=codes, average="macro", zero_division=0)),
                   per_label=per_label,
                   confusion=confusion_matrix(y_true, y_pred, labels=codes).tolist(),
                   ece=expected_calibration_error(y_true, proba), labels=labels)


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> float:
    """Top-label ECE: the gap between confidence and accuracy, averaged over equal-width bins."""
    if len(y_true) == 0:
        return 0.0
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    gap = 0.0
    for b in range(n_bins):
        members = bins == b
        if members.any():
            gap += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(gap)


def out_of_fold_proba(X: np.ndarray, y: np.ndarray, n_labels: int, options: HeadOptions,
                      groups: np.ndarray | None = None) -> np.ndarray:
    """Probabilities for every `head_input` row from a head that never saw it (stratified, or grouped k-fold)."""
    if groups is None:
        folds = StratifiedKFold(n_splits=_n_folds(y, options.n_folds), shuffle=True, random_state=options.seed)
        splits = folds.split(X, y)
    else:
        n_groups = len(np.unique(groups))
        folds = StratifiedGroupKFold(n_splits=min(options.n_folds, n_groups), shuffle=True,
                                     random_state=options.seed)
        splits = folds.split(X, y, groups)
    proba = np.zeros((len(y), n_labels))
    for train, test in splits:
        head = fit_head(X[train], y[train], options)
        proba[np.ix_(test, head.classes_)] = head.predict_proba(X[test])
    return proba


def _n_folds(y: np.ndarray, wanted: int) -> int:
    smallest = int(np.unique(y, return_counts=True)[1].min()) if len(y) else 0  # labels present only
    if smallest < 2:
        raise ModelError("every label needs at least 2 labelled paragraphs to cross-validate; add examples")
    return min(wanted, smallest)


# --- saving and loading ---------------------------------------------------------------------------

@dataclass
class Model:
    head: StackingClassifier
    meta: dict

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.meta["scheme"]["labels"])

    @property
    def embedder_name(self) -> str:
        return self.meta["embedder"]["name"]

    def predict_proba(self, texts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        """Probabilities in scheme order, whatever order the head learned its classes in."""
        proba = np.zeros((len(texts), len(self.labels)))
        if len(texts):
            proba[:, self.head.classes_] = self.head.predict_proba(head_input(texts, embeddings))
        return proba


def save_model(model: Model, folder: str | os.PathLike, card: str) -> Path:
    """Write the model folder atomically: build it beside the target, then swap it in."""
    import skops.io as sio

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} is a file; give --model a folder path for the model")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / META_FILE).is_file():
        raise OutputError(f"{folder} holds files that are not a framing model; choose another --model folder")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    except OSError as error:
        raise OutputError(f"cannot write the model under {folder.parent} ({error.strerror})") from None
    try:
        head_bytes = sio.dumps(model.head, compression=zipfile.ZIP_DEFLATED)  # the TF-IDF vocabulary: 15 MB -> 0.5
        (staging / HEAD_FILE).write_bytes(head_bytes)
        meta = dict(model.meta, head_sha256=hashlib.sha256(head_bytes).hexdigest())
        meta["meta_sha256"] = meta_digest(meta)
        (staging / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (staging / CARD_FILE).write_text(card, encoding="utf-8")
        _swap_in(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _swap_in(staging: Path, folder: Path) -> None:
    """Replace `folder` by `staging` with renames; the old model survives until the new one is in place."""
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}-{time.time_ns()}")
    try:
        if folder.exists():
            os.rename(folder, old)
        os.rename(staging, folder)
    except BaseException:  # OSError, and Ctrl-C or SIGTERM between the two renames: put the old model back
        if old.exists() and not folder.exists():
            os.rename(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


def load_model(folder: str | os.PathLike) -> Model:
    """Load a model folder, refusing anything damaged, edited, or holding types outside the allow-list."""
    import skops.io as sio

    folder = Path(folder)
    meta_path, head_path = folder / META_FILE, folder / HEAD_FILE
    if not meta_path.is_file() or not head_path.is_file():
        raise ModelError(f"no model at {folder}: run `framing train` first, or point --model at a model folder")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        head_bytes = head_path.read_bytes()
    except (OSError, ValueError, RecursionError):  # ValueError: bad JSON or UTF-8, a number too long
        raise ModelError(f"{meta_path}: unreadable model metadata; retrain with `framing train`") from None
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION or \
            not _meta_complete(meta):
        raise ModelError(f"{folder}: not a framing model of format {FORMAT_VERSION}; retrain with `framing train`")
    if hashlib.sha256(head_bytes).hexdigest() != meta.get("head_sha256"):
        raise ModelError(f"{head_path}: does not match the hash in {META_FILE} (damaged or edited); "
                         "retrain with `framing train` or restore the model")
    if meta_digest(meta) != meta.get("meta_sha256"):
        raise ModelError(f"{meta_path}: does not match its stored hash (edited by hand?); "
                         "retrain with `framing train` or restore the model")
    try:
        present = types_in_skops(head_bytes)  # first: it refuses a zip bomb before skops inflates it
        untrusted = sio.get_untrusted_types(data=head_bytes)
    except Exception:  # skops raises various errors on a damaged archive; none may escape as a traceback
        raise ModelError(f"{head_path}: not a readable skops file; retrain with `framing train`") from None
    refused = sorted((set(untrusted) | present) - set(TRUSTED_TYPES))
    if refused:
        raise ModelError(f"{head_path}: refusing to load types outside the allow-list ({', '.join(refused[:3])}); "
                         "only load models trained by framing")
    try:
        head = sio.loads(head_bytes, trusted=sorted(set(untrusted)))
    except Exception:
        raise ModelError(f"{head_path}: the head cannot be rebuilt; retrain with `framing train`") from None
    n_labels = len(meta["scheme"]["labels"])
    classes = getattr(head, "classes_", None) if isinstance(head, StackingClassifier) else None
    if classes is None or len(classes) > n_labels or \
            not all(isinstance(c, (int, np.integer)) and 0 <= c < n_labels for c in classes):
        raise ModelError(f"{head_path}: the head does not fit the scheme in {META_FILE}; retrain")
    expected = 1 + meta["embedder"]["dimension"]  # the text, then the embedding
    if getattr(head, "n_features_in_", expected) != expected:
        raise ModelError(f"{head_path}: the head takes {head.n_features_in_ - 1}-dimensional embeddings, "
                         f"{META_FILE} says {meta['embedder']['dimension']} (edited?); retrain with `framing train`")
    return Model(head=head, meta=meta)


def meta_digest(meta: dict) -> str:
    """sha256 of the metadata (head hash included, its own hash excluded), in canonical JSON."""
    body = {key: value for key, value in meta.items() if key != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def types_in_skops(data: bytes) -> set[str]:
    """Every `module.Class` (functions too) named anywhere in a skops file's schema, read as plain JSON.

    skops' own check trusts all of scikit-learn; ours allows only the types a framing head is built of.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        # Every member, not just the schema: skops inflates the arrays too. zipfile reads no more than
        # each member's declared size, so the declared sizes bound what loading can inflate.
        if sum(member.file_size for member in archive.infolist()) > MAX_HEAD_BYTES:
            raise ValueError("the archive is implausibly large")
        schema = json.loads(archive.read("schema.json"))
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("__module__"), str) and isinstance(node.get("__class__"), str):
                found.add(f"{node['__module__']}.{node['__class__']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _meta_complete(meta: dict) -> bool:
    scheme, embedder = meta.get("scheme"), meta.get("embedder")
    labels = scheme.get("labels") if isinstance(scheme, dict) else None
    return isinstance(labels, list) and all(isinstance(label, str) and label for label in labels) and \
        len(set(labels)) == len(labels) and \
        isinstance(embedder, dict) and isinstance(embedder.get("name"), str) and \
        isinstance(embedder.get("dimension"), int)
