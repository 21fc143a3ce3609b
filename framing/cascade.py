"""The fast path: a static embedder scores every paragraph, MiniLM re-scores only the uncertain ones.

A static (model2vec) embedder is two orders of magnitude faster than MiniLM but, with the same head,
loses a few points of macro-F1. Most paragraphs are easy, though: where the static head's top two
probabilities are far apart it nearly always agrees with the full model. So the cascade keeps the
static scores where the margin (top probability minus the second) reaches a threshold, and asks the
full model only for the rest. The threshold is chosen on grouped out-of-fold predictions of the
labelled set (`choose_threshold`): the smallest re-scored share whose macro-F1 stays within `max_cost`
of the full model's.

Stored inside the main model folder as a subfolder `fast/`: a complete framing model folder (the
static head, written by `classify.save_model`, hashed like any model) whose `model.json` holds a
`cascade` section (threshold, the main model's `meta_sha256`, the out-of-fold curve), plus
`calibration.json` (the cascade's own grouped out-of-fold probabilities, for corrected prevalence)
and `relevance.json` (the relevance stage refitted on the static embeddings) where the labelled set
has off-topic paragraphs. Retraining the main model swaps its whole folder, so a stale `fast/`
cannot survive it; `load_fast` checks the link anyway.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .classify import (
    CALIBRATION_FILE,
    FORMAT_VERSION,
    HeadOptions,
    Model,
    ModelMeta,
    evaluate_predictions,
    fit_head,
    head_input,
    load_model,
    out_of_fold_proba,
    read_model_file,
    save_model,
    top_terms,
)
from .embed import Embedder
from .errors import ModelError
from .labels import REAL_SOURCES, label_counts, labelled_set_hash, load_scheme, read_examples, scheme_path_for
from .prevalence import Calibration
from .records import Paragraph
from .relevance import RELEVANCE_FILE, RelevanceModel, fit_relevance, off_topic_path, read_off_topic
from .scoring import ScoredBatch, detect_languages

FAST_FOLDER = "fast"  # the static head's folder inside the main model folder
STATIC_OOF_FILE = "static_oof.json"  # the static head's own out-of-fold probabilities: any threshold's calibration
MAX_COST = 0.01  # the macro-F1 the fast path may give up against the full model, on held-out data


# --- pure functions over probabilities ------------------------------------------------------------

def margin(proba: np.ndarray) -> np.ndarray:
    """float[n]: each row's top probability minus its second (1 = certain, 0 = a tie)."""
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[1] < 2:
        raise ValueError(f"expected probabilities of shape (n, k >= 2), got {proba.shape}")
    top2 = np.sort(proba, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def uncertain(proba: np.ndarray, threshold: float) -> np.ndarray:
    """bool[n]: the rows whose margin is below `threshold`. 0 marks none; 1 (or more) marks every row,
    even one whose margin is exactly 1, so that threshold 1 is the full model exactly."""
    m = margin(proba)
    return np.ones(len(m), dtype=bool) if threshold >= 1 else m < threshold


def combine(static_proba: np.ndarray, full_proba: np.ndarray, threshold: float) -> np.ndarray:
    """The cascade's probabilities where both models' are known: the full model's on uncertain rows."""
    return np.where(uncertain(static_proba, threshold)[:, None], full_proba, static_proba)


def macro_f1(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Macro-F1 over all k labels, 0 for a label never true nor predicted (as evaluate_predictions)."""
    confusion = np.bincount(np.asarray(y) * k + np.asarray(pred), minlength=k * k).reshape(k, k)
    return float(_f1s(confusion).mean())


def _f1s(confusion: np.ndarray) -> np.ndarray:
    tp = np.diag(confusion).astype(float)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)  # 2tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)


@dataclass(frozen=True)
class CurvePoint:
    """One threshold of the cascade: the share of rows re-scored and the macro-F1 that results."""

    threshold: float
    share: float
    macro_f1: float

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, "share": self.share, "macro_f1": self.macro_f1}


def curve(static_proba: np.ndarray, full_proba: np.ndarray, y: np.ndarray) -> list[CurvePoint]:
    """Every distinct cascade on these rows, from none re-scored to all, in one pass.

    Rows are re-scored in order of rising margin; a threshold between two distinct margins re-scores
    those below it. Thresholds are midpoints (the choice generalises no better at either end of the gap),
    0 for none and 1 for all."""
    static_proba, full_proba, y = np.asarray(static_proba, float), np.asarray(full_proba, float), np.asarray(y)
    if static_proba.shape != full_proba.shape or len(y) != len(static_proba):
        raise ValueError(f"shapes differ: static {static_proba.shape}, full {full_proba.shape}, y {y.shape}")
    n, k = static_proba.shape
    if n == 0:
        return [CurvePoint(0.0, 0.0, 0.0), CurvePoint(1.0, 1.0, 0.0)]
    m = margin(static_proba)
    order = np.argsort(m, kind="stable")
    static_pred, full_pred = static_proba.argmax(1), full_proba.argmax(1)
    confusion = np.bincount(y * k + static_pred, minlength=k * k).reshape(k, k)
    points = [CurvePoint(0.0, 0.0, float(_f1s(confusion).mean()))]
    sorted_m = m[order]
    for position, i in enumerate(order):
        confusion[y[i], static_pred[i]] -= 1
        confusion[y[i], full_pred[i]] += 1
        last = position == n - 1
        if not last and sorted_m[position + 1] == sorted_m[position]:
            continue  # a tie: rows of equal margin go together
        threshold = 1.0 if last else float((sorted_m[position] + sorted_m[position + 1]) / 2)
        points.append(CurvePoint(threshold, (position + 1) / n, float(_f1s(confusion).mean())))
    return points


def choose_threshold(static_proba: np.ndarray, full_proba: np.ndarray, y: np.ndarray,
                     max_cost: float = MAX_COST) -> float:
    """The threshold that re-scores the smallest share of rows while keeping macro-F1 within `max_cost`
    of the full model's on the same rows (held-out predictions of both). 1 re-scores everything, so a
    threshold always exists."""
    points = curve(static_proba, full_proba, y)
    target = points[-1].macro_f1 - max_cost - 1e-12  # the last point is the full model
    return next(p.threshold for p in points if p.macro_f1 >= target)


def choose_threshold_every_group(static_proba: np.ndarray, full_proba: np.ndarray, y: np.ndarray,
                                 groups: np.ndarray, max_cost: float = MAX_COST) -> float:
    """The smallest threshold that keeps each group (each real article) within `max_cost` of the full model.

    A threshold pooled over a few articles fits them and does not carry to the next one (chosen on four
    articles, it cost the fifth 0.04 macro-F1 on average, bench/fastpath.py); the strictest article's
    threshold kept each held-out article within 0.01, at the price of re-scoring more."""
    groups = np.asarray(groups)
    return max(choose_threshold(static_proba[groups == g], full_proba[groups == g], np.asarray(y)[groups == g],
                                max_cost) for g in np.unique(groups))


def threshold_for_budget(static_proba: np.ndarray, budget: float) -> float:
    """The threshold that sends about `budget` (a share, 0 to 1) of these rows to the full model: the midpoint
    between the margins on either side of that rank, as `curve` places them (rows of equal margin go together,
    so ties may send a few more). 0 re-scores none, 1 every row.

    No label enters: this picks a speed, not an accuracy; what it costs is measured apart (bench/fastpath.py,
    nested by article)."""
    if not 0 <= budget <= 1:
        raise ValueError(f"a re-scoring budget is a share between 0 and 1, not {budget}")
    m = np.sort(margin(static_proba))
    rank = int(round(budget * len(m)))
    if rank == 0 or not len(m):
        return 0.0
    above = m[rank:][m[rank:] > m[rank - 1]]  # the next distinct margin: rows tied with the last go too
    return float((m[rank - 1] + above[0]) / 2) if len(above) else 1.0


def point_at(static_proba: np.ndarray, full_proba: np.ndarray, y: np.ndarray, threshold: float) -> CurvePoint:
    """The cascade at one given threshold on these rows."""
    proba = combine(static_proba, full_proba, threshold)
    k = np.asarray(static_proba).shape[1]
    return CurvePoint(float(threshold), float(uncertain(static_proba, threshold).mean()) if len(y) else 0.0,
                      macro_f1(np.asarray(y), proba.argmax(1), k))


# --- scoring --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CascadeBatch(ScoredBatch):
    """A ScoredBatch (drop-in for the reduce step) that also says which rows the full model re-scored."""

    rescored: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # bool[n]


class CascadeScorer:
    """Static head on every paragraph; the full model on those whose static margin is below `threshold`.

    `full_embedder` is a factory: the full embedder (MiniLM, seconds to load) is built on the first batch
    that has an uncertain paragraph, and never when none has. `relevance`, if given, must take the static
    embeddings (it runs on every paragraph). `fidelity`, if given, is how often this threshold kept the full
    model's label on the real labelled paragraphs held out at training: (kept, of how many)."""

    def __init__(self, static_model: Model, static_embedder: Embedder, full_model: Model,
                 full_embedder: Callable[[], Embedder], threshold: float,
                 relevance: RelevanceModel | None = None, fidelity: tuple[int, int] | None = None) -> None:
        if static_model.labels != full_model.labels:
            raise ModelError(f"the fast head's labels {static_model.labels} differ from the model's "
                             f"{full_model.labels}; retrain the fast path")
        static_model.meta.check_fits(static_embedder)
        self.static_model, self.static_embedder = static_model, static_embedder
        self.full_model, self._full_factory = full_model, full_embedder
        self.threshold = float(threshold)
        self.relevance = relevance
        self.fidelity = fidelity  # (same label as the full model, of n) on held-out real copy, where known
        self._full: Embedder | None = None

    @property
    def full_loaded(self) -> bool:
        return self._full is not None

    def full_embedder(self) -> Embedder:
        if self._full is None:
            embedder = self._full_factory()
            self.full_model.meta.check_fits(embedder)
            self._full = embedder
        return self._full

    def score_texts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Embed and classify: (probabilities float[n, k] in scheme order, re-scored bool[n], static
        embeddings float[n, d])."""
        texts = list(texts)
        static_embeddings = self.static_embedder.embed(texts)
        proba = self.static_model.predict_proba(texts, static_embeddings)
        rescored = uncertain(proba, self.threshold) if texts else np.zeros(0, dtype=bool)
        if rescored.any():
            rows = np.flatnonzero(rescored)
            subset = [texts[i] for i in rows]
            proba[rows] = self.full_model.predict_proba(subset, self.full_embedder().embed(subset))
        return proba, rescored, static_embeddings

    def score(self, paragraphs: Sequence[Paragraph]) -> CascadeBatch:
        """What `scoring.score_batch` does, through the cascade."""
        texts = [p.text for p in paragraphs]
        proba, rescored, embeddings = self.score_texts(texts)
        n = len(texts)
        p_off = self.relevance.off_topic_proba(embeddings) if self.relevance is not None and n else np.zeros(n)
        off = p_off >= self.relevance.threshold_ if self.relevance is not None else np.zeros(n, dtype=bool)
        return CascadeBatch(tuple(paragraphs), proba, tuple(detect_languages(texts)), off, p_off, rescored=rescored)


# --- the stored fast path -------------------------------------------------------------------------

@dataclass(frozen=True)
class FastPath:
    """A model folder's `fast/` part, loaded and checked."""

    model: Model  # the static head
    threshold: float  # the trained one
    relevance: RelevanceModel | None
    calibration: Calibration | None  # the cascade's out-of-fold probabilities at the trained threshold
    folder: Path
    static_oof: Calibration | None = None  # the static head's alone (absent from fast paths trained before it)

    @property
    def cascade(self) -> dict:
        return self.model.meta.raw["cascade"]

    def scorer(self, static_embedder: Embedder, full_model: Model, full_embedder: Callable[[], Embedder],
               threshold: float | None = None, fidelity: tuple[int, int] | None = None) -> CascadeScorer:
        return CascadeScorer(self.model, static_embedder, full_model, full_embedder,
                             self.threshold if threshold is None else threshold, self.relevance, fidelity)

    def fidelity(self, cascade: Calibration | None, full: Calibration | None) -> tuple[int, int] | None:
        """How many of the real labelled paragraphs (held out by article at training) get the full model's
        label from the cascade whose out-of-fold probabilities are `cascade` (calibration_at's), and of how
        many; None where the fast path does not know."""
        if cascade is None or full is None:
            return None
        rows = self.real_rows(len(full.y))
        if rows is None:
            return None
        return int((cascade.proba[rows].argmax(1) == full.proba[rows].argmax(1)).sum()), len(rows)

    def threshold_for_budget(self, budget: float) -> float:
        """The threshold at which MiniLM re-scored `budget` of the real labelled paragraphs held out by article
        at training (of every labelled row where the fast path has no real rows): their static margins are in
        static_oof.json. Real copy is less certain than authored, so it is the better guide to a run's share."""
        if self.static_oof is None:
            raise ModelError(f"{self.folder} was trained before a budget could be set; retrain the fast path "
                             "(framing train --fast-embedder ...)", option="fast-budget")
        rows = self.real_rows(len(self.static_oof.y))
        return threshold_for_budget(self.static_oof.proba if rows is None else self.static_oof.proba[rows], budget)

    def real_rows(self, n: int) -> np.ndarray | None:
        """The indices of the real labelled rows among the n labelled rows (cascade.real_rows, kept at training
        for each run's note and budget), checked; None where the fast path has none."""
        rows = self.cascade.get("real_rows")
        if not rows:
            return None
        if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i in rows):
            raise ModelError(f"{self.folder}: its real rows do not line up with the model's; retrain the fast path")
        return np.asarray(rows, dtype=int)

    def calibration_at(self, threshold: float, full: Calibration | None) -> Calibration | None:
        """The cascade's out-of-fold probabilities at another threshold: the static head's where its margin
        reaches it, the full model's (`full`, its calibration.json) elsewhere, as scoring combines them."""
        if threshold == self.threshold:
            return self.calibration
        if self.static_oof is None:
            raise ModelError(f"{self.folder} was trained before its threshold could be changed; retrain the fast "
                             "path (framing train --fast-embedder ...)", option="fast-threshold")
        if full is None:
            return None
        if not (np.array_equal(full.y, self.static_oof.y) and np.array_equal(full.groups, self.static_oof.groups)):
            raise ModelError(f"{self.folder}: its out-of-fold rows do not line up with the model's; retrain the "
                             "fast path")
        return Calibration(full.labels, combine(self.static_oof.proba, full.proba, threshold), full.y, full.groups)


def fast_folder(model_dir: str | os.PathLike) -> Path:
    return Path(model_dir) / FAST_FOLDER


def load_fast(model_dir: str | os.PathLike, full_model: Model) -> FastPath:
    """The fast part of a model folder; ModelError if it is missing, damaged or trained for another model."""
    folder = fast_folder(model_dir)
    if not (folder / "model.json").is_file():
        raise ModelError(f"{model_dir} has no fast path; train it with a static embedder (train_fast)",
                         option="model")
    model = load_model(folder)
    cascade = model.meta.raw.get("cascade")
    threshold = cascade.get("threshold") if isinstance(cascade, dict) else None
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not 0 <= threshold <= 1:
        raise ModelError(f"{folder}: no valid cascade threshold in model.json; retrain the fast path")
    if cascade.get("full_model_sha256") != full_model.meta.raw.get("meta_sha256"):
        raise ModelError(f"{folder}: trained for another version of the model in {model_dir}; retrain the fast path")
    if model.labels != full_model.labels:
        raise ModelError(f"{folder}: its labels differ from the model's; retrain the fast path")
    relevance_text = read_model_file(folder, model, RELEVANCE_FILE)
    calibration_text = read_model_file(folder, model, CALIBRATION_FILE)
    static_text = read_model_file(folder, model, STATIC_OOF_FILE)
    return FastPath(model=model, threshold=float(threshold),
                    static_oof=Calibration.from_json(static_text) if static_text is not None else None,
                    relevance=RelevanceModel.from_json(relevance_text, str(folder / RELEVANCE_FILE))
                    if relevance_text is not None else None,
                    calibration=Calibration.from_json(calibration_text) if calibration_text is not None else None,
                    folder=folder)


@dataclass
class FastTrainResult:
    folder: Path
    threshold: float
    oof: dict  # grouped out-of-fold macro-F1 of the static head, the full model and the cascade, and the share


def train_fast(labels: str | os.PathLike, model_dir: str | os.PathLike, static_embedder: Embedder,
               options: HeadOptions = HeadOptions(), max_cost: float = MAX_COST,
               scheme_path: str | os.PathLike | None = None,
               choose_on: tuple[str, ...] = REAL_SOURCES) -> FastTrainResult:
    """Train the static head on the same labelled set as the model in `model_dir` and write it, with its
    cascade threshold, into `model_dir/fast/`.

    The full model's grouped out-of-fold probabilities come from its calibration.json, so MiniLM is not
    run again; the static head's come from the same folds (StratifiedGroupKFold depends only on the
    labels and groups, which must match). The threshold is chosen on the out-of-fold rows whose source
    is in `choose_on` (real copy), as the strictest of their articles' (choose_threshold_every_group), or
    on all rows where there are not two articles: on authored batches the static head is nearly as good as
    MiniLM, so a threshold chosen there re-scores nothing and loses ~0.03 macro-F1 on real articles."""
    full = load_model(model_dir)
    scheme = load_scheme(scheme_path or scheme_path_for(labels))
    examples = read_examples(labels, scheme)
    if tuple(scheme.labels) != full.labels or labelled_set_hash(examples) != \
            full.meta.raw.get("labelled_set", {}).get("sha256"):
        raise ModelError(f"the model in {model_dir} was trained on another labelled set or scheme; train both "
                         "from the same labels")
    calibration_text = read_model_file(model_dir, full, CALIBRATION_FILE)
    if calibration_text is None:
        raise ModelError(f"the model in {model_dir} has no out-of-fold probabilities (calibration.json); retrain it")
    full_oof = Calibration.from_json(calibration_text)
    texts = [e.text for e in examples]
    y = np.array([scheme.index(e.label) for e in examples])
    groups = np.array([e.group for e in examples])
    if len(full_oof.y) != len(y) or not (np.array_equal(full_oof.y, y) and np.array_equal(full_oof.groups, groups)):
        raise ModelError(f"the out-of-fold probabilities in {model_dir} do not line up with the labelled set; "
                         "retrain the model")
    embeddings = static_embedder.embed(texts)
    X = head_input(texts, embeddings)
    static_oof = out_of_fold_proba(X, y, len(scheme.labels), options, groups=groups)
    real = np.array([e.source in choose_on for e in examples])
    rows = real if len(set(groups[real])) >= 2 else np.ones(len(y), dtype=bool)  # 2+ articles, or all rows
    threshold = (choose_threshold_every_group(static_oof[rows], full_oof.proba[rows], y[rows], groups[rows], max_cost)
                 if rows is real else choose_threshold(static_oof, full_oof.proba, y, max_cost))
    cascade_oof = combine(static_oof, full_oof.proba, threshold)
    head = fit_head(X, y, options)
    static_metrics = evaluate_predictions(y, static_oof, scheme.labels)
    oof = {"static_macro_f1": static_metrics.macro_f1,
           "full_macro_f1": evaluate_predictions(y, full_oof.proba, scheme.labels).macro_f1,
           "cascade_macro_f1": evaluate_predictions(y, cascade_oof, scheme.labels).macro_f1,
           "share_rescored": float(uncertain(static_oof, threshold).mean()),
           "chosen_on": {"sources": list(choose_on) if rows is real else "all", "n": int(rows.sum()),
                         "static_macro_f1": evaluate_predictions(y[rows], static_oof[rows], scheme.labels).macro_f1,
                         "full_macro_f1": evaluate_predictions(y[rows], full_oof.proba[rows], scheme.labels).macro_f1,
                         "cascade_macro_f1": evaluate_predictions(y[rows], cascade_oof[rows],
                                                                  scheme.labels).macro_f1,
                         "share_rescored": float(uncertain(static_oof[rows], threshold).mean())}}
    meta = {
        "format_version": FORMAT_VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "scheme": {"name": scheme.name, "labels": list(scheme.labels), "definitions": scheme.definitions},
        "embedder": {"name": static_embedder.name, "dimension": static_embedder.dimension,
                     "fingerprint": getattr(static_embedder, "fingerprint", static_embedder.name)},
        "labelled_set": dict(full.meta.raw.get("labelled_set", {}), counts=label_counts(examples, scheme)),
        "head": {"type": "the model's stacked head, on the static embedder", "C": options.C,
                 "text_C": options.text_C, "min_df": options.min_df, "class_weight": options.class_weight,
                 "stack_folds": options.stack_folds, "top_terms": top_terms(head, scheme.labels)},
        "cv": {"grouped": static_metrics.to_dict(), "folds": options.n_folds, "seed": options.seed},
        "cascade": {"threshold": threshold, "max_cost": max_cost,
                    "real_rows": np.flatnonzero(real).tolist() if rows is real else [],  # for each run's note
                    "chosen_on": "grouped out-of-fold predictions of the rows in grouped_oof.chosen_on, the "
                                 "strictest of their articles",
                    "full_model_sha256": full.meta.raw.get("meta_sha256"), "full_embedder": full.embedder_name,
                    "grouped_oof": oof},
    }
    extra = {CALIBRATION_FILE: Calibration(scheme.labels, cascade_oof, y, groups).to_json(),
             STATIC_OOF_FILE: Calibration(scheme.labels, static_oof, y, groups).to_json()}
    relevance = _fit_relevance(labels, examples, embeddings, static_embedder)
    if relevance is not None:
        extra[RELEVANCE_FILE] = relevance.to_json()
        meta["relevance"] = {"threshold": relevance.threshold_, "cv": relevance.cv_}
    folder = save_model(Model(head=head, meta=ModelMeta.from_json(meta)), fast_folder(model_dir), _card(meta),
                        extra=extra)
    return FastTrainResult(folder=folder, threshold=threshold, oof=oof)


def _fit_relevance(labels: str | os.PathLike, examples, embeddings: np.ndarray,
                   embedder: Embedder) -> RelevanceModel | None:
    path = off_topic_path(labels)
    if not Path(labels).is_dir() or not path.is_file():
        return None
    off_topic = read_off_topic(path)
    return fit_relevance(examples, off_topic, embeddings, embedder.embed([e.text for e in off_topic]))


def _card(meta: dict) -> str:
    c = meta["cascade"]
    oof = c["grouped_oof"]
    chosen = oof["chosen_on"]
    return f"""# framing fast path

- Created: {meta['created']}
- Static embedder: `{meta['embedder']['name']}` ({meta['embedder']['dimension']} dimensions)
- Re-scores with: `{c['full_embedder']}` where the static margin is below {c['threshold']:.4f}

Grouped out-of-fold, on the labelled set: static head alone macro-F1 {oof['static_macro_f1']:.3f},
full model {oof['full_macro_f1']:.3f}, cascade {oof['cascade_macro_f1']:.3f} with
{oof['share_rescored']:.1%} of paragraphs re-scored (allowed cost {c['max_cost']}).
The threshold was chosen on {chosen['n']} rows ({chosen['sources']}): there, static {chosen['static_macro_f1']:.3f},
full {chosen['full_macro_f1']:.3f}, cascade {chosen['cascade_macro_f1']:.3f}, {chosen['share_rescored']:.1%} re-scored.
"""
