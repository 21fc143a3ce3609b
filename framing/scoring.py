"""The map step: a batch of paragraphs in, scored records out.

`score_batch` is a pure function of its arguments: no open files, no run-wide state, no callbacks,
so a cluster engine can run it in any worker (Ray Data's `map_batches` runs exactly this).
De-duplication is a separate step before it (`Deduplicator`), because it needs to see the whole run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .classify import Model
from .embed import Embedder
from .records import Paragraph


@dataclass(frozen=True)
class ScoredBatch:
    """Paragraphs with their label probabilities (scheme order) and detected language."""

    paragraphs: tuple[Paragraph, ...]
    proba: np.ndarray  # float[n, k]
    languages: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paragraphs)

    def rows(self, labels: Sequence[str]) -> Iterator[dict]:
        """One `paragraphs.jsonl` record per paragraph."""
        for paragraph, row, lang in zip(self.paragraphs, self.proba, self.languages):
            yield {"doc": paragraph.doc, "outlet": paragraph.outlet, "publisher": paragraph.publisher,
                   "index": paragraph.index, "line": paragraph.line, "text": paragraph.text,
                   "label": labels[int(row.argmax())],
                   "scores": {label: round(float(p), 4) for label, p in zip(labels, row)}, "lang": lang}


def score_batch(paragraphs: Sequence[Paragraph], model: Model, embedder: Embedder) -> ScoredBatch:
    """Embed and classify a batch of paragraphs, and detect their language."""
    texts = [p.text for p in paragraphs]
    proba = model.predict_proba(texts, embedder.embed(texts)) if texts else np.zeros((0, len(model.labels)))
    return ScoredBatch(tuple(paragraphs), proba, tuple(detect_languages(texts)))


def detect_languages(texts: Sequence[str]) -> list[str]:
    """ISO 639-1 code of each text's language (py3langid: deterministic, offline)."""
    if not texts:
        return []
    import py3langid

    return [py3langid.classify(text[:2000])[0] for text in texts]  # a prefix: bounded time on a huge paragraph


class Deduplicator:
    """Remembers (outlet, paragraph) pairs: a paragraph an outlet repeats is scored and counted once.

    The same paragraph in two outlets counts in both: that each ran it is what is being measured.
    """

    def __init__(self) -> None:
        self._seen: set[bytes] = set()

    def fresh(self, paragraphs: Sequence[Paragraph]) -> list[Paragraph]:
        kept = []
        for paragraph in paragraphs:
            key = hashlib.sha256(f"{paragraph.outlet}\x00{paragraph.text}".encode("utf-8", "surrogatepass"))
            digest = key.digest()[:16]  # 16 bytes: no collision in any archive, half the memory
            if digest not in self._seen:
                self._seen.add(digest)
                kept.append(paragraph)
        return kept
