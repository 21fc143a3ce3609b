"""The Ray engine (framing.engine_ray) on a local cluster: the local engine's outputs, and no paragraph lost or
doubled when an embedding actor dies mid-run.

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

from framing.cache import FILE_NAME, CachedEmbedder, EmbeddingCache  # noqa: E402
from framing.engine_ray import score_paths_ray  # noqa: E402
from framing.errors import OutputError  # noqa: E402
from framing.pipeline import score_paths, train  # noqa: E402

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
def model(tmp_path_factory) -> Path:
    labels = tmp_path_factory.mktemp("labels") / "labels"
    labels.mkdir()
    for name in ("scheme.json", "seeds.jsonl", "authored_a.jsonl"):
        shutil.copy(ROOT / "labels" / name, labels / name)
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
