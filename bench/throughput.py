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
FAST_EMBEDDER = ROOT / "models" / "minilm-static-vocab"
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
    """Wall seconds and peak RSS (MB) of a child process.

    The peak is the child's own VmHWM, polled from /proc: wait4's ru_maxrss would also count the
    memory of this (large) parent as it was when the child was forked.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_kb = 0
    while process.poll() is None:
        peak_kb = max(peak_kb, _vm_hwm_kb(process.pid))
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(command)}\n{process.stderr.read().decode()[-2000:]}")
    return seconds, peak_kb / 1024


def _vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def score_command(corpus: Path, model: Path, out: Path, static: bool = False) -> list[str]:
    if not static:
        return [*FRAMING, "--quiet", "score", str(corpus), "--model", str(model), "--out", str(out)]
    code = (STATIC_PLUGIN + "\nfrom framing.pipeline import score_paths, ScoreOptions, CacheOptions\n"
            f"score_paths([{str(corpus)!r}], {str(model)!r}, {str(out)!r}, "
            "ScoreOptions(cache=CacheOptions(enabled=False)), embedder=StaticEmbedder())\n")
    return [sys.executable, "-c", code]


def measure_speed(n: int, paragraphs: list[str], model: Path, tmp: Path, env: dict[str, str]) -> dict:
    corpus = tmp / "corpus"
    write_corpus(paragraphs[:n], corpus)
    bare = bare_encode(paragraphs[:n])
    print(f"bare encode: {bare:.1f} paragraphs/s", flush=True)
    cold_s, cold_mb = run_measured(score_command(corpus, model, tmp / "out-cold"), env)
    print(f"cold: {cold_s:.1f} s", flush=True)
    warm_s, warm_mb = run_measured(score_command(corpus, model, tmp / "out-warm"), env)
    print(f"warm: {warm_s:.1f} s", flush=True)
    return {"n_paragraphs": n, "mean_words": round(sum(len(p.split()) for p in paragraphs[:n]) / n, 1),
            "bare_encode_per_s": round(bare, 1),
            "cold": {"seconds": round(cold_s, 1), "per_s": round(n / cold_s, 1),
                     "ratio_to_bare": round(n / cold_s / bare, 3), "peak_rss_mb": round(cold_mb, 1)},
            "warm": {"seconds": round(warm_s, 1), "cold_over_warm": round(cold_s / warm_s, 1),
                     "peak_rss_mb": round(warm_mb, 1)}}


def measure_memory(sizes: list[int], kind: str, paragraphs: list[str], model: Path, tmp: Path,
                   env: dict[str, str]) -> dict:
    """Peak RSS of `framing score` (cold cache) at each size, with the chosen embedder."""
    memory_model = model
    if kind == "fast":
        if not FAST_EMBEDDER.is_dir():
            raise SystemExit(f"{FAST_EMBEDDER} is missing: run `make fast-embedder` first")
        memory_model = tmp / "model-fast"
        subprocess.run([*FRAMING, "--quiet", "train", "--embedder", str(FAST_EMBEDDER), "--model",
                        str(memory_model)], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    found = {}
    for n in sizes:
        corpus = tmp / f"corpus-{kind}-{n}"
        write_corpus(paragraphs[:n], corpus)
        seconds, mb = run_measured(score_command(corpus, memory_model, tmp / f"out-{kind}-{n}", kind == "static"),
                                   dict(env, FRAMING_CACHE_DIR=str(tmp / f"cache-{kind}-{n}")))
        found[n] = {"peak_rss_mb": round(mb, 1), "seconds": round(seconds, 1)}
        print(f"memory at {n:,}: {mb:.0f} MB ({kind} embedder)", flush=True)
    return {"embedder": kind, "by_paragraphs": found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--memory-n", type=int, default=100_000)
    parser.add_argument("--memory-embedder", choices=["fast", "static", "real"], default="fast")
    parser.add_argument("--model-memory-n", type=int, default=2_000,
                        help="paragraphs for the MiniLM footprint run (peak RSS with the real model loaded)")
    parser.add_argument("--memory-only", action="store_true",
                        help="keep the speed results already in throughput.json; redo only the memory runs")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_file = RESULTS / "throughput.json"
    with tempfile.TemporaryDirectory(prefix="framing-bench-") as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, FRAMING_CACHE_DIR=str(tmp / "cache"))
        model = tmp / "model"
        subprocess.run([*FRAMING, "--quiet", "train", "--model", str(model)], env=env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        paragraphs = make_paragraphs(max(args.n, args.memory_n))
        print(f"{len(paragraphs):,} distinct paragraphs generated", flush=True)
        speed = (json.loads(out_file.read_text(encoding="utf-8"))["speed"] if args.memory_only
                 else measure_speed(args.n, paragraphs, model, tmp, env))
        memory = measure_memory(sorted({args.n, args.memory_n}), args.memory_embedder, paragraphs, model, tmp, env)
        model_memory = measure_memory([args.model_memory_n], "real", paragraphs, model, tmp, env)
    result = {"command": "python bench/throughput.py " + " ".join(sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "speed": speed, "memory": memory, "model_memory": model_memory,
              "peak_rss_method": "VmHWM of the child process, polled every 0.2 s"}
    out_file.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    cold, warm = speed["cold"], speed["warm"]
    rows = [("bare encode (MiniLM)", f"{speed['bare_encode_per_s']:.1f} para/s", ""),
            ("framing score, cold cache", f"{cold['per_s']:.1f} para/s", f"{cold['ratio_to_bare']:.2f} of bare"),
            ("framing score, warm cache", f"{warm['seconds']:.1f} s",
             f"{warm['cold_over_warm']:.1f}x faster than cold"),
            *((f"peak RSS at {n:,} ({memory['embedder']})", f"{m['peak_rss_mb']:.0f} MB", "")
              for n, m in memory["by_paragraphs"].items()),
            *((f"peak RSS at {n:,} (MiniLM)", f"{m['peak_rss_mb']:.0f} MB", "")
              for n, m in model_memory["by_paragraphs"].items())]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name.ljust(width)}  {value:>14}  {note}")


if __name__ == "__main__":
    main()
