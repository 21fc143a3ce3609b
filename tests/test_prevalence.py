"""framing.prevalence: the sampling interval's coverage by simulation, the estimators, the error draw, comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from framing.errors import ModelError
from framing.prevalence import (
    INTERVAL_NOTE,
    Calibration,
    Method,
    Mode,
    adjust,
    clip_to_simplex,
    compare,
    effective_paragraphs,
    em,
    estimate_outlets,
    rates,
)

LABELS = ("state_aligned", "western_critical", "neutral_wire")

# --- coverage of the sampling interval, by simulation ---------------------------------------------------
# Each regime: documents x paragraphs per document; the truth is the population mix documents are drawn
# from ("spread": each document's own mix is Dirichlet(CONCENTRATION * truth) around it, an intra-document
# correlation of 1/6), except 1 x 40, where the truth is that one document's own mix. Paragraph labels are
# known (one-hot probabilities, no classifier): this checks the sampling part alone.
REGIMES = [(6, 4, False), (6, 4, True), (30, 4, False), (30, 4, True), (200, 3, False), (200, 3, True),
           (500, 1, False), (500, 1, True), (20, 50, False), (20, 50, True), (1, 40, True)]
MIXES = [(0.1, 0.2, 0.7), (1 / 3, 1 / 3, 1 / 3), (0.6, 0.3, 0.1)]
CONCENTRATION = 5.0
REPLICATES = 200  # simulated outlets per regime and mix: 600 per regime
COVERAGE_RESAMPLES = 1000


def simulate(n_docs: int, n_paragraphs: int, spread: bool, truth, rng: np.random.Generator):
    """REPLICATES outlets as {name: [one-hot float[n_paragraphs, 3] per document]}, and each one's truth."""
    truth = np.asarray(truth)
    shape = (REPLICATES, n_docs)
    mixes = rng.dirichlet(CONCENTRATION * truth, size=shape) if spread else np.broadcast_to(truth, shape + (3,))
    # One multinomial draw per paragraph, vectorised: the inverse CDF of each document's mix.
    cdf = np.cumsum(mixes, axis=-1)
    u = rng.random(shape + (n_paragraphs,))
    labels = np.minimum((u[..., None] > cdf[..., None, :]).sum(-1), 2)
    onehot = np.eye(3)[labels]  # [replicate, doc, paragraph, 3]
    outlets = {f"sim{r}": list(onehot[r]) for r in range(REPLICATES)}
    truths = mixes[:, 0] if n_docs == 1 else np.broadcast_to(truth, (REPLICATES, 3))
    return outlets, truths


def coverage(n_docs: int, n_paragraphs: int, spread: bool, seed: int = 0) -> np.ndarray:
    """Fraction of simulated outlets whose 95% share interval holds the truth: float[mixes, labels]."""
    rng = np.random.default_rng([seed, n_docs, n_paragraphs, spread])
    covered = []
    for truth in MIXES:
        outlets, truths = simulate(n_docs, n_paragraphs, spread, truth, rng)
        estimates = estimate_outlets(outlets, None, Method.CC, n_resamples=COVERAGE_RESAMPLES, seed=seed)
        ci = np.stack([estimates[f"sim{r}"].share_ci for r in range(REPLICATES)])
        covered.append(((ci[..., 0] <= truths) & (truths <= ci[..., 1])).mean(axis=0))
    return np.array(covered)


@pytest.mark.parametrize(("n_docs", "n_paragraphs", "spread"), REGIMES)
def test_sampling_interval_covers_the_truth_at_its_nominal_rate(n_docs, n_paragraphs, spread):
    covered = coverage(n_docs, n_paragraphs, spread)
    # Per label, pooled over the labels and the three mixes (600 outlets x 3 labels): 90-99%.
    assert 0.90 <= covered.mean() <= 0.99, covered.round(3)
    # And no label of any mix is far off (200 outlets each: sd ~0.015 at 95%).
    assert covered.min() >= 0.86, covered.round(3)


def test_coverage_check_fails_an_interval_that_ignores_the_clustering(monkeypatch):
    """The check has teeth: treating 20 articles of 50 paragraphs as 1,000 independent paragraphs undercovers."""
    import framing.prevalence as prevalence

    monkeypatch.setattr(prevalence, "effective_paragraphs", lambda counts, confidence=0.95: float(counts.sum()))
    assert coverage(20, 50, True).mean() < 0.80


# --- the sampling interval's shape ------------------------------------------------------------------------

def one_hot(labels) -> np.ndarray:
    return np.eye(3)[np.asarray(labels)]


def test_unseen_label_gets_a_small_nonzero_upper_bound_and_the_interval_holds_the_estimate():
    # The case: 500 one-paragraph documents, all neutral_wire.
    estimate = estimate_outlets({"wire": [one_hot([2]) for _ in range(500)]}, None, Method.CC)["wire"]
    assert estimate.share.tolist() == [0.0, 0.0, 1.0]
    low, high = estimate.share_ci.T
    assert (high[:2] > 0).all() and (high[:2] < 0.01).all()  # Jeffreys-like: ~0.5% for 0 of 500, not 22%
    assert high[2] == 1.0 and low[2] > 0.98
    assert ((low <= estimate.share) & (estimate.share <= high)).all()


def test_observed_share_sits_inside_not_on_the_edge():
    # 500 documents of 4 paragraphs at 75% neutral: the old interval was [62%, 75%].
    docs = [one_hot([2, 2, 2, i % 2]) for i in range(500)]
    low, high = estimate_outlets({"o": docs}, None, Method.CC)["o"].share_ci[2]
    assert low < 0.74 and high > 0.76 and high - low < 0.06


def test_one_document_outlet_has_nonzero_width():
    estimate = estimate_outlets({"o": [one_hot([0, 2, 2, 2, 1, 2])]}, None, Method.CC)["o"]
    width = estimate.share_ci[:, 1] - estimate.share_ci[:, 0]
    assert (width > 0.1).all()
    single = estimate_outlets({"o": [one_hot([2])]}, None, Method.CC)["o"]
    assert (single.share_ci[:, 1] - single.share_ci[:, 0] > 0.1).all()


def test_effective_paragraphs_counts_clustering():
    independent = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]] * 20)  # 60 one-paragraph documents
    assert effective_paragraphs(independent) == pytest.approx(60, rel=0.05)
    clustered = np.array([[10, 0, 0], [0, 10, 0], [0, 0, 10]] * 2)  # 6 documents, each one label
    assert effective_paragraphs(clustered) < 6
    same = np.array([[2, 1, 1]] * 5)  # every document the same mix: no between-document variance
    assert effective_paragraphs(same) == 20
    assert effective_paragraphs(np.array([[3, 4, 5]])) == 12  # one document: its paragraphs


def test_results_are_seeded_and_independent_of_the_other_outlets():
    docs = {"a": [one_hot([0, 1, 2, 2])], "b": [one_hot([1, 1])]}
    first = estimate_outlets(docs, None, Method.CC, seed=3)
    again = estimate_outlets({"a": docs["a"]}, None, Method.CC, seed=3)
    assert np.array_equal(first["a"].share_ci, again["a"].share_ci)
    other = estimate_outlets(docs, None, Method.CC, seed=4)
    assert not np.array_equal(first["a"].replicates, other["a"].replicates)


def test_empty_documents_and_outlets_are_skipped_and_progress_counts_outlets():
    calls: list[int] = []
    docs = {f"o{i}": [one_hot([i % 3])] for i in range(300)}
    docs["empty"] = [np.zeros((0, 3))]
    estimates = estimate_outlets(docs, None, Method.CC, progress=calls.append, n_resamples=50)
    assert sum(calls) == 301 and len(calls) == 2  # in batches of 256 outlets
    assert "empty" not in estimates and len(estimates) == 300


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="probability array"):
        estimate_outlets({"o": [one_hot([0]), np.ones((2, 4)) / 4]}, None, Method.CC)


# --- estimators ---------------------------------------------------------------------------------------------

def test_adjust_inverts_the_confusion_matrix_and_clips_to_the_simplex():
    matrix = np.array([[0.8, 0.1], [0.2, 0.9]])  # column j: where gold label j ends up
    truth = np.array([0.3, 0.7])
    assert adjust(matrix, matrix @ truth) == pytest.approx(truth)
    outside = adjust(matrix, np.array([0.05, 0.95]))  # below the 10% floor of false positives
    assert outside.tolist() == [0.0, 1.0]
    singular = adjust(np.array([[0.5, 0.5], [0.5, 0.5]]), np.array([0.2, 0.8]))
    assert singular == pytest.approx([0.2, 0.8])  # no adjustment possible: left as counted
    batch = adjust(np.stack([matrix, matrix]), np.stack([matrix @ truth, matrix @ truth[::-1]]))
    assert batch == pytest.approx(np.stack([truth, truth[::-1]]))


def test_clip_to_simplex():
    assert clip_to_simplex(np.array([-0.2, 0.6, 0.8])) == pytest.approx([0, 6 / 14, 8 / 14])
    assert clip_to_simplex(np.array([-1.0, -1.0])) == pytest.approx([0.5, 0.5])


def test_rates_by_hand():
    y = np.array([0, 0, 0, 1, 1])
    predicted = np.eye(2)[[0, 0, 1, 1, 1]]
    assert rates(y, predicted, 2) == pytest.approx(np.array([[2 / 3, 0], [1 / 3, 1]]))
    assert rates(np.array([0, 0]), np.eye(3)[[0, 1]], 3)[:, 2] == pytest.approx([0, 0, 1])  # no gold 2: identity


def test_em_recovers_a_shifted_prior():
    rng = np.random.default_rng(0)
    # Two labels, Gaussian scores; posteriors computed under a 50/50 training prior; the sample is 80/20.
    y = (rng.random(20000) < 0.2).astype(int)
    x = rng.normal(np.where(y == 1, 1.0, -1.0))
    likelihood = np.stack([np.exp(-(x + 1) ** 2 / 2), np.exp(-(x - 1) ** 2 / 2)], axis=1)
    posteriors = likelihood / likelihood.sum(axis=1, keepdims=True)
    assert posteriors.mean(axis=0)[1] > 0.3  # PCC is pulled toward the training prior
    assert em(posteriors, np.array([0.5, 0.5]))[1] == pytest.approx(0.2, abs=0.015)
    weighted = em(posteriors, np.array([0.5, 0.5]), np.stack([np.ones(20000), (y == 1) + 1e-9]))
    assert weighted[0, 1] == pytest.approx(0.2, abs=0.015) and weighted[1, 1] > 0.95


def test_estimators_match_quapy():
    qp = pytest.importorskip("quapy")
    from quapy.method.aggregative import ACC, EMQ, PACC

    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 300)
    logits = 2 * np.eye(3)[y] + rng.normal(size=(300, 3))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    sample = proba[:80] ** 2 / (proba[:80] ** 2).sum(axis=1, keepdims=True)
    hard = np.eye(3)[sample.argmax(axis=1)]
    classes = np.arange(3)
    acc_matrix = ACC.getPteCondEstim(classes, y, proba.argmax(axis=1))
    pacc_matrix = PACC.getPteCondEstim(classes, y, proba)
    assert rates(y, np.eye(3)[proba.argmax(axis=1)], 3) == pytest.approx(acc_matrix)
    assert rates(y, proba, 3) == pytest.approx(pacc_matrix)
    for matrix, counted in ((acc_matrix, hard.mean(0)), (pacc_matrix, sample.mean(0))):
        expected = qp.functional.normalize_prevalence(
            ACC.solve_adjustment(matrix, counted, method="inversion", solver="exact-cc"), method="clip")
        assert adjust(matrix, counted) == pytest.approx(expected)
    prior = np.bincount(y, minlength=3) / len(y)
    assert em(sample, prior) == pytest.approx(EMQ.EM(prior, sample)[0], abs=1e-6)


# --- calibration and the classifier's error -----------------------------------------------------------------

def make_calibration(n_groups: int = 12, size: int = 40, disagree: float = 0.0, seed: int = 0) -> Calibration:
    """Labelled groups whose classifier errors differ by `disagree` (0: every group errs alike)."""
    rng = np.random.default_rng(seed)
    proba, y, groups = [], [], []
    for g in range(n_groups):
        labels = rng.integers(0, 3, size)
        bias = disagree * rng.normal(size=3)  # this group's own lean of the classifier
        logits = 2.5 * np.eye(3)[labels] + rng.normal(size=(size, 3)) + bias
        proba.append(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))
        y.append(labels)
        groups += [f"g{g}"] * size
    return Calibration(LABELS, np.concatenate(proba), np.concatenate(y), np.array(groups))


def test_calibration_json_round_trip():
    calibration = make_calibration(3, 5)
    again = Calibration.from_json(calibration.to_json())
    assert again.labels == LABELS and again.groups.tolist() == calibration.groups.tolist()
    assert np.array_equal(again.y, calibration.y)
    assert again.proba == pytest.approx(calibration.proba, abs=1e-6)
    assert "pickle" not in calibration.to_json() and calibration.to_json().startswith("{")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(format=9), "format"),
    (lambda d: d.update(y=d["y"][:-1]), "do not match"),
    (lambda d: d.update(y=[7] * len(d["y"])), "indices"),
    (lambda d: d["proba"][0].__setitem__(0, 5.0), "summing to 1"),
    (lambda d: d.update(proba="x"), "rows of one number"),
    (lambda d: d.update(labels=["a", "a", "b"]), "distinct"),
    (lambda d: d.update(groups=[1] * len(d["y"])), "groups"),
])
def test_calibration_from_json_refuses_bad_data_with_model_error(edit, message):
    import json

    data = json.loads(make_calibration(2, 4).to_json())
    edit(data)
    with pytest.raises(ModelError, match=message):
        Calibration.from_json(json.dumps(data))
    with pytest.raises(ModelError, match="JSON"):
        Calibration.from_json("{not json")


def test_correcting_methods_need_a_calibration():
    with pytest.raises(ModelError, match="calibration"):
        estimate_outlets({"o": [one_hot([0])]}, None)  # the default method corrects
    for method in (Method.ACC, Method.PACC, Method.EM):
        with pytest.raises(ModelError, match="calibration"):
            estimate_outlets({"o": [one_hot([0])]}, None, method)


def outlet_proba(seed: int = 1, n_docs: int = 10, size: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n_docs):
        labels = rng.choice(3, size, p=[0.6, 0.3, 0.1])
        logits = 2.5 * np.eye(3)[labels] + rng.normal(size=(size, 3))
        docs.append(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))
    return docs


@pytest.mark.parametrize("method", list(Method))
def test_every_method_gives_a_prevalence_on_the_simplex_inside_its_interval(method):
    estimate = estimate_outlets({"o": outlet_proba()}, make_calibration(), method, n_resamples=300)["o"]
    assert estimate.method is method
    assert estimate.prevalence.sum() == pytest.approx(1) and (estimate.prevalence >= 0).all()
    low, high = estimate.prevalence_ci.T
    assert ((low <= estimate.prevalence) & (estimate.prevalence <= high)).all()
    assert estimate.replicates.shape == (300, 3)
    assert estimate.replicates.sum(axis=1) == pytest.approx(np.ones(300), abs=1e-5)


def test_groups_whose_errors_disagree_widen_the_prevalence_interval():
    docs = {"o": outlet_proba()}
    widths = []
    for disagree in (0.0, 1.5):
        estimate = estimate_outlets(docs, make_calibration(disagree=disagree), Method.PACC)["o"]
        widths.append((estimate.prevalence_ci[:, 1] - estimate.prevalence_ci[:, 0]).mean())
    assert widths[1] > 1.3 * widths[0]


def test_without_calibration_the_prevalence_interval_is_the_sampling_interval():
    estimate = estimate_outlets({"o": [one_hot([0, 1, 2, 2])]}, None, Method.CC)["o"]
    assert np.array_equal(estimate.prevalence_ci, estimate.share_ci)
    assert np.array_equal(estimate.prevalence, estimate.share)


def test_interval_note_is_one_sentence_saying_what_it_covers_and_not():
    assert INTERVAL_NOTE.count(". ") == 0 and INTERVAL_NOTE.endswith(".")
    assert "covers" in INTERVAL_NOTE and "does not cover" in INTERVAL_NOTE


# --- comparisons ---------------------------------------------------------------------------------------------

def test_compare_flags_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(2)
    docs = {"state": [one_hot(rng.choice(3, 5, p=[0.7, 0.1, 0.2])) for _ in range(40)],
            "twin": [one_hot(rng.choice(3, 5, p=[0.7, 0.1, 0.2])) for _ in range(40)],
            "wire": [one_hot(rng.choice(3, 5, p=[0.1, 0.1, 0.8])) for _ in range(40)]}
    results = compare(estimate_outlets(docs, None, Method.CC), LABELS)
    assert {c.mode for c in results} == {Mode.PAIRS} and len(results) == 3 * 3
    by = {(c.outlet, c.other, c.label): c for c in results}
    assert by["state", "wire", "state_aligned"].excludes_zero and by["state", "wire", "state_aligned"].difference > 0.4
    assert not by["state", "twin", "state_aligned"].excludes_zero
    for c in results:
        assert c.ci[0] <= c.difference <= c.ci[1]


def test_compare_against_a_baseline_and_each_vs_rest():
    docs = {f"o{i}": [one_hot([i % 3] * 3 + [2])] for i in range(6)}
    estimates = estimate_outlets(docs, None, Method.CC, n_resamples=200)
    baseline = compare(estimates, LABELS, baseline="o0")
    assert {c.other for c in baseline} == {"o0"} and {c.mode for c in baseline} == {Mode.BASELINE}
    assert len(baseline) == 5 * 3
    rest = compare(estimates, LABELS, max_pairs=10)  # 15 pairs > 10
    assert {c.mode for c in rest} == {Mode.EACH_VS_REST} and {c.other for c in rest} == {None}
    o0 = next(c for c in rest if c.outlet == "o0" and c.label == "state_aligned")
    pooled = np.mean([estimates[f"o{i}"].prevalence[0] for i in range(1, 6)])  # equal sizes
    assert o0.difference == pytest.approx(0.75 - pooled)
    with pytest.raises(KeyError):
        compare(estimates, LABELS, baseline="missing")


@pytest.mark.parametrize("df", [1, 2, 3, 5, 30, 499])
def test_t_quantile_matches_scipy(df):
    from scipy import stats

    from framing.prevalence import t_quantile

    assert t_quantile(0.975, df) == pytest.approx(stats.t.ppf(0.975, df), rel=2e-3)
