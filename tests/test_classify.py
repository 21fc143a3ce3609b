"""classify: the head, its metrics, and the model folder (save, load, and refuse what cannot be trusted)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from framing import headfile
from framing.classify import (
    EMBEDDING,
    FORMAT_VERSION,
    HEAD_FILE,
    META_FILE,
    TEXT,
    WEIGHTS_FILE,
    HeadOptions,
    Model,
    ModelMeta,
    evaluate_predictions,
    expected_calibration_error,
    fit_head,
    head_input,
    load_model,
    meta_digest,
    out_of_fold_proba,
    read_model_file,
    save_model,
    top_terms,
)
from framing.errors import ModelError, OutputError

LABELS = ("state_aligned", "western_critical", "neutral_wire")
TEXTS = [f"{topic} paragraph number {i}" for i in range(12)
         for topic in ("win-win partnership in a new era", "hegemony, nato and cold war sanctions", "a neutral report")]


def meta(labels=LABELS, name: str = "fake-embedder", dimension: int = 16) -> ModelMeta:
    return ModelMeta.from_json({"format_version": FORMAT_VERSION, "created": "2024-01-01T00:00:00+00:00",
                                "scheme": {"name": "test", "labels": list(labels), "definitions": {}},
                                "embedder": {"name": name, "dimension": dimension}})


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


def rewrite(folder: Path, name: str, data: bytes) -> None:
    """Replace a model file and make model.json's hashes match it, as a careful attacker would."""
    (folder / name).write_bytes(data)
    info = json.loads((folder / META_FILE).read_text("utf-8"))
    info["files"][name] = hashlib.sha256(data).hexdigest()
    info["meta_sha256"] = meta_digest(info)
    (folder / META_FILE).write_text(json.dumps(info), encoding="utf-8")


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


# --- save and load -------------------------------------------------------------------------------------

def test_save_load_round_trip_gives_the_same_probabilities(saved, data):
    folder, model = saved
    X, _ = data
    assert sorted(p.name for p in folder.iterdir()) == ["MODEL_CARD.md", "head.json", "head.npz", "model.json"]
    loaded = load_model(folder)
    np.testing.assert_allclose(proba_of(loaded, X), proba_of(model, X), rtol=0, atol=1e-12)
    assert loaded.labels == LABELS
    assert loaded.embedder_name == "fake-embedder"
    assert loaded.meta.raw["files"][HEAD_FILE] == hashlib.sha256((folder / HEAD_FILE).read_bytes()).hexdigest()


def test_a_two_label_head_round_trips_too(tmp_path, data):
    X, y = data
    binary = (y > 0).astype(int)
    model = Model(head=fit_head(X, binary), meta=meta(labels=("a", "b")))
    loaded = load_model(save_model(model, tmp_path / "binary", ""))
    np.testing.assert_allclose(proba_of(loaded, X), proba_of(model, X), rtol=0, atol=1e-12)


def test_loading_imports_no_serialisation_library(saved):
    # skops enumerated every scikit-learn estimator on import (2 s of start-up); pickle could run code
    folder, _ = saved
    code = ("import sys; from framing.classify import load_model; load_model(sys.argv[1]); "
            "print(sorted(m for m in ('skops', 'skops.io', 'torch') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_extra_files_are_hashed_and_checked(tmp_path, data):
    X, y = data
    folder = save_model(Model(head=fit_head(X, y), meta=meta()), tmp_path / "m", "", extra={"notes.json": "{}"})
    model = load_model(folder)
    assert read_model_file(folder, model, "notes.json") == "{}"
    (folder / "notes.json").write_text('{"edited": 1}', encoding="utf-8")
    with pytest.raises(ModelError, match="hash"):
        read_model_file(folder, model, "notes.json")


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


@pytest.mark.parametrize("name", [HEAD_FILE, WEIGHTS_FILE])
def test_an_edited_head_file_is_refused(saved, name):
    folder, _ = saved
    path = folder / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="hash"):
        load_model(folder)


def test_missing_model_folder_is_refused(tmp_path):
    with pytest.raises(ModelError, match="no model at") as caught:
        load_model(tmp_path / "nowhere")
    assert caught.value.option == "model"  # the CLI points at --model


@pytest.mark.parametrize("name", [HEAD_FILE, WEIGHTS_FILE])
def test_model_without_its_head_is_refused(saved, name):
    folder, _ = saved
    (folder / name).unlink()
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


def test_a_pickle_in_the_weights_is_refused_without_running_it(saved, tmp_path):
    # An object array is a pickle: np.load with allow_pickle=False refuses it instead of unpickling
    folder, _ = saved
    marker = tmp_path / "ran"
    evil = np.array([Evil(str(marker))], dtype=object)
    rewrite(folder, WEIGHTS_FILE, npz_bytes(idf=evil))
    with pytest.raises(ModelError, match="not a readable framing head"):
        load_model(folder)
    assert not marker.exists()


@pytest.mark.parametrize("change", [
    lambda spec, arrays: spec.update(format="other-format"),
    lambda spec, arrays: spec["tfidf"].update(token_pattern=["not", "a", "string"]),
    lambda spec, arrays: spec.update(vocabulary={"word": "zero"}),
    lambda spec, arrays: arrays.update(idf=arrays["idf"][:-1]),  # shorter than the vocabulary
    lambda spec, arrays: arrays.update(final_coef=np.full_like(arrays["final_coef"], np.nan)),
    lambda spec, arrays: arrays.update(embedding_coef=arrays["embedding_coef"].astype(str)),
    lambda spec, arrays: arrays.pop("text_intercept"),
])
def test_a_malformed_head_with_matching_hashes_is_refused(saved, change):
    folder, _ = saved
    spec = json.loads((folder / HEAD_FILE).read_text("utf-8"))
    with np.load(folder / WEIGHTS_FILE) as npz:
        arrays = {name: npz[name] for name in npz.files}
    change(spec, arrays)
    rewrite(folder, HEAD_FILE, json.dumps(spec).encode())
    rewrite(folder, WEIGHTS_FILE, npz_bytes(**arrays))
    with pytest.raises(ModelError, match="not a readable framing head"):
        load_model(folder)


def test_an_oversized_archive_is_refused_before_it_is_inflated(saved, monkeypatch):
    folder, _ = saved
    monkeypatch.setattr(headfile, "MAX_HEAD_BYTES", 1000)  # the real weights inflate to far more
    with pytest.raises(ModelError, match="not a readable framing head"):
        load_model(folder)


def test_a_damaged_archive_with_matching_hash_is_refused(saved):
    folder, _ = saved
    rewrite(folder, WEIGHTS_FILE, b"PK\x03\x04 this is not a real archive")
    with pytest.raises(ModelError, match="not a readable framing head"):
        load_model(folder)


def test_a_head_for_another_embedding_size_is_refused(saved):
    folder, _ = saved
    info = json.loads((folder / META_FILE).read_text("utf-8"))
    info["embedder"]["dimension"] = 384
    info["meta_sha256"] = meta_digest(info)
    (folder / META_FILE).write_text(json.dumps(info), encoding="utf-8")
    with pytest.raises(ModelError, match="16-dimensional"):
        load_model(folder)


def test_a_copied_model_folder_still_loads(saved, tmp_path):
    folder, _ = saved
    copy = tmp_path / "elsewhere"
    shutil.copytree(folder, copy)
    assert load_model(copy).labels == LABELS


class Evil:
    """Unpickling this would create a file: the marker that code from a model file ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


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


def test_held_out_groups_are_predicted_whole_by_heads_fitted_on_the_training_rows_only():
    """held_out_proba(training=...): each held-out group is scored whole, by a head fitted on the training rows
    outside it (what bench/data_scaling.py subsamples), and without the mask on every other row."""
    from sklearn.dummy import DummyClassifier

    from framing.classify import HeadOptions, held_out_proba

    X = np.arange(12, dtype=float).reshape(-1, 1)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 0, 0, 1, 1, 2])
    groups = np.array(["a", "a", "a", "b", "b", "b", "x", "x", "x", "x", "x", "x"])
    held_out = groups != "x"
    fitted: list[list[int]] = []

    def fit(X_fit, y_fit, _options):
        fitted.append(sorted(X_fit[:, 0].astype(int)))
        return DummyClassifier(strategy="prior").fit(X_fit, y_fit)

    training = np.zeros(12, dtype=bool)
    training[[0, 4, 6, 7, 8, 9, 10, 11]] = True  # rows 1, 2, 3 and 5 of the real groups are left out
    P = held_out_proba(X, y, 3, HeadOptions(), held_out, groups, fit=fit, training=training)
    assert fitted == [[4, 6, 7, 8, 9, 10, 11], [0, 6, 7, 8, 9, 10, 11]]
    assert P.shape == (6, 3)  # every row of both groups, though four were not in training
    np.testing.assert_allclose(P[:3], np.tile(np.bincount(y[fitted[0]], minlength=3) / 7, (3, 1)))
    fitted.clear()
    held_out_proba(X, y, 3, HeadOptions(), held_out, groups, fit=fit)
    assert fitted == [[3, 4, 5, 6, 7, 8, 9, 10, 11], [0, 1, 2, 6, 7, 8, 9, 10, 11]]
