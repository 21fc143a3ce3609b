"""aggregate: per-document tallies, per-outlet counts and summaries, on hand-written arrays.

The intervals themselves are tested by simulation in test_prevalence.py."""

from __future__ import annotations

import numpy as np
import pytest

from framing.aggregate import DocumentTally, document_shares, outlet_counts, summarize

LABELS = ("state_aligned", "western_critical", "neutral_wire")


def doc(key: str, outlet: str, proba, duplicates: int = 0) -> DocumentTally:
    return DocumentTally(key, outlet, np.asarray(proba, dtype=float).reshape(-1, 3), duplicates)


def test_a_tally_counts_top_labels():
    tally = doc("d", "X", [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    assert tally.counts.tolist() == [2, 1, 1] and tally.n == 4
    assert document_shares(tally, LABELS) == {"state_aligned": 0.5, "western_critical": 0.25, "neutral_wire": 0.25}
    assert doc("e", "X", []).counts.tolist() == [0, 0, 0]


def test_outlet_counts_include_documents_that_added_no_paragraph():
    tallies = [doc("a", "X", [[0.8, 0.1, 0.1]]), doc("b", "X", [], duplicates=3), doc("c", "Y", [[0.1, 0.1, 0.8]], 1)]
    counts = outlet_counts(tallies)
    assert (counts["X"].documents, counts["X"].paragraphs, counts["X"].duplicates,
            counts["X"].duplicate_documents) == (2, 1, 3, 1)
    assert (counts["Y"].documents, counts["Y"].duplicates, counts["Y"].duplicate_documents) == (1, 1, 0)


def test_summaries_pool_paragraphs_and_hold_their_estimates():
    tallies = [doc("a", "A", [[0.7, 0.2, 0.1]] * 3 + [[0.1, 0.8, 0.1]]),
               doc("b", "A", [[0.1, 0.1, 0.8]] * 3 + [[0.1, 0.8, 0.1]]),
               doc("c", "B", [[0.1, 0.1, 0.8]] * 2)]
    summaries, estimates = summarize(tallies, LABELS, n_resamples=300)
    assert [s.outlet for s in summaries] == ["A", "B"] and set(estimates) == {"A", "B"}
    a = summaries[0]
    assert (a.documents, a.paragraphs, a.method) == (2, 8, "cc")  # no calibration: plain counts
    assert a.share == pytest.approx({"state_aligned": 3 / 8, "western_critical": 2 / 8, "neutral_wire": 3 / 8})
    assert sum(a.mean_score.values()) == pytest.approx(1)
    for label in LABELS:
        low, high = a.ci[label]
        assert low <= a.share[label] <= high and high > 0
        assert a.prevalence_ci[label][0] <= a.prevalence[label] <= a.prevalence_ci[label][1]


def test_summaries_are_seeded_and_independent_of_document_order():
    rng = np.random.default_rng(0)
    tallies = [doc(f"d{i}", "A", rng.dirichlet([1, 1, 1], size=5)) for i in range(12)]
    first, _ = summarize(tallies, LABELS, seed=7, n_resamples=300)
    again, _ = summarize(tallies[::-1], LABELS, seed=7, n_resamples=300)
    assert first[0].share == again[0].share
    assert summarize(tallies, LABELS, seed=7, n_resamples=300)[0] == first
