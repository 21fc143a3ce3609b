"""Does more authored data move the real-copy number? Real-copy macro-F1 against the share of authored rows.

    .venv/bin/python bench/data_scaling.py [--fractions 0.125 0.25 0.5 0.75 1] [--draws 3]

The headline (bench/realcopy.py) trains on every labelled row and predicts each seed article held out in
turn. Here the authored rows (every source outside framing.labels.REAL_SOURCES) are subsampled, stratified
by label, to a fraction of their number (each draw its own seed); the real rows stay whole, and each seed
article is still held out in turn (framing.classify.held_out_proba, the default head). For each fraction:
the mean and range over draws of pooled macro-F1 and western_critical F1 on the 198 seed paragraphs.

A second curve does the same with the real rows in training (the other seed articles' paragraphs, and
any `framing label` answers), keeping every authored row: what labelling more of one's own copy buys.
The held-out article is always scored whole.

A curve still rising at 1.0 says more authored paragraphs of the same kinds should help real copy; a flat
one says they will not, and the gap is in what the authored copy is, not in how much of it there is.
Results: bench/results/data_scaling.json and a printed table. About 30 s per draw and fraction on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from framing.classify import HeadOptions, evaluate_predictions, head_input, held_out_proba  # noqa: E402
from framing.labels import REAL_SOURCES, load_scheme, read_examples  # noqa: E402
from framing.pipeline import make_embedder  # noqa: E402

LABELS = ROOT / "labels"
RESULTS = ROOT / "bench" / "results" / "data_scaling.json"


def stratified_sample(y: np.ndarray, rows: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """`fraction` of `rows` (at least one of each label they hold), drawn label by label."""
    kept = [rng.choice(of, size=max(1, round(fraction * len(of))), replace=False)
            for label in np.unique(y[rows]) for of in [rows[y[rows] == label]]]
    return np.sort(np.concatenate(kept))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.125, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--real-fractions", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    scheme = load_scheme(LABELS)
    examples = read_examples(LABELS, scheme)
    texts = [e.text for e in examples]
    X = head_input(texts, make_embedder().embed(texts))
    y = np.array([scheme.index(e.label) for e in examples])
    groups = np.array([e.group for e in examples])
    real = np.array([e.source in REAL_SOURCES for e in examples])
    authored = np.flatnonzero(~real)
    Y = y[real]

    def curve(kind: str, fractions: list[float], pool: np.ndarray, fixed: np.ndarray) -> list[dict]:
        points = []
        for fraction in fractions:
            draws = []
            for draw in range(1 if fraction >= 1 or fraction <= 0 else args.draws):  # nothing to draw at 0 or 1
                training = np.zeros(len(y), dtype=bool)
                training[fixed] = True
                if fraction > 0:
                    training[stratified_sample(y, pool, fraction, np.random.default_rng(draw))] = True
                P = held_out_proba(X, y, len(scheme.labels), HeadOptions(), real, groups, training=training)
                metrics = evaluate_predictions(Y, P, scheme.labels)
                draws.append({"draw": draw, "rows": int(training[pool].sum()), "macro_f1": metrics.macro_f1,
                              "western_critical_f1": metrics.per_label["western_critical"]["f1"], "ece": metrics.ece})
                print(f"[{time.perf_counter() - started:5.0f} s] {kind} {fraction:g} draw {draw}: "
                      f"{draws[-1]['rows']} rows, real copy {metrics.macro_f1:.3f}", file=sys.stderr, flush=True)
            points.append({"fraction": fraction, "draws": draws,
                           **{f"{name}_{stat}": float(fn([d[name] for d in draws]))
                              for name in ("macro_f1", "western_critical_f1") for stat, fn in
                              (("mean", np.mean), ("min", np.min), ("max", np.max))}})
        return points

    real_rows = np.flatnonzero(real)
    curves = {"authored": curve("authored", args.fractions, authored, real_rows),
              "real": curve("real", args.real_fractions, real_rows, authored)}
    table = "\n\n".join(_table(name, points) for name, points in curves.items())
    print(table)
    report = {"created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "command": " ".join(["python", "bench/data_scaling.py", *(argv if argv is not None else sys.argv[1:])]),
              "n": {"real": int(real.sum()), "authored": len(authored)}, "curves": curves, "table": table,
              "seconds": round(time.perf_counter() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def _table(kind: str, points: list[dict]) -> str:
    what = {"authored": "authored rows in training (share)",
            "real": "real rows in training, all articles (share; each fit has the other articles')"}[kind]
    lines = [f"| {what} | real copy macro-F1 mean [range over draws] | western_critical F1 mean |", "|---:|---:|---:|"]
    lines += [f"| {p['draws'][0]['rows']:,} ({p['fraction']:.0%}) | {p['macro_f1_mean']:.3f} "
              f"[{p['macro_f1_min']:.3f}–{p['macro_f1_max']:.3f}] | {p['western_critical_f1_mean']:.3f} |"
              for p in points]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
