"""End to end: `framing score` with MiniLM, with the static model alone, and with `--fast`, on the same corpus.

    make fast-embedder
    .venv/bin/python bench/fastpath_e2e.py [--n 2000 8000]     # writes bench/results/fastpath_e2e.json

bench/fastpath.py times embed + classify; this times the whole command (start-up, reading, segmenting,
scoring, every report) in a subprocess with an empty embedding cache, on N generated ~100-word paragraphs
(bench/throughput.py's corpus), at several sizes: start-up costs weigh less on a larger input. Three
models are trained from labels/ into a temporary folder: the default (MiniLM), the same with
--fast-embedder (the cascade at its trained threshold, at --fast-budget 0.02, and at --fast-threshold 0: its
static head alone), and a static-only model (--embedder). Each fast run's re-scored share is read from its
report.md. Run it alone: two cores are easily disturbed. The ratio, not the rate, is the figure
to read.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from throughput import make_paragraphs, write_corpus

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "models" / "minilm-static-vocab"
FRAMING = [sys.executable, "-m", "framing"]


def run(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(FRAMING + args, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def time_paths(tmp: Path, n: int, env: dict[str, str]) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds of one `framing score` run per path on n paragraphs, each with an empty cache, and the share
    each fast run re-scored."""
    corpus = tmp / f"corpus-{n}"
    write_corpus(make_paragraphs(n), corpus)
    seconds, shares = {}, {}
    for name, model, extra in (("minilm", "minilm", []), ("static alone", "static", []),
                               ("cascade (--fast)", "minilm", ["--fast"]),
                               ("--fast-budget 0.02", "minilm", ["--fast-budget", "0.02"]),
                               ("--fast-threshold 0", "minilm", ["--fast-threshold", "0"])):
        tag = f"{n}-{model}-{len(seconds)}"
        cache = tmp / f"cache-{tag}"  # empty: every paragraph embedded
        out = tmp / f"out-{tag}"
        seconds[name] = run(["score", str(corpus), "--model", str(tmp / model), "--out", str(out),
                             "--cache-dir", str(cache), *extra], env)
        found = RESCORED.search((out / "report.md").read_text(encoding="utf-8"))
        if found:
            shares[name] = int(found[1].replace(",", "")) / int(found[2].replace(",", ""))
        print(f"{n} paragraphs, {name}: {seconds[name]:.1f} s, {n / seconds[name]:.1f} paragraphs/s", file=sys.stderr)
    return seconds, shares


RESCORED = re.compile(r"re-scoring the ([\d,]+) of ([\d,]+)")  # pipeline.fast_note's words


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[2000, 8000], help="corpus sizes, each timed")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fastpath_e2e.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        train_env = dict(env, FRAMING_CACHE_DIR=str(tmp / "train-cache"))  # training embeds are not timed
        run(["train", "--model", str(tmp / "minilm"), "--fast-embedder", str(STATIC)], train_env)
        run(["train", "--model", str(tmp / "static"), "--embedder", str(STATIC)], train_env)
        sizes = {n: time_paths(tmp, n, env) for n in args.n}
    result = {"created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "n": args.n,
              "load_average_after": os.getloadavg(),
              "sizes": {str(n): {name: {"seconds": round(s, 2), "paragraphs_per_s": round(n / s, 1),
                                        "ratio_vs_minilm": round(seconds["minilm"] / s, 2),
                                        **({"share_rescored": round(shares[name], 4)} if name in shares else {})}
                                 for name, s in seconds.items()} for n, (seconds, shares) in sizes.items()}}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| paragraphs | path | seconds | paragraphs/s | x MiniLM | re-scored |\n|---:|---|---:|---:|---:|---:|")
    for n, rows in result["sizes"].items():
        for name, row in rows.items():
            share = f"{row['share_rescored']:.1%}" if "share_rescored" in row else ""
            print(f"| {n} | {name} | {row['seconds']:.1f} | {row['paragraphs_per_s']:.1f} | "
                  f"{row['ratio_vs_minilm']:.1f} | {share} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
