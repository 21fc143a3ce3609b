"""The fast path's cascade: threshold choice, what is re-scored, lazy loading, storage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from framing.cascade import (
    CascadeScorer,
    choose_threshold,
    choose_threshold_every_group,
    combine,
    curve,
    load_fast,
    macro_f1,
    margin,
    threshold_for_budget,
    train_fast,
    uncertain,
)
from framing.classify import HeadOptions, Model, ModelMeta, evaluate_predictions, fit_head, head_input, load_model
from framing.errors import ModelError
from framing.records import Paragraph

LABELS = ("state_aligned", "western_critical", "neutral_wire")


# --- pure functions -------------------------------------------------------------------------------

def test_margin_and_uncertain_by_hand():
    proba = np.array([[0.5, 0.3, 0.2], [0.9, 0.05, 0.05], [0.34, 0.33, 0.33], [1.0, 0.0, 0.0]])
    assert margin(proba) == pytest.approx([0.2, 0.85, 0.01, 1.0])
    assert uncertain(proba, 0.0).tolist() == [False] * 4
    assert uncertain(proba, 0.2).tolist() == [False, False, True, False]  # strictly below
    assert uncertain(proba, 0.21).tolist() == [True, False, True, False]
    assert uncertain(proba, 1.0).tolist() == [True] * 4  # even a margin of exactly 1


def test_a_budget_sends_that_share_of_rows_to_the_full_model():
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.ones(3), size=200)
    for budget in (0.0, 0.02, 0.1, 0.25, 0.5, 0.999, 1.0):
        threshold = threshold_for_budget(proba, budget)
        assert uncertain(proba, threshold).sum() == round(budget * 200)  # distinct margins: exactly that many
    assert threshold_for_budget(proba, 0.0) == 0.0 and threshold_for_budget(proba, 1.0) == 1.0
    tied = np.array([[0.6, 0.4, 0.0]] * 4 + [[0.9, 0.1, 0.0]] * 4)  # margins 0.2 x4, 0.8 x4
    assert uncertain(tied, threshold_for_budget(tied, 0.25)).sum() == 4  # ties go together: all four of 0.2
    assert threshold_for_budget(tied, 0.5) == pytest.approx(0.5)  # between the two margins
    with pytest.raises(ValueError, match="between 0 and 1"):
        threshold_for_budget(proba, 1.5)


def test_macro_f1_matches_sklearn():
    rng = np.random.default_rng(0)
    y, pred = rng.integers(0, 3, 50), rng.integers(0, 3, 50)
    pred[pred == 2] = 0  # a label never predicted: F1 0, as sklearn with zero_division=0
    from sklearn.metrics import f1_score
    assert macro_f1(y, pred, 3) == pytest.approx(f1_score(y, pred, average="macro", labels=[0, 1, 2],
                                                          zero_division=0))


def _one_hot(rows, margin_of):
    """Probabilities that put `margin_of[i]` more on label rows[i] than on the runner-up."""
    out = np.zeros((len(rows), 3))
    for i, (label, m) in enumerate(zip(rows, margin_of)):
        rest = (1 - m) / 3
        out[i] = rest
        out[i, label] = rest + m
    return out


def test_choose_threshold_rescores_the_wrong_uncertain_rows_only():
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    full = _one_hot(y, [0.6] * 8)  # the full model is right everywhere
    # The static model is wrong on rows 0 and 1, and unsure there; confident and right elsewhere.
    static_labels = y.copy()
    static_labels[[0, 1]] = [2, 0]
    static = _one_hot(static_labels, [0.05, 0.10, 0.9, 0.8, 0.7, 0.95, 0.85, 0.75])
    threshold = choose_threshold(static, full, y, max_cost=0.0)
    assert uncertain(static, threshold).tolist() == [True, True] + [False] * 6
    assert 0.10 < threshold < 0.70  # between the two unsure margins and the next one
    assert macro_f1(y, combine(static, full, threshold).argmax(1), 3) == pytest.approx(1.0)
    # With a cost allowed that the static head already meets, nothing is re-scored.
    static_f1 = macro_f1(y, static.argmax(1), 3)
    assert choose_threshold(static, full, y, max_cost=1.0 - static_f1 + 1e-9) == 0.0
    # Fixing one of the two wrong rows is not enough at zero cost, but is at a cost just above its loss.
    one_fixed = macro_f1(y, np.where(np.arange(8) == 0, y, static.argmax(1)), 3)
    t = choose_threshold(static, full, y, max_cost=1.0 - one_fixed + 1e-9)
    assert uncertain(static, t).sum() == 1


def test_choose_threshold_falls_back_to_full_model():
    y = np.array([0, 1, 2, 0])
    full = _one_hot(y, [0.5] * 4)
    static = _one_hot([1, 2, 0, 1], [0.9, 0.8, 0.7, 0.6])  # confidently wrong everywhere
    threshold = choose_threshold(static, full, y, max_cost=0.0)
    assert uncertain(static, threshold).all()


def test_the_threshold_for_every_group_keeps_each_group_within_cost():
    # Group a needs only its one unsure wrong row re-scored; group b's wrong row is surer (margin 0.5).
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    groups = np.array(["a"] * 4 + ["b"] * 4)
    full = _one_hot(y, [0.6] * 8)
    static_labels = y.copy()
    static_labels[[0, 4]] = [2, 0]
    static = _one_hot(static_labels, [0.05, 0.9, 0.8, 0.7, 0.5, 0.95, 0.85, 0.75])
    pooled = choose_threshold(static, full, y, max_cost=0.2)
    strict = choose_threshold_every_group(static, full, y, groups, max_cost=0.2)
    for group in "ab":
        rows = groups == group
        f1 = macro_f1(y[rows], combine(static[rows], full[rows], strict).argmax(1), 3)
        assert f1 >= macro_f1(y[rows], full[rows].argmax(1), 3) - 0.2
    assert strict > pooled  # the pooled choice leaves group b's error in place
    assert not uncertain(static[4:5], pooled)[0] and uncertain(static[4:5], strict)[0]


def test_curve_groups_ties_and_ends_at_the_full_model():
    y = np.array([0, 1, 2])
    static = _one_hot([0, 1, 0], [0.3, 0.3, 0.6])
    full = _one_hot(y, [0.5] * 3)
    points = curve(static, full, y)
    assert [p.share for p in points] == pytest.approx([0, 2 / 3, 1])  # the two 0.3 margins together
    assert points[-1].threshold == 1.0
    assert points[-1].macro_f1 == pytest.approx(macro_f1(y, full.argmax(1), 3))


# --- the scorer -----------------------------------------------------------------------------------

TEXTS = {
    0: ["The win-win partnership opens a new era of friendship between the two peoples.",
        "Officials hailed the friendship and the new era of win-win cooperation.",
        "A partnership of friendship, the minister said, will bring a new era.",
        "The summit celebrated win-win cooperation and a deep friendship.",
        "Friendship and partnership mark a new era, the delegation said."],
    1: ["Critics warned of hegemony and a new cold war as NATO expanded.",
        "Sanctions and NATO pressure revive the cold war, analysts warned.",
        "The bloc's hegemony and sanctions drew sharp criticism in the capital.",
        "NATO officials rejected talk of a cold war but kept the sanctions.",
        "Hegemony, sanctions and the cold war dominated the debate."],
    2: ["The ministry published trade figures for the third quarter on Tuesday.",
        "Talks between the delegations will resume next week, a spokesperson said.",
        "The agency reported that the shipment arrived at the port on Monday.",
        "The committee met for two hours and issued a short statement.",
        "Exports rose 3 percent in March, according to customs data."],
}


def _model(embedder) -> Model:
    texts = [t for label in (0, 1, 2) for t in TEXTS[label]]
    y = np.array([label for label in (0, 1, 2) for _ in TEXTS[label]])
    head = fit_head(head_input(texts, embedder.embed(texts)), y, HeadOptions(min_df=1, stack_folds=2))
    meta = {"format_version": 2, "scheme": {"labels": list(LABELS)},
            "embedder": {"name": embedder.name, "dimension": embedder.dimension}}
    return Model(head=head, meta=ModelMeta.from_json(meta))


class CountingEmbedder:
    """Wraps an embedder and records every text it is asked to embed."""

    def __init__(self, inner, name=None):
        self.inner, self.name, self.dimension = inner, name or inner.name, inner.dimension
        self.seen: list[str] = []

    def embed(self, texts):
        self.seen += list(texts)
        return self.inner.embed(texts)


@pytest.fixture
def models(fake_embedder):
    static = CountingEmbedder(fake_embedder, name="static-fake")
    full = CountingEmbedder(fake_embedder)
    static_model, full_model = _model(static), _model(full)
    static.seen, full.seen = [], []  # count only what scoring embeds
    return static_model, static, full_model, full


def _paragraphs(texts):
    return [Paragraph(doc="d", outlet="o", publisher="", index=i, line=i + 1, text=t) for i, t in enumerate(texts)]


QUERIES = ["A new era of win-win friendship.", "NATO sanctions and hegemony.", "The meeting ended at noon.",
           "Talks on trade and security continued.", "Friendship, sanctions and a new era of talks."]


def test_only_uncertain_rows_are_rescored(models):
    static_model, static, full_model, full = models
    static_proba = static_model.predict_proba(QUERIES, static.inner.embed(QUERIES))
    threshold = float(np.median(margin(static_proba)))
    expected = uncertain(static_proba, threshold)
    assert 0 < expected.sum() < len(QUERIES)  # the test means something only with both kinds of rows
    scorer = CascadeScorer(static_model, static, full_model, lambda: full, threshold)
    batch = scorer.score(_paragraphs(QUERIES))
    assert batch.rescored.tolist() == expected.tolist()
    assert full.seen == [q for q, e in zip(QUERIES, expected) if e]
    assert static.seen == QUERIES
    full_proba = full_model.predict_proba(QUERIES, full.inner.embed(QUERIES))
    np.testing.assert_allclose(batch.proba[expected], full_proba[expected])
    np.testing.assert_allclose(batch.proba[~expected], static_proba[~expected])
    assert len(batch) == len(QUERIES) and len(batch.languages) == len(QUERIES)
    assert len(list(batch.rows(LABELS))) == len(QUERIES)


def test_full_embedder_not_loaded_when_nothing_is_uncertain(models):
    static_model, static, full_model, _ = models

    def never():
        raise AssertionError("the full embedder was loaded")

    scorer = CascadeScorer(static_model, static, full_model, never, threshold=0.0)
    batch = scorer.score(_paragraphs(QUERIES))
    assert not batch.rescored.any() and not scorer.full_loaded
    empty = scorer.score([])
    assert len(empty) == 0 and empty.proba.shape == (0, 3)


def test_threshold_one_equals_the_full_model(models):
    static_model, static, full_model, full = models
    loads = []
    scorer = CascadeScorer(static_model, static, full_model, lambda: loads.append(1) or full, threshold=1.0)
    first = scorer.score(_paragraphs(QUERIES))
    scorer.score(_paragraphs(QUERIES[:2]))
    assert first.rescored.all() and loads == [1]  # loaded once, on first need
    np.testing.assert_allclose(first.proba, full_model.predict_proba(QUERIES, full.inner.embed(QUERIES)))


def test_wrong_full_embedder_refused_on_first_use(models, fake_embedder):
    static_model, static, full_model, _ = models
    other = CountingEmbedder(fake_embedder, name="another")
    scorer = CascadeScorer(static_model, static, full_model, lambda: other, threshold=1.0)
    with pytest.raises(ModelError, match="trained on embeddings"):
        scorer.score(_paragraphs(QUERIES))


# --- train_fast and load_fast ---------------------------------------------------------------------

class StaticFake:
    """A second fake: the same vectors, under another name, so the two heads are told apart."""

    name = "static-fake"
    dimension = 16

    def __init__(self, inner):
        self.inner = inner

    def embed(self, texts):
        return self.inner.embed(texts)


@pytest.fixture(scope="module")
def labels_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labels")
    (folder / "scheme.json").write_text(json.dumps({"name": "test", "labels": [{"name": n} for n in LABELS]}))
    lines = []
    for batch in ("a", "b", "c"):
        for label, texts in TEXTS.items():
            for number, text in enumerate(texts):
                lines.append({"text": f"{text} Batch {batch} item {number}.", "label": LABELS[label],
                              "outlet": f"outlet-{batch}", "source": "authored", "batch": batch})
    (folder / "set.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return folder


def test_train_fast_writes_a_checked_fast_part(tmp_path, labels_folder, fake_embedder):
    from framing.pipeline import train

    model_dir = tmp_path / "model"
    train(labels_folder, model_dir, fake_embedder, HeadOptions(min_df=1, n_folds=3, stack_folds=2))
    result = train_fast(labels_folder, model_dir, StaticFake(fake_embedder),
                        HeadOptions(min_df=1, n_folds=3, stack_folds=2))
    assert result.folder == model_dir / "fast"
    full = load_model(model_dir)
    fast = load_fast(model_dir, full)
    assert fast.threshold == result.threshold and 0 <= fast.threshold <= 1
    assert fast.model.embedder_name == "static-fake"
    assert fast.cascade["full_model_sha256"] == full.meta.raw["meta_sha256"]
    oof = result.oof
    assert oof["cascade_macro_f1"] >= oof["full_macro_f1"] - 0.01 - 1e-9
    # The stored calibration is the cascade's, and its macro-F1 is the one reported.
    assert evaluate_predictions(fast.calibration.y, fast.calibration.proba, LABELS).macro_f1 == \
        pytest.approx(oof["cascade_macro_f1"], abs=1e-4)
    # Retraining the main model swaps its folder: the fast part goes with it, and loading says so.
    train(labels_folder, model_dir, fake_embedder, HeadOptions(min_df=1, n_folds=3, stack_folds=2))
    with pytest.raises(ModelError, match="no fast path"):
        load_fast(model_dir, load_model(model_dir))


def test_load_fast_refuses_a_fast_part_of_another_model(tmp_path, labels_folder, fake_embedder):
    from framing.pipeline import train

    options = HeadOptions(min_df=1, n_folds=3, stack_folds=2)
    first, second = tmp_path / "one", tmp_path / "two"
    train(labels_folder, first, fake_embedder, options)
    train_fast(labels_folder, first, StaticFake(fake_embedder), options)
    train(labels_folder, second, fake_embedder, HeadOptions(C=1.0, min_df=1, n_folds=3, stack_folds=2))  # another
    with pytest.raises(ModelError, match="another version"):
        load_fast(first, load_model(second))


def test_train_fast_chooses_on_real_copy_rows(tmp_path, labels_folder, fake_embedder):
    """Rows of a source named in choose_on decide the threshold; with none of them, all rows do."""
    from framing.pipeline import train

    options = HeadOptions(min_df=1, n_folds=3, stack_folds=2)
    model_dir = tmp_path / "model"
    train(labels_folder, model_dir, fake_embedder, options)
    on_all = train_fast(labels_folder, model_dir, StaticFake(fake_embedder), options, choose_on=("seed",))
    assert on_all.oof["chosen_on"]["sources"] == "all" and on_all.oof["chosen_on"]["n"] == 45
    on_authored = train_fast(labels_folder, model_dir, StaticFake(fake_embedder), options, choose_on=("authored",))
    assert on_authored.oof["chosen_on"]["sources"] == ["authored"]


def _user_labelled(tmp_path, labels_folder) -> tuple[Path, list[dict]]:
    """The test labels with batches b and c answered through `framing label` (source "user": real copy)."""
    folder = tmp_path / "labels"
    folder.mkdir()
    (folder / "scheme.json").write_text((labels_folder / "scheme.json").read_text())
    rows = [json.loads(line) for line in (labels_folder / "set.jsonl").read_text().splitlines()]
    for row in rows:
        if row["batch"] != "a":
            row["source"] = "user"
    (folder / "set.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return folder, rows


def test_user_labelled_real_copy_decides_the_threshold_as_it_decides_the_headline(tmp_path, labels_folder,
                                                                                   fake_embedder):
    """`framing label` answers (source "user") are real copy: the fast path's threshold is chosen on them, as
    the headline is measured on them (one constant, labels.REAL_SOURCES)."""
    from framing.labels import REAL_SOURCES
    from framing.pipeline import train

    folder, rows = _user_labelled(tmp_path, labels_folder)
    options = HeadOptions(min_df=1, n_folds=3, stack_folds=2)
    result = train(folder, tmp_path / "model", fake_embedder, options)
    assert result.real_copy is not None and result.real_copy.n_articles == 2
    fast = train_fast(folder, tmp_path / "model", StaticFake(fake_embedder), options)
    assert "user" in REAL_SOURCES
    assert fast.oof["chosen_on"]["sources"] == list(REAL_SOURCES)
    assert fast.oof["chosen_on"]["n"] == sum(row["source"] == "user" for row in rows) == 30


def test_each_threshold_says_how_often_it_kept_the_full_models_label_on_held_out_real_copy(tmp_path, labels_folder,
                                                                                          fake_embedder, monkeypatch):
    """The fast path keeps its real rows, so that a run's note can say how far its threshold departs from the
    full model on real copy held out at training; a fast path without real rows says nothing."""
    from framing.embed import _REGISTERED
    from framing.options import CacheOptions, ScoreOptions
    from framing.pipeline import fast_note, fast_scorer, train
    from framing.prevalence import Calibration

    folder, rows = _user_labelled(tmp_path, labels_folder)
    options = HeadOptions(min_df=1, n_folds=3, stack_folds=2)
    model_dir = tmp_path / "model"
    train(folder, model_dir, fake_embedder, options)
    train_fast(folder, model_dir, StaticFake(fake_embedder), options)
    model = load_model(model_dir)
    fast = load_fast(model_dir, model)
    full = Calibration.from_json((model_dir / "calibration.json").read_text())
    real = np.array([row["source"] == "user" for row in rows])
    assert fast.cascade["real_rows"] == np.flatnonzero(real).tolist()
    at = lambda threshold: fast.fidelity(fast.calibration_at(threshold, full), full)  # noqa: E731
    assert at(1.0) == (30, 30)  # the full model everywhere: its own labels
    static = fast.static_oof.proba[real].argmax(1)
    assert at(0.0) == (int((static == full.proba[real].argmax(1)).sum()), 30)
    # what a run builds: the scorer at the chosen threshold carries its fidelity into the note
    monkeypatch.setitem(_REGISTERED, "static-fake", lambda: StaticFake(fake_embedder))
    scorer, _ = fast_scorer(model, model_dir, ScoreOptions(cache=CacheOptions(enabled=False), fast_threshold=1.0),
                            lambda: fake_embedder)
    assert scorer.fidelity == (30, 30)
    assert "On the 30 real labelled paragraphs held out by article at training, this threshold gave the full " \
           "model's label to 30 (100.0%)." in fast_note(scorer, 10, 10)
    assert fast.fidelity(fast.calibration_at(1.0, None), None) is None  # no full calibration: nothing to compare
    fast.cascade["real_rows"] = [len(rows)]  # one past the end
    with pytest.raises(ModelError, match="real rows do not line up"):
        at(1.0)
    fast.cascade["real_rows"] = []  # as a fast path chosen on all rows, or trained before it kept them
    assert at(1.0) is None
    assert "real labelled" not in fast_note(fast.scorer(StaticFake(fake_embedder), model, lambda: fake_embedder,
                                                        1.0, at(1.0)), 10, 10)


# --- scoring a corpus with the fast path ---------------------------------------------------------

@pytest.fixture
def fast_model(tmp_path, labels_folder, fake_embedder):
    """A model folder with its fast part, both embedders resolvable by name (as real ones are by path), the
    full one counting the texts it embeds."""
    from framing.embed import _REGISTERED, register_embedder
    from framing.pipeline import train

    options = HeadOptions(min_df=1, n_folds=3, stack_folds=2)
    model_dir = tmp_path / "model"
    train(labels_folder, model_dir, fake_embedder, options)
    train_fast(labels_folder, model_dir, StaticFake(fake_embedder), options)
    before = dict(_REGISTERED)
    full = CountingEmbedder(fake_embedder)
    register_embedder("static-fake", lambda: StaticFake(fake_embedder))
    register_embedder("fake-embedder", lambda: full)
    yield model_dir, full
    _REGISTERED.clear()
    _REGISTERED.update(before)


def _corpus(folder, labels_folder) -> list:
    folder.mkdir()
    rows = [json.loads(line) for line in (labels_folder / "set.jsonl").read_text().splitlines()]
    for i, row in enumerate(rows):
        (folder / f"{i:03d}.txt").write_text(f"Title {i}\n\n{row['text']} It went on for a while, they said.\n")
    return rows


@pytest.mark.parametrize("threshold", [0.0, 1.0, None])
def test_a_chosen_threshold_scores_and_calibrates_as_the_cascade_there(tmp_path, labels_folder, fast_model, threshold):
    from framing.cascade import STATIC_OOF_FILE
    from framing.options import CacheOptions, ScoreOptions
    from framing.pipeline import CALIBRATION_COPY, score_paths
    from framing.prevalence import Calibration

    model_dir, full_embedder = fast_model
    _corpus(tmp_path / "corpus", labels_folder)
    options = ScoreOptions(cache=CacheOptions(enabled=False), fast=True, fast_threshold=threshold, labels=None)
    score_paths([tmp_path / "corpus"], model_dir, tmp_path / "out", options)
    n = len((tmp_path / "out" / "paragraphs.jsonl").read_text().splitlines())
    assert n >= 45
    fast = load_fast(model_dir, load_model(model_dir))
    full = Calibration.from_json((model_dir / "calibration.json").read_text())
    kept = Calibration.from_json((tmp_path / "out" / CALIBRATION_COPY).read_text())
    report = (tmp_path / "out" / "report.md").read_text()
    if threshold == 0.0:  # the static model alone: the full model never runs, the static calibration is kept
        assert full_embedder.seen == []
        static = Calibration.from_json((model_dir / "fast" / STATIC_OOF_FILE).read_text())
        np.testing.assert_allclose(kept.proba, static.proba, atol=1e-6)
        assert f"re-scoring the 0 of {n} (0%)" in report
    elif threshold == 1.0:  # every paragraph re-scored: the full model's calibration
        assert len(full_embedder.seen) == n
        np.testing.assert_allclose(kept.proba, full.proba, atol=1e-6)
        assert f"re-scoring the {n} of {n} (100%)" in report
    else:  # the trained threshold: the cascade's stored calibration
        np.testing.assert_allclose(kept.proba, fast.calibration.proba, atol=1e-6)
        assert f"below {fast.threshold:.3f}" in report
    assert "Scored with the fast path" in report


def test_a_fast_path_trained_without_static_probabilities_keeps_only_its_own_threshold(tmp_path, labels_folder,
                                                                                         fast_model):
    from framing.cascade import STATIC_OOF_FILE

    fast_model, _ = fast_model
    fast = load_fast(fast_model, load_model(fast_model))
    older = type(fast)(fast.model, fast.threshold, fast.relevance, fast.calibration, fast.folder)  # no static_oof
    assert older.calibration_at(fast.threshold, None) is fast.calibration
    other = 1.0 if fast.threshold < 1 else 0.0
    with pytest.raises(ModelError, match="retrain the fast path"):
        older.calibration_at(other, fast.calibration)
    assert (fast_model / "fast" / STATIC_OOF_FILE).is_file()


def test_a_budget_picks_its_threshold_on_the_real_rows_and_scores_there(tmp_path, labels_folder, fake_embedder,
                                                                        monkeypatch):
    """--fast-budget B: the threshold at which B of the real labelled paragraphs (held out by article at
    training) went to the full model; a run re-scores exactly the paragraphs whose static margin is below it."""
    from framing.embed import _REGISTERED
    from framing.options import CacheOptions, ScoreOptions
    from framing.pipeline import score_paths, train

    folder, rows = _user_labelled(tmp_path, labels_folder)
    options = HeadOptions(min_df=1, n_folds=3, stack_folds=2)
    model_dir = tmp_path / "model"
    train(folder, model_dir, fake_embedder, options)
    train_fast(folder, model_dir, StaticFake(fake_embedder), options)
    fast = load_fast(model_dir, load_model(model_dir))
    real = np.array([row["source"] == "user" for row in rows])
    threshold = fast.threshold_for_budget(0.5)
    assert uncertain(fast.static_oof.proba[real], threshold).sum() == 15  # half of the 30 real rows, not of all
    assert threshold == threshold_for_budget(fast.static_oof.proba[real], 0.5)
    full = CountingEmbedder(fake_embedder)
    static = StaticFake(fake_embedder)
    monkeypatch.setitem(_REGISTERED, "static-fake", lambda: static)
    monkeypatch.setitem(_REGISTERED, "fake-embedder", lambda: full)
    texts = [p["text"] for p in _corpus_paragraphs(_corpus(tmp_path / "corpus", labels_folder))]
    score_paths([tmp_path / "corpus"], model_dir, tmp_path / "out",
                ScoreOptions(cache=CacheOptions(enabled=False), fast_budget=0.5, labels=None))
    scored = [json.loads(line)["text"] for line in (tmp_path / "out" / "paragraphs.jsonl").read_text().splitlines()]
    assert sorted(scored) == sorted(texts)
    below = uncertain(fast.model.predict_proba(scored, static.embed(scored)), threshold)
    assert sorted(full.seen) == sorted(t for t, b in zip(scored, below) if b)
    assert f"below {threshold:.3f}" in (tmp_path / "out" / "report.md").read_text()
    older = type(fast)(fast.model, fast.threshold, fast.relevance, fast.calibration, fast.folder)  # no static_oof
    with pytest.raises(ModelError, match="retrain the fast path"):
        older.threshold_for_budget(0.5)


def _corpus_paragraphs(rows: list) -> list[dict]:
    """The paragraphs _corpus writes, as score reads them (title lines aside)."""
    return [{"text": f"{row['text']} It went on for a while, they said."} for row in rows]


def test_the_cli_threshold_implies_the_fast_path_and_is_bounded(tmp_path, labels_folder, fast_model):
    from typer.testing import CliRunner

    from framing.cli import app

    model_dir, full_embedder = fast_model
    _corpus(tmp_path / "corpus", labels_folder)
    base = ["score", str(tmp_path / "corpus"), "--model", str(model_dir), "--no-cache"]
    result = CliRunner().invoke(app, base + ["--out", str(tmp_path / "out"), "--fast-threshold", "0"])
    assert result.exit_code == 0, result.output
    assert full_embedder.seen == [] and "Scored with the fast path" in (tmp_path / "out" / "report.md").read_text()
    result = CliRunner().invoke(app, base + ["--out", str(tmp_path / "out2"), "--fast-threshold", "1.5"])
    assert result.exit_code == 2 and not (tmp_path / "out2").exists()
    result = CliRunner().invoke(app, base + ["--out", str(tmp_path / "out3"), "--fast-budget", "1.5"])
    assert result.exit_code == 2 and "--fast-budget must be a share between 0 and 1" in result.output
    result = CliRunner().invoke(app, base + ["--out", str(tmp_path / "out4"), "--fast-budget", "0.1",
                                             "--fast-threshold", "0.2"])
    assert result.exit_code == 2 and "not both" in result.output and not (tmp_path / "out4").exists()
    result = CliRunner().invoke(app, base + ["--out", str(tmp_path / "out5"), "--fast-budget", "0"])
    assert result.exit_code == 0, result.output
    assert full_embedder.seen == []  # a budget of 0: the static model alone, with no --fast needed
