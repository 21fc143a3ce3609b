"""Broken and hostile input: clear errors, nothing lost, nothing executed.

Every case is a real file (or folder, link, pipe) under tmp_path. CLI cases go through Typer's
CliRunner and check the exit code, exactly one "framing: error:" line on stderr that says what to
do, and no traceback; library cases check the FramingError subclass or the warning. Embedding uses
the session's real MiniLM (real_embedder, trained_model) or the fake embedder through score_paths.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import FakeEmbedder
from typer.testing import CliRunner

from framing.classify import HEAD_FILE, META_FILE, WEIGHTS_FILE, load_model, meta_digest
from framing.cli import app
from framing.embed import DEFAULT_EMBEDDER
from framing.errors import InputError, LabelError, ModelError, OutputError
from framing.labels import load_scheme, read_examples
from framing.pipeline import ScoreOptions, evaluate, score_paths, train
from framing.readers import ReadOptions, read_documents
from framing.records import Document
from framing.segment import segment

ROOT = Path(__file__).resolve().parent.parent
FRAMING = ROOT / ".venv" / "bin" / "framing"
REPORTS = {"paragraphs.jsonl", "documents.jsonl", "dropped.jsonl", "outlets.json", "report.md", "report.html",
           "outlets.csv", "paragraphs.csv", "calibration.json", "labelled.json", "prevalence.png"}

ARTICLE = (
    "Russia and China signed a new agreement on energy cooperation in Beijing on Tuesday, officials said.\n\n"
    "The deal covers gas deliveries through a second pipeline and was described as a milestone by both sides.\n\n"
    "Western diplomats said they were watching the negotiations closely and would respond in due course.\n"
)
ARTICLE_LINES = [line for line in ARTICLE.split("\n") if line]
FURNITURE = "Home\nNews\nSport\n\nMost Read\nTrade talks resume\nMarkets slide\n\nShare\nTweet\n" \
            "© 2024 Example Media. All rights reserved.\n"


# --- helpers -------------------------------------------------------------------------------------------

def invoke(*args: str | os.PathLike):
    return CliRunner().invoke(app, [str(a) for a in args], prog_name="framing")


def assert_one_error(result, exit_code: int, *needles: str) -> str:
    """Exit code, exactly one 'framing: error:' line (last; only warnings before it), no traceback."""
    assert result.exit_code == exit_code, (result.exit_code, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # a clean exit, nothing escaped
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("framing: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert all(line.startswith("framing: warning: ") for line in lines[:-1]), result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, hidden ones included, by relative path -> bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in snapshot(folder).items()}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def within(seconds: float, function, *args):
    """Run `function` in a thread; fail (instead of hanging the suite) if it takes longer than `seconds`."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = function(*args)
        except BaseException as error:  # re-raised in the test's thread
            box["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{getattr(function, '__name__', function)} still running after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def read_all(paths, **options) -> tuple[list[Document], list[str]]:
    warnings: list[str] = []
    documents = list(read_documents([Path(p) for p in paths], ReadOptions(**options), warnings.append))
    return documents, warnings


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def edit_meta(folder: Path, change, careful: bool = True) -> None:
    """Edit model.json; a careful editor also recomputes its own hash, so that the later checks must refuse it."""
    meta = json.loads((folder / META_FILE).read_text("utf-8"))
    change(meta)
    if careful:
        meta["meta_sha256"] = meta_digest(meta)
    (folder / META_FILE).write_text(json.dumps(meta), encoding="utf-8")


def rehash(folder: Path) -> None:
    """Make model.json's hashes match the head's files, as a careful attacker would."""
    edit_meta(folder, lambda meta: meta["files"].update({name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
                                                         for name in (HEAD_FILE, WEIGHTS_FILE)}))


@pytest.fixture
def fake_model(fake_trained_model) -> Path:
    """A real model folder trained on the project's labelled set with the fake embedder (once per session)."""
    return fake_trained_model


@pytest.fixture
def model_copy(tmp_path, fake_model) -> Path:
    target = tmp_path / "model"
    shutil.copytree(fake_model, target)
    return target


@pytest.fixture
def article_dir(tmp_path) -> Path:
    folder = tmp_path / "articles"
    write(folder / "a.txt", ARTICLE)
    return folder


# === Paths ==============================================================================================

def test_missing_path_is_named_with_what_to_do(tmp_path, fake_model):
    result = invoke("score", tmp_path / "nowhere", "--model", fake_model, "--out", tmp_path / "out")
    assert_one_error(result, 2, "nowhere", "no such file or folder", "check the path")
    assert not any((tmp_path / "out").glob("*"))


def test_empty_folder_is_an_input_error(tmp_path, fake_model):
    (tmp_path / "empty").mkdir()
    result = invoke("score", tmp_path / "empty", "--model", fake_model, "--out", tmp_path / "out")
    assert_one_error(result, 2, "no readable documents", ".txt")


def test_out_pointing_at_a_file_is_refused_and_the_file_kept(tmp_path, fake_model, article_dir):
    target = write(tmp_path / "notes.txt", "my notes\n")
    result = invoke("score", article_dir, "--model", fake_model, "--out", target)
    assert_one_error(result, 5, "is a file", "give a folder")
    assert target.read_text("utf-8") == "my notes\n"


def test_evaluate_given_a_folder_is_an_input_error(tmp_path, fake_model):
    (tmp_path / "labelled").mkdir()
    result = invoke("evaluate", tmp_path / "labelled", "--model", fake_model)
    assert_one_error(result, 2, "labelled", "give a labelled JSONL file")


def test_predictions_pointing_at_a_folder_is_an_output_error(tmp_path, fake_model, fake_embedder):
    (tmp_path / "predictions").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        evaluate(ROOT / "labels" / "seeds.jsonl", fake_model, tmp_path / "predictions", embedder=fake_embedder)


@pytest.mark.parametrize("with_scheme", [False, True], ids=["bare", "scheme-only"])
def test_labels_pointing_at_an_empty_folder_is_a_label_error(tmp_path, with_scheme):
    labels = tmp_path / "labels"
    labels.mkdir()
    if with_scheme:
        shutil.copy(ROOT / "labels" / "scheme.json", labels / "scheme.json")
    result = invoke("--quiet", "train", "--labels", labels, "--model", tmp_path / "model")
    line = assert_one_error(result, 3, str(labels))
    assert ("no labelled *.jsonl" if with_scheme else "no label scheme") in line
    assert not (tmp_path / "model").exists()


def test_model_pointing_at_a_file_is_refused(tmp_path, article_dir):
    target = write(tmp_path / "model.bin", b"\x00" * 64)
    result = invoke("score", article_dir, "--model", target, "--out", tmp_path / "out")
    assert_one_error(result, 4, "no model at", "framing train")


def test_unreadable_file_is_skipped_with_a_warning(tmp_path, article_dir):
    secret = write(article_dir / "secret.txt", ARTICLE.replace("Russia", "Moscow"))
    secret.chmod(0)
    try:
        if os.access(secret, os.R_OK):
            pytest.skip("running as root (or with CAP_DAC_OVERRIDE): a chmod 000 file is still readable")
        documents, warnings = read_all([article_dir])
        assert [Path(d.path).name for d in documents] == ["a.txt"]
        assert any("secret.txt" in w and "cannot read" in w for w in warnings), warnings
        with pytest.raises(InputError, match="skipped"):
            read_all([secret])
    finally:
        secret.chmod(0o644)


def test_symlink_loops_inside_a_scored_folder_do_not_hang_and_are_reported(tmp_path, article_dir, fake_model,
                                                                          fake_embedder):
    (article_dir / "loop").symlink_to(article_dir, target_is_directory=True)
    (article_dir / "sub").mkdir()
    (article_dir / "sub" / "up").symlink_to("..", target_is_directory=True)
    (article_dir / "self.txt").symlink_to(article_dir / "self.txt")  # a file link pointing at itself: ELOOP
    documents, warnings = within(20, read_all, [article_dir])
    assert [Path(d.path).name for d in documents] == ["a.txt"]
    assert any("loop" in w and "symlink loop" in w for w in warnings), warnings
    assert any("self.txt" in w and "link loop" in w for w in warnings), warnings
    seen: list[str] = []
    result = within(60, lambda: score_paths([article_dir], fake_model, tmp_path / "out", embedder=fake_embedder,
                                            warn=seen.append))
    assert result.n_documents == 1 and any("symlink loop" in w for w in seen)


def test_a_named_pipe_is_not_read(tmp_path, article_dir):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    documents, warnings = within(10, read_all, [fifo, article_dir / "a.txt"])
    assert [Path(d.path).name for d in documents] == ["a.txt"]
    assert any("pipe.txt" in w and "not a regular file" in w for w in warnings), warnings


def test_a_folder_of_ten_thousand_small_files(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(10_000):
        (folder / f"{i:05d}.txt").write_text(f"Officials in district {i} said on Tuesday that the talks had been "
                                             "constructive and would continue next week.\n", encoding="utf-8")
    started = time.perf_counter()
    n_documents = n_paragraphs = 0
    for document in read_documents([folder]):
        n_documents += 1
        n_paragraphs += len(segment(document).paragraphs)
    assert (n_documents, n_paragraphs) == (10_000, 10_000)
    assert time.perf_counter() - started < 30


_RSS_PROBE = """
import json, resource, sys
from framing.readers import ReadOptions, read_documents
from framing.segment import segment

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes

base = peak()
warnings, docs, paragraphs, error = [], 0, 0, None
options = ReadOptions() if sys.argv[2] == "default" else ReadOptions(max_bytes=int(sys.argv[2]))
try:
    for doc in read_documents([sys.argv[1]], options, warnings.append):
        docs += 1
        paragraphs += len(segment(doc).paragraphs)
except Exception as caught:
    error = f"{type(caught).__name__}: {caught}"
print(json.dumps({"growth": peak() - base, "docs": docs, "paragraphs": paragraphs, "warnings": warnings,
                  "error": error}))
"""


@pytest.fixture(scope="module")
def fifty_mb_line(tmp_path_factory) -> Path:
    """50 MB of words and no newline (a minified page)."""
    sentence = b"The minister said the talks were constructive and would continue after the summit. "
    path = tmp_path_factory.mktemp("big") / "one-line.txt"
    path.write_bytes((sentence * (50_000_000 // len(sentence) + 1))[:50_000_000])
    return path


def _probe(path: Path, max_bytes: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(path), max_bytes], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_fifty_mb_without_newline_is_skipped_at_the_default_size_limit(fifty_mb_line):
    found = _probe(fifty_mb_line, "default")
    limit = f"{ReadOptions().max_bytes:,}-byte limit"
    assert found["docs"] == 0 and found["error"].startswith("InputError")
    assert len(found["warnings"]) == 1
    assert "one-line.txt" in found["warnings"][0] and limit in found["warnings"][0]
    assert "--max-bytes" in found["warnings"][0]
    assert found["growth"] < 50_000_000


def test_fifty_mb_without_newline_read_with_a_raised_limit_stays_in_bounded_memory(fifty_mb_line):
    found = _probe(fifty_mb_line, "60000000")
    assert (found["docs"], found["paragraphs"], found["error"], found["warnings"]) == (1, 1, None, [])
    assert found["growth"] < 400_000_000, f"peak RSS grew by {found['growth'] / 1e6:.0f} MB"


def test_max_bytes_option_names_the_limit(tmp_path, fake_model, fifty_mb_line):
    result = invoke("score", fifty_mb_line, "--model", fake_model, "--out", tmp_path / "out",
                    "--max-bytes", "1000000")
    assert_one_error(result, 2, "skipped")
    assert "1,000,000-byte limit" in result.stderr and "--max-bytes" in result.stderr


# === Content ============================================================================================

BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 16


def test_binary_data_with_a_txt_extension_is_skipped_and_named(tmp_path, article_dir):
    write(article_dir / "photo.txt", BINARY)
    documents, warnings = read_all([article_dir])
    assert [Path(d.path).name for d in documents] == ["a.txt"]
    assert warnings == [f"skipped {article_dir / 'photo.txt'}: binary data, not text"]


def test_only_binary_files_is_a_clear_cli_error(tmp_path, fake_model):
    write(tmp_path / "in" / "photo.txt", BINARY)
    result = invoke("score", tmp_path / "in", "--model", fake_model, "--out", tmp_path / "out")
    assert_one_error(result, 2, "no readable documents", "see the warnings")
    assert "photo.txt: binary data" in result.stderr


def test_invalid_utf8_falls_back_without_crashing(tmp_path):
    data = ARTICLE.encode("utf-8").replace(b"Beijing", b"B\xe9ijing \x81\x8d\x9d")
    documents, warnings = read_all([write(tmp_path / "latin.txt", data)])
    assert warnings == [] and len(documents) == 1
    assert "Béijing" in documents[0].text and "\ufffd" not in documents[0].text
    assert len(segment(documents[0]).paragraphs) == 3


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le+bom", "utf-16-be+bom", "utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("text", [ARTICLE, "Россия и Китай подписали новое соглашение о сотрудничестве в области "
                                  "энергетики в Пекине во вторник, сообщили официальные лица.\n",
                                  "وقّعت روسيا والصين اتفاقية جديدة للتعاون في مجال الطاقة في بكين يوم الثلاثاء.\n"],
                         ids=["latin", "cyrillic", "arabic"])
def test_utf16_with_and_without_bom(tmp_path, encoding, text):
    if encoding.endswith("+bom"):
        codec = encoding.removesuffix("+bom")
        data = (codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE) + text.encode(codec)
    else:
        data = text.encode(encoding)
    documents, warnings = read_all([write(tmp_path / "wide.txt", data)])
    assert warnings == []
    assert [d.text for d in documents] == [text]


def test_mixed_line_endings(tmp_path):
    data = ARTICLE_LINES[0] + "\r\n\r\n" + ARTICLE_LINES[1] + "\r\r" + ARTICLE_LINES[2] + "\n"
    documents, _ = read_all([write(tmp_path / "mixed.txt", data.encode())])
    assert "\r" not in documents[0].text
    assert [p.text for p in segment(documents[0]).paragraphs] == ARTICLE_LINES


def test_nul_bytes_inside_text_are_dropped(tmp_path):
    data = ARTICLE.encode().replace(b"energy", b"ener\x00gy").replace(b"pipeline", b"\x00pipeline\x00")
    documents, warnings = read_all([write(tmp_path / "nul.txt", data)])
    assert warnings == [] and "\x00" not in documents[0].text
    assert [p.text for p in segment(documents[0]).paragraphs] == ARTICLE_LINES


def test_zero_width_and_control_characters_are_removed_words_kept(tmp_path):
    hostile = (ARTICLE.replace("Russia", "Rus\u200bsia").replace("China", "\u202eChi\u200dna\u202c")
               .replace("energy", "ener\u00adgy\x07").replace("pipeline", "pipe\ufeffline\x1b")
               .replace("Western", "\u2066Western\u2069\u200e"))
    documents, _ = read_all([write(tmp_path / "zw.txt", hostile)])
    assert [p.text for p in segment(documents[0]).paragraphs] == ARTICLE_LINES


@pytest.mark.parametrize("text", [
    "وقّعت روسيا والصين اتفاقية جديدة للتعاون في مجال الطاقة في بكين يوم الثلاثاء، حسبما قال مسؤولون.\n\n"
    "وقال المتحدث إن الاتفاقية ستعزز العلاقات الثنائية بين البلدين في السنوات المقبلة.\n",
    "רוסיה וסין חתמו על הסכם חדש לשיתוף פעולה בתחום האנרגיה בבייג'ינג ביום שלישי, כך אמרו גורמים רשמיים.\n\n"
    "\u200fהדובר אמר כי ההסכם יחזק את היחסים בין שתי המדינות בשנים הקרובות.\n",
], ids=["arabic", "hebrew"])
def test_right_to_left_scripts_are_read_segmented_and_scored(tmp_path, text, fake_model, fake_embedder):
    folder = tmp_path / "rtl"
    write(folder / "article.txt", text)
    documents, warnings = read_all([folder])
    paragraphs = segment(documents[0]).paragraphs
    assert warnings == [] and [p.text for p in paragraphs] == [line.replace("\u200f", "")
                                                              for line in text.split("\n") if line]
    # An English-only model leaves them out of the shares and says why; asked to, it counts them
    with pytest.raises(InputError, match="not in English"):
        score_paths([folder], fake_model, tmp_path / "out", embedder=fake_embedder)
    result = score_paths([folder], fake_model, tmp_path / "out", ScoreOptions(include_other_languages=True),
                         embedder=fake_embedder)
    assert result.n_paragraphs == 2
    rows = read_jsonl(tmp_path / "out" / "paragraphs.jsonl")
    assert [r["text"] for r in rows] == [p.text for p in paragraphs]
    assert all(r["lang"] != "en" for r in rows)


def test_an_empty_article_gives_zero_paragraphs(tmp_path, article_dir, fake_model, fake_embedder):
    write(article_dir / "empty.txt", "")
    write(article_dir / "blank.md", "\n \n\t\n")
    documents, _ = read_all([article_dir])
    by_name = {Path(d.path).name: segment(d) for d in documents}
    assert len(by_name["empty.txt"].paragraphs) == len(by_name["blank.md"].paragraphs) == 0
    result = score_paths([article_dir], fake_model, tmp_path / "out", embedder=fake_embedder)
    assert (result.n_documents, result.n_paragraphs) == (3, 3)


def test_only_empty_articles_is_a_clear_cli_error(tmp_path, fake_model):
    write(tmp_path / "in" / "empty.txt", "")
    result = invoke("score", tmp_path / "in", "--model", fake_model, "--out", tmp_path / "out")
    assert_one_error(result, 2, "no article paragraphs")


def test_an_article_of_only_furniture(tmp_path, article_dir, fake_model, fake_embedder):
    write(article_dir / "menu.txt", FURNITURE)
    result = score_paths([article_dir], fake_model, tmp_path / "out", embedder=fake_embedder)
    records = {Path(r["doc"]).name: r for r in read_jsonl(tmp_path / "out" / "documents.jsonl")}
    assert records["menu.txt"]["paragraphs"] == 0 and records["menu.txt"]["dropped_lines"] >= 8
    assert result.n_paragraphs == 3
    only = write(tmp_path / "only" / "menu.txt", FURNITURE)
    cli = invoke("score", only.parent, "--model", fake_model, "--out", tmp_path / "out2")
    assert_one_error(cli, 2, "no article paragraphs", "furniture")


@pytest.mark.parametrize("pattern", ["_a ", "*a ", "**a ", "[", "![", "[a](", "`a "])
def test_hostile_markdown_lines_are_segmented_in_linear_time(pattern):
    line = pattern * (300_000 // len(pattern))  # quadratic regexes took hours on this
    segmented = within(10, segment, Document(id="x", text=line + "\n\n" + ARTICLE, format="md"))
    assert [p.text for p in segmented.paragraphs][-3:] == ARTICLE_LINES


def test_a_paragraph_longer_than_the_window_is_embedded_whole(real_embedder):
    opening = ("Grain exports through the Black Sea corridor rose sharply in the spring as insurers returned, "
               "port operators in Odesa reported, and freight rates fell for the third month in a row. ")
    rest = ("Chinese and Russian officials meeting in Beijing praised a new era of comprehensive strategic "
            "partnership, pledging joint work on energy, space and artificial intelligence research. ")
    words = (opening * 20).split()[:200] + (rest * 100).split()[:1300]
    paragraph = " ".join(words)
    assert len(words) == 1500 and len(segment(Document(id="x", text=paragraph)).paragraphs) == 1
    whole, first, tail = real_embedder.embed([paragraph, " ".join(words[:200]), " ".join(words[200:])])
    assert whole.shape == (real_embedder.dimension,)
    assert abs(float(np.linalg.norm(whole)) - 1) < 1e-4
    assert float(whole @ first) < 0.9, "the long paragraph embeds like its first 200 words: truncated?"
    assert float(whole @ tail) > float(whole @ first)


def test_non_english_articles_get_a_language_and_a_warning(tmp_path, trained_model, real_embedder):
    folder = tmp_path / "foreign"
    write(folder / "de.txt", "Russland und China haben am Dienstag in Peking ein neues Abkommen über die "
                             "Zusammenarbeit im Energiebereich unterzeichnet, teilten Beamte mit.\n\nDie "
                             "Vereinbarung umfasst Gaslieferungen durch eine zweite Pipeline und wurde von beiden "
                             "Seiten als Meilenstein bezeichnet.\n")
    write(folder / "fr.txt", "La Russie et la Chine ont signé mardi à Pékin un nouvel accord de coopération "
                             "énergétique, ont annoncé des responsables gouvernementaux.\n")
    write(folder / "en.txt", ARTICLE)
    result = invoke("score", folder, "--model", trained_model, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    records = read_jsonl(tmp_path / "out" / "paragraphs.jsonl")
    assert all("lang" in r for r in records)
    langs = {Path(r["doc"]).name: r["lang"] for r in records}
    assert (langs["de.txt"], langs["fr.txt"], langs["en.txt"]) == ("de", "fr", "en")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("framing: warning: ")]
    assert any("not in English" in w and "3 paragraphs" in w for w in warnings), result.stderr
    assert "framing: error" not in result.stderr and "Traceback" not in result.stderr


# === JSONL and CSV ======================================================================================

GOOD_RECORD = json.dumps({"id": "ok-1", "text": ARTICLE_LINES[0], "outlet": "Wire"})
GOOD_RECORD_2 = json.dumps({"id": "ok-2", "text": ARTICLE_LINES[1], "outlet": "Wire"})


def test_malformed_jsonl_line_is_named_and_fails_the_run(tmp_path, fake_model):
    feed = write(tmp_path / "feed.jsonl", f"{GOOD_RECORD}\n{{\"text\": \"unfinished\n{GOOD_RECORD_2}\n")
    result = invoke("score", feed, "--model", fake_model, "--out", tmp_path / "out")
    assert_one_error(result, 2, "feed.jsonl:2", "malformed JSON", "--bad-lines skip")
    assert not (tmp_path / "out" / "paragraphs.jsonl").exists()


def test_malformed_jsonl_line_is_skipped_with_bad_lines_skip(tmp_path, trained_model, real_embedder):
    feed = write(tmp_path / "feed.jsonl", f"{GOOD_RECORD}\n{{\"text\": \"unfinished\n{GOOD_RECORD_2}\n")
    result = invoke("score", feed, "--model", trained_model, "--out", tmp_path / "out", "--bad-lines", "skip")
    assert result.exit_code == 0, result.stderr
    assert f"framing: warning: skipped {feed}:2: malformed JSON" in result.stderr
    rows = read_jsonl(tmp_path / "out" / "paragraphs.jsonl")
    assert [r["id"] for r in rows] == ["ok-1", "ok-2"]
    assert [r["doc"] for r in rows] == [f"{feed}#1", f"{feed}#3"]  # the run's keys: path and line


@pytest.mark.parametrize(("record", "problem"), [
    ({"id": "x", "body": "no text field"}, "missing 'text'"),
    ({"text": None}, "missing 'text'"),
    ({"text": 42}, "missing 'text'"),
    ({"text": ["a", "list"]}, "missing 'text'"),
    ({"text": ARTICLE_LINES[2], "outlet": ["RT", "TASS"]}, "field 'outlet' should be a string"),
    ({"text": ARTICLE_LINES[2], "title": {"nested": True}}, "field 'title' should be a string"),
    (["not", "an", "object"], "expected a JSON object"),
    ("just a string", "expected a JSON object"),
], ids=["no-text", "text-null", "text-number", "text-list", "outlet-list", "title-object", "array", "string"])
def test_records_with_missing_or_wrongly_typed_fields(tmp_path, record, problem):
    feed = write(tmp_path / "feed.jsonl", f"{GOOD_RECORD}\n{json.dumps(record)}\n")
    with pytest.raises(InputError, match=f"feed.jsonl:2: {problem}") as caught:
        read_all([feed])
    assert "--bad-lines skip" in str(caught.value)
    documents, warnings = read_all([feed], bad_lines="skip")
    assert [d.id for d in documents] == ["ok-1"]
    assert len(warnings) == 1 and ":2: " in warnings[0] and problem in warnings[0]


@pytest.mark.parametrize(("line", "problem"), [
    ("[" * 100_000, "nested too deeply"),
    ('{"text": "x", "views": ' + "9" * 5000 + "}", "too many digits"),
], ids=["deeply-nested", "huge-number"])
def test_pathological_json_lines_are_bad_lines_not_crashes(tmp_path, line, problem):
    feed = write(tmp_path / "feed.jsonl", f"{GOOD_RECORD}\n{line}\n")
    with pytest.raises(InputError, match=f"feed.jsonl:2: malformed JSON \\(.*{problem}"):
        read_all([feed])
    documents, warnings = read_all([feed], bad_lines="skip")
    assert [d.id for d in documents] == ["ok-1"] and problem in warnings[0]


def test_lone_surrogate_escapes_are_dropped_and_reports_written(tmp_path, fake_model, fake_embedder):
    record = '{"id": "s\\udc80", "outlet": "Wire\\ud800", "text": "Russia and China \\ud83d signed a new ' \
             'agreement on energy cooperation in Beijing on Tuesday, officials said."}'
    feed = write(tmp_path / "in" / "feed.jsonl", record + "\n")
    documents, _ = read_all([feed])
    assert (documents[0].id, documents[0].outlet) == ("s", "Wire")
    assert [p.text for p in segment(documents[0]).paragraphs] == [ARTICLE_LINES[0]]
    result = score_paths([feed], fake_model, tmp_path / "out", embedder=fake_embedder)
    assert result.n_paragraphs == 1
    assert read_jsonl(tmp_path / "out" / "paragraphs.jsonl")[0]["outlet"] == "Wire"


def test_manifest_naming_missing_files_warns(tmp_path, article_dir):
    write(article_dir / "sources.csv", "file,outlet\na.txt,Wire\nghost.txt,Phantom\n")
    documents, warnings = read_all([article_dir])
    assert [d.outlet for d in documents] == ["Wire"]
    assert warnings == [f"{article_dir / 'sources.csv'} names ghost.txt, which is not in the folder"]


@pytest.mark.parametrize(("manifest", "needle"), [
    ("outlet,date\na.txt,2024-05-01\n", "needs the columns 'file' and 'outlet'"),
    ("name,publisher\na.txt,Wire\n", "needs the columns 'file' and 'outlet'"),
    ("file,outlet\na.txt,\n", "sources.csv:2: 'file' and 'outlet' must both be filled in"),
    ('file,outlet\na.txt,"' + "x" * 200_000 + '"\n', "sources.csv:2: not valid CSV"),
    (BINARY, "binary"),
], ids=["no-file-column", "neither-column", "empty-outlet", "oversized-field", "binary"])
def test_manifest_missing_required_columns_is_an_input_error(tmp_path, article_dir, fake_model, manifest, needle):
    write(article_dir / "sources.csv", manifest)
    with pytest.raises(InputError, match="sources.csv") as caught:
        read_all([article_dir])
    assert needle in str(caught.value)
    result = invoke("score", article_dir, "--model", fake_model, "--out", tmp_path / "out")
    assert_one_error(result, 2, "sources.csv")


# === Labels ==============================================================================================

def _label(text: str, label: str) -> str:
    return json.dumps({"text": text, "label": label, "outlet": "test", "source": "authored"})


@pytest.mark.parametrize(("bad_line", "needle"), [
    (_label(ARTICLE_LINES[2], "pro_kremlin"), "unknown label 'pro_kremlin'"),
    (_label("   ", "neutral_wire"), "empty or missing 'text'"),
    (json.dumps({"label": "neutral_wire"}), "empty or missing 'text'"),
    (_label(ARTICLE_LINES[0].upper(), "western_critical"), "conflicting labels, same text as bad.jsonl:1"),
    ("{not json", "malformed JSON"),
], ids=["unknown-label", "empty-text", "missing-text", "conflicting-duplicate", "malformed"])
def test_invalid_labelled_set_names_file_and_line(tmp_path, bad_line, needle):
    labels = tmp_path / "labels"
    labels.mkdir()
    shutil.copy(ROOT / "labels" / "scheme.json", labels / "scheme.json")
    write(labels / "bad.jsonl", "\n".join([_label(ARTICLE_LINES[0], "neutral_wire"),
                                           _label(ARTICLE_LINES[1], "state_aligned"), bad_line]) + "\n")
    with pytest.raises(LabelError, match="bad.jsonl:3"):
        read_examples(labels, load_scheme(labels))
    result = invoke("--quiet", "train", "--labels", labels, "--model", tmp_path / "model")
    assert_one_error(result, 3, "bad.jsonl:3", needle)
    assert not (tmp_path / "model").exists()


def test_scheme_with_one_label_is_refused(tmp_path):
    labels = tmp_path / "labels"
    write(labels / "scheme.json", json.dumps({"name": "solo", "labels": [{"name": "neutral_wire"}]}))
    write(labels / "set.jsonl", _label(ARTICLE_LINES[0], "neutral_wire") + "\n")
    result = invoke("--quiet", "train", "--labels", labels / "set.jsonl", "--model", tmp_path / "model")
    assert_one_error(result, 3, str(labels / "scheme.json"), "at least two labels")


# === Models ==============================================================================================

def _truncate(folder: Path) -> None:
    weights = folder / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _corrupt(folder: Path) -> None:
    data = bytearray((folder / WEIGHTS_FILE).read_bytes())
    for i in range(64, len(data), 101):
        data[i] ^= 0xFF
    (folder / WEIGHTS_FILE).write_bytes(bytes(data))


def _edit_head_by_hand(folder: Path) -> None:
    """Change a parameter in head.json (a plain JSON edit)."""
    data = (folder / HEAD_FILE).read_bytes()
    (folder / HEAD_FILE).write_bytes(data.replace(b'"sublinear_tf": true', b'"sublinear_tf": false', 1))
    assert (folder / HEAD_FILE).read_bytes() != data  # the edit really happened


DAMAGE = {
    "missing-folder": (lambda f: shutil.rmtree(f), "no model at"),
    "missing-head": (lambda f: (f / HEAD_FILE).unlink(), "no model at"),
    "truncated-head": (_truncate, "does not match the hash"),
    "truncated-head-rehashed": (lambda f: (_truncate(f), rehash(f)), "not a readable framing head"),
    "corrupted-head": (_corrupt, "does not match the hash"),
    "corrupted-head-rehashed": (lambda f: (_corrupt(f), rehash(f)), "not a readable framing head"),
    "head-edited-by-hand": (_edit_head_by_hand, "does not match the hash"),
    "meta-not-json": (lambda f: (f / META_FILE).write_text("{'scheme': oops", "utf-8"), "unreadable model metadata"),
    "meta-binary": (lambda f: (f / META_FILE).write_bytes(b"\xff\xfe\x00\x81garbage"), "unreadable model metadata"),
    "meta-deeply-nested": (lambda f: (f / META_FILE).write_text("[" * 100_000, "utf-8"), "unreadable model metadata"),
    "meta-huge-number": (lambda f: (f / META_FILE).write_text("9" * 5000, "utf-8"), "unreadable model metadata"),
    "meta-a-list": (lambda f: (f / META_FILE).write_text("[]", "utf-8"), "not a framing model"),
    "meta-edited-by-hand": (lambda f: edit_meta(f, lambda m: m["embedder"].update(name="other"), careful=False),
                            "does not match its stored hash"),
    "meta-scheme-swapped-by-hand": (lambda f: edit_meta(f, lambda m: m["scheme"]["labels"].reverse(), careful=False),
                                    "does not match its stored hash"),
    "meta-labels-not-strings": (lambda f: edit_meta(f, lambda m: m["scheme"].update(labels=[1, 2, 3])),
                                "not a framing model"),
    "meta-from-another-scheme": (lambda f: edit_meta(f, lambda m: m["scheme"].update(labels=["pro", "contra"])),
                                 "does not fit the scheme"),
    "meta-dimension-edited": (lambda f: edit_meta(f, lambda m: m["embedder"].update(dimension=384)),
                              "16-dimensional"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_damaged_or_edited_model_is_refused_by_score(tmp_path, model_copy, article_dir, damage):
    mutate, needle = DAMAGE[damage]
    mutate(model_copy)
    with pytest.raises(ModelError, match=needle):
        load_model(model_copy)
    result = invoke("score", article_dir, "--model", model_copy, "--out", tmp_path / "out")
    line = assert_one_error(result, 4, needle)
    assert "framing train" in line or "retrain" in line
    assert not (tmp_path / "out").exists()


class _OtherEmbedder(FakeEmbedder):
    name = "other-embedder"


@pytest.mark.parametrize("how", ["trained-on-another", "renamed-carefully"])
def test_model_from_another_embedder_is_refused_by_check_fits(tmp_path, model_copy, article_dir, how):
    # A model really trained on another embedder; or model.json's embedder renamed with its own hash recomputed
    # (an edit without it is refused as an edit, above): either way ModelMeta.check_fits is what refuses it.
    embedder = _OtherEmbedder()
    if how == "renamed-carefully":
        edit_meta(model_copy, lambda meta: meta["embedder"].update(name=DEFAULT_EMBEDDER))
        embedder = FakeEmbedder()
    model = load_model(model_copy)
    with pytest.raises(ModelError, match="trained on embeddings of"):
        model.meta.check_fits(embedder)
    with pytest.raises(ModelError, match="score with the same embedder or retrain"):
        score_paths([article_dir], model_copy, tmp_path / "out", embedder=embedder)
    assert not (tmp_path / "out" / "paragraphs.jsonl").exists()


def test_model_from_another_embedder_is_refused_by_the_cli(tmp_path, model_copy, article_dir, real_embedder):
    # A 16-dimensional head relabelled as MiniLM's: the real 384-dimensional vectors do not fit.
    edit_meta(model_copy, lambda meta: meta["embedder"].update(name=DEFAULT_EMBEDDER))
    result = invoke("score", article_dir, "--model", model_copy, "--out", tmp_path / "out")
    assert_one_error(result, 4, "384-dimensional", "retrain")


def test_model_naming_an_embedder_that_is_not_here_is_refused(tmp_path, model_copy, article_dir):
    edit_meta(model_copy, lambda m: m["embedder"].update(name="sentence-transformers/paraphrase-MiniLM-L3-v2"))
    result = invoke("score", article_dir, "--model", model_copy, "--out", tmp_path / "out")
    assert_one_error(result, 4, "paraphrase-MiniLM-L3-v2")


def test_evaluating_a_file_from_another_scheme_is_refused(tmp_path, fake_model):
    labelled = write(tmp_path / "other.jsonl", json.dumps({"text": ARTICLE_LINES[0], "label": "neutral_wire"}) +
                     "\n" + json.dumps({"text": ARTICLE_LINES[1], "label": "pro_western"}) + "\n")
    result = invoke("evaluate", labelled, "--model", fake_model)
    assert_one_error(result, 3, "other.jsonl:2", "unknown label 'pro_western'", "neutral_wire")


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("crafted", ["object-array-npz", "pickle-reduce", "pickle-reduce-in-zip"])
def test_a_model_file_crafted_to_run_code_is_refused_and_never_runs(tmp_path, model_copy, article_dir, crafted):
    marker = tmp_path / "PWNED"
    needle = "not a readable framing head"
    if crafted == "object-array-npz":  # an .npz whose array holds objects: loading it would unpickle them
        buffer = io.BytesIO()
        np.savez(buffer, idf=np.array([_Payload(marker)], dtype=object))
        data = buffer.getvalue()
    elif crafted == "pickle-reduce":
        data = pickle.dumps(_Payload(marker))
    else:  # a zip like an .npz, holding a pickle where an array should be
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("idf.npy", pickle.dumps(_Payload(marker)))
        data = buffer.getvalue()
    (model_copy / WEIGHTS_FILE).write_bytes(data)
    rehash(model_copy)  # the true sha256: only the format stands between the file and the process
    with pytest.raises(ModelError, match=needle):
        load_model(model_copy)
    result = invoke("score", article_dir, "--model", model_copy, "--out", tmp_path / "out")
    assert_one_error(result, 4, needle)
    assert not marker.exists()
    # the payload is real: unpickling it would have run the command
    if crafted == "pickle-reduce":
        pickle.loads(data)
        assert marker.exists()


# === Outputs =============================================================================================

class _InterruptingEmbedder(FakeEmbedder):
    """The fake embedder, raising `error` when asked to embed its second batch."""

    def __init__(self, error: BaseException) -> None:
        self.error, self.calls = error, 0

    def embed(self, texts):
        self.calls += 1
        if self.calls == 2:
            raise self.error
        return super().embed(texts)


@pytest.mark.parametrize("error", [KeyboardInterrupt(), RuntimeError("disk on fire"), MemoryError()],
                         ids=["ctrl-c", "bug", "out-of-memory"])
def test_a_run_interrupted_half_way_leaves_the_earlier_reports_intact(tmp_path, seeds_copy, fake_model, error):
    out = tmp_path / "reports"
    options = ScoreOptions(batch_size=20)
    score_paths([seeds_copy], fake_model, out, options, embedder=FakeEmbedder())
    before = snapshot(out)
    assert set(before) == REPORTS | {"differences.png"}  # five outlets: their differences are charted too
    embedder = _InterruptingEmbedder(error)
    with pytest.raises(type(error)):
        score_paths([seeds_copy], fake_model, out, options, embedder=embedder)
    assert embedder.calls == 2
    assert snapshot(out) == before  # byte for byte, and no temporary file left, hidden or not


@pytest.mark.parametrize("foreign", ["notes.txt", "data/table.csv", ".hidden", "paragraphs.jsonl.bak"])
def test_out_folder_with_other_user_files_is_refused_and_left_alone(tmp_path, article_dir, fake_model,
                                                                    fake_embedder, foreign):
    # The reports are swapped in as one folder, so a folder holding anything else is refused, not replaced.
    out = tmp_path / "out"
    score_paths([article_dir], fake_model, out, embedder=fake_embedder)
    write(out / foreign, b"\x00mine")
    before = snapshot(out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with pytest.raises(OutputError, match="holds files that framing did not write"):
        score_paths([article_dir], fake_model, out, embedder=fake_embedder)
    assert snapshot(out) == before
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items() if p.is_file())
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging left


def test_no_command_modifies_the_labelled_set(tmp_path, fake_embedder):
    labels = tmp_path / "labels"
    shutil.copytree(ROOT / "labels", labels)
    before = digests(labels)
    model = tmp_path / "model"
    train(labels, model, fake_embedder)
    score_paths([labels], model, tmp_path / "out", embedder=fake_embedder)  # the labelled files are scoreable JSONL
    evaluate(labels / "seeds.jsonl", model, tmp_path / "predictions.jsonl", embedder=fake_embedder)
    for args in (["score", labels, "--out", tmp_path / "out2"], ["evaluate", labels / "seeds.jsonl"]):
        assert invoke(*args, "--model", model).exit_code == 4  # both read the labels, then find no 'fake-embedder'
    assert digests(labels) == before


@pytest.mark.parametrize("when", ["while-writing", "between-renames"])
def test_an_interrupted_save_keeps_the_previous_model(tmp_path, model_copy, fake_embedder, monkeypatch, when):
    before = snapshot(model_copy)
    if when == "while-writing":
        from framing import classify

        def dumps(*_args, **_kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(classify, "arrays_to_bytes", dumps)
    else:
        real_rename, calls = os.rename, []

        def rename(source, target):
            calls.append(target)
            if len(calls) == 2:  # the old model has just been moved aside; the new one is not in yet
                raise KeyboardInterrupt
            real_rename(source, target)

        monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        train(ROOT / "labels", model_copy, fake_embedder)
    monkeypatch.undo()
    assert snapshot(model_copy) == before
    load_model(model_copy)
    assert sorted(p.name for p in model_copy.parent.iterdir() if p.name.startswith(".")) == []


# --- real signals, real processes ------------------------------------------------------------------------

def _env(cache: Path) -> dict[str, str]:
    return dict(os.environ, FRAMING_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")


def _wait_for(condition, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the command ended before it was interrupted: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the command did not get going in {seconds} s")
        time.sleep(0.1)


def _terminate(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the command did not stop within 30 s of SIGTERM")
    return process.returncode, stderr


def _assert_interrupted(code: int, stderr: str) -> None:
    assert code == 130, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("framing: error: ")]
    assert len(errors) == 1 and "interrupted" in errors[0], stderr
    assert "Traceback" not in stderr


def _many_articles(folder: Path, copies: int) -> Path:
    """`copies` copies of the seeds, each paragraph made unique so that nothing is deduplicated or cached."""
    for i in range(copies):
        for seed in sorted((ROOT / "seeds").glob("*.txt")):
            lines = seed.read_text("utf-8").split("\n")
            write(folder / f"{i:03d}-{seed.name}",
                  "\n".join(f"Copy {i}: {line}" if len(line.split()) > 8 else line for line in lines))
    return folder


def test_sigterm_during_score_exits_130_and_keeps_the_earlier_reports(tmp_path, trained_model, real_embedder,
                                                                     article_dir):
    out = tmp_path / "reports"
    score_paths([article_dir], trained_model, out, embedder=real_embedder)
    before = snapshot(out)
    assert set(before) == REPORTS
    big = _many_articles(tmp_path / "big", 40)  # minutes of embedding: it is stopped after its first batch
    process = subprocess.Popen([FRAMING, "score", big, "--model", trained_model, "--out", out, "--batch-size", "16"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                               env=_env(tmp_path / "cache"))

    def embedding_under_way() -> bool:  # the first batch is embedded and its rows are in the staging folder
        return any(p.stat().st_size for p in tmp_path.glob(".reports.staging-*/paragraphs.jsonl"))

    _wait_for(embedding_under_way, process, 60)
    code, stderr = _terminate(process)
    _assert_interrupted(code, stderr)
    assert snapshot(out) == before  # byte for byte
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging, no lock


def test_sigterm_during_train_keeps_the_previous_model_loadable(tmp_path, trained_model):
    model = tmp_path / "models" / "default"
    shutil.copytree(trained_model, model)
    before = snapshot(model)
    cache = tmp_path / "cache"
    process = subprocess.Popen([FRAMING, "--quiet", "train", "--labels", ROOT / "labels", "--model", model],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                               env=_env(cache))
    # the cache opens once the encoder is loaded, right before the labelled set is embedded (about 30 s of work)
    _wait_for(lambda: (cache / "embeddings-v1.sqlite3").exists(), process, 60)
    time.sleep(1)
    code, stderr = _terminate(process)
    _assert_interrupted(code, stderr)
    assert snapshot(model) == before
    assert load_model(model).labels == load_model(trained_model).labels
    assert [p.name for p in model.parent.iterdir()] == ["default"]  # no staging or set-aside folder left


def test_a_forked_worker_stopped_by_sigterm_dies_quietly():
    # Libraries fork worker pools (cleanlab did) and end them with SIGTERM; a worker inherits the CLI's
    # handler, which must not raise there and print a traceback from the child.
    script = """
import os, signal, sys, time
from framing.cli import errors_translated
with errors_translated():
    child = os.fork()
    if child == 0:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
        os._exit(0)
    _, status = os.waitpid(child, 0)
    print(os.waitstatus_to_exitcode(status))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(128 + signal.SIGTERM)
    assert done.stderr == ""
