"""active and labelstore: selection as pure functions over hand-written arrays, the append-only labels
file, the CSV round trip, the session's undo, and `framing label` driven through a real pseudo-terminal
(pexpect)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from framing import labelstore
from framing.active import (
    Candidate,
    LabelSession,
    SelectOptions,
    margins,
    open_session,
    select,
    suggestion_rows,
    uncertainty_order,
)
from framing.errors import InputError, LabelError, OutputError
from framing.labelcli import answer_keys, register
from framing.labels import load_scheme, read_examples
from framing.labelstore import append_records, import_labels, write_suggestions

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent

# A tiny labelled set, written for these tests: four paragraphs a label, sharing words (TF-IDF needs min_df=2).
SEED_LABELS = {
    "state_aligned": [
        "The two leaders hailed the comprehensive strategic partnership as a model of win-win cooperation.",
        "Beijing and Moscow will deepen their friendship and partnership, the minister said, praising the results.",
        "The summit opened a new era of friendship between the two great nations, officials said with pride.",
        "Win-win cooperation under the partnership has brought prosperity to both peoples, the ministry said.",
    ],
    "western_critical": [
        "Washington's hegemony and Cold War mentality threaten peace, and NATO expansion fuels confrontation.",
        "The sanctions imposed by the West are illegal and show the double standards of NATO members.",
        "The United States clings to hegemony and a Cold War mentality, pushing bloc confrontation in Asia.",
        "Western sanctions and NATO interference have only deepened the crisis, the commentary said.",
    ],
    "neutral_wire": [
        "The talks lasted three hours, according to officials, and no joint statement was released.",
        "Officials said the meeting would continue on Thursday; analysts cautioned that details remained unclear.",
        "According to the ministry, trade between the two countries rose 4 percent last year.",
        "The agreement still needs approval by parliament, officials said, and critics have raised concerns.",
    ],
}

# Three short invented articles from two invented outlets.
ARTICLES = {
    "harbour.txt": [
        "The port authority said on Monday that cargo volumes rose for the third month in a row.",
        "Officials said the new terminal would open in the spring, according to a statement.",
        "The partnership between the two countries has entered a new era of win-win friendship, the envoy said.",
        "Critics said the sanctions had done little, while NATO officials declined to comment.",
    ],
    "summit.txt": [
        "Delegations from both sides met in the capital for two days of talks on trade and energy.",
        "The hegemony of one country must end, the spokesman said, accusing the West of a Cold War mentality.",
        "Analysts cautioned that the agreement still needed approval by parliament before it could take effect.",
    ],
    "market.txt": [
        "Grain prices fell sharply on Tuesday after the harvest forecast was revised upward by the ministry.",
        "Traders said the partnership deal could lift exports, though details remained unclear to observers.",
        "Western sanctions were blamed by the newspaper for the rise in fuel costs across the region.",
    ],
}
OUTLETS = {"harbour.txt": "Harbour Ledger", "summit.txt": "Harbour Ledger", "market.txt": "Plains Courier"}


@pytest.fixture
def labels_dir(tmp_path) -> Path:
    folder = tmp_path / "labels"
    folder.mkdir()
    shutil.copy(ROOT / "labels" / "scheme.json", folder / "scheme.json")
    lines = [json.dumps({"text": t, "label": label, "outlet": "authored", "source": "authored", "batch": "test"})
             for label, texts in SEED_LABELS.items() for t in texts]
    (folder / "base.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def articles(tmp_path) -> Path:
    folder = tmp_path / "articles"
    folder.mkdir()
    for name, paragraphs in ARTICLES.items():
        (folder / name).write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    rows = ["file,outlet"] + [f"{name},{outlet}" for name, outlet in OUTLETS.items()]
    (folder / "sources.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# --- pure selection functions ------------------------------------------------------------------------

def test_margins_are_top_minus_runner_up():
    proba = np.array([[0.5, 0.3, 0.2], [0.34, 0.33, 0.33], [1.0, 0.0, 0.0], [0.1, 0.1, 0.8]])
    assert margins(proba) == pytest.approx([0.2, 0.01, 1.0, 0.7])


def test_uncertainty_order_least_certain_first_and_ties_keep_reading_order():
    proba = np.array([[0.6, 0.4], [0.9, 0.1], [0.4, 0.6], [0.5, 0.5], [0.6 + 1e-12, 0.4 - 1e-12]])
    # rows 0, 2 and 4 have the same margin (0.2, 4 only by float noise): they keep their order
    assert uncertainty_order(proba).tolist() == [3, 0, 2, 4, 1]


def _unit_rows(*rows):
    vectors = np.array(rows, dtype=float)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_select_skips_near_duplicates_of_each_other_keeping_the_less_certain():
    proba = np.array([[0.55, 0.45], [0.5, 0.5], [0.7, 0.3]])
    embeddings = _unit_rows([1, 0, 0], [1, 0.01, 0], [0, 1, 0])  # rows 0 and 1 nearly the same
    picks = select(proba, embeddings, ["a"] * 3, ["d1", "d2", "d3"], 3)
    assert picks == [1, 2]


def test_select_skips_near_duplicates_of_labelled_paragraphs_and_taken_rows():
    proba = np.array([[0.5, 0.5], [0.55, 0.45], [0.6, 0.4], [0.9, 0.1]])
    embeddings = _unit_rows([1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1])
    labelled = _unit_rows([1, 0.001, 0])  # a near copy of row 0 is labelled already
    assert select(proba, embeddings, ["a"] * 4, ["d"] * 4, 4, labelled=labelled) == [1, 2, 3]
    assert select(proba, embeddings, ["a"] * 4, ["d"] * 4, 4, labelled=labelled, taken=[2]) == [1, 3]


def test_select_goes_round_outlets_then_articles():
    # outlet A holds the four least certain rows, in two articles; outlet B the next two
    proba = np.array([[0.50, 0.50], [0.51, 0.49], [0.52, 0.48], [0.53, 0.47], [0.60, 0.40], [0.61, 0.39]])
    embeddings = np.eye(6)
    outlets = ["A", "A", "A", "A", "B", "B"]
    docs = ["a1", "a1", "a2", "a2", "b1", "b1"]
    picks = select(proba, embeddings, outlets, docs, 4, options=SelectOptions(pool_factor=2))
    assert picks == [0, 4, 2, 5]  # A, B, A's other article, B
    assert select(proba, embeddings, outlets, docs, 1, options=SelectOptions(pool_factor=1)) == [0]


def test_select_counts_taken_rows_towards_diversity():
    proba = np.array([[0.50, 0.50], [0.51, 0.49], [0.60, 0.40]])
    picks = select(proba, np.eye(3), ["A", "A", "B"], ["a", "a", "b"], 1, taken=[0])
    assert picks == [2]  # A has had its pick


def test_answer_keys_avoid_control_keys():
    keys = answer_keys(tuple(f"l{i}" for i in range(12)))
    assert list(keys)[:9] == [str(d) for d in range(1, 10)]
    assert not {"s", "u", "q", "?"} & set(keys)


# --- the append-only labels file ---------------------------------------------------------------------

def test_append_records_appends_and_fsyncs_without_rewriting(tmp_path, monkeypatch):
    path = tmp_path / "labels" / "user.jsonl"
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(labelstore.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    append_records(path, [{"text": "one", "label": "a"}])
    inode, first = path.stat().st_ino, path.read_bytes()
    assert len(synced) == 2  # the file, and the folder that gained its name
    append_records(path, [{"text": "two", "label": "b"}])
    assert path.stat().st_ino == inode and path.read_bytes().startswith(first)
    assert [r["text"] for r in records(path)] == ["one", "two"]
    assert len(synced) == 3


def test_append_after_a_torn_last_line_starts_a_new_line(tmp_path):
    path = tmp_path / "user.jsonl"
    path.write_bytes(b'{"text": "whole", "label": "a"}\n{"text": "to')
    append_records(path, [{"text": "next", "label": "b"}])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[1] == '{"text": "to' and json.loads(lines[2]) == {"text": "next", "label": "b"}


# --- the session: answers one step late, undo, refits ------------------------------------------------

def _session(labels_dir, articles, fake_embedder, **options) -> LabelSession:
    return open_session([articles], labels_dir / "user.jsonl", fake_embedder, SelectOptions(**options))


def test_session_writes_answers_one_step_late_and_undo_takes_back_the_pending_one(labels_dir, articles,
                                                                                   fake_embedder):
    session = _session(labels_dir, articles, fake_embedder)
    user = labels_dir / "user.jsonl"
    first = session.current()
    session.answer("state_aligned")
    assert not user.exists()  # pending: undo can still take it back
    assert session.undo() and session.current() == first
    assert not user.exists()
    session.answer("neutral_wire")
    second = session.current()
    session.answer("western_critical")  # writes the first answer
    written = records(user)
    assert [r["label"] for r in written] == ["neutral_wire"]
    assert session.undo() and session.current() == second
    session.skip()  # writes nothing new: the undone answer is gone
    assert len(records(user)) == 1
    assert session.close() == 1
    c = session.candidates[first]
    assert written[0] == dict(written[0], text=c.text, outlet=c.outlet, doc=c.doc, index=c.index, source="user")
    scheme = load_scheme(labels_dir)
    assert len(read_examples(labels_dir, scheme)) == 13  # the labelled set stays valid with the user's file


def test_session_refits_after_each_batch_and_never_repeats_a_paragraph(labels_dir, articles, fake_embedder):
    fits = []
    session = _session(labels_dir, articles, fake_embedder, refit_every=2)
    session.on_refit = fits.append
    shown = []
    while (row := session.current()) is not None:
        shown.append(row)
        session.answer(["state_aligned", "western_critical", "neutral_wire"][len(shown) % 3])
    assert len(shown) == len(set(shown)) > 4
    assert fits[:2] == [14, 16]  # 12 labelled + 2 answers, then + 4
    session.close()
    assert len(records(labels_dir / "user.jsonl")) == len(shown)


def test_session_without_enough_labels_picks_for_variety(tmp_path, articles, fake_embedder):
    folder = tmp_path / "empty-labels"
    folder.mkdir()
    shutil.copy(ROOT / "labels" / "scheme.json", folder / "scheme.json")
    session = open_session([articles], folder, fake_embedder)
    assert not session.model_ready
    assert session.labels_file == folder / "user.jsonl"
    first = [session.candidates[r].outlet for r in session.pick(2)]
    assert sorted(first) == ["Harbour Ledger", "Plains Courier"]


def test_labelled_paragraphs_are_not_candidates(labels_dir, articles, fake_embedder):
    extra = ARTICLES["summit.txt"][0]
    with open(labels_dir / "base.jsonl", "a", encoding="utf-8") as stream:
        stream.write(json.dumps({"text": extra, "label": "neutral_wire", "outlet": "x", "source": "test"}) + "\n")
    session = _session(labels_dir, articles, fake_embedder)
    texts = [c.text for c in session.candidates]
    assert extra not in texts and ARTICLES["summit.txt"][1] in texts


def test_labels_file_must_be_jsonl(labels_dir, articles, fake_embedder):
    with pytest.raises(InputError, match=r"\.jsonl"):
        open_session([articles], labels_dir / "mine.txt", fake_embedder)


# --- suggest and import ------------------------------------------------------------------------------

def test_suggest_writes_a_new_csv_and_never_overwrites(labels_dir, articles, fake_embedder, tmp_path):
    rows = suggestion_rows(_session(labels_dir, articles, fake_embedder), 4)
    out = write_suggestions(tmp_path / "todo.csv", rows)
    read = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert len(read) == 4 and list(read[0])[:2] == ["label", "text"] and all(r["label"] == "" for r in read)
    assert {"before", "after", "score_neutral_wire", "predicted"} <= set(read[0])
    before = out.read_bytes()
    with pytest.raises(OutputError, match="exists"):
        write_suggestions(out, rows[:1])
    assert out.read_bytes() == before


def _csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["label", "text", "outlet", "doc", "index"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_import_refuses_unknown_labels_naming_rows_and_writes_nothing(labels_dir, tmp_path):
    path = _csv(tmp_path / "in.csv", [
        {"label": "neutral_wire", "text": "A fresh paragraph about ports and trade volumes."},
        {"label": "neutral", "text": "Another paragraph about the weather and the harvest."},
        {"label": "state_aligned", "text": "A third paragraph on friendship."},
        {"label": "neutral", "text": "A fourth paragraph on markets."},
    ])
    before = snapshot(labels_dir)
    with pytest.raises(LabelError, match=r"rows 3, 5: unknown label 'neutral'"):
        import_labels(path, labels_dir / "user.jsonl")
    assert snapshot(labels_dir) == before


def test_import_refuses_conflicts_with_the_labelled_set_and_within_the_file(labels_dir, tmp_path):
    labelled = SEED_LABELS["neutral_wire"][0]
    path = _csv(tmp_path / "in.csv", [
        {"label": "state_aligned", "text": labelled.upper()},  # same text by the labelled set's rules
        {"label": "neutral_wire", "text": "A new paragraph on freight."},
        {"label": "western_critical", "text": "A  new paragraph on freight."},
    ])
    before = snapshot(labels_dir)
    with pytest.raises(LabelError) as error:
        import_labels(path, labels_dir)
    assert "row 2: labelled state_aligned here but neutral_wire in base.jsonl:9" in str(error.value)
    assert "row 4: labelled western_critical here but neutral_wire in row 3" in str(error.value)
    assert snapshot(labels_dir) == before


def test_import_appends_new_rows_and_reports_duplicates_and_unlabelled(labels_dir, tmp_path):
    path = _csv(tmp_path / "in.csv", [
        {"label": "neutral_wire", "text": SEED_LABELS["neutral_wire"][1], "outlet": "X"},
        {"label": " western_critical ", "text": "The bloc's sanctions are hegemony, the column said.",
         "outlet": "Plains Courier", "doc": "market.txt", "index": "2"},
        {"label": "", "text": "Not labelled yet."},
        {"label": "western_critical", "text": "The bloc's sanctions are hegemony, the column said."},
    ])
    result = import_labels(path, labels_dir / "user.jsonl")
    assert result.added == 1 and result.unlabelled == 1
    assert result.duplicates == ("row 2: already labelled neutral_wire in base.jsonl:10", "row 5: same text as row 3")
    [record] = records(labels_dir / "user.jsonl")
    assert record == dict(record, label="western_critical", source="user", outlet="Plains Courier",
                          doc="market.txt", index=2)
    assert len(read_examples(labels_dir, load_scheme(labels_dir))) == 13
    with pytest.raises(LabelError):  # a refused import after a good one leaves the good one as it was
        import_labels(_csv(tmp_path / "bad.csv", [{"label": "x", "text": "y"}]), labels_dir / "user.jsonl")
    assert len(records(labels_dir / "user.jsonl")) == 1


# --- the commands ------------------------------------------------------------------------------------

def _app() -> typer.Typer:
    app = typer.Typer()
    labels_app = typer.Typer()
    app.add_typer(labels_app, name="labels")
    register(app, labels_app)
    return app


def test_label_refuses_a_non_terminal_in_one_line(labels_dir, articles):
    result = CliRunner().invoke(_app(), ["label", str(articles), "--labels", str(labels_dir / "user.jsonl")],
                                input="1\n")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "framing: error: `framing label` needs an interactive terminal on stdin and stdout (use `framing "
        "suggest` to label in a spreadsheet)"]
    assert not (labels_dir / "user.jsonl").exists()


def test_labels_import_command_reports_refusal_with_exit_3(labels_dir, tmp_path):
    path = _csv(tmp_path / "in.csv", [{"label": "maybe", "text": "Some paragraph."}])
    result = CliRunner().invoke(_app(), ["labels", "import", str(path), "--labels", str(labels_dir)])
    assert result.exit_code == 3 and "row 2: unknown label 'maybe'" in result.output
    assert "Traceback" not in result.output


# A driver for the real terminal tests: the CLI with the fake embedder, so no model loads.
DRIVER = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import typer
import framing.labelcli
from conftest import FakeEmbedder
from framing.labelcli import register
framing.labelcli._embedder = lambda *args, **kwargs: FakeEmbedder()
app, labels_app = typer.Typer(), typer.Typer()
app.add_typer(labels_app, name="labels")
register(app, labels_app)
app(sys.argv[1:], prog_name="framing")
"""


def _spawn(tmp_path, args, dimensions=(40, 100)):
    pexpect = pytest.importorskip("pexpect")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}  # the pty's own size counts
    return pexpect.spawn(sys.executable, [str(driver), *args], env=env, dimensions=dimensions, timeout=60,
                         encoding="utf-8", cwd=str(tmp_path))


HEADER = r"\n(?P<outlet>[^\r\n|]+) \| paragraph (?P<n>\d+) \| \S*?(?P<doc>[\w.]+)\r"


def test_label_loop_in_a_real_terminal_answers_undoes_and_quits(labels_dir, articles, tmp_path):
    user = labels_dir / "user.jsonl"
    child = _spawn(tmp_path, ["label", str(articles), "--labels", str(user), "--refit-every", "2"])
    child.expect(HEADER)
    first = child.match.group("doc", "n")
    child.expect(r"\[s\]kip")
    child.send("1")
    child.expect(r"-> state_aligned")
    child.expect(HEADER)
    second = child.match.group("doc", "n")
    child.expect(r"\[s\]kip")
    child.send("?")
    child.expect(r"\[3\] neutral_wire: The outlet reports")
    child.send("2")
    child.expect(r"-> western_critical")
    child.expect(r"\[s\]kip")
    assert [r["label"] for r in records(user)] == ["state_aligned"]  # the second answer is pending
    child.send("u")
    child.expect("undone")
    child.expect(HEADER)
    assert child.match.group("doc", "n") != first
    again = child.match.group("doc", "n")
    child.expect(r"\[s\]kip")
    child.send("3")
    child.expect(r"-> neutral_wire")
    child.expect(r"\[s\]kip")
    child.send("q")
    child.expect("2 answers appended")
    child.expect(pexpect_eof())
    child.close()
    assert child.exitstatus == 0
    written = records(user)
    assert [r["label"] for r in written] == ["state_aligned", "neutral_wire"]
    assert [(Path(r["doc"]).name, str(r["index"] + 1)) for r in written] == [first, again]
    assert second != first  # each pick is a new paragraph
    assert all(r["source"] == "user" and r["outlet"] in OUTLETS.values() for r in written)


def pexpect_eof():
    import pexpect

    return pexpect.EOF


def test_label_refuses_a_narrow_terminal(labels_dir, articles, tmp_path):
    child = _spawn(tmp_path, ["label", str(articles), "--labels", str(labels_dir)], dimensions=(24, 50))
    child.expect("50 columns wide; `framing label` needs at least 60")
    child.expect(pexpect_eof())
    child.close()
    assert child.exitstatus == 2
    assert "Traceback" not in child.before
    assert not (labels_dir / "user.jsonl").exists()


def test_label_refuses_a_closed_stdin(labels_dir, articles, tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    result = subprocess.run([sys.executable, str(driver), "label", str(articles), "--labels", str(labels_dir)],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                            preexec_fn=lambda: os.close(0))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "framing: error: stdin is closed; `framing label` reads one key per answer from a terminal (use "
        "`framing suggest` to label in a spreadsheet)"]


def test_candidate_is_a_plain_value():
    c = Candidate(text="t", outlet="o", doc="d", index=0, line=1)
    assert c.before == "" and c.after == ""


def test_ctrl_c_in_the_loop_keeps_every_answer_given(labels_dir, articles, tmp_path):
    user = labels_dir / "user.jsonl"
    child = _spawn(tmp_path, ["label", str(articles), "--labels", str(user)])
    for key in "12":
        child.expect(r"\[s\]kip")
        child.send(key)
    child.expect(r"-> western_critical")
    child.expect(r"\[s\]kip")
    child.sendintr()
    child.expect("2 answers appended")
    child.expect("interrupted")
    child.expect(pexpect_eof())
    child.close()
    assert child.exitstatus == 130
    assert [r["label"] for r in records(user)] == ["state_aligned", "western_critical"]


def test_suggest_then_import_round_trip_through_the_commands(labels_dir, articles, tmp_path, monkeypatch,
                                                             fake_embedder):
    import framing.labelcli

    monkeypatch.setattr(framing.labelcli, "_embedder", lambda *args: fake_embedder)
    out = tmp_path / "todo.csv"
    args = ["suggest", str(articles), "-n", "3", "--out", str(out), "--labels", str(labels_dir)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert "3 paragraphs to label" in result.output
    assert CliRunner().invoke(_app(), args).exit_code == 5  # the CSV exists: never overwritten
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    rows[0]["label"], rows[1]["label"] = "neutral_wire", "state_aligned"
    with out.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = CliRunner().invoke(_app(), ["labels", "import", str(out), "--labels", str(labels_dir)])
    assert result.exit_code == 0, result.output
    assert "2 labels appended" in result.output and "1 without a label" in result.output
    written = records(labels_dir / "user.jsonl")
    assert [(r["text"], r["label"]) for r in written] == [(rows[0]["text"], "neutral_wire"),
                                                          (rows[1]["text"], "state_aligned")]
    assert written[0]["outlet"] == rows[0]["outlet"] and written[0]["index"] == int(rows[0]["index"])


def test_imported_rows_without_a_position_leave_it_out(labels_dir, tmp_path):
    path = _csv(tmp_path / "in.csv", [{"label": "neutral_wire", "text": "Rail freight rose, the operator said."}])
    import_labels(path, labels_dir)
    [record] = records(labels_dir / "user.jsonl")
    assert not {"doc", "index", "line"} & set(record) and record["outlet"] == "unknown"


def test_suggestions_neutralise_formulas_and_import_restores_the_text(tmp_path):
    from framing.labelstore import unneutralise, write_suggestions

    path = write_suggestions(tmp_path / "todo.csv", [{"text": "=HYPERLINK(\"http://x\") said the minister.",
                                                     "label": ""}])
    assert "'=HYPERLINK" in path.read_text("utf-8-sig")
    assert unneutralise("'=HYPERLINK(x)") == "=HYPERLINK(x)" and unneutralise("'quoted'") == "'quoted'"
