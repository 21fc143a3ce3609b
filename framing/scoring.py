"""The map step: a batch of paragraphs in, scored records out.

`score_batch` is a pure function of its arguments: no open files, no run-wide state, no callbacks,
so a cluster engine can run it in any worker (Ray Data's `map_batches` runs exactly this).
De-duplication is a separate step before it (`Deduplicator`), because it needs to see the whole run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .classify import Model
from .embed import Embedder
from .quotes import non_ascii_letters, voice
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


# Words that make up a tenth of any English prose and are rare outside it (none is a common word of Dutch,
# German, French or the Slavic languages: no "in", "is", "was", "an", "on", "will"): a paragraph thick
# with them is English without asking the language model (py3langid: 0.4 s to load, ~4 ms a paragraph).
_ENGLISH = frozenset(["the", "of", "and", "that", "for", "with", "said", "by", "from", "are", "has", "have", "this",
                      "which", "its", "were", "their", "they", "toward", "towards", "against", "would", "been",
                      "had", "who", "than", "into", "about", "after", "these", "those", "there", "such", "it", "as",
                      "at", "not", "but", "while", "when", "where", "what", "because", "during", "between",
                      "before", "under", "our", "or"])
# Common English words that other languages share ("in", "is", "was" in Dutch; "an", "will" in German; "on"
# in French; "to" in Polish): they add to the density but cannot make a paragraph English on their own.
_SHARED = frozenset(["to", "in", "is", "was", "on", "an", "be", "will", "his", "her", "also", "a", "we", "he",
                     "after", "over"])
_WORD = re.compile(r"[a-z]+")


def plainly_english(text: str) -> bool:
    words = _WORD.findall(text[:2000].lower())
    strong = {w for w in words if w in _ENGLISH}
    common = [w for w in words if w in _ENGLISH or w in _SHARED]
    return len(words) >= 8 and len(strong) >= 2 and len(set(common)) >= 4 and len(common) >= 0.15 * len(words) \
        and not non_ascii_letters(text[:2000])  # accented or other scripts: ask the model


def detect_languages(texts: Sequence[str]) -> list[str]:
    """ISO 639-1 code of each text's language (py3langid: deterministic, offline)."""
    found = ["en" if plainly_english(text) else "" for text in texts]
    if all(found):
        return found
    import py3langid

    # a prefix: bounded time on a huge paragraph
    return [lang or py3langid.classify(text[:2000])[0] for lang, text in zip(found, texts)]


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
