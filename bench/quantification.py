"""Quantification benchmark: which prevalence method, and do its intervals cover on outlets the model never saw?

    .venv/bin/python bench/quantification.py [--resamples 1000] [--draws 8] [--quick]

Data: every labelled paragraph in labels/ (whatever is there when it runs), embedded by
framing.pipeline.make_embedder() (the cached packaged MiniLM), and ONE set of grouped out-of-fold
probabilities from the default head (framing.classify.out_of_fold_proba, StratifiedGroupKFold(5) over
Example.group): each paragraph is scored by a head that never saw its outlet or authoring batch. That set
is reused everywhere, so the whole run needs five head fits. A held-out group's calibration
(framing.prevalence.Calibration) is the out-of-fold probabilities of all the OTHER groups; those came from
heads of which some saw the held-out group, a small leak that one refit per group would remove at 20x the cost.

1. Leave-one-group-out: each group in turn is an outlet (a seed article is a one-document outlet; an
   authored batch's paragraphs are one-paragraph documents), estimated with a calibration
   without it, against its hand labels. Seed articles (source "seed", group = the article) are reported
   apart from the authored batches.
2. Synthetic outlets: for each of the five grouped folds, paragraphs are drawn (with replacement) from that
   fold's held-out groups with a skewed label mix (70/20/10, 10/20/70, 33/33/33, 0/0/100 over the scheme's
   labels), at 20, 100 and 400 paragraphs in documents of 5, `--draws` outlets per cell; the calibration is
   the other folds' groups. The truth is the drawn paragraphs' hand-label mix (what a hand check measures).

Per method: mean absolute error over outlet x label, coverage of the nominal 95% prevalence interval (the
fraction of outlet x label truths inside it), and its mean width; for CC also the sampling-only share
interval. Every estimator is cross-checked against QuaPy 0.2.3 (CC, PCC, ACC/PACC by inversion with
clipping, EMQ.EM) on the leave-one-group-out outlets: the largest absolute difference is printed.
Last, the time to estimate 5,000 one-paragraph outlets per method. Results: bench/results/quantification.json.
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

from sklearn.model_selection import StratifiedGroupKFold  # noqa: E402

from framing.classify import HeadOptions, head_input, out_of_fold_proba  # noqa: E402
from framing.labels import load_scheme, read_examples  # noqa: E402
from framing.pipeline import make_embedder  # noqa: E402
from framing.prevalence import (  # noqa: E402
    INTERVAL_NOTE,
    Calibration,
    Method,
    calibration_draws,
    estimate_outlets,
    point_estimate,
)

RESULTS = ROOT / "bench" / "results"
MIXES = {"70/20/10": (0.7, 0.2, 0.1), "10/20/70": (0.1, 0.2, 0.7), "33/33/33": (1 / 3, 1 / 3, 1 / 3),
         "0/0/100": (0.0, 0.0, 1.0)}
SIZES = (20, 100, 400)
DOC_SIZE = 5


def chunks(proba: np.ndarray, size: int = DOC_SIZE) -> list[np.ndarray]:
    return [proba[i:i + size] for i in range(0, len(proba), size)]


def score(estimates: dict, truths: dict, method: Method) -> dict:
    """Error, coverage and width over outlet x label."""
    names = sorted(estimates)
    truth = np.stack([truths[n] for n in names])
    prevalence = np.stack([estimates[n].prevalence for n in names])
    ci = np.stack([estimates[n].prevalence_ci for n in names])
    share_ci = np.stack([estimates[n].share_ci for n in names])
    inside = (ci[..., 0] - 1e-9 <= truth) & (truth <= ci[..., 1] + 1e-9)
    share_inside = (share_ci[..., 0] - 1e-9 <= truth) & (truth <= share_ci[..., 1] + 1e-9)
    return {"method": method.value, "outlets": len(names), "mae": float(np.abs(prevalence - truth).mean()),
            "coverage": float(inside.mean()), "width": float((ci[..., 1] - ci[..., 0]).mean()),
            "share_coverage": float(share_inside.mean()),
            "share_width": float((share_ci[..., 1] - share_ci[..., 0]).mean())}


def pool(rows: list[dict]) -> dict:
    """Outlet-weighted mean of several score rows of one method."""
    n = sum(r["outlets"] for r in rows)
    out = {"method": rows[0]["method"], "outlets": n}
    for key in ("mae", "coverage", "width", "share_coverage", "share_width"):
        out[key] = sum(r[key] * r["outlets"] for r in rows) / n
    return out


def quapy_check(calibration: Calibration, proba: np.ndarray) -> dict[str, float]:
    """|ours - QuaPy| for each method's point estimate on one outlet."""
    import quapy as qp
    from quapy.method.aggregative import ACC, EMQ, PACC

    k = len(calibration.labels)
    classes = np.arange(k)
    hard = np.eye(k)[proba.argmax(axis=1)].mean(axis=0)
    acc_m = ACC.getPteCondEstim(classes, calibration.y, calibration.proba.argmax(axis=1))
    pacc_m = PACC.getPteCondEstim(classes, calibration.y, calibration.proba)
    prior = np.bincount(calibration.y, minlength=k) / len(calibration.y)

    def adjusted(matrix, counted):
        return qp.functional.normalize_prevalence(
            ACC.solve_adjustment(matrix, counted, method="inversion", solver="exact-cc"), method="clip")

    theirs = {Method.CC: hard, Method.PCC: proba.mean(axis=0), Method.ACC: adjusted(acc_m, hard),
              Method.PACC: adjusted(pacc_m, proba.mean(axis=0)), Method.EM: EMQ.EM(prior, proba)[0]}
    out = {}
    for method, expected in theirs.items():
        draws = calibration_draws(calibration, method, n_resamples=2)
        out[method.value] = float(np.abs(point_estimate(method, proba, draws.full) - expected).max())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=8, help="synthetic outlets per fold x mix x size")
    parser.add_argument("--quick", action="store_true", help="200 resamples, 2 draws (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.resamples, args.draws = 200, 2
    started = time.perf_counter()
    scheme = load_scheme(ROOT / "labels")
    examples = read_examples(ROOT / "labels", scheme)
    labels = scheme.labels
    k = len(labels)
    texts = [e.text for e in examples]
    y = np.array([scheme.index(e.label) for e in examples])
    groups = np.array([e.group for e in examples])
    seed_group = {e.group: e.source == "seed" for e in examples}
    t = time.perf_counter()
    embeddings = make_embedder().embed(texts)
    embed_s = time.perf_counter() - t
    X = head_input(texts, embeddings)
    options = HeadOptions()
    t = time.perf_counter()
    oof = out_of_fold_proba(X, y, k, options, groups)
    fit_s = time.perf_counter() - t
    print(f"{len(y)} labelled paragraphs, {len(set(groups))} groups; embed {embed_s:.0f} s, "
          f"grouped out-of-fold fits {fit_s:.0f} s", file=sys.stderr)

    def calibration_without(mask: np.ndarray) -> Calibration:
        return Calibration(labels, oof[~mask], y[~mask], groups[~mask])

    results: dict = {"labels": list(labels), "n_paragraphs": int(len(y)), "n_groups": int(len(set(groups))),
                     "n_resamples": args.resamples, "interval_note": INTERVAL_NOTE}

    # 1. leave one group out
    logo: dict[str, dict[str, list]] = {m.value: {"seed": [], "authored": []} for m in Method}
    quapy_diff = {m.value: 0.0 for m in Method}
    for g in sorted(set(groups)):
        mask = groups == g
        calibration = calibration_without(mask)
        # A seed group is real articles: one document (its interval is about its own mix). An authored batch is
        # independent paragraphs written to a brief, not an article: each paragraph is its own document.
        docs = [oof[mask]] if seed_group[g] else chunks(oof[mask], 1)
        truth = {g: np.bincount(y[mask], minlength=k) / mask.sum()}
        for method, diff in quapy_check(calibration, oof[mask]).items():
            quapy_diff[method] = max(quapy_diff[method], diff)
        for method in Method:
            estimate = estimate_outlets({g: docs}, calibration, method, args.resamples, seed=0)
            logo[method.value]["seed" if seed_group[g] else "authored"].append(score(estimate, truth, method))
    print(f"leave-one-group-out done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    # 2. synthetic outlets from held-out folds
    folds = StratifiedGroupKFold(n_splits=min(5, len(set(groups))), shuffle=True, random_state=0)
    rng = np.random.default_rng(0)
    synthetic: dict[str, dict[str, list]] = {m.value: {} for m in Method}
    for fold, (_, test) in enumerate(folds.split(X, y, groups)):
        mask = np.zeros(len(y), bool)
        mask[test] = True
        calibration = calibration_without(mask)
        pools = [np.flatnonzero(mask & (y == j)) for j in range(k)]
        outlets, truths, cells = {}, {}, {}
        for mix_name, mix in MIXES.items():
            mix = np.array(mix) if k == 3 else np.full(k, 1 / k)
            for size in SIZES:
                for d in range(args.draws):
                    drawn_labels = rng.choice(k, size, p=mix)
                    rows = np.array([rng.choice(pools[j]) for j in drawn_labels if len(pools[j])])
                    name = f"f{fold}-{mix_name}-{size}-{d}"
                    outlets[name] = chunks(oof[rows])
                    truths[name] = np.bincount(y[rows], minlength=k) / len(rows)
                    cells[name] = f"{mix_name}|{size}"
        for method in Method:
            estimates = estimate_outlets(outlets, calibration, method, args.resamples, seed=fold)
            for cell in sorted(set(cells.values())):
                chosen = {n: e for n, e in estimates.items() if cells[n] == cell}
                synthetic[method.value].setdefault(cell, []).append(score(chosen, truths, method))
        print(f"synthetic fold {fold} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    # 3. 5,000 one-paragraph outlets
    full = Calibration(labels, oof, y, groups)
    many = {f"o{i}": [oof[i % len(oof)][None, :]] for i in range(5000)}
    timing = {}
    for method in Method:
        t = time.perf_counter()
        estimate_outlets(many, full, method, args.resamples)
        timing[method.value] = time.perf_counter() - t

    table = []
    for method in Method:
        m = method.value
        row = {"method": m,
               "logo_seed": pool(logo[m]["seed"]) if logo[m]["seed"] else None,
               "logo_authored": pool(logo[m]["authored"]),
               "synthetic": pool([r for rows in synthetic[m].values() for r in rows]),
               "synthetic_cells": {cell: pool(rows) for cell, rows in synthetic[m].items()},
               "seconds_5000_outlets": timing[m], "max_abs_diff_vs_quapy": quapy_diff[m]}
        table.append(row)
    results["table"] = table
    results["seconds_total"] = time.perf_counter() - started
    results["versions"] = {name: metadata.version(name) for name in ("numpy", "scipy", "scikit-learn", "quapy")}
    results["python"] = platform.python_version()
    results["date"] = datetime.date.today().isoformat()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "quantification.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    print(f"\n{len(y)} labelled paragraphs, {results['n_groups']} groups; {args.resamples} resamples; "
          f"nominal 95% intervals\n")
    header = ("| method | MAE seed | cover seed | width seed | MAE authored | cover authored | width authored "
              "| MAE synthetic | cover synthetic | width synthetic | 5,000 outlets s | vs QuaPy |")
    print(header)
    print("|---|" + "---:|" * (header.count("|") - 2))
    for row in table:
        s, a, syn = row["logo_seed"] or {}, row["logo_authored"], row["synthetic"]
        print(f"| {row['method']} | {s.get('mae', float('nan')):.3f} | {s.get('coverage', float('nan')):.2f} "
              f"| {s.get('width', float('nan')):.2f} | {a['mae']:.3f} | {a['coverage']:.2f} | {a['width']:.2f} "
              f"| {syn['mae']:.3f} | {syn['coverage']:.2f} | {syn['width']:.2f} "
              f"| {row['seconds_5000_outlets']:.1f} | {row['max_abs_diff_vs_quapy']:.1e} |")
    cc = table[0]
    print(f"\nsampling-only share interval (cc): coverage seed {cc['logo_seed']['share_coverage']:.2f}, "
          f"authored {cc['logo_authored']['share_coverage']:.2f}, synthetic {cc['synthetic']['share_coverage']:.2f}")
    print("\nsynthetic, by mix and size (MAE / coverage / width):")
    cells = sorted(table[0]["synthetic_cells"], key=lambda c: (c.split("|")[0], int(c.split("|")[1])))
    print("| cell | " + " | ".join(r["method"] for r in table) + " |")
    print("|---|" + "---:|" * len(table))
    for cell in cells:
        print(f"| {cell.replace('|', ' x ')} | " + " | ".join(
            f"{r['synthetic_cells'][cell]['mae']:.3f} / {r['synthetic_cells'][cell]['coverage']:.2f} / "
            f"{r['synthetic_cells'][cell]['width']:.2f}" for r in table) + " |")
    print(f"\ntotal {results['seconds_total']:.0f} s; bench/results/quantification.json")


if __name__ == "__main__":
    main()
