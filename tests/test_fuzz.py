"""Property tests: arbitrary bytes and text never crash the readers or the segmenter.

The only exception allowed is InputError, where it is documented: a file that yields no document
("no readable documents"), or a malformed JSONL line when bad_lines="fail". Examples are kept
modest so the suite stays fast; deadlines are off because the first HTML example imports trafilatura.
"""

from __future__ import annotations

import json
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framing.errors import InputError
from framing.readers import (
    SUFFIX_FORMAT,
    ReadOptions,
    clean_text,
    decode_bytes,
    iter_jsonl,
    read_documents,
    read_manifest,
)
from framing.records import Document
from framing.segment import segment

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INVISIBLE = set("\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068"
                "\u2069")

# Bytes that look like the files we meet: text in several encodings, with BOMs, NULs and stray bytes spliced in.
_TEXTS = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
_ENCODED = st.builds(lambda text, encoding: text.encode(encoding, errors="ignore"), _TEXTS,
                     st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp1252"]))
_BYTES = st.one_of(st.binary(max_size=2000), _ENCODED,
                   st.builds(lambda a, b, c: a + b + c, _ENCODED, st.binary(max_size=20), _ENCODED))

# Lines that stress the segmenter's rules: markdown syntax, bullets, datelines, furniture words, scripts.
_PIECES = st.sampled_from([
    "*", "**", "_", "__", "`", "[", "]", "(", ")", "![", "](", "#", "# ", "> ", "- ", "• ", "1. ", "(@x)", "©",
    "Photo: Xinhua", "Read more:", "Most Read", "Share", "10:30", "16 May 2024", "By John Smith", "pic.twitter.com/x",
    ".", "!", "?", "…", "\"", "”", " ", "  ", "\t", "\n", "\n\n", "Russia", "China", "the", "said", "on Tuesday",
    "روسيا", "רוסיה", "Россия", "中国", "🇷🇺", "🙂", "\u200b", "\u202e", "\x00", "\x07",
])
_SEGMENTER_TEXT = st.one_of(_TEXTS, st.lists(_PIECES, max_size=80).map("".join))


@FUZZ
@given(_BYTES)
def test_decode_bytes_returns_clean_text_or_none(data):
    text = decode_bytes(data)
    if text is None:
        return
    assert isinstance(text, str) and "\r" not in text
    assert not any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\n\t" for ch in text)
    assert not INVISIBLE & set(text)
    assert clean_text(text) == text  # cleaning is idempotent
    assert decode_bytes(text.encode("utf-8")) == text  # and what it gives reads back unchanged


@FUZZ
@given(data=_BYTES, suffix=st.sampled_from(sorted(SUFFIX_FORMAT)), bad_lines=st.sampled_from(["skip", "fail"]))
def test_read_documents_on_arbitrary_bytes(data, suffix, bad_lines):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data)
        warnings: list[str] = []
        try:
            documents = list(read_documents([path], ReadOptions(bad_lines=bad_lines), warnings.append))
        except InputError as error:
            message = str(error)
            assert "no readable documents" in message or (bad_lines == "fail" and "--bad-lines skip" in message)
            return
    for document in documents:
        assert isinstance(document.text, str) and isinstance(document.outlet, str) and document.outlet
        json.dumps(document.__dict__, ensure_ascii=False).encode("utf-8")  # every field writes as UTF-8 JSON
        segment(document)


_JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | _TEXTS,
                            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXTS, inner, max_size=4),
                            max_leaves=12)
_RECORDS = st.fixed_dictionaries({}, optional={"text": _JSON_VALUES | _TEXTS, "id": _JSON_VALUES,
                                               "outlet": _JSON_VALUES | _TEXTS, "title": _JSON_VALUES,
                                               "date": _JSON_VALUES})
_PATHOLOGICAL_LINES = ['{"text": "\\ud800 half a pair", "outlet": "\\udfff"}', "[" * 5000,
                       '{"text": "x", "n": ' + "7" * 5000 + "}"]
_JSONL_LINES = st.one_of(_RECORDS.map(json.dumps), _JSON_VALUES.map(json.dumps),
                         _TEXTS.map(lambda t: " ".join(t.splitlines())), st.sampled_from(_PATHOLOGICAL_LINES))


@FUZZ
@given(lines=st.lists(_JSONL_LINES, max_size=8))
def test_jsonl_lines_are_read_or_reported_by_number(lines):
    text = "\n".join(lines)
    warnings: list[str] = []
    for _, value in iter_jsonl(text, "fuzz.jsonl", "skip", warnings.append):
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # no lone surrogate survives
    assert all(w.startswith("skipped fuzz.jsonl:") for w in warnings)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "feed.jsonl"
        path.write_text(text, encoding="utf-8")
        warnings = []
        try:
            skipped = [(d.id, d.text) for d in read_documents([path], ReadOptions(bad_lines="skip"), warnings.append)]
        except InputError as error:
            assert "no readable documents" in str(error)
            skipped = None
        if warnings or skipped is None:
            with pytest.raises(InputError):
                list(read_documents([path], ReadOptions(bad_lines="fail")))
        else:
            assert [(d.id, d.text) for d in read_documents([path], ReadOptions(bad_lines="fail"))] == skipped


@FUZZ
@given(text=_SEGMENTER_TEXT, fmt=st.sampled_from(["txt", "md", "html", "jsonl"]))
def test_segment_never_raises_and_keeps_clean_paragraphs(text, fmt):
    segmented = segment(Document(id="fuzz", text=text, format=fmt))
    assert [p.index for p in segmented.paragraphs] == list(range(len(segmented.paragraphs)))
    n_lines = text.count("\n") + 1
    for paragraph in segmented.paragraphs:
        assert paragraph.text and paragraph.text == paragraph.text.strip() and "\n" not in paragraph.text
        assert 1 <= paragraph.line <= n_lines
    assert all(n > 0 for n in segmented.dropped.values())
    assert len(segmented.paragraphs) + segmented.n_dropped <= n_lines


@FUZZ
@given(_BYTES)
def test_manifest_is_read_or_refused_with_an_input_error(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sources.csv"
        path.write_bytes(b"file,outlet\n" + data)
        try:
            manifest = read_manifest(path)
        except InputError as error:
            assert "sources.csv" in str(error)
            return
    assert all(isinstance(k, str) and isinstance(v, dict) for k, v in manifest.items())
