"""The `framing` command through Typer's CliRunner: exit codes, stdout, stderr and the files written.

Anything that embeds uses the real packaged MiniLM, loaded once per session (real_embedder,
trained_model); the scoring run over the seeds happens once per module.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from framing.classify import meta_digest
from framing.cli import app
from framing.readers import read_documents
from framing.segment import segment

ROOT = Path(__file__).resolve().parent.parent
LABELS = ("state_aligned", "western_critical", "neutral_wire")
SEED_OUTLETS = {"Al Mayadeen", "Global Times", "Ednews", "MENAFN", "unknown"}
INTERVAL = r"\d+% \[\d+%–\d+%\]"
BINARY = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def invoke(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args], prog_name="framing")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def assert_one_error(result, exit_code: int, *, warnings: int = 0) -> str:
    """Non-zero exit, one 'framing: error:' line last on stderr (after `warnings` warning lines), no traceback."""
    assert result.exit_code == exit_code, (result.exit_code, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an escaped exception
    lines = result.stderr.splitlines()
    assert len(lines) == warnings + 1, result.stderr
    assert all(line.startswith("framing: warning: ") for line in lines[:-1]), result.stderr
    assert lines[-1].startswith("framing: error: ")
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    return lines[-1]


# --- help ------------------------------------------------------------------------------------------------

def _commands() -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = [()]

    def walk(prefix: tuple[str, ...], command) -> None:
        if hasattr(command, "commands"):  # a group (typer vendors its own click: no isinstance here)
            for name, sub in command.commands.items():
                found.append((*prefix, name))
                walk((*prefix, name), sub)

    walk((), typer.main.get_command(app))
    return found


def _command(path: tuple[str, ...]):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def _flat(text: str) -> str:
    """Help text without Rich's box drawing and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─┌┐└┘]", " ", text).split())


def test_every_command_is_found():
    assert {("train",), ("score",), ("evaluate",)} <= set(_commands())


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p) or "framing")
def test_help_describes_every_option(path):
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    text = _flat(result.stdout)
    command = _command(path)
    assert command.help and _flat(command.help).split(".")[0] in text
    for param in command.params:
        if param.name == "help":
            continue
        assert param.help and param.help.strip(), f"{' '.join(path)}: {param.name} has no help text"
        assert _flat(param.help) in text, param.name
        for opt in param.opts if param.param_type_name == "option" else []:
            assert opt in text, opt
    if hasattr(command, "commands"):
        for name in command.commands:
            assert name in text


def test_no_arguments_shows_help():
    result = invoke()
    assert "Usage:" in result.output
    assert "score" in result.output


# --- train --------------------------------------------------------------------------------------------------

@pytest.fixture
def small_labels(tmp_path) -> Path:
    """12 paragraphs per label, copied from the shipped set, with the shipped scheme."""
    folder = tmp_path / "labels"
    folder.mkdir()
    shutil.copy(ROOT / "labels" / "scheme.json", folder / "scheme.json")
    picked: dict[str, list[str]] = {label: [] for label in LABELS}
    for line in (ROOT / "labels" / "authored_a.jsonl").read_text("utf-8").splitlines():
        label = json.loads(line)["label"]
        if len(picked[label]) < 12:
            picked[label].append(line)
    (folder / "subset.jsonl").write_text("\n".join(sum(picked.values(), [])) + "\n", encoding="utf-8")
    return folder


def test_train_with_a_fast_embedder_says_what_its_threshold_was_chosen_on(small_labels, tmp_path, monkeypatch):
    from conftest import FakeEmbedder
    from test_embed_static import WORDS, write_static_folder

    from framing.embed import _REGISTERED

    monkeypatch.setitem(_REGISTERED, FakeEmbedder.name, FakeEmbedder)  # the full model's embedder, by name

    static = tmp_path / "static"
    write_static_folder(static, np.random.default_rng(0).normal(size=(len(WORDS), 6)).astype(np.float32))
    result = invoke("train", "--labels", small_labels, "--model", tmp_path / "model", "--folds", 3,
                    "--embedder", FakeEmbedder.name, "--fast-embedder", static)
    assert result.exit_code == 0, result.output
    # all authored rows: the threshold is chosen on them, and the line says so rather than "real copy"
    assert re.search(r"fast path: MiniLM re-scores paragraphs whose static margin is below \d\.\d{3} \(chosen on "
                     r"all labelled rows \(there is no real copy\): at most 0\.01 macro-F1 below MiniLM there, "
                     r"re-scoring \d+% of it\)", result.stdout), result.stdout
    assert (tmp_path / "model" / "fast" / "model.json").is_file()


def test_train_prints_metrics_and_writes_the_model(small_labels, tmp_path, real_embedder):
    model = tmp_path / "model"
    # the embedder's full name: the session's already-loaded MiniLM is reused
    result = invoke("train", "--labels", small_labels, "--model", model, "--folds", 3,
                    "--embedder", real_embedder.name)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "labelled paragraphs: 36" in out
    assert "No real articles (source: seed or user) in the labelled set" in out  # all authored: said so
    assert re.search(r"Grouped CV.*: macro-F1 \d\.\d{3}", out)
    for label in LABELS:  # per-label precision, recall, F1, support
        assert len(re.findall(rf"^\s+{label}\s+\d\.\d{{3}}\s+\d\.\d{{3}}\s+\d\.\d{{3}}\s+12$", out, re.M)) == 1
    assert out.count("confusion (rows: true, columns: predicted)") == 1
    for label in LABELS:  # confusion rows: a label and three counts that add up to its support
        rows = re.findall(rf"^\s+{label}((?:\s+\d+){{3}})$", out, re.M)
        assert len(rows) == 1 and all(sum(map(int, row.split())) == 12 for row in rows)
    assert sorted(p.name for p in model.iterdir()) == ["MODEL_CARD.md", "calibration.json", "head.json", "head.npz",
                                                       "labelled.json", "labelled.npz", "model.json"]
    meta = json.loads((model / "model.json").read_text("utf-8"))
    assert meta["scheme"]["labels"] == list(LABELS)
    assert meta["labelled_set"]["n"] == 36
    assert meta["embedder"]["name"] == real_embedder.name
    assert "macro-F1" in (model / "MODEL_CARD.md").read_text("utf-8")


def test_train_with_an_unknown_label_fails_cleanly(small_labels, tmp_path):
    bad = small_labels / "subset.jsonl"
    bad.write_text(bad.read_text("utf-8") + json.dumps({"text": "A new sentence.", "label": "pro_western"}) + "\n",
                   encoding="utf-8")
    result = invoke("-q", "train", "--labels", small_labels, "--model", tmp_path / "model")
    line = assert_one_error(result, 3)
    assert "subset.jsonl:37" in line and "pro_western" in line
    assert not (tmp_path / "model").exists()


# --- score --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scored(tmp_path_factory, trained_model):
    """`framing score <copy of seeds> --model <trained model> --out <folder>`, run once for the module."""
    base = tmp_path_factory.mktemp("scored")
    seeds = base / "seeds"
    shutil.copytree(ROOT / "seeds", seeds)
    out = base / "out"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FRAMING_CACHE_DIR", str(base / "cache"))
        result = invoke("score", seeds, "--model", trained_model, "--out", out)
    assert result.exit_code == 0, result.output
    return result, out, seeds


def test_score_prints_a_table_with_intervals(scored):
    result, _, _ = scored
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["outlet", "docs", "paras"]
    for outlet in ("Al Mayadeen", "Global Times", "MENAFN"):
        (row,) = [line for line in lines if line.startswith(outlet + " ")]
        assert len(re.findall(INTERVAL, row)) == 3, row


def test_score_writes_paragraphs_jsonl(scored):
    _, out, _ = scored
    paragraphs = read_jsonl(out / "paragraphs.jsonl")
    assert len(paragraphs) == 198  # every paragraph of the five seeds, each once
    assert {p["outlet"] for p in paragraphs} == SEED_OUTLETS
    for p in paragraphs:
        assert {"doc", "outlet", "index", "text", "label", "scores", "off_topic", "counted", "voice"} <= set(p)
        assert set(p["scores"]) == set(LABELS)
        assert sum(p["scores"].values()) == pytest.approx(1, abs=1e-3)
        if p["label"] == "off_topic":  # the relevance stage: left out of the shares, and counted
            assert p["counted"] is False and p["off_topic"] >= 0.5
        else:
            assert p["label"] == max(p["scores"], key=p["scores"].get) and p["counted"] is True
    assert sum(p["label"] == "off_topic" for p in paragraphs) <= 3  # seed paragraphs are all on topic
    menafn = [p for p in paragraphs if p["outlet"] == "MENAFN"]
    assert [p["index"] for p in menafn] == list(range(10))
    assert menafn[0]["text"].startswith("Vladimir Putin and Xi Jinping, leaders of Russia and China")


def test_score_writes_outlets_json(scored):
    _, out, _ = scored
    document = json.loads((out / "outlets.json").read_text("utf-8"))
    outlets = document["outlets"]
    assert [o["outlet"] for o in outlets] == sorted(SEED_OUTLETS)
    assert sum(o["paragraphs"] + sum(o["left_out"].values()) for o in outlets) == 198
    by_name = {o["outlet"]: o for o in outlets}
    assert (by_name["Al Mayadeen"]["documents"], by_name["Al Mayadeen"]["paragraphs"]) == (1, 82)
    for o in outlets:
        assert set(o) >= {"outlet", "documents", "paragraphs", "share", "mean_score", "ci", "prevalence",
                          "prevalence_ci", "method"}
        assert o["method"] == "acc"  # corrected with the calibration saved at train time
        # Each value is written rounded to 6 places, so three of them may sum to 1 +- 1.5e-6.
        assert sum(o["share"].values()) == pytest.approx(1, abs=2e-6)
        assert sum(o["prevalence"].values()) == pytest.approx(1, abs=2e-6)
        assert sum(o["mean_score"].values()) == pytest.approx(1, abs=1e-3)  # from scores rounded to 4 places
        for label in LABELS:
            low, high = o["ci"][label]
            assert low <= o["share"][label] <= high
            low, high = o["prevalence_ci"][label]
            assert low <= o["prevalence"][label] <= high and high > 0
    pairs = {(c["outlet"], c["other"]) for c in document["comparisons"]}
    assert len(pairs) == len(SEED_OUTLETS) * (len(SEED_OUTLETS) - 1) // 2  # five outlets: every pair
    assert {c["label"] for c in document["comparisons"]} == set(LABELS)
    for c in document["comparisons"]:
        assert c["ci"][0] <= c["difference"] <= c["ci"][1]
        assert c["excludes_zero"] == (c["ci"][0] > 0 or c["ci"][1] < 0)
    assert "classifier's errors" in document["interval_note"]


def test_score_writes_report_md_with_table_and_evidence(scored):
    _, out, _ = scored
    report = (out / "report.md").read_text("utf-8")
    assert "| outlet | documents | paragraphs | " + " | ".join(LABELS) + " |" in report
    for outlet in SEED_OUTLETS:
        assert re.search(rf"^\| {outlet} \| \d+ \| \d+ \| {INTERVAL} \|", report, re.M), outlet
        assert f"### {outlet}" in report
    assert "## Evidence" in report
    assert re.search(r"^> — \S+ ¶\d+, p = \d\.\d\d$", report, re.M)  # a quoted paragraph with its source


def test_score_writes_documents_jsonl_with_dropped_line_counts(scored):
    _, out, seeds = scored
    documents = {Path(d["doc"]).name: d for d in read_jsonl(out / "documents.jsonl")}
    assert len(documents) == 5
    for document in read_documents([seeds]):
        expected = segment(document)
        record = documents[Path(document.id).name]
        assert record["dropped_lines"] == expected.n_dropped
        assert record["dropped"] == expected.dropped
        assert record["paragraphs"] == len(expected.paragraphs)
    assert documents["001_d74d3e3d1cd4878b.txt"]["dropped_lines"] > 100  # menus, tickers, related stories
    assert documents["004_6d19e31ed154d90d.txt"]["publisher"] == "Khaama Press"


def test_exact_duplicate_within_an_outlet_is_scored_once(tmp_path, trained_model):
    shared = "Officials from both countries met in Geneva on Tuesday and agreed to continue the talks next month."
    own = "The delegations also discussed grain exports and the safety of shipping in the Black Sea region."
    for name, text in (("a.txt", f"{shared}\n\n{own}\n"), ("b.txt", f"{shared}\n"), ("c.txt", f"{shared}\n")):
        (tmp_path / "in" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_text(text, encoding="utf-8")
    (tmp_path / "in" / "sources.csv").write_text("file,outlet\na.txt,Same\nb.txt,Same\nc.txt,Other\n",
                                                encoding="utf-8")
    result = invoke("score", tmp_path / "in", "--model", trained_model, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    paragraphs = read_jsonl(tmp_path / "out" / "paragraphs.jsonl")
    assert sorted((p["outlet"], p["text"] == shared) for p in paragraphs) == \
        [("Other", True), ("Same", False), ("Same", True)]  # once per outlet
    documents = {Path(d["doc"]).name: d for d in read_jsonl(tmp_path / "out" / "documents.jsonl")}
    assert (documents["b.txt"]["paragraphs"], documents["b.txt"]["duplicates"]) == (0, 1)
    outlets = {o["outlet"]: o for o in json.loads((tmp_path / "out" / "outlets.json").read_text("utf-8"))["outlets"]}
    assert outlets["Same"]["paragraphs"] == 2


# --- evaluate -------------------------------------------------------------------------------------------------

@pytest.fixture
def labelled_file(tmp_path) -> Path:
    lines = (ROOT / "labels" / "authored_b.jsonl").read_text("utf-8").splitlines()[:24]
    records = [dict(json.loads(line), id=f"rec-{i}") for i, line in enumerate(lines)]
    path = tmp_path / "eval.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_evaluate_prints_metrics_json_and_predictions(labelled_file, tmp_path, trained_model):
    plain = invoke("evaluate", labelled_file, "--model", trained_model)
    assert plain.exit_code == 0, plain.output
    assert re.search(r"24 records: macro-F1 \d\.\d{3}", plain.stdout)
    assert "confusion (rows: true, columns: predicted)" in plain.stdout

    predictions = tmp_path / "predictions.jsonl"
    as_json = invoke("evaluate", labelled_file, "--model", trained_model, "--json", "--predictions", predictions)
    assert as_json.exit_code == 0, as_json.output
    metrics = json.loads(as_json.stdout)
    assert metrics["n"] == 24
    assert 0 <= metrics["macro_f1"] <= 1
    assert np.array(metrics["confusion"]).sum() == 24
    assert metrics["labels"] == list(LABELS)
    rows = read_jsonl(predictions)
    assert [r["id"] for r in rows] == [f"rec-{i}" for i in range(24)]
    gold = [json.loads(line) for line in labelled_file.read_text("utf-8").splitlines()]
    for row, record in zip(rows, gold):
        assert set(row) == {"id", "text", "label", "predicted", "scores"}
        assert (row["text"], row["label"]) == (" ".join(record["text"].split()), record["label"])
        assert row["predicted"] == max(row["scores"], key=row["scores"].get)
        assert sum(row["scores"].values()) == pytest.approx(1, abs=1e-3)


def test_evaluate_with_a_label_outside_the_model_fails_cleanly(labelled_file, trained_model):
    labelled_file.write_text(labelled_file.read_text("utf-8") + '{"text": "New.", "label": "other"}\n',
                             encoding="utf-8")
    line = assert_one_error(invoke("evaluate", labelled_file, "--model", trained_model), 3)  # a labelled-set error
    assert "eval.jsonl:25" in line and "'other'" in line


# --- a model that does not fit its embedder ----------------------------------------------------------------

def _edited_model(trained_model: Path, tmp_path: Path, edit) -> Path:
    copy = tmp_path / "edited-model"
    shutil.copytree(trained_model, copy)
    meta = json.loads((copy / "model.json").read_text("utf-8"))
    edit(meta)  # model.json only: head.skops and its hash are untouched
    meta["meta_sha256"] = meta_digest(meta)  # a deliberate edit, re-hashed: the fit checks must still refuse it
    (copy / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    return copy


def test_model_naming_another_embedder_is_refused(tmp_path, trained_model, seeds_copy):
    model = _edited_model(trained_model, tmp_path,
                          lambda m: m["embedder"].update(name="sentence-transformers/all-mpnet-base-v2"))
    result = invoke("score", seeds_copy, "--model", model, "--out", tmp_path / "out")
    line = assert_one_error(result, 4)
    assert "all-mpnet-base-v2" in line
    assert not (tmp_path / "out" / "outlets.json").exists()


def test_model_expecting_another_dimension_is_refused(tmp_path, trained_model):
    model = _edited_model(trained_model, tmp_path, lambda m: m["embedder"].update(dimension=768))
    story = tmp_path / "story.txt"
    story.write_text("Officials from both countries met in Geneva on Tuesday and agreed to meet again.\n",
                     encoding="utf-8")
    result = invoke("score", story, "--model", model, "--out", tmp_path / "out")
    line = assert_one_error(result, 4)
    assert "768" in line and "384" in line
    assert not (tmp_path / "out" / "outlets.json").exists()


def test_check_model_fits_compares_name_and_dimension(fake_embedder):
    from framing.classify import FORMAT_VERSION, ModelMeta
    from framing.errors import ModelError

    def meta(name: str, dimension: int) -> ModelMeta:
        return ModelMeta.from_json({"format_version": FORMAT_VERSION, "scheme": {"labels": list(LABELS)},
                                    "embedder": {"name": name, "dimension": dimension}})

    meta("fake-embedder", 16).check_fits(fake_embedder)
    with pytest.raises(ModelError, match="trained on embeddings of 'other'"):
        meta("other", 16).check_fits(fake_embedder)
    with pytest.raises(ModelError, match="32-dimensional"):
        meta("fake-embedder", 32).check_fits(fake_embedder)


# --- bad input: one line on stderr, a non-zero exit, no traceback --------------------------------------------

def test_score_missing_path(tmp_path, trained_model):
    line = assert_one_error(invoke("score", tmp_path / "nowhere", "--model", trained_model,
                                   "--out", tmp_path / "out"), 2)
    assert "nowhere" in line and "no such file or folder" in line


def test_score_empty_folder(tmp_path, trained_model):
    (tmp_path / "empty").mkdir()
    line = assert_one_error(invoke("score", tmp_path / "empty", "--model", trained_model,
                                   "--out", tmp_path / "out"), 2)
    assert "no readable documents" in line


def test_score_folder_with_only_a_binary_file(tmp_path, trained_model):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "photo.txt").write_bytes(BINARY)
    result = invoke("score", tmp_path / "in", "--model", trained_model, "--out", tmp_path / "out")
    line = assert_one_error(result, 2, warnings=1)
    assert "photo.txt" in result.stderr.splitlines()[0] and "binary" in result.stderr.splitlines()[0]
    assert "no readable documents" in line


def test_score_malformed_jsonl_line(tmp_path, trained_model):
    (tmp_path / "feed.jsonl").write_text('{"text": "A fine first record about the talks."}\n{"text": \n',
                                         encoding="utf-8")
    line = assert_one_error(invoke("score", tmp_path / "feed.jsonl", "--model", trained_model,
                                   "--out", tmp_path / "out"), 2)
    assert "feed.jsonl:2" in line and "--bad-lines skip" in line


def test_score_missing_model(tmp_path, seeds_copy):
    line = assert_one_error(invoke("score", seeds_copy, "--model", tmp_path / "no-model",
                                   "--out", tmp_path / "out"), 4)
    assert "no model at" in line and "framing train" in line


def test_score_bad_lines_value(tmp_path, seeds_copy):
    line = assert_one_error(invoke("score", seeds_copy, "--bad-lines", "ignore"), 2)
    assert "--bad-lines" in line
