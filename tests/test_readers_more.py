"""readers, continued: document keys, links out of the tree, the per-article size limit, Parquet,
outlet spellings and HTML metadata."""

from __future__ import annotations

import codecs
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from framing.errors import InputError
from framing.outlets import UNKNOWN, canonical_outlet, outlet_key
from framing.readers import BadLines, ReadOptions, extract_html, read_aliases, read_documents

ROOT = Path(__file__).resolve().parent.parent
HTML_DATA = Path(__file__).resolve().parent / "data" / "html"
BODY = "Ministers from both countries met in Geneva on Monday to discuss grain exports, officials said."


def read_all(*paths, **options):
    warnings: list[str] = []
    documents = list(read_documents(list(paths), ReadOptions(**options), warnings.append))
    return documents, warnings


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# --- keys ----------------------------------------------------------------------------------------------

def test_same_id_twice_in_one_file_gives_two_documents_with_their_own_outlets(tmp_path):
    feed = write_jsonl(tmp_path / "feed.jsonl", [{"id": "7", "text": BODY, "outlet": "Harbour Courier"},
                                                 {"id": "7", "text": BODY, "outlet": "Valley Gazette"}])
    (first, second), _ = read_all(feed)
    assert first.id == second.id == "7"  # the user's id, kept for display
    assert (first.key, second.key) == (f"{feed.as_posix()}#1", f"{feed.as_posix()}#2")
    assert (first.outlet, second.outlet) == ("Harbour Courier", "Valley Gazette")


def test_same_id_in_two_files_under_different_outlets_gives_two_keys(tmp_path):
    one = write_jsonl(tmp_path / "one" / "feed.jsonl", [{"id": "a-1", "text": BODY}])
    two = write_jsonl(tmp_path / "two" / "feed.jsonl", [{"id": "a-1", "text": BODY}])
    (tmp_path / "one" / "sources.csv").write_text("file,outlet\nfeed.jsonl,Harbour Courier\n", encoding="utf-8")
    (tmp_path / "two" / "sources.csv").write_text("file,outlet\nfeed.jsonl,Valley Gazette\n", encoding="utf-8")
    documents, warnings = read_all(tmp_path)
    assert [(d.id, d.key, d.outlet) for d in documents] == [
        ("a-1", f"{one.as_posix()}#1", "Harbour Courier"), ("a-1", f"{two.as_posix()}#1", "Valley Gazette")]
    assert warnings == []


def test_keys_are_the_path_for_one_document_files_and_the_line_for_records(tmp_path):
    story = tmp_path / "story.txt"
    story.write_text(BODY, encoding="utf-8")
    feed = tmp_path / "feed.jsonl"
    feed.write_text(f'\n{{"text": "{BODY}"}}\n\n{{"text": "{BODY}"}}\n', encoding="utf-8")  # blank lines count
    documents, _ = read_all(tmp_path)
    assert [d.key for d in documents] == [f"{feed.as_posix()}#2", f"{feed.as_posix()}#4", story.as_posix()]
    assert len({d.key for d in documents}) == 3


def test_a_file_named_twice_is_read_once(tmp_path):
    story = tmp_path / "story.txt"
    story.write_text(BODY, encoding="utf-8")
    documents, warnings = read_all(story, tmp_path)
    assert [d.key for d in documents] == [story.as_posix()]
    assert len(warnings) == 1 and "already read" in warnings[0] and str(story) in warnings[0]


# --- symbolic links ------------------------------------------------------------------------------------

def test_links_out_of_the_tree_are_skipped_and_named_links_inside_still_work(tmp_path):
    outside = tmp_path / "outside"
    (outside / "private").mkdir(parents=True)
    (outside / "secret.txt").write_text("A file that was never meant to be scored.", encoding="utf-8")
    (outside / "private" / "diary.txt").write_text("Nor was this one.", encoding="utf-8")
    tree = tmp_path / "tree"
    (tree / "archive").mkdir(parents=True)
    (tree / ".store").mkdir()
    (tree / "a.txt").write_text(BODY, encoding="utf-8")
    (tree / "archive" / "raw-story").write_text("Stored without a suffix.", encoding="utf-8")
    (tree / ".store" / "kept.txt").write_text("Stored in a hidden folder.", encoding="utf-8")
    (tree / "leak.txt").symlink_to(outside / "secret.txt")  # a file out of the tree
    (tree / "private").symlink_to(outside / "private", target_is_directory=True)  # a folder out of the tree
    (tree / "etc").symlink_to("/etc", target_is_directory=True)
    (tree / "story.txt").symlink_to(tree / "archive" / "raw-story")  # links inside the tree keep working
    (tree / "store").symlink_to(".store", target_is_directory=True)
    documents, warnings = read_all(tree)
    assert sorted(d.text for d in documents) == sorted([BODY, "Stored without a suffix.", "Stored in a hidden folder."])
    assert not any(Path(d.path).is_relative_to(outside) or d.path.startswith("/etc") for d in documents)
    for link in ("leak.txt", "private", "etc"):
        assert sum(str(tree / link) in w and "outside" in w for w in warnings) == 1, (link, warnings)
    assert len(warnings) == 3, warnings


def test_a_folder_named_through_a_link_is_read(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.txt").write_text(BODY, encoding="utf-8")
    (real / "same.txt").symlink_to(real / "a.txt")  # inside the tree: the same file, read once
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    documents, warnings = read_all(tmp_path / "alias")
    assert [d.key for d in documents] == [(tmp_path / "alias" / "a.txt").as_posix()]
    assert len(warnings) == 1 and "same.txt" in warnings[0] and "already read" in warnings[0]


# --- the size limit applies to one article ------------------------------------------------------------

def test_a_21_mb_jsonl_keeps_its_small_records_and_skips_the_one_huge_one(tmp_path):
    limit = ReadOptions().max_bytes
    small = [json.dumps({"id": f"r{i}", "text": f"Record {i}: {BODY}"}) for i in range(3000)]
    huge = json.dumps({"id": "huge", "text": "word " * (limit // 5 + 250_000)})
    feed = tmp_path / "big.jsonl"
    with feed.open("w", encoding="utf-8") as stream:
        stream.write("\n".join(small[:1500] + [huge] + small[1500:]) + "\n")
    assert feed.stat().st_size > 21_000_000 and len(huge) > limit
    documents, warnings = read_all(feed)
    assert [d.id for d in documents] == [f"r{i}" for i in range(3000)]
    assert documents[1500].key == f"{feed.as_posix()}#1502"  # line numbers count the skipped line
    assert len(warnings) == 1
    assert f"{feed}:1501" in warnings[0] and f"{len(huge):,} bytes" in warnings[0]
    assert f"{limit:,}-byte limit" in warnings[0] and "--" not in warnings[0]  # no CLI flag in the library


def test_a_record_at_the_limit_is_kept_and_one_byte_more_is_skipped(tmp_path):
    at_limit = json.dumps({"text": "x" * 100})
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes((at_limit + "\r\n" + json.dumps({"text": "y" * 101}) + "\n" + at_limit).encode())
    documents, warnings = read_all(feed, max_bytes=len(at_limit))  # a CRLF ending is not part of the record
    assert [d.key.rsplit("#")[1] for d in documents] == ["1", "3"]
    assert len(warnings) == 1 and f"{feed}:2:" in warnings[0]


def test_utf16_jsonl_is_streamed_with_the_limit_per_record(tmp_path):
    lines = [json.dumps({"text": "Café “talks” resumed."}, ensure_ascii=False), json.dumps({"text": "z" * 500}),
             json.dumps({"text": "Talks ended."})]
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes(codecs.BOM_UTF16_LE + "\r\n".join(lines).encode("utf-16-le"))
    documents, warnings = read_all(feed, max_bytes=200)
    assert [d.text for d in documents] == ["Café “talks” resumed.", "Talks ended."]
    assert len(warnings) == 1 and f"{feed}:2:" in warnings[0]


def test_jsonl_lines_that_are_not_utf8_fall_back_to_cp1252_one_line_at_a_time(tmp_path):
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes('{"text": "Caf\u00e9 in UTF-8"}\n'.encode() + '{"text": "Caf\u00e9 in cp1252"}\n'.encode("cp1252"))
    documents, _ = read_all(feed)
    assert [d.text for d in documents] == ["Café in UTF-8", "Café in cp1252"]


def test_a_binary_jsonl_file_is_skipped_with_a_warning(tmp_path):
    (tmp_path / "good.jsonl").write_text(json.dumps({"text": BODY}) + "\n", encoding="utf-8")
    (tmp_path / "image.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    documents, warnings = read_all(tmp_path)
    assert [d.text for d in documents] == [BODY]
    assert warnings == [f"skipped {tmp_path / 'image.jsonl'}: binary data, not text"]


_RSS_PROBE = """
import resource, sys
from framing.readers import read_documents
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
n = sum(1 for _ in read_documents([sys.argv[1]]))
print(n, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
"""


def test_a_large_jsonl_is_streamed_not_held_in_memory(tmp_path):
    feed = tmp_path / "many.jsonl"
    record = json.dumps({"text": BODY * 5}) + "\n"
    n_records = 24_000_000 // len(record)
    with feed.open("w", encoding="utf-8") as stream:
        for _ in range(n_records // 1000):
            stream.write(record * 1000)
    size = feed.stat().st_size
    done = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(feed)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    n, growth = map(int, done.stdout.split())
    assert n == n_records // 1000 * 1000
    assert growth < size / 2, f"peak memory grew by {growth / 1e6:.0f} MB reading a {size / 1e6:.0f} MB file"


# --- Parquet -------------------------------------------------------------------------------------------

def _parquet(path: Path, columns: dict[str, list], row_group_size: int = 2) -> Path:
    pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed (the optional extra framing[parquet])")
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def test_parquet_rows_become_documents_read_row_group_by_row_group(tmp_path):
    path = _parquet(tmp_path / "feed.parquet", {
        "text": [BODY, "Second article.", "Third article.", "Fourth article.", "Fifth article."],
        "id": ["p-1", None, "p-3", "p-1", "p-5"],
        "outlet": ["Harbour Courier", "Valley Gazette", None, "Valley Gazette", "Harbour Courier"],
        "date": [dt.date(2024, 4, 9), None, dt.date(2024, 4, 10), None, None],
        "url": ["https://example.org/1", None, None, None, None],
        "title": ["A title", None, None, None, None],
        "views": [1, 2, 3, 4, 5],  # other columns are not read
    })
    documents, warnings = read_all(path)
    assert warnings == []
    assert [d.text for d in documents] == [BODY, "Second article.", "Third article.", "Fourth article.",
                                           "Fifth article."]
    assert [d.key for d in documents] == [f"{path.as_posix()}#{row}" for row in range(1, 6)]
    assert [d.id for d in documents] == ["p-1", f"{path.as_posix()}#2", "p-3", "p-1", "p-5"]
    first = documents[0]
    assert (first.outlet, first.date, first.url, first.title, first.format) == \
        ("Harbour Courier", "2024-04-09", "https://example.org/1", "A title", "parquet")
    assert [d.outlet for d in documents] == ["Harbour Courier", "Valley Gazette", UNKNOWN, "Valley Gazette",
                                             "Harbour Courier"]


def test_parquet_needs_only_a_text_column_and_the_manifest_still_applies(tmp_path):
    _parquet(tmp_path / "feed.parquet", {"text": ["One.", "Two."]})
    (tmp_path / "sources.csv").write_text("file,outlet\nfeed.parquet,Valley Gazette\n", encoding="utf-8")
    documents, _ = read_all(tmp_path)
    assert [(d.text, d.outlet, d.id) for d in documents] == [
        ("One.", "Valley Gazette", documents[0].key), ("Two.", "Valley Gazette", documents[1].key)]


def test_parquet_without_a_text_column_is_refused_naming_its_columns(tmp_path):
    path = _parquet(tmp_path / "feed.parquet", {"body": ["One."], "id": ["x"]})
    with pytest.raises(InputError, match="needs a 'text' column") as caught:
        read_all(path)
    assert str(path) in str(caught.value) and "body, id" in str(caught.value)


@pytest.mark.parametrize(("column", "values"), [("text", [1, 2]), ("title", [["a"], ["b"]])], ids=["int", "list"])
def test_parquet_column_of_the_wrong_type_is_refused(tmp_path, column, values):
    columns = {"text": ["One.", "Two."], column: values}
    path = _parquet(tmp_path / "feed.parquet", columns)
    with pytest.raises(InputError, match=f"column '{column}' should hold strings"):
        read_all(path)


def test_an_unreadable_parquet_file_is_skipped_with_a_warning(tmp_path):
    pytest.importorskip("pyarrow", reason="pyarrow is not installed (the optional extra framing[parquet])")
    (tmp_path / "good.txt").write_text(BODY, encoding="utf-8")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not a Parquet file at all")
    documents, warnings = read_all(tmp_path)
    assert [d.text for d in documents] == [BODY]
    assert len(warnings) == 1 and "broken.parquet" in warnings[0] and "not a readable Parquet file" in warnings[0]
    with pytest.raises(InputError, match="no readable documents"):
        read_all(tmp_path / "broken.parquet")


def test_parquet_row_without_text_fails_or_is_skipped_and_an_over_long_row_is_skipped(tmp_path):
    path = _parquet(tmp_path / "feed.parquet", {"text": ["One.", None, "x" * 5000, "Four."]})
    with pytest.raises(InputError, match="row 2: missing 'text'") as caught:
        read_all(path)
    assert caught.value.option == "bad_lines"
    documents, warnings = read_all(path, bad_lines="skip", max_bytes=1000)
    assert [d.key.rsplit("#")[1] for d in documents] == ["1", "4"]
    assert len(warnings) == 2
    assert "row 2: missing 'text'" in warnings[0]
    assert f"row 3 of {path}" in warnings[1] and "5,000 bytes" in warnings[1]


def test_parquet_without_pyarrow_is_one_clear_input_error(tmp_path, monkeypatch):
    path = tmp_path / "feed.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # None in sys.modules makes `import pyarrow` fail
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(InputError) as caught:
        read_all(path)
    assert "reading Parquet needs pyarrow: pip install 'framing[parquet]'" in str(caught.value)
    assert str(path) in str(caught.value)


# --- outlet spellings ----------------------------------------------------------------------------------

def test_canonical_outlet_folds_case_and_whitespace_onto_the_table():
    aliases = {outlet_key("Global Times"): "Global Times", outlet_key("GT"): "Global Times"}
    for name in ("Global Times", "global times", "GLOBAL  TIMES", " Global\tTimes ", "gt"):
        assert canonical_outlet(name, aliases) == "Global Times", name
    assert canonical_outlet("  Valley   Gazette ", aliases) == "Valley Gazette"  # unknown: tidied, not changed
    assert canonical_outlet("Valley Gazette", {}) == "Valley Gazette"


def test_variants_of_one_outlet_are_one_outlet_spelled_as_first_seen(tmp_path):
    feed = write_jsonl(tmp_path / "feed.jsonl", [
        {"text": BODY, "outlet": "Valley  Gazette"}, {"text": BODY, "outlet": "valley gazette"},
        {"text": BODY, "outlet": "VALLEY GAZETTE "}, {"text": BODY, "outlet": "global times"},
        {"text": BODY, "outlet": "GLOBAL  TIMES"}])
    documents, _ = read_all(feed)
    # a new outlet keeps its first spelling (whitespace tidied); a known one the masthead table's
    assert [d.outlet for d in documents] == ["Valley Gazette"] * 3 + ["Global Times"] * 2


def test_a_manifest_spelling_wins_over_its_folder_records(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"text": BODY, "outlet": "harbour courier"}])
    (tmp_path / "b.txt").write_text(BODY, encoding="utf-8")
    (tmp_path / "sources.csv").write_text("file,outlet\nb.txt,The Harbour Courier\n", encoding="utf-8")
    write_jsonl(tmp_path / "a.jsonl", [{"text": BODY, "outlet": "the harbour  courier"}])
    documents, _ = read_all(tmp_path)
    assert [d.outlet for d in documents] == ["The Harbour Courier", "The Harbour Courier"]


def test_an_alias_file_names_the_canonical_spelling(tmp_path):
    aliases = tmp_path / "outlets.csv"
    aliases.write_text("name,canonical\nGT,Global Times\nThe Harbour Courier,Harbour Courier\n"
                       "harbourcourier.example,Harbour Courier\n", encoding="utf-8")
    feed = write_jsonl(tmp_path / "in" / "feed.jsonl", [
        {"text": BODY, "outlet": "gt"}, {"text": BODY, "outlet": "THE HARBOUR COURIER"},
        {"text": BODY, "outlet": "harbour courier"}, {"text": BODY, "outlet": "HarbourCourier.example"},
        {"text": f"(MENAFN- the harbour courier)\n\n{BODY}"}])
    documents, _ = read_all(feed, aliases=aliases)
    assert [d.outlet for d in documents] == ["Global Times"] + ["Harbour Courier"] * 3 + ["MENAFN"]
    assert documents[-1].publisher == "Harbour Courier"  # the original publisher is spelled the same way


@pytest.mark.parametrize(("content", "needle"), [
    ("outlet,canonical\nGT,Global Times\n", "needs the columns 'name' and 'canonical'"),
    ("name,canonical\nGT,\n", "outlets.csv:2: 'name' and 'canonical' must both be filled in"),
    ("name,canonical\nGT,Global Times\ngt,Global Times Online\n", "outlets.csv:3: 'gt' is already spelled"),
    ("name,canonical\nGT,Global Times\nGlobal Times,Huanqiu\n", "outlets.csv:3:"),
], ids=["columns", "empty", "two-spellings", "chain"])
def test_a_bad_alias_file_is_refused_with_its_line(tmp_path, content, needle):
    path = tmp_path / "outlets.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_aliases(path)
    assert needle in str(caught.value)
    assert caught.value.option == "aliases"  # the CLI points at its flag


def test_a_missing_alias_file_is_an_input_error(tmp_path):
    (tmp_path / "a.txt").write_text(BODY, encoding="utf-8")
    with pytest.raises(InputError, match="no such outlet alias file"):
        read_all(tmp_path, aliases=tmp_path / "nowhere.csv")


# --- HTML metadata -------------------------------------------------------------------------------------

def test_html_title_date_url_and_site_name_come_from_the_page_metadata():
    (document,), warnings = read_all(HTML_DATA / "ledger_dam_talks.html")
    assert (document.title, document.date, document.url) == (
        "Dam talks stall again", "2024-06-02", "https://riverside-ledger.example/world/dam-talks-stall")
    assert document.outlet == "The Riverside Ledger"  # the site name, as nothing else names the outlet
    assert document.text.startswith("Dam talks stall again\n\nNegotiators from the two river states")
    assert "World desk" not in document.text and "Copyright" not in document.text
    assert warnings == []


def test_html_manifest_fields_win_over_the_page_metadata(tmp_path):
    page = tmp_path / "page.html"
    page.write_bytes((HTML_DATA / "ledger_dam_talks.html").read_bytes())
    (tmp_path / "sources.csv").write_text("file,outlet,title\npage.html,Valley Gazette,Our own title\n",
                                          encoding="utf-8")
    (document,), _ = read_all(tmp_path)
    assert (document.outlet, document.title, document.date) == ("Valley Gazette", "Our own title", "2024-06-02")


def test_html_without_metadata_leaves_the_fields_empty_and_the_host_names_the_site():
    (bare,), _ = read_all(HTML_DATA / "bare_page.html")
    assert (bare.title, bare.date, bare.url, bare.outlet) == (None, None, None, UNKNOWN)
    assert bare.text.startswith("The ferry between the two islands")
    (hosted,), _ = read_all(HTML_DATA / "hostname_only.html")
    assert (hosted.title, hosted.outlet) == ("Ferry timetable restored", "islandpost.example")


def test_html_metadata_is_cleaned_to_one_line():
    page = ('<html><head><meta property="og:site_name" content="The\u200b Riverside\u00ad Ledger">'
            "<title>Dam\u202e talks</title></head><body><article><p>" + BODY + "</p></article></body></html>")
    _, meta = extract_html(page)
    assert meta["site_name"] == "The Riverside Ledger"
    assert meta["title"] == "Dam talks"


# --- options -------------------------------------------------------------------------------------------

def test_read_options_take_the_enum_or_its_value_and_refuse_nonsense():
    assert ReadOptions(bad_lines="skip").bad_lines is BadLines.SKIP
    assert ReadOptions().bad_lines is BadLines.FAIL
    with pytest.raises(ValueError):
        ReadOptions(bad_lines="sometimes")
    with pytest.raises(ValueError):
        ReadOptions(max_bytes=0)


def test_no_document_path_is_outside_what_was_named(tmp_path):
    # guards the link test above from passing by reading nothing: a plain tree is read whole
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text(BODY, encoding="utf-8")
    (tmp_path / "sub" / "b.txt").write_text(BODY, encoding="utf-8")
    documents, warnings = read_all(tmp_path)
    assert len(documents) == 2 and warnings == []
    assert all(Path(os.path.realpath(d.path)).is_relative_to(tmp_path.resolve()) for d in documents)
