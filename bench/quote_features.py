"""Do quotation and attribution features help on real copy? The default head against the same head whose
embedding half also sees five cheap features of voice (framing.quotes: quotation score, quoted share,
attribution; counts of distancing and attribution words), on the seed articles held out in turn.

    python bench/quote_features.py

Result (2,012 labelled paragraphs; 5 articles, 198 paragraphs): baseline macro-F1 0.759; with the
features 0.762, with them weighted x3 0.769 (western_critical F1 0.652 -> 0.682). Within the interval
over articles (0.660-0.804), so the default does not use them: there is no second real-copy set to
confirm a gain this small.
"""

from __future__ import annotations

import re

import numpy as np

from framing.classify import HeadOptions, head_input
from framing.labels import load_scheme, read_examples
from framing.pipeline import _real_copy, make_embedder
from framing.quotes import assess

DISTANCING = re.compile(r"\b(accused|claimed|alleged|portrayed|presents itself|so-called|could not be "
                        r"(independently )?verified|critics|denied)\b", re.I)
ATTRIBUTION = re.compile(r"\b(said|told|stressed|added|noted|according to|spokesperson|minister|ambassador|envoy)\b",
                         re.I)


def features(text: str) -> list[float]:
    voice = assess(text)
    return [voice.score, voice.quoted_share, float(voice.attributed), len(DISTANCING.findall(text)) / 3,
            len(ATTRIBUTION.findall(text)) / 3]


def main() -> None:
    scheme = load_scheme("labels/scheme.json")
    examples = read_examples("labels", scheme)
    texts = [e.text for e in examples]
    embeddings = make_embedder().embed(texts)
    y = np.array([scheme.index(e.label) for e in examples])
    extra = np.array([features(t) for t in texts])
    for name, columns in (("default head", embeddings), ("+ voice features", np.hstack([embeddings, extra])),
                          ("+ voice features x3", np.hstack([embeddings, 3 * extra]))):
        result = _real_copy(head_input(texts, columns), y, examples, scheme.labels, HeadOptions())
        per_label = ", ".join(f"{k} {v['f1']:.3f}" for k, v in result.metrics.per_label.items())
        print(f"{name}: real-copy macro-F1 {result.metrics.macro_f1:.3f} ({per_label})")


if __name__ == "__main__":
    main()
