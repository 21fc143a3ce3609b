"""The scoring core: map (score_batch), reduce (mergeable tallies and evidence), commit (one staged swap
under a lock), and the cases where the first version lost or mixed a user's files (issue 15, cases 1-12).

The embedder is the fake one throughout (registered under its name, so the CLI uses it in-process too):
what is tested here is what happens to files and counts, not what MiniLM thinks.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, FakeEmbedder
from typer.testing import CliRunner

from framing import embed
from framing.aggregate import DocumentTally, Evidence, merge_tallies
from framing.classify import META_FILE, load_model, meta_digest
from framing.cli import app
from framing.embed import _folder_digest
from framing.errors import ModelError
from framing.files import folder_lock
from framing.pipeline import evaluate, score_paths, train
from framing.records import Paragraph
from framing.scoring import Deduplicator, ScoredBatch, score_batch

BODY = ("The two delegations met in Geneva on Tuesday and agreed to continue their talks on grain shipments "
        "through the Black Sea next month, officials said.")
OTHER = "Separately, the ministry published figures showing that wheat exports rose by a tenth in the third quarter."
OUTPUTS = {"paragraphs.jsonl", "documents.jsonl", "dropped.jsonl", "outlets.json", "report.md", "report.html",
           "outlets.csv", "paragraphs.csv", "calibration.json", "labelled.json", "prevalence.png"}


@pytest.fixture
def model(fake_trained_model) -> Path:
    return fake_trained_model


@pytest.fixture(autouse=True)
def _fake_embedder_by_name(monkeypatch):
    monkeypatch.setitem(embed._REGISTERED, FakeEmbedder.name, FakeEmbedder)


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], prog_name="framing")


def one_error(result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.stderr)
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith("framing: error: ") and "Traceback" not in result.stderr, result.stderr
    assert all(line.startswith("framing: warning: ") for line in lines[:-1]), result.stderr
    return lines[-1]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def outlets(out: Path) -> dict[str, dict]:
    return {o["outlet"]: o for o in json.loads((out / "outlets.json").read_text("utf-8"))["outlets"]}


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


@pytest.fixture
def articles(tmp_path) -> Path:
    write(tmp_path / "in" / "a.txt", f"{BODY}\n\n{OTHER}\n")
    return tmp_path / "in"


@pytest.fixture
def earlier(tmp_path, articles, model) -> Path:
    """A reports folder from an earlier, successful run."""
    out = tmp_path / "reports"
    score_paths([articles], model, out, embedder=FakeEmbedder())
    assert set(snapshot(out)) == OUTPUTS
    return out


# --- map and reduce -----------------------------------------------------------------------------------

def test_score_batch_is_a_pure_function_of_its_batch(model):
    loaded = load_model(model)
    paragraphs = [Paragraph(doc=f"d{i}", outlet="X", index=0, text=text) for i, text in enumerate([BODY, OTHER])]
    whole = score_batch(paragraphs, loaded, FakeEmbedder())
    parts = [score_batch(paragraphs[i:i + 1], loaded, FakeEmbedder()) for i in range(2)]
    assert isinstance(whole, ScoredBatch) and len(whole) == 2
    np.testing.assert_allclose(whole.proba, np.vstack([p.proba for p in parts]), atol=1e-12)
    assert whole.languages == ("en", "en")
    assert score_batch([], loaded, FakeEmbedder()).proba.shape == (0, len(loaded.labels))


def test_tallies_merge_in_any_order_to_the_same_counts():
    rng = np.random.default_rng(0)
    parts = [DocumentTally(f"doc{i % 3}", "X", rng.dirichlet([1, 1, 1], size=4)) for i in range(9)]
    forward, backward = merge_tallies(parts), merge_tallies(parts[::-1])
    assert forward.keys() == backward.keys()
    for key in forward:
        np.testing.assert_array_equal(forward[key].counts, backward[key].counts)
        assert forward[key].n == backward[key].n == 12
    with pytest.raises(ValueError, match="two documents"):
        parts[0].merge(parts[1])


def test_evidence_merges_and_breaks_ties_by_content_not_arrival():
    proba = np.array([0.7, 0.2, 0.1])
    texts = [f"paragraph {c}" for c in "edcbaf"]
    one, other = Evidence(per_label=3), Evidence(per_label=3)
    for i, text in enumerate(texts):  # equal probabilities: only the text can decide
        (one if i % 2 else other).offer("X", "a", proba, f"d{i}", 0, text)
    merged, reverse = one.merge(other), other.merge(one)
    assert [e.text for e in merged.best("X", "a")] == [e.text for e in reverse.best("X", "a")]
    single = Evidence(per_label=3)
    for i, text in reversed(list(enumerate(texts))):
        single.offer("X", "a", proba, f"d{i}", 0, text)
    assert [e.text for e in single.best("X", "a")] == [e.text for e in merged.best("X", "a")]


def test_deduplication_is_per_outlet_and_its_own_step():
    dedupe = Deduplicator()
    first = [Paragraph("d1", "A", 0, BODY), Paragraph("d1", "A", 1, BODY), Paragraph("d2", "B", 0, BODY)]
    assert [(p.outlet, p.index) for p in dedupe.fresh(first)] == [("A", 0), ("B", 0)]
    assert dedupe.fresh([Paragraph("d3", "A", 0, BODY)]) == []


# --- case 1: the same id under two outlets --------------------------------------------------------------

@pytest.mark.parametrize("layout", ["one-file", "two-files"])
def test_records_sharing_an_id_stay_apart_in_their_own_outlets(tmp_path, model, layout):
    a = {"id": "42", "outlet": "Alpha Wire", "text": BODY}
    b = {"id": "42", "outlet": "Beta Daily", "text": OTHER}
    if layout == "one-file":
        write(tmp_path / "in" / "feed.jsonl", f"{json.dumps(a)}\n{json.dumps(b)}\n")
    else:
        write(tmp_path / "in" / "one.jsonl", json.dumps(a) + "\n")
        write(tmp_path / "in" / "two.jsonl", json.dumps(b) + "\n")
    out = tmp_path / "out"
    score_paths([tmp_path / "in"], model, out, embedder=FakeEmbedder())
    found = outlets(out)
    assert {name: (o["documents"], o["paragraphs"]) for name, o in found.items()} == \
        {"Alpha Wire": (1, 1), "Beta Daily": (1, 1)}
    rows = jsonl(out / "paragraphs.jsonl")
    assert [(r["id"], r["outlet"]) for r in rows] == [("42", "Alpha Wire"), ("42", "Beta Daily")]
    assert len({r["doc"] for r in rows}) == 2  # two keys, one user id


# --- case 2: a failed or interrupted run leaves every earlier output as it was ---------------------------

def test_a_run_that_fails_after_reading_leaves_all_earlier_reports(tmp_path, earlier, model):
    before = snapshot(earlier)
    write(tmp_path / "menus" / "page.txt", "Home\nNews\nSport\nContact us\n")  # read, then nothing to score
    result = invoke("score", tmp_path / "menus", "--model", model, "--out", earlier)
    assert "no article paragraphs found to score" in one_error(result, 2)
    assert snapshot(earlier) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging, no lock


@pytest.mark.parametrize("error", [KeyboardInterrupt(), OSError(errno.ENOSPC, "No space left on device")])
def test_an_interrupt_or_a_full_disk_while_writing_reports_leaves_all_earlier_reports(
        tmp_path, earlier, articles, model, monkeypatch, error):
    # The paragraphs are written, then writing outlets.json fails: nothing of the new run may appear.
    from framing import files

    before = snapshot(earlier)

    class Full:  # what writing to a full disk does: the write call fails
        def __init__(self, stream):
            self.stream = stream

        def write(self, _text):
            raise error

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.stream.close()

    def failing_open(path, *args, **kwargs):
        stream = open(path, *args, **kwargs)  # noqa: SIM115 (closed by the caller's with)
        return Full(stream) if Path(path).name == "outlets.json" else stream

    monkeypatch.setattr(files, "open", failing_open, raising=False)
    write(articles / "b.txt", OTHER + " A new article.\n")
    if isinstance(error, OSError):
        result = invoke("score", articles, "--model", model, "--out", earlier)
        assert "the disk is full" in one_error(result, 5)
    else:
        with pytest.raises(KeyboardInterrupt):
            score_paths([articles], model, earlier, embedder=FakeEmbedder())
    assert snapshot(earlier) == before
    assert [p.name for p in earlier.parent.iterdir() if p.name.startswith(".")] == []


# --- case 3: two runs, one output folder -------------------------------------------------------------------

def test_a_second_run_on_a_locked_folder_stops_with_a_clear_message(tmp_path, earlier, articles, model):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = earlier.with_name(f".{earlier.name}.lock")
        lock.write_text(json.dumps({"pid": holder.pid, "started": time.time()}))
        before = snapshot(earlier)
        result = invoke("score", articles, "--model", model, "--out", earlier)
        line = one_error(result, 5)
        assert f"another framing run (pid {holder.pid})" in line
        assert snapshot(earlier) == before and lock.exists()  # the other run's lock is not ours to remove
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_is_taken_over(tmp_path, earlier, articles, model):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = earlier.with_name(f".{earlier.name}.lock")
    lock.write_text(json.dumps({"pid": dead.pid, "started": 0}))
    result = invoke("score", articles, "--model", model, "--out", earlier)
    assert result.exit_code == 0, result.stderr
    assert not lock.exists()


def test_the_lock_is_exclusive_within_a_process_too(tmp_path):
    with folder_lock(tmp_path / "out"):
        other = subprocess.run([sys.executable, "-c", "from pathlib import Path; from framing.files import "
                                f"folder_lock\nwith folder_lock(Path({str(tmp_path / 'out')!r})): pass"],
                               capture_output=True, text=True)
        assert other.returncode != 0 and "another framing run" in other.stderr
    with folder_lock(tmp_path / "out"):  # released on exit
        pass


# --- case 4: --out never holds or replaces inputs, the model or the labelled set -------------------------

@pytest.mark.parametrize("where", ["holds-an-input", "inside-the-input-folder", "the-model", "the-labels"])
def test_out_may_not_hold_or_replace_inputs_models_or_labels(tmp_path, articles, model, where):
    labels = tmp_path / "labels"
    write(labels / "set.jsonl", json.dumps({"text": BODY, "label": "neutral_wire"}) + "\n")
    inputs, out = [articles], {"holds-an-input": tmp_path, "inside-the-input-folder": articles / "reports",
                               "the-model": model, "the-labels": labels}[where]
    if where == "holds-an-input":
        inputs = [articles / "a.txt"]
        out = articles
    before = {p: snapshot(p) for p in (articles, model, labels)}
    result = invoke("--quiet", "score", *inputs, "--model", model, "--out", out)
    line = one_error(result, 5)
    assert "write the reports elsewhere" in line or "write them elsewhere" in line or "framing did not write" in line
    assert {p: snapshot(p) for p in (articles, model, labels)} == before


def test_reports_read_back_as_input_are_refused_not_overwritten(tmp_path, earlier, model):
    # today's case: `framing score reports/documents.jsonl --out reports`
    before = snapshot(earlier)
    result = invoke("score", earlier / "documents.jsonl", "--model", model, "--out", earlier)
    assert "holds the input" in one_error(result, 5)
    assert snapshot(earlier) == before


def test_train_refuses_a_reports_folder_as_the_model(tmp_path, earlier):
    before = snapshot(earlier)
    result = invoke("train", "--labels", ROOT / "labels", "--model", earlier, "--embedder", FakeEmbedder.name,
                    "--folds", 2)
    assert "not a framing model" in one_error(result, 5)
    assert snapshot(earlier) == before


# --- case 5: evaluate --predictions ------------------------------------------------------------------------

@pytest.fixture
def labelled(tmp_path) -> Path:
    rows = [{"id": f"r{i}", "text": text, "label": label} for i, (text, label) in
            enumerate([(BODY, "neutral_wire"), (OTHER, "neutral_wire"),
                       ("A new era of win-win partnership, the two leaders said.", "state_aligned")])]
    return write(tmp_path / "gold.jsonl", "".join(json.dumps(r) + "\n" for r in rows))


def test_predictions_may_not_replace_the_evaluated_file(labelled, model):
    before = labelled.read_bytes()
    result = invoke("evaluate", labelled, "--model", model, "--predictions", labelled)
    assert "is the file being evaluated" in one_error(result, 5)
    assert labelled.read_bytes() == before


def test_predictions_never_overwrite_without_force(tmp_path, labelled, model):
    target = write(tmp_path / "predictions.jsonl", "mine\n")
    result = invoke("evaluate", labelled, "--model", model, "--predictions", target)
    assert "--force" in one_error(result, 5)
    assert target.read_text("utf-8") == "mine\n"
    assert invoke("evaluate", labelled, "--model", model, "--predictions", target, "--force").exit_code == 0
    rows = jsonl(target)
    assert [set(r) for r in rows] == [{"id", "text", "label", "predicted", "scores"}] * 3
    assert [(r["id"], r["label"]) for r in rows] == [("r0", "neutral_wire"), ("r1", "neutral_wire"),
                                                    ("r2", "state_aligned")]


# --- case 6: links out of the input tree are not followed -----------------------------------------------

def test_a_link_out_of_the_input_tree_is_skipped_with_a_warning(tmp_path, articles, model):
    outside = write(tmp_path / "elsewhere" / "secret.txt", "The secret plans of the ministry were " * 5 + ".\n")
    (articles / "link.txt").symlink_to(outside)
    result = invoke("score", articles, "--model", model, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert "link.txt" in result.stderr and "outside" in result.stderr
    assert all("secret" not in r["text"] for r in jsonl(tmp_path / "out" / "paragraphs.jsonl"))


# --- case 7: the user's umask ----------------------------------------------------------------------------

def test_reports_and_models_honour_the_umask(tmp_path, articles):
    labels = tmp_path / "labels"
    write(labels / "scheme.json", (ROOT / "labels" / "scheme.json").read_text("utf-8"))
    lines = (ROOT / "labels" / "authored_a.jsonl").read_text("utf-8").splitlines()
    write(labels / "small.jsonl", "\n".join(lines[:60]) + "\n")
    old = os.umask(0o022)
    try:
        model = tmp_path / "model"
        train(labels, model, FakeEmbedder())
        score_paths([articles], model, tmp_path / "out", embedder=FakeEmbedder())
    finally:
        os.umask(old)
    for folder in (model, tmp_path / "out"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755
        for file in folder.iterdir():
            assert stat.S_IMODE(file.stat().st_mode) == 0o644, file


# --- case 8: a cache that cannot be used is a warning ---------------------------------------------------

def test_an_unusable_cache_is_a_warning_and_the_run_goes_on(tmp_path, articles, model):
    blocker = write(tmp_path / "not-a-folder", "a file where the cache folder should be")
    result = invoke("score", articles, "--model", model, "--out", tmp_path / "out", "--cache-dir", blocker)
    assert result.exit_code == 0, result.stderr
    assert "framing: warning: the embedding cache" in result.stderr and "going on without it" in result.stderr
    assert (tmp_path / "out" / "outlets.json").exists()


# --- case 9: an embedder path that climbs out of the model -------------------------------------------------

def test_the_fingerprint_walks_only_a_model_folder_with_a_bound(tmp_path, monkeypatch):
    started = time.perf_counter()
    assert len(_folder_digest(Path("/"))) == 16  # not a model folder: named, not walked
    assert time.perf_counter() - started < 5  # generous: a walk of / takes minutes
    big = tmp_path / "big"
    write(big / "modules.json", "[]")
    monkeypatch.setattr(embed, "MAX_MODEL_FILES", 10)
    for i in range(11):
        write(big / f"f{i}", "x")
    with pytest.raises(ModelError, match="not a sentence-transformers model folder"):
        _folder_digest(big)


def test_a_model_naming_a_parent_path_as_its_embedder_fails_cleanly(tmp_path, articles, model):
    copy = tmp_path / "model"
    copy.mkdir()
    for file in model.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    meta = json.loads((copy / META_FILE).read_text("utf-8"))
    meta["embedder"]["name"] = "../../"
    meta["meta_sha256"] = meta_digest(meta)
    (copy / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    result = invoke("score", articles, "--model", copy, "--out", tmp_path / "out", "--no-cache")
    assert one_error(result, 4)


# --- case 10: --max-bytes is per article ---------------------------------------------------------------

def test_max_bytes_applies_to_each_record_of_a_jsonl_file(tmp_path, model):
    records = [{"id": f"n{i}", "text": f"{BODY} Item {i}."} for i in range(40)]
    records.insert(7, {"id": "huge", "text": BODY * 50})
    feed = write(tmp_path / "in" / "feed.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    limit = 2000
    assert feed.stat().st_size > limit
    result = invoke("score", feed, "--model", model, "--out", tmp_path / "out", "--max-bytes", limit)
    assert result.exit_code == 0, result.stderr
    assert "feed.jsonl:8" in result.stderr
    assert len({r["id"] for r in jsonl(tmp_path / "out" / "paragraphs.jsonl")}) == 40


# --- case 11: evaluate with absent labels, and with training paragraphs -----------------------------------

def test_macro_f1_averages_the_labels_present_and_says_so(tmp_path, model):
    gold = write(tmp_path / "gold.jsonl", "".join(json.dumps({"text": t, "label": "neutral_wire"}) + "\n"
                                                  for t in (BODY, OTHER)))
    result = invoke("evaluate", gold, "--model", model)
    assert result.exit_code == 0, result.stderr
    assert "macro-F1 averages the labels present" in result.stdout
    assert "state_aligned" in result.stdout.split("macro-F1 averages")[1]
    metrics = evaluate(gold, model, embedder=FakeEmbedder())
    assert metrics.absent_labels == ("state_aligned", "western_critical")
    recall = metrics.metrics.per_label["neutral_wire"]["f1"]
    assert metrics.metrics.macro_f1 == pytest.approx(recall)  # not divided by three


def test_evaluating_training_paragraphs_warns(tmp_path, model):
    seen = [json.loads(line) for line in (ROOT / "labels" / "seeds.jsonl").read_text("utf-8").splitlines()[:5]]
    gold = write(tmp_path / "gold.jsonl", "".join(json.dumps(r) + "\n" for r in seen))
    result = invoke("evaluate", gold, "--model", model)
    assert result.exit_code == 0, result.stderr
    assert "5 of the 5 paragraphs are in the model's training set" in result.stderr


# --- case 12: duplicate documents count as read ------------------------------------------------------------

def test_five_files_with_the_same_text_count_five_documents_and_report_the_repeats(tmp_path, model):
    for i in range(5):
        write(tmp_path / "in" / f"copy{i}.txt", f"{BODY}\n\n{OTHER}\n")
    out = tmp_path / "out"
    score_paths([tmp_path / "in"], model, out, embedder=FakeEmbedder())
    (unknown,) = outlets(out).values()
    assert (unknown["documents"], unknown["paragraphs"]) == (5, 2)
    assert (unknown["duplicates"], unknown["duplicate_documents"]) == (8, 4)
    assert "8 paragraphs were exact repeats" in (out / "report.md").read_text("utf-8")


# --- the small things -------------------------------------------------------------------------------------

def test_version():
    from framing import __version__

    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"framing {__version__}"


def test_a_bad_option_value_is_one_line(tmp_path, articles, model):
    line = one_error(invoke("score", articles, "--model", model, "--bad-lines", "ignore"), 2)
    assert "--bad-lines" in line and "'fail', 'skip'" in line


def test_library_errors_name_no_cli_flag_and_the_cli_adds_it(tmp_path):
    with pytest.raises(ModelError) as caught:
        load_model(tmp_path / "nowhere")
    assert "--" not in str(caught.value) and caught.value.option == "model"
    line = one_error(invoke("score", tmp_path, "--model", tmp_path / "nowhere"), 4)
    assert "--model" in line


# --- the honest headline ------------------------------------------------------------------------------------

def test_train_leads_with_real_articles_held_out_in_turn(model):
    meta = json.loads((model / META_FILE).read_text("utf-8"))
    real = meta["real_copy"]
    assert real["articles"] == 5  # the five seed articles, each held out of its own evaluation
    assert real["macro_f1_interval"][0] <= real["metrics"]["macro_f1"] <= real["macro_f1_interval"][1] or \
        real["macro_f1_interval"][0] <= real["untempered"]["macro_f1"] <= real["macro_f1_interval"][1]
    assert sum(real["metrics"]["per_label"][label]["support"] for label in meta["scheme"]["labels"]) == 198
    assert 0.5 <= meta["head"]["temperature"] <= 4.0
    card = (model / "MODEL_CARD.md").read_text("utf-8")
    assert card.index("On real articles held out of training") < card.index("grouped cross-validation")


def test_plainly_english_text_skips_the_language_model_and_nothing_else_does():
    from framing.scoring import detect_languages, plainly_english

    english = "The minister said on Tuesday that the two countries had signed an agreement on trade and security."
    others = ["Die Vereinbarung wurde von beiden Seiten unterzeichnet, sagte der Minister am Dienstag in Berlin.",
              "Le ministre a déclaré que les deux pays ont signé un accord sur le commerce et la sécurité.",
              "Министр заявил, что две страны подписали соглашение о торговле и безопасности.",
              "the the the the the the the the"]  # English words, but no prose
    assert plainly_english(english) and not any(plainly_english(t) for t in others)
    assert detect_languages([english, others[0], others[2]]) == ["en", "de", "ru"]
