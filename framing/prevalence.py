"""Per-outlet label prevalence with intervals that hold up: pure functions over probability arrays.

Two quantities per outlet:

- `share`: plain classify-and-count, the fraction of the outlet's paragraphs whose top label is each
  label, with a sampling-only interval (`share_ci`);
- `prevalence`: the same corrected for the classifier's errors by one of five quantifiers (`Method`),
  with an interval (`prevalence_ci`) that adds the classifier's error and its variation between outlets.

Sampling. Paragraphs of one article are alike, so an outlet's paragraphs are a cluster sample. The
replicates of the outlet's label mix are Dirichlet draws with the *effective* number of paragraphs,
Dirichlet(n_eff * share + 1/2): n_eff is the paragraph count divided by the design effect (the
between-document variance of the share over the variance of as many independent paragraphs), scaled by
(t_{N-1} / t_{n_docs-1})^2 for the few-documents case and never above the paragraph count (Korn and
Graubard's effective-sample-size interval for clustered proportions, drawn from the Jeffreys posterior
instead of Clopper-Pearson). The prior is 1/2 per label for the whole outlet, not per document, so a
label never seen gets a small non-zero upper bound and an outlet of one document a non-zero width,
without pulling small documents toward one third. Coverage in 11 simulated regimes is checked in
tests/test_prevalence.py. With one document the interval is about that document's own mix.

Classifier error. `Calibration` holds the grouped out-of-fold probabilities of the labelled set and the
group (outlet or authoring batch) of each paragraph. Each replicate r pairs the outlet's sampling draw
with (a) a correction (confusion matrices) re-estimated from a bootstrap of the calibration groups,
shared by all outlets so that differences between outlets are paired, and (b) an outlet-specific error
drawn from the errors the method made on one labelled group it had not seen (leave-one-group-out),
shrunk by that group's own sampling noise so that only the real between-group spread is added. (b) is
what lets an outlet whose errors run unlike the average fall inside its interval; it is drawn per outlet.

Every estimator here is vectorised NumPy over replicates; bench/quantification.py checks them against
QuaPy's CC, PCC, ACC, PACC and EMQ (quapy 0.2.3) and measures their error, coverage and width.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from statistics import NormalDist

import numpy as np

from .errors import ModelError

N_RESAMPLES = 1000
CONFIDENCE = 0.95
PRIOR = 0.5  # Dirichlet pseudo-count per label for the whole outlet (Jeffreys)
EM_TOLERANCE = 1e-4  # QuaPy's EMQ.EPSILON: mean absolute change between iterations
EM_MAX_ITER = 1000
EM_REPLICATE_PARAGRAPHS = 256  # per predicted label inside EM's replicates; the point estimate uses all
WITHIN_GROUP_RESAMPLES = 100  # replicates that measure each calibration group's own sampling noise
MAX_PAIRS = 45  # all pairs up to 10 outlets; beyond, each outlet against the rest
CALIBRATION_FORMAT = 1

INTERVAL_NOTE = ("The prevalence interval covers the sampling of documents and paragraphs within each outlet and "
                 "the classifier's errors as they varied between the labelled outlets and authoring batches; it "
                 "does not cover errors unlike any labelled group's (another language, topic or genre), mistakes "
                 "in the labelled set itself, or how the outlet's articles were chosen.")


class Method(StrEnum):
    CC = "cc"  # classify and count: the share of top labels
    PCC = "pcc"  # probabilistic CC: the mean probability
    ACC = "acc"  # adjusted CC: the share of top labels through the inverse of the confusion matrix
    PACC = "pacc"  # probabilistic ACC: the mean probability through the inverse of the mean-probability matrix
    EM = "em"  # Saerens-Latinne-Decaestecker: EM re-estimate of the prior the probabilities were computed under


# ACC (bench/quantification.py, 2,012 labelled paragraphs): on the real seed articles held out one outlet at a
# time it covers as often as CC and PACC (80%) at about their error (0.087 against 0.084 and 0.088); on skewed
# synthetic outlets from held-out groups it covers 96% (CC 88%) with a lower error (0.027, CC 0.032). PACC is
# a near tie; EM is best on the synthetic outlets but worst on the real articles (0.132, 60%) and 12x slower.
DEFAULT_METHOD = Method.ACC
NEEDS_CALIBRATION = frozenset({Method.ACC, Method.PACC, Method.EM})


class Mode(StrEnum):
    PAIRS = "pairs"
    BASELINE = "baseline"
    EACH_VS_REST = "each_vs_rest"


# --- calibration: what the correction needs, saved beside the model ---------------------------------------

@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class Calibration:
    """Grouped out-of-fold probabilities of the labelled set, their gold labels and groups."""

    labels: tuple[str, ...]
    proba: np.ndarray  # float[m, k], columns in `labels` order
    y: np.ndarray  # int[m]: index of the gold label
    groups: np.ndarray  # str[m]: the outlet or authoring batch of each labelled paragraph

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        problem = _calibration_problem(self.labels, self.proba, self.y, self.groups)
        if problem:
            raise ModelError(f"calibration data: {problem}; retrain with `framing train`")
        object.__setattr__(self, "proba", np.asarray(self.proba, dtype=float))
        object.__setattr__(self, "y", np.asarray(self.y, dtype=int))
        object.__setattr__(self, "groups", np.asarray(self.groups, dtype=str))

    @property
    def n_groups(self) -> int:
        return len(np.unique(self.groups))

    def to_json(self) -> str:
        return json.dumps({"format": CALIBRATION_FORMAT, "labels": list(self.labels),
                           "proba": [[round(float(p), 6) for p in row] for row in self.proba],
                           "y": [int(v) for v in self.y], "groups": [str(g) for g in self.groups]})

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise ModelError("calibration data: not valid JSON; retrain with `framing train`") from None
        if not isinstance(data, dict) or data.get("format") != CALIBRATION_FORMAT:
            raise ModelError(f"calibration data: not format {CALIBRATION_FORMAT}; retrain with `framing train`")
        labels, proba, y, groups = (data.get(key) for key in ("labels", "proba", "y", "groups"))
        if not (isinstance(labels, list) and all(isinstance(label, str) for label in labels)):
            raise ModelError("calibration data: 'labels' must be a list of names; retrain with `framing train`")
        if not (isinstance(y, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in y)):
            raise ModelError("calibration data: 'y' must be a list of label indices; retrain with `framing train`")
        if not (isinstance(groups, list) and all(isinstance(g, str) for g in groups)):
            raise ModelError("calibration data: 'groups' must be a list of names; retrain with `framing train`")
        if not (isinstance(proba, list) and all(isinstance(row, list) and len(row) == len(labels) and
                                                all(isinstance(p, (int, float)) and not isinstance(p, bool)
                                                    for p in row) for row in proba)):
            raise ModelError("calibration data: 'proba' must be rows of one number per label; "
                             "retrain with `framing train`")
        return cls(tuple(labels), np.array(proba, dtype=float).reshape(len(proba), len(labels)),
                   np.array(y, dtype=int), np.array(groups, dtype=str))


def _calibration_problem(labels: tuple[str, ...], proba, y, groups) -> str | None:
    k = len(labels)
    if k < 2 or len(set(labels)) != k or not all(isinstance(label, str) and label for label in labels):
        return "labels must be at least two distinct non-empty names"
    proba, y, groups = np.asarray(proba), np.asarray(y), np.asarray(groups)
    if proba.ndim != 2 or proba.shape[1] != k or len(proba) == 0:
        return f"probabilities must be a non-empty [paragraphs, {k}] array, not {list(proba.shape)}"
    if y.shape != (len(proba),) or groups.shape != (len(proba),):
        return f"{len(proba)} probability rows, {y.size} labels and {groups.size} groups do not match"
    if not np.issubdtype(proba.dtype, np.number) or not np.isfinite(proba).all() or \
            (proba < -1e-6).any() or (proba > 1 + 1e-6).any() or np.abs(proba.sum(axis=1) - 1).max() > 1e-3:
        return "every probability row must hold numbers in [0, 1] summing to 1"
    if not np.issubdtype(y.dtype, np.integer) or (y < 0).any() or (y >= k).any():
        return f"gold labels must be indices in 0..{k - 1}"
    return None


# --- estimators: vectorised over leading axes ----------------------------------------------------------

def clip_to_simplex(x: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and renormalise (QuaPy's `clip`); an all-zero row becomes uniform."""
    x = np.clip(x, 0.0, 1.0)
    total = x.sum(axis=-1, keepdims=True)
    uniform = np.full_like(x, 1.0 / x.shape[-1])
    return np.where(total > 0, x / np.where(total > 0, total, 1.0), uniform)


def rates(y: np.ndarray, scores: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """M[i, j] = mean score of label i over paragraphs of gold label j (QuaPy's orientation).

    With one-hot top-label scores this is P(predicted i | gold j), ACC's matrix; with probabilities,
    PACC's. A gold label with no paragraph gets the identity column, as QuaPy does.
    """
    weights = np.ones(len(y)) if weights is None else weights
    onehot_y = np.eye(k)[y] * weights[:, None]
    sums = scores.T @ onehot_y  # [i, j]
    totals = onehot_y.sum(axis=0)
    return _columns(sums, totals)


def _columns(sums: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Normalise M's columns by the gold-label totals; an empty column becomes the identity's (batched)."""
    k = sums.shape[-1]
    empty = totals <= 0
    matrix = sums / np.where(empty, 1.0, totals)[..., None, :]
    return np.where(empty[..., None, :], np.eye(k), matrix)


def adjust(matrix: np.ndarray, unadjusted: np.ndarray) -> np.ndarray:
    """Solve M p = q for p, clipped to the simplex (ACC/PACC by inversion); a singular M leaves q as it is."""
    return _Inverse.of(matrix).apply(unadjusted)


@dataclass(frozen=True, eq=False)
class _Inverse:
    """M^-1 computed once (batched), applied to many outlets' counts."""

    inverse: np.ndarray  # float[..., k, k]
    singular: np.ndarray  # bool[...]

    @classmethod
    def of(cls, matrix: np.ndarray) -> _Inverse:
        singular = np.abs(np.linalg.det(matrix)) < 1e-10
        safe = np.where(singular[..., None, None], np.eye(matrix.shape[-1]), matrix)
        return cls(np.linalg.inv(safe), singular)

    def apply(self, unadjusted: np.ndarray) -> np.ndarray:
        solved = np.einsum("...ij,...j->...i", self.inverse, unadjusted)
        return clip_to_simplex(np.where(self.singular[..., None], unadjusted, solved))


def em(posteriors: np.ndarray, train_prior: np.ndarray, weights: np.ndarray | None = None,
       tolerance: float = EM_TOLERANCE, max_iter: int = EM_MAX_ITER) -> np.ndarray:
    """Saerens-Latinne-Decaestecker EM: the label prior of a sample, from probabilities made under `train_prior`.

    posteriors: float[n, k]; weights: float[B, n] (each row a resampling of the paragraphs), or None for one
    estimate. Returns float[k] or float[B, k]. Stops when every row has moved less than `tolerance` (mean
    absolute change, after at least 10 steps), as QuaPy's EMQ.EM does.
    """
    single = weights is None
    weights = np.ones((1, len(posteriors))) if single else np.asarray(weights, dtype=float)
    weights = weights / weights.sum(axis=1, keepdims=True)
    prior = np.asarray(train_prior, dtype=float)
    if (prior <= 0).any():  # QuaPy smooths a zero training prior the same way
        prior = (prior + tolerance) / (prior + tolerance).sum()
    estimate = np.tile(prior, (len(weights), 1))
    for step in range(max_iter):
        adjusted = posteriors[None, :, :] * (estimate / prior)[:, None, :]
        adjusted /= np.maximum(adjusted.sum(axis=2, keepdims=True), 1e-300)
        new = np.einsum("bn,bnk->bk", weights, adjusted)
        done = np.abs(new - estimate).mean(axis=1).max() < tolerance and step > 10
        estimate = new
        if done:
            break
    return estimate[0] if single else estimate


def point_estimate(method: Method, proba: np.ndarray, correction: _Correction | None) -> np.ndarray:
    """One prevalence estimate from one sample's probabilities float[n, k]."""
    k = proba.shape[1]
    share = np.bincount(proba.argmax(axis=1), minlength=k) / len(proba)
    if method is Method.CC:
        return share
    if method is Method.PCC:
        return proba.mean(axis=0)
    _require(method, correction)
    if method is Method.ACC:
        return correction.hard_inverse.apply(share)
    if method is Method.PACC:
        return correction.soft_inverse.apply(proba.mean(axis=0))
    return em(proba, correction.prior)


def _require(method: Method, correction: object) -> None:
    if correction is None:
        raise ModelError(f"method {method.value} needs the model's calibration data (saved by `framing train`); "
                         "retrain the model, or use cc or pcc")


# --- the correction and its replicates ---------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class _Correction:
    hard: np.ndarray  # float[..., k, k]: ACC's matrix
    soft: np.ndarray  # float[..., k, k]: PACC's matrix
    prior: np.ndarray  # float[k]: the label mix the probabilities were learnt under (for EM)

    @cached_property
    def hard_inverse(self) -> _Inverse:
        return _Inverse.of(self.hard)

    @cached_property
    def soft_inverse(self) -> _Inverse:
        return _Inverse.of(self.soft)


@dataclass(frozen=True)
class _CalibrationDraws:
    """Everything the outlets share, computed once per call."""

    full: _Correction  # from the whole calibration set: the point estimates
    replicates: _Correction  # hard and soft float[R, k, k] from bootstraps of the groups
    profiles: np.ndarray  # float[k, k]: mean probability of calibration paragraphs by top label
    deviations: np.ndarray  # float[G, k]: the method's error on each unseen group (mean bias + shrunk spread)


def _group_sums(calibration: Calibration) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per group: hard and soft rate sums [G, k, k], gold-label totals [G, k], and group index per paragraph."""
    k = len(calibration.labels)
    names, index = np.unique(calibration.groups, return_inverse=True)
    onehot_y = np.eye(k)[calibration.y]
    hard_scores = np.eye(k)[calibration.proba.argmax(axis=1)]
    G = len(names)
    hard, soft, totals = np.zeros((G, k, k)), np.zeros((G, k, k)), np.zeros((G, k))
    np.add.at(hard, index, hard_scores[:, :, None] * onehot_y[:, None, :])
    np.add.at(soft, index, calibration.proba[:, :, None] * onehot_y[:, None, :])
    np.add.at(totals, index, onehot_y)
    return hard, soft, totals, index


def calibration_draws(calibration: Calibration, method: Method, n_resamples: int = N_RESAMPLES,
                      seed: int = 0) -> _CalibrationDraws:
    """The shared part of every replicate: corrections from bootstrapped groups, and the pool of group errors."""
    k = len(calibration.labels)
    hard, soft, totals, index = _group_sums(calibration)
    G = len(totals)
    prior = totals.sum(axis=0) / totals.sum()
    full = _Correction(_columns(hard.sum(0), totals.sum(0)), _columns(soft.sum(0), totals.sum(0)), prior)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    # Groups, not paragraphs, are resampled: paragraphs of one outlet or batch share their errors.
    drawn = rng.multinomial(G, np.full(G, 1.0 / G), size=n_resamples).astype(float)  # [R, G]
    replicate_totals = drawn @ totals
    replicates = _Correction(_columns(np.einsum("rg,gij->rij", drawn, hard), replicate_totals),
                             _columns(np.einsum("rg,gij->rij", drawn, soft), replicate_totals), prior)
    top = calibration.proba.argmax(axis=1)
    profiles = np.eye(k)
    for j in range(k):
        if (top == j).any():
            profiles[j] = calibration.proba[top == j].mean(axis=0)
    deviations = _group_deviations(calibration, method, hard, soft, totals, index, rng)
    return _CalibrationDraws(full, replicates, profiles, deviations)


def _group_deviations(calibration: Calibration, method: Method, hard, soft, totals, index,
                      rng: np.random.Generator) -> np.ndarray:
    """The method's error on each group when the correction is learnt without it, minus that group's noise.

    e_g = estimate_g - truth_g (leave-one-group-out). A group of 30 paragraphs has its own sampling noise
    v_g (measured by resampling its paragraphs); the spread between groups beyond that noise,
    tau^2 = var(e_g) - mean(v_g), is the part a new outlet inherits. Each group's residual is shrunk by
    sqrt(tau^2 / (tau^2 + v_g)) so the pool has about that spread, around the mean error (the bias).
    """
    k = len(calibration.labels)
    G = len(totals)
    errors, noise = np.zeros((G, k)), np.zeros((G, k))
    for g in range(G):
        rows = index == g
        proba, y = calibration.proba[rows], calibration.y[rows]
        rest_totals = totals.sum(0) - totals[g]
        correction = _Correction(_columns(hard.sum(0) - hard[g], rest_totals),
                                 _columns(soft.sum(0) - soft[g], rest_totals),
                                 rest_totals / max(rest_totals.sum(), 1e-12))
        weights = np.vstack([np.ones(len(y)), rng.dirichlet(np.ones(len(y)), WITHIN_GROUP_RESAMPLES)]) \
            if len(y) > 1 else np.ones((1, 1))
        estimates = _weighted_estimates(method, proba, weights, correction)
        truths = weights @ np.eye(k)[y] / weights.sum(axis=1, keepdims=True)
        e = estimates - truths
        errors[g] = e[0]
        noise[g] = e[1:].var(axis=0) if len(e) > 1 else np.inf
    if G < 2:
        return errors - errors  # one group: no spread to learn from, and no bias we can tell from its noise
    finite = np.isfinite(noise)
    bias = errors.mean(axis=0)
    spread = errors.var(axis=0, ddof=1) - np.where(finite, noise, 0).sum(0) / np.maximum(finite.sum(0), 1)
    tau2 = np.maximum(spread, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        shrink = np.where(finite, np.sqrt(tau2 / (tau2 + noise)), 0.0)
    return bias + np.nan_to_num(shrink) * (errors - bias)


def _weighted_estimates(method: Method, proba: np.ndarray, weights: np.ndarray,
                        correction: _Correction) -> np.ndarray:
    """The method on B weighted resamplings of the same paragraphs: float[B, k]."""
    k = proba.shape[1]
    w = weights / weights.sum(axis=1, keepdims=True)
    share = w @ np.eye(k)[proba.argmax(axis=1)]
    if method is Method.CC:
        return share
    if method is Method.PCC:
        return w @ proba
    if method is Method.ACC:
        return correction.hard_inverse.apply(share)
    if method is Method.PACC:
        return correction.soft_inverse.apply(w @ proba)
    return em(proba, correction.prior, w)


# --- sampling ---------------------------------------------------------------------------------------------

def effective_paragraphs(counts: np.ndarray, confidence: float = CONFIDENCE) -> float:
    """Paragraphs' worth of independent information in an outlet; counts is int[documents, labels].

    The design effect compares the between-document (cluster) variance of the share with that of as many
    independent paragraphs; few documents make that variance uncertain, which the ratio of t quantiles
    (N-1 against n_docs-1 degrees of freedom) pays for. Never more than the paragraph count; with one
    document, the paragraphs are the sample (the interval is about that document).
    """
    n_docs = len(counts)
    sizes = counts.sum(axis=1)
    N = float(sizes.sum())
    if n_docs < 2:
        return N
    share = counts.sum(axis=0) / N
    residuals = counts - sizes[:, None] * share
    cluster = n_docs / (n_docs - 1) * float((residuals ** 2).sum()) / N ** 2
    independent = float((share * (1 - share)).sum()) / N
    if cluster <= 0 or independent <= 0:
        return N  # every document has the same mix, or every paragraph the same label
    q = 1 - (1 - confidence) / 2
    small_sample = (t_quantile(q, N - 1) / t_quantile(q, n_docs - 1)) ** 2
    return min(N, small_sample * N * independent / cluster)


def t_quantile(q: float, df: int) -> float:
    """Student's t quantile: exact for 1 and 2 degrees of freedom, else the Cornish-Fisher expansion
    (Abramowitz & Stegun 26.7.5; within 0.2% of the exact value at q = 0.975 for df >= 3). SciPy's exact
    one costs 1.2 s of start-up to import, for a ratio that corrects a design effect."""
    if df == 1:
        return math.tan(math.pi * (q - 0.5))
    if df == 2:
        return (2 * q - 1) / math.sqrt(2 * q * (1 - q))
    z = NormalDist().inv_cdf(q)
    g = ((z ** 3 + z) / 4, (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96,
         (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384,
         (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160)
    return z + sum(term / df ** (i + 1) for i, term in enumerate(g))


def sample_mix(counts: np.ndarray, n_resamples: int, rng: np.random.Generator,
               confidence: float = CONFIDENCE) -> np.ndarray:
    """Replicates float[R, k] of the outlet's top-label mix: Dirichlet(n_eff * share + PRIOR)."""
    share = counts.sum(axis=0) / counts.sum()
    gamma = rng.standard_gamma(effective_paragraphs(counts, confidence) * share + PRIOR,
                               size=(n_resamples, counts.shape[1]))
    return gamma / gamma.sum(axis=1, keepdims=True)


# --- per outlet -------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class OutletEstimate:
    share: np.ndarray  # float[k]: classify-and-count share
    share_ci: np.ndarray  # float[k, 2]: its sampling-only interval
    prevalence: np.ndarray  # float[k]: the corrected estimate, sums to 1
    prevalence_ci: np.ndarray  # float[k, 2]: includes the classifier's error
    replicates: np.ndarray  # float32[R, k]: prevalence replicates, replicate r paired across outlets
    method: Method
    n_documents: int
    n_paragraphs: int


def estimate_outlets(docs_by_outlet: Mapping[str, Sequence[np.ndarray]], calibration: Calibration | None,
                     method: Method = DEFAULT_METHOD, n_resamples: int = N_RESAMPLES, seed: int = 0,
                     confidence: float = CONFIDENCE,
                     progress: Callable[[int], None] | None = None) -> dict[str, OutletEstimate]:
    """Share and corrected prevalence with intervals, per outlet (documents given as float[n_i, k] arrays).

    Documents without paragraphs are ignored, and outlets with none are left out. `progress` is called
    with the number of outlets just finished. Each outlet's draws come from its own stream (seed, name),
    so its result does not depend on which other outlets are scored.
    """
    method = Method(method)
    if method in NEEDS_CALIBRATION:
        _require(method, calibration)
    draws = calibration_draws(calibration, method, n_resamples, seed) if calibration is not None else None
    k = len(calibration.labels) if calibration is not None else None
    alpha = (1 - confidence) / 2
    results: dict[str, OutletEstimate] = {}
    batch: list[tuple[str, _Draft]] = []
    done = 0  # outlets seen since the last progress call, empty ones included
    for number, (outlet, documents) in enumerate(docs_by_outlet.items(), start=1):
        done += 1
        documents = [np.asarray(d, dtype=float) for d in documents if len(d)]
        if documents:
            k = k or documents[0].shape[1]
            if any(d.ndim != 2 or d.shape[1] != k for d in documents):
                raise ValueError(f"outlet {outlet!r}: every document needs a [paragraphs, {k}] probability array")
            rng = np.random.default_rng(np.random.SeedSequence([seed, 1, zlib.crc32(outlet.encode())]))
            batch.append((outlet, _draft(documents, draws, method, n_resamples, rng, confidence)))
        if len(batch) >= BATCH or number == len(docs_by_outlet):
            results.update(_finish(batch, method, alpha) if batch else {})
            if progress is not None:
                progress(done)
            batch, done = [], 0
    return results


BATCH = 256  # outlets whose quantiles are taken in one call: one-paragraph outlets are mostly overhead


@dataclass(frozen=True, eq=False)
class _Draft:
    share: np.ndarray
    mix: np.ndarray  # float[R, k]: sampling replicates of the share
    prevalence: np.ndarray
    replicates: np.ndarray  # float[R, k]
    n_documents: int
    n_paragraphs: int


def _finish(batch: list[tuple[str, _Draft]], method: Method, alpha: float) -> dict[str, OutletEstimate]:
    drafts = [draft for _, draft in batch]
    share_ci = _interval(np.stack([d.mix for d in drafts]), np.stack([d.share for d in drafts]), alpha)
    prevalence_ci = _interval(np.stack([d.replicates for d in drafts]), np.stack([d.prevalence for d in drafts]),
                              alpha)
    return {outlet: OutletEstimate(share=d.share, share_ci=share_ci[i], prevalence=d.prevalence,
                                   prevalence_ci=prevalence_ci[i], replicates=d.replicates.astype(np.float32),
                                   method=method, n_documents=d.n_documents, n_paragraphs=d.n_paragraphs)
            for i, (outlet, d) in enumerate(batch)}


def _draft(documents: list[np.ndarray], draws: _CalibrationDraws | None, method: Method,
           n_resamples: int, rng: np.random.Generator, confidence: float) -> _Draft:
    proba = np.concatenate(documents)
    k = proba.shape[1]
    top = proba.argmax(axis=1)
    counts = np.stack([np.bincount(d.argmax(axis=1), minlength=k) for d in documents])
    n_top = counts.sum(axis=0)
    share = n_top / len(proba)
    mix = sample_mix(counts, n_resamples, rng, confidence)
    estimate = point_estimate(method, proba, draws.full if draws else None)
    # Within a predicted label the replicate keeps the outlet's own probabilities; a label it never
    # predicted gets the calibration set's typical probabilities for it (one-hot without calibration).
    profiles = draws.profiles.copy() if draws else np.eye(k)
    seen = n_top > 0
    profiles[seen] = (np.eye(k)[top].T @ proba)[seen] / n_top[seen, None]
    if method is Method.CC:
        replicates = mix
    elif method is Method.PCC:
        replicates = mix @ profiles
    elif method is Method.ACC:
        replicates = draws.replicates.hard_inverse.apply(mix)
    elif method is Method.PACC:
        replicates = draws.replicates.soft_inverse.apply(mix @ profiles)
    else:
        replicates = _em_replicates(proba, top, mix, profiles, draws.full.prior, rng)
    if draws is not None:
        # This outlet's own classifier error: one unseen group's error, drawn per replicate.
        replicates = clip_to_simplex(replicates - draws.deviations[rng.integers(len(draws.deviations),
                                                                                 size=n_resamples)])
    return _Draft(share, mix, estimate, replicates, len(documents), len(proba))


def _em_replicates(proba: np.ndarray, top: np.ndarray, mix: np.ndarray, profiles: np.ndarray,
                   prior: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """EM on each replicate: the outlet's paragraphs reweighted so each predicted label carries mix[r, j]."""
    k = proba.shape[1]
    rows, weights = [], []
    for j in range(k):
        members = np.flatnonzero(top == j)
        if len(members) > EM_REPLICATE_PARAGRAPHS:  # bounds memory and time; the mix carries the sampling
            members = rng.choice(members, EM_REPLICATE_PARAGRAPHS, replace=False)
        chosen = proba[members] if len(members) else profiles[j:j + 1]
        rows.append(chosen)
        weights.append(np.repeat(mix[:, j:j + 1] / len(chosen), len(chosen), axis=1))
    return em(np.concatenate(rows), prior, np.concatenate(weights, axis=1))


def _interval(replicates: np.ndarray, estimate: np.ndarray, alpha: float) -> np.ndarray:
    """Percentile interval float[..., k, 2] from replicates float[..., R, k], widened to hold the estimate."""
    low, high = np.quantile(replicates, [alpha, 1 - alpha], axis=-2)
    return np.stack([np.minimum(low, estimate), np.maximum(high, estimate)], axis=-1)


# --- comparisons ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Comparison:
    outlet: str
    other: str | None  # None: all the other outlets pooled (mode EACH_VS_REST)
    label: str
    difference: float  # prevalence of `outlet` minus `other`
    ci: tuple[float, float]
    excludes_zero: bool
    mode: Mode


def compare(estimates: Mapping[str, OutletEstimate], labels: Sequence[str], baseline: str | None = None,
            max_pairs: int = MAX_PAIRS, confidence: float = CONFIDENCE) -> list[Comparison]:
    """Differences in prevalence per label, with intervals from the same replicates.

    Each outlet against `baseline` if given; else every pair while there are at most `max_pairs`; else each
    outlet against the paragraph-weighted pool of all the others. Replicate r of every outlet shares the
    bootstrap of the calibration groups, so the common part of the correction cancels in a difference; the
    sampling and each outlet's own classifier error are independent between outlets and do not.
    """
    names = sorted(estimates)
    if baseline is not None and baseline not in estimates:
        raise KeyError(baseline)
    alpha = (1 - confidence) / 2
    if baseline is not None:
        mode, pairs = Mode.BASELINE, [(name, baseline) for name in names if name != baseline]
    elif math.comb(len(names), 2) <= max_pairs:
        mode, pairs = Mode.PAIRS, [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    else:
        mode, pairs = Mode.EACH_VS_REST, [(name, None) for name in names]
    if mode is Mode.EACH_VS_REST:
        n = {name: estimates[name].n_paragraphs for name in names}
        total_n = sum(n.values())
        total = sum(n[name] * estimates[name].prevalence for name in names)
        total_rep = sum(n[name] * estimates[name].replicates.astype(float) for name in names)
    out: list[Comparison] = []
    for a, b in pairs:
        first = estimates[a]
        if b is None:
            rest_n = total_n - n[a]
            difference = first.prevalence - (total - n[a] * first.prevalence) / rest_n
            replicates = first.replicates - (total_rep - n[a] * first.replicates) / rest_n
        else:
            difference = first.prevalence - estimates[b].prevalence
            replicates = first.replicates.astype(float) - estimates[b].replicates
        ci = _interval(replicates, difference, alpha)
        out.extend(Comparison(outlet=a, other=b, label=label, difference=float(difference[j]),
                              ci=(float(ci[j, 0]), float(ci[j, 1])),
                              excludes_zero=bool(ci[j, 0] > 0 or ci[j, 1] < 0), mode=mode)
                   for j, label in enumerate(labels))
    return out
