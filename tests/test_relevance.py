"""The relevance stage: reading the off-topic set, the threshold, fitting, and the JSON it is stored as."""

from __future__ import annotations

import json

import numpy as np
import pytest

from framing.errors import LabelError, ModelError
from framing.labels import Example
from framing.relevance import (
    OFF_TOPIC,
    RelevanceModel,
    RelevanceOptions,
    check_disjoint,
    choose_threshold,
    fit_relevance,
    off_topic_path,
    read_off_topic,
)

DIM = 8


def clusters(n_on=120, n_off=60, spread=0.6, seed=0):
    """On-topic vectors around one direction, off-topic around another, each in 4 'batches'."""
    rng = np.random.default_rng(seed)
    on = rng.normal(scale=spread, size=(n_on, DIM)) + np.eye(DIM)[0] * 2
    off = rng.normal(scale=spread, size=(n_off, DIM)) + np.eye(DIM)[1] * 2
    return on, off, [f"b{i % 4}" for i in range(n_on)], [f"ot{i % 4}" for i in range(n_off)]


def fitted(**options) -> RelevanceModel:
    on, off, g_on, g_off = clusters()
    return RelevanceModel(RelevanceOptions(**options)).fit(on, off, g_on, g_off)


# --- choose_threshold ---------------------------------------------------------------------------

def test_threshold_catches_every_off_topic_score_when_it_can():
    p_on = np.array([0.05, 0.1, 0.2, 0.3])
    p_off = np.array([0.6, 0.8, 0.9])
    t = choose_threshold(p_on, p_off, 1.0)
    assert t == pytest.approx((0.3 + 0.6) / 2)  # between the highest on-topic and the lowest off-topic score


def test_threshold_keeps_the_on_topic_recall_asked_for():
    p_on = np.linspace(0.0, 0.9, 100)  # on-topic scores reach into the off-topic range
    p_off = np.array([0.5, 0.7, 0.95])
    t = choose_threshold(p_on, p_off, 0.98)
    assert (p_on < t).mean() >= 0.98
    assert (p_off >= t).mean() == pytest.approx(1 / 3)  # only 0.95 lies above the 98th on-topic percentile
    assert (p_on < choose_threshold(p_on, p_off, 0.5)).mean() < 0.98  # a looser target drops more on-topic


def test_threshold_needs_both_kinds_of_score():
    with pytest.raises(ModelError):
        choose_threshold(np.array([0.1]), np.array([]))


# --- fit and predict ------------------------------------------------------------------------------

def test_fit_separates_the_clusters():
    model = fitted()
    on, off, _, _ = clusters(seed=1)  # fresh draws from the same clusters
    assert model.off_topic_proba(on).mean() < 0.2
    assert model.off_topic_proba(off).mean() > 0.8
    assert model.is_off_topic(off).mean() > 0.9
    assert model.is_off_topic(on).mean() < 0.1
    assert model.cv_["grouped"] is True
    assert model.cv_["on_topic_recall"] >= 0.98
    assert model.cv_["n_on_topic"] == 120 and model.cv_["n_off_topic"] == 60


def test_overlapping_clusters_still_keep_on_topic_recall_out_of_fold():
    on, off, g_on, g_off = clusters(spread=2.0, seed=3)
    model = RelevanceModel().fit(on, off, g_on, g_off)
    assert model.cv_["on_topic_recall"] >= 0.98
    assert model.cv_["off_topic_recall"] < 1.0  # overlap: the recall target costs some off-topic recall


def test_scale_does_not_matter():
    model = fitted()
    on, _, _, _ = clusters(seed=1)
    np.testing.assert_allclose(model.off_topic_proba(on), model.off_topic_proba(on * 7.5))


def test_wrong_width_is_refused():
    with pytest.raises(ModelError, match="8-dimensional"):
        fitted().off_topic_proba(np.zeros((2, DIM + 1)))


def test_unfitted_stage_is_refused():
    with pytest.raises(ModelError, match="not fitted"):
        RelevanceModel().off_topic_proba(np.zeros((1, DIM)))


def test_too_few_batches_is_refused():
    on, off, g_on, _ = clusters()
    with pytest.raises(ModelError, match="2 batches"):
        RelevanceModel().fit(on, off, g_on, ["one"] * len(off))


def test_empty_batch_gives_empty_scores():
    assert fitted().off_topic_proba(np.zeros((0, DIM))).shape == (0,)


# --- JSON -------------------------------------------------------------------------------------------

def test_json_round_trip_gives_the_same_scores():
    model = fitted()
    text = model.to_json()
    assert json.loads(text)["label"] == OFF_TOPIC
    again = RelevanceModel.from_json(text)
    on, off, _, _ = clusters(seed=2)
    both = np.vstack([on, off])
    np.testing.assert_allclose(again.off_topic_proba(both), model.off_topic_proba(both), rtol=1e-12)
    assert again.threshold_ == model.threshold_
    assert again.options == model.options
    assert RelevanceModel.from_json(json.loads(text)).threshold_ == model.threshold_  # a parsed dict works too


def _edited(**changes) -> str:
    data = json.loads(fitted().to_json())
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize("text", [
    "not json",
    "[1, 2]",
    _edited(format="framing-stack-1"),
    _edited(label="neutral_wire"),
    _edited(coef=[0.1] * (DIM - 1)),
    _edited(dimension=True),
    _edited(coef=["0.1"] * DIM),
    _edited(intercept="0"),
    _edited(threshold=0.0),
    _edited(threshold=1.5),
    _edited(options="C=1"),
    _edited(options={"C": "1"}),
    '{"format": "framing-relevance-1", "label": "off_topic", "dimension": 1, "coef": [NaN], "intercept": 0, '
    '"threshold": 0.5}',
    '{"format": "framing-relevance-1", "label": "off_topic"}',
    "[" * 100_000,
])
def test_malformed_json_is_refused(text):
    with pytest.raises(ModelError, match="relevance.json"):
        RelevanceModel.from_json(text)


# --- the off-topic set ----------------------------------------------------------------------------

def _record(text, label=OFF_TOPIC, **more):
    return json.dumps({"text": text, "label": label, "outlet": "authored", "source": "authored", **more})


def test_read_off_topic(tmp_path):
    path = tmp_path / "off_topic.jsonl"
    path.write_text(_record("The regatta was  abandoned.", batch="ot-1") + "\n\n" + _record("A cake.") + "\n")
    examples = read_off_topic(path)
    assert [e.text for e in examples] == ["The regatta was abandoned.", "A cake."]
    assert [e.group for e in examples] == ["ot-1", "authored"]
    assert examples[1].where == "off_topic.jsonl:3"
    assert all(e.label == OFF_TOPIC for e in examples)


@pytest.mark.parametrize("lines, message", [
    ([_record("ok"), _record("framed", label="neutral_wire")], "off_topic.jsonl:2: label 'neutral_wire'"),
    ([_record("ok"), "{broken"], "off_topic.jsonl:2: malformed JSON"),
    ([_record("ok"), _record("  ")], "off_topic.jsonl:2: empty or missing 'text'"),
    (["[1]"], "off_topic.jsonl:1: expected a JSON object"),
    ([_record("Same"), _record("same")], "off_topic.jsonl:2: duplicate text"),
    ([""], "the off-topic set is empty"),
])
def test_bad_off_topic_set_is_refused_with_file_and_line(tmp_path, lines, message):
    path = tmp_path / "off_topic.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LabelError, match=message):
        read_off_topic(path)


def test_missing_off_topic_set(tmp_path):
    with pytest.raises(LabelError, match="no off-topic paragraphs"):
        read_off_topic(tmp_path / "nope.jsonl")


def test_off_topic_path(tmp_path):
    assert off_topic_path(tmp_path) == tmp_path / "relevance" / "off_topic.jsonl"
    assert off_topic_path(tmp_path / "seeds.jsonl") == tmp_path / "relevance" / "off_topic.jsonl"


def _example(text, label, group, where):
    return Example(text=text, label=label, outlet="o", source="authored", group=group, where=where)


def test_a_paragraph_cannot_be_both_labelled_and_off_topic():
    on = [_example("Moscow said so.", "neutral_wire", "b1", "a.jsonl:1")]
    off = [_example("moscow said so.", OFF_TOPIC, "ot", "off_topic.jsonl:4")]
    with pytest.raises(LabelError, match="off_topic.jsonl:4: same text as a.jsonl:1"):
        check_disjoint(on, off)


def test_fit_relevance_on_examples(fake_embedder):
    topics = ["NATO sanctions on Moscow", "Beijing and Washington trade talks", "Kremlin partnership with China"]
    others = ["a late goal in the cup tie", "the bakery's rye loaf", "storm warning for the valley"]
    on = [_example(f"{t} ({i})", "neutral_wire", f"b{i % 3}", f"a:{i}") for i, t in
          enumerate(topics * 20)]
    off = [_example(f"{t} ({i})", OFF_TOPIC, f"ot{i % 3}", f"o:{i}") for i, t in enumerate(others * 20)]
    model = fit_relevance(on, off, fake_embedder.embed([e.text for e in on]),
                          fake_embedder.embed([e.text for e in off]))
    assert model.dimension == fake_embedder.dimension
    assert model.cv_["grouped"] and model.cv_["on_topic_recall"] >= 0.98
    assert 0.0 < model.threshold_ <= 1.0
