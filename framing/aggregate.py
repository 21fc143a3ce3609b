"""The reduce step: per-document tallies and evidence, as values that merge, and per-outlet summaries.

Tallies and evidence are built from scored batches in any order and merged; the result does not
depend on the order (ties are broken by content, never by arrival), which is what lets a cluster
engine reduce them in whatever order its tasks finish. Intervals and corrected prevalence are
computed from the tallies by `framing.prevalence`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .records import OutletSummary

EVIDENCE_PER_LABEL = 5


@dataclass
class DocumentTally:
    """What aggregation needs of one document: its outlet, its scored paragraphs' probabilities, and how
    many of its paragraphs were repeats of paragraphs already scored for the same outlet."""

    key: str
    outlet: str
    proba: np.ndarray  # float[n, k], the document's scored paragraphs in reading order
    n_duplicates: int = 0

    @property
    def n(self) -> int:
        return len(self.proba)

    @property
    def counts(self) -> np.ndarray:
        """Paragraphs whose most probable label is each label."""
        return np.bincount(self.proba.argmax(axis=1), minlength=self.proba.shape[1]) if self.n else \
            np.zeros(self.proba.shape[1], dtype=int)

    def merge(self, other: DocumentTally) -> DocumentTally:
        if other.key != self.key:
            raise ValueError(f"cannot merge the tallies of two documents ({self.key!r}, {other.key!r})")
        return DocumentTally(self.key, self.outlet, np.vstack([self.proba, other.proba]),
                             self.n_duplicates + other.n_duplicates)


def merge_tallies(tallies: Iterable[DocumentTally]) -> dict[str, DocumentTally]:
    """One tally per document key, parts merged in the order given."""
    merged: dict[str, DocumentTally] = {}
    for tally in tallies:
        merged[tally.key] = merged[tally.key].merge(tally) if tally.key in merged else tally
    return merged


@dataclass(frozen=True, order=True)
class Example:
    """One paragraph offered as evidence. Ordered by score, then by content: never by arrival."""

    score: float
    text: str
    doc: str
    index: int
    probability: float = field(compare=False)
    scores: tuple[float, ...] = field(compare=False, default=())
    neighbours: tuple = field(compare=False, default=())  # ((row in the labelled set, similarity), ...)
    voice: str = field(compare=False, default="")


@dataclass
class Evidence:
    """Per (outlet, label): the most confident paragraphs, and the most borderline ones (smallest
    margin between the top two labels), in bounded heaps while streaming. Merges with another."""

    per_label: int = EVIDENCE_PER_LABEL
    confident: dict[tuple[str, str], list[Example]] = field(default_factory=dict)
    borderline: dict[tuple[str, str], list[Example]] = field(default_factory=dict)

    def offer(self, outlet: str, label: str, proba: np.ndarray, doc: str, index: int, text: str,
              neighbours: tuple = (), voice: str = "") -> None:
        top2 = np.sort(proba)[-2:] if len(proba) > 1 else np.array([0.0, proba[0]])
        scores = tuple(round(float(p), 4) for p in proba)
        probability = float(top2[-1])
        self._push(self.confident, (outlet, label),
                   Example(probability, text, doc, index, probability, scores, neighbours, voice))
        margin = float(top2[-1] - top2[-2])
        self._push(self.borderline, (outlet, label),
                   Example(-margin, text, doc, index, probability, scores, neighbours, voice))

    def _push(self, heaps: dict, key: tuple[str, str], item: Example) -> None:
        heap = heaps.setdefault(key, [])
        if len(heap) < self.per_label:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            heapq.heapreplace(heap, item)

    def merge(self, other: Evidence) -> Evidence:
        merged = Evidence(self.per_label)
        for source in (self, other):
            for key, items in source.confident.items():
                for item in items:
                    merged._push(merged.confident, key, item)
            for key, items in source.borderline.items():
                for item in items:
                    merged._push(merged.borderline, key, item)
        return merged

    def best(self, outlet: str, label: str) -> list[Example]:
        """The most confident paragraphs of this outlet and label, most confident first."""
        return sorted(self.confident.get((outlet, label), []), reverse=True)

    def closest_calls(self, outlet: str, label: str) -> list[Example]:
        """The paragraphs given this label by the smallest margin, closest call first."""
        return sorted(self.borderline.get((outlet, label), []), reverse=True)


@dataclass(frozen=True)
class OutletCounts:
    """What was read for one outlet, including what was left out of its shares."""

    documents: int  # every document read, duplicates included
    paragraphs: int  # paragraphs scored
    duplicates: int  # paragraphs left out as exact repeats within the outlet
    duplicate_documents: int  # documents all of whose paragraphs were repeats


def outlet_counts(tallies: Iterable[DocumentTally]) -> dict[str, OutletCounts]:
    grouped: dict[str, list[DocumentTally]] = {}
    for tally in tallies:
        grouped.setdefault(tally.outlet, []).append(tally)
    return {outlet: OutletCounts(documents=len(docs), paragraphs=sum(d.n for d in docs),
                                 duplicates=sum(d.n_duplicates for d in docs),
                                 duplicate_documents=sum(1 for d in docs if not d.n and d.n_duplicates))
            for outlet, docs in sorted(grouped.items())}


def document_shares(tally: DocumentTally, labels: Sequence[str]) -> dict[str, float]:
    """The share of a document's scored paragraphs whose most probable label is each label."""
    if not tally.n:
        return {label: 0.0 for label in labels}
    counts = tally.counts
    return {label: round(float(counts[i] / tally.n), 4) for i, label in enumerate(labels)}


# --- per-outlet summaries -------------------------------------------------------------------------

def summarize(tallies: Sequence[DocumentTally], labels: Sequence[str], calibration=None,
              method: str | None = None, seed: int = 0, n_resamples: int | None = None,
              progress=None) -> tuple[list[OutletSummary], dict]:
    """One summary per outlet (sorted by name) and the prevalence estimates behind them.

    `share` is plain classify-and-count; `prevalence` is corrected for the classifier's errors by
    `method` with the model's calibration (see framing.prevalence). Every document read counts in
    `documents`, even one whose paragraphs were all repeats.
    """
    from .prevalence import DEFAULT_METHOD, N_RESAMPLES, Method, estimate_outlets

    chosen = Method(method) if method else (DEFAULT_METHOD if calibration is not None else Method.CC)
    read = outlet_counts(tallies)
    docs_by_outlet: dict[str, list[np.ndarray]] = {}
    for tally in tallies:
        if tally.n:
            docs_by_outlet.setdefault(tally.outlet, []).append(tally.proba)
    estimates = estimate_outlets(docs_by_outlet, calibration, chosen, n_resamples=n_resamples or N_RESAMPLES,
                                 seed=seed, progress=progress)
    summaries = []
    for outlet, estimate in sorted(estimates.items()):
        counts = read[outlet]
        mean = np.vstack(docs_by_outlet[outlet]).mean(axis=0)
        summaries.append(OutletSummary(
            outlet=outlet, documents=counts.documents, paragraphs=counts.paragraphs,
            share=_by_label(labels, estimate.share), mean_score=_by_label(labels, mean),
            ci=_intervals(labels, estimate.share_ci), prevalence=_by_label(labels, estimate.prevalence),
            prevalence_ci=_intervals(labels, estimate.prevalence_ci), method=str(estimate.method),
            duplicates=counts.duplicates, duplicate_documents=counts.duplicate_documents))
    return summaries, estimates


def _by_label(labels: Sequence[str], values: np.ndarray) -> dict[str, float]:
    return {label: round(float(values[i]), 6) for i, label in enumerate(labels)}


def _intervals(labels: Sequence[str], bounds: np.ndarray) -> dict[str, tuple[float, float]]:
    return {label: (round(float(bounds[i, 0]), 6), round(float(bounds[i, 1]), 6)) for i, label in enumerate(labels)}
