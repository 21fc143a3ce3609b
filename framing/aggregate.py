"""Per-outlet shares, mean scores and bootstrap intervals: pure functions over arrays.

The interval resamples in two stages, the way the data were made: documents with
replacement, then the label proportions within each drawn document (a draw from the
Jeffreys posterior of its label counts). Resampling documents alone would give a
zero-width interval to an outlet with one article, and plug-in proportions would give one to a
label never seen in it: both claim a certainty the data do not have. scipy's bootstrap has no
two-stage mode, hence the few lines of NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .records import OutletSummary

N_RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass
class DocumentTally:
    """What aggregation needs of one scored document."""

    outlet: str
    counts: np.ndarray  # int[k]: paragraphs whose top label is each label
    score_sums: np.ndarray  # float[k]: summed probabilities

    @property
    def n(self) -> int:
        return int(self.counts.sum())


def tally(outlet: str, proba: np.ndarray) -> DocumentTally:
    """Counts of top labels and summed probabilities of one document's paragraphs."""
    k = proba.shape[1]
    top = proba.argmax(axis=1)
    return DocumentTally(outlet, np.bincount(top, minlength=k), proba.sum(axis=0))


def summarize(tallies: Sequence[DocumentTally], labels: Sequence[str], seed: int = 0,
              n_resamples: int = N_RESAMPLES) -> list[OutletSummary]:
    """One summary per outlet (sorted by name), skipping documents with no scored paragraph."""
    by_outlet: dict[str, list[DocumentTally]] = {}
    for doc in tallies:
        if doc.n:
            by_outlet.setdefault(doc.outlet, []).append(doc)
    rng = np.random.default_rng(seed)
    return [_summary(outlet, docs, labels, rng, n_resamples) for outlet, docs in sorted(by_outlet.items())]


def _summary(outlet: str, docs: list[DocumentTally], labels: Sequence[str], rng: np.random.Generator,
             n_resamples: int) -> OutletSummary:
    counts = np.stack([d.counts for d in docs])
    n = counts.sum()
    share = counts.sum(axis=0) / n
    mean = np.stack([d.score_sums for d in docs]).sum(axis=0) / n
    low, high = share_interval(counts, rng, n_resamples)
    return OutletSummary(outlet=outlet, documents=len(docs), paragraphs=int(n),
                         share=_by_label(labels, share), mean_score=_by_label(labels, mean),
                         ci={label: (float(low[i]), float(high[i])) for i, label in enumerate(labels)})


def share_interval(counts: np.ndarray, rng: np.random.Generator, n_resamples: int = N_RESAMPLES,
                   confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of each label's share; counts is int[documents, labels]."""
    n_docs = len(counts)
    totals = counts.sum(axis=1)
    shares = np.empty((n_resamples, counts.shape[1]))
    for r in range(n_resamples):
        drawn = rng.integers(0, n_docs, n_docs)
        # Second stage: each drawn document's label proportions are drawn from their Jeffreys posterior,
        # Dirichlet(counts + 1/2), rather than resampled from the plug-in counts: a label seen in 0 of 17
        # paragraphs is not known to be exactly 0%. (Per document it gives the Jeffreys interval.)
        gamma = rng.standard_gamma(counts[drawn] + 0.5)  # one Dirichlet draw per document, vectorised
        proportions = gamma / gamma.sum(axis=1, keepdims=True)
        shares[r] = (totals[drawn, None] * proportions).sum(axis=0) / totals[drawn].sum()
    alpha = (1 - confidence) / 2
    observed = counts.sum(axis=0) / totals.sum()
    # Widened to hold the observed share, as the Jeffreys interval is at 0 and at 100%.
    return (np.minimum(np.quantile(shares, alpha, axis=0), observed),
            np.maximum(np.quantile(shares, 1 - alpha, axis=0), observed))


def _by_label(labels: Sequence[str], values: np.ndarray) -> dict[str, float]:
    return {label: float(values[i]) for i, label in enumerate(labels)}
