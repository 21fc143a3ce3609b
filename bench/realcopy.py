"""The honest headline numbers for the framing head, and the off-topic rate of the relevance stage.

    .venv/bin/python bench/realcopy.py        # writes bench/results/realcopy.json, prints a table

(a) Real copy. The seed paragraphs (labels/seeds.jsonl, source "seed": real articles, labelled by hand)
    come from a handful of articles ("doc"). Each is held out in turn by its Example.group (the outlet,
    or the doc when the outlet is unknown: today 5 articles from 5 outlets, so the same thing; an outlet
    with several articles would be held out whole, which is stricter). The head
    (framing.classify.fit_head(HeadOptions())) is trained on every other labelled paragraph, the other
    seed articles included, and predicts the held-out article. Macro-F1, per-label F1 and top-label ECE
    are computed on the pooled held-out predictions; the 95% interval is a cluster bootstrap over
    articles (articles resampled with replacement, 2,000 draws, seed 0). With so few articles the
    interval is rough: it says how much the number depends on which articles we happened to have.
    Also: the relevance stage is refitted without the held-out article, and the share of its on-topic
    paragraphs it would wrongly drop is reported.
    Calibration tried on these held-out predictions, nested so no article calibrates its own scores:
    - temperature: T fitted (log-loss, grid over log T) on the other articles' held-out predictions;
    - class-prior correction: p * (prior of the other seed articles / training prior), renormalised.
(b) Contrast set: eval/contrast.jsonl (never trained on; whatever is there at run time), scored by the
    head trained on all of labels/. The same for eval/mixed_authored.jsonl: authored paragraphs written to
    be hard (mixed voices, partial distance), to see whether authored copy can stand in for real copy.
(c) Off-topic rate on general news: eval/general_news.jsonl (held-out off-topic paragraphs) and the
    paragraphs of the general-news pages in corpus/pages/*/ listed in GENERAL_PAGES (chosen by their
    "topic": not about Russia, China, the West or their relations). A paragraph "passes" when the
    relevance stage (framing.relevance, trained on labels/ + labels/relevance/off_topic.jsonl) marks it
    off_topic or the head labels it neutral_wire. The on-topic pages' rate of wrongly dropped paragraphs
    is shown beside it.
(d) Grouped CV over authored batches: what `framing train` has reported so far
    (framing.classify.out_of_fold_proba with groups = Example.group: the authoring batch, or the seed
    article), split into its authored and seed paragraphs. Authored batches are written by the project:
    this number flatters the head and is not the headline.

Embeddings come from framing.pipeline.make_embedder() (SQLite cache): the first run embeds ~3,300
paragraphs (minutes on 2 cores); later runs take about as long as the 11 head fits.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from framing.classify import (  # noqa: E402
    HeadOptions,
    evaluate_predictions,
    expected_calibration_error,
    fit_head,
    fit_temperature,
    head_input,
    out_of_fold_proba,
    temper,
)
from framing.labels import Example, load_scheme, read_examples  # noqa: E402
from framing.pipeline import make_embedder  # noqa: E402
from framing.relevance import fit_relevance, off_topic_path, read_off_topic  # noqa: E402

LABELS = ROOT / "labels"
CONTRAST = ROOT / "eval" / "contrast.jsonl"
# 300 authored paragraphs written to mix voices, distance and official vocabulary the way real copy does,
# never trained on: how far authored copy can stand in for real copy (it cannot: see the README)
MIXED = ROOT / "eval" / "mixed_authored.jsonl"
GENERAL_NEWS = ROOT / "eval" / "general_news.jsonl"
RESULTS = ROOT / "bench" / "results" / "realcopy.json"
# The general-news pages: local politics, sport, science, food, culture, business, health, weather, tech.
# Left out as on topic: every page whose "topic" names Russia, China, the EU/US/NATO or their relations
# (including b06 Piraeus, b09 OPEC+/Russia, b12 and b23 Russia-Ukraine, b21 chip war in Thailand).
GENERAL_PAGES = ("dev/a02", "dev/a04", "dev/a07", "dev/a11", "dev/a13", "dev/a17", "dev/a20", "dev/a22",
                 "dev/b04", "dev/b07", "dev/b10", "dev/b15", "dev/b18", "dev/b22",
                 "heldout/a09", "heldout/a15", "heldout/a18", "heldout/a24", "heldout/b08", "heldout/b11",
                 "heldout/b14", "heldout/b17", "heldout/b20")
N_BOOT, SEED = 2000, 0


def main() -> None:
    started = time.perf_counter()
    scheme = load_scheme(LABELS)
    labels = scheme.labels
    examples = read_examples(LABELS, scheme)
    off = read_off_topic(off_topic_path(LABELS))
    contrast = read_examples(CONTRAST, scheme) if CONTRAST.is_file() else []
    mixed = read_examples(MIXED, scheme) if MIXED.is_file() else []
    general = [" ".join(json.loads(line)["text"].split()) for line in GENERAL_NEWS.read_text().splitlines()
               if line.strip()]
    pages = _pages()

    embedder = make_embedder()
    texts = [e.text for e in examples]
    E = embedder.embed(texts)
    E_off = embedder.embed([e.text for e in off])
    E_contrast = embedder.embed([e.text for e in contrast]) if contrast else np.zeros((0, E.shape[1]))
    E_mixed = embedder.embed([e.text for e in mixed]) if mixed else np.zeros((0, E.shape[1]))
    E_general = embedder.embed(general)
    page_texts = [t for _, _, paragraphs in pages for t in paragraphs]
    E_pages = embedder.embed(page_texts)
    embedded = time.perf_counter()

    X = head_input(texts, E)
    y = np.array([scheme.index(e.label) for e in examples])
    groups = np.array([e.group for e in examples])
    seed_rows = np.array([e.source == "seed" for e in examples])
    options = HeadOptions()

    real = _real_copy(examples, X, y, E, groups, seed_rows, off, E_off, labels, options)
    full = fit_head(X, y, options)
    relevance = fit_relevance(examples, off, E, E_off)
    result = {
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "real_copy": real,
        "contrast": _contrast(contrast, E_contrast, full, relevance, labels, set(texts)),
        "mixed_authored": _contrast(mixed, E_mixed, full, relevance, labels, set(texts)),
        "off_topic": _off_topic(general, E_general, pages, E_pages, full, relevance, labels),
        "relevance": {"threshold": relevance.threshold_, "C": relevance.options.C,
                      "min_on_topic_recall": relevance.options.min_on_topic_recall, "cv": relevance.cv_},
        "grouped_cv": _grouped_cv(X, y, groups, seed_rows, labels, options),
        "n": {"labelled": len(examples), "seed": int(seed_rows.sum()), "off_topic_train": len(off),
              "contrast": len(contrast), "mixed_authored": len(mixed), "general_news_eval": len(general),
              "general_pages": len(pages)},
    }
    result["seconds"] = {"embed": round(embedded - started, 1), "total": round(time.perf_counter() - started, 1)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(_table(result, labels))


# --- (a) real copy ---------------------------------------------------------------------------------

def _real_copy(examples, X, y, E, groups, seed_rows, off, E_off, labels, options) -> dict:
    articles = sorted(set(groups[seed_rows]))
    proba = np.zeros((len(y), len(labels)))
    train_prior = {}
    dropped = {}
    for article in articles:
        held = seed_rows & (groups == article)
        head = fit_head(X[~held], y[~held], options)
        proba[np.ix_(held, head.classes_)] = head.predict_proba(X[held])
        train_prior[article] = np.bincount(y[~held], minlength=len(labels)) / (~held).sum()
        kept = [e for e, h in zip(examples, held) if not h]
        relevance = fit_relevance(kept, off, E[~held], E_off)
        dropped[article] = int(relevance.is_off_topic(E[held]).sum())
    rows = np.flatnonzero(seed_rows)
    P, Y, art = proba[rows], y[rows], groups[rows]
    metrics = evaluate_predictions(Y, P, labels)
    per_article = {a: {"n": int((art == a).sum()), "macro_f1": evaluate_predictions(Y[art == a], P[art == a], labels,
                                                                                   _present(Y[art == a], labels)
                                                                                   ).macro_f1}
                   for a in articles}
    # Calibration, nested: article a is adjusted with what the other articles' held-out predictions say.
    tempered, corrected = np.zeros_like(P), np.zeros_like(P)
    temperatures = {}
    for a in articles:
        here, rest = art == a, art != a
        temperatures[a] = fit_temperature(P[rest], Y[rest])
        tempered[here] = temper(P[here], temperatures[a])
        target = (np.bincount(Y[rest], minlength=len(labels)) + 1) / (rest.sum() + len(labels))
        corrected[here] = _reweight(P[here], target / train_prior[a])
    calibration = {
        "temperature_nested": {"ece": expected_calibration_error(Y, tempered),
                               "macro_f1": evaluate_predictions(Y, tempered, labels).macro_f1,
                               "per_article_T": temperatures},
        "temperature_all_articles": fit_temperature(P, Y),  # what a trained model would store
        "prior_correction_nested": {"ece": expected_calibration_error(Y, corrected),
                                    "macro_f1": evaluate_predictions(Y, corrected, labels).macro_f1},
    }
    return {"metrics": metrics.to_dict(), "interval": _cluster_bootstrap(Y, P, art, labels),
            "articles": per_article, "calibration": calibration,
            "relevance_wrongly_dropped": {"n": int(sum(dropped.values())), "of": int(len(rows)),
                                          "per_article": dropped}}


def _present(y, labels):
    return tuple(label for i, label in enumerate(labels) if (y == i).any())


def _cluster_bootstrap(Y, P, art, labels) -> dict:
    """95% percentile intervals of pooled macro-F1, per-label F1 and ECE, resampling whole articles."""
    rng = np.random.default_rng(SEED)
    articles = sorted(set(art))
    members = {a: np.flatnonzero(art == a) for a in articles}
    draws = {"macro_f1": [], "ece": [], **{label: [] for label in labels}}
    for _ in range(N_BOOT):
        rows = np.concatenate([members[a] for a in rng.choice(articles, size=len(articles))])
        m = evaluate_predictions(Y[rows], P[rows], labels, _present(Y[rows], labels))
        draws["macro_f1"].append(m.macro_f1)
        draws["ece"].append(m.ece)
        for label in labels:
            if m.per_label[label]["support"]:
                draws[label].append(m.per_label[label]["f1"])
    return {name: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for name, v in draws.items() if v}


def _reweight(P: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    out = P * ratio
    return out / out.sum(axis=1, keepdims=True)


# --- (b) contrast, (c) off-topic, (d) grouped CV -------------------------------------------------------

def _contrast(contrast: list[Example], E_contrast, head, relevance, labels, trained: set[str]) -> dict:
    if not contrast:
        return {"n": 0}
    Y = np.array([labels.index(e.label) for e in contrast])
    P = head.predict_proba(head_input([e.text for e in contrast], E_contrast))
    full = np.zeros((len(Y), len(labels)))
    full[:, head.classes_] = P
    return {"n": len(contrast), "in_training": sum(e.text in trained for e in contrast),
            "metrics": evaluate_predictions(Y, full, labels, _present(Y, labels)).to_dict(),
            "relevance_wrongly_dropped": int(relevance.is_off_topic(E_contrast).sum())}


def _pages() -> list[tuple[str, bool, list[str]]]:
    """(name, is a general-news page, paragraphs) for every page JSON in corpus/pages/*/."""
    found = []
    for path in sorted((ROOT / "corpus" / "pages").glob("*/*.json")):
        name = f"{path.parent.name}/{path.stem}"
        paragraphs = [" ".join(p.split()) for p in json.loads(path.read_text())["paragraphs"] if p.strip()]
        found.append((name, name in GENERAL_PAGES, paragraphs))
    return found


def _passes(texts, E, head, relevance, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(marked off_topic, labelled neutral_wire by the head, labelled a framing by the head alone)."""
    off = relevance.is_off_topic(E)
    proba = np.zeros((len(texts), len(labels)))
    proba[:, head.classes_] = head.predict_proba(head_input(texts, E))
    neutral = proba.argmax(axis=1) == labels.index("neutral_wire")
    return off, neutral, ~neutral


def _off_topic(general, E_general, pages, E_pages, head, relevance, labels) -> dict:
    def rates(texts, E) -> dict:
        off, neutral, framed = _passes(texts, E, head, relevance, labels)
        return {"n": len(texts), "off_topic": float(off.mean()), "off_topic_or_neutral": float((off | neutral).mean()),
                "head_alone_framed": float(framed.mean()), "framed_after_relevance": int((~off & framed).sum())}

    out = {"general_news_eval": rates(general, E_general), "pages": {}}
    start = 0
    general_rows, topic_rows = [], []
    for name, is_general, paragraphs in pages:
        rows = list(range(start, start + len(paragraphs)))
        start += len(paragraphs)
        (general_rows if is_general else topic_rows).extend(rows)
        if is_general:
            out["pages"][name] = rates(paragraphs, E_pages[rows])
    texts = [t for _, _, paragraphs in pages for t in paragraphs]
    out["general_pages"] = rates([texts[i] for i in general_rows], E_pages[general_rows])
    on_topic = relevance.is_off_topic(E_pages[topic_rows])
    out["on_topic_pages_dropped"] = {"n": len(topic_rows), "off_topic": float(on_topic.mean())}
    return out


def _grouped_cv(X, y, groups, seed_rows, labels, options) -> dict:
    proba = out_of_fold_proba(X, y, len(labels), options, groups=groups)
    return {"all": evaluate_predictions(y, proba, labels).to_dict(),
            "authored": evaluate_predictions(y[~seed_rows], proba[~seed_rows], labels).to_dict(),
            "seed": evaluate_predictions(y[seed_rows], proba[seed_rows], labels).to_dict(),
            "n_groups": len(set(groups))}


def _table(r: dict, labels) -> str:
    real = r["real_copy"]
    m, ci = real["metrics"], real["interval"]

    def span(name):
        return f"[{ci[name][0]:.3f}, {ci[name][1]:.3f}]" if name in ci else ""

    lines = ["| measure | value | 95% interval (articles) |", "|---|---:|---|",
             f"| real copy macro-F1 ({r['n']['seed']} seed paragraphs, {len(real['articles'])} articles held out "
             f"in turn) | {m['macro_f1']:.3f} | {span('macro_f1')} |"]
    lines += [f"| real copy F1 {label} (n={m['per_label'][label]['support']}) | {m['per_label'][label]['f1']:.3f} "
              f"| {span(label)} |" for label in labels]
    cal = real["calibration"]
    lines += [f"| real copy ECE | {m['ece']:.3f} | {span('ece')} |",
              f"| real copy ECE, temperature (nested) | {cal['temperature_nested']['ece']:.3f} | "
              f"T on all articles = {cal['temperature_all_articles']:.2f} |",
              f"| real copy ECE / macro-F1, prior correction (nested) | {cal['prior_correction_nested']['ece']:.3f} "
              f"/ {cal['prior_correction_nested']['macro_f1']:.3f} | |",
              f"| real copy paragraphs the relevance stage drops | {real['relevance_wrongly_dropped']['n']} of "
              f"{real['relevance_wrongly_dropped']['of']} | |"]
    for key, name in (("contrast", "contrast set"), ("mixed_authored", "mixed authored copy (no stand-in for real)")):
        c = r[key]
        if c["n"]:
            cm = c["metrics"]
            lines.append(f"| {name} macro-F1 (n={c['n']}, {c['in_training']} in training) | {cm['macro_f1']:.3f} "
                         f"| F1 " + ", ".join(f"{k} {v['f1']:.2f}" for k, v in cm["per_label"].items()) +
                         f"; ECE {cm['ece']:.3f} |")
    o = r["off_topic"]
    for name, key in (("eval/general_news.jsonl", "general_news_eval"), ("general-news pages", "general_pages")):
        lines.append(f"| {name}: off_topic or neutral_wire (n={o[key]['n']}) | {o[key]['off_topic_or_neutral']:.3f} "
                     f"| off_topic {o[key]['off_topic']:.3f}; head alone framed {o[key]['head_alone_framed']:.3f} |")
    lines.append(f"| on-topic pages: paragraphs dropped as off_topic (n={o['on_topic_pages_dropped']['n']}) | "
                 f"{o['on_topic_pages_dropped']['off_topic']:.3f} | |")
    g = r["grouped_cv"]
    lines += [f"| grouped CV over authored batches, all (n groups={g['n_groups']}) | {g['all']['macro_f1']:.3f} | "
              f"ECE {g['all']['ece']:.3f} |",
              f"| grouped CV, authored paragraphs only | {g['authored']['macro_f1']:.3f} | "
              f"ECE {g['authored']['ece']:.3f} |",
              f"| relevance threshold (grouped OOF on-topic recall {r['relevance']['cv']['on_topic_recall']:.3f}, "
              f"off-topic recall {r['relevance']['cv']['off_topic_recall']:.3f}) | {r['relevance']['threshold']:.3f} "
              f"| |"]
    return "\n".join(lines) + f"\n\n{r['seconds']['total']:.0f} s; written to {RESULTS.relative_to(ROOT)}"


if __name__ == "__main__":
    main()
