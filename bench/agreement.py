"""How far a second, blind annotation of the seed paragraphs agrees with the gold labels.

    .venv/bin/python bench/agreement.py      # writes bench/results/agreement.json

labels/agreement/seeds_second_pass.jsonl is a second pass over the 198 seed paragraphs by an annotator
who saw the guidelines and the articles but not the gold labels, the model or its predictions (an AI
helper, as the first annotator was: two readers of one kind, so this is an upper bound on what careful
human annotators would agree, not a substitute for them). The guidelines cite about a third of the
paragraphs with their label as worked examples; agreement on the rest is the independent figure.
Read beside the model's real-copy macro-F1: it says how far the model is from the labels' own ceiling.

labels/agreement/authored_second_pass.jsonl does the same for 192 authored training paragraphs (16 from
each authored file, not cited in the guidelines): how clean, and how easy, the copy the head learns from is.
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from framing.classify import evaluate_predictions  # noqa: E402
from framing.labels import load_scheme  # noqa: E402

SECOND_PASS = ROOT / "labels" / "agreement" / "seeds_second_pass.jsonl"
# 16 authored paragraphs from each authored file, drawn at random (seed 0) among those the guidelines do not
# cite, shuffled together and labelled by the same kind of blind second annotator
AUTHORED_PASS = ROOT / "labels" / "agreement" / "authored_second_pass.jsonl"
GOLD = ROOT / "labels" / "seeds.jsonl"


def cohen_kappa(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Agreement beyond what the two annotators' label frequencies give by chance."""
    confusion = np.bincount(a * k + b, minlength=k * k).reshape(k, k) / len(a)
    chance = float(confusion.sum(1) @ confusion.sum(0))
    return (float(np.trace(confusion)) - chance) / (1 - chance)


def agreement(gold: np.ndarray, second: np.ndarray, labels: tuple[str, ...]) -> dict:
    k = len(labels)
    one_hot = np.eye(k)[second]  # the second pass as certain "probabilities", so the usual metrics apply
    metrics = evaluate_predictions(gold, one_hot, labels)
    return {"n": int(len(gold)), "agreement": float((gold == second).mean()),
            "cohen_kappa": cohen_kappa(gold, second, k), "macro_f1": metrics.macro_f1,
            "f1": {label: metrics.per_label[label]["f1"] for label in labels},
            "confusion_gold_rows": np.bincount(gold * k + second, minlength=k * k).reshape(k, k).tolist()}


def main() -> int:
    labels = load_scheme(ROOT / "labels" / "scheme.json").labels
    index = {label: i for i, label in enumerate(labels)}
    seeds = [json.loads(line) for line in GOLD.read_text().splitlines()]
    gold = {(r["doc"], r["line"]): r["label"] for r in seeds}
    texts = {(r["doc"], r["line"]): r["text"] for r in seeds}
    passes = [json.loads(line) for line in SECOND_PASS.read_text().splitlines()]
    if {(r["doc"], r["line"]) for r in passes} != set(gold) or any(r["text"] != texts[r["doc"], r["line"]]
                                                                    for r in passes):
        raise SystemExit(f"{SECOND_PASS} does not cover the seed paragraphs one for one, with their text")
    y = np.array([index[gold[r["doc"], r["line"]]] for r in passes])
    z = np.array([index[r["label"]] for r in passes])
    cited = np.array([r["cited_in_guidelines"] for r in passes])
    sure = np.array([r["confidence"] == "sure" for r in passes])
    result = {"created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "labels": list(labels),
              "all": agreement(y, z, labels),
              "independent": agreement(y[~cited], z[~cited], labels),
              "independent_sure": agreement(y[~cited & sure], z[~cited & sure], labels),
              "disagreements": [dict(r, gold=gold[r["doc"], r["line"]]) for r, a, b in zip(passes, y, z) if a != b]}
    for name, rows in (("all", np.ones(len(passes), dtype=bool)), ("independent", ~cited)):
        result[name]["unsure"] = float(1 - sure[rows].mean())  # how often the second annotator hesitated
    result["authored_sample"] = _authored(index, labels)
    out = ROOT / "bench" / "results" / "agreement.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print("| paragraphs | n | agreement | Cohen's kappa | macro-F1 | F1 state / western / neutral | unsure |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for name in ("all", "independent", "independent_sure", "authored_sample"):
        row = result[name]
        f1 = " / ".join(f"{row['f1'][label]:.3f}" for label in labels)
        unsure = f"{row['unsure']:.1%}" if "unsure" in row else ""
        print(f"| {name} | {row['n']} | {row['agreement']:.3f} | {row['cohen_kappa']:.3f} | "
              f"{row['macro_f1']:.3f} | {f1} | {unsure} |")
    return 0


def _authored(index: dict[str, int], labels: tuple[str, ...]) -> dict:
    passes = [json.loads(line) for line in AUTHORED_PASS.read_text().splitlines()]
    gold = []
    for r in passes:
        lines = (ROOT / r["file"]).read_text(encoding="utf-8").splitlines()
        record = json.loads(lines[r["line"] - 1])
        if record["text"] != r["text"]:
            raise SystemExit(f"{AUTHORED_PASS}: {r['file']}:{r['line']} is no longer the paragraph that was annotated")
        gold.append(index[record["label"]])
    return dict(agreement(np.array(gold), np.array([index[r["label"]] for r in passes]), labels),
                unsure=float(np.mean([r["confidence"] != "sure" for r in passes])),
                files=sorted({r["file"] for r in passes}))


if __name__ == "__main__":
    raise SystemExit(main())
