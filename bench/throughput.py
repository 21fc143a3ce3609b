"""Throughput and memory of `framing score` against the bare encoder (issue: score at the speed of the embedder).

    python bench/throughput.py [--n 20000] [--memory-n 100000] [--memory-embedder static|real]

1. Generates N distinct ~100-word paragraphs by recombining sentences of seeds/ and labels/,
   as JSONL documents of 10 paragraphs.
2. Times the bare `SentenceTransformer.encode` of exactly those paragraphs (same model, this
   process): the limit.
3. Runs `framing score` end to end in a subprocess with an empty cache (cold), then again
   (warm), recording wall time and the child's peak resident memory (wait4 rusage).
4. Peak memory of `framing score` at N and at --memory-n paragraphs. Embedding 100,000
   paragraphs with MiniLM takes about an hour on 2 cores, so by default these runs use the
   opt-in fast embedder (`make fast-embedder`: a static model distilled from MiniLM, loaded by
   the same code path) to measure the pipeline's own growth; MiniLM's footprint is the cold
   run's peak. `--memory-embedder real` uses MiniLM; `static` a hashed stand-in (no model).
Prints a table and saves bench/results/throughput.json. Run it alone: two cores are easily disturbed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
FRAMING = [sys.executable, "-m", "framing"]
FAST_EMBEDDER = ROOT / "models" / "minilm-static-256"
STATIC_PLUGIN = '''
import hashlib, numpy as np
class StaticEmbedder:
    """Hashed bag-of-words vectors: a stand-in with the real interface and no model."""
    name = "sentence-transformers/all-MiniLM-L6-v2"
    dimension = 384
    def embed(self, texts):
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.split():
                out[i, int.from_bytes(hashlib.md5(word.encode()).digest()[:2], "little") % 384] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)
'''


def sentences() -> list[str]:
    texts = [line for path in sorted((ROOT / "seeds").glob("*.txt"))
             for line in path.read_text(encoding="utf-8").split("\n") if len(line.split()) > 12]
    for path in sorted((ROOT / "labels").glob("*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    found = {s.strip() for t in texts for s in re.split(r"(?<=[.!?])\s+", t) if 8 <= len(s.split()) <= 60}
    return sorted(found)


def make_paragraphs(n: int, seed: int = 0) -> list[str]:
    """n distinct paragraphs of about 100 words, each a fresh combination of sentences."""
    pool = sentences()
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        parts, words = [], 0
        while words < 90:
            sentence = rng.choice(pool)
            parts.append(sentence)
            words += len(sentence.split())
        paragraph = " ".join(parts)
        if paragraph not in seen:
            seen.add(paragraph)
            out.append(paragraph)
    return out


def write_corpus(paragraphs: list[str], folder: Path, per_doc: int = 10, per_file: int = 1000) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    docs = [paragraphs[i:i + per_doc] for i in range(0, len(paragraphs), per_doc)]
    for f in range(0, len(docs), per_file):
        with open(folder / f"part-{f // per_file:04d}.jsonl", "w", encoding="utf-8") as out:
            for d, doc in enumerate(docs[f:f + per_file]):
                out.write(json.dumps({"id": f"doc-{f + d}", "outlet": f"outlet-{(f + d) % 7}",
                                      "text": "\n\n".join(doc)}) + "\n")


def bare_encode(paragraphs: list[str]) -> float:
    """Paragraphs per second of SentenceTransformer.encode alone, as framing loads it."""
    from framing.embed import SentenceTransformerEmbedder

    model = SentenceTransformerEmbedder().model
    model.encode(paragraphs[:64], batch_size=32)
    started = time.perf_counter()
    model.encode(paragraphs, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    return len(paragraphs) / (time.perf_counter() - started)


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"command failed: {' '.join(command)}\n{process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def score_command(corpus: Path, model: Path, out: Path, static: bool = False) -> list[str]:
    if not static:
        return [*FRAMING, "--quiet", "score", str(corpus), "--model", str(model), "--out", str(out)]
    code = (STATIC_PLUGIN + "\nfrom framing.pipeline import score_paths, ScoreOptions, CacheOptions\n"
            f"score_paths([{str(corpus)!r}], {str(model)!r}, {str(out)!r}, "
            "ScoreOptions(cache=CacheOptions(enabled=False)), embedder=StaticEmbedder())\n")
    return [sys.executable, "-c", code]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--memory-n", type=int, default=100_000)
    parser.add_argument("--memory-embedder", choices=["fast", "static", "real"], default="fast")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="framing-bench-") as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, FRAMING_CACHE_DIR=str(tmp / "cache"))
        model = tmp / "model"
        subprocess.run([*FRAMING, "--quiet", "train", "--model", str(model)], env=env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        paragraphs = make_paragraphs(max(args.n, args.memory_n))
        corpus = tmp / "corpus"
        write_corpus(paragraphs[:args.n], corpus)
        words = sum(len(p.split()) for p in paragraphs[:args.n]) / args.n
        print(f"{args.n:,} distinct paragraphs, {words:.0f} words on average", flush=True)
        bare = bare_encode(paragraphs[:args.n])
        print(f"bare encode: {bare:.1f} paragraphs/s", flush=True)
        cold_s, cold_mb = run_measured(score_command(corpus, model, tmp / "out-cold"), env)
        print(f"cold: {cold_s:.1f} s", flush=True)
        warm_s, warm_mb = run_measured(score_command(corpus, model, tmp / "out-warm"), env)
        print(f"warm: {warm_s:.1f} s", flush=True)
        static = args.memory_embedder == "static"
        memory_model = model
        if args.memory_embedder == "fast":
            if not FAST_EMBEDDER.is_dir():
                raise SystemExit(f"{FAST_EMBEDDER} is missing: run `make fast-embedder` first")
            memory_model = tmp / "model-fast"
            subprocess.run([*FRAMING, "--quiet", "train", "--embedder", str(FAST_EMBEDDER), "--model",
                            str(memory_model)], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        memory = {}
        for n in sorted({args.n, args.memory_n}):
            big = tmp / f"corpus-{n}"
            write_corpus(paragraphs[:n], big)
            seconds, mb = run_measured(score_command(big, memory_model, tmp / f"out-{n}", static),
                                       dict(env, FRAMING_CACHE_DIR=str(tmp / f"cache-{n}")))
            memory[n] = {"peak_rss_mb": round(mb, 1), "seconds": round(seconds, 1)}
            print(f"memory at {n:,}: {mb:.0f} MB ({args.memory_embedder} embedder)", flush=True)
    cold_rate = args.n / cold_s
    result = {
        "command": "python bench/throughput.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "n_paragraphs": args.n, "mean_words": round(words, 1),
        "bare_encode_per_s": round(bare, 1),
        "cold": {"seconds": round(cold_s, 1), "per_s": round(cold_rate, 1), "ratio_to_bare": round(cold_rate / bare, 3),
                 "peak_rss_mb": round(cold_mb, 1)},
        "warm": {"seconds": round(warm_s, 1), "cold_over_warm": round(cold_s / warm_s, 1),
                 "peak_rss_mb": round(warm_mb, 1)},
        "memory": {"embedder": args.memory_embedder, "by_paragraphs": memory},
    }
    (RESULTS / "throughput.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    rows = [("bare encode", f"{bare:.1f} para/s", ""),
            ("framing score, cold cache", f"{cold_rate:.1f} para/s", f"{cold_rate / bare:.2f} of bare"),
            ("framing score, warm cache", f"{warm_s:.1f} s", f"{cold_s / warm_s:.1f}x faster than cold"),
            *((f"peak RSS at {n:,} ({args.memory_embedder})", f"{m['peak_rss_mb']:.0f} MB", "")
              for n, m in memory.items()),
            ("peak RSS cold run (real model)", f"{cold_mb:.0f} MB", "")]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name.ljust(width)}  {value:>14}  {note}")


if __name__ == "__main__":
    main()
