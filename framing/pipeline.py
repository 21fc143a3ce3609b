"""The one place that chains the stages: read -> segment -> embed -> classify -> aggregate -> report."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import __version__
from .cache import CachedEmbedder, EmbeddingCache
from .cascade import CascadeScorer, load_fast, train_fast
from .classify import (
    CALIBRATION_FILE,
    FORMAT_VERSION,
    HeadOptions,
    Metrics,
    Model,
    ModelMeta,
    evaluate_predictions,
    fit_head,
    fit_temperature,
    head_input,
    held_out_proba,
    load_model,
    out_of_fold_proba,
    read_model_file,
    save_model,
    temper,
    top_terms,
)
from .embed import DEFAULT_EMBEDDER, Embedder, embedder_named
from .errors import InputError, OutputError
from .files import ReportFolder, atomic_open
from .labels import REAL_SOURCES, Scheme, label_counts, labelled_set_hash, load_scheme, read_examples, scheme_path_for
from .neighbours import build_index
from .options import DEFAULT_LABELS, DEFAULT_MODEL, DEFAULT_OUT, CacheOptions, ScoreOptions
from .prevalence import INTERVAL_NOTE, Calibration
from .readers import read_documents
from .records import Document, OutletSummary, Paragraph, Segmented
from .relevance import OFF_TOPIC, RELEVANCE_FILE, fit_relevance, off_topic_path, read_off_topic
from .report import format_table, write_jsonl_record
from .reporting import CALIBRATION_COPY, NEIGHBOURS_COPY, Reduction, ReportInputs, aggregate, write_reports
from .scoring import Deduplicator, score_batch
from .segment import segment

Progress = Callable[[str, int], None]  # (stage, items just done)
Warn = Callable[[str], None]


def _quiet(*_: object) -> None:
    pass


def make_embedder(name: str = DEFAULT_EMBEDDER, cache: CacheOptions = CacheOptions(),
                  dimension: int | None = None, warn: Warn = _quiet) -> Embedder:
    """The embedder of that name (see `embed.register_embedder`), behind the on-disk cache unless disabled."""
    embedder = embedder_named(name)
    if not cache.enabled:
        return embedder
    return CachedEmbedder(embedder, EmbeddingCache(cache.folder, warn), dimension)


# --- train ----------------------------------------------------------------------------------------

@dataclass
class TrainResult:
    model_dir: Path
    counts: dict[str, int]
    real_copy: RealCopy | None  # the headline: real articles held out in turn (None without two of them)
    grouped: Metrics  # grouped CV over outlets and authoring batches, mostly authored copy
    n_groups: int
    seconds: dict[str, float]
    fast: object | None = None  # cascade.FastTrainResult when a fast path was trained


@dataclass(frozen=True)
class RealCopy:
    """Quality on real articles, each held out of training in turn: the number to expect on unseen outlets."""

    metrics: Metrics  # with the model's temperature, fitted on the other articles each time (nested)
    untempered: Metrics
    macro_f1_interval: tuple[float, float]  # 95% cluster bootstrap over articles
    n_articles: int
    temperature: float  # fitted on all held-out articles: what the model applies

    def to_dict(self) -> dict:
        return {"metrics": self.metrics.to_dict(), "untempered": self.untempered.to_dict(),
                "macro_f1_interval": list(self.macro_f1_interval), "articles": self.n_articles,
                "temperature": self.temperature}


def _real_copy(X: np.ndarray, y: np.ndarray, examples, labels: tuple[str, ...], options: HeadOptions,
               seed: int = 0) -> RealCopy | None:
    """Each real article (or real outlet) held out in turn; None when there are fewer than two."""
    real = np.array([e.source in REAL_SOURCES for e in examples])
    groups = np.array([e.group for e in examples])
    articles = np.unique(groups[real])
    if len(articles) < 2:
        return None
    proba = held_out_proba(X, y, len(labels), options, real, groups)
    truth, owner = y[real], groups[real]
    tempered = np.vstack([temper(proba[owner == a], fit_temperature(proba[owner != a], truth[owner != a]))
                          for a in articles])
    order = np.concatenate([np.flatnonzero(owner == a) for a in articles])
    present = tuple(label for i, label in enumerate(labels) if (truth == i).any())
    metrics = evaluate_predictions(truth[order], tempered, labels, present)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(500):  # articles resampled: paragraphs of one article are not independent
        chosen = np.concatenate([np.flatnonzero(owner == a) for a in rng.choice(articles, len(articles))])
        draws.append(evaluate_predictions(truth[chosen], proba[chosen], labels, present).macro_f1)
    return RealCopy(metrics=metrics, untempered=evaluate_predictions(truth, proba, labels, present),
                    macro_f1_interval=(float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))),
                    n_articles=len(articles), temperature=fit_temperature(proba, truth))


def train(labels: str | os.PathLike = DEFAULT_LABELS, model_dir: str | os.PathLike = DEFAULT_MODEL,
          embedder: Embedder | None = None, options: HeadOptions = HeadOptions(),
          scheme_path: str | os.PathLike | None = None, fast_embedder: Embedder | None = None) -> TrainResult:
    """Validate the labelled set, embed it, cross-validate, fit on everything and save the model.

    With `fast_embedder` (a static model), also train the fast path's head and its cascade threshold
    into the model's `fast/` folder (framing.cascade)."""
    started = time.perf_counter()
    scheme = load_scheme(scheme_path or scheme_path_for(labels))
    examples = read_examples(labels, scheme)
    embedder = embedder or make_embedder()
    texts = [e.text for e in examples]
    embeddings = embedder.embed(texts)
    X = head_input(texts, embeddings)
    embedded = time.perf_counter()
    y = np.array([scheme.index(e.label) for e in examples])
    groups = np.array([e.group for e in examples])
    real_copy = _real_copy(X, y, examples, scheme.labels, options)
    temperature = real_copy.temperature if real_copy else 1.0
    grouped_proba = temper(out_of_fold_proba(X, y, len(scheme.labels), options, groups=groups), temperature)
    grouped = evaluate_predictions(y, grouped_proba, scheme.labels)
    head = fit_head(X, y, options)
    fitted = time.perf_counter()
    counts = label_counts(examples, scheme)
    meta = _model_meta(scheme, embedder, examples, counts, real_copy, grouped, options, len(set(groups)))
    meta["head"]["temperature"] = temperature
    meta["head"]["top_terms"] = top_terms(head, scheme.labels)
    meta["labelled_set"]["path"] = str(Path(labels).resolve())  # scoring never writes reports into it
    meta["labelled_set"]["digests"] = sorted({text_key(text) for text in texts})  # evaluate warns on overlap
    # What correcting per-outlet shares for the classifier's errors needs: plain arrays, never pickle.
    extra = {CALIBRATION_FILE: Calibration(scheme.labels, grouped_proba, y, groups).to_json()}
    extra.update(build_index(texts, [e.label for e in examples], embeddings).to_files())
    relevance = _fit_relevance(labels, examples, embeddings, embedder)
    if relevance is not None:
        extra[RELEVANCE_FILE] = relevance.to_json()
        meta["relevance"] = {"threshold": relevance.threshold_, "cv": relevance.cv_}
    save_model(Model(head=head, meta=ModelMeta.from_json(meta)), model_dir, model_card(meta), extra=extra)
    fast = train_fast(labels, model_dir, fast_embedder, options, scheme_path=scheme_path) if fast_embedder else None
    return TrainResult(model_dir=Path(model_dir), counts=counts, real_copy=real_copy, grouped=grouped,
                       n_groups=len(set(groups)), fast=fast,
                       seconds={"embed": embedded - started, "fit_and_cv": fitted - embedded,
                                "total": time.perf_counter() - started})


def _fit_relevance(labels: str | os.PathLike, examples, embeddings: np.ndarray, embedder: Embedder):
    """The relevance stage, from the off-topic paragraphs beside the labelled set; None where there are none."""
    path = off_topic_path(labels)
    if not Path(labels).is_dir() or not path.is_file():
        return None
    off_topic = read_off_topic(path)
    return fit_relevance(examples, off_topic, embeddings, embedder.embed([e.text for e in off_topic]))


def _model_meta(scheme: Scheme, embedder: Embedder, examples, counts, real_copy: RealCopy | None,
                grouped: Metrics, options: HeadOptions, n_groups: int) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "scheme": {"name": scheme.name, "labels": list(scheme.labels), "definitions": scheme.definitions},
        "embedder": {"name": embedder.name, "dimension": embedder.dimension,
                     "fingerprint": getattr(embedder, "fingerprint", embedder.name)},
        "labelled_set": {"sha256": labelled_set_hash(examples), "n": len(examples), "counts": counts,
                         "groups": n_groups},
        "head": {"type": "StackingClassifier: LogisticRegression on the embedding + LogisticRegression on TF-IDF "
                         "1-2-grams, under a LogisticRegression", "C": options.C, "text_C": options.text_C,
                 "min_df": options.min_df, "class_weight": options.class_weight, "stack_folds": options.stack_folds},
        "real_copy": real_copy.to_dict() if real_copy else None,
        "cv": {"grouped": grouped.to_dict(), "folds": options.n_folds,
               "seed": options.seed},
        "versions": _versions(),
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"framing": __version__, "python": platform.python_version()}
    for package in ("scikit-learn", "numpy", "sentence-transformers", "torch", "skops"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def model_card(meta: dict) -> str:
    grouped, real = meta["cv"]["grouped"], meta.get("real_copy")
    labels = meta["scheme"]["labels"]
    terms = "\n".join(f"- `{label}`: {', '.join(words)}" for label, words in meta["head"]["top_terms"].items())
    if real:
        m, low, high = real["metrics"], *real["macro_f1_interval"]
        headline = (f"**On real articles held out of training** ({real['articles']} articles, each held out in turn): "
                    f"macro-F1 **{m['macro_f1']:.3f}** [95% interval over articles {low:.3f}–{high:.3f}], "
                    f"expected calibration error {m['ece']:.3f} (temperature {real['temperature']:.2f}, fitted on "
                    f"the other articles each time; untempered {real['untempered']['ece']:.3f}).")
        real_f1 = {label: f"{m['per_label'][label]['f1']:.3f}" for label in labels}
    else:
        headline = "No real articles in the labelled set: quality on real copy is unmeasured."
        real_f1 = dict.fromkeys(labels, "–")
    rows = "\n".join(f"| {label} | {meta['labelled_set']['counts'][label]} | {real_f1[label]} | "
                     f"{grouped['per_label'][label]['f1']:.3f} |" for label in labels)
    return f"""# framing model card

- Created: {meta['created']}
- Scheme: `{meta['scheme']['name']}` ({', '.join(labels)})
- Embedder: `{meta['embedder']['name']}` ({meta['embedder']['dimension']} dimensions)
- Head: {meta['head']['type']} (embedding C={meta['head']['C']}, TF-IDF C={meta['head']['text_C']}, \
min_df={meta['head']['min_df']}, class_weight={meta['head']['class_weight']}), temperature \
{meta['head'].get('temperature', 1.0):.2f}
- Labelled set: {meta['labelled_set']['n']} paragraphs, sha256 `{meta['labelled_set']['sha256'][:16]}…`

## Quality

{headline}

Beside it, grouped cross-validation over the outlets and authoring batches of the labelled set (mostly
copy the developers wrote, which flatters): macro-F1 {grouped['macro_f1']:.3f}, expected calibration
error {grouped['ece']:.3f}.

| label | paragraphs | F1, real articles held out | F1, grouped CV (mostly authored) |
|---|---:|---:|---:|
{rows}

## What the text half learned

The word n-grams that most raise each label's probability. Names of outlets, people or places
here would mean the model learned who writes rather than how: check them after retraining.

{terms}

## Intended use and limits

Paragraph-level framing of English news about Russia, China and the West, aggregated per
outlet. The labelled set is small and partly authored by the developers; check a sample of
paragraphs by hand before publishing numbers, and read the intervals, not only the shares.
"""


# --- audit ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LabelIssue:
    where: str  # file:line in the labelled set
    text: str
    given: str
    suggested: str
    p_given: float  # out-of-fold probability of the given label
    p_suggested: float


def audit_labels(labels: str | os.PathLike = DEFAULT_LABELS, embedder: Embedder | None = None,
                 options: HeadOptions = HeadOptions(),
                 scheme_path: str | os.PathLike | None = None) -> list[LabelIssue]:
    """Paragraphs whose label the model disagrees with, by confident learning (cleanlab) on grouped
    out-of-fold probabilities, most suspicious first. Reads the labelled set; never changes it."""
    from cleanlab.filter import find_label_issues

    scheme = load_scheme(scheme_path or scheme_path_for(labels))
    examples = read_examples(labels, scheme)
    texts = [e.text for e in examples]
    X = head_input(texts, (embedder or make_embedder()).embed(texts))
    y = np.array([scheme.index(e.label) for e in examples])
    proba = out_of_fold_proba(X, y, len(scheme.labels), options, groups=np.array([e.group for e in examples]))
    ranked = find_label_issues(labels=y, pred_probs=proba, return_indices_ranked_by="self_confidence",
                               n_jobs=1)  # no worker pool: it is small work, and forked workers inherit signals
    return [LabelIssue(where=examples[i].where, text=examples[i].text, given=examples[i].label,
                       suggested=scheme.labels[int(proba[i].argmax())], p_given=float(proba[i, y[i]]),
                       p_suggested=float(proba[i].max())) for i in ranked]


# --- score ---------------------------------------------------------------------------------------

@dataclass
class ScoreResult:
    summaries: list[OutletSummary]
    labels: tuple[str, ...]
    n_documents: int
    n_paragraphs: int
    n_duplicates: int
    n_dropped_lines: int
    out_dir: Path
    non_english: int = 0
    table: str = ""
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)


def score_paths(paths: Sequence[str | os.PathLike], model_dir: str | os.PathLike = DEFAULT_MODEL,
                out_dir: str | os.PathLike = DEFAULT_OUT, options: ScoreOptions = ScoreOptions(),
                embedder: Embedder | None = None, progress: Progress = _quiet, warn: Warn = _quiet) -> ScoreResult:
    """Score every paragraph under `paths` and write the reports, all at once at the end.

    Read -> segment -> de-duplicate -> score (map) -> tally (reduce) -> report -> commit. Memory stays
    bounded by the batch size plus one small record per document.
    """
    started = time.perf_counter()
    model = load_model(model_dir)
    scorer, fast_calibration = fast_scorer(model, Path(model_dir), options, lambda: embedder or make_embedder(
        model.embedder_name, options.cache, model.meta.embedder_dimension, warn), warn) \
        if options.uses_fast_path else (None, None)
    if scorer is None:
        embedder = embedder or make_embedder(model.embedder_name, options.cache, model.meta.embedder_dimension,
                                             warn)
        model.meta.check_fits(embedder)
    protected = [Path(model_dir)] + ([options.labels] if options.labels and Path(options.labels).exists() else [])
    with ReportFolder(out_dir, [Path(p) for p in paths], protected) as folder:
        reduction = Reduction(model.labels)
        scored_rows = rescored = 0  # paragraphs scored, and those the fast path sent to the full model
        include_languages = options.include_other_languages or model.meta.multilingual
        with folder.open("paragraphs.jsonl") as stream, folder.open("dropped.jsonl") as dropped:
            def record_dropped(key: str, segmented: Segmented) -> None:  # every dropped line, for an audit
                for line in segmented.dropped_lines:
                    write_jsonl_record(dropped, {"doc": key, "line": line.line, "reason": line.reason,
                                                 "text": line.text})

            for batch in _segmented_batches(read_documents(paths, options.read, warn), options.batch_size,
                                            reduction, progress, warn, record_dropped):
                scored = scorer.score(batch) if scorer else score_batch(batch, model, embedder)
                scored_rows += len(scored)
                rescored += int(scored.rescored.sum()) if scorer else 0
                progress("embed", len(scored))
                for row in scored.rows(model.labels):
                    row = paragraph_record(row, reduction.document(row["doc"]), options.include_off_topic,
                                           include_languages)
                    reduction.add_row(row)
                    write_jsonl_record(stream, row)
        check_counted(reduction)
        progress("report", 1)
        calibration = fast_calibration if scorer else _calibration(Path(model_dir), model)
        summaries, comparisons = aggregate(reduction, calibration, options.method, options.seed, options.baseline,
                                           progress=lambda n: progress("aggregate", n))
        _keep_beside_reports(folder, Path(model_dir), model, calibration if scorer else None)
        inputs = _report_inputs(model, Path(model_dir))
        if scorer:
            inputs = replace(inputs, notes=inputs.notes + (fast_note(scorer, rescored, scored_rows),))
        write_reports(folder, reduction, summaries, comparisons, inputs, folder.path("paragraphs.jsonl"))
        files = folder.files()
        folder.commit()
    note = language_note(reduction, model, options)
    if note:
        warn(note)
    return ScoreResult(summaries=summaries, labels=model.labels, n_documents=len(reduction.documents),
                       n_paragraphs=reduction.n_paragraphs, n_duplicates=reduction.n_duplicates,
                       n_dropped_lines=sum(d["dropped_lines"] for d in reduction.documents), out_dir=Path(out_dir),
                       non_english=reduction.non_english, table=format_table(summaries, model.labels),
                       seconds=time.perf_counter() - started, files=files)


def check_counted(reduction: Reduction) -> None:
    """Refuse a run in which no paragraph counts in the shares, saying why."""
    if reduction.n_paragraphs:
        return
    left = sum(sum(c.values()) for c in reduction.left_out.values())
    raise InputError(f"no paragraph counts in the shares: all {left} were off topic or not in English "
                     "(they can be counted on request)" if left else
                     "no article paragraphs found to score: every line was furniture or empty")


def language_note(reduction: Reduction, model: Model, options: ScoreOptions) -> str | None:
    """The warning for paragraphs an English-only model cannot read, if there were any."""
    if not reduction.non_english or model.meta.multilingual:
        return None
    counted = " (counted in them on request)" if options.include_other_languages else ""
    return (f"{reduction.non_english} paragraphs are not in English; the model's embedder is English-only, so they "
            f"are left out of the shares{counted}; see the 'lang' field in paragraphs.jsonl")


def fast_scorer(model: Model, model_dir: Path, options: ScoreOptions, full_embedder: Callable[[], Embedder],
                warn: Warn = _quiet) -> tuple[CascadeScorer, Calibration | None]:
    """The cascade (the static head scores everything; `full_embedder()`, called only if needed, gives the
    model's embedder for the uncertain rest) at the trained threshold, options.fast_threshold, or the one
    options.fast_budget picks, and the calibration of the cascade's out-of-fold probabilities there."""
    fast = load_fast(model_dir, model)
    static = make_embedder(fast.model.embedder_name, options.cache, fast.model.meta.embedder_dimension, warn)
    fast.model.meta.check_fits(static)
    if options.fast_threshold is not None:
        threshold = options.fast_threshold
    elif options.fast_budget is not None:
        threshold = fast.threshold_for_budget(options.fast_budget)
    else:
        threshold = fast.threshold
    full = _calibration(model_dir, model)
    calibration = fast.calibration_at(threshold, full)
    return fast.scorer(static, model, full_embedder, threshold, fast.fidelity(calibration, full)), calibration


def fast_note(scorer: CascadeScorer, rescored: int, n: int) -> str:
    """What report.md says of a fast-path run: it is not the model's own scoring."""
    share = f" ({rescored / n:.0%})" if n else ""
    fidelity = ""
    if scorer.fidelity:
        kept, of = scorer.fidelity
        fidelity = (f" On the {of:,} real labelled paragraphs held out by article at training, this threshold gave "
                    f"the full model's label to {kept:,} ({kept / of:.1%}).")
    return (f"Scored with the fast path: the static embedder `{scorer.static_embedder.name}` for every paragraph, "
            f"the full model re-scoring the {rescored:,} of {n:,}{share} whose static margin was below "
            f"{scorer.threshold:.3f}.{fidelity} Publish the full model's numbers.")


def paragraph_record(row: dict, document: dict, include_off_topic: bool, include_languages: bool) -> dict:
    """A paragraphs.jsonl record: the scored row with its document's id, title, date and url, and whether
    it counts in the shares (off-topic and other-language paragraphs are left out unless asked for)."""
    counted = (include_off_topic or row["label"] != OFF_TOPIC) and (include_languages or row["lang"] == "en")
    if include_off_topic and row["label"] == OFF_TOPIC:  # counted under its most probable framing label
        row = dict(row, label=max(row["scores"], key=row["scores"].get))
    return {"doc": row["doc"], "id": document["id"], **{k: v for k, v in row.items() if k != "doc"},
            "title": document["title"], "date": document["date"], "url": document["url"], "counted": counted}


def _keep_beside_reports(folder: ReportFolder, model_dir: Path, model: Model,
                         used: Calibration | None = None) -> None:
    """Copies of what `framing report` needs to rebuild the reports without the model: the calibration the
    shares were corrected with (`used`: the fast path's own), else the model's."""
    calibration = used.to_json() if used is not None else read_model_file(model_dir, model, CALIBRATION_FILE)
    if calibration is not None:
        folder.write_text(CALIBRATION_COPY, calibration)
    if model.neighbours is not None:
        folder.write_text(NEIGHBOURS_COPY, json.dumps({"texts": list(model.neighbours.texts),
                                                       "labels": list(model.neighbours.labels)},
                                                      ensure_ascii=False))


def _report_inputs(model: Model, model_dir: Path) -> ReportInputs:
    real = model.meta.raw.get("real_copy") or {}
    f1 = (real.get("metrics") or {}).get("macro_f1")
    note = f"Model: `{model_dir}` (embedder `{model.embedder_name}`, trained " \
           f"{model.meta.created or 'on an unrecorded date'}); macro-F1 on real articles held out of training " \
           f"{'not measured' if f1 is None else f'{f1:.2f}'}, grouped CV over mostly authored copy " \
           f"{'not recorded' if model.meta.grouped_macro_f1 is None else f'{model.meta.grouped_macro_f1:.2f}'}."
    neighbours = model.neighbours
    return ReportInputs(notes=(note,), interval_note=INTERVAL_NOTE,
                        neighbour_texts=neighbours.texts if neighbours else (),
                        neighbour_labels=neighbours.labels if neighbours else ())


def _segmented_batches(documents: Iterable[Document], batch_size: int, reduction: Reduction,
                       progress: Progress, warn: Warn,
                       record_dropped: Callable[[str, Segmented], None]) -> Iterator[list[Paragraph]]:
    """Segment and de-duplicate documents, recording each, and yield about `batch_size` fresh paragraphs
    at a time. A document's paragraphs may straddle two batches: its tally merges."""
    dedupe = Deduplicator()
    batch: list[Paragraph] = []
    for number, document in enumerate(documents):
        progress("read", 1)
        key = getattr(document, "key", "") or f"{document.path or document.id}#{number}"
        segmented = segment(document)
        record_dropped(key, segmented)
        if segmented.suspicious:
            warn(f"{key}: {segmented.suspicious} (see dropped.jsonl)")
        paragraphs = [replace(p, doc=key) for p in segmented.paragraphs]
        fresh = dedupe.fresh(paragraphs)
        n_repeats = len(paragraphs) - len(fresh)
        reduction.add_document(_document_record(document, key, segmented, len(fresh), n_repeats))
        batch += fresh
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _document_record(document: Document, key: str, segmented, n_fresh: int, n_repeats: int) -> dict:
    return {"doc": key, "id": document.id, "path": document.path, "outlet": document.outlet,
            "publisher": document.publisher, "date": document.date, "url": document.url, "title": document.title,
            "paragraphs": n_fresh, "duplicates": n_repeats, "dropped_lines": segmented.n_dropped,
            "dropped": segmented.dropped}


def _calibration(model_dir: Path, model: Model) -> Calibration | None:
    """The grouped out-of-fold probabilities saved at train time; None for a model trained without them."""
    text = read_model_file(model_dir, model, CALIBRATION_FILE)
    return Calibration.from_json(text) if text is not None else None


# --- report: rebuild from saved scores ------------------------------------------------------------

def report_paragraphs(paragraphs: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                      options: ScoreOptions = ScoreOptions(), progress: Progress = _quiet) -> ScoreResult:
    """Rebuild every report from a scoring run's paragraphs.jsonl (with the documents.jsonl beside it),
    without a model or an embedder. The shares are corrected with the calibration the run kept beside
    its reports; where it is missing, they are plain counts. `out_dir` defaults to the run's folder."""
    started = time.perf_counter()
    source = Path(paragraphs)
    folder_in = source.parent
    documents_path = folder_in / "documents.jsonl"
    for path in (source, documents_path):
        if not path.is_file():
            raise InputError(f"{path}: not found; give the paragraphs.jsonl of a scoring run, with its "
                             "documents.jsonl beside it")
    rows = list(_jsonl(source))
    documents = list(_jsonl(documents_path))
    labels = _labels_of(rows, source)
    reduction = Reduction(labels)
    for record in documents:
        reduction.add_document({k: v for k, v in record.items() if k != "shares"})
    for row in rows:
        reduction.add_row(row)
    calibration_file = folder_in / CALIBRATION_COPY
    calibration = Calibration.from_json(calibration_file.read_text("utf-8")) if calibration_file.is_file() else None
    summaries, comparisons = aggregate(reduction, calibration, options.method, options.seed, options.baseline,
                                       progress=lambda n: progress("aggregate", n))
    neighbours = json.loads((folder_in / NEIGHBOURS_COPY).read_text("utf-8")) \
        if (folder_in / NEIGHBOURS_COPY).is_file() else {"texts": [], "labels": []}
    inputs = ReportInputs(notes=(f"Rebuilt from `{source}`.",), interval_note=INTERVAL_NOTE,
                          neighbour_texts=tuple(neighbours["texts"]), neighbour_labels=tuple(neighbours["labels"]))
    out = Path(out_dir) if out_dir is not None else folder_in
    with ReportFolder(out) as folder:  # the inputs are read already, and copied into the new folder
        for name in ("paragraphs.jsonl", "dropped.jsonl", CALIBRATION_COPY, NEIGHBOURS_COPY):
            if (folder_in / name).is_file():
                folder.write_bytes(name, (folder_in / name).read_bytes())
        write_reports(folder, reduction, summaries, comparisons, inputs, folder.path("paragraphs.jsonl"))
        files = folder.files()
        folder.commit()
    return ScoreResult(summaries=summaries, labels=labels, n_documents=len(documents),
                       n_paragraphs=reduction.n_paragraphs, n_duplicates=reduction.n_duplicates,
                       n_dropped_lines=sum(d.get("dropped_lines", 0) for d in documents), out_dir=out,
                       non_english=reduction.non_english, table=format_table(summaries, labels),
                       seconds=time.perf_counter() - started, files=files)


def _jsonl(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError:
                    raise InputError(f"{path}:{number}: not a JSON record; give the files a scoring run "
                                     "wrote") from None


def _labels_of(rows: list[dict], path: Path) -> tuple[str, ...]:
    if not rows or not isinstance(rows[0].get("scores"), dict):
        raise InputError(f"{path}: no scored paragraphs in it; give the paragraphs.jsonl of a scoring run")
    return tuple(rows[0]["scores"])


# --- evaluate -------------------------------------------------------------------------------------

@dataclass
class EvaluateResult:
    metrics: Metrics
    n: int
    absent_labels: tuple[str, ...] = ()  # labels with no support in the file: left out of macro-F1
    n_in_training: int = 0  # evaluated paragraphs the model was trained on


def evaluate(path: str | os.PathLike, model_dir: str | os.PathLike = DEFAULT_MODEL,
             predictions: str | os.PathLike | None = None, embedder: Embedder | None = None,
             cache: CacheOptions = CacheOptions(), force: bool = False, warn: Warn = _quiet) -> EvaluateResult:
    """Score a labelled JSONL file record by record (no re-segmenting) and compare with its labels."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a labelled JSONL file")
    if not path.is_file():
        raise InputError(f"{path}: no such file; give a labelled JSONL file")
    if predictions is not None:
        _check_predictions_path(Path(predictions), path, force)
    model = load_model(model_dir)
    examples = read_examples(path, Scheme(name="", labels=model.labels, definitions={}))
    embedder = embedder or make_embedder(model.embedder_name, cache, model.meta.embedder_dimension)
    model.meta.check_fits(embedder)
    texts = [e.text for e in examples]
    proba = model.predict_proba(texts, embedder.embed(texts))
    y = np.array([model.labels.index(e.label) for e in examples])
    present = tuple(label for i, label in enumerate(model.labels) if (y == i).any())
    trained_on = set(model.meta.raw.get("labelled_set", {}).get("digests", []))
    n_in_training = sum(text_key(e.text) in trained_on for e in examples)
    if n_in_training:
        warn(f"{n_in_training} of the {len(examples)} paragraphs are in the model's training set; their scores "
             "overstate its quality")
    if predictions is not None:
        with atomic_open(predictions) as stream:
            for example, row in zip(examples, proba):
                write_jsonl_record(stream, {"id": example.id, "text": example.text, "label": example.label,
                                            "predicted": model.labels[int(row.argmax())],
                                            "scores": {label: round(float(p), 4) for label, p in
                                                       zip(model.labels, row)}})
    return EvaluateResult(metrics=evaluate_predictions(y, proba, model.labels, present), n=len(examples),
                          absent_labels=tuple(label for label in model.labels if label not in present),
                          n_in_training=n_in_training)


def _check_predictions_path(predictions: Path, evaluated: Path, force: bool) -> None:
    if predictions.exists() and evaluated.exists() and predictions.resolve() == evaluated.resolve():
        raise OutputError(f"{predictions} is the file being evaluated; write the predictions to another file",
                          option="predictions")
    if predictions.is_dir():
        raise OutputError(f"{predictions} is a folder; give a file for the predictions", option="predictions")
    if predictions.exists() and not force:
        raise OutputError(f"{predictions} exists; choose a new file, or allow overwriting it",
                          option="force")


def text_key(text: str) -> str:
    """What a model remembers of each training paragraph: a short digest of its normalised text."""
    return hashlib.sha256(" ".join(text.split()).casefold().encode("utf-8", "surrogatepass")).hexdigest()[:20]
