"""report.html and its parts: vocabulary, voice, shared passages, CSV export, PNG charts, and a real browser."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import shutil
from collections import Counter

import pytest
from headless import missing, open_page  # tests/headless.py
from report_sample import LABELS, sample_report_data  # tests/report_sample.py

from framing import charts, csvout, htmlreport, passages, quotes, vocabulary
from framing.errors import OutputError

XSS = "<script>alert(1)</script>"
XSS_IMG = '<img src=x onerror="alert(2)">'


# --- vocabulary -------------------------------------------------------------------------------------------

def test_terms_drop_stop_words_and_keep_content_bigrams():
    counts = vocabulary.terms("The win-win partnership of the two sides entered a new era.")
    assert counts["win-win"] == 1 and counts["partnership"] == 1 and counts["new era"] == 1
    assert "the" not in counts and "of" not in counts
    assert "partnership of" not in counts  # a bigram needs two content words in a row
    assert "win-win partnership" in counts


def test_log_odds_finds_each_outlets_own_words():
    per_outlet = {
        "Harbour Daily": Counter({"hegemony": 30, "sanctions": 25, "talks": 20, "trade": 20}),
        "Meridian Post": Counter({"partnership": 30, "friendship": 25, "talks": 20, "trade": 20}),
        "Atlas Wire": Counter({"customs": 30, "figures": 25, "talks": 20, "trade": 20}),
    }
    top = vocabulary.top_terms(per_outlet, n=2)
    assert {t for t, _ in top["Harbour Daily"]} == {"hegemony", "sanctions"}
    assert {t for t, _ in top["Meridian Post"]} == {"partnership", "friendship"}
    z = vocabulary.log_odds(per_outlet)
    assert z["Harbour Daily"]["hegemony"] > 3 > abs(z["Harbour Daily"]["talks"])  # shared words score near zero


def test_prior_shrinks_rare_terms_below_frequent_ones():
    per_outlet = {"A": Counter({"rare": 2, "common": 40, "x": 100}), "B": Counter({"common": 4, "x": 100})}
    z = vocabulary.log_odds(per_outlet)["A"]
    assert z["common"] > z["rare"] > 0


def test_counts_merge_in_any_order_and_prune():
    a, b = vocabulary.VocabularyCounts(), vocabulary.VocabularyCounts()
    a.add("X", "sanctions sanctions hegemony")
    b.add("X", "sanctions")
    b.add("Y", "friendship sanctions")
    assert a.merge(b).per_outlet == b.merge(a).per_outlet
    pruned = a.merge(b).prune(2).per_outlet
    assert pruned["X"] == Counter({"sanctions": 3}) and pruned["Y"] == Counter({"sanctions": 1})


def test_single_outlet_has_nothing_to_contrast():
    assert vocabulary.top_terms({"Only": Counter({"word": 5})}) == {"Only": []}


# --- own voice and quotation ------------------------------------------------------------------------------

QUOTED = [
    "“We will never accept the hegemony of any single country over the affairs of the region,” the minister said.",
    "Foreign Ministry spokesperson Lin Ke said that Washington should stop interfering in other countries' affairs.",
    "According to the customs agency, trade between the two countries rose by a quarter in the first quarter.",
    "« Nous ne céderons jamais aux pressions extérieures, quelles qu'elles soient », a déclaré le porte-parole.",
    '"The partnership has no limits and no forbidden areas," the ambassador told reporters in the capital.',
    "Xi stressed that the relationship had gone far beyond ordinary bilateral ties.",
]
OWN = [
    "Trade between the two countries rose by a quarter last year, driven by energy and machinery exports.",
    "The editorial called the agreement a “new era” for both economies and urged readers to welcome it.",
    "It is said that the bridge will open next spring, though no date has been set for the ceremony.",
    "Analysts expect the pipeline to be finished by 2030, when the volumes are due to double.",
]


@pytest.mark.parametrize("text", QUOTED)
def test_quotation_and_attributed_speech_are_quoted(text):
    assert quotes.voice(text) == "quoted", quotes.assess(text)


@pytest.mark.parametrize("text", OWN)
def test_own_voice_stays_own_even_with_scare_quotes(text):
    assert quotes.voice(text) == "own", quotes.assess(text)


def test_quoted_share_counts_letters_inside_marks():
    assert quotes.quoted_share("„abcd“ efgh") == pytest.approx(0.5)
    assert quotes.quoted_share('an "unclosed quote') == 0.0


def test_letters_are_counted_as_str_isalpha_counts_them():
    rng = random.Random(7)  # ASCII, accented and other scripts, digits that are not letters (², ½, Ⅻ)
    alphabet = "aZ09 _-\"“”«»éßжД中あ²½Ⅻ٣\u0301\U00010400"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        assert quotes.count_letters(text) == sum(ch.isalpha() for ch in text), repr(text)


def test_thresholds_are_data():
    text = QUOTED[1]
    assert quotes.voice(text, quotes.VoiceRules(quoted_at=0.9)) == "own"


def test_voice_tally_merges_and_shares():
    a, b = quotes.VoiceTally(), quotes.VoiceTally()
    a.add("X", "own", "neutral_wire")
    a.add("X", "quoted", "state_aligned")
    b.add("X", "quoted", "western_critical")
    shares = a.merge(b).shares("X", LABELS)
    assert shares["own"]["neutral_wire"] == 1.0
    assert shares["quoted"] == {"state_aligned": 0.5, "western_critical": 0.5, "neutral_wire": 0.0}
    assert shares["n"] == {"own": 1, "quoted": 2}


# --- shared passages --------------------------------------------------------------------------------------

STATEMENT = ("The parties reaffirmed their commitment to strengthening coordination on regional security and agreed "
             "to hold the next round of consultations before the end of the year in the capital.")


def test_near_identical_paragraphs_across_outlets_are_one_passage():
    pairs = [("Harbour Daily", STATEMENT),
             ("Meridian Post", STATEMENT.replace("The parties", "the parties").replace(".", " .")),  # exact after norm
             ("Atlas Wire", STATEMENT.replace("in the capital", "in the Kazakh capital")),  # a changed word
             ("Harbour Daily", "Delegations met for three hours on Tuesday; no joint statement was issued and no "
                               "date was set for the next round of talks between them.")]
    found = passages.shared_passages(pairs)
    assert len(found) == 1
    assert found[0]["outlets"] == ["Atlas Wire", "Harbour Daily", "Meridian Post"] and found[0]["n"] == 3


def test_a_passage_one_outlet_repeats_is_not_shared_and_different_texts_do_not_join():
    pairs = [("A", STATEMENT), ("A", STATEMENT),
             ("B", "Trade in grain between the two countries reached a record in the first half, according to "
                   "customs figures released on Monday in the port city.")]
    assert passages.shared_passages(pairs) == []


def test_passage_index_merges_independent_of_order():
    left = passages.PassageIndex().add_all([("A", STATEMENT)])
    right = passages.PassageIndex().add_all([("B", STATEMENT.replace("capital", "Kazakh capital"))])
    assert left.merge(right).clusters() == right.merge(left).clusters()
    assert left.merge(right).clusters()[0]["outlets"] == ["A", "B"]


def test_short_lines_are_ignored():
    assert passages.shared_passages([("A", "Moscow, May 16"), ("B", "Moscow, May 16")]) == []


# --- CSV --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x.example\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_formula_cells_are_neutralised(cell):
    assert csvout.neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Global Times", "a=b", "", 3, -0.25])
def test_other_cells_are_kept(cell):
    assert csvout.neutralise(cell) == cell


def test_outlets_csv_round_trips_and_neutralises():
    data = sample_report_data(3, vocabulary=False)
    data["outlets"][0]["outlet"] = "=cmd|' /C calc'!A0"
    stream = io.StringIO()
    csvout.write_outlets_csv(stream, data["outlets"], LABELS)
    rows = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert rows[0]["outlet"] == "'=cmd|' /C calc'!A0"
    assert float(rows[1]["state_aligned_prevalence_low"]) <= float(rows[1]["state_aligned_prevalence"])
    assert "left_out_off_topic" in rows[0] and "quoted_neutral_wire" in rows[0]


def test_paragraphs_csv_streams_records():
    records = [{"doc": "a.txt", "outlet": "@evil", "index": 0, "text": "-1 reasons", "label": "neutral_wire",
                "scores": {"state_aligned": 0.1, "western_critical": 0.1, "neutral_wire": 0.8}, "lang": "en",
                "title": None}]
    stream = io.StringIO()
    assert csvout.write_paragraphs_csv(stream, records, LABELS) == 1
    row = next(csv.DictReader(io.StringIO(stream.getvalue())))
    assert row["outlet"] == "'@evil" and row["text"] == "'-1 reasons" and row["score_neutral_wire"] == "0.8"
    assert row["title"] == ""


# --- charts -----------------------------------------------------------------------------------------------

def test_charts_are_png_or_none_with_a_reason():
    data = sample_report_data(4, vocabulary=False)
    bars = charts.prevalence_chart(data["outlets"], LABELS)
    diffs = charts.differences_chart(data["comparisons"], LABELS)
    if charts.unavailable():
        assert bars is None and diffs is None
        pytest.skip(charts.unavailable())
    assert bars.startswith(b"\x89PNG") and diffs.startswith(b"\x89PNG")
    assert bars == charts.prevalence_chart(data["outlets"], LABELS)  # deterministic bytes


def test_chart_names_with_dollars_do_not_break_mathtext():
    if charts.unavailable():
        pytest.skip(charts.unavailable())
    data = sample_report_data(2, vocabulary=False)
    data["outlets"][0]["outlet"] = "$x^{2}$ Money $ News"
    assert charts.prevalence_chart(data["outlets"], LABELS).startswith(b"\x89PNG")


def test_same_colour_for_a_label_everywhere():
    assert charts.label_colours(LABELS) == dict(zip(LABELS, htmlreport.pack(sample_report_data(1))["colours"]))


# --- the HTML, without a browser ------------------------------------------------------------------------

def _blob(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    return json.loads(match.group(1))


def _hostile_data() -> dict:
    data = sample_report_data(3, vocabulary=False)
    old = data["outlets"][0]["outlet"]
    data["outlets"][0]["outlet"] = XSS
    for doc in data["documents"]:
        if doc["outlet"] == old:
            doc["outlet"], doc["title"], doc["url"] = XSS, XSS_IMG, "javascript:alert(3)"
    data["evidence"][XSS] = data["evidence"].pop(old)
    first = data["evidence"][XSS]["state_aligned"]
    first["confident"].insert(0, {"text": f"A paragraph that says {XSS} and {XSS_IMG} and </script><b>x</b>",
                                  "doc": "evil.html", "title": XSS, "date": "2024-01-01", "url": "javascript:alert(4)",
                                  "index": 0, "scores": {"state_aligned": 0.9, "western_critical": 0.05,
                                                         "neutral_wire": 0.05},
                                  "neighbours": [{"text": XSS, "label": "neutral_wire", "similarity": 0.5}]})
    data["notes"].append(f"a note with {XSS}")
    data["title"] = f"Report {XSS} @JS@"
    data["passages"].append({"text": XSS, "outlets": [XSS, "Harbour Daily"], "n": 2})
    return data


def test_page_is_self_contained_with_a_strict_policy():
    page = htmlreport.render_html(sample_report_data(3))
    assert '<meta http-equiv="Content-Security-Policy" content="default-src &#x27;none&#x27;;' in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing to load from anywhere
    assert "@import" not in page and "url(" not in page
    assert "innerHTML" not in page and "eval(" not in page and "fetch(" not in page


def test_document_text_cannot_break_out():
    page = htmlreport.render_html(_hostile_data())
    assert XSS not in page and "<b>x</b>" not in page and XSS_IMG not in page
    assert page.count("</script>") == 2  # the data blob's and the script's own
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the title and note, escaped by Python
    blob = _blob(page)
    assert blob["outlets"][0]["name"] == XSS  # the data survive, as text
    assert "Report" in page and page.count("(function () {") == 1  # "@JS@" in the title was not expanded


def test_blob_escapes_markup_characters():
    text = htmlreport.script_json({"a": "</script><!-- & \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!-- & \u2028"}


def test_pack_stores_documents_and_training_paragraphs_once():
    data = sample_report_data(4, vocabulary=False)
    blob = htmlreport.pack(data)
    assert len({tuple(d) for d in blob["docs"]}) == len(blob["docs"])
    assert len(blob["train"]) <= 9  # the sample has nine training paragraphs, shown many times
    assert len(blob["outlets"]) == len(blob["articles"]) == len(blob["evidence"]) == 4


def test_articles_most_slanted_first_and_limited():
    data = sample_report_data(2, vocabulary=False)
    blob = htmlreport.pack(data, htmlreport.RenderOptions(max_documents_per_outlet=2))
    for i, listed in enumerate(blob["articles"]):
        slants = [a[3] for a in listed]
        assert slants == sorted(slants, reverse=True) and len(listed) <= 2
        assert blob["outlets"][i]["n_articles"] == data["outlets"][i]["documents"]


def test_invalid_data_is_an_output_error():
    with pytest.raises(OutputError, match="labels"):
        htmlreport.render_html({"outlets": []})
    with pytest.raises(OutputError, match="outlets"):
        htmlreport.render_html({"labels": LABELS, "outlets": [{"documents": 1}]})


def test_share_is_shown_where_there_is_no_corrected_prevalence():
    data = sample_report_data(1, vocabulary=False)
    data["outlets"][0]["prevalence"] = {}
    packed = htmlreport.pack(data)["outlets"][0]
    assert packed["est"] == [data["outlets"][0]["share"][label] for label in LABELS] and not packed["corrected"]


# --- a real browser ---------------------------------------------------------------------------------------

def _need_browser():
    reason = missing()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the browser test: {reason}")
        pytest.skip(reason)


INTERACT = """(async () => {
  const pause = () => new Promise(r => setTimeout(r, 50));
  const out = {};
  out.bars = document.querySelectorAll('#overview-chart rect').length;
  out.rows = document.querySelectorAll('#outlet-rows tr').length;
  const head = [...document.querySelectorAll('#outlet-table th button')].find(b => b.textContent === 'Outlet');
  head.click(); await pause();
  out.firstSorted = document.querySelector('#outlet-rows tr td').textContent;
  document.getElementById('expand').click(); await pause();
  const ev = document.querySelector('details.ev'); ev.open = true; await pause();
  out.neighbours = ev.querySelectorAll('.nb li').length;
  out.strips = document.querySelectorAll('svg.strip rect').length;
  out.diffRows = document.querySelectorAll('#diff-chart circle').length;
  document.getElementById('diff-only').click(); await pause();
  out.diffExcluding = document.querySelectorAll('#diff-chart circle').length;
  out.passages = document.querySelectorAll('.passage').length;
  out.text = document.body.innerText;
  out.scripts = document.scripts.length;
  out.links = [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))
    .filter(h => !h.startsWith('#'));
  return out;
})()"""


def test_report_renders_in_chromium_without_errors_or_requests(tmp_path):
    _need_browser()
    path = tmp_path / "report.html"
    path.write_text(htmlreport.render_html(sample_report_data(5)), encoding="utf-8")
    shot = tmp_path / "report.png"
    run = open_page(path, INTERACT, screenshot=shot)
    assert run.ready, run.errors
    assert run.errors == [] and run.dialogs == []
    assert [u for u in run.requests if not u.startswith("data:")] == [path.resolve().as_uri()]
    v = run.values
    assert v["bars"] == 5 * 3 and v["rows"] == 5 and v["neighbours"] == 3 and v["strips"] > 0
    assert v["firstSorted"] == sorted(o["outlet"] for o in sample_report_data(5)["outlets"])[0]
    assert v["diffRows"] == 30 and v["diffExcluding"] <= v["diffRows"] and v["passages"] >= 1
    assert all(link.startswith("https://") for link in v["links"])
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000
    keep = os.environ.get("FRAMING_SCREENSHOT")  # CI keeps the picture as an artifact
    if keep:
        shutil.copyfile(shot, keep)
    print(f"screenshot: {keep or shot}")


def test_hostile_text_shows_and_runs_nothing_in_chromium(tmp_path):
    _need_browser()
    path = tmp_path / "report.html"
    path.write_text(htmlreport.render_html(_hostile_data()), encoding="utf-8")
    run = open_page(path, INTERACT)
    assert run.ready and run.dialogs == [] and run.errors == []
    assert [u for u in run.requests if not u.startswith("data:")] == [path.resolve().as_uri()]
    v = run.values
    assert XSS in v["text"] and XSS_IMG in v["text"]  # shown as text
    assert v["scripts"] == 2  # no script element was added
    assert not any(link.lower().startswith("javascript:") for link in v["links"])


def test_five_thousand_outlets_render_in_chromium(tmp_path):
    _need_browser()
    path = tmp_path / "report.html"
    path.write_text(htmlreport.render_html(sample_report_data(5000, vocabulary=False)), encoding="utf-8")
    run = open_page(path, """({bars: document.querySelectorAll('#overview-chart svg > text.name').length,
        rows: document.querySelectorAll('#outlet-rows tr').length,
        count: document.getElementById('filter-count').textContent})""", timeout=180)
    assert run.ready and run.errors == [] and run.dialogs == []
    assert run.values == {"bars": 25, "rows": 50, "count": "5,000 outlets"}


def test_passage_indexes_fold_in_place_as_they_merge():
    """The Ray driver folds each block's passage index into its own in place (a copy per block would be
    quadratic): the same clusters as merging, in any order, and the blocks' indexes are left as they were."""
    from framing.passages import PassageIndex

    shared = "The two ministers agreed to extend the grain corridor for another year, officials said on Friday."
    other = "Heavy rain closed the mountain pass for a second day, and traffic was sent through the valley road."
    blocks = [PassageIndex().add_all([("Outlet A", shared), ("Outlet A", other)]),
              PassageIndex().add_all([("Outlet B", shared)]),
              PassageIndex().add_all([("Outlet C", shared + " "), ("Outlet C", other)])]
    before = [{key: (entry.text, dict(entry.outlets)) for key, entry in b.entries.items()} for b in blocks]
    folded = PassageIndex()
    for block in blocks:
        folded.update(block)
    merged = blocks[2].merge(blocks[0]).merge(blocks[1])
    assert folded.clusters() == merged.clusters()
    assert folded.clusters()[0]["outlets"] == ["Outlet A", "Outlet B", "Outlet C"]
    folded.update(blocks[0])  # counts add up; the block's own counters are not the folded ones
    assert [{key: (entry.text, dict(entry.outlets)) for key, entry in b.entries.items()} for b in blocks] == before
