"""readers: paths -> Documents. Formats, folders, encodings, the manifest, and the errors a user can hit."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from framing.errors import InputError
from framing.readers import ReadOptions, read_documents

BODY = ("Ministers from both countries met in Geneva on Monday to discuss grain exports.\n\n"
        "The talks ended without a joint statement, officials said.\n")

# A small article page: a header with a logo and menu, share buttons, four body paragraphs,
# a related-stories box and a footer. Only the four paragraphs (and the headline) are the article.
ARTICLE_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Port of Valdora reopens after storm | The Harbour Courier</title>
  <meta property="og:site_name" content="The Harbour Courier">
  <meta property="og:title" content="Port of Valdora reopens after three-day storm closure">
  <meta property="article:published_time" content="2024-03-05T08:30:00Z">
  <link rel="canonical" href="https://harbourcourier.example/news/valdora-port-reopens">
</head>
<body>
  <header>
    <div class="logo">The Harbour Courier</div>
    <nav class="main-menu">
      <ul>
        <li><a href="/">Home</a></li>
        <li><a href="/world">World Affairs Desk</a></li>
        <li><a href="/business">Business and Markets</a></li>
        <li><a href="/sport">Sport Results Today</a></li>
      </ul>
    </nav>
  </header>
  <main>
    <article>
      <h1>Port of Valdora reopens after three-day storm closure</h1>
      <p class="byline">By Mara Lindqvist, March 5, 2024</p>
      <div class="share-buttons">
        <a href="https://facebook.com/share">Share on Facebook</a>
        <a href="https://twitter.com/share">Share on Twitter</a>
        <a href="mailto:?subject=story">Email this story</a>
      </div>
      <p>The Port of Valdora reopened to commercial shipping on Tuesday morning after a three-day closure caused
      by the strongest winter storm to hit the coast in a decade, harbour officials said.</p>
      <p>Around forty cargo vessels that had been waiting at anchor outside the breakwater began entering the
      harbour shortly after dawn, guided by pilot boats that had been confined to their moorings since Saturday.</p>
      <p>The harbour master, Teodor Brandt, told reporters that divers had inspected the main quay walls overnight
      and found only minor damage to two mooring bollards, which would be replaced within the week.</p>
      <p>Local fishing cooperatives said the closure had cost their members several days of income, and they
      asked the regional council to speed up promised payments from the coastal resilience fund.</p>
    </article>
    <aside class="related">
      <h2>Related stories</h2>
      <ul>
        <li><a href="/news/1">Storm warning issued for the northern coast as winds strengthen overnight</a></li>
        <li><a href="/news/2">Council approves new breakwater budget after lengthy public debate</a></li>
        <li><a href="/news/3">Fishing fleet returns early as forecasters predict gale force winds</a></li>
      </ul>
    </aside>
  </main>
  <footer>
    <p>Copyright 2024 The Harbour Courier. All rights reserved.</p>
    <ul>
      <li><a href="/privacy">Privacy policy</a></li>
      <li><a href="/terms">Terms of use</a></li>
      <li><a href="/contact">Contact the newsroom team today</a></li>
    </ul>
  </footer>
</body>
</html>
"""
HTML_BODY_STARTS = ("The Port of Valdora reopened to commercial shipping", "Around forty cargo vessels",
                    "The harbour master, Teodor Brandt", "Local fishing cooperatives said")
HTML_FURNITURE = ("World Affairs Desk", "Business and Markets", "Share on Facebook", "Share on Twitter",
                  "Email this story", "Related stories", "Storm warning issued", "Council approves",
                  "Fishing fleet returns", "Copyright 2024", "All rights reserved", "Privacy policy",
                  "Terms of use", "Contact the newsroom")


def read_all(*paths, options: ReadOptions = ReadOptions()):
    warnings: list[str] = []
    documents = list(read_documents(list(paths), options, warnings.append))
    return documents, warnings


# --- formats ----------------------------------------------------------------------------------------

def test_txt_file_is_one_document_with_normalised_line_endings(tmp_path):
    path = tmp_path / "story.txt"
    path.write_bytes(BODY.replace("\n", "\r\n").encode())
    (document,), warnings = read_all(path)
    assert document.text == BODY
    assert document.format == "txt"
    assert document.id == document.path == path.as_posix()
    assert document.outlet == "unknown"
    assert warnings == []


def test_md_file_keeps_its_format_for_the_segmenter(tmp_path):
    path = tmp_path / "story.md"
    path.write_text("# Talks in Geneva\n\n" + BODY, encoding="utf-8")
    (document,), _ = read_all(path)
    assert document.format == "md"
    assert document.text.startswith("# Talks in Geneva\n")


def test_html_keeps_the_article_body_and_drops_the_page_furniture(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(ARTICLE_HTML, encoding="utf-8")
    (document,), _ = read_all(path)
    expected = [" ".join(p.split()) for p in ARTICLE_HTML.split("<p>")[1:] if p.startswith(HTML_BODY_STARTS)]
    expected = [p.split("</p>")[0] for p in expected]
    assert len(expected) == 4
    # the headline, then the four paragraphs whole (each joined across its wrap in the page source)
    assert document.text.split("\n\n") == ["Port of Valdora reopens after three-day storm closure", *expected]
    for furniture in HTML_FURNITURE:
        assert furniture not in document.text, furniture
    assert document.format == "html"
    assert document.title == "Port of Valdora reopens after three-day storm closure"
    assert document.date == "2024-03-05"
    assert document.url == "https://harbourcourier.example/news/valdora-port-reopens"
    assert document.outlet == "The Harbour Courier"  # og:site_name, as nothing better says otherwise


def test_jsonl_records_need_only_text(tmp_path):
    path = tmp_path / "feed.jsonl"
    records = [{"text": "Only the text of this record is given."},
               {"text": "A full record.", "id": "gt-42", "outlet": "Global Times", "date": "2024-04-09",
                "url": "https://example.org/42", "title": "A title"},
               {"text": "A numeric id.", "id": 7}]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    documents, _ = read_all(path)
    assert [d.text for d in documents] == [r["text"] for r in records]
    bare, full, numeric = documents
    assert bare.id == f"{path.as_posix()}:1"
    assert (bare.outlet, bare.date, bare.url, bare.title) == ("unknown", None, None, None)
    assert (full.id, full.outlet, full.date, full.url, full.title) == \
        ("gt-42", "Global Times", "2024-04-09", "https://example.org/42", "A title")
    assert numeric.id == "7"
    assert {d.format for d in documents} == {"jsonl"}


def test_jsonl_record_without_text_is_refused_with_its_line(tmp_path):
    path = tmp_path / "feed.jsonl"
    path.write_text('{"text": "Fine."}\n{"title": "no text here"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"feed\.jsonl:2: missing 'text'"):
        read_all(path)


def test_folders_are_read_recursively_in_sorted_order(tmp_path):
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    (tmp_path / "a.txt").write_text("first", encoding="utf-8")
    (tmp_path / "b" / "c.md").write_text("second", encoding="utf-8")
    (tmp_path / "b" / "deeper" / "d.jsonl").write_text('{"text": "third"}\n', encoding="utf-8")
    (tmp_path / "b" / "notes.csv").write_text("not,a,document\n", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("hidden", encoding="utf-8")
    documents, _ = read_all(tmp_path)
    assert [d.text for d in documents] == ["first", "second", "third"]


# --- encodings --------------------------------------------------------------------------------------

TRICKY = "Le café “Bon Accueil” – it’s open again, the owner said.\nA second line.\n"


@pytest.mark.parametrize("encoded", [
    pytest.param(TRICKY.encode("utf-8"), id="utf-8"),
    pytest.param(codecs.BOM_UTF8 + TRICKY.encode("utf-8"), id="utf-8-bom"),
    pytest.param(codecs.BOM_UTF16_LE + TRICKY.encode("utf-16-le"), id="utf-16-le-bom"),
    pytest.param(codecs.BOM_UTF16_BE + TRICKY.encode("utf-16-be"), id="utf-16-be-bom"),
    pytest.param(TRICKY.encode("utf-16-le"), id="utf-16-le-no-bom"),
    pytest.param(TRICKY.encode("cp1252"), id="cp1252"),
    pytest.param(TRICKY.replace("\n", "\r\n").encode("cp1252"), id="cp1252-crlf"),
])
def test_encodings_decode_to_the_same_text(tmp_path, encoded):
    path = tmp_path / "story.txt"
    path.write_bytes(encoded)
    (document,), warnings = read_all(path)
    assert document.text == TRICKY
    assert warnings == []


def test_cp1252_bytes_are_really_not_utf8():
    # guards the test above: the cp1252 case must exercise the fallback, not the UTF-8 path
    with pytest.raises(UnicodeDecodeError):
        TRICKY.encode("cp1252").decode("utf-8")


def test_jsonl_in_utf16_with_bom(tmp_path):
    path = tmp_path / "feed.jsonl"
    path.write_bytes(codecs.BOM_UTF16_LE + '{"text": "Café “talks” resumed."}\n'.encode("utf-16-le"))
    (document,), _ = read_all(path)
    assert document.text == "Café “talks” resumed."


def test_binary_file_with_txt_extension_is_skipped_with_a_warning(tmp_path):
    (tmp_path / "good.txt").write_text(BODY, encoding="utf-8")
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    documents, warnings = read_all(tmp_path)
    assert [Path(d.path).name for d in documents] == ["good.txt"]
    assert len(warnings) == 1
    assert "image.txt" in warnings[0] and "binary" in warnings[0]


# --- errors ------------------------------------------------------------------------------------------

def test_missing_path_raises_input_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(InputError, match="no such file or folder") as caught:
        read_all(missing)
    assert str(missing) in str(caught.value)


def test_empty_folder_raises_input_error(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(InputError, match="no readable documents") as caught:
        read_all(folder)
    assert str(folder) in str(caught.value)
    assert ".txt" in str(caught.value)  # says what it looked for


def test_folder_with_only_a_binary_file_raises_input_error(tmp_path):
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    warnings: list[str] = []
    with pytest.raises(InputError, match="no readable documents"):
        list(read_documents([tmp_path], warn=warnings.append))
    assert any("image.txt" in w for w in warnings)


def test_malformed_jsonl_line_raises_input_error_naming_the_line(tmp_path):
    path = tmp_path / "feed.jsonl"
    path.write_text('{"text": "one"}\n{"text": "two"\n{"text": "three"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"feed\.jsonl:2: malformed JSON") as caught:
        read_all(path)
    assert "--bad-lines skip" in str(caught.value)  # says how to get past it


def test_malformed_jsonl_line_is_skipped_with_a_warning_when_asked(tmp_path):
    path = tmp_path / "feed.jsonl"
    path.write_text('{"text": "one"}\n{"text": "two"\n["not", "an", "object"]\n{"text": "four"}\n',
                    encoding="utf-8")
    documents, warnings = read_all(path, options=ReadOptions(bad_lines="skip"))
    assert [d.text for d in documents] == ["one", "four"]
    assert len(warnings) == 2
    assert "feed.jsonl:2" in warnings[0] and "malformed JSON" in warnings[0]
    assert "feed.jsonl:3" in warnings[1]


def test_file_over_the_size_limit_is_skipped_with_a_warning(tmp_path):
    (tmp_path / "small.txt").write_text("short", encoding="utf-8")
    (tmp_path / "large.txt").write_text("x" * 2000, encoding="utf-8")
    documents, warnings = read_all(tmp_path, options=ReadOptions(max_bytes=1000))
    assert [d.text for d in documents] == ["short"]
    assert len(warnings) == 1 and "large.txt" in warnings[0]


# --- sources.csv ------------------------------------------------------------------------------------

def test_manifest_sets_outlet_date_url_and_title(tmp_path):
    (tmp_path / "a.txt").write_text(BODY, encoding="utf-8")
    (tmp_path / "b.txt").write_text(BODY, encoding="utf-8")
    (tmp_path / "sources.csv").write_text(
        "file,outlet,date,url,title\n"
        'a.txt,Global Times,2024-04-09,https://example.org/a,"Talks, in Geneva"\n', encoding="utf-8")
    documents, warnings = read_all(tmp_path)
    a, b = documents
    assert (a.outlet, a.date, a.url, a.title) == ("Global Times", "2024-04-09", "https://example.org/a",
                                                  "Talks, in Geneva")
    assert (b.outlet, b.date, b.title) == ("unknown", None, None)  # not listed: nothing invented
    assert warnings == []


def test_manifest_applies_only_to_its_own_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text(BODY, encoding="utf-8")
    (tmp_path / "sub" / "a.txt").write_text(BODY, encoding="utf-8")
    (tmp_path / "sub" / "sources.csv").write_text("file,outlet\na.txt,Sub Outlet\n", encoding="utf-8")
    documents, _ = read_all(tmp_path)
    assert {Path(d.path).relative_to(tmp_path).as_posix(): d.outlet for d in documents} == \
        {"a.txt": "unknown", "sub/a.txt": "Sub Outlet"}


def test_manifest_naming_a_missing_file_warns(tmp_path):
    (tmp_path / "a.txt").write_text(BODY, encoding="utf-8")
    (tmp_path / "sources.csv").write_text("file,outlet\na.txt,One\nghost.txt,Two\n", encoding="utf-8")
    documents, warnings = read_all(tmp_path)
    assert documents[0].outlet == "One"
    assert len(warnings) == 1 and "ghost.txt" in warnings[0]


def test_manifest_without_an_outlet_column_is_refused(tmp_path):
    (tmp_path / "a.txt").write_text(BODY, encoding="utf-8")
    (tmp_path / "sources.csv").write_text("file,publisher,date\na.txt,Global Times,2024-04-09\n",
                                          encoding="utf-8")
    with pytest.raises(InputError, match="'outlet'") as caught:
        read_all(tmp_path)
    assert "sources.csv" in str(caught.value)


def test_manifest_row_with_an_empty_outlet_is_refused_with_its_line(tmp_path):
    (tmp_path / "a.txt").write_text(BODY, encoding="utf-8")
    (tmp_path / "sources.csv").write_text("file,outlet\na.txt,\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"sources\.csv:2:"):
        read_all(tmp_path)
