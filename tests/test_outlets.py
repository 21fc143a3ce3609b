"""outlets: who published a document. Manifest > JSONL outlet > masthead/credit in text > HTML site name > unknown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from framing.outlets import UNKNOWN, attribute_outlet
from framing.readers import read_documents

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
BODY = "Diplomats from both countries met on Tuesday to discuss trade and energy, officials said."
MASTHEAD_TEXT = f"Global Times\n\n{BODY}\n"
CREDIT_TEXT = f" date 2024-05-17 (MENAFN- Khaama Press)\n\n{BODY}\n"
PAGE = """<html><head><meta property="og:site_name" content="Some Portal"><title>Talks</title></head><body>
<article>{masthead}
<p>Chinese and Russian diplomats met in Beijing on Tuesday to discuss trade, energy and the situation in the
region, officials said.</p>
<p>Both sides agreed to hold another round of talks before the end of the year, according to a statement
released after the meeting.</p>
</article></body></html>
"""


def outlets_by_name(*paths) -> dict[str, tuple[str, str | None]]:
    return {Path(d.path).name if d.format != "jsonl" else d.id: (d.outlet, d.publisher)
            for d in read_documents(list(paths))}


# --- the rules, one by one ------------------------------------------------------------------------

def test_al_mayadeen_english_masthead():
    assert attribute_outlet(f"Al Mayadeen English\n\n  • Ar\n{BODY}") == ("Al Mayadeen", None)


def test_menafn_dateline_gives_syndicator_and_original_publisher():
    assert attribute_outlet(CREDIT_TEXT) == ("MENAFN", "Khaama Press")


def test_declared_outlet_keeps_the_credited_publisher():
    assert attribute_outlet(CREDIT_TEXT, declared="Manifest Outlet") == ("Manifest Outlet", "Khaama Press")


def test_declared_outlet_beats_a_masthead():
    assert attribute_outlet(MASTHEAD_TEXT, declared="  Declared Outlet ") == ("Declared Outlet", None)


@pytest.mark.parametrize(("text", "expected"), [(MASTHEAD_TEXT, ("Global Times", None)),
                                                (CREDIT_TEXT, ("MENAFN", "Khaama Press"))])
def test_text_evidence_beats_the_html_site_name(text, expected):
    assert attribute_outlet(text, site_name="Some Portal") == expected


def test_site_name_is_used_when_the_text_says_nothing():
    assert attribute_outlet(BODY, site_name=" Some Portal ") == ("Some Portal", None)


def test_unknown_when_nothing_says():
    assert attribute_outlet(BODY) == (UNKNOWN, None)
    assert attribute_outlet(BODY, declared="  ", site_name="") == (UNKNOWN, None)


def test_masthead_must_be_a_whole_line_near_the_top():
    mention = "Global Times reported on Tuesday that the two ministers had met in Beijing."
    assert attribute_outlet(f"{mention}\n{BODY}") == (UNKNOWN, None)
    far_down = "\n".join([BODY] * 10 + ["Global Times"])
    assert attribute_outlet(far_down) == (UNKNOWN, None)


# --- the order, through the reader ----------------------------------------------------------------

def test_manifest_beats_jsonl_outlet(tmp_path):
    (tmp_path / "feed.jsonl").write_text(json.dumps({"id": "r1", "text": BODY, "outlet": "Record Outlet"}) + "\n",
                                         encoding="utf-8")
    (tmp_path / "sources.csv").write_text("file,outlet\nfeed.jsonl,Manifest Outlet\n", encoding="utf-8")
    assert outlets_by_name(tmp_path) == {"r1": ("Manifest Outlet", None)}


def test_manifest_beats_masthead(tmp_path):
    (tmp_path / "a.txt").write_text(MASTHEAD_TEXT, encoding="utf-8")
    (tmp_path / "sources.csv").write_text("file,outlet\na.txt,Manifest Outlet\n", encoding="utf-8")
    assert outlets_by_name(tmp_path) == {"a.txt": ("Manifest Outlet", None)}


def test_jsonl_outlet_beats_masthead(tmp_path):
    path = tmp_path / "feed.jsonl"
    records = [{"id": "declared", "text": MASTHEAD_TEXT, "outlet": "Record Outlet"},
               {"id": "masthead", "text": MASTHEAD_TEXT}]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    assert outlets_by_name(path) == {"declared": ("Record Outlet", None), "masthead": ("Global Times", None)}


def test_html_masthead_beats_site_name_and_site_name_beats_unknown(tmp_path):
    (tmp_path / "with_masthead.html").write_text(PAGE.format(masthead="<p>Global Times</p>"), encoding="utf-8")
    (tmp_path / "without.html").write_text(PAGE.format(masthead=""), encoding="utf-8")
    assert outlets_by_name(tmp_path) == {"with_masthead.html": ("Global Times", None),
                                         "without.html": ("Some Portal", None)}


# --- the seeds ----------------------------------------------------------------------------------------

def test_seeds_folder_outlets():
    assert outlets_by_name(SEEDS) == {
        "000_96dfebc2af1ba5bf.txt": ("unknown", None),  # not in sources.csv, no masthead
        "001_d74d3e3d1cd4878b.txt": ("Al Mayadeen", None),
        "002_c5c4c158f6d558ed.txt": ("Global Times", None),
        "003_83c0fac24c7e58fd.txt": ("Ednews", None),
        "004_6d19e31ed154d90d.txt": ("MENAFN", "Khaama Press"),
    }


def test_seed_copies_without_manifest_are_attributed_from_their_text(tmp_path):
    for name in ("001_d74d3e3d1cd4878b.txt", "004_6d19e31ed154d90d.txt"):
        shutil.copy(SEEDS / name, tmp_path / name)
    assert not (tmp_path / "sources.csv").exists()
    assert outlets_by_name(tmp_path) == {"001_d74d3e3d1cd4878b.txt": ("Al Mayadeen", None),
                                         "004_6d19e31ed154d90d.txt": ("MENAFN", "Khaama Press")}
