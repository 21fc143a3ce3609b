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
from .quotes import voice
from .records import Paragraph
from .relevance import OFF_TOPIC


@dataclass(frozen=True)
class ScoredBatch:
    """Paragraphs with their label probabilities (scheme order) and detected language."""

    paragraphs: tuple[Paragraph, ...]
    proba: np.ndarray  # float[n, k]
    languages: tuple[str, ...]
    off_topic: np.ndarray  # bool[n]: the relevance stage says the paragraph is about something else
    off_topic_score: np.ndarray  # float[n]: its probability of being off topic
    neighbours: tuple = ()  # per paragraph [(row in the model's labelled set, similarity)], if the model has them

    def __len__(self) -> int:
        return len(self.paragraphs)

    def rows(self, labels: Sequence[str]) -> Iterator[dict]:
        """One `paragraphs.jsonl` record per paragraph."""
        for i, (paragraph, row, lang) in enumerate(zip(self.paragraphs, self.proba, self.languages)):
            yield {"doc": paragraph.doc, "outlet": paragraph.outlet, "publisher": paragraph.publisher,
                   "index": paragraph.index, "line": paragraph.line, "text": paragraph.text,
                   "label": OFF_TOPIC if self.off_topic[i] else labels[int(row.argmax())],
                   "scores": {label: round(float(p), 4) for label, p in zip(labels, row)},
                   "off_topic": round(float(self.off_topic_score[i]), 4), "lang": lang,
                   "voice": voice(paragraph.text),
                   "neighbours": [list(pair) for pair in self.neighbours[i]] if self.neighbours else []}


def score_batch(paragraphs: Sequence[Paragraph], model: Model, embedder: Embedder) -> ScoredBatch:
    """Embed and classify a batch of paragraphs, mark those about something else, find their nearest
    labelled paragraphs, and detect their language."""
    texts = [p.text for p in paragraphs]
    if not texts:
        empty = np.zeros(0)
        return ScoredBatch((), np.zeros((0, len(model.labels))), (), empty.astype(bool), empty)
    embeddings = embedder.embed(texts)
    proba = model.predict_proba(texts, embeddings)
    relevance, neighbours = model.relevance, model.neighbours
    p_off = relevance.off_topic_proba(embeddings) if relevance is not None else np.zeros(len(texts))
    off = p_off >= relevance.threshold_ if relevance is not None else np.zeros(len(texts), dtype=bool)
    near = tuple(neighbours.query(embeddings)) if neighbours is not None else ()
    return ScoredBatch(tuple(paragraphs), proba, tuple(detect_languages(texts)), off, p_off, near)


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
