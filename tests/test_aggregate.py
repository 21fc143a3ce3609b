"""aggregate: per-outlet shares, mean scores and two-stage bootstrap intervals, on hand-written arrays."""

from __future__ import annotations

import numpy as np
import pytest

from framing.aggregate import DocumentTally, share_interval, summarize, tally

LABELS = ("state_aligned", "western_critical", "neutral_wire")


def doc(outlet: str, counts, score_sums=None) -> DocumentTally:
    counts = np.asarray(counts)
    sums = np.asarray(score_sums, dtype=float) if score_sums is not None else counts.astype(float)
    return DocumentTally(outlet, counts, sums)


def width(summary, label: str) -> float:
    low, high = summary.ci[label]
    return high - low


def test_tally_counts_top_labels_and_sums_probabilities():
    proba = np.array([[0.7, 0.2, 0.1],
                      [0.1, 0.8, 0.1],
                      [0.6, 0.3, 0.1],
                      [0.2, 0.2, 0.6]])
    result = tally("Example", proba)
    assert result.outlet == "Example"
    assert result.counts.tolist() == [2, 1, 1]
    np.testing.assert_allclose(result.score_sums, [1.6, 1.5, 0.9])
    assert result.n == 4


def test_shares_and_mean_scores_pool_paragraphs_over_documents():
    tallies = [doc("A", [3, 1, 0], [2.4, 1.0, 0.6]),
               doc("A", [0, 1, 3], [0.4, 1.0, 2.6])]
    (summary,) = summarize(tallies, LABELS, n_resamples=200)
    assert (summary.outlet, summary.documents, summary.paragraphs) == ("A", 2, 8)
    assert summary.share == pytest.approx({"state_aligned": 3 / 8, "western_critical": 2 / 8, "neutral_wire": 3 / 8})
    assert summary.mean_score == pytest.approx({"state_aligned": 2.8 / 8, "western_critical": 2.0 / 8,
                                                "neutral_wire": 3.2 / 8})


@pytest.mark.parametrize("tallies", [
    [doc("A", [3, 1, 0]), doc("A", [0, 1, 3]), doc("A", [2, 2, 2])],
    [doc("A", [10, 0, 0]), doc("A", [0, 5, 5]), doc("A", [1, 1, 8]), doc("A", [4, 4, 0])],
    [doc("A", [1, 0, 0]) for _ in range(5)] + [doc("A", [0, 0, 1]) for _ in range(5)],
    [doc("A", [5, 3, 2])],
])
def test_intervals_contain_the_share(tallies):
    (summary,) = summarize(tallies, LABELS, seed=1)
    for label in LABELS:
        low, high = summary.ci[label]
        assert 0.0 <= low <= summary.share[label] <= high <= 1.0, (label, low, summary.share[label], high)


def test_interval_shrinks_with_more_documents():
    mixed = [[3, 1, 0], [1, 2, 1], [0, 1, 3]]
    few = summarize([doc("A", c) for c in mixed], LABELS, seed=0)[0]
    many = summarize([doc("A", c) for c in mixed * 20], LABELS, seed=0)[0]
    assert few.share == pytest.approx(many.share)  # same proportions ...
    for label in LABELS:
        assert width(many, label) < width(few, label) / 2, label  # ... but far more evidence


def test_single_document_outlet_with_mixed_labels_gets_a_real_interval():
    (summary,) = summarize([doc("Lonely", [3, 1, 0])], LABELS, seed=0)
    low, high = summary.ci["state_aligned"]
    assert low < summary.share["state_aligned"] < high  # resampling paragraphs, not just the one document
    assert width(summary, "western_critical") > 0

def test_a_label_never_seen_still_gets_an_upper_bound_that_shrinks_with_evidence():
    (few,) = summarize([doc("A", [3, 1, 0])], LABELS, seed=0)
    (many,) = summarize([doc("A", [30, 10, 0])], LABELS, seed=0)
    for summary in (few, many):
        assert summary.share["neutral_wire"] == 0.0
        assert summary.ci["neutral_wire"][0] == 0.0
        assert summary.ci["neutral_wire"][1] > 0.0  # 0 of 4 (or 40) paragraphs is not a certain 0%
    assert many.ci["neutral_wire"][1] < few.ci["neutral_wire"][1] / 2


def test_deterministic_under_the_seed():
    tallies = [doc("A", [3, 1, 0]), doc("A", [0, 1, 3]), doc("B", [1, 1, 1])]
    first = summarize(tallies, LABELS, seed=7)
    assert summarize(tallies, LABELS, seed=7) == first
    assert summarize(tallies, LABELS, seed=8) != first  # the seed is really used


def test_outlets_sorted_and_empty_documents_skipped():
    tallies = [doc("Zeta", [1, 0, 0]), doc("alpha", [0, 1, 0]), doc("Beta", [0, 0, 1]),
               doc("Empty", [0, 0, 0]), doc("Beta", [0, 0, 0])]
    summaries = summarize(tallies, LABELS, n_resamples=100)
    assert [s.outlet for s in summaries] == ["Beta", "Zeta", "alpha"]
    assert summaries[0].documents == 1  # Beta's empty document does not count


def test_share_interval_shape_and_order():
    counts = np.array([[3, 1, 0], [0, 1, 3], [2, 2, 0]])
    low, high = share_interval(counts, np.random.default_rng(0), n_resamples=500)
    assert low.shape == high.shape == (3,)
    assert np.all(low <= high)
    assert np.all((low >= 0) & (high <= 1))


def test_share_interval_narrows_with_lower_confidence():
    counts = np.array([[3, 1, 0], [0, 1, 3], [2, 2, 0]])
    low95, high95 = share_interval(counts, np.random.default_rng(0), n_resamples=1000, confidence=0.95)
    low50, high50 = share_interval(counts, np.random.default_rng(0), n_resamples=1000, confidence=0.50)
    assert np.all(high50 - low50 < high95 - low95)
