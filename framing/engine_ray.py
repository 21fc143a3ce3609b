"""The Ray engine: `score_paths` on a Ray Data cluster, with the same outputs as the local engine.

The same stages, run as a Ray Dataset:

    file paths -> read + segment (tasks, one file each) -> documents, materialised
    -> paragraphs -> de-duplicated per (outlet, text) (a groupby on the digest: the first by reading order wins)
    -> score_batch in an actor pool (one model and one embedder per actor, on a GPU where the cluster has one)
    -> per-document tallies (a groupby on the document) and per-block evidence, merged on the driver
    -> paragraphs.jsonl (or paragraphs.parquet) streamed through the driver in reading order
    -> summarize -> every report -> one ReportFolder commit.

The driver holds what the local engine holds (one small record per document, the per-document
probability arrays the intervals are drawn from, bounded evidence heaps), never the run's paragraphs.
Nothing is written outside the staging folder, and only the driver writes: a worker that dies is
restarted and its task retried by Ray, and since no task writes a file, a retried task loses and
duplicates nothing.

Ray is an optional extra (`pip install 'framing[ray]'`): this module imports it only when called.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from .aggregate import DocumentTally, summarize
from .cache import default_cache_dir
from .classify import Model, load_model, read_model_file
from .embed import Embedder
from .errors import FramingError, InputError
from .files import ReportFolder
from .options import DEFAULT_MODEL, DEFAULT_OUT, CacheOptions, ScoreOptions
from .pipeline import (
    Progress,
    ScoreResult,
    Warn,
    _calibration,
    _document_record,
    _quiet,
    _Reduced,
    _write_reports,
    make_embedder,
)
from .prevalence import compare
from .readers import (
    MANIFEST,
    ReadOptions,
    _identity,
    _iter_files,
    _read_file,
    outlet_speller,
    read_aliases,
    read_manifest,
)
from .records import Paragraph
from .relevance import RELEVANCE_FILE, RelevanceModel
from .report import format_table, write_jsonl_record
from .scoring import ScoredBatch, score_batch
from .segment import segment

_REC_BITS = 32  # a document's order is (file number << 32) | record number: one int64 that sorts in reading order
_LAST = (1 << _REC_BITS) - 1  # the record number of a file's closing row (its trailing warnings)


class Format(StrEnum):
    """How paragraphs are written: one JSONL file (as the local engine), or one Parquet file for large runs."""

    JSONL = "jsonl"
    PARQUET = "parquet"


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise InputError("the Ray engine needs Ray: pip install 'framing[ray]'", option="engine") from None
    return ray


@dataclass(frozen=True)
class DefaultEmbedder:
    """The model's own embedder behind the cache, built in each actor (a picklable recipe, not an embedder)."""

    name: str
    cache: CacheOptions
    dimension: int | None

    def __call__(self) -> Embedder:
        return make_embedder(self.name, self.cache, self.dimension)


EmbedderFactory = Callable[[], Embedder]


# --- the stages (each runs on the cluster) -------------------------------------------------------------

def _read_rows(item: dict, options: ReadOptions, aliases: dict[str, str]) -> Iterator[dict]:
    """One file -> one row per document (read and segmented), then a closing row with its last warnings.

    Outlets are spelled as this file alone would spell them; the driver re-spells them in reading order,
    so that the run's spelling is the local engine's. A framing error (a bad line under --bad-lines fail)
    becomes a row, raised by the driver in reading order.
    """
    notes: list[str] = []
    base = int(item["file"]) << _REC_BITS
    number = 0
    try:
        for document in _read_file(Path(item["path"]), json.loads(item["entry"]), options, notes.append,
                                   outlet_speller(dict(aliases))):
            segmented = segment(document)
            yield {"kind": "doc", "order": base | number, "key": document.key,
                   "record": json.dumps(_document_record(document, document.key, segmented, 0, 0)),
                   "paragraphs": json.dumps([[p.index, p.line, p.text] for p in segmented.paragraphs]),
                   "dropped": json.dumps([[d.line, d.reason, d.text] for d in segmented.dropped_lines]),
                   "suspicious": segmented.suspicious or "", "notes": json.dumps(notes), "error": b""}
            notes, number = [], number + 1
    except FramingError as error:
        yield _closing_row(base | _LAST, notes, pickle.dumps(error), "error")
        return
    yield _closing_row(base | _LAST, notes, b"", "end")


def _closing_row(order: int, notes: list[str], error: bytes, kind: str) -> dict:
    return {"kind": kind, "order": order, "key": "", "record": "{}", "paragraphs": "[]", "dropped": "[]",
            "suspicious": "", "notes": json.dumps(notes), "error": error}


def _paragraph_rows(row: dict, spellings: dict[str, str]) -> list[dict]:
    """A document row -> its paragraphs, in the run's outlet spelling, each with its de-duplication digest."""
    record = json.loads(row["record"])
    outlet = spellings.get(record["outlet"], record["outlet"])
    publisher = spellings.get(record["publisher"], record["publisher"]) if record["publisher"] else None
    rows = []
    for index, line, text in json.loads(row["paragraphs"]):
        # The local engine's Deduplicator key: sha256 of outlet NUL text
        digest = hashlib.sha256(f"{outlet}\x00{text}".encode("utf-8", "surrogatepass")).hexdigest()[:32]
        rows.append({"order": row["order"], "index": index, "line": line, "doc": row["key"], "outlet": outlet,
                     "publisher": publisher, "text": text, "digest": digest})
    return rows


def _first_of_group(group: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One digest's paragraphs: the first in reading order is fresh; the rest are repeats (text dropped)."""
    first = np.lexsort((group["index"], group["order"]))[0]
    fresh = np.zeros(len(group["order"]), dtype=bool)
    fresh[first] = True
    text = np.array([t if f else "" for t, f in zip(group["text"], fresh)], dtype=object)
    return dict(group, text=text, fresh=fresh)


def _paragraphs_of(batch: dict[str, np.ndarray], rows: np.ndarray) -> list[Paragraph]:
    return [Paragraph(doc=str(batch["doc"][i]), outlet=str(batch["outlet"][i]), index=int(batch["index"][i]),
                      text=str(batch["text"][i]), line=int(batch["line"][i]),
                      publisher=None if batch["publisher"][i] is None else str(batch["publisher"][i]))
            for i in rows]


class Scorer:
    """The actor: loads the model and the embedder once, then runs score_batch on each fresh paragraph."""

    def __init__(self, model: Model, relevance: RelevanceModel | None, embedder_factory: EmbedderFactory,
                 threads: int) -> None:
        self.model, self.relevance = model, relevance
        self.embedder = embedder_factory()
        _place(self.embedder, threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        fresh = np.asarray(batch["fresh"], dtype=bool)
        n, k = len(fresh), len(self.model.labels)
        rows = np.flatnonzero(fresh)
        scored = score_batch(_paragraphs_of(batch, rows), self.model, self.embedder, self.relevance)
        proba = np.full((n, k), np.nan)
        proba[rows] = scored.proba
        lang = np.full(n, "", dtype=object)
        lang[rows] = scored.languages
        off, off_score = np.zeros(n, dtype=bool), np.zeros(n)
        off[rows], off_score[rows] = scored.off_topic, scored.off_topic_score
        return dict(batch, **{f"p{j}": proba[:, j] for j in range(k)}, lang=lang, off_topic=off,
                    off_topic_score=off_score)


def _place(embedder: Embedder, threads: int) -> None:
    """Load a sentence-transformers encoder now, on the actor's GPU if it has one, on `threads` CPU threads
    otherwise (torch would take every core of the node, and two actors on one node would fight for them)."""
    from .embed import SentenceTransformerEmbedder

    inner = getattr(embedder, "inner", embedder)
    if not isinstance(inner, SentenceTransformerEmbedder):
        return
    import torch

    encoder = inner.model
    torch.set_num_threads(max(1, threads))
    if torch.cuda.is_available():  # Ray sets CUDA_VISIBLE_DEVICES to the actor's GPU
        encoder.to("cuda")


def _scored_batch(batch: dict[str, np.ndarray], rows: np.ndarray, k: int) -> ScoredBatch:
    proba = np.column_stack([np.asarray(batch[f"p{j}"], dtype=float)[rows] for j in range(k)]) if len(rows) \
        else np.zeros((0, k))
    return ScoredBatch(tuple(_paragraphs_of(batch, rows)), proba, tuple(str(x) for x in batch["lang"][rows]),
                       np.asarray(batch["off_topic"], dtype=bool)[rows],
                       np.asarray(batch["off_topic_score"], dtype=float)[rows])


def _tally(group: dict[str, np.ndarray], k: int, flags: tuple[bool, bool]) -> dict[str, np.ndarray]:
    """One document's rows -> its sufficient statistics: counted probabilities in reading order, and repeats."""
    fresh = np.asarray(group["fresh"], dtype=bool)
    rows = np.flatnonzero(fresh)
    rows = rows[np.argsort(np.asarray(group["index"])[rows], kind="stable")]
    batch = _scored_batch(group, rows, k)
    counted = _Reduced(include_off_topic=flags[0], include_other_languages=flags[1]).counted(batch)
    proba = batch.proba[counted]
    return {"order": np.array([group["order"][0]]), "n_repeats": np.array([int((~fresh).sum())]),
            "n_fresh": np.array([len(rows)]),
            "n": np.array([len(proba)]), "proba": np.array([proba.astype(np.float64).tobytes()], dtype=object)}


def _partial(batch: dict[str, np.ndarray], labels: tuple[str, ...], flags: tuple[bool, bool]) -> dict:
    """One block's evidence and left-out counts, as the local reduce builds them: merged on the driver."""
    rows = np.flatnonzero(np.asarray(batch["fresh"], dtype=bool))
    part = _Reduced(include_off_topic=flags[0], include_other_languages=flags[1])
    part.add_scored(_scored_batch(batch, rows, len(labels)), labels)
    state = (part.evidence, part.left_out, part.non_english, part.n_paragraphs)
    return {"part": np.array([pickle.dumps(state)], dtype=object)}


# --- the driver --------------------------------------------------------------------------------------

def _files(paths: Sequence[Path], warn: Warn) -> tuple[list[dict], dict[Path, dict]]:
    """What read_documents walks, in its order: each file once, with its manifest entry."""
    if not paths:
        raise InputError("no input path given: name at least one file or folder")
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder; check the path")
    items: list[dict] = []
    manifests: dict[Path, dict] = {}
    read: dict[tuple[int, int], Path] = {}
    for file in _iter_files(list(paths), warn):
        identity = _identity(file)
        if identity in read:
            warn(f"skipped {file}: the same file as {read[identity]}, already read")
            continue
        if identity is not None:
            read[identity] = file
        if file.parent not in manifests:
            manifests[file.parent] = read_manifest(file.parent / MANIFEST)
            for name in sorted(n for n in manifests[file.parent] if not (file.parent / n).is_file()):
                warn(f"{file.parent / MANIFEST} names {name}, which is not in the folder")
        items.append({"file": len(items), "path": str(file), "parent": str(file.parent),
                      "entry": json.dumps(manifests[file.parent].get(file.name, {}))})
    return items, manifests


def _run_spellings(rows: list[dict], items: list[dict], manifests: dict[Path, dict],
                   aliases: dict[str, str]) -> dict[str, str]:
    """Each file's outlet spelling -> the run's, replaying read_documents' speller in reading order."""
    canonical = outlet_speller(dict(aliases))
    spellings: dict[str, str] = {}
    folders: set[str] = set()
    by_file: dict[int, list[dict]] = {}
    for row in rows:
        by_file.setdefault(row["order"] >> _REC_BITS, []).append(row)
    for item in items:
        if item["parent"] not in folders:  # a manifest's spelling wins over its folder's records
            folders.add(item["parent"])
            for entry in manifests[Path(item["parent"])].values():
                canonical(entry["outlet"])
        for row in by_file.get(item["file"], []):
            record = row["record"]
            for name in (record["outlet"], record["publisher"]):
                if name:
                    spellings[name] = canonical(name)
    return spellings


@contextlib.contextmanager
def _cluster(address: str | None) -> Iterator[Any]:
    """Connect to `address`, or start a local cluster; shut down only what this call started."""
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 configure_logging=True)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    try:
        yield ray
    except Exception as error:  # a framing error raised in a worker reaches the caller as itself
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, FramingError):
            cause = cause.__cause__ or getattr(cause, "cause", None)
        if cause is not None and cause is not error:
            raise cause from None
        raise
    finally:
        if started:
            ray.shutdown()


def score_paths_ray(paths: Sequence[str | os.PathLike], model_dir: str | os.PathLike = DEFAULT_MODEL,
                    out_dir: str | os.PathLike = DEFAULT_OUT, options: ScoreOptions = ScoreOptions(),
                    address: str | None = None, workers: int = 2, batch_size: int | None = None,
                    format: Format | str = Format.JSONL, embedder_factory: EmbedderFactory | None = None,
                    progress: Progress = _quiet, warn: Warn = _quiet) -> ScoreResult:
    """`pipeline.score_paths` on a Ray cluster (`address`, else a local one): the same outputs, written at once.

    `workers` actors score (one GPU each where the cluster has GPUs); `batch_size` paragraphs go to an actor
    at a time (default: options.batch_size). `embedder_factory` builds each actor's embedder (default: the
    model's own, behind the cache, whose folder is resolved here so that local workers share it).
    """
    started_at = time.perf_counter()
    fmt = Format(format)
    if workers < 1:
        raise InputError(f"workers must be at least 1, not {workers}", option="workers")
    batch_size = batch_size or options.batch_size
    model = load_model(model_dir)
    cache = replace(options.cache, folder=options.cache.folder or default_cache_dir())
    factory = embedder_factory or DefaultEmbedder(model.embedder_name, cache, model.meta.embedder_dimension)
    model.meta.check_fits(factory())  # on the driver: a wrong embedder fails before any cluster work
    relevance_text = read_model_file(model_dir, model, RELEVANCE_FILE)
    relevance = RelevanceModel.from_json(relevance_text, str(Path(model_dir) / RELEVANCE_FILE)) \
        if relevance_text is not None else None
    protected = [Path(model_dir)] + ([options.labels] if options.labels and Path(options.labels).exists() else [])
    labels, k = model.labels, len(model.labels)
    flags = (options.include_off_topic, options.include_other_languages or model.meta.multilingual)
    aliases = read_aliases(options.read.aliases) if options.read.aliases else {}
    inputs = [Path(p) for p in paths]
    with _cluster(address) as ray, ReportFolder(out_dir, inputs, protected) as folder:
        items, manifests = _files(inputs, warn)
        if not items:
            raise InputError(f"no readable documents under {', '.join(map(str, inputs))}: expected files ending "
                             "in .htm, .html, .jsonl, .markdown, .md, .parquet, .text, .txt")
        cpus = int(ray.cluster_resources().get("CPU", 1))
        documents = ray.data.from_items(items, override_num_blocks=min(len(items), 4 * cpus)) \
            .flat_map(_read_rows, fn_kwargs={"options": options.read, "aliases": aliases}).materialize()
        reduced, spellings, by_order = _read_on_driver(documents, items, manifests, aliases, k, flags, folder, warn)
        progress("read", len(reduced.documents))
        gpus = int(ray.cluster_resources().get("GPU", 0))
        resources = {"num_gpus": 1} if gpus else {"num_cpus": 1}
        scored = (documents.filter(lambda row: row["kind"] == "doc")
                  .flat_map(_paragraph_rows, fn_kwargs={"spellings": spellings})
                  .groupby("digest").map_groups(_first_of_group, batch_format="numpy")
                  .map_batches(Scorer, batch_size=batch_size, batch_format="numpy",
                               compute=ray.data.ActorPoolStrategy(size=workers),
                               fn_constructor_kwargs={"model": model, "relevance": relevance,
                                                      "embedder_factory": factory, "threads": max(1, cpus // workers)},
                               **resources)
                  .materialize())
        _reduce(scored, reduced, by_order, labels, flags)
        _write_paragraphs(scored, reduced, labels, folder, fmt, progress)
        if not reduced.n_paragraphs:
            left = sum(sum(c.values()) for c in reduced.left_out.values())
            raise InputError("no paragraph counts in the shares: " + (
                f"all {left} were off topic or not in English (they can be counted on request)" if left else
                "every line was furniture or empty"))
        progress("report", 1)
        summaries, estimates = summarize(list(reduced.tallies.values()), labels, _calibration(Path(model_dir), model),
                                         options.method, options.seed, progress=lambda n: progress("aggregate", n))
        summaries = [replace(s, left_out=dict(reduced.left_out.get(s.outlet, {}))) for s in summaries]
        _write_reports(folder, model, Path(model_dir), reduced, summaries,
                       compare(estimates, labels, baseline=options.baseline))
        files = folder.files()
        folder.commit()
    if reduced.non_english and not model.meta.multilingual:
        warn(f"{reduced.non_english} paragraphs are not in English; the model's embedder is English-only, so they "
             "are left out of the shares" + (" (counted in them on request)" if options.include_other_languages
                                             else "") + "; see the 'lang' field in paragraphs.jsonl")
    return ScoreResult(summaries=summaries, labels=labels, n_documents=len(reduced.documents),
                       n_paragraphs=reduced.n_paragraphs, n_duplicates=reduced.n_duplicates,
                       n_dropped_lines=sum(d["dropped_lines"] for d in reduced.documents), out_dir=Path(out_dir),
                       non_english=reduced.non_english, table=format_table(summaries, labels),
                       seconds=time.perf_counter() - started_at, files=files)


_META = ["kind", "order", "key", "record", "dropped", "suspicious", "notes", "error"]


def _read_on_driver(documents, items: list[dict], manifests: dict[Path, dict], aliases: dict[str, str], k: int,
                    flags: tuple[bool, bool], folder: ReportFolder,
                    warn: Warn) -> tuple[_Reduced, dict[str, str], dict[int, dict]]:
    """The documents' small records (never their text), in reading order: warnings, errors, dropped.jsonl,
    the run's outlet spellings, and an empty tally per document (the cluster's tallies merge into it)."""
    rows = sorted(documents.select_columns(_META).iter_rows(), key=lambda row: row["order"])
    for row in rows:
        row["record"] = json.loads(row["record"])
    spellings = _run_spellings([r for r in rows if r["kind"] == "doc"], items, manifests, aliases)
    reduced = _Reduced(include_off_topic=flags[0], include_other_languages=flags[1])
    by_order: dict[int, dict] = {}
    with folder.open("dropped.jsonl") as dropped:
        for row in rows:
            for note in json.loads(row["notes"]):
                warn(note)
            if row["kind"] == "error":
                raise pickle.loads(row["error"])
            if row["kind"] != "doc":
                continue
            record = row["record"]
            record["outlet"] = spellings.get(record["outlet"], record["outlet"])
            if record["publisher"]:
                record["publisher"] = spellings.get(record["publisher"], record["publisher"])
            for line, reason, text in json.loads(row["dropped"]):
                write_jsonl_record(dropped, {"doc": row["key"], "line": line, "reason": reason, "text": text})
            if row["suspicious"]:
                warn(f"{row['key']}: {row['suspicious']} (see dropped.jsonl)")
            reduced.add_document(record, DocumentTally(row["key"], record["outlet"], np.zeros((0, k))))
            by_order[int(row["order"])] = record
    if not reduced.documents:
        raise InputError(f"no readable documents under the given paths: all {len(items)} file(s) were skipped or "
                         "empty (see the warnings)")
    return reduced, spellings, by_order


def _reduce(scored, reduced: _Reduced, by_order: dict[int, dict], labels: tuple[str, ...],
            flags: tuple[bool, bool]) -> None:
    """Merge the cluster's per-document tallies and per-block evidence into the driver's reduce state."""
    k = len(labels)
    for row in scored.groupby("order").map_groups(_tally, fn_kwargs={"k": k, "flags": flags},
                                                  batch_format="numpy").iter_rows():
        record = by_order[int(row["order"])]
        proba = np.frombuffer(row["proba"], dtype=np.float64).reshape(int(row["n"]), k)
        part = DocumentTally(record["doc"], record["outlet"], proba, int(row["n_repeats"]))
        reduced.tallies[record["doc"]] = reduced.tallies[record["doc"]].merge(part)
        reduced.n_duplicates += part.n_duplicates
        record["paragraphs"], record["duplicates"] = int(row["n_fresh"]), part.n_duplicates
    fresh = scored.filter(lambda row: bool(row["fresh"]))
    for row in fresh.map_batches(_partial, batch_size=None, batch_format="numpy",
                                 fn_kwargs={"labels": labels, "flags": flags}).iter_rows():
        evidence, left_out, non_english, n_paragraphs = pickle.loads(row["part"])
        reduced.evidence = reduced.evidence.merge(evidence)
        for outlet, counts in left_out.items():
            reduced.left_out.setdefault(outlet, Counter()).update(counts)
        reduced.non_english += non_english
        reduced.n_paragraphs += n_paragraphs


def _write_paragraphs(scored, reduced: _Reduced, labels: tuple[str, ...], folder: ReportFolder, fmt: Format,
                      progress: Progress) -> None:
    """Stream the fresh paragraphs through the driver in reading order into paragraphs.jsonl or .parquet."""
    k = len(labels)
    ordered = scored.filter(lambda row: bool(row["fresh"])).sort(["order", "index"])
    writer = _ParquetWriter(folder.path("paragraphs.parquet"), labels) if fmt is Format.PARQUET else None
    with contextlib.ExitStack() as stack:
        stream = stack.enter_context(folder.open("paragraphs.jsonl")) if writer is None else None
        if writer is not None:
            stack.callback(writer.close)
        for batch in ordered.iter_batches(batch_size=4096, batch_format="numpy"):
            scored_batch = _scored_batch(batch, np.arange(len(batch["order"])), k)
            counted = reduced.counted(scored_batch)
            records = [dict(reduced.with_document(row), counted=bool(is_counted))
                       for row, is_counted in zip(scored_batch.rows(labels), counted)]
            if writer is not None:
                writer.write(records)
            else:
                for record in records:
                    write_jsonl_record(stream, record)
            progress("embed", len(records))


class _ParquetWriter:
    """paragraphs.parquet, one row group per batch: the JSONL records, scores as one column per label."""

    def __init__(self, path: Path, labels: tuple[str, ...]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa, self.labels = pa, labels
        text, flag, number = pa.string(), pa.bool_(), pa.int64()
        fields = [("doc", text), ("id", text), ("outlet", text), ("publisher", text), ("index", number),
                  ("line", number), ("text", text), ("label", text)]
        fields += [(f"score_{label}", pa.float64()) for label in labels]
        fields += [("off_topic", pa.float64()), ("lang", text), ("title", text), ("date", text), ("url", text),
                   ("counted", flag)]
        self.schema = pa.schema(fields)
        self.writer = pq.ParquetWriter(path, self.schema)

    def write(self, records: list[dict]) -> None:
        flat = [{**{k: v for k, v in r.items() if k != "scores"},
                 **{f"score_{label}": r["scores"][label] for label in self.labels}} for r in records]
        self.writer.write_table(self.pa.Table.from_pylist(flat, schema=self.schema))

    def close(self) -> None:
        self.writer.close()
