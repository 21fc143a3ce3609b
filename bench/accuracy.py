"""Which head? Every candidate measured first on real copy held out of training, then on the held-out
contrast set and general news, and only then on grouped CV over authored batches.

    python bench/accuracy.py [--quick]        # writes bench/results/accuracy.json, prints the table

Columns, in the order that matters for a published number:
- real copy: the seed paragraphs (labels/seeds.jsonl, real articles labelled by hand), each article (its
  Example.group) held out in turn, the head trained on every other labelled paragraph. Macro-F1 of the
  pooled held-out predictions with its 95% cluster-bootstrap interval over articles (bench/realcopy.py's
  _cluster_bootstrap), the western_critical F1, and the top-label ECE after a temperature fitted on the
  other articles' held-out predictions (nested, what `framing train` does: framing.classify.fit_temperature).
- contrast: eval/contrast.jsonl (never trained on), the head trained on all of labels/.
- general news: the share of paragraphs of general-news copy (eval/general_news.jsonl and the general-news
  pages of corpus/pages/, bench/realcopy.py's GENERAL_PAGES) that end up off_topic (the relevance stage,
  the same for every head) or neutral_wire (the head).
- grouped CV: StratifiedGroupKFold(5) over outlets and authoring batches (framing.classify.out_of_fold_proba's
  folds), mostly authored copy: it flatters, and is shown last. Left out with --quick.

Candidates are fixed configurations; none is tuned on the seed articles. Choosing the best of several on the
same 198 paragraphs would itself flatter, so the default changes only for a gain outside the interval.
Neighbour smoothing (rows marked "real copy only") mixes each held-out paragraph's probabilities with the
mean of its neighbours in the article (k either side, weight w) after prediction; it needs article order,
which only the seed articles have here.

SetFit (fine-tuning MiniLM, ~3 s per step) was measured on the earlier 708-paragraph set (below the default
on every split) and is not rerun: it would take hours on two cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sklearn  # noqa: E402
from quote_features import features as voice_features  # noqa: E402
from realcopy import CONTRAST, GENERAL_NEWS, GENERAL_PAGES, _cluster_bootstrap, _pages  # noqa: E402
from sklearn.base import BaseEstimator, ClassifierMixin  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.dummy import DummyClassifier  # noqa: E402
from sklearn.ensemble import StackingClassifier  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from framing.classify import (  # noqa: E402
    EMBEDDING,
    TEXT,
    HeadOptions,
    build_head,
    evaluate_predictions,
    fit_temperature,
    head_input,
    held_out_proba,
    out_of_fold_proba,
    temper,
)
from framing.labels import REAL_SOURCES, load_scheme, read_examples  # noqa: E402
from framing.pipeline import make_embedder  # noqa: E402
from framing.relevance import fit_relevance, off_topic_path, read_off_topic  # noqa: E402

LABELS = ROOT / "labels"
RESULTS = ROOT / "bench" / "results" / "accuracy.json"
N_FOLDS, SEED = 5, 0

Rows = Callable[[list[str], np.ndarray], np.ndarray]  # (texts, embeddings) -> the head's input rows


@dataclass
class Candidate:
    name: str
    build: Callable[[], object]  # an unfitted scikit-learn classifier over `rows`
    rows: Rows = head_input
    smooth: tuple[int, float] | None = None  # (k, w): neighbour smoothing of the real-copy predictions
    note: str = ""


# --- candidates ---------------------------------------------------------------------------------------

def _logreg(C: float, class_weight: str | None = "balanced") -> LogisticRegression:
    return LogisticRegression(C=C, class_weight=class_weight, max_iter=5000, random_state=SEED)


def _words(C: float = 30.0) -> Pipeline:
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    return Pipeline([("columns", ColumnTransformer([("tfidf", vectorizer, TEXT)])), ("logreg", _logreg(C))])


def _embedding(C: float = 10.0) -> Pipeline:
    return Pipeline([("columns", ColumnTransformer([("embedding", "passthrough", EMBEDDING)])),
                     ("logreg", _logreg(C))])


def _with_characters() -> StackingClassifier:
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 6), sublinear_tf=True, min_df=3, max_features=100_000)
    characters = Pipeline([("columns", ColumnTransformer([("chars", chars, TEXT)])), ("logreg", _logreg(30.0))])
    return StackingClassifier([("embedding", _embedding()), ("text", _words()), ("chars", characters)],
                              final_estimator=LogisticRegression(), cv=5)


def _voice_rows(weight: float) -> Rows:
    """The default head's rows with five voice features (bench/quote_features.py) beside the embedding."""
    def rows(texts: list[str], embeddings: np.ndarray) -> np.ndarray:
        extra = weight * np.array([voice_features(t) for t in texts]).reshape(len(texts), -1)
        return head_input(texts, np.hstack([embeddings, extra]))
    return rows


class RealRowsWeighted(ClassifierMixin, BaseEstimator):
    """The default head fitted with the real articles' rows counting `weight` times an authored row: the
    labelled set is mostly authored copy, the target is real copy (importance weighting toward it)."""

    def __init__(self, real_texts: frozenset[str] = frozenset(), weight: float = 3.0) -> None:
        self.real_texts, self.weight = real_texts, weight

    def fit(self, X: np.ndarray, y: np.ndarray) -> RealRowsWeighted:
        head = build_head(HeadOptions())
        weights = np.where([text in self.real_texts for text in X[:, TEXT]], self.weight, 1.0)
        with sklearn.config_context(enable_metadata_routing=True):  # routes the weights to every regression
            for _, estimator in head.estimators:
                estimator.steps[-1][1].set_fit_request(sample_weight=True)
            head.final_estimator.set_fit_request(sample_weight=True)
            self.head_ = head.fit(X, y, sample_weight=weights)
        self.classes_ = self.head_.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.head_.predict_proba(X)


STATIC = ROOT / "models" / "minilm-static-vocab"  # make fast-embedder


def _static_beside(texts: list[str], embeddings: np.ndarray) -> np.ndarray:
    """The default head's rows with the static model's vectors beside MiniLM's: its vocabulary has the
    labelled set's own words, which MiniLM's word pieces split."""
    return head_input(texts, np.hstack([embeddings, make_embedder(str(STATIC)).embed(texts)]))


def candidates(real_texts: frozenset[str] = frozenset()) -> list[Candidate]:
    default = "default: build_head(HeadOptions())"
    return [
        Candidate("majority class", lambda: DummyClassifier(strategy="prior")),
        Candidate("TF-IDF 1-2-grams + LR (words only)", _words),
        Candidate("embedding + LR C=10 (no words)", _embedding),
        Candidate(default, lambda: build_head(HeadOptions())),
        Candidate("default, no class weights", lambda: build_head(HeadOptions(class_weight=None))),
        Candidate("default, C=10 and text C=10", lambda: build_head(HeadOptions(text_C=10.0))),
        Candidate("default, C=3", lambda: build_head(HeadOptions(C=3.0))),
        Candidate("default + character 3-6-grams (third base)", _with_characters),
        Candidate("default + voice features x3", lambda: build_head(HeadOptions()), rows=_voice_rows(3.0)),
        *([Candidate("default + static-vocab vectors beside MiniLM's", lambda: build_head(HeadOptions()),
                     rows=_static_beside)] if (STATIC / "modules.json").is_file() else []),
        *[Candidate(f"default, real-article rows weighted x{w:g}", lambda w=w: RealRowsWeighted(real_texts, w))
          for w in (3.0, 10.0)],
        Candidate("default + neighbour smoothing k=1 w=0.3", lambda: build_head(HeadOptions()), smooth=(1, 0.3),
                  note="real copy only"),
        Candidate("default + neighbour smoothing k=2 w=0.1", lambda: build_head(HeadOptions()), smooth=(2, 0.1),
                  note="real copy only"),
    ]


# --- the measurements ----------------------------------------------------------------------------------

@dataclass
class Sets:
    labels: tuple[str, ...]
    texts: list[str]
    E: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    real: np.ndarray  # rows from real articles
    order: np.ndarray  # (article, line) position of each row, for neighbour smoothing
    contrast: tuple[list[str], np.ndarray, np.ndarray]  # texts, embeddings, labels
    general: tuple[list[str], np.ndarray]  # general-news texts and embeddings
    general_off: np.ndarray  # which of them the relevance stage marks off_topic


def load_sets(labels: Path = LABELS) -> Sets:
    scheme = load_scheme(labels)
    examples = read_examples(labels, scheme)
    embedder = make_embedder()
    texts = [e.text for e in examples]
    E = embedder.embed(texts)
    contrast = read_examples(CONTRAST, scheme)
    general = [" ".join(json.loads(line)["text"].split()) for line in GENERAL_NEWS.read_text().splitlines()
               if line.strip()]
    general += [t for name, is_general, paragraphs in _pages() if is_general for t in paragraphs]
    E_general = embedder.embed(general)
    off = read_off_topic(off_topic_path(labels))
    relevance = fit_relevance(examples, off, E, embedder.embed([e.text for e in off]))
    order = np.array([int(e.where.rsplit(":", 1)[-1]) for e in examples])  # the file line keeps article order
    return Sets(labels=scheme.labels, texts=texts, E=E, y=np.array([scheme.index(e.label) for e in examples]),
                groups=np.array([e.group for e in examples]),
                real=np.array([e.source in REAL_SOURCES for e in examples]), order=order,
                contrast=([e.text for e in contrast], embedder.embed([e.text for e in contrast]),
                          np.array([scheme.index(e.label) for e in contrast])),
                general=(general, E_general), general_off=relevance.is_off_topic(E_general))


def _fit(candidate: Candidate, X: np.ndarray, y: np.ndarray):
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        return candidate.build().fit(X, y)


def _fitter(candidate: Candidate) -> Callable[[np.ndarray, np.ndarray, HeadOptions], object]:
    """The candidate as framing.classify's folds fit a head (the options are the candidate's own)."""
    return lambda X, y, _options: _fit(candidate, X, y)


def _proba(model, X: np.ndarray, n_labels: int) -> np.ndarray:
    out = np.zeros((len(X), n_labels))
    out[:, model.classes_] = model.predict_proba(X)
    return out


def smooth(P: np.ndarray, articles: np.ndarray, order: np.ndarray, k: int, w: float) -> np.ndarray:
    """Each paragraph's probabilities mixed with the mean of up to k neighbours either side in its article."""
    out = P.copy()
    for article in np.unique(articles):
        rows = np.flatnonzero(articles == article)
        rows = rows[np.argsort(order[rows])]
        for j, row in enumerate(rows):
            near = np.concatenate([rows[max(0, j - k):j], rows[j + 1:j + 1 + k]])
            if len(near):
                out[row] = (1 - w) * P[row] + w * P[near].mean(axis=0)
    return out


def real_copy(candidate: Candidate, s: Sets, X: np.ndarray) -> dict:
    rows = np.flatnonzero(s.real)
    articles = s.groups[rows]
    P = held_out_proba(X, s.y, len(s.labels), HeadOptions(), s.real, s.groups, fit=_fitter(candidate))
    if candidate.smooth:
        P = smooth(P, articles, s.order[rows], *candidate.smooth)
    Y = s.y[rows]
    tempered = np.zeros_like(P)
    for article in np.unique(articles):  # nested: no article calibrates its own scores
        here = articles == article
        tempered[here] = temper(P[here], fit_temperature(P[~here], Y[~here]))
    metrics = evaluate_predictions(Y, tempered, s.labels)
    return {"metrics": metrics.to_dict(), "ece_untempered": evaluate_predictions(Y, P, s.labels).ece,
            "interval": _cluster_bootstrap(Y, P, articles, s.labels)}


def held_out_sets(candidate: Candidate, s: Sets, X: np.ndarray) -> dict:
    model = _fit(candidate, X, s.y)
    texts, E, Y = s.contrast
    contrast = evaluate_predictions(Y, _proba(model, candidate.rows(texts, E), len(s.labels)), s.labels)
    general_texts, E_general = s.general
    head = _proba(model, candidate.rows(general_texts, E_general), len(s.labels)).argmax(axis=1)
    passes = s.general_off | (head == s.labels.index("neutral_wire"))
    return {"contrast": contrast.to_dict(), "general_news": {"n": len(general_texts), "passes": float(passes.mean())}}


def grouped_cv(candidate: Candidate, s: Sets, X: np.ndarray) -> dict:
    P = out_of_fold_proba(X, s.y, len(s.labels), HeadOptions(n_folds=N_FOLDS, seed=SEED), groups=s.groups,
                          fit=_fitter(candidate))
    return evaluate_predictions(s.y, P, s.labels).to_dict()


def measure(candidate: Candidate, s: Sets, quick: bool) -> dict:
    started = time.perf_counter()
    X = candidate.rows(s.texts, s.E)
    result = {"name": candidate.name, "note": candidate.note, "real_copy": real_copy(candidate, s, X)}
    if not candidate.smooth:  # smoothing needs article order: only the real articles have it
        result.update(held_out_sets(candidate, s, X))
        if not quick:
            result["grouped_cv"] = grouped_cv(candidate, s, X)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def table(results: list[dict], s: Sets) -> str:
    western = "western_critical"
    lines = ["| head | real copy macro-F1 [95% over articles] | real F1 western | real ECE (tempered) | "
             "contrast macro-F1 | general news off_topic or neutral | grouped CV macro-F1 | s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        real = r["real_copy"]
        low, high = real["interval"]["macro_f1"]
        cells = [r["name"], f"{real['metrics']['macro_f1']:.3f} [{low:.3f}–{high:.3f}]",
                 f"{real['metrics']['per_label'][western]['f1']:.3f}", f"{real['metrics']['ece']:.3f}",
                 f"{r['contrast']['macro_f1']:.3f}" if "contrast" in r else "—",
                 f"{100 * r['general_news']['passes']:.1f}%" if "general_news" in r else "—",
                 f"{r['grouped_cv']['macro_f1']:.3f}" if "grouped_cv" in r else "—", f"{r['seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    n_real = int(s.real.sum())
    return "\n".join(lines) + (f"\n\nreal copy: {n_real} paragraphs of {len(set(s.groups[s.real]))} articles; "
                               f"contrast: {len(s.contrast[0])}; general news: {len(s.general[0])} paragraphs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="leave out grouped CV (the slowest, least telling part)")
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--only", help="measure only the candidates whose name contains this (and the default)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    s = load_sets(args.labels)
    print(f"[{time.perf_counter() - started:5.0f} s] {len(s.texts)} labelled paragraphs embedded", file=sys.stderr)
    results = []
    for candidate in candidates(frozenset(np.array(s.texts, dtype=object)[s.real])):
        if args.only and args.only not in candidate.name and not candidate.name.startswith("default:"):
            continue
        results.append(measure(candidate, s, args.quick))
        real = results[-1]["real_copy"]["metrics"]
        print(f"[{time.perf_counter() - started:5.0f} s] {candidate.name}: real copy {real['macro_f1']:.3f}",
              file=sys.stderr, flush=True)
    printed = table(results, s)
    print(printed)
    report = {"created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "command": " ".join(["python", "bench/accuracy.py", *(argv if argv is not None else sys.argv[1:])]),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "n": {"labelled": len(s.texts), "real": int(s.real.sum()), "contrast": len(s.contrast[0]),
                    "general_news": len(s.general[0]), "general_pages": list(GENERAL_PAGES)},
              "table": printed, "results": results, "seconds": round(time.perf_counter() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_suffix(".json.tmp")
    partial.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
