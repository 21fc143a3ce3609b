"""classify: the head, its metrics, and the model folder (save, load, and refuse what cannot be trusted)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from framing import classify
from framing.classify import (
    EMBEDDING,
    HEAD_FILE,
    META_FILE,
    TEXT,
    HeadOptions,
    Model,
    evaluate_predictions,
    expected_calibration_error,
    fit_head,
    head_input,
    load_model,
    meta_digest,
    out_of_fold_proba,
    save_model,
    top_terms,
)
from framing.errors import ModelError, OutputError

LABELS = ("state_aligned", "western_critical", "neutral_wire")
TEXTS = [f"{topic} paragraph number {i}" for i in range(12)
         for topic in ("win-win partnership in a new era", "hegemony, nato and cold war sanctions", "a neutral report")]


def meta(labels=LABELS, name: str = "fake-embedder", dimension: int = 16) -> dict:
    return {"format_version": 1, "created": "2024-01-01T00:00:00+00:00",
            "scheme": {"name": "test", "labels": list(labels), "definitions": {}},
            "embedder": {"name": name, "dimension": dimension}}


@pytest.fixture
def data(fake_embedder):
    """The head's input rows (text + embedding) and their labels."""
    X = head_input(TEXTS, fake_embedder.embed(TEXTS))
    y = np.array([i % 3 for i in range(len(TEXTS))])
    return X, y


def proba_of(model: Model, X: np.ndarray) -> np.ndarray:
    return model.predict_proba(list(X[:, 0]), X[:, 1:].astype(np.float32))


@pytest.fixture
def saved(tmp_path, data) -> tuple[Path, Model]:
    X, y = data
    model = Model(head=fit_head(X, y), meta=meta())
    folder = save_model(model, tmp_path / "model", "# card\n")
    return folder, model


def rewrite_head(folder: Path, head_bytes: bytes) -> None:
    """Replace head.skops and make model.json's hash match it, as a careful attacker would."""
    (folder / HEAD_FILE).write_bytes(head_bytes)
    info = json.loads((folder / META_FILE).read_text("utf-8"))
    info["head_sha256"] = hashlib.sha256(head_bytes).hexdigest()
    info["meta_sha256"] = meta_digest(info)
    (folder / META_FILE).write_text(json.dumps(info), encoding="utf-8")


# --- save and load -------------------------------------------------------------------------------------

def test_save_load_round_trip_gives_the_same_probabilities(saved, data):
    folder, model = saved
    X, _ = data
    assert sorted(p.name for p in folder.iterdir()) == ["MODEL_CARD.md", "head.skops", "model.json"]
    loaded = load_model(folder)
    np.testing.assert_array_equal(proba_of(loaded, X), proba_of(model, X))
    assert loaded.labels == LABELS
    assert loaded.embedder_name == "fake-embedder"
    assert loaded.meta["head_sha256"] == hashlib.sha256((folder / HEAD_FILE).read_bytes()).hexdigest()


def test_saving_again_replaces_the_model_and_leaves_no_temporary_folders(saved, data):
    folder, _ = saved
    X, y = data
    save_model(Model(head=fit_head(X, y, HeadOptions(C=0.01)), meta=meta()), folder, "# second\n")
    assert (folder / "MODEL_CARD.md").read_text("utf-8") == "# second\n"
    assert sorted(p.name for p in folder.parent.iterdir()) == ["model"]


def test_save_refuses_a_folder_of_other_files(tmp_path, saved):
    _, model = saved
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(OutputError, match="not a framing model"):
        save_model(model, tmp_path / "photos", "")
    assert (tmp_path / "photos" / "cat.jpg").exists()


def test_edited_head_is_refused(saved):
    folder, _ = saved
    head = folder / HEAD_FILE
    data = bytearray(head.read_bytes())
    data[len(data) // 2] ^= 0xFF
    head.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="hash"):
        load_model(folder)


def test_missing_model_folder_is_refused(tmp_path):
    with pytest.raises(ModelError, match="no model at") as caught:
        load_model(tmp_path / "nowhere")
    assert "framing train" in str(caught.value)


def test_model_without_its_head_is_refused(saved):
    folder, _ = saved
    (folder / HEAD_FILE).unlink()
    with pytest.raises(ModelError, match="no model at"):
        load_model(folder)


@pytest.mark.parametrize("edit", [
    lambda m: m.update(format_version=99),
    lambda m: m.pop("scheme"),
    lambda m: m["embedder"].update(dimension="384"),
])
def test_model_json_of_another_format_is_refused(saved, edit):
    folder, _ = saved
    info = json.loads((folder / META_FILE).read_text("utf-8"))
    edit(info)
    (folder / META_FILE).write_text(json.dumps(info), encoding="utf-8")
    with pytest.raises(ModelError, match="retrain"):
        load_model(folder)


def test_unreadable_model_json_is_refused(saved):
    folder, _ = saved
    (folder / META_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="unreadable"):
        load_model(folder)


def test_head_with_an_untrusted_type_is_refused_without_executing_it(saved, monkeypatch):
    folder, _ = saved
    evil = Pipeline([("run", FunctionTransformer(func=os.system)), ("scale", StandardScaler())])
    rewrite_head(folder, sio.dumps(evil))
    loads_called = []
    monkeypatch.setattr(sio, "loads", lambda *a, **k: loads_called.append(1))
    with pytest.raises(ModelError, match="allow-list") as caught:
        load_model(folder)
    assert "system" in str(caught.value)  # names the refused type
    assert loads_called == []  # refused before anything was rebuilt from the file


def test_a_function_hidden_in_an_allowed_estimators_parameter_is_refused(saved, data):
    # TfidfVectorizer is on the allow-list; a callable preprocessor inside one must still be refused
    folder, _ = saved
    X, y = data
    sneaky = Pipeline([("tfidf", TfidfVectorizer(preprocessor=os.path.basename)), ("logreg", LogisticRegression())])
    rewrite_head(folder, sio.dumps(sneaky.fit(list(X[:, 0]), y)))
    with pytest.raises(ModelError, match="allow-list") as caught:
        load_model(folder)
    assert "basename" in str(caught.value)


def test_an_oversized_archive_is_refused_before_it_is_inflated(saved, monkeypatch):
    folder, _ = saved
    monkeypatch.setattr(classify, "MAX_HEAD_BYTES", 1000)  # the real head inflates to far more
    with pytest.raises(ModelError, match="not a readable skops file"):
        load_model(folder)


def test_the_size_bound_covers_the_arrays_not_only_the_schema(saved, monkeypatch):
    folder, _ = saved
    with zipfile.ZipFile(folder / HEAD_FILE) as archive:
        schema = archive.getinfo("schema.json").file_size
        assert sum(m.file_size for m in archive.infolist()) > schema  # the head holds arrays beside its schema
    monkeypatch.setattr(classify, "MAX_HEAD_BYTES", schema)  # the schema alone would pass
    with pytest.raises(ModelError, match="not a readable skops file"):
        load_model(folder)


def test_damaged_skops_archive_with_matching_hash_is_refused(saved):
    folder, _ = saved
    rewrite_head(folder, b"PK\x03\x04 this is not a real archive")
    with pytest.raises(ModelError, match="skops"):
        load_model(folder)


def test_head_with_a_type_outside_the_allow_list_is_refused(saved, data):
    folder, _ = saved
    X, y = data
    # FunctionTransformer itself is allowed (the head's "passthrough" is one); the function it would call is not
    other = Pipeline([("log", FunctionTransformer(func=np.exp)), ("logreg", LogisticRegression())])
    other.fit(X[:, 1:].astype(float), y)
    rewrite_head(folder, sio.dumps(other))
    with pytest.raises(ModelError, match="allow-list"):
        load_model(folder)


def test_a_copied_model_folder_still_loads(saved, tmp_path):
    folder, _ = saved
    copy = tmp_path / "elsewhere"
    shutil.copytree(folder, copy)
    assert load_model(copy).labels == LABELS


# --- probabilities in scheme order ---------------------------------------------------------------------

def test_predict_proba_maps_learned_classes_to_scheme_order(data):
    X, y = data
    seen = y != 1  # the head never sees label 1, so it learns classes_ == [0, 2]
    head = fit_head(X[seen], y[seen])
    assert head.classes_.tolist() == [0, 2]
    proba = proba_of(Model(head=head, meta=meta()), X)
    assert proba.shape == (len(X), 3)
    assert np.all(proba[:, 1] == 0)
    np.testing.assert_allclose(proba[:, [0, 2]], head.predict_proba(X))
    np.testing.assert_allclose(proba.sum(axis=1), 1)


def test_predict_proba_of_no_rows(saved):
    _, model = saved
    assert model.predict_proba([], np.zeros((0, 16), dtype=np.float32)).shape == (0, 3)


# --- metrics ---------------------------------------------------------------------------------------------

def test_ece_is_zero_when_confidence_matches_accuracy():
    proba = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert expected_calibration_error(np.array([0, 1, 0]), proba) == 0.0


def test_ece_of_an_overconfident_classifier():
    # all four at confidence 0.8, half of them right: the gap is 0.3
    proba = np.array([[0.8, 0.2], [0.8, 0.2], [0.2, 0.8], [0.2, 0.8]])
    assert expected_calibration_error(np.array([0, 1, 1, 0]), proba) == pytest.approx(0.3)


def test_ece_weighs_bins_by_their_size():
    # bin 0.9: two rows, both right (gap 0.1); bin 0.6: two rows, one right (gap 0.1)
    proba = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.6, 0.4]])
    assert expected_calibration_error(np.array([0, 1, 0, 1]), proba) == pytest.approx(0.1)
    # one confident mistake among three perfect rows
    proba = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert expected_calibration_error(np.array([0, 0, 0, 1]), proba) == pytest.approx(0.25)


def test_ece_of_nothing_is_zero():
    assert expected_calibration_error(np.array([], dtype=int), np.zeros((0, 3))) == 0.0


def test_evaluate_predictions_on_hand_arrays():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    proba = np.eye(3)[[0, 1, 1, 1, 2, 0]]  # one 0 taken for 1, one 2 taken for 0
    metrics = evaluate_predictions(y_true, proba, LABELS)
    assert metrics.confusion == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert metrics.per_label["western_critical"] == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert metrics.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert metrics.to_dict()["labels"] == list(LABELS)


def test_out_of_fold_probabilities_cover_every_row(data):
    X, y = data
    proba = out_of_fold_proba(X, y, 3, HeadOptions(n_folds=3))
    assert proba.shape == (len(y), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    groups = np.array([i % 4 for i in range(len(y))])
    grouped = out_of_fold_proba(X, y, 3, HeadOptions(n_folds=3), groups=groups)
    np.testing.assert_allclose(grouped.sum(axis=1), 1, rtol=1e-6)


def test_cross_validation_needs_two_examples_per_label(data):
    X, y = data
    y = y.copy()
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:1]]
    with pytest.raises(ModelError, match="at least 2"):
        out_of_fold_proba(X[keep], y[keep], 3, HeadOptions())


# --- the head ------------------------------------------------------------------------------------------

def test_head_input_puts_the_text_first_then_the_embedding():
    rows = head_input(["one", "two"], np.array([[0.5, 0.25], [1.0, 2.0]], dtype=np.float32))
    assert rows.shape == (2, 3)
    assert rows[:, TEXT].tolist() == ["one", "two"]
    assert rows[:, EMBEDDING].astype(float).tolist() == [[0.5, 0.25], [1.0, 2.0]]


def test_the_text_half_sees_words_the_embedding_cannot(data):
    # Each label's texts share their topic words; the TF-IDF half must rank those words first.
    X, y = data
    head = fit_head(X, y)
    terms = top_terms(head, LABELS, n=3)
    assert set(terms) == set(LABELS)
    topics = {label: TEXTS[i] for i, label in enumerate(LABELS)}  # TEXTS cycles through the labels' topics
    for label, words in terms.items():  # each label's top n-grams come from its own topic and no other
        for term in words:
            assert term in topics[label]
            assert not any(term in topics[other] for other in LABELS if other != label)


def test_labelled_texts_without_shared_words_are_refused_with_advice(fake_embedder):
    texts = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    X = head_input(texts, fake_embedder.embed(texts))
    with pytest.raises(ModelError, match="share too few words"):
        fit_head(X, np.array([0, 0, 1, 1, 2, 2]))
