"""Paragraphs per second of the local engine and of the Ray engine (1 and 2 actors), and Ray's fixed overhead.

    python bench/scale.py [--paragraphs 1500] [--small 100] [--workers 1 2]
    python bench/scale.py --embedder models/minilm-static-vocab --paragraphs 20000 --out bench/results/scale-static.json

1. Trains a model with the packaged MiniLM (or --embedder, e.g. the static model) on a slice of labels/
   (seeds + authored_a: quick, and throughput does not depend on the head's quality), in a temporary folder.
2. Generates N distinct authored paragraphs (recombined template sentences) as JSONL articles of ten.
3. Scores them with the local engine, then with the Ray engine on a local cluster (`ray.init` once,
   timed apart) with each number of actors; the embedding cache is off, so every run embeds everything.
4. Scores --small paragraphs with both engines: the difference is Ray's overhead per run (scheduling,
   actor start-up with one model load each, shuffles), which a large run pays once.
Prints a table and saves bench/results/scale.json (or --out). Run it alone: two cores are easily disturbed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

SUBJECTS = ["The foreign ministry", "A delegation from the northern provinces", "The port authority",
            "An adviser to the prime minister", "Negotiators from both sides", "The central bank",
            "A coalition of shipping firms", "The defence committee"]
VERBS = ["said on Tuesday that", "warned in a statement that", "told a press briefing that",
         "argued in a published letter that", "confirmed late on Friday that"]
CLAIMS = ["the pipeline agreement would be signed before the winter", "sanctions had raised the price of fertiliser",
          "the joint exercise was a routine step in a long partnership", "Western pressure would not change its course",
          "the grain corridor would reopen once inspections resumed",
          "the new era of cooperation would benefit both sides",
          "the alliance's expansion threatened regional stability", "tariffs on steel would stay in place for a year"]
TAILS = ["Observers were divided on what the move meant.", "No date has been set for the next round.",
         "The claim could not be verified independently.", "Trading in the capital was quiet afterwards."]


def paragraphs(n: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        text = (f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(CLAIMS)}, and that "
                f"{rng.choice(CLAIMS)}. {rng.choice(TAILS)} (ref. {len(out)})")
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def write_articles(folder: Path, texts: list[str]) -> Path:
    folder.mkdir(parents=True)
    outlets = ["Harbour Ledger", "Eastgate Courier", "Lowland Wire", "Kestrel Daily"]
    with open(folder / "articles.jsonl", "w", encoding="utf-8") as stream:
        for i in range(0, len(texts), 10):
            stream.write(json.dumps({"id": f"a{i}", "outlet": outlets[(i // 10) % len(outlets)],
                                     "text": "\n\n".join(texts[i:i + 10])}) + "\n")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=1500)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--embedder", type=Path, help="a model folder to embed with instead of the packaged MiniLM")
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import ray

    from framing.embed import SentenceTransformerEmbedder, embedder_named
    from framing.engine_ray import score_paths_ray
    from framing.options import CacheOptions, ScoreOptions
    from framing.pipeline import score_paths, train

    tmp = Path(tempfile.mkdtemp(prefix="framing-scale-"))
    try:
        labels = tmp / "labels"
        labels.mkdir()
        for name in ("scheme.json", "seeds.jsonl", "authored_a.jsonl"):
            shutil.copy(ROOT / "labels" / name, labels / name)
        # an absolute path: the model records its embedder's name, and Ray's workers resolve it again
        embedder = embedder_named(str(args.embedder.resolve())) if args.embedder else SentenceTransformerEmbedder()
        train(labels, tmp / "model", embedder)
        options = ScoreOptions(cache=CacheOptions(enabled=False), batch_size=args.batch_size, labels=None)
        big = write_articles(tmp / "big", paragraphs(args.paragraphs))
        small = write_articles(tmp / "small", paragraphs(args.small, seed=12))
        runs: list[dict] = []
        expected: dict[int, int] = {}

        def timed(engine: str, workers: int | None, folder: Path, n: int, call) -> None:
            started = time.perf_counter()
            out = tmp / f"out-{engine}-{workers}-{n}"
            call(folder, out)
            seconds = time.perf_counter() - started
            # paragraphs scored (segmentation may drop a generated line as furniture: the same in every engine)
            scored = (out / "paragraphs.jsonl").read_text(encoding="utf-8").count("\n")
            assert scored == expected.setdefault(n, scored), (scored, expected[n])
            runs.append({"engine": engine, "workers": workers, "paragraphs": n, "scored": scored,
                         "seconds": round(seconds, 2), "paragraphs_per_second": round(scored / seconds, 1)})
            print(f"{engine:6} workers={workers!s:4} n={n:6} {seconds:7.1f} s {scored / seconds:7.1f} para/s",
                  flush=True)

        local = lambda folder, out: score_paths([folder], tmp / "model", out, options, embedder=embedder)  # noqa: E731
        timed("local", None, small, args.small, local)  # warms the encoder: every run below finds it loaded
        timed("local", None, big, args.paragraphs, local)
        started = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        init_seconds = time.perf_counter() - started
        for workers in args.workers:
            timed("ray", workers, big, args.paragraphs,
                  lambda folder, out, w=workers: score_paths_ray([folder], tmp / "model", out, options, workers=w,
                                                                  batch_size=args.batch_size))
        timed("ray", 1, small, args.small,
              lambda folder, out: score_paths_ray([folder], tmp / "model", out, options, workers=1,
                                                  batch_size=args.batch_size))
        ray.shutdown()
        by = {(r["engine"], r["workers"], r["paragraphs"]): r for r in runs}
        overhead = by[("ray", 1, args.small)]["seconds"] - by[("local", None, args.small)]["seconds"]
        summary = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                               "platform": platform.platform()},
                   "ray": ray.__version__, "embedder": f"{args.embedder or 'all-MiniLM-L6-v2 (packaged)'}, CPU, "
                                                       "cache off",
                   "batch_size": args.batch_size, "ray_init_seconds": round(init_seconds, 2), "runs": runs,
                   "ray_overhead_seconds_at_small": round(overhead, 2)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"ray.init {init_seconds:.1f} s; Ray's overhead at {args.small} paragraphs: {overhead:.1f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
