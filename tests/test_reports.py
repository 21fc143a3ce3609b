"""Every report a scoring run writes, checked on a real run (fake embedder): report.html, the CSVs, the
PNG charts, report.md's escaping, paragraphs.jsonl's document fields, `framing report` and `framing compare`."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import pytest
from conftest import FakeEmbedder
from typer.testing import CliRunner

from framing import embed
from framing.cli import app
from framing.pipeline import report_paragraphs, score_paths

HOSTILE = "<script>alert(1)</script> | # =HYPERLINK(\"http://x\")"
ARTICLES = {
    "alpha.txt": ("Alpha Wire", ["The two sides hailed a new era of win-win partnership and friendship, they said.",
                                 "The ministry said figures showed trade rose by a tenth in the third quarter.",
                                 "Critics said the visit was mostly symbolic and produced few concrete results."]),
    "beta.txt": ("Beta Daily", ["NATO's hegemony and Cold War sanctions threaten the whole region, the paper wrote.",
                                "The ministry said figures showed trade rose by a tenth in the third quarter.",
                                "Officials from both countries met in Geneva and agreed to continue the talks."]),
    "gamma.txt": (HOSTILE, ["The summit closed with a joint statement on grain shipments and port security.",
                            "Analysts said the partnership remains lopsided, with one side far more dependent."]),
}


@pytest.fixture(autouse=True)
def _fake_embedder_by_name(monkeypatch):
    monkeypatch.setitem(embed._REGISTERED, FakeEmbedder.name, FakeEmbedder)


@pytest.fixture(scope="module")
def run(tmp_path_factory, fake_trained_model) -> Path:
    root = tmp_path_factory.mktemp("reports")
    model = fake_trained_model
    folder = root / "in"
    folder.mkdir()
    rows = ["file,outlet,date,url,title"]
    for name, (outlet, paragraphs) in ARTICLES.items():
        (folder / name).write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
        quoted = outlet.replace('"', '""')
        rows.append(f'{name},"{quoted}",2024-05-0{len(rows)},https://example.org/{name},Title of {name}')
    (folder / "sources.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = root / "out"
    score_paths([folder], model, out, embedder=FakeEmbedder())
    return out


def test_a_run_writes_every_report(run):
    names = {p.name for p in run.iterdir()}
    assert names >= {"paragraphs.jsonl", "documents.jsonl", "dropped.jsonl", "outlets.json", "report.md",
                     "report.html", "outlets.csv", "paragraphs.csv", "prevalence.png", "differences.png"}


def test_paragraphs_carry_their_document_and_evidence_fields(run):
    rows = [json.loads(line) for line in (run / "paragraphs.jsonl").read_text("utf-8").splitlines()]
    assert len(rows) == 8
    for row in rows:
        assert row["title"].startswith("Title of ") and row["url"].startswith("https://example.org/")
        assert row["date"].startswith("2024-05-0")
        assert row["voice"] in ("own", "quoted") and row["counted"] in (True, False)
        assert len(row["neighbours"]) == 3 and all(i >= 0 and -1 <= s <= 1 for i, s in row["neighbours"])
    documents = [json.loads(line) for line in (run / "documents.jsonl").read_text("utf-8").splitlines()]
    assert all(sum(d["shares"].values()) == pytest.approx(1, abs=1e-3) for d in documents if d["paragraphs"])


def test_report_html_is_self_contained_and_escapes_document_text(run):
    page = (run / "report.html").read_text("utf-8")
    assert "Content-Security-Policy" in page and "default-src" in page
    assert "<script>alert(1)</script>" not in page  # only ever as escaped data
    assert "src=\"http" not in page and "href=\"http" not in page  # links are built from data, as text-checked
    assert "Alpha Wire" in page and "Title of alpha.txt" in page


def test_csvs_neutralise_formulas(run):
    with open(run / "outlets.csv", encoding="utf-8-sig", newline="") as stream:
        outlets = list(csv.DictReader(stream))
    assert {row["outlet"] for row in outlets} >= {"Alpha Wire", "Beta Daily"}
    hostile = [row for row in outlets if "HYPERLINK" in row["outlet"]]
    assert hostile and all(not row["outlet"].startswith(("=", "+", "-", "@")) for row in hostile)
    with open(run / "paragraphs.csv", encoding="utf-8-sig", newline="") as stream:
        paragraphs = list(csv.DictReader(stream))
    assert len(paragraphs) == 8 and all(row["text"] for row in paragraphs)


def test_report_md_escapes_outlet_names_and_embeds_its_charts(run):
    report = (run / "report.md").read_text("utf-8")
    assert "![Prevalence per outlet with 95% intervals](prevalence.png)" in report
    lines = report.splitlines()
    cells = re.compile(r"(?<!\\)\|")  # a | that is not escaped starts a cell
    hostile = [i for i, line in enumerate(lines) if line.startswith("| ") and "script" in line]
    assert hostile
    for i in hostile:  # the row has as many cells as the row above it: the name broke nothing
        assert len(cells.findall(lines[i])) == len(cells.findall(lines[i - 1])), (lines[i - 1], lines[i])
    assert "\\|" in lines[hostile[0]] and "<script>" not in report
    assert not any(line.startswith("#") and "HYPERLINK" in line and not line.startswith("### ") for line in
                   report.splitlines())
    assert (run / "prevalence.png").read_bytes().startswith(b"\x89PNG")


def test_framing_report_rebuilds_the_same_numbers_without_a_model(run, tmp_path, monkeypatch):
    monkeypatch.delitem(embed._REGISTERED, FakeEmbedder.name)  # no embedder could be built now
    rebuilt = tmp_path / "rebuilt"
    result = report_paragraphs(run / "paragraphs.jsonl", rebuilt)
    original = json.loads((run / "outlets.json").read_text("utf-8"))
    assert json.loads((rebuilt / "outlets.json").read_text("utf-8")) == original
    assert result.n_paragraphs == 8 and (rebuilt / "report.html").is_file()
    cli = CliRunner().invoke(app, ["report", str(rebuilt / "paragraphs.jsonl")])
    assert cli.exit_code == 0, cli.stderr
    assert json.loads((rebuilt / "outlets.json").read_text("utf-8")) == original  # rebuilt in place, same


def test_framing_compare_reads_the_saved_differences(run):
    result = CliRunner().invoke(app, ["compare", "Alpha Wire", "Beta Daily", "--reports", str(run)])
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.split() and line.split()[0] in
             ("state_aligned", "western_critical", "neutral_wire")]
    assert len(lines) == 3
    flipped = CliRunner().invoke(app, ["compare", "Beta Daily", "Alpha Wire", "--reports", str(run)])
    first = {line.split()[0]: line.split()[1] for line in lines}
    second = {line.split()[0]: line.split()[1] for line in flipped.stdout.splitlines()
              if line.split() and line.split()[0] in first}
    assert all(float(first[k].rstrip("%")) == pytest.approx(-float(second[k].rstrip("%")), abs=0.11) for k in first)
    missing = CliRunner().invoke(app, ["compare", "Alpha Wire", "Nobody", "--reports", str(run)])
    assert missing.exit_code == 2 and "no outlet 'Nobody'" in missing.stderr


def test_the_terminal_table_shows_control_characters_instead_of_running_them(tmp_path):
    from framing.report import terminal

    assert "\x1b" not in terminal("\x1b[2J\x1b[31mRed Outlet")
    assert len(terminal("x" * 500)) <= 40


@pytest.mark.skipif(os.environ.get("CI", "").lower() != "true" and not Path("/usr/bin/chromium").exists(),
                    reason="Chromium is not installed (apt-get install chromium)")
def test_the_run_s_report_html_renders_in_chromium_with_no_error_or_request(run, tmp_path):
    from headless import open_page

    page = run / "report.html"
    shot = tmp_path / "run.png"
    result = open_page(page, "(() => ({text: document.body.innerText}))()", screenshot=shot)
    assert result.ready and result.errors == [] and result.dialogs == []
    assert [u for u in result.requests if not u.startswith("data:")] == [page.resolve().as_uri()]
    assert "<script>alert(1)</script>" in result.values["text"]  # shown as text
    assert shot.read_bytes().startswith(b"\x89PNG")
