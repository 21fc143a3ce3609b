"""Learning curve: does labelling where the model is least sure beat labelling at random?

    .venv/bin/python bench/learning_curve.py [--seeds 3] [--folds 3] [--start 30] [--step 20] [--max 330]

Simulates `framing label` on the labelled set itself (labels/*.jsonl, read with framing.labels): the
pool's labels are hidden and revealed only for the paragraphs a strategy picks. Each run starts from the
same random 30 labels (each label at least twice) and adds 20 at a time:

- "uncertainty": the picks `framing label` makes (framing.active.select: least margin first, ties by
  position, near-duplicates of each other and of the labelled ones skipped, spread across outlets or
  authoring batches), scored by the head fitted on the labels so far;
- "random": 20 drawn uniformly from the rest of the pool.

The head is framing's default (framing.classify.fit_head: embedding LR + TF-IDF LR stacked) with
HeadOptions(stack_folds=3), the setting `framing label` refits with, for speed (a fit on 330 labels takes
about a second here). Embeddings: framing.pipeline.make_embedder() (the packaged MiniLM, cached).

Two evaluations, macro-F1 over the three labels:

1. grouped: StratifiedGroupKFold(--folds, shuffle, random_state=seed) over Example.group (outlet, the
   document for seed paragraphs of an unknown outlet, or the authoring batch); for each fold the pool is
   the training part and the evaluation the held-out groups, which are never in the pool. The curve of a
   seed is the mean over its folds.
2. seed articles: the pool is every authored paragraph (source "authored"), the evaluation every real seed
   paragraph (source "seed"): real copy of outlets the pool never saw.

For each seed and evaluation, "labels to reach random's final" is the first point at which the
uncertainty curve reaches the macro-F1 random has at --max labels, and "saved" is --max minus that.
Results: bench/results/learning_curve.json (every curve, per seed and fold) and learning_curve.png.
The run is capped at --max labels so it stays under about 15 minutes on 2 shared cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from sklearn.metrics import f1_score  # noqa: E402
from sklearn.model_selection import StratifiedGroupKFold  # noqa: E402

from framing.active import SelectOptions, select, uncertainty_order  # noqa: E402
from framing.classify import HeadOptions, fit_head, head_input  # noqa: E402
from framing.labels import load_scheme, read_examples  # noqa: E402
from framing.pipeline import make_embedder  # noqa: E402

RESULTS = ROOT / "bench" / "results"
STRATEGIES = ("uncertainty", "margin", "random")
HEAD = HeadOptions(stack_folds=3)
LEGEND = {"uncertainty": "framing label (margin, no near-duplicates, spread)", "margin": "margin only",
          "random": "random"}


def initial_set(y_pool: np.ndarray, n: int, n_labels: int, rng: np.random.Generator) -> list[int]:
    """n random pool rows in which every label occurs at least twice (the head's inner folds need it)."""
    for _ in range(1000):
        rows = rng.choice(len(y_pool), size=n, replace=False)
        if np.bincount(y_pool[rows], minlength=n_labels).min() >= 2:
            return [int(r) for r in rows]
    raise RuntimeError("cannot draw a starting set with two of each label")


def curve(strategy: str, X_pool, y_pool, groups_pool, X_eval, y_eval, start: list[int], sizes: list[int],
          n_labels: int, rng: np.random.Generator) -> list[float]:
    """Macro-F1 on the evaluation rows at each labelled-set size, labelling by `strategy`."""
    labelled = list(start)
    embeddings = np.asarray(X_pool[:, 1:], dtype=np.float64)
    ids = [str(i) for i in range(len(y_pool))]  # no article structure: each row is its own "document"
    scores = []
    head = None
    for size in sizes:
        rest = np.setdiff1d(np.arange(len(y_pool)), labelled)
        k = size - len(labelled)
        if k > 0 and strategy == "random":
            labelled += [int(r) for r in rng.choice(rest, size=k, replace=False)]
        elif k > 0:  # the picks of the head fitted on the labels so far
            proba = np.zeros((len(rest), n_labels))
            proba[:, head.classes_] = head.predict_proba(X_pool[rest])
            if strategy == "margin":  # the ablation: least margin only, no duplicate skipping, no spreading
                picks = uncertainty_order(proba)[:k]
            else:
                picks = select(proba, embeddings[rest], list(groups_pool[rest]), [ids[r] for r in rest], k,
                               labelled=embeddings[labelled], options=SelectOptions())
            labelled += [int(rest[p]) for p in picks]
        head = fit_head(X_pool[labelled], y_pool[labelled], HEAD)
        pred = head.classes_[head.predict_proba(X_eval).argmax(axis=1)]
        scores.append(float(f1_score(y_eval, pred, labels=list(range(n_labels)), average="macro",
                                     zero_division=0)))
    return scores


def labels_to_reach(uncertainty: list[float], target: float, sizes: list[int]) -> int | None:
    for size, score in zip(sizes, uncertainty):
        if score >= target - 1e-12:
            return size
    return None


def summarize(per_seed: dict[str, dict[str, list[float]]], sizes: list[int], strategy: str = "uncertainty") -> dict:
    """Mean, sd, min and max curves over seeds; per seed, where `strategy` reaches random's final macro-F1
    and its mean gain over random past the first point."""
    curves = {s: np.array([per_seed[seed][s] for seed in per_seed]) for s in STRATEGIES}
    reach = {}
    for seed in per_seed:
        target = per_seed[seed]["random"][-1]
        n = labels_to_reach(per_seed[seed][strategy], target, sizes)
        gain = np.mean(np.array(per_seed[seed][strategy][1:]) - np.array(per_seed[seed]["random"][1:]))
        reach[seed] = {"random_final": target, "labels_to_reach": n, "saved": None if n is None else sizes[-1] - n,
                       "mean_gain": round(float(gain), 4)}
    saved = [r["saved"] for r in reach.values() if r["saved"] is not None]
    return {"mean": {s: curves[s].mean(axis=0).round(4).tolist() for s in STRATEGIES},
            "sd": {s: curves[s].std(axis=0, ddof=1).round(4).tolist() if len(curves[s]) > 1 else [0.0] * len(sizes)
                   for s in STRATEGIES},
            "min": {s: curves[s].min(axis=0).round(4).tolist() for s in STRATEGIES},
            "max": {s: curves[s].max(axis=0).round(4).tolist() for s in STRATEGIES},
            "reach": reach,
            "saved_mean": float(np.mean(saved)) if saved else None,
            "saved_sd": float(np.std(saved, ddof=1)) if len(saved) > 1 else None,
            "seeds_reaching": len(saved),
            "mean_gain": float(np.mean([r["mean_gain"] for r in reach.values()])),
            "mean_gain_sd": float(np.std([r["mean_gain"] for r in reach.values()], ddof=1)) if len(reach) > 1
            else None}


def plot(results: dict, sizes: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {"grouped": "grouped folds (held-out outlets/batches)", "seed_articles": "real seed paragraphs "
              "(pool: authored)"}
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=False)
    for ax, key in zip(axes, ("grouped", "seed_articles")):
        summary = results[key]
        for strategy, colour in zip(STRATEGIES, ("tab:blue", "tab:orange", "tab:grey")):
            mean = np.array(summary["mean"][strategy])
            low, high = np.array(summary["min"][strategy]), np.array(summary["max"][strategy])
            ax.plot(sizes, mean, marker="o", markersize=3, color=colour, label=f"{LEGEND[strategy]}, mean")
            ax.fill_between(sizes, low, high, color=colour, alpha=0.2, label="min-max over seeds")
        ax.axhline(np.mean([r["random_final"] for r in summary["reach"].values()]), color="tab:grey",
                   linestyle=":", linewidth=1)
        ax.set_title(titles[key], fontsize=10)
        ax.set_xlabel("labelled paragraphs")
        ax.set_ylabel("macro-F1")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    figure.suptitle("framing: labelling where the model is least sure vs at random (dotted: random's final)",
                    fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--start", type=int, default=30)
    parser.add_argument("--step", type=int, default=20)
    parser.add_argument("--max", type=int, default=330)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--plot-only", action="store_true", help="Redraw the PNG from the saved JSON.")
    args = parser.parse_args()
    if args.plot_only:
        saved = json.loads((args.out / "learning_curve.json").read_text(encoding="utf-8"))
        plot(saved, saved["config"]["sizes"], args.out / "learning_curve.png")
        return
    started = time.perf_counter()
    scheme = load_scheme(ROOT / "labels")
    examples = read_examples(ROOT / "labels", scheme)
    texts = [e.text for e in examples]
    X = head_input(texts, make_embedder().embed(texts))
    y = np.array([scheme.index(e.label) for e in examples])
    groups = np.array([e.group for e in examples])
    sources = np.array([e.source for e in examples])
    n_labels = len(scheme.labels)
    sizes = list(range(args.start, args.max + 1, args.step))
    print(f"{len(examples)} labelled paragraphs ({dict(zip(*np.unique(sources, return_counts=True)))}); "
          f"sizes {sizes[0]}..{sizes[-1]}", file=sys.stderr)

    grouped: dict[str, dict[str, list[float]]] = {}
    folds_detail: dict[str, list] = {}
    for seed in range(args.seeds):
        splitter = StratifiedGroupKFold(n_splits=args.folds, shuffle=True, random_state=seed)
        fold_curves = {s: [] for s in STRATEGIES}
        for fold, (pool, held) in enumerate(splitter.split(X, y, groups)):
            start = initial_set(y[pool], args.start, n_labels, np.random.default_rng([seed, fold]))
            for strategy in STRATEGIES:
                fold_curves[strategy].append(curve(strategy, X[pool], y[pool], groups[pool], X[held], y[held], start,
                                                   sizes, n_labels, np.random.default_rng([seed, fold, 1])))
            print(f"grouped seed {seed} fold {fold}: uncertainty {fold_curves['uncertainty'][-1][-1]:.3f}, "
                  f"random {fold_curves['random'][-1][-1]:.3f} at {sizes[-1]} "
                  f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        grouped[str(seed)] = {s: np.mean(fold_curves[s], axis=0).round(4).tolist() for s in STRATEGIES}
        folds_detail[str(seed)] = {s: np.round(fold_curves[s], 4).tolist() for s in STRATEGIES}

    pool, held = np.flatnonzero(sources == "authored"), np.flatnonzero(sources == "seed")
    seed_articles: dict[str, dict[str, list[float]]] = {}
    for seed in range(args.seeds):
        start = initial_set(y[pool], args.start, n_labels, np.random.default_rng([seed, 99]))
        seed_articles[str(seed)] = {
            s: curve(s, X[pool], y[pool], groups[pool], X[held], y[held], start, sizes, n_labels,
                     np.random.default_rng([seed, 99, 1])) for s in STRATEGIES}
        print(f"seed articles seed {seed}: uncertainty {seed_articles[str(seed)]['uncertainty'][-1]:.3f}, random "
              f"{seed_articles[str(seed)]['random'][-1]:.3f} ({time.perf_counter() - started:.0f} s)",
              file=sys.stderr)

    results = {
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "config": {"seeds": args.seeds, "folds": args.folds, "sizes": sizes, "head": "fit_head, stack_folds=3",
                   "select": SelectOptions().__dict__, "n_labelled": len(examples),
                   "n_authored_pool": int(len(pool)), "n_seed_eval": int(len(held))},
        "grouped": summarize(grouped, sizes) | {"per_seed": grouped, "per_fold": folds_detail},
        "seed_articles": summarize(seed_articles, sizes) | {"per_seed": seed_articles},
        "margin_only": {"grouped": summarize(grouped, sizes, "margin"),
                        "seed_articles": summarize(seed_articles, sizes, "margin")},
        "seconds": round(time.perf_counter() - started, 1),
        "versions": {"python": platform.python_version(),
                     **{p: metadata.version(p) for p in ("numpy", "scikit-learn", "matplotlib")}},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learning_curve.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    plot(results, sizes, args.out / "learning_curve.png")
    for key in ("grouped", "seed_articles"):
        s = results[key]
        m = results["margin_only"][key]
        print(f"\n{key}: labels  " + "  ".join(f"{n:>5}" for n in sizes))
        for strategy in STRATEGIES:
            print(f"  {strategy:<11}   " + "  ".join(f"{v:5.3f}" for v in s["mean"][strategy]))
        for seed, r in s["reach"].items():
            print(f"  seed {seed}: random's final {r['random_final']:.3f}; uncertainty reaches it at "
                  f"{r['labels_to_reach']} labels (saves {r['saved']})")
        if s["saved_mean"] is not None:
            sd = f" ± {s['saved_sd']:.0f}" if s["saved_sd"] is not None else ""
            print(f"  saved: {s['saved_mean']:.0f}{sd} labels ({s['seeds_reaching']} of {args.seeds} seeds reach)")
        print(f"  mean gain over random past {sizes[0]}: uncertainty {s['mean_gain']:+.3f} ± {s['mean_gain_sd']:.3f}, "
              f"margin only {m['mean_gain']:+.3f} ± {m['mean_gain_sd']:.3f}; margin only saves "
              f"{m['saved_mean']} labels ({m['seeds_reaching']} of {args.seeds} seeds reach)")
    print(f"\n{results['seconds']:.0f} s; {args.out / 'learning_curve.json'}, {args.out / 'learning_curve.png'}")


if __name__ == "__main__":
    main()
