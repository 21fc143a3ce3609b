"""The Ray engine (framing.engine_ray) on a local cluster: the local engine's outputs, and no paragraph lost or
doubled when an embedding actor dies mid-run or when a large JSONL or Parquet file is read in ranges.

One local cluster (2 CPUs) for the module; the embedder is the fake one (built in each actor from a picklable
factory), the model is trained on it from a slice of the labelled set. Skipped without Ray, except in CI.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, FakeEmbedder

from framing.engine_ray import ray_available

if not ray_available():
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI must run the Ray engine's tests: install the extra (pip install '.[ray]')")
    pytest.skip("Ray is not installed (pip install '.[ray]')", allow_module_level=True)

import conftest  # noqa: E402
import ray  # noqa: E402
import ray.cloudpickle  # noqa: E402

from framing import engine_ray  # noqa: E402
from framing.cache import FILE_NAME, CachedEmbedder, EmbeddingCache  # noqa: E402
from framing.engine_ray import score_paths_ray, split_jsonl, split_parquet  # noqa: E402
from framing.errors import InputError, OutputError  # noqa: E402
from framing.options import ScoreOptions  # noqa: E402
from framing.pipeline import score_paths, train  # noqa: E402
from framing.readers import LineRange, ReadOptions, RowGroups, _read_file, outlet_speller  # noqa: E402

# Workers cannot import the test modules: ship the fake embedder and the factories below by value.
ray.cloudpickle.register_pickle_by_value(conftest)
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

OUTLETS = ["Harbour Ledger", "harbour  ledger", "Eastgate Courier", "The Meridian Post", "Lowland Wire",
           "Kestrel Daily"]
OPENINGS = ["Officials in the capital said on Monday that", "A spokesperson for the ministry told reporters that",
            "According to figures released this week,", "Analysts at a regional institute argued that",
            "In a statement issued late on Thursday, the government said that",
            "Delegates attending the summit agreed that"]
MIDDLES = ["the new partnership would bring win-win results for both economies",
           "the sanctions imposed by Washington had failed to change anything on the ground",
           "grain shipments through the northern corridor rose by a fifth in the second quarter",
           "NATO's expansion had pushed the region back toward a cold war footing",
           "the friendship between the two countries had entered a new era of trust",
           "the port authority would publish its revised tariff schedule before the end of the month",
           "Western hegemony was giving way to a more balanced order",
           "the ministry had not yet decided whether to extend the fishing quota"]
CLOSINGS = ["The remarks drew a cautious response from diplomats.", "No timetable was given.",
            "Talks are expected to resume next week.", "Markets barely moved on the news.",
            "Critics said the claim was hard to verify.", "The figures have not been independently checked."]


def _paragraph(rng: random.Random) -> str:
    return f"{rng.choice(OPENINGS)} {rng.choice(MIDDLES)}, {rng.choice(MIDDLES)}. {rng.choice(CLOSINGS)}"


def write_archive(folder: Path, n_docs: int = 300, seed: int = 7) -> int:
    """JSONL shards and one Parquet shard of authored, templated articles: about ten paragraphs each, some
    repeated within an outlet (scored once), some across outlets (scored in each), outlets spelled two ways."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    folder.mkdir(parents=True)
    earlier: dict[str, list[str]] = {}
    records = []
    n_paragraphs = 0
    for number in range(n_docs):
        outlet = rng.choice(OUTLETS)
        paragraphs = []
        for _ in range(rng.randint(6, 14)):
            pool = earlier.get(outlet.lower().replace("  ", " "), [])
            paragraphs.append(rng.choice(pool) if pool and rng.random() < 0.08 else _paragraph(rng))
        earlier.setdefault(outlet.lower().replace("  ", " "), []).extend(paragraphs)
        n_paragraphs += len(paragraphs)
        records.append({"id": f"item-{number}", "outlet": outlet, "title": f"Dispatch {number}",
                        "date": f"2025-03-{1 + number % 28:02d}", "text": "\n\n".join(paragraphs)})
    shards = [records[i::4] for i in range(4)]
    for i, shard in enumerate(shards[:3]):
        with open(folder / f"shard-{i}.jsonl", "w", encoding="utf-8") as stream:
            stream.writelines(json.dumps(record) + "\n" for record in shard)
    pq.write_table(pa.Table.from_pylist(shards[3]), folder / "shard-3.parquet")
    return n_paragraphs


@dataclass(frozen=True)
class CachedFake:
    """Each actor's embedder: the fake one behind the on-disk cache in `folder` (shared by the workers)."""

    folder: str

    def __call__(self):
        return CachedEmbedder(FakeEmbedder(), EmbeddingCache(self.folder), FakeEmbedder.dimension)


class _Dying(FakeEmbedder):
    def __init__(self, marker: str, after: int) -> None:
        self.marker, self.after, self.calls = marker, after, 0

    def embed(self, texts):
        self.calls += 1
        if self.calls == self.after:
            try:  # the first actor to get here, once per run: O_EXCL makes the claim atomic
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                os._exit(1)  # the process dies mid-batch, as a worker killed by the OOM killer would
        return super().embed(texts)


@dataclass(frozen=True)
class DyingFake:
    """The fake embedder in an actor that kills its own process on its `after`-th batch, the first time."""

    marker: str
    after: int = 2

    def __call__(self):
        return _Dying(self.marker, self.after)


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def labels(tmp_path_factory) -> Path:
    labels = tmp_path_factory.mktemp("labels") / "labels"
    labels.mkdir()
    for name in ("scheme.json", "seeds.jsonl", "authored_a.jsonl"):
        shutil.copy(ROOT / "labels" / name, labels / name)
    return labels


@pytest.fixture(scope="module")
def model(tmp_path_factory, labels) -> Path:
    folder = tmp_path_factory.mktemp("ray-model") / "model"
    train(labels, folder, FakeEmbedder())
    return folder


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("inputs")
    shutil.copytree(ROOT / "seeds", root / "seeds")
    assert write_archive(root / "archive") > 2000
    return [root / "seeds", root / "archive"]


@pytest.fixture(scope="module")
def local(tmp_path_factory, model, inputs) -> Path:
    out = tmp_path_factory.mktemp("local") / "reports"
    score_paths(inputs, model, out, embedder=FakeEmbedder())
    return out


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_same_paragraphs(expected: list[dict], got: list[dict]) -> None:
    assert len(got) == len(expected)
    for want, have in zip(expected, got):
        assert (have["doc"], have["index"], have["label"]) == (want["doc"], want["index"], want["label"])
        assert np.allclose([have["scores"][k] for k in want["scores"]], list(want["scores"].values()), atol=1e-5)
        # Nearest labelled paragraphs: the same ones; their float32 similarities, rounded to 4 places, may move
        # by one unit in the last place with the batch they were computed in
        assert [n for n, _ in have["neighbours"]] == [n for n, _ in want["neighbours"]]
        assert np.allclose([s for _, s in have["neighbours"]], [s for _, s in want["neighbours"]], atol=2e-4)
        rest = {"scores", "neighbours"}
        assert {k: v for k, v in have.items() if k not in rest} == {k: v for k, v in want.items() if k not in rest}


def test_ray_engine_writes_what_the_local_engine_writes(cluster, model, inputs, local, tmp_path):
    out = tmp_path / "reports"
    cache = tmp_path / "shared-cache"
    result = score_paths_ray(inputs, model, out, workers=2, batch_size=256, embedder_factory=CachedFake(str(cache)))
    expected = rows(local / "paragraphs.jsonl")
    assert len({row["outlet"] for row in expected}) >= 5  # the two spellings of one outlet are one
    assert_same_paragraphs(expected, rows(out / "paragraphs.jsonl"))
    assert json.loads((out / "outlets.json").read_text()) == json.loads((local / "outlets.json").read_text())
    assert rows(out / "documents.jsonl") == rows(local / "documents.jsonl")
    assert (out / "dropped.jsonl").read_bytes() == (local / "dropped.jsonl").read_bytes()
    assert result.n_duplicates > 0 and result.n_paragraphs == len([r for r in expected if r["counted"]])
    # Both actors embedded through the same SQLite cache: every distinct scored text is in it once.
    entries = EmbeddingCache(cache).info()["entries"]
    assert entries == {FakeEmbedder.name: len({row["text"] for row in expected})}
    assert (cache / FILE_NAME).exists()


def test_an_actor_that_dies_mid_run_loses_and_duplicates_nothing(cluster, model, inputs, local, tmp_path):
    marker = tmp_path / "died"
    out = tmp_path / "reports"
    score_paths_ray(inputs, model, out, workers=2, batch_size=128, embedder_factory=DyingFake(str(marker)))
    assert marker.exists()  # an actor did die
    got = rows(out / "paragraphs.jsonl")
    keys = [(row["doc"], row["index"]) for row in got]
    assert len(keys) == len(set(keys))
    assert_same_paragraphs(rows(local / "paragraphs.jsonl"), got)
    assert json.loads((out / "outlets.json").read_text()) == json.loads((local / "outlets.json").read_text())


def _documents_with_repeats() -> list[dict]:
    """Document rows as `_read_rows` yields them: repeats within a document, across documents of an outlet
    (in reading order and out of it), and the same text in two outlets (fresh in both)."""
    texts = [["a", "b", "a", "c"], ["c", "d", "b"], ["a", "a", "e"], ["b", "f", "f", "f"], ["a", "c"]]
    outlets = ["One", "One", "Two", "One", "Two"]
    orders = [5, 2 << 32, 3, (1 << 32) | 7, 9]  # not the list's order: reading order is the `order` column
    return [{"kind": "doc", "order": order, "key": f"doc-{i}",
             "record": json.dumps({"outlet": outlet, "publisher": "", "id": f"{i}", "title": "", "date": "",
                                   "url": ""}),
             "paragraphs": json.dumps([[index, index + 1, f"paragraph {text}"] for index, text in enumerate(doc)])}
            for i, (doc, outlet, order) in enumerate(zip(texts, outlets, orders))]


@pytest.mark.parametrize("blocks,batch", [(1, None), (3, 2), (19, 1), (5, 7)])
def test_repeats_are_settled_as_the_local_engine_settles_them_whatever_the_blocks(cluster, blocks, batch):
    from framing.records import Paragraph
    from framing.scoring import Deduplicator

    split = [row for doc in _documents_with_repeats() for row in engine_ray._paragraph_rows(doc, {})]
    dataset = ray.data.from_items(split, override_num_blocks=blocks)
    firsts = engine_ray._first_orders_of_repeats(dataset)
    marked = dataset.map_batches(engine_ray._mark_fresh, batch_size=batch, batch_format="numpy",
                                 fn_kwargs={"firsts": firsts}).take_all()
    got = {(row["order"], row["index"]): (bool(row["fresh"]), row["text"]) for row in marked}
    reading = sorted(split, key=lambda row: (row["order"], row["index"]))
    kept = Deduplicator().fresh([Paragraph(doc=row["doc"], outlet=row["outlet"], index=row["index"],
                                           text=row["text"], line=row["line"]) for row in reading])
    fresh = {(row["order"], row["index"]) for row in reading
             if any(p.doc == row["doc"] and p.index == row["index"] for p in kept)}
    assert len(got) == len(split) == 16 and len(fresh) == 8
    assert got == {(row["order"], row["index"]): ((row["order"], row["index"]) in fresh,
                                                  row["text"] if (row["order"], row["index"]) in fresh else "")
                   for row in split}


def test_parquet_output_holds_the_same_rows_in_shards(cluster, model, inputs, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from framing import engine_ray

    local_out, out = tmp_path / "local", tmp_path / "ray"
    score_paths([inputs[0]], model, local_out, embedder=FakeEmbedder())
    monkeypatch.setattr(engine_ray, "SHARD_ROWS", 50)  # small shards, so that there are several
    score_paths_ray([inputs[0]], model, out, workers=1, format="parquet", embedder_factory=FakeEmbedder)
    assert not (out / "paragraphs.jsonl").exists() and not list(out.glob(".*"))
    shards = sorted((out / "paragraphs.parquet").iterdir())
    sizes = [pq.read_metadata(shard).num_rows for shard in shards]
    assert len(shards) > 1 and all(size == 50 for size in sizes[:-1]) and 0 < sizes[-1] <= 50
    table = [row for shard in shards for row in pq.read_table(shard).to_pylist()]  # names sort in reading order
    expected = rows(local_out / "paragraphs.jsonl")
    assert [(r["doc"], r["index"], r["label"], r["text"]) for r in table] == \
        [(r["doc"], r["index"], r["label"], r["text"]) for r in expected]
    labels = list(expected[0]["scores"])
    assert np.allclose([[r[f"score_{k}"] for k in labels] for r in table],
                       [[r["scores"][k] for k in labels] for r in expected], atol=1e-5)
    assert (out / "outlets.json").read_text() == (local_out / "outlets.json").read_text()
    # A second run may replace framing's own shards folder, and only that: a stray file in it is the user's.
    score_paths_ray([inputs[0]], model, out, workers=1, format="parquet", embedder_factory=FakeEmbedder)
    (out / "paragraphs.parquet" / "notes.txt").write_text("mine")
    with pytest.raises(OutputError):
        score_paths_ray([inputs[0]], model, out, workers=1, format="parquet", embedder_factory=FakeEmbedder)
    assert (out / "paragraphs.parquet" / "notes.txt").read_text() == "mine"


# --- a large JSONL file, read in ranges of lines ------------------------------------------------------------

def _lines_file(path: Path, ending: bytes, final: bool, bom: bool = False) -> bytes:
    """Records, blank and white lines, a malformed line, a record without text, an over-long record and a line
    that is not UTF-8: every kind of line the reader numbers, each kind at several places."""
    lines = []
    for number in range(12):
        lines.append(json.dumps({"id": f"r{number}", "text": f"Record {number} says the port reopened."}).encode())
        lines.append([b"", b"   ", b"{not json", b'{"title": "no text"}', b'{"text": "' + b"long " * 30 + b'"}',
                      b'{"text": "caf\xe9 owners met the mayor"}'][number % 6])
    data = (b"\xef\xbb\xbf" if bom else b"") + ending.join(lines) + (ending if final else b"")
    path.write_bytes(data)
    return data


def _read_in(path: Path, ranges: list[LineRange], options: ReadOptions) -> tuple[list[tuple], list[str]]:
    warnings: list[str] = []
    documents = [(d.key, d.id, d.text) for lines in ranges
                 for d in _read_file(path, {}, options, warnings.append, outlet_speller({}), lines)]
    return documents, warnings


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
@pytest.mark.parametrize("final", [True, False])
@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("chunk", [None, 5])  # 5: the driver's count reads in pieces that cut lines and CRLFs
def test_ranges_cut_anywhere_lose_and_double_no_line(tmp_path, monkeypatch, ending, final, bom, chunk):
    if chunk:
        monkeypatch.setattr(engine_ray, "_COUNT_CHUNK", chunk)
    path = tmp_path / "feed.jsonl"
    data = _lines_file(path, ending, final, bom)
    options = ReadOptions(bad_lines="skip", max_bytes=100)
    whole = _read_in(path, [LineRange()], options)
    assert len(whole[0]) == 12 + 2 and len(whole[1]) == 2 * 3  # records and the cp1252 lines; 3 kinds skipped
    line_starts = {i + 1 for i, byte in enumerate(data[:-1]) if byte == ord("\n")}
    cuts: set[int] = set()
    for range_bytes in range(1, len(data) + 2):  # every cut target, at a line start or inside a line
        ranges = split_jsonl(path, range_bytes)
        if range_bytes >= len(data):
            assert ranges == [LineRange()]
        elif range_bytes < 40:
            assert len(ranges) > 1
        assert ranges[0].start == 0 and ranges[0].first_line == 1 and ranges[-1].end is None
        for before, after in zip(ranges, ranges[1:]):
            assert before.end == after.start and after.start in line_starts
            assert after.first_line == 1 + data[:after.start].count(b"\n")
        cuts.update(r.start for r in ranges[1:])
        assert _read_in(path, ranges, options) == whole, range_bytes
    assert cuts == line_starts  # each line start was a cut, from a target on it and from targets inside lines


def test_a_file_whose_lines_cannot_be_numbered_by_newlines_is_not_split(tmp_path):
    lone_cr = tmp_path / "lone-cr.jsonl"
    lone_cr.write_bytes(b'{"text": "one"}\r{"text": "two"}\n{"text": "three"}\n' * 20)
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_text('{"text": "one"}\n' * 50, encoding="utf-16")
    one_line = tmp_path / "one-line.jsonl"
    one_line.write_text(json.dumps({"text": "word " * 200}), encoding="utf-8")
    for path in (lone_cr, utf16, one_line):
        assert split_jsonl(path, 16) == [LineRange()], path
    assert len(split_jsonl(lone_cr.with_name("plain.jsonl"), 16)) == 1  # a missing file: read whole, warned there


BIG_RECORDS = 2000
BAD_AT = 600  # index of the malformed line among the records: in the second of five ranges


def _bulletin(rng: random.Random, earlier: dict[str, list[str]]) -> tuple[str, list[str]]:
    """A big file's record: an outlet ("" for one attributed only by its credit) and one or two paragraphs,
    sometimes one the outlet ran before (`earlier`, updated)."""
    outlet = rng.choice(OUTLETS + [""])
    paragraphs = []
    for _ in range(rng.randint(1, 2)):
        pool = earlier.get(outlet.lower().replace("  ", " "), [])
        paragraphs.append(rng.choice(pool) if pool and rng.random() < 0.1 else _paragraph(rng))
    earlier.setdefault(outlet.lower().replace("  ", " "), []).extend(paragraphs)
    if not outlet:  # attributed by the credit: outlet MENAFN, its publisher spelled two ways
        paragraphs.insert(0, f"(MENAFN- {rng.choice(['Khaama Press', 'khaama  press'])})")
    return outlet, paragraphs


def write_big_jsonl(path: Path, seed: int = 11) -> tuple[int, int]:
    """One JSONL file of a few thousand authored records, one or two paragraphs each, outlets spelled several
    ways (and some only by a syndication credit), repeats within outlets, blank lines, one over-long record and
    one malformed line. Returns the malformed line's number and byte offset."""
    rng = random.Random(seed)
    earlier: dict[str, list[str]] = {}
    lines: list[str] = []
    for number in range(BIG_RECORDS):
        outlet, paragraphs = _bulletin(rng, earlier)
        record = {"id": f"big-{number}", "title": f"Bulletin {number}", "text": "\n\n".join(paragraphs)}
        if outlet:
            record["outlet"] = outlet
        lines.append(json.dumps(record))
        if number % 97 == 0:
            lines.append("")
    lines.insert(BAD_AT, '{"id": "broken", "text": "the wire cut off')
    lines.insert(BAD_AT + 400, json.dumps({"id": "huge", "text": "filler " * 1000}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return BAD_AT + 1, len("\n".join(lines[:BAD_AT]).encode()) + 1


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> tuple[Path, int, int]:
    path = tmp_path_factory.mktemp("big") / "wire.jsonl"
    bad_line, bad_offset = write_big_jsonl(path)
    return path, bad_line, bad_offset


def _split_small(monkeypatch, path: Path, bad_offset: int) -> None:
    """Make the engine cut `path` into five ranges, the malformed line in the second."""
    monkeypatch.setattr(engine_ray, "RANGE_BYTES", path.stat().st_size // 4)
    ranges = split_jsonl(path, engine_ray.RANGE_BYTES)
    assert len(ranges) >= 4 and ranges[1].start <= bad_offset < ranges[1].end
    assert len(engine_ray._files([path], lambda _: None)[0]) == len(ranges)  # one task each


def assert_ranges_give_the_local_outputs(path: Path, model: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """Score one large file (a bad record skipped, an over-long one over --max-bytes) with both engines, the
    Ray one reading it in ranges; assert the same rows, reports and warnings. (The Ray run's folder and its
    warnings, for the caller's own checks.)"""
    options = ScoreOptions(read=ReadOptions(bad_lines="skip", max_bytes=4000))
    local_out, out = tmp_path / "local", tmp_path / "ray"
    local_warnings: list[str] = []
    ray_warnings: list[str] = []
    score_paths([path], model, local_out, options, embedder=FakeEmbedder(), warn=local_warnings.append)
    score_paths_ray([path], model, out, options, workers=2, batch_size=512, embedder_factory=FakeEmbedder,
                    warn=ray_warnings.append)
    expected = rows(local_out / "paragraphs.jsonl")
    assert len(expected) > 2000 and {"MENAFN", "Harbour Ledger"} <= {row["outlet"] for row in expected}
    assert any(row["publisher"] for row in expected)  # the credit names a publisher
    assert_same_paragraphs(expected, rows(out / "paragraphs.jsonl"))
    assert json.loads((out / "outlets.json").read_text()) == json.loads((local_out / "outlets.json").read_text())
    assert rows(out / "documents.jsonl") == rows(local_out / "documents.jsonl")
    assert (out / "dropped.jsonl").read_bytes() == (local_out / "dropped.jsonl").read_bytes()
    for name in ("outlets.csv", "report.md"):  # the differences, the evidence picked, the documents
        assert (out / name).read_bytes() == (local_out / name).read_bytes(), name
    assert ray_warnings == local_warnings
    return out, ray_warnings


def both_engines_fail_alike(path: Path, model: Path, tmp_path: Path) -> InputError:
    """Under --bad-lines fail, both engines stop with the same message about the same option; the error."""
    with pytest.raises(InputError) as local:
        score_paths([path], model, tmp_path / "local", embedder=FakeEmbedder())
    with pytest.raises(InputError) as remote:
        score_paths_ray([path], model, tmp_path / "ray", workers=1, embedder_factory=FakeEmbedder)
    assert str(remote.value) == str(local.value)
    assert remote.value.option == local.value.option == "bad_lines"
    return remote.value


def test_a_large_jsonl_read_in_ranges_gives_the_local_engines_outputs(cluster, model, big, tmp_path, monkeypatch):
    path, bad_line, bad_offset = big
    _split_small(monkeypatch, path, bad_offset)
    out, ray_warnings = assert_ranges_give_the_local_outputs(path, model, tmp_path)
    assert any(w.startswith(f"skipped {path}:{bad_line}: malformed JSON") for w in ray_warnings)
    assert any(w.startswith(f"skipped {path}:{bad_line + 400}: ") and "4,000-byte limit" in w for w in ray_warnings)


def test_a_malformed_line_in_a_later_range_fails_with_its_true_line_number(cluster, model, big, tmp_path,
                                                                           monkeypatch):
    path, bad_line, bad_offset = big
    _split_small(monkeypatch, path, bad_offset)
    assert str(both_engines_fail_alike(path, model, tmp_path)).startswith(f"{path}:{bad_line}: malformed JSON")


# --- a large Parquet file, read in ranges of row groups -----------------------------------------------------

GROUP_SIZES = (5, 0, 9, 1, 0, 14, 3)  # rows per row group: uneven, two of them empty


def _groups_file(path: Path, sizes: tuple[int, ...] = GROUP_SIZES, seed: int = 5) -> tuple[list[str], list[str]]:
    """A Parquet file with one row group per size: rows with and without an id, a null text every 7th row, an
    over-long text every 7th (from the 5th). Returns the keys of the rows read and the warnings, in row order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    schema = pa.schema([("id", pa.string()), ("outlet", pa.string()), ("text", pa.string())])
    keys, warnings = [], []
    number = 0
    with pq.ParquetWriter(path, schema) as writer:
        for size in sizes:
            records = []
            for _ in range(size):
                number += 1
                text = {3: None, 5: "filler " * 80}.get(number % 7, _paragraph(rng))
                records.append({"id": f"p{number}" if number % 2 else None, "outlet": rng.choice(OUTLETS),
                                "text": text})
                if text is None:
                    warnings.append(f"skipped {path}: row {number}: missing 'text' in this row")
                elif len(text) > 400:
                    warnings.append(f"skipped row {number:,} of {path}: {len(text):,} bytes is larger than the "
                                    "400-byte limit for one article")
                else:
                    keys.append(f"{path.as_posix()}#{number}")
            writer.write_table(pa.Table.from_pylist(records, schema=schema))  # empty: an empty row group
    return keys, warnings


def _read_groups(path: Path, ranges: list[RowGroups], options: ReadOptions) -> tuple[list[tuple], list[str]]:
    warnings: list[str] = []
    canonical = outlet_speller({})  # one run's spelling, as the driver re-spells the parts' outlets
    documents = [(d.key, d.id, d.text, d.outlet) for groups in ranges
                 for d in _read_file(path, {}, options, warnings.append, canonical, groups=groups)]
    return documents, warnings


def test_row_group_ranges_cut_anywhere_read_back_the_whole_file(tmp_path):
    import itertools

    import pyarrow.parquet as pq

    path = tmp_path / "feed.parquet"
    keys, warnings = _groups_file(path)
    metadata = pq.read_metadata(path)
    assert [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)] == list(GROUP_SIZES)
    options = ReadOptions(bad_lines="skip", max_bytes=400)
    whole = _read_groups(path, [RowGroups()], options)
    assert [key for key, *_ in whole[0]] == keys and whole[1] == warnings  # the file's own row numbers
    assert len(keys) == 32 - 5 - 4 and len(warnings) == 5 + 4  # rows 3, 10, ... without text; 5, 12, ... too long
    assert [doc_id for _, doc_id, *_ in whole[0]][:2] == ["p1", f"{path.as_posix()}#2"]  # no id: the key
    n = len(GROUP_SIZES)
    for k in range(n):  # every way of cutting the groups into ranges, the last one open or closed
        for cuts in itertools.combinations(range(1, n), k):
            bounds = [0, *cuts, n]
            ranges = [RowGroups(a, b) for a, b in zip(bounds, bounds[1:])]
            assert _read_groups(path, ranges, options) == whole, cuts
            ranges[-1] = RowGroups(ranges[-1].start)
            assert _read_groups(path, ranges, options) == whole, cuts
    sizes = [metadata.row_group(g).total_byte_size for g in range(n)]
    seen = set()
    for range_bytes in range(1, sum(sizes) + 2):  # every threshold the driver could cut at
        ranges = split_parquet(path, range_bytes)
        if range_bytes >= sum(sizes):
            assert ranges == [RowGroups()]
        assert ranges[0].start == 0 and ranges[-1].stop is None
        assert all(before.stop == after.start > before.start for before, after in zip(ranges, ranges[1:]))
        if tuple(ranges) not in seen:
            seen.add(tuple(ranges))
            assert _read_groups(path, ranges, options) == whole, range_bytes
    assert len(split_parquet(path, 1)) == n and len(seen) >= 5  # one group a range, and several ways between
    with pytest.raises(InputError) as whole_error:  # under --bad-lines fail: the first null text, by its row
        _read_groups(path, [RowGroups()], ReadOptions(max_bytes=400))
    with pytest.raises(InputError) as ranged_error:
        _read_groups(path, split_parquet(path, 1), ReadOptions(max_bytes=400))
    assert str(ranged_error.value) == str(whole_error.value) and f"{path}: row 3: " in str(whole_error.value)


def test_a_parquet_file_that_cannot_be_cut_is_one_range(tmp_path):
    one_group = tmp_path / "one.parquet"
    _groups_file(one_group, sizes=(30,))
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1 not really" * 10)
    for path in (one_group, garbage, tmp_path / "missing.parquet"):
        assert split_parquet(path, 1) == [RowGroups()], path


BIG_ROWS = 2000
GROUP_ROWS = 250  # eight row groups
BAD_ROW = 1500  # index of the row with a null text: in the seventh group, a later range


def write_big_parquet(path: Path, seed: int = 13) -> int:
    """One Parquet file of authored records, one or two paragraphs each, in row groups: outlets spelled several
    ways (some only by a syndication credit), repeats within outlets, ids on most rows, one over-long record and
    one row without text. Returns that row's number."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    earlier: dict[str, list[str]] = {}
    records = []
    for number in range(BIG_ROWS):
        outlet, paragraphs = _bulletin(rng, earlier)
        records.append({"id": f"pq-{number}" if number % 5 else None, "outlet": outlet or None,
                        "title": f"Bulletin {number}", "text": "\n\n".join(paragraphs)})
    records[BAD_ROW]["text"] = None
    records[BAD_ROW - 700]["text"] = "filler " * 1000
    pq.write_table(pa.Table.from_pylist(records), path, row_group_size=GROUP_ROWS)
    return BAD_ROW + 1


@pytest.fixture(scope="module")
def big_parquet(tmp_path_factory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("big-parquet") / "wire.parquet"
    return path, write_big_parquet(path)


def _split_groups(monkeypatch, path: Path, bad_row: int) -> None:
    """Make the engine cut `path` into at least three ranges of row groups, the row without text in a later one."""
    import pyarrow.parquet as pq

    metadata = pq.read_metadata(path)
    assert metadata.num_row_groups >= 4
    total = sum(metadata.row_group(g).total_byte_size for g in range(metadata.num_row_groups))
    monkeypatch.setattr(engine_ray, "RANGE_BYTES", total // 4)
    ranges = split_parquet(path, engine_ray.RANGE_BYTES)
    assert len(ranges) >= 3
    group = (bad_row - 1) // GROUP_ROWS
    assert [i for i, r in enumerate(ranges) if r.start <= group and (r.stop is None or group < r.stop)][0] >= 2
    assert len(engine_ray._files([path], lambda _: None)[0]) == len(ranges)  # one task each


def test_a_large_parquet_read_in_ranges_gives_the_local_engines_outputs(cluster, model, big_parquet, tmp_path,
                                                                        monkeypatch):
    path, bad_row = big_parquet
    _split_groups(monkeypatch, path, bad_row)
    out, ray_warnings = assert_ranges_give_the_local_outputs(path, model, tmp_path)
    documents = rows(out / "documents.jsonl")
    # the file's own row numbers in the last range: its last row's key, and a row without an id keyed by it
    assert documents[-1]["doc"] == f"{path.as_posix()}#{BIG_ROWS}"
    assert f"{path.as_posix()}#{BIG_ROWS - 4}" in {d["id"] for d in documents}
    assert f"skipped {path}: row {bad_row}: missing 'text' in this row" in ray_warnings
    assert any(w.startswith(f"skipped row {bad_row - 700:,} of {path}: ") and "4,000-byte limit" in w
               for w in ray_warnings)


def test_a_row_without_text_in_a_later_range_fails_with_its_true_row_number(cluster, model, big_parquet, tmp_path,
                                                                            monkeypatch):
    path, bad_row = big_parquet
    _split_groups(monkeypatch, path, bad_row)
    assert str(both_engines_fail_alike(path, model, tmp_path)).startswith(f"{path}: row {bad_row}: missing 'text'")


# --- the fast path on the cluster ------------------------------------------------------------------

def write_static_model(folder: Path, texts: list[str], dimension: int = 16) -> Path:
    """A real static (model2vec-format) folder over these texts' words, with random vectors: read by path
    in every actor, as `make fast-embedder`'s model is."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.normalizers import Lowercase
    from tokenizers.pre_tokenizers import Whitespace

    words = sorted({piece for text in texts for piece, _ in Whitespace().pre_tokenize_str(text.lower())})
    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(["[UNK]"] + words)}, unk_token="[UNK]"))
    tokenizer.normalizer, tokenizer.pre_tokenizer = Lowercase(), Whitespace()
    folder.mkdir(parents=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    table = np.random.default_rng(3).normal(size=(len(words) + 1, dimension)).astype(np.float32)
    save_file({"embeddings": table}, str(folder / "model.safetensors"))
    (folder / "modules.json").write_text(json.dumps(
        [{"idx": 0, "name": "0", "path": ".", "type": "sentence_transformers.models.StaticEmbedding"}]))
    return folder


@pytest.fixture(scope="module")
def fast_model(tmp_path_factory, labels) -> Path:
    """A model on the fake embedder with a fast path on a real static folder."""
    from framing.cascade import train_fast
    from framing.embed import embedder_named
    from framing.labels import load_scheme, read_examples

    texts = [e.text for e in read_examples(labels, load_scheme(labels))] + OPENINGS + MIDDLES + CLOSINGS
    static = write_static_model(tmp_path_factory.mktemp("static") / "static", texts)
    folder = tmp_path_factory.mktemp("fast-model") / "model"
    train(labels, folder, FakeEmbedder())
    train_fast(labels, folder, embedder_named(str(static)))
    return folder


def test_the_fast_path_on_the_cluster_writes_what_it_writes_locally(cluster, fast_model, inputs, tmp_path):
    import re

    from framing.options import CacheOptions

    options = ScoreOptions(fast_threshold=0.5, cache=CacheOptions(enabled=False))
    score_paths(inputs, fast_model, tmp_path / "local", options, embedder=FakeEmbedder())
    score_paths_ray(inputs, fast_model, tmp_path / "ray", options, workers=2, batch_size=256,
                    embedder_factory=CachedFake(str(tmp_path / "cache")))
    local, out = tmp_path / "local", tmp_path / "ray"
    assert_same_paragraphs(rows(local / "paragraphs.jsonl"), rows(out / "paragraphs.jsonl"))
    assert json.loads((out / "outlets.json").read_text()) == json.loads((local / "outlets.json").read_text())
    assert (out / "calibration.json").read_bytes() == (local / "calibration.json").read_bytes()  # the cascade's
    notes = [re.search(r"re-scoring the ([\d,]+) of ([\d,]+)", (folder / "report.md").read_text()) for folder in
             (local, out)]
    assert notes[0] and notes[1] and notes[0].groups() == notes[1].groups()
    rescored, scored = (int(n.replace(",", "")) for n in notes[0].groups())
    assert 0 < rescored < scored  # both models ran: the threshold split the paragraphs
