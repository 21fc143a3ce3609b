"""End to end: `framing score` with MiniLM, with the static model alone, and with `--fast`, on the same corpus.

    make fast-embedder
    .venv/bin/python bench/fastpath_e2e.py [--n 2000]     # writes bench/results/fastpath_e2e.json

bench/fastpath.py times embed + classify; this times the whole command (start-up, reading, segmenting,
scoring, every report) in a subprocess with an empty embedding cache, on N generated ~100-word paragraphs
(bench/throughput.py's corpus). Three models are trained from labels/ into a temporary folder: the default
(MiniLM), the same with --fast-embedder (the cascade), and a static-only model (--embedder). Run it alone:
two cores are easily disturbed. The ratio, not the rate, is the figure to read.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fastpath_e2e.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        write_corpus(make_paragraphs(args.n), tmp / "corpus")
        train_env = dict(env, FRAMING_CACHE_DIR=str(tmp / "train-cache"))  # training embeds are not timed
        run(["train", "--model", str(tmp / "minilm"), "--fast-embedder", str(STATIC)], train_env)
        run(["train", "--model", str(tmp / "static"), "--embedder", str(STATIC)], train_env)
        seconds = {}
        for name, model, extra in (("minilm", "minilm", []), ("static alone", "static", []),
                                   ("cascade (--fast)", "minilm", ["--fast"])):
            cache = tmp / f"cache-{name.split()[0]}"  # empty: every paragraph embedded
            seconds[name] = run(["score", str(tmp / "corpus"), "--model", str(tmp / model), "--out",
                                 str(tmp / f"out-{model}-{len(extra)}"), "--cache-dir", str(cache), *extra], env)
            print(f"{name}: {seconds[name]:.1f} s, {args.n / seconds[name]:.1f} paragraphs/s", file=sys.stderr)
    result = {"created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "n": args.n,
              "load_average_after": os.getloadavg(),
              "rows": {name: {"seconds": round(s, 2), "paragraphs_per_s": round(args.n / s, 1),
                              "ratio_vs_minilm": round(seconds["minilm"] / s, 2)} for name, s in seconds.items()}}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| path | seconds | paragraphs/s | x MiniLM |\n|---|---:|---:|---:|")
    for name, row in result["rows"].items():
        print(f"| {name} | {row['seconds']:.1f} | {row['paragraphs_per_s']:.1f} | {row['ratio_vs_minilm']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
