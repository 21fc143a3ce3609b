"""labels: the scheme and the labelled set. Every problem names its file and line; the scheme is data."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from framing.errors import LabelError
from framing.labels import label_counts, labelled_set_hash, load_scheme, read_examples, scheme_path_for

ROOT = Path(__file__).resolve().parent.parent
LABELS = ROOT / "labels"
SCHEME = {"name": "tiny", "labels": [{"name": "pro", "definition": "For."}, {"name": "con", "definition": "Against."}]}


def write_labels(folder: Path, lines: list[str], scheme: dict = SCHEME, name: str = "set.jsonl") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scheme.json").write_text(json.dumps(scheme), encoding="utf-8")
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def record(text: str, label: str, **extra) -> str:
    return json.dumps({"text": text, "label": label, "outlet": "Example", "source": "test", **extra})


def read(folder: Path):
    return read_examples(folder, load_scheme(folder))


# --- the scheme ----------------------------------------------------------------------------------------

def test_load_scheme_from_folder_or_file(tmp_path):
    folder = write_labels(tmp_path / "labels", [record("A sentence.", "pro")])
    scheme = load_scheme(folder)
    assert scheme == load_scheme(folder / "scheme.json")
    assert scheme.name == "tiny"
    assert scheme.labels == ("pro", "con")
    assert scheme.definitions == {"pro": "For.", "con": "Against."}
    assert scheme.index("con") == 1


def test_scheme_with_one_label_is_refused(tmp_path):
    folder = write_labels(tmp_path, [], scheme={"labels": [{"name": "only"}]})
    with pytest.raises(LabelError, match="at least two labels"):
        load_scheme(folder)


def test_scheme_with_repeated_label_is_refused(tmp_path):
    folder = write_labels(tmp_path, [], scheme={"labels": [{"name": "a"}, {"name": "b"}, {"name": "a"}]})
    with pytest.raises(LabelError, match="repeated: a"):
        load_scheme(folder)


@pytest.mark.parametrize("content", ['{"labels": [', '{"labels": "pro, con"}', '[1, 2]', '{"labels": [{"x": 1}]}'])
def test_malformed_scheme_is_refused_naming_the_file(tmp_path, content):
    (tmp_path / "scheme.json").write_text(content, encoding="utf-8")
    with pytest.raises(LabelError, match="scheme.json"):
        load_scheme(tmp_path)


def test_missing_scheme_is_refused(tmp_path):
    with pytest.raises(LabelError, match="no label scheme"):
        load_scheme(tmp_path)


def test_scheme_path_for_folder_and_file(tmp_path):
    assert scheme_path_for(tmp_path) == tmp_path / "scheme.json"
    (tmp_path / "x.jsonl").write_text("", encoding="utf-8")
    assert scheme_path_for(tmp_path / "x.jsonl") == tmp_path / "scheme.json"


# --- the labelled set: each problem is a LabelError naming file:line --------------------------------

GOOD = [record("China and Russia hailed a new era of partnership.", "pro"),
        record("Critics said the plan ignores the war's causes.", "con")]


@pytest.mark.parametrize(("bad_line", "expected"), [
    (record("A fine sentence about trade.", "sideways"), r"set\.jsonl:3: unknown label 'sideways'"),
    (record("   ", "pro"), r"set\.jsonl:3: empty or missing 'text'"),
    (json.dumps({"label": "pro"}), r"set\.jsonl:3: empty or missing 'text'"),
    ('{"text": "broken", "label": "pro"', r"set\.jsonl:3: malformed JSON"),
    ('["a", "list"]', r"set\.jsonl:3: expected a JSON object"),
    (record("china and russia hailed a new   era of partnership.", "pro"),
     r"set\.jsonl:3: duplicate text, same text as set\.jsonl:1"),
    (record("China and Russia hailed a new era of partnership.", "con"),
     r"set\.jsonl:3: conflicting labels, same text as set\.jsonl:1"),
])
def test_invalid_labelled_line_names_file_and_line(tmp_path, bad_line, expected):
    folder = write_labels(tmp_path, [*GOOD, bad_line])
    with pytest.raises(LabelError, match=expected):
        read(folder)


def test_duplicates_are_found_across_files(tmp_path):
    folder = write_labels(tmp_path, GOOD, name="a.jsonl")
    (folder / "b.jsonl").write_text(GOOD[1] + "\n", encoding="utf-8")
    with pytest.raises(LabelError, match=r"b\.jsonl:1: duplicate text, same text as a\.jsonl:2"):
        read(folder)


def test_every_problem_is_reported_at_once(tmp_path):
    bad = [record(f"Sentence number {i} about trade.", "nope") for i in range(7)]
    folder = write_labels(tmp_path, [*GOOD, *bad])
    with pytest.raises(LabelError) as caught:
        read(folder)
    message = str(caught.value)
    assert "set.jsonl:3:" in message and "set.jsonl:7:" in message
    assert "and 2 more" in message


def test_empty_labelled_set_is_refused(tmp_path):
    folder = write_labels(tmp_path, [""])
    with pytest.raises(LabelError, match="empty"):
        read(folder)


def test_labels_folder_without_jsonl_files_is_refused(tmp_path):
    (tmp_path / "scheme.json").write_text(json.dumps(SCHEME), encoding="utf-8")
    with pytest.raises(LabelError, match=r"no labelled \*\.jsonl"):
        read_examples(tmp_path, load_scheme(tmp_path))


def test_examples_are_normalised_and_grouped(tmp_path):
    folder = write_labels(tmp_path, [
        record("  Talks   resumed\nin Geneva. ", "con"),
        record("A batch example.", "pro", batch="b-1"),
        json.dumps({"text": "No outlet given.", "label": "pro", "doc": "d.txt"}),
    ])
    talks, batch, no_outlet = read(folder)
    assert talks.text == "Talks resumed in Geneva."
    assert (talks.outlet, talks.source, talks.group, talks.where) == ("Example", "test", "Example", "set.jsonl:1")
    assert batch.group == "b-1"  # the authoring batch is what grouped CV keeps apart
    assert (no_outlet.outlet, no_outlet.group) == ("unknown", "d.txt")


# --- the shipped set ---------------------------------------------------------------------------------

def test_shipped_labelled_set_validates_and_is_big_enough():
    scheme = load_scheme(LABELS)
    examples = read_examples(LABELS, scheme)
    counts = label_counts(examples, scheme)
    assert len(examples) >= 250
    assert set(counts) == set(scheme.labels)
    assert min(counts.values()) >= 60, counts


def test_labelled_set_hash_is_stable_under_file_reordering(tmp_path):
    scheme = load_scheme(LABELS)
    original = labelled_set_hash(read_examples(LABELS, scheme))
    lines = [line for file in sorted(LABELS.glob("*.jsonl")) for line in file.read_text("utf-8").splitlines()
             if line.strip()]
    random.Random(0).shuffle(lines)
    shuffled = tmp_path / "labels"
    shuffled.mkdir()
    shutil.copy(LABELS / "scheme.json", shuffled / "scheme.json")
    # the same records in a different order, split over differently named files
    (shuffled / "first.jsonl").write_text("\n".join(lines[:100]) + "\n", encoding="utf-8")
    (shuffled / "second.jsonl").write_text("\n".join(lines[100:]) + "\n", encoding="utf-8")
    assert labelled_set_hash(read_examples(shuffled, scheme)) == original


def test_labelled_set_hash_changes_with_a_label(tmp_path):
    folder = write_labels(tmp_path, GOOD)
    before = labelled_set_hash(read(folder))
    write_labels(tmp_path, [GOOD[0], GOOD[1].replace('"con"', '"pro"')])
    assert labelled_set_hash(read(folder)) != before


# --- the scheme is data --------------------------------------------------------------------------------

def test_renaming_a_label_in_a_copied_scheme_and_set_works(tmp_path):
    copy = tmp_path / "labels"
    shutil.copytree(LABELS, copy, ignore=shutil.ignore_patterns("*.md"))
    for file in copy.iterdir():
        if file.is_file():  # the relevance/ folder holds off_topic paragraphs: no framing label to rename
            file.write_text(file.read_text("utf-8").replace('"neutral_wire"', '"wire_report"'), encoding="utf-8")
    scheme = load_scheme(copy)
    examples = read_examples(copy, scheme)
    assert scheme.labels == ("state_aligned", "western_critical", "wire_report")
    original = label_counts(read_examples(LABELS, load_scheme(LABELS)), load_scheme(LABELS))
    assert label_counts(examples, scheme)["wire_report"] == original["neutral_wire"]
    # and the old name is now refused, naming where it appears
    (copy / "extra.jsonl").write_text(record("A fresh sentence about grain exports.", "neutral_wire") + "\n",
                                      encoding="utf-8")
    with pytest.raises(LabelError, match=r"extra\.jsonl:1: unknown label 'neutral_wire'"):
        read_examples(copy, scheme)


def test_training_follows_a_renamed_scheme(tmp_path, fake_embedder):
    from framing.classify import HeadOptions, load_model
    from framing.pipeline import train

    lines = [record(f"Partnership sentence {i} on win-win ties.", "for", batch=f"g{i % 3}") for i in range(8)]
    lines += [record(f"Hegemony sentence {i} on NATO sanctions.", "against", batch=f"g{i % 3}") for i in range(8)]
    folder = write_labels(tmp_path / "labels", lines,
                          scheme={"name": "renamed", "labels": [{"name": "for"}, {"name": "against"}]})
    result = train(folder, tmp_path / "model", fake_embedder, HeadOptions(n_folds=2))
    assert result.counts == {"for": 8, "against": 8}
    model = load_model(tmp_path / "model")
    assert model.labels == ("for", "against")
    assert model.meta.scheme_name == "renamed"
