"""The Ray engine: `score_paths` on a Ray Data cluster, with the same outputs as the local engine.

The same stages, run as a Ray Dataset:

    file paths -> read + segment (tasks, one file each, or one range of a large JSONL or Parquet file) -> documents
    -> paragraphs -> de-duplicated per (outlet, text) (an aggregate on the digest: the first by reading order wins)
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
import logging
import os
import pickle
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from .cache import default_cache_dir
from .classify import Model, load_model
from .embed import Embedder
from .encodings import sniff_encoding
from .errors import FramingError, InputError
from .files import ReportFolder
from .options import DEFAULT_MODEL, DEFAULT_OUT, CacheOptions, ScoreOptions
from .pipeline import (
    Progress,
    ScoreResult,
    Warn,
    _calibration,
    _document_record,
    _keep_beside_reports,
    _quiet,
    _report_inputs,
    check_counted,
    fast_note,
    fast_scorer,
    language_note,
    make_embedder,
    paragraph_record,
)
from .readers import (
    _HEAD_BYTES,
    SUFFIX_FORMAT,
    LineRange,
    ReadOptions,
    RowGroups,
    _read_file,
    input_files,
    outlet_speller,
    read_aliases,
)
from .records import Paragraph
from .report import format_table, write_jsonl_record
from .reporting import Reduction, aggregate, write_reports
from .scoring import score_batch
from .segment import segment

_REC_BITS = 32  # a document's order is (part number << 32) | record number: one int64 that sorts in reading order
_LAST = (1 << _REC_BITS) - 1  # the record number of a part's closing row (its trailing warnings)

# A JSONL file larger than this is read as ranges of lines of about this size, one task each, so that one huge
# file is read and segmented in parallel: a range holds some 10,000-30,000 articles, enough to make a task's start
# and the driver's per-range bookkeeping negligible, and a 10 GB file still makes some 160 tasks. A Parquet file
# is cut into ranges of whole row groups holding about as much uncompressed data: about as much text per task.
RANGE_BYTES = 64 << 20
_COUNT_CHUNK = 64 << 20  # the driver counts a large file's lines reading it in pieces this size


PARQUET_FOLDER = "paragraphs.parquet"  # with --format parquet: a folder of shards, as Spark and Ray write them
SHARD_ROWS = 1_000_000  # rows per Parquet shard (~100-200 MB of paragraphs)


class Format(StrEnum):
    """How paragraphs are written: one JSONL file (as the local engine), or Parquet shards for large runs."""

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
    """One part (a file, a range of lines of one, or a range of row groups of one) -> one row per document (read
    and segmented), then a closing row with its last warnings.

    Outlets are spelled as this part alone would spell them; the driver re-spells them in reading order,
    so that the run's spelling is the local engine's. A framing error (a bad line under --bad-lines fail)
    becomes a row, raised by the driver in reading order.
    """
    notes: list[str] = []
    base = int(item["part"]) << _REC_BITS
    lines = LineRange(int(item["start"]), int(item["end"]) if item["end"] >= 0 else None, int(item["first_line"]))
    groups = RowGroups(int(item["group_start"]), int(item["group_stop"]) if item["group_stop"] >= 0 else None)
    number = 0
    try:
        for document in _read_file(Path(item["path"]), json.loads(item["entry"]), options, notes.append,
                                   outlet_speller(dict(aliases)), lines, groups):
            segmented = segment(document)
            yield {"kind": "doc", "order": base | number, "key": document.key,
                   "record": json.dumps(_document_record(document, document.key, segmented, 0, 0)),
                   "paragraphs": json.dumps([[p.index, p.line, p.text] for p in segmented.paragraphs]),
                   "dropped": json.dumps([[d.line, d.reason, d.text] for d in segmented.dropped_lines]),
                   "n": len(segmented.paragraphs), "suspicious": segmented.suspicious or "",
                   "notes": json.dumps(notes), "error": b""}
            notes.clear()  # not a new list: the reader appends to this one
            number += 1
    except FramingError as error:
        yield _closing_row(base | _LAST, notes, pickle.dumps(error), "error")
        return
    yield _closing_row(base | _LAST, notes, b"", "end")


def _closing_row(order: int, notes: list[str], error: bytes, kind: str) -> dict:
    return {"kind": kind, "order": order, "key": "", "record": "{}", "paragraphs": "[]", "dropped": "[]", "n": 0,
            "suspicious": "", "notes": json.dumps(notes), "error": error}


def _paragraph_rows(row: dict, spellings: dict[str, str]) -> list[dict]:
    """A document row -> its paragraphs, in the run's outlet spelling, each with its de-duplication digest."""
    record = json.loads(row["record"])
    outlet = spellings.get(record["outlet"], record["outlet"])
    # "" for none: a column that is null in one block and text in another does not concatenate
    publisher = spellings.get(record["publisher"], record["publisher"]) if record["publisher"] else ""
    document = json.dumps({name: record[name] for name in ("id", "title", "date", "url")})
    rows, seen = [], set()
    for index, line, text in json.loads(row["paragraphs"]):
        # The local engine's Deduplicator key: sha256 of outlet NUL text
        digest = hashlib.sha256(f"{outlet}\x00{text}".encode("utf-8", "surrogatepass")).hexdigest()[:32]
        rows.append({"order": row["order"], "index": index, "line": line, "doc": row["key"], "outlet": outlet,
                     "publisher": publisher, "text": text, "digest": digest, "document": document,
                     "earlier": digest in seen})  # a repeat within its own document: settled here, whole
        seen.add(digest)
    return rows


def _first_orders_of_repeats(paragraphs) -> dict[str, int]:
    """digest -> the order of the first document that has it, for the digests seen more than once.

    A vectorised aggregate over two small columns; the driver keeps only the repeated digests.
    """
    from ray.data.aggregate import Count, Min

    counted = paragraphs.select_columns(["digest", "order"]).groupby("digest").aggregate(Count(), Min("order"))
    firsts: dict[str, int] = {}
    for batch in counted.iter_batches(batch_format="numpy", batch_size=65_536):
        repeated = batch["count()"] > 1
        firsts.update(zip(batch["digest"][repeated].tolist(), batch["min(order)"][repeated].tolist()))
    return firsts


def _mark_fresh(batch: dict[str, np.ndarray], firsts: dict[str, int]) -> dict[str, np.ndarray]:
    """The first of each digest in reading order is fresh; the rest are repeats (text dropped).

    The first is the earliest document's first occurrence: a row-by-row rule, so it holds whatever
    blocks Ray cuts the rows into.
    """
    order = batch["order"].astype(np.int64)
    first = np.array([firsts.get(d, o) for d, o in zip(batch["digest"].tolist(), order.tolist())], dtype=np.int64)
    fresh = (order == first) & ~np.asarray(batch["earlier"], dtype=bool)
    text = np.where(fresh, batch["text"], "").astype(object)
    return dict(batch, text=text, fresh=fresh)


def _paragraphs_of(batch: dict[str, np.ndarray], rows: np.ndarray) -> list[Paragraph]:
    return [Paragraph(doc=str(batch["doc"][i]), outlet=str(batch["outlet"][i]), index=int(batch["index"][i]),
                      text=str(batch["text"][i]), line=int(batch["line"][i]),
                      publisher=str(batch["publisher"][i]) or None)
            for i in rows]


@dataclass(frozen=True)
class FastRecipe:
    """What an actor needs to build the fast path's cascade (picklable): the model folder and the options."""

    model_dir: str
    options: ScoreOptions


class Scorer:
    """The actor: loads the embedder once (with `fast`, the cascade: the static one, and the model's only
    when a paragraph is uncertain), then scores each batch's fresh paragraphs and returns their
    paragraphs.jsonl records (repeats pass through, unscored, to be counted)."""

    def __init__(self, model: Model, embedder_factory: EmbedderFactory, threads: int,
                 flags: tuple[bool, bool], fast: FastRecipe | None = None) -> None:
        self.model, self.flags = model, flags
        self.cascade = None
        if fast is None:
            self.embedder = embedder_factory()
            _place(self.embedder, threads)
        else:
            def full() -> Embedder:
                embedder = embedder_factory()
                _place(embedder, threads)
                return embedder
            self.cascade, _ = fast_scorer(model, Path(fast.model_dir), fast.options, full)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        fresh = np.asarray(batch["fresh"], dtype=bool)
        rows = np.flatnonzero(fresh)
        paragraphs = _paragraphs_of(batch, rows)
        scored = self.cascade.score(paragraphs) if self.cascade else score_batch(paragraphs, self.model, self.embedder)
        rescored = np.zeros(len(fresh), dtype=bool)
        if self.cascade:
            rescored[rows] = scored.rescored
        records = np.full(len(fresh), "", dtype=object)
        for i, row in zip(rows, scored.rows(self.model.labels)):
            records[i] = json.dumps(paragraph_record(row, json.loads(batch["document"][i]), *self.flags),
                                    ensure_ascii=False)
        return {"order": batch["order"], "index": batch["index"], "doc": batch["doc"], "fresh": fresh,
                "record": records, "rescored": rescored}


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


@dataclass
class _Part:
    """One block's share of the reduce: a Reduction over its rows, and per document the paragraph indices
    of its scored rows (to put documents that straddle blocks back in reading order) and its repeats."""

    reduction: Reduction
    indices: dict[str, list[int]]
    fresh: Counter
    repeats: Counter


def _partial(batch: dict[str, np.ndarray], labels: tuple[str, ...]) -> dict:
    """Reduce one block of rows on the cluster, as the local engine reduces the run: merged on the driver."""
    part = _Part(Reduction(labels), {}, Counter(), Counter())
    for doc, fresh, index, text in zip(batch["doc"], batch["fresh"], batch["index"], batch["record"]):
        if not fresh:
            part.repeats[doc] += 1
            continue
        part.fresh[doc] += 1
        row = json.loads(text)
        if row["counted"]:
            part.indices.setdefault(doc, []).append(int(index))
        part.reduction.add_row(row)
    return {"part": np.array([pickle.dumps(part)], dtype=object)}


def _merge(reduction: Reduction, parts: Iterable[_Part]) -> None:
    """Merge the blocks' reductions into the driver's (which holds the documents), in reading order."""
    pieces: dict[str, list[tuple[int, np.ndarray, int]]] = {}
    for part in parts:
        other = part.reduction
        reduction.evidence = reduction.evidence.merge(other.evidence)
        reduction.vocabulary = reduction.vocabulary.merge(other.vocabulary)
        reduction.passages.update(other.passages)  # in place: a copy per block would be quadratic
        reduction.voices = reduction.voices.merge(other.voices)
        for outlet, counts in other.left_out.items():
            reduction.left_out.setdefault(outlet, Counter()).update(counts)
        reduction.n_paragraphs += other.n_paragraphs
        reduction.non_english += other.non_english
        for doc, indices in part.indices.items():
            pieces.setdefault(doc, []).extend(zip(indices, other._scores[doc], other.strips[doc]))
        for doc, n in part.fresh.items():
            reduction.document(doc)["paragraphs"] += n
        for doc, n in part.repeats.items():
            reduction.document(doc)["duplicates"] += n
            reduction.n_duplicates += n
    for doc, rows in pieces.items():
        rows.sort(key=lambda piece: piece[0])
        reduction._scores[doc] = [scores for _, scores, _ in rows]
        reduction.strips[doc] = [strip for _, _, strip in rows]


# --- the driver --------------------------------------------------------------------------------------

def _files(paths: Sequence[Path], warn: Warn) -> tuple[list[dict], dict[Path, dict]]:
    """What read_documents walks, in its order: each file once, with its manifest entry, as one part, or as
    ranges of lines (split_jsonl) for a large JSONL file, ranges of row groups (split_parquet) for a large
    Parquet file; parts are numbered in reading order."""
    items: list[dict] = []
    manifests: dict[Path, dict] = {}
    for file, manifest, _ in input_files(list(paths), warn):
        manifests[file.parent] = manifest
        entry = json.dumps(manifest.get(file.name, {}))
        fmt = SUFFIX_FORMAT[file.suffix.lower()]
        ranges: Sequence[LineRange | RowGroups] = [LineRange()]
        if fmt == "jsonl":
            ranges = split_jsonl(file, RANGE_BYTES)
        elif fmt == "parquet":
            ranges = split_parquet(file, RANGE_BYTES)
        for part in ranges:  # end and group_stop -1: to the end of the file (a column of ints, never null)
            lines = part if isinstance(part, LineRange) else LineRange()
            groups = part if isinstance(part, RowGroups) else RowGroups()
            items.append({"part": len(items), "path": str(file), "parent": str(file.parent), "entry": entry,
                          "start": lines.start, "end": -1 if lines.end is None else lines.end,
                          "first_line": lines.first_line, "group_start": groups.start,
                          "group_stop": -1 if groups.stop is None else groups.stop})
    return items, manifests


def split_parquet(path: Path, range_bytes: int) -> list[RowGroups]:
    """A Parquet file cut into ranges of whole row groups of about `range_bytes` of uncompressed data each, read
    from its footer alone; the whole file as one range when it is smaller, has one row group, or its footer
    cannot be read (the reader warns, once)."""
    whole = [RowGroups()]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # the reader says what to install
        return whole
    try:
        with pq.ParquetFile(path) as file:
            metadata = file.metadata
            sizes = [metadata.row_group(group).total_byte_size for group in range(metadata.num_row_groups)]
    except (OSError, ValueError, pa.ArrowException):
        return whole
    total = sum(sizes)
    if len(sizes) < 2 or total <= range_bytes:
        return whole
    step = total / -(-total // range_bytes)  # even ranges, as split_jsonl cuts them
    starts = [0]
    filled = 0  # in the current range
    for group, size in enumerate(sizes[:-1]):  # a new range after the group that fills this one, as split_jsonl
        filled += size
        if filled >= step:
            starts.append(group + 1)
            filled = 0
    stops: list[int | None] = [*starts[1:], None]
    return [RowGroups(start, stop) for start, stop in zip(starts, stops)]


def split_jsonl(path: Path, range_bytes: int) -> list[LineRange]:
    """A JSONL file cut into ranges of about `range_bytes`, each starting at a line start and numbered as the
    local reader numbers its lines; the whole file as one range when it is smaller, or cannot be cut exactly.

    The reader splits a UTF-8 file on b"\\n", and also ends a line at a lone CR (except inside a line too long
    to read): counting b"\\n" numbers the lines exactly only in a file without a lone CR. A file with one, or
    one that cannot be cut on bytes (UTF-16, binary), or cannot be read (the reader warns), is read whole.
    """
    whole = [LineRange()]
    try:
        if path.stat().st_size <= range_bytes:
            return whole
        with path.open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if sniff_encoding(stream.read(_HEAD_BYTES), size) != "utf-8":
                return whole
            stream.seek(0)
            step = -(-size // -(-size // range_bytes))  # even ranges: 65 MiB is two of 32.5, not 64 and 1
            starts = [(0, 1)]  # (offset, line number) of each range's first line
            target = step
            offset = newlines = lone_cr = 0  # before this chunk
            ends_in_cr = False
            while chunk := stream.read(_COUNT_CHUNK):
                lone_cr += chunk.count(b"\r") - chunk.count(b"\r\n") - (ends_in_cr and chunk.startswith(b"\n"))
                ends_in_cr = chunk.endswith(b"\r")
                position, before = 0, newlines  # b"\n" in the file before chunk[position]
                while target - 1 < offset + len(chunk):  # the first line start at or after target
                    found = chunk.find(b"\n", max(0, target - 1 - offset))
                    if found < 0:
                        break
                    before += chunk.count(b"\n", position, found + 1)
                    position = found + 1
                    starts.append((offset + position, before + 1))
                    target = offset + position + step
                newlines += chunk.count(b"\n")
                offset += len(chunk)
    except OSError:
        return whole
    starts = [(start, line) for start, line in starts if start < offset]
    if lone_cr or len(starts) < 2:
        return whole
    ends = [start for start, _ in starts[1:]] + [None]
    return [LineRange(start, end, line) for (start, line), end in zip(starts, ends)]


def _run_spellings(rows: list[dict], items: list[dict], manifests: dict[Path, dict],
                   aliases: dict[str, str]) -> dict[str, str]:
    """Each part's outlet spelling -> the run's, replaying read_documents' speller in reading order."""
    canonical = outlet_speller(dict(aliases))
    spellings: dict[str, str] = {}
    folders: set[str] = set()
    by_part: dict[int, list[dict]] = {}
    for row in rows:
        by_part.setdefault(row["order"] >> _REC_BITS, []).append(row)
    for item in items:
        if item["parent"] not in folders:  # a manifest's spelling wins over its folder's records
            folders.add(item["parent"])
            for entry in manifests[Path(item["parent"])].values():
                canonical(entry["outlet"])
        for row in by_part.get(item["part"], []):
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
    context.enable_progress_bars = False  # the library prints nothing: progress goes through the callback
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
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
    Format(format)  # an unknown format fails before any work
    if workers < 1:
        raise InputError(f"workers must be at least 1, not {workers}", option="workers")
    batch_size = batch_size or options.batch_size
    model = load_model(model_dir)
    cache = replace(options.cache, folder=options.cache.folder or default_cache_dir())
    factory = embedder_factory or DefaultEmbedder(model.embedder_name, cache, model.meta.embedder_dimension)
    model.meta.check_fits(factory())  # on the driver: a wrong embedder fails before any cluster work
    fast = FastRecipe(str(model_dir), replace(options, cache=cache)) if options.uses_fast_path else None
    # on the driver too: a missing or stale fast path fails here; its calibration corrects the shares
    driver_cascade, calibration = fast_scorer(model, Path(model_dir), fast.options, factory) if fast \
        else (None, _calibration(Path(model_dir), model))
    protected = [Path(model_dir)] + ([options.labels] if options.labels and Path(options.labels).exists() else [])
    labels = model.labels
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
        reduction, spellings, n_paragraphs = _read_on_driver(documents, items, manifests, aliases, labels,
                                                                folder, warn)
        progress("read", len(reduction.documents))
        # Separate executions: an actor pool holding every CPU would starve a shuffle feeding it.
        from ray.data.expressions import col

        split = (documents.filter(expr=col("kind") == "doc")  # Arrow filters the block: no Python per row
                 .flat_map(_paragraph_rows, fn_kwargs={"spellings": spellings}).materialize())
        deduped = (split.map_batches(_mark_fresh, batch_format="numpy",
                                     fn_kwargs={"firsts": _first_orders_of_repeats(split)})
                   .repartition(max(2 * workers, n_paragraphs // batch_size + 1)).materialize())  # work for every actor
        gpus = int(ray.cluster_resources().get("GPU", 0))
        scored = deduped.map_batches(Scorer, batch_size=batch_size, batch_format="numpy",
                                     compute=ray.data.ActorPoolStrategy(size=workers),
                                     fn_constructor_kwargs={"model": model, "embedder_factory": factory,
                                                            "threads": max(1, cpus // workers), "flags": flags,
                                                            "fast": fast},
                                     **({"num_gpus": 1} if gpus else {"num_cpus": 1}))
        ordered = scored.sort(["order", "index"]).materialize()
        parts = (pickle.loads(row["part"]) for row in  # folded one at a time: never every block's at once
                 ordered.map_batches(_partial, batch_size=None, batch_format="numpy",
                                     fn_kwargs={"labels": labels}).iter_rows())
        _merge(reduction, parts)
        paragraphs = _write_paragraphs(ordered, folder, Format(format), progress)
        check_counted(reduction)
        progress("report", 1)
        summaries, comparisons = aggregate(reduction, calibration, options.method, options.seed, options.baseline,
                                           progress=lambda n: progress("aggregate", n))
        _keep_beside_reports(folder, Path(model_dir), model, calibration if fast else None)
        inputs = _report_inputs(model, Path(model_dir))
        if driver_cascade is not None:
            totals = ordered.sum(["fresh", "rescored"])  # one pass for both counts
            note = fast_note(driver_cascade, int(totals["sum(rescored)"]), int(totals["sum(fresh)"]))
            inputs = replace(inputs, notes=inputs.notes + (note,))
        write_reports(folder, reduction, summaries, comparisons, inputs, paragraphs)
        if paragraphs.name != "paragraphs.jsonl":  # only the CSV writer read it
            paragraphs.unlink()
        files = folder.files()
        folder.commit()
    note = language_note(reduction, model, options)
    if note:
        warn(note)
    return ScoreResult(summaries=summaries, labels=labels, n_documents=len(reduction.documents),
                       n_paragraphs=reduction.n_paragraphs, n_duplicates=reduction.n_duplicates,
                       n_dropped_lines=sum(d["dropped_lines"] for d in reduction.documents), out_dir=Path(out_dir),
                       non_english=reduction.non_english, table=format_table(summaries, labels),
                       seconds=time.perf_counter() - started_at, files=files)


_META = ["kind", "order", "key", "record", "dropped", "n", "suspicious", "notes", "error"]


def _read_on_driver(documents, items: list[dict], manifests: dict[Path, dict], aliases: dict[str, str],
                    labels: tuple[str, ...], folder: ReportFolder, warn: Warn) -> tuple[Reduction, dict[str, str], int]:
    """The documents' small records (never their text), in reading order: warnings, errors, dropped.jsonl,
    the run's outlet spellings, and the reduction that holds one record per document."""
    rows = sorted(documents.select_columns(_META).iter_rows(), key=lambda row: row["order"])
    for row in rows:
        row["record"] = json.loads(row["record"])
    spellings = _run_spellings([r for r in rows if r["kind"] == "doc"], items, manifests, aliases)
    reduction = Reduction(labels)
    n_paragraphs = 0
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
            reduction.add_document(record)
            n_paragraphs += int(row["n"])
    if not reduction.documents:
        n_files = len({item["path"] for item in items})
        raise InputError(f"no readable documents under the given paths: all {n_files} file(s) were skipped or "
                         "empty (see the warnings)")
    return reduction, spellings, n_paragraphs


def _write_paragraphs(ordered, folder: ReportFolder, fmt: Format, progress: Progress) -> Path:
    """Stream the scored records through the driver in reading order into paragraphs.jsonl, or into
    paragraphs.parquet/, a folder of shards (plus a JSONL copy the CSV writer reads, removed before the commit).
    Returns the JSONL."""
    jsonl = folder.path("paragraphs.jsonl" if fmt is Format.JSONL else ".paragraphs.tmp.jsonl")
    writer = None
    with open(jsonl, "w", encoding="utf-8", newline="\n") as stream:
        for batch in ordered.iter_batches(batch_size=4096, batch_format="numpy"):
            lines = [text for text, fresh in zip(batch["record"], batch["fresh"]) if fresh]
            stream.writelines(line + "\n" for line in lines)
            if fmt is Format.PARQUET:
                records = [json.loads(line) for line in lines]
                writer = writer or _ParquetShards(folder.path(PARQUET_FOLDER), tuple(records[0]["scores"])
                                                  if records else (), SHARD_ROWS)
                writer.write(records)
            progress("embed", len(lines))
    if writer is not None:
        writer.close()
    return jsonl


class _ParquetShards:
    """paragraphs.parquet/part-00000.parquet, ...: the JSONL records, with the scores as one column per label,
    a new shard every `shard_rows` rows (one row group per batch) so that no file grows without bound and
    readers can take the shards in parallel; the names sort in reading order."""

    def __init__(self, folder: Path, labels: tuple[str, ...], shard_rows: int) -> None:
        self.folder, self.labels, self.shard_rows = folder, labels, shard_rows
        self.schema = self.writer = None
        self.shards = self.rows_in_shard = 0

    def write(self, records: list[dict]) -> None:
        import pyarrow as pa

        flat = [{**{k: v for k, v in r.items() if k != "scores"},
                 **{f"score_{label}": r["scores"][label] for label in self.labels}} for r in records]
        if flat and self.schema is None:  # the first batch's types; a column it saw only as nulls is text
            inferred = pa.Table.from_pylist(flat).schema
            self.schema = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f
                                     for f in inferred])
        while flat:
            if self.writer is None or self.rows_in_shard >= self.shard_rows:
                self._next_shard()
            part, flat = flat[:self.shard_rows - self.rows_in_shard], flat[self.shard_rows - self.rows_in_shard:]
            self.writer.write_table(pa.Table.from_pylist(part, schema=self.schema))
            self.rows_in_shard += len(part)

    def _next_shard(self) -> None:
        import pyarrow.parquet as pq

        self.close()
        self.folder.mkdir(exist_ok=True)
        self.writer = pq.ParquetWriter(self.folder / f"part-{self.shards:05d}.parquet", self.schema)
        self.shards, self.rows_in_shard = self.shards + 1, 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
