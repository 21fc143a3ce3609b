"""What the report step adds to a scoring run (aggregation with intervals and comparisons, every report
file, the commit), on seeds/ and on 5,000 outlets of one paragraph each.

    python bench/report_step.py

A small fake embedder stands in for MiniLM (the embedding is not what is timed), with a head trained on
part of the labelled set. Prints seconds and report.html sizes; writes bench/results/report_step.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import FakeEmbedder  # noqa: E402

from framing.pipeline import score_paths, train  # noqa: E402


def timed_run(inputs: Path, model: Path, out: Path) -> dict:
    marks: dict[str, float] = {}

    def progress(stage: str, _n: int) -> None:
        marks.setdefault(stage, time.perf_counter())

    started = time.perf_counter()
    result = score_paths([inputs], model, out, embedder=FakeEmbedder(), progress=progress)
    ended = time.perf_counter()
    return {"outlets": len(result.summaries), "paragraphs": result.n_paragraphs, "total_s": round(ended - started, 2),
            "report_step_s": round(ended - marks["report"], 2),
            "report_html_bytes": (out / "report.html").stat().st_size}


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        labels = scratch / "labels"
        labels.mkdir()
        (labels / "scheme.json").write_text((ROOT / "labels" / "scheme.json").read_text("utf-8"))
        for name in ("seeds.jsonl", "authored_a.jsonl"):
            (labels / name).write_text((ROOT / "labels" / name).read_text("utf-8"))
        model = scratch / "model"
        train(labels, model, FakeEmbedder())
        seeds = timed_run(ROOT / "seeds", model, scratch / "out-seeds")
        many = scratch / "many"
        many.mkdir()
        lines = [line for line in (ROOT / "labels" / "authored_b.jsonl").read_text("utf-8").splitlines()]
        with open(many / "feed.jsonl", "w", encoding="utf-8") as stream:
            for i in range(5000):
                record = json.loads(lines[i % len(lines)])
                stream.write(json.dumps({"id": f"r{i}", "outlet": f"Outlet {i:04d}",
                                         "text": f"{record['text']} (Item {i}.)"}) + "\n")
        outlets = timed_run(many, model, scratch / "out-many")
    result = {"seeds": seeds, "5000_outlets": outlets}
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "report_step.json").write_text(json.dumps(result, indent=2) + "\n")
    for name, row in result.items():
        print(f"{name}: {row['outlets']} outlets, {row['paragraphs']} paragraphs: run {row['total_s']} s, of which "
              f"the report step {row['report_step_s']} s; report.html {row['report_html_bytes'] / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
