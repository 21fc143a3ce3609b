"""The one place that chains the stages: read -> segment -> embed -> classify -> aggregate -> report."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import __version__
from .aggregate import DocumentTally, Evidence, document_shares, summarize
from .cache import CachedEmbedder, EmbeddingCache
from .classify import (
    CALIBRATION_FILE,
    FORMAT_VERSION,
    HeadOptions,
    Metrics,
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
from .embed import DEFAULT_EMBEDDER, Embedder, embedder_named
from .errors import InputError, OutputError
from .files import ReportFolder, atomic_open
from .labels import Scheme, label_counts, labelled_set_hash, load_scheme, read_examples, scheme_path_for
from .options import DEFAULT_LABELS, DEFAULT_MODEL, DEFAULT_OUT, CacheOptions, ScoreOptions
from .prevalence import INTERVAL_NOTE, Calibration, compare
from .readers import read_documents
from .records import Document, OutletSummary, Paragraph, Segmented
from .relevance import RELEVANCE_FILE, RelevanceModel, fit_relevance, off_topic_path, read_off_topic
from .report import format_table, markdown_report, outlets_json, write_jsonl_record
from .scoring import Deduplicator, ScoredBatch, score_batch
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
    stratified: Metrics
    grouped: Metrics
    n_groups: int
    seconds: dict[str, float]


def train(labels: str | os.PathLike = DEFAULT_LABELS, model_dir: str | os.PathLike = DEFAULT_MODEL,
          embedder: Embedder | None = None, options: HeadOptions = HeadOptions(),
          scheme_path: str | os.PathLike | None = None) -> TrainResult:
    """Validate the labelled set, embed it, cross-validate, fit on everything and save the model."""
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
    stratified = evaluate_predictions(y, out_of_fold_proba(X, y, len(scheme.labels), options), scheme.labels)
    grouped_proba = out_of_fold_proba(X, y, len(scheme.labels), options, groups=groups)
    grouped = evaluate_predictions(y, grouped_proba, scheme.labels)
    head = fit_head(X, y, options)
    fitted = time.perf_counter()
    counts = label_counts(examples, scheme)
    meta = _model_meta(scheme, embedder, examples, counts, stratified, grouped, options, len(set(groups)))
    meta["head"]["top_terms"] = top_terms(head, scheme.labels)
    meta["labelled_set"]["path"] = str(Path(labels).resolve())  # scoring never writes reports into it
    meta["labelled_set"]["digests"] = sorted({text_key(text) for text in texts})  # evaluate warns on overlap
    # What correcting per-outlet shares for the classifier's errors needs: plain arrays, never pickle.
    extra = {CALIBRATION_FILE: Calibration(scheme.labels, grouped_proba, y, groups).to_json()}
    relevance = _fit_relevance(labels, examples, embeddings, embedder)
    if relevance is not None:
        extra[RELEVANCE_FILE] = relevance.to_json()
        meta["relevance"] = {"threshold": relevance.threshold_, "cv": relevance.cv_}
    save_model(Model(head=head, meta=ModelMeta.from_json(meta)), model_dir, model_card(meta), extra=extra)
    return TrainResult(model_dir=Path(model_dir), counts=counts, stratified=stratified, grouped=grouped,
                       n_groups=len(set(groups)),
                       seconds={"embed": embedded - started, "fit_and_cv": fitted - embedded,
                                "total": time.perf_counter() - started})


def _fit_relevance(labels: str | os.PathLike, examples, embeddings: np.ndarray, embedder: Embedder):
    """The relevance stage, from the off-topic paragraphs beside the labelled set; None where there are none."""
    path = off_topic_path(labels)
    if not Path(labels).is_dir() or not path.is_file():
        return None
    off_topic = read_off_topic(path)
    return fit_relevance(examples, off_topic, embeddings, embedder.embed([e.text for e in off_topic]))


def _model_meta(scheme: Scheme, embedder: Embedder, examples, counts, stratified: Metrics, grouped: Metrics,
                options: HeadOptions, n_groups: int) -> dict:
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
        "cv": {"grouped": grouped.to_dict(), "stratified": stratified.to_dict(), "folds": options.n_folds,
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
    grouped, stratified = meta["cv"]["grouped"], meta["cv"]["stratified"]
    terms = "\n".join(f"- `{label}`: {', '.join(words)}" for label, words in meta["head"]["top_terms"].items())
    rows = "\n".join(f"| {label} | {meta['labelled_set']['counts'][label]} | {grouped['per_label'][label]['f1']:.3f} "
                     f"| {stratified['per_label'][label]['f1']:.3f} |" for label in meta["scheme"]["labels"])
    return f"""# framing model card

- Created: {meta['created']}
- Scheme: `{meta['scheme']['name']}` ({', '.join(meta['scheme']['labels'])})
- Embedder: `{meta['embedder']['name']}` ({meta['embedder']['dimension']} dimensions)
- Head: {meta['head']['type']} (embedding C={meta['head']['C']}, TF-IDF C={meta['head']['text_C']}, \
min_df={meta['head']['min_df']}, class_weight={meta['head']['class_weight']})
- Labelled set: {meta['labelled_set']['n']} paragraphs, sha256 `{meta['labelled_set']['sha256'][:16]}…`

## Cross-validated quality

Grouped CV keeps each outlet (or authoring batch) out of the folds it is tested on: it is the
number to expect on outlets the model has never seen. Stratified CV mixes them.

| | grouped CV | stratified CV |
|---|---:|---:|
| macro-F1 | {grouped['macro_f1']:.3f} | {stratified['macro_f1']:.3f} |
| expected calibration error | {grouped['ece']:.3f} | {stratified['ece']:.3f} |

| label | paragraphs | F1 (grouped) | F1 (stratified) |
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


@dataclass
class _Reduced:
    """The run's reduce state: tallies per document key, evidence, and the documents' records."""

    tallies: dict[str, DocumentTally] = field(default_factory=dict)
    evidence: Evidence = field(default_factory=Evidence)
    documents: list[dict] = field(default_factory=list)
    n_paragraphs: int = 0
    n_duplicates: int = 0
    non_english: int = 0
    include_off_topic: bool = False
    include_other_languages: bool = False
    left_out: dict[str, Counter] = field(default_factory=dict)  # outlet -> reason -> paragraphs
    _by_key: dict[str, dict] = field(default_factory=dict)

    def with_document(self, row: dict) -> dict:
        """A paragraphs.jsonl record with its document's id, title, date and url."""
        document = self._by_key[row["doc"]]
        return {"doc": row["doc"], "id": document["id"], **{k: v for k, v in row.items() if k != "doc"},
                "title": document["title"], "date": document["date"], "url": document["url"]}

    def add_document(self, record: dict, tally: DocumentTally) -> None:
        self.documents.append(record)
        self._by_key[record["doc"]] = record
        self.tallies[tally.key] = self.tallies[tally.key].merge(tally) if tally.key in self.tallies else tally
        self.n_duplicates += tally.n_duplicates

    def counted(self, batch: ScoredBatch) -> np.ndarray:
        """Which paragraphs count in the shares: off-topic and other-language ones are left out (and counted)."""
        keep = np.ones(len(batch), dtype=bool)
        if not self.include_off_topic:
            keep &= ~batch.off_topic
        if not self.include_other_languages:
            keep &= np.array([lang == "en" for lang in batch.languages], dtype=bool)
        return keep

    def add_scored(self, batch: ScoredBatch, labels: Sequence[str]) -> np.ndarray:
        by_doc: dict[str, list[int]] = {}
        keep = self.counted(batch)
        for i, (paragraph, row, lang) in enumerate(zip(batch.paragraphs, batch.proba, batch.languages)):
            self.non_english += lang != "en"
            if not keep[i]:
                reason = "off_topic" if batch.off_topic[i] and not self.include_off_topic else "language"
                self.left_out.setdefault(paragraph.outlet, Counter())[reason] += 1
                continue
            top = int(row.argmax())
            self.evidence.offer(paragraph.outlet, labels[top], row, paragraph.doc, paragraph.index, paragraph.text)
            by_doc.setdefault(paragraph.doc, []).append(i)
        for key, rows in by_doc.items():
            part = DocumentTally(key, batch.paragraphs[rows[0]].outlet, batch.proba[rows])
            self.tallies[key] = self.tallies[key].merge(part) if key in self.tallies else part
        self.n_paragraphs += int(keep.sum())
        return keep


def score_paths(paths: Sequence[str | os.PathLike], model_dir: str | os.PathLike = DEFAULT_MODEL,
                out_dir: str | os.PathLike = DEFAULT_OUT, options: ScoreOptions = ScoreOptions(),
                embedder: Embedder | None = None, progress: Progress = _quiet, warn: Warn = _quiet) -> ScoreResult:
    """Score every paragraph under `paths` and write the reports, all at once at the end.

    Read -> segment -> de-duplicate -> score (map) -> tally (reduce) -> report -> commit. Memory stays
    bounded by the batch size plus one small record per document.
    """
    started = time.perf_counter()
    model = load_model(model_dir)
    embedder = embedder or make_embedder(model.embedder_name, options.cache, model.meta.embedder_dimension, warn)
    model.meta.check_fits(embedder)
    protected = [Path(model_dir)] + ([options.labels] if options.labels and Path(options.labels).exists() else [])
    relevance_text = read_model_file(model_dir, model, RELEVANCE_FILE)  # absent from models trained without it
    relevance = RelevanceModel.from_json(relevance_text, str(Path(model_dir) / RELEVANCE_FILE)) \
        if relevance_text is not None else None
    with ReportFolder(out_dir, [Path(p) for p in paths], protected) as folder:
        reduced = _Reduced(include_off_topic=options.include_off_topic,
                           include_other_languages=options.include_other_languages or model.meta.multilingual)
        with folder.open("paragraphs.jsonl") as stream, folder.open("dropped.jsonl") as dropped:
            def record_dropped(key: str, segmented: Segmented) -> None:  # every dropped line, for an audit
                for line in segmented.dropped_lines:
                    write_jsonl_record(dropped, {"doc": key, "line": line.line, "reason": line.reason,
                                                 "text": line.text})

            for batch in _segmented_batches(read_documents(paths, options.read, warn), options.batch_size,
                                            len(model.labels), reduced, progress, warn, record_dropped):
                scored = score_batch(batch, model, embedder, relevance)
                progress("embed", len(scored))
                counted = reduced.add_scored(scored, model.labels)
                for row, is_counted in zip(scored.rows(model.labels), counted):
                    write_jsonl_record(stream, dict(reduced.with_document(row), counted=bool(is_counted)))
        if not reduced.n_paragraphs:
            left = sum(sum(c.values()) for c in reduced.left_out.values())
            raise InputError("no paragraph counts in the shares: " + (
                f"all {left} were off topic or not in English (they can be counted on request)" if left else
                "every line was furniture or empty"))
        progress("report", 1)
        calibration = _calibration(Path(model_dir), model)
        summaries, estimates = summarize(list(reduced.tallies.values()), model.labels, calibration,
                                         options.method, options.seed,
                                         progress=lambda n: progress("aggregate", n))
        summaries = [replace(s, left_out=dict(reduced.left_out.get(s.outlet, {}))) for s in summaries]
        comparisons = compare(estimates, model.labels, baseline=options.baseline)
        _write_reports(folder, model, Path(model_dir), reduced, summaries, comparisons)
        files = folder.files()
        folder.commit()
    if reduced.non_english and not model.meta.multilingual:
        warn(f"{reduced.non_english} paragraphs are not in English; the model's embedder is English-only, so they "
             "are left out of the shares" + (" (counted in them on request)" if options.include_other_languages
                                             else "") + "; see the 'lang' field in paragraphs.jsonl")
    return ScoreResult(summaries=summaries, labels=model.labels, n_documents=len(reduced.documents),
                       n_paragraphs=reduced.n_paragraphs, n_duplicates=reduced.n_duplicates,
                       n_dropped_lines=sum(d["dropped_lines"] for d in reduced.documents), out_dir=Path(out_dir),
                       non_english=reduced.non_english, table=format_table(summaries, model.labels),
                       seconds=time.perf_counter() - started, files=files)


def _segmented_batches(documents: Iterable[Document], batch_size: int, n_labels: int, reduced: _Reduced,
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
        reduced.add_document(_document_record(document, key, segmented, len(fresh), n_repeats),
                             DocumentTally(key, document.outlet, np.zeros((0, n_labels)), n_repeats))
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


def _write_reports(folder: ReportFolder, model: Model, model_dir: Path, reduced: _Reduced,
                   summaries: list[OutletSummary], comparisons: list) -> None:
    f1 = model.meta.grouped_macro_f1
    note = f"Model: `{model_dir}` (embedder `{model.embedder_name}`, trained " \
           f"{model.meta.created or 'on an unrecorded date'}); grouped-CV macro-F1 " \
           f"{'not recorded' if f1 is None else f'{f1:.2f}'}."
    with folder.open("documents.jsonl") as stream:
        for record in reduced.documents:
            tally = reduced.tallies[record["doc"]]
            write_jsonl_record(stream, dict(record, shares=document_shares(tally, model.labels) if tally.n else {}))
    folder.write_text("outlets.json", outlets_json(summaries, comparisons, INTERVAL_NOTE))
    folder.write_text("report.md", markdown_report(summaries, model.labels, reduced.evidence, note,
                                                   reduced.documents, INTERVAL_NOTE, comparisons))



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
