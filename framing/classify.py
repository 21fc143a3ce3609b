"""The classifier head: a stock scikit-learn estimator over each paragraph's text and embedding.

The head stacks two logistic regressions, one on the sentence embedding (meaning, paraphrase) and one
on TF-IDF word n-grams (the framing vocabulary itself: "win-win", "hegemony", "said"), under a third
logistic regression that weighs and calibrates their probabilities. Its input is one object array per
batch: column 0 the paragraph text, the other columns its embedding (see `head_input`).

A saved model is a folder of plain files: `model.json` (metadata, with the sha256 of every other
file and of itself), `head.json` + `head.npz` (the fitted head as JSON and plain arrays, see
`headfile`: nothing in them can run code), `calibration.json` (the grouped out-of-fold
probabilities that corrected prevalence needs) and `MODEL_CARD.md`. Files are written to a
staging folder and swapped in, so a crash leaves the previous model whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # scikit-learn loads only to train and evaluate: scoring a saved model needs NumPy alone
    from sklearn.ensemble import StackingClassifier

from .errors import ModelError, OutputError
from .files import apply_umask, make_staging_folder, swap_in, write_error
from .headfile import MAX_HEAD_BYTES, arrays_to_bytes, export_head, load_head

FORMAT_VERSION = 2  # 2: the head as JSON + plain arrays (1 was a skops file)
HEAD_FILE, WEIGHTS_FILE, META_FILE, CARD_FILE = "head.json", "head.npz", "model.json", "MODEL_CARD.md"
CALIBRATION_FILE = "calibration.json"  # grouped out-of-fold probabilities: what corrected prevalence needs
TEXT, EMBEDDING = 0, slice(1, None)  # the columns of the head's input
Fit = Callable[[np.ndarray, np.ndarray, "HeadOptions"], object]  # (X, y, options) -> a fitted classifier


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
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import StackingClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

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
    from threadpoolctl import threadpool_limits

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


def evaluate_predictions(y_true: np.ndarray, proba: np.ndarray, labels: tuple[str, ...],
                         present: Sequence[str] | None = None) -> Metrics:
    """Macro-F1, per-label precision/recall/F1, confusion matrix and ECE from class probabilities.

    `present`: the labels macro-F1 averages over (default: all). A label with no support in the data
    has no F1 to speak of; counting it as 0 would understate every other label.
    """
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    y_pred = proba.argmax(axis=1)
    codes = list(range(len(labels)))
    averaged = [labels.index(label) for label in present] if present is not None else codes
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=codes,
                                                                     zero_division=0)
    per_label = {label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                         "support": int(support[i])} for i, label in enumerate(labels)}
    return Metrics(macro_f1=float(f1_score(y_true, y_pred, labels=averaged, average="macro", zero_division=0)),
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
                      groups: np.ndarray | None = None, fit: Fit | None = None) -> np.ndarray:
    """Probabilities for every `head_input` row from a head that never saw it (stratified, or grouped k-fold).
    `fit(X, y, options)` fits another head on the same folds (default: fit_head)."""
    fit = fit or fit_head
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

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
        head = fit(X[train], y[train], options)
        proba[np.ix_(test, head.classes_)] = head.predict_proba(X[test])
    return proba


def held_out_proba(X: np.ndarray, y: np.ndarray, n_labels: int, options: HeadOptions, held_out: np.ndarray,
                   groups: np.ndarray, fit: Fit | None = None, training: np.ndarray | None = None) -> np.ndarray:
    """Probabilities for the rows in `held_out`, each of its groups predicted by a head fitted on every other
    row (the other held-out groups included): real articles held out in turn. `fit` as out_of_fold_proba's;
    `training`, if given, limits the fits to those rows (a held-out group is still predicted whole)."""
    fit = fit or fit_head
    proba = np.zeros((int(held_out.sum()), n_labels))
    positions = np.flatnonzero(held_out)
    for group in np.unique(groups[held_out]):
        test = held_out & (groups == group)
        rows = ~test if training is None else training & ~test
        head = fit(X[rows], y[rows], options)
        proba[np.ix_(np.isin(positions, np.flatnonzero(test)), head.classes_)] = head.predict_proba(X[test])
    return proba


def temper(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities with their log-odds divided by `temperature` (above 1: less confident)."""
    if temperature == 1.0:
        return proba
    logits = np.log(np.clip(proba, 1e-12, 1)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(proba: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the log-loss of `proba` on `y` (a grid over log T: no optimiser)."""
    grid = np.exp(np.linspace(np.log(0.5), np.log(4.0), 81))
    losses = [-np.log(np.clip(temper(proba, t)[np.arange(len(y)), y], 1e-12, 1)).mean() for t in grid]
    return float(round(grid[int(np.argmin(losses))], 4))


def _n_folds(y: np.ndarray, wanted: int) -> int:
    smallest = int(np.unique(y, return_counts=True)[1].min()) if len(y) else 0  # labels present only
    if smallest < 2:
        raise ModelError("every label needs at least 2 labelled paragraphs to cross-validate; add examples")
    return min(wanted, smallest)


# --- saving and loading ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelMeta:
    """A model folder's `model.json` as a typed value: what scoring needs to know, checked once.

    `raw` keeps the whole document: it is what the stored hash covers and what the model card reads.
    """

    labels: tuple[str, ...]
    scheme_name: str
    definitions: dict[str, str]
    embedder_name: str
    embedder_dimension: int
    multilingual: bool = False  # declared by the embedder: non-English paragraphs then count in the shares
    temperature: float = 1.0  # fitted on real articles held out in turn: probabilities are tempered by it
    created: str | None = None
    grouped_macro_f1: float | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: object, where: str = META_FILE) -> ModelMeta:
        """Validate a parsed `model.json`; ModelError names what is wrong."""
        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION or not _meta_complete(data):
            raise ModelError(f"{where}: not a framing model of format {FORMAT_VERSION}; retrain the model")
        scheme, embedder = data["scheme"], data["embedder"]
        definitions = scheme.get("definitions") if isinstance(scheme.get("definitions"), dict) else {}
        f1 = ((data.get("cv") or {}).get("grouped") or {}).get("macro_f1") if isinstance(data.get("cv"), dict) \
            else None
        head = data.get("head") if isinstance(data.get("head"), dict) else {}
        temperature = head.get("temperature", 1.0)
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not 0.05 <= temperature <= 20:
            raise ModelError(f"{where}: the temperature {temperature!r} is not a plausible value; retrain the model")
        return cls(labels=tuple(scheme["labels"]), scheme_name=str(scheme.get("name", "")),
                   temperature=float(temperature),
                   definitions={str(k): str(v) for k, v in definitions.items()},
                   embedder_name=embedder["name"], embedder_dimension=embedder["dimension"],
                   multilingual=embedder.get("multilingual") is True,
                   created=data.get("created") if isinstance(data.get("created"), str) else None,
                   grouped_macro_f1=float(f1) if isinstance(f1, (int, float)) and not isinstance(f1, bool) else None,
                   raw=data)

    def check_fits(self, embedder) -> None:
        """Refuse an embedder whose vectors this model was not trained on."""
        if self.embedder_name != embedder.name:
            raise ModelError(f"the model was trained on embeddings of {self.embedder_name!r}, not "
                             f"{embedder.name!r}; score with the same embedder or retrain")
        if self.embedder_dimension != embedder.dimension:
            raise ModelError(f"the model expects {self.embedder_dimension}-dimensional embeddings, the embedder "
                             f"gives {embedder.dimension}; retrain the model")


@dataclass
class Model:
    """The head and its metadata, with the optional parts saved beside them: the relevance stage
    (framing.relevance) and the labelled paragraphs for nearest-neighbour evidence (framing.neighbours)."""

    head: StackingClassifier
    meta: ModelMeta
    relevance: object | None = None
    neighbours: object | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        return self.meta.labels

    @property
    def embedder_name(self) -> str:
        return self.meta.embedder_name

    def predict_proba(self, texts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        """Probabilities in scheme order, whatever order the head learned its classes in."""
        proba = np.zeros((len(texts), len(self.labels)))
        if len(texts):
            proba[:, self.head.classes_] = self.head.predict_proba(head_input(texts, embeddings))
        return temper(proba, self.meta.temperature)


def save_model(model: Model, folder: str | os.PathLike, card: str, extra: dict[str, str | bytes] | None = None) -> Path:
    """Write the model folder atomically: build it beside the target, then swap it in.

    `extra`: more files (name -> text or bytes) to store. model.json records every file's hash."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} is a file; give a folder path for the model", option="model")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / META_FILE).is_file():
        raise OutputError(f"{folder} holds files that are not a framing model; choose another folder for the model",
                          option="model")
    spec, arrays = export_head(model.head, TEXT, EMBEDDING)
    files = {HEAD_FILE: json.dumps(spec, ensure_ascii=False).encode(), WEIGHTS_FILE: arrays_to_bytes(arrays)}
    files.update((name, data.encode() if isinstance(data, str) else data) for name, data in (extra or {}).items())
    meta = dict(model.meta.raw, files={name: hashlib.sha256(data).hexdigest() for name, data in files.items()})
    meta["meta_sha256"] = meta_digest(meta)
    files[META_FILE] = (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode()
    files[CARD_FILE] = card.encode()
    staging = make_staging_folder(folder)
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
            apply_umask(staging / name)
        swap_in(staging, folder)
    except OSError as error:
        raise write_error(folder, error) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def load_model(folder: str | os.PathLike) -> Model:
    """Load a model folder, refusing anything damaged or edited. Its files are JSON and plain arrays,
    so nothing in them can run code."""
    folder = Path(folder)
    meta_path = folder / META_FILE
    if not meta_path.is_file() or not (folder / HEAD_FILE).is_file():
        raise ModelError(f"no model at {folder}: train one first, or give the folder of a trained model",
                         option="model")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # ValueError: bad JSON or UTF-8, a number too long
        raise ModelError(f"{meta_path}: unreadable model metadata; retrain the model") from None
    typed = ModelMeta.from_json(meta, str(meta_path))
    if meta_digest(meta) != meta.get("meta_sha256"):
        raise ModelError(f"{meta_path}: does not match its stored hash (edited by hand?); "
                         "retrain the model or restore it")
    spec, weights = (_read_checked(folder, meta, name) for name in (HEAD_FILE, WEIGHTS_FILE))
    head = load_head(spec, weights, str(folder / HEAD_FILE))
    n_labels = len(typed.labels)
    if len(head.classes_) > n_labels or not all(0 <= c < n_labels for c in head.classes_):
        raise ModelError(f"{folder / HEAD_FILE}: the head does not fit the scheme in {META_FILE}; retrain")
    if head.n_features_in_ != 1 + typed.embedder_dimension:  # the text, then the embedding
        raise ModelError(f"{folder / HEAD_FILE}: the head takes {head.n_features_in_ - 1}-dimensional embeddings, "
                         f"{META_FILE} says {typed.embedder_dimension} (edited?); retrain the model")
    return _with_optional_parts(Model(head=head, meta=typed), folder, meta)


def _with_optional_parts(model: Model, folder: Path, meta: dict) -> Model:
    """Attach the relevance stage and the neighbour index where the model folder has them."""
    from .neighbours import TEXTS_FILE, VECTORS_FILE, NeighbourIndex
    from .relevance import RELEVANCE_FILE, RelevanceModel

    files = meta.get("files") if isinstance(meta.get("files"), dict) else {}
    if RELEVANCE_FILE in files:
        model.relevance = RelevanceModel.from_json(_read_checked(folder, meta, RELEVANCE_FILE),
                                                   str(folder / RELEVANCE_FILE))
    if TEXTS_FILE in files and VECTORS_FILE in files:
        model.neighbours = NeighbourIndex.from_files(_read_checked(folder, meta, TEXTS_FILE),
                                                     _read_checked(folder, meta, VECTORS_FILE), str(folder))
    return model


def _read_checked(folder: Path, meta: dict, name: str) -> bytes:
    """A model file's bytes, if they match the hash model.json holds for them."""
    path = folder / name
    expected = (meta.get("files") or {}).get(name) if isinstance(meta.get("files"), dict) else None
    try:
        if path.stat().st_size > MAX_HEAD_BYTES:
            raise ModelError(f"{path}: implausibly large for a model file; retrain the model")
        data = path.read_bytes()
    except OSError:
        raise ModelError(f"no model at {folder}: {name} is missing or unreadable; retrain the model",
                         option="model") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise ModelError(f"{path}: does not match the hash in {META_FILE} (damaged or edited); "
                         "retrain the model or restore it")
    return data


def meta_digest(meta: dict) -> str:
    """sha256 of the metadata (head hash included, its own hash excluded), in canonical JSON."""
    body = {key: value for key, value in meta.items() if key != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _meta_complete(meta: dict) -> bool:
    scheme, embedder = meta.get("scheme"), meta.get("embedder")
    labels = scheme.get("labels") if isinstance(scheme, dict) else None
    return isinstance(labels, list) and all(isinstance(label, str) and label for label in labels) and \
        len(set(labels)) == len(labels) and \
        isinstance(embedder, dict) and isinstance(embedder.get("name"), str) and \
        isinstance(embedder.get("dimension"), int)


def read_model_file(folder: str | os.PathLike, model: Model, name: str) -> str | None:
    """A plain-text file saved beside the head, checked against the hash in model.json; None if absent."""
    expected = (model.meta.raw.get("files") or {}).get(name)
    path = Path(folder) / name
    if expected is None or not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    if hashlib.sha256(text.encode()).hexdigest() != expected:
        raise ModelError(f"{path}: does not match the hash in {META_FILE} (damaged or edited); retrain the model")
    return text
