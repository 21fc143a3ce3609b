"""The one place that chains the stages: read -> segment -> embed -> classify -> aggregate -> report."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import platform
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .aggregate import DocumentTally, summarize, tally
from .cache import CachedEmbedder, EmbeddingCache
from .classify import (
    HeadOptions,
    Metrics,
    Model,
    evaluate_predictions,
    fit_head,
    head_input,
    load_model,
    out_of_fold_proba,
    save_model,
    top_terms,
)
from .embed import DEFAULT_EMBEDDER, Embedder, SentenceTransformerEmbedder
from .errors import InputError, ModelError
from .files import atomic_open, check_output_folder, write_text_atomic
from .labels import Scheme, label_counts, labelled_set_hash, load_scheme, read_examples, scheme_path_for
from .readers import ReadOptions, iter_jsonl, read_documents, read_text_file
from .records import Document, OutletSummary, Paragraph
from .report import Evidence, format_table, markdown_report, outlets_json, write_jsonl_record
from .segment import segment

Progress = Callable[[str, int], None]  # (stage, items just done)
Warn = Callable[[str], None]
DEFAULT_MODEL = Path("models/default")
DEFAULT_LABELS = Path("labels")
DEFAULT_OUT = Path("reports")


def _quiet(*_: object) -> None:
    pass


@dataclass(frozen=True)
class CacheOptions:
    enabled: bool = True
    folder: Path | None = None  # None: FRAMING_CACHE_DIR, else the user's cache folder


def make_embedder(name: str = DEFAULT_EMBEDDER, cache: CacheOptions = CacheOptions(),
                  dimension: int | None = None, warn: Warn = _quiet) -> Embedder:
    """The sentence-transformers embedder, behind the on-disk cache unless it is disabled."""
    embedder = SentenceTransformerEmbedder(name)
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
    X = head_input(texts, embedder.embed(texts))
    embedded = time.perf_counter()
    y = np.array([scheme.index(e.label) for e in examples])
    groups = np.array([e.group for e in examples])
    stratified = evaluate_predictions(y, out_of_fold_proba(X, y, len(scheme.labels), options), scheme.labels)
    grouped = evaluate_predictions(y, out_of_fold_proba(X, y, len(scheme.labels), options, groups=groups),
                                   scheme.labels)
    head = fit_head(X, y, options)
    fitted = time.perf_counter()
    counts = label_counts(examples, scheme)
    meta = _model_meta(scheme, embedder, examples, counts, stratified, grouped, options, len(set(groups)))
    meta["head"]["top_terms"] = top_terms(head, scheme.labels)
    save_model(Model(head=head, meta=meta), model_dir, model_card(meta))
    return TrainResult(model_dir=Path(model_dir), counts=counts, stratified=stratified, grouped=grouped,
                       n_groups=len(set(groups)),
                       seconds={"embed": embedded - started, "fit_and_cv": fitted - embedded,
                                "total": time.perf_counter() - started})


def _model_meta(scheme: Scheme, embedder: Embedder, examples, counts, stratified: Metrics, grouped: Metrics,
                options: HeadOptions, n_groups: int) -> dict:
    return {
        "format_version": 1,
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


# --- score ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScoreOptions:
    read: ReadOptions = ReadOptions()
    cache: CacheOptions = CacheOptions()
    batch_size: int = 512  # paragraphs embedded together: bounds memory, lets the encoder sort by length
    seed: int = 0


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


def check_model_fits(model: Model, embedder: Embedder) -> None:
    if model.embedder_name != embedder.name:
        raise ModelError(f"the model was trained on embeddings of {model.embedder_name!r}, not {embedder.name!r}; "
                         "score with the same embedder or retrain")
    if model.meta["embedder"]["dimension"] != embedder.dimension:
        raise ModelError(f"the model expects {model.meta['embedder']['dimension']}-dimensional embeddings, the "
                         f"embedder gives {embedder.dimension}; retrain with `framing train`")


def score_paths(paths: Sequence[str | os.PathLike], model_dir: str | os.PathLike = DEFAULT_MODEL,
                out_dir: str | os.PathLike = DEFAULT_OUT, options: ScoreOptions = ScoreOptions(),
                embedder: Embedder | None = None, progress: Progress = _quiet, warn: Warn = _quiet) -> ScoreResult:
    """Score every paragraph under `paths` and write the reports; streams, so memory stays bounded."""
    started = time.perf_counter()
    model = load_model(model_dir)
    embedder = embedder or make_embedder(model.embedder_name, options.cache, model.meta["embedder"]["dimension"],
                                         warn)
    out = check_output_folder(out_dir)
    run = _ScoreRun(model, embedder, options, progress)
    with atomic_open(out / "paragraphs.jsonl") as stream, atomic_open(out / "documents.jsonl") as doc_stream:
        for documents in _batches(read_documents(paths, options.read, warn), options.batch_size, run):
            run.score_batch(documents, stream, doc_stream)
    if not run.tallies:
        raise InputError("no article paragraphs found to score: every line was furniture or empty")
    summaries = summarize(list(run.tallies.values()), model.labels, seed=options.seed)
    progress("report", 1)
    macro_f1 = (model.meta.get("cv") or {}).get("grouped", {}).get("macro_f1")  # absent from hand-built models
    note = f"Model: `{Path(model_dir)}` (embedder `{model.embedder_name}`, trained " \
           f"{model.meta.get('created', 'on an unrecorded date')}); grouped-CV macro-F1 " \
           f"{'not recorded' if not isinstance(macro_f1, (int, float)) else f'{macro_f1:.2f}'}."
    write_text_atomic(out / "outlets.json", outlets_json(summaries))
    write_text_atomic(out / "report.md", markdown_report(summaries, model.labels, run.evidence, note,
                                                         run.documents))
    if run.non_english and model.embedder_name == DEFAULT_EMBEDDER:
        warn(f"{run.non_english} paragraphs are not in English; the default model was trained on English only, "
             "so their scores are unreliable (see the 'lang' field in paragraphs.jsonl)")
    return ScoreResult(summaries=summaries, labels=model.labels, n_documents=len(run.documents),
                       n_paragraphs=run.n_paragraphs, n_duplicates=run.n_duplicates,
                       n_dropped_lines=sum(d["dropped_lines"] for d in run.documents), out_dir=out,
                       non_english=run.non_english, table=format_table(summaries, model.labels),
                       seconds=time.perf_counter() - started,
                       files=["paragraphs.jsonl", "documents.jsonl", "outlets.json", "report.md"])


def _batches(documents: Iterable[Document], batch_size: int, run: _ScoreRun) -> Iterator[list]:
    """Group segmented documents so that each batch holds about `batch_size` paragraphs."""
    batch: list = []
    size = 0
    for document in documents:
        run.progress("read", 1)
        segmented = segment(document)
        batch.append((document, segmented))
        size += len(segmented.paragraphs)
        if size >= batch_size:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class _ScoreRun:
    """Running state of one scoring pass: per-document tallies, evidence, duplicates seen per outlet."""

    def __init__(self, model: Model, embedder: Embedder, options: ScoreOptions, progress: Progress) -> None:
        check_model_fits(model, embedder)
        self.model, self.embedder, self.progress = model, embedder, progress
        self.tallies: dict[str, DocumentTally] = {}
        self.evidence = Evidence()
        self.documents: list[dict] = []
        self.seen: set[bytes] = set()  # digests of (outlet, paragraph): a repeat is scored once
        self.n_paragraphs = self.n_duplicates = self.non_english = 0

    def score_batch(self, batch: list, stream, doc_stream) -> None:
        paragraphs: list[Paragraph] = []
        for document, segmented in batch:
            fresh = [p for p in segmented.paragraphs if self._first_time(p)]
            self.n_duplicates += len(segmented.paragraphs) - len(fresh)
            paragraphs += fresh
            record = {"doc": document.id, "outlet": document.outlet, "publisher": document.publisher,
                      "date": document.date, "title": document.title, "paragraphs": len(fresh),
                      "duplicates": len(segmented.paragraphs) - len(fresh),
                      "dropped_lines": segmented.n_dropped, "dropped": segmented.dropped}
            self.documents.append({key: record[key] for key in ("doc", "outlet", "paragraphs", "dropped_lines")})
            write_jsonl_record(doc_stream, record)
        if not paragraphs:
            return
        texts = [p.text for p in paragraphs]
        proba = self.model.predict_proba(texts, self.embedder.embed(texts))
        self.progress("embed", len(paragraphs))
        self._record(paragraphs, proba, stream)

    def _first_time(self, paragraph: Paragraph) -> bool:
        key = hashlib.sha256(f"{paragraph.outlet}\x00{paragraph.text}".encode()).digest()[:16]
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def _record(self, paragraphs: list[Paragraph], proba: np.ndarray, stream) -> None:
        labels = self.model.labels
        languages = detect_languages([p.text for p in paragraphs])
        by_doc: dict[str, list[int]] = {}
        for i, (paragraph, lang) in enumerate(zip(paragraphs, languages)):
            top = int(proba[i].argmax())
            scores = {label: round(float(proba[i, j]), 4) for j, label in enumerate(labels)}
            write_jsonl_record(stream, {"doc": paragraph.doc, "outlet": paragraph.outlet,
                                        "publisher": paragraph.publisher, "index": paragraph.index,
                                        "text": paragraph.text, "label": labels[top], "scores": scores,
                                        "lang": lang})
            self.evidence.offer(paragraph.outlet, labels[top], float(proba[i, top]), paragraph.doc, paragraph.text)
            by_doc.setdefault(paragraph.doc, []).append(i)
            self.non_english += lang != "en"
        for doc, rows in by_doc.items():
            part = tally(paragraphs[rows[0]].outlet, proba[rows])
            if doc in self.tallies:
                self.tallies[doc].counts += part.counts
                self.tallies[doc].score_sums += part.score_sums
            else:
                self.tallies[doc] = part
        self.n_paragraphs += len(paragraphs)


def detect_languages(texts: Sequence[str]) -> list[str]:
    """ISO 639-1 code of each text's language (py3langid: deterministic, offline)."""
    import py3langid

    return [py3langid.classify(text[:2000])[0] for text in texts]  # a prefix: bounded time on a huge paragraph


# --- evaluate -------------------------------------------------------------------------------------

@dataclass
class EvaluateResult:
    metrics: Metrics
    n: int


def evaluate(path: str | os.PathLike, model_dir: str | os.PathLike = DEFAULT_MODEL,
             predictions: str | os.PathLike | None = None, embedder: Embedder | None = None,
             cache: CacheOptions = CacheOptions()) -> EvaluateResult:
    """Score a labelled JSONL file record by record (no re-segmenting) and compare with its labels."""
    model = load_model(model_dir)
    records = _labelled_records(Path(path), Scheme(name="", labels=model.labels, definitions={}))
    embedder = embedder or make_embedder(model.embedder_name, cache, model.meta["embedder"]["dimension"])
    check_model_fits(model, embedder)
    texts = [r["text"] for r in records]
    proba = model.predict_proba(texts, embedder.embed(texts))
    y = np.array([model.labels.index(r["label"]) for r in records])
    if predictions:
        with atomic_open(predictions) as stream:
            for record, row in zip(records, proba):
                write_jsonl_record(stream, {"id": record["id"], "label": model.labels[int(row.argmax())],
                                            "scores": {label: round(float(p), 4) for label, p in
                                                       zip(model.labels, row)}})
    return EvaluateResult(metrics=evaluate_predictions(y, proba, model.labels), n=len(records))


def _labelled_records(path: Path, scheme: Scheme) -> list[dict]:
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a labelled JSONL file")
    if not path.is_file():
        raise InputError(f"{path}: no such file; give a labelled JSONL file")
    text = read_text_file(path, "a labelled JSONL file")
    records = []
    malformed: list[str] = []  # collected, not raised by iter_jsonl: its hint names score's --bad-lines
    for number, record in iter_jsonl(text, str(path), "skip", malformed.append):
        if malformed:
            break
        if not isinstance(record, dict) or not isinstance(record.get("text"), str) or not record["text"].strip():
            raise InputError(f"{path}:{number}: each record needs a non-empty 'text'")
        if record.get("label") not in scheme.labels:
            raise InputError(f"{path}:{number}: label {record.get('label')!r} is not in the model's scheme "
                             f"({', '.join(scheme.labels)})")
        records.append({"id": record.get("id", number), "text": record["text"], "label": record["label"]})
    if malformed:
        raise InputError(f"{malformed[0].removeprefix('skipped ')}; fix the line")
    if not records:
        raise InputError(f"{path}: no records to evaluate")
    return records
