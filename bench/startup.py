"""Warm re-score of seeds/: every embedding cached, so the time is start-up, model load, segmentation,
aggregation and reports. Target: under 2 s on the 2-core development machine.

    python bench/startup.py [--model models/default] [--repeats 5]

Runs `framing score seeds/` once to warm the cache, then `--repeats` more times, each a fresh process,
and prints the median wall time with the spread; writes bench/results/startup.json. Run it alone: two
cores are easily disturbed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAMING = Path(sys.executable).with_name("framing")


def run_once(model: Path, out: Path, env: dict) -> float:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run([str(FRAMING), "--quiet", "score", str(ROOT / "seeds"), "--model", str(model), "--out", str(out)],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def import_times(env: dict) -> dict[str, float]:
    """Seconds to import each heavy module on its own, in a fresh process."""
    found = {}
    for module in ("framing.cli", "numpy", "sklearn.linear_model", "framing.pipeline"):
        code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
        found[module] = float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                             check=True).stdout)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not (args.model / "model.json").is_file():
        sys.exit(f"no model at {args.model}: run `make demo` (or `framing train`) first")
    with tempfile.TemporaryDirectory() as scratch:
        env = dict(os.environ, FRAMING_CACHE_DIR=str(Path(scratch) / "cache"), HF_HUB_OFFLINE="1")
        out = Path(scratch) / "reports"
        cold = run_once(args.model, out, env)
        warm = [run_once(args.model, out, env) for _ in range(args.repeats)]
        imports = import_times(env)
    result = {"cold_s": round(cold, 3), "warm_s": [round(t, 3) for t in warm],
              "warm_median_s": round(statistics.median(warm), 3), "import_s": {k: round(v, 3) for k, v in
                                                                               imports.items()},
              "load_average": os.getloadavg()[0], "cpus": os.cpu_count()}
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "startup.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"cold (embeds seeds/): {cold:.2f} s")
    print(f"warm re-score, median of {args.repeats}: {result['warm_median_s']:.2f} s "
          f"(min {min(warm):.2f}, max {max(warm):.2f}); load average {result['load_average']:.1f}")
    for module, seconds in imports.items():
        print(f"  import {module}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
