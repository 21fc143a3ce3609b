"""The fast path: MiniLM, the static embedder alone, and the cascade (framing.cascade) at several thresholds.

    make fast-embedder                        # once: models/minilm-static-vocab
    .venv/bin/python bench/fastpath.py        # writes bench/results/fastpath.json and fastpath.png

Both embedders get the project's stacked head (framing.classify.fit_head(HeadOptions())).

Accuracy, two ways:
(a) Real copy: the seed paragraphs (labels/seeds.jsonl, source "seed"), each seed article (its
    Example.group) held out in turn; both heads are trained on every other labelled paragraph and predict
    the held-out article, as bench/realcopy.py does. Thresholds, each framing.cascade.choose_threshold
    (max_cost=0.01) on some held-out predictions:
    - authored: the grouped out-of-fold predictions of the authored rows (no seed label involved);
    - all rows: of every row (what train_fast chose at first);
    - train_fast: of the seed rows, the strictest of their articles' (framing.cascade.train_fast stores it);
    - in sample: on the real-copy predictions above themselves (what the real copy would ask for);
    - nested by article: each article at the threshold chosen on the other articles' held-out predictions,
      pooled over them or the strictest of them: the honest estimates of the two rules;
    - nested budget (--fast-budget B): each article at the threshold that sent a share B of the other articles'
      held-out rows to MiniLM (framing.cascade.threshold_for_budget; no label involved), with the share it
      re-scores there, how often it keeps MiniLM's label, and a paired bootstrap interval of its cost.
(b) Grouped CV: framing.classify.out_of_fold_proba(groups = Example.group) for both heads on the whole
    labelled set, the folds `framing train` reports.
Macro-F1 over all three labels (evaluate_predictions); the curve is framing.cascade.curve / point_at.

Throughput, end to end = embed + classify (the head's predict_proba, TF-IDF included), no cache, models
loaded and warmed first; language detection (py3langid, the same for every path) is timed apart. The speed
set is the real copy itself (the 198 seed paragraphs, real lengths), scored by heads trained on the authored
rows only, so the cascade's re-scored share on it is out of sample. All configurations are timed in one
run, interleaved round by round (so a neighbour's burst hits all of them), and reported as ratios to
MiniLM; the machine's load average before and after is recorded (2 cores shared with other jobs).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from framing.cascade import (  # noqa: E402
    CascadeScorer,
    choose_threshold,
    choose_threshold_every_group,
    combine,
    curve,
    macro_f1,
    point_at,
    threshold_for_budget,
    uncertain,
)
from framing.classify import (  # noqa: E402
    HeadOptions,
    Model,
    ModelMeta,
    evaluate_predictions,
    fit_head,
    head_input,
    held_out_proba,
    out_of_fold_proba,
)
from framing.embed import DEFAULT_EMBEDDER, SentenceTransformerEmbedder, embedder_named  # noqa: E402
from framing.labels import load_scheme, read_examples  # noqa: E402
from framing.pipeline import make_embedder  # noqa: E402
from framing.scoring import detect_languages  # noqa: E402

LABELS = ROOT / "labels"
STATIC = ROOT / "models" / "minilm-static-vocab"
RESULTS = ROOT / "bench" / "results"
GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)  # the curve's thresholds
TIMED = (0.1, 0.2, 0.3, 0.5)  # thresholds timed besides the chosen ones
BUDGETS = (0.01, 0.02, 0.03, 0.05, 0.10)  # --fast-budget: shares re-scored, a threshold picked without labels
MAX_COST, TARGET_RATIO = 0.01, 10.0
STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {message}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--static", type=Path, default=STATIC, help="the static embedder's folder")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--out", type=Path, default=RESULTS / "fastpath.json")
    args = parser.parse_args()
    if not (args.static / "modules.json").is_file():
        print(f"no static embedder at {args.static}: run `make fast-embedder` first", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    scheme = load_scheme(LABELS)
    labels = scheme.labels
    examples = read_examples(LABELS, scheme)
    texts = [e.text for e in examples]
    y = np.array([scheme.index(e.label) for e in examples])
    groups = np.array([e.group for e in examples])
    seed = np.array([e.source == "seed" for e in examples])
    options = HeadOptions()
    k = len(labels)

    # Cached embeddings for the accuracy part: speed is measured apart, uncached.
    X_full = head_input(texts, make_embedder(DEFAULT_EMBEDDER).embed(texts))
    X_static = head_input(texts, make_embedder(str(args.static)).embed(texts))
    log(f"{len(texts)} paragraphs embedded ({int(seed.sum())} seed)")

    # (b) grouped CV, both heads, the same folds
    oof_full = out_of_fold_proba(X_full, y, k, options, groups=groups)
    oof_static = out_of_fold_proba(X_static, y, k, options, groups=groups)
    log("grouped CV done")
    all_rows_threshold = choose_threshold(oof_static, oof_full, y, MAX_COST)
    authored_threshold = choose_threshold(oof_static[~seed], oof_full[~seed], y[~seed], MAX_COST)
    stored_threshold = choose_threshold_every_group(oof_static[seed], oof_full[seed], y[seed], groups[seed],
                                                    MAX_COST)  # train_fast's

    # (a) real copy: each seed article held out in turn
    P_full = held_out_proba(X_full, y, k, options, seed, groups)
    P_static = held_out_proba(X_static, y, k, options, seed, groups)
    Y = y[seed]
    log("real copy done")
    real_own_threshold = choose_threshold(P_static, P_full, Y, MAX_COST)
    # Nested: each article scored at the threshold its four fellow articles' held-out predictions choose,
    # pooled over them (choose_threshold) or as the strictest of them (what train_fast does).
    article = groups[seed]

    def nested(choose) -> dict:
        proba, rescored, chosen_for = np.zeros_like(P_full), np.zeros(len(Y), dtype=bool), {}
        for a in sorted(set(article)):
            here, rest = article == a, article != a
            t = chosen_for[a] = choose(P_static[rest], P_full[rest], Y[rest], article[rest])
            proba[here] = combine(P_static[here], P_full[here], t)
            rescored[here] = uncertain(P_static[here], t)
        return {"thresholds": chosen_for, "macro_f1": evaluate_predictions(Y, proba, labels).macro_f1,
                "share": float(rescored.mean()), "minilm_label_kept": float((proba.argmax(1) == minilm).mean()),
                "cost_bootstrap_95": paired_cost_interval(P_full, proba, Y, k)}

    minilm = P_full.argmax(1)

    thresholds = sorted(set(GRID) | {stored_threshold, authored_threshold, all_rows_threshold, real_own_threshold})

    def table(P_s, P_f, Y_) -> list[dict]:
        return [point_at(P_s, P_f, Y_, t).to_dict() for t in thresholds]

    accuracy = {
        "real_copy": {"n": int(seed.sum()), "articles": len(set(groups[seed])),
                      "minilm": evaluate_predictions(Y, P_full, labels).to_dict(),
                      "static": evaluate_predictions(Y, P_static, labels).to_dict(),
                      "cascade": table(P_static, P_full, Y),
                      "curve": [p.to_dict() for p in curve(P_static, P_full, Y)],
                      "nested_by_article": nested(lambda P_s, P_f, Y_, _: choose_threshold(P_s, P_f, Y_, MAX_COST)),
                      "nested_strictest_article": nested(
                          lambda P_s, P_f, Y_, g: choose_threshold_every_group(P_s, P_f, Y_, g, MAX_COST)),
                      "share_shift": share_shift(P_static, P_full, Y, article, thresholds),
                      # --fast-budget: each article at the threshold that re-scored the budget of the other
                      # articles' held-out rows (as FastPath.threshold_for_budget picks it on the real rows)
                      "nested_budget": {str(b): nested(lambda P_s, P_f, Y_, _, b=b: threshold_for_budget(P_s, b))
                                        for b in BUDGETS}},
        "grouped_cv": {"n": len(y), "groups": len(set(groups)),
                       "minilm": evaluate_predictions(y, oof_full, labels).to_dict(),
                       "static": evaluate_predictions(y, oof_static, labels).to_dict(),
                       "cascade": table(oof_static, oof_full, y),
                       "curve": [p.to_dict() for p in curve(oof_static, oof_full, y)]},
    }
    chosen = {"authored_grouped_oof": authored_threshold, "all_rows_grouped_oof": all_rows_threshold,
              "seed_rows_grouped_oof_train_fast": stored_threshold, "real_copy_in_sample": real_own_threshold}

    # Throughput on the real copy, heads trained on authored rows only.
    speed_texts = [t for t, s in zip(texts, seed) if s]
    full_model = _model(fit_head(X_full[~seed], y[~seed], options), labels, DEFAULT_EMBEDDER, X_full.shape[1] - 1)
    static_model = _model(fit_head(X_static[~seed], y[~seed], options), labels, str(args.static),
                          X_static.shape[1] - 1)
    speed = _throughput(speed_texts, full_model, static_model, str(args.static),
                        sorted(set(TIMED) | set(chosen.values())), args.rounds)
    load_after = os.getloadavg()

    result = {
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "python bench/fastpath.py " + " ".join(sys.argv[1:]),
        "target": f">= {TARGET_RATIO:g}x MiniLM's end-to-end paragraphs/s at <= {MAX_COST} macro-F1 cost on real copy",
        "static_embedder": str(args.static.relative_to(ROOT) if args.static.is_relative_to(ROOT) else args.static),
        "thresholds_chosen": chosen,
        "accuracy": accuracy,
        "throughput": speed,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_before": load_before, "load_average_after": load_after,
                    "note": "2 cores shared with other agents: absolute rates are noisy, the ratios less so"},
    }
    result["summary"] = _summary(result)
    result["seconds"] = round(time.perf_counter() - STARTED, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    _plot(result, args.out.with_suffix(".png"))
    print(_table(result))
    log(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


def paired_cost_interval(P_full: np.ndarray, proba: np.ndarray, y: np.ndarray, k: int,
                         draws: int = 2000) -> list[float]:
    """95% paired bootstrap interval, over paragraphs, of MiniLM's macro-F1 minus the cascade's (or any other
    path's: bench/static_variants.py uses it for the static variants)."""
    rng = np.random.default_rng(0)
    full, fast = P_full.argmax(1), proba.argmax(1)
    costs = [macro_f1(y[d], full[d], k) - macro_f1(y[d], fast[d], k)
             for d in (rng.integers(0, len(y), len(y)) for _ in range(draws))]
    return [float(np.percentile(costs, 2.5)), float(np.percentile(costs, 97.5))]


def share_shift(P_static: np.ndarray, P_full: np.ndarray, y: np.ndarray, article: np.ndarray,
                thresholds: list[float]) -> dict:
    """What a report would show: each article's label shares (classify and count), in points, from the
    cascade at each threshold against MiniLM's, beside MiniLM's own against the hand labels."""
    k = P_full.shape[1]
    articles = sorted(set(article))

    def shares(labels: np.ndarray) -> np.ndarray:
        return np.array([np.bincount(labels[article == a], minlength=k) / (article == a).sum() for a in articles])

    def gap(a: np.ndarray, b: np.ndarray) -> dict:
        points = 100 * np.abs(a - b)
        return {"max_points": float(points.max()), "mean_points": float(points.mean())}

    minilm = P_full.argmax(1)
    return {"minilm_vs_hand_labels": gap(shares(minilm), shares(y)),
            "cascade_vs_minilm": [{"threshold": t, "labels_changed": float((pred != minilm).mean()),
                                   **gap(shares(pred), shares(minilm))}
                                  for t in thresholds for pred in [combine(P_static, P_full, t).argmax(1)]]}


def _model(head, labels, embedder_name: str, dimension: int) -> Model:
    meta = {"format_version": 2, "scheme": {"labels": list(labels)},
            "embedder": {"name": embedder_name, "dimension": dimension}}
    return Model(head=head, meta=ModelMeta.from_json(meta))


def _throughput(texts, full_model, static_model, static_name, thresholds, rounds) -> dict:
    full_embedder = SentenceTransformerEmbedder()  # uncached: embedding is what is timed
    static_embedder = embedder_named(static_name)  # numpy, as framing reads it
    full_embedder.embed(texts[:16])
    static_embedder.embed(texts[:16])  # load and warm both
    n = len(texts)

    def minilm():
        full_model.predict_proba(texts, full_embedder.embed(texts))

    def static():
        static_model.predict_proba(texts, static_embedder.embed(texts))

    scorers = {t: CascadeScorer(static_model, static_embedder, full_model, lambda: full_embedder, t)
               for t in thresholds}
    shares = {t: float(scorers[t].score_texts(texts)[1].mean()) for t in thresholds}
    named = {f"cascade@{t:.4f}": t for t in thresholds}
    times: dict[str, list[float]] = {"minilm": [], "static": [], **{name: [] for name in named}}
    for number in range(rounds):
        times["minilm"].append(_seconds(minilm))
        times["static"].append(statistics.median(_seconds(static) for _ in range(5)))  # short: repeat it
        for name, t in named.items():
            times[name].append(_seconds(lambda t=t: scorers[t].score_texts(texts)))
        log(f"timing round {number + 1} of {rounds}: MiniLM {n / times['minilm'][-1]:.1f} paragraphs/s")
    langid = _seconds(lambda: detect_languages(texts))
    base = n / min(times["minilm"])
    rows = {}
    for name, seconds in times.items():
        rate = n / min(seconds)  # the least disturbed round
        rows[name] = {"paragraphs_per_s": rate, "ratio_vs_minilm": rate / base, "seconds": seconds}
        if name in named:
            rows[name].update(threshold=named[name], share_rescored=shares[named[name]])
    return {"n": n, "rounds": rounds, "timing": "best of the interleaved rounds (static alone: median of 5 per round)",
            "rows": rows, "language_detection_paragraphs_per_s": n / langid,
            "mean_words": float(np.mean([len(t.split()) for t in texts]))}


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _summary(r: dict) -> dict:
    real = r["accuracy"]["real_copy"]
    base = real["minilm"]["macro_f1"]
    rows = r["throughput"]["rows"]

    def at(threshold: float) -> dict:
        point = next(p for p in real["cascade"] if p["threshold"] == threshold)
        row = rows.get(f"cascade@{threshold:.4f}", {})
        return {"threshold": threshold, "real_copy_macro_f1": point["macro_f1"], "cost": base - point["macro_f1"],
                "share_rescored_real_copy": point["share"], "speed_ratio": row.get("ratio_vs_minilm"),
                "meets_target": bool(row and row["ratio_vs_minilm"] >= TARGET_RATIO and
                                     base - point["macro_f1"] <= MAX_COST + 1e-12)}

    chosen = r["thresholds_chosen"]
    return {"minilm_real_copy_macro_f1": base, "static_real_copy_macro_f1": real["static"]["macro_f1"],
            "static_speed_ratio": rows["static"]["ratio_vs_minilm"],
            "authored": at(chosen["authored_grouped_oof"]),
            "train_fast": at(chosen["seed_rows_grouped_oof_train_fast"]),
            "in_sample": at(chosen["real_copy_in_sample"]),
            **{name: dict(real[name], cost=base - real[name]["macro_f1"])
               for name in ("nested_by_article", "nested_strictest_article")},
            "nested_budget": {b: dict(row, cost=base - row["macro_f1"]) for b, row in real["nested_budget"].items()},
            "best_meeting_cost": max((p for p in real["cascade"] if base - p["macro_f1"] <= MAX_COST + 1e-12
                                      and f"cascade@{p['threshold']:.4f}" in rows),
                                     key=lambda p: rows[f"cascade@{p['threshold']:.4f}"]["ratio_vs_minilm"],
                                     default=None)}


def _table(r: dict) -> str:
    real, cv = r["accuracy"]["real_copy"], r["accuracy"]["grouped_cv"]
    rows = r["throughput"]["rows"]
    lines = ["| path | threshold | re-scored (real / CV) | macro-F1 real copy | macro-F1 grouped CV | paragraphs/s | "
             "x MiniLM |", "|---|---:|---:|---:|---:|---:|---:|",
             f"| MiniLM | | | {real['minilm']['macro_f1']:.3f} | {cv['minilm']['macro_f1']:.3f} | "
             f"{rows['minilm']['paragraphs_per_s']:.1f} | 1.0 |",
             f"| static alone | | | {real['static']['macro_f1']:.3f} | {cv['static']['macro_f1']:.3f} | "
             f"{rows['static']['paragraphs_per_s']:.0f} | {rows['static']['ratio_vs_minilm']:.1f} |"]
    for p_real, p_cv in zip(real["cascade"], cv["cascade"]):
        t = p_real["threshold"]
        row = rows.get(f"cascade@{t:.4f}")
        speed = f"{row['paragraphs_per_s']:.1f} | {row['ratio_vs_minilm']:.1f}" if row else "| "
        lines.append(f"| cascade | {t:.3f} | {p_real['share']:.1%} / {p_cv['share']:.1%} | {p_real['macro_f1']:.3f} | "
                     f"{p_cv['macro_f1']:.3f} | {speed} |")
    s = r["summary"]
    lines += ["", f"thresholds chosen (max cost {MAX_COST}): " + ", ".join(
        f"{name} {value:.4f}" for name, value in r["thresholds_chosen"].items()),
        *(f"cascade at the {name} threshold {s[name]['threshold']:.3f}: cost {s[name]['cost']:+.3f} on real copy, "
          f"{s[name]['share_rescored_real_copy']:.1%} re-scored, {s[name]['speed_ratio']:.1f}x MiniLM: target "
          f"{'met' if s[name]['meets_target'] else 'NOT met'}" for name in ("authored", "train_fast", "in_sample")),
        *(f"nested by article ({how} of the other 4 articles): macro-F1 {s[name]['macro_f1']:.3f} (cost "
          f"{s[name]['cost']:+.3f}), {s[name]['share']:.1%} re-scored"
          for name, how in (("nested_by_article", "threshold pooled over"),
                            ("nested_strictest_article", "strictest threshold"))),
        *(f"nested, --fast-budget {b}: {row['share']:.1%} re-scored, macro-F1 {row['macro_f1']:.3f} (cost "
          f"{row['cost']:+.3f}, paired 95% {row['cost_bootstrap_95'][0]:+.3f} to {row['cost_bootstrap_95'][1]:+.3f}), "
          f"MiniLM's label kept on {row['minilm_label_kept']:.1%}" for b, row in s["nested_budget"].items()),
        *_share_lines(real["share_shift"], r["thresholds_chosen"]["seed_rows_grouped_oof_train_fast"]),
        f"load average before {r['machine']['load_average_before']}, after {r['machine']['load_average_after']}; "
        f"language detection {r['throughput']['language_detection_paragraphs_per_s']:.0f} paragraphs/s (not in the "
        "rates above)"]
    return "\n".join(lines)


def _share_lines(shift: dict, trained: float) -> list[str]:
    own = shift["minilm_vs_hand_labels"]
    by = {p["threshold"]: p for p in shift["cascade_vs_minilm"]}
    return [f"per-article label shares: MiniLM against the hand labels off by {own['mean_points']:.1f} points on "
            f"average (at most {own['max_points']:.1f})"] + [
        f"  {name} (threshold {t:.3f}) against MiniLM: {by[t]['labels_changed']:.1%} of labels changed, shares "
        f"moved {by[t]['mean_points']:.1f} points on average (at most {by[t]['max_points']:.1f})"
        for name, t in (("static alone", 0.0), ("cascade", 0.1), ("cascade at train_fast's", trained)) if t in by]


def _plot(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, key, style in (("real copy (seed articles held out)", "real_copy", "-"),
                             ("grouped CV", "grouped_cv", "--")):
        acc = r["accuracy"][key]
        points = acc["curve"]
        line, = left.plot([p["share"] for p in points], [p["macro_f1"] for p in points], style, label=name)
        left.axhline(acc["minilm"]["macro_f1"] - MAX_COST, color=line.get_color(), lw=0.8, ls=":")
    left.set_xlabel("share of paragraphs re-scored by MiniLM")
    left.set_ylabel("macro-F1")
    left.set_title("cascade accuracy (dotted: MiniLM - 0.01)")
    left.legend(fontsize=8)
    rows = r["throughput"]["rows"]
    real = r["accuracy"]["real_copy"]
    f1_at = {p["threshold"]: p["macro_f1"] for p in real["cascade"]}
    cascade = sorted((row["ratio_vs_minilm"], f1_at[row["threshold"]], row["threshold"])
                     for name, row in rows.items() if name.startswith("cascade@"))
    right.plot([c[0] for c in cascade], [c[1] for c in cascade], "o-", label="cascade")
    for ratio, f1, t in cascade:
        right.annotate(f"{t:.2f}", (ratio, f1), fontsize=7, xytext=(3, 3), textcoords="offset points")
    right.plot([1.0], [real["minilm"]["macro_f1"]], "s", label="MiniLM")
    right.plot([rows["static"]["ratio_vs_minilm"]], [real["static"]["macro_f1"]], "^", label="static alone")
    right.axhline(real["minilm"]["macro_f1"] - MAX_COST, color="grey", lw=0.8, ls=":")
    right.axvline(TARGET_RATIO, color="grey", lw=0.8, ls=":")
    right.set_xscale("log")
    right.set_xlabel("end-to-end throughput, x MiniLM (log)")
    right.set_ylabel("macro-F1, real copy")
    right.set_title("speed / accuracy (labels: thresholds)")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
