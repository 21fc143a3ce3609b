"""Paths -> Iterator[Document]: files and folders, four formats, several encodings.

Outlet attribution happens here too, because its first two sources (a folder's
`sources.csv` and a JSONL record's `outlet`) are only visible while reading.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .outlets import attribute_outlet
from .records import Document

Warn = Callable[[str], None]

SUFFIX_FORMAT = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md",
                 ".html": "html", ".htm": "html", ".jsonl": "jsonl"}
MANIFEST = "sources.csv"
JSONL_OPTIONAL = ("id", "outlet", "date", "url", "title")


@dataclass(frozen=True)
class ReadOptions:
    """How strictly to read. Defaults live here and nowhere else."""

    bad_lines: str = "fail"  # fail | skip: a malformed JSONL line stops the run or is skipped
    max_bytes: int = 20_000_000  # a larger file is skipped with a warning: no article is that long


def _ignore(message: str) -> None:
    pass


def read_documents(paths: Iterable[str | os.PathLike], options: ReadOptions = ReadOptions(),
                   warn: Warn = _ignore) -> Iterator[Document]:
    """Yield every document under `paths` (files and folders, recursively, in sorted order)."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("no input path given: name at least one file or folder")
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder; check the path")
    n_files = n_documents = 0
    manifests: dict[Path, dict[str, dict[str, str]]] = {}
    for file in _iter_files(paths, warn):
        n_files += 1
        if file.parent not in manifests:
            manifests[file.parent] = read_manifest(file.parent / MANIFEST)
            for name in sorted(n for n in manifests[file.parent] if not (file.parent / n).is_file()):
                warn(f"{file.parent / MANIFEST} names {name}, which is not in the folder")
        for document in _read_file(file, manifests[file.parent].get(file.name, {}), options, warn):
            n_documents += 1
            yield document
    if n_files and not n_documents:  # every file was binary, too large, unreadable or held no record
        raise InputError(f"no readable documents under {', '.join(map(str, paths))}: all {n_files} file(s) "
                         "were skipped or empty (see the warnings)")
    if not n_files:
        names = ", ".join(sorted(SUFFIX_FORMAT))
        raise InputError(f"no readable documents under {', '.join(map(str, paths))}: "
                         f"expected files ending in {names}")


def _iter_files(paths: list[Path], warn: Warn) -> Iterator[Path]:
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            yield from _walk(path, seen, warn)
        elif path.suffix.lower() in SUFFIX_FORMAT:
            if path.is_file():
                yield path
            else:  # a FIFO or device would block the read or never end
                warn(f"skipped {path}: not a regular file")
        else:
            warn(f"skipped {path}: unknown file type (expected {', '.join(sorted(SUFFIX_FORMAT))})")


def _walk(folder: Path, seen: set[Path], warn: Warn) -> Iterator[Path]:
    """Walk a folder in sorted order; a symlink loop is visited once and reported."""
    try:
        real = folder.resolve(strict=True)
    except (OSError, RuntimeError):
        warn(f"skipped {folder}: cannot resolve (broken link or link loop)")
        return
    if real in seen:
        warn(f"skipped {folder}: already visited (symlink loop)")
        return
    seen.add(real)
    try:
        entries = sorted(folder.iterdir())
    except OSError as error:
        warn(f"skipped {folder}: cannot list ({error.strerror or error})")
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _walk(entry, seen, warn)
        elif entry.suffix.lower() in SUFFIX_FORMAT and entry.is_file():
            yield entry
        elif entry.is_symlink() and not entry.exists():
            warn(f"skipped {entry}: broken link or link loop")


def _read_file(path: Path, entry: dict[str, str], options: ReadOptions, warn: Warn) -> Iterator[Document]:
    fmt = SUFFIX_FORMAT[path.suffix.lower()]
    try:
        size = path.stat().st_size
        if size > options.max_bytes:
            warn(f"skipped {path}: {size:,} bytes is larger than the {options.max_bytes:,}-byte limit "
                 "(split it, or raise --max-bytes)")
            return
        data = path.read_bytes()
    except OSError as error:
        warn(f"skipped {path}: cannot read ({error.strerror or error})")
        return
    text = decode_bytes(data)
    if text is None:
        warn(f"skipped {path}: binary data, not text")
        return
    if fmt == "jsonl":
        yield from _jsonl_documents(path, text, options, warn, entry)
        return
    meta: dict[str, str | None] = {}
    if fmt == "html":
        text, meta = extract_html(text)
    yield _document(path.as_posix(), text, fmt, path.as_posix(), entry, meta)


def _document(doc_id: str, text: str, fmt: str, path: str, entry: dict[str, str],
              meta: dict[str, str | None]) -> Document:
    """Build a Document, filling outlet and metadata from the manifest, the record, then the text."""
    outlet, publisher = attribute_outlet(text, declared=entry.get("outlet") or meta.get("outlet"),
                                         site_name=meta.get("site_name"))
    return Document(id=doc_id, text=text, path=path, format=fmt, outlet=outlet, publisher=publisher,
                    date=entry.get("date") or meta.get("date"), url=entry.get("url") or meta.get("url"),
                    title=entry.get("title") or meta.get("title"))


# --- encodings ---------------------------------------------------------------------------------

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# zero-width, soft hyphen, and the bidi marks, embeddings, overrides and isolates that can reorder a line
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f"
                                    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")  # Cc but \t \n; lone surrogates


def decode_bytes(data: bytes) -> str | None:
    """Decode text the way scraped files come: BOM, UTF-8, BOM-less UTF-16, then cp1252.

    Returns None for binary data. Control and zero-width characters are removed,
    line endings normalised to \\n.
    """
    text = _decode(data)
    if text is None or _looks_binary(text):
        text = _bomless_utf16_script(data)
        if text is None or _looks_binary(text):
            return None
    return clean_text(text)


def _decode(data: bytes) -> str | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                return None
    utf16 = _bomless_utf16(data)
    if utf16:
        return utf16
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # cp1252 leaves five bytes undefined; latin-1 maps them so nothing is lost.
        return data.decode("cp1252", errors="replace").replace("\ufffd", "")


def _bomless_utf16(data: bytes) -> str | None:
    """UTF-16 without a BOM shows as NUL in every other byte for Latin-script text."""
    sample = data[:4096]
    if len(sample) < 4 or len(sample) % 2:
        return None
    even, odd = sample[0::2], sample[1::2]
    for zeros, encoding in ((odd, "utf-16-le"), (even, "utf-16-be")):
        if zeros.count(0) > 0.4 * len(zeros) and (even if zeros is odd else odd).count(0) < 0.1 * len(zeros):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                return None
    return None


def _bomless_utf16_script(data: bytes) -> str | None:
    """BOM-less UTF-16 in one non-Latin script (Arabic, Hebrew, Cyrillic...): every other byte is
    that script's block or NUL (spaces, digits, punctuation), and the other bytes are rarely NUL."""
    sample = data[:4096]
    if len(sample) < 4 or len(data) % 2:
        return None
    even, odd = sample[0::2], sample[1::2]
    for high, low, encoding in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        block = max(set(high) - {0}, key=high.count, default=0)
        if high.count(block) + high.count(0) > 0.9 * len(high) and low.count(0) < 0.1 * len(low):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                return None
    return None


def _looks_binary(text: str) -> bool:
    sample = text[:8192]
    if not sample:
        return False
    controls = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f")
    return controls > 0.05 * len(sample)


def clean_text(text: str) -> str:
    """Normalise line endings; drop control and zero-width characters but keep the words."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    return _CONTROLS.sub("", text)  # a regex, not a per-character join: linear and no list of characters


# --- HTML -------------------------------------------------------------------------------------

def extract_html(html: str) -> tuple[str, dict[str, str | None]]:
    """Main text of a web page with trafilatura, paragraphs separated by blank lines."""
    import trafilatura  # imported here: it costs half a second and only HTML needs it

    text = trafilatura.extract(html, include_comments=False, include_tables=False,
                               include_images=False, favor_precision=True, deduplicate=True) or ""
    metadata = trafilatura.extract_metadata(html)
    meta: dict[str, str | None] = {}
    if metadata is not None:
        meta = {"title": metadata.title, "date": metadata.date, "url": metadata.url,
                "site_name": metadata.sitename}
    return "\n\n".join(line for line in text.split("\n") if line.strip()), meta


# --- JSONL ------------------------------------------------------------------------------------

def _jsonl_documents(path: Path, text: str, options: ReadOptions, warn: Warn,
                     entry: dict[str, str]) -> Iterator[Document]:
    for number, record in iter_jsonl(text, str(path), options.bad_lines, warn):
        problem = _jsonl_problem(record)
        if problem:
            _bad_line(f"{path}:{number}: {problem}", options.bad_lines, warn)
            continue
        doc_id = str(record.get("id") or f"{path.as_posix()}:{number}")
        meta = {key: (str(record[key]) if record.get(key) is not None else None) for key in JSONL_OPTIONAL}
        yield _document(doc_id, clean_text(record["text"]), "jsonl", path.as_posix(), entry, meta)


def _jsonl_problem(record: object) -> str | None:
    if not isinstance(record, dict):
        return "expected a JSON object with a 'text' field"
    if not isinstance(record.get("text"), str):
        return "missing 'text' (a string) in this record"
    for key in JSONL_OPTIONAL:
        if record.get(key) is not None and not isinstance(record[key], (str, int, float)):
            return f"field '{key}' should be a string"
    return None


def iter_jsonl(text: str, name: str, bad_lines: str = "fail", warn: Warn = _ignore) -> Iterator[tuple[int, object]]:
    """Yield (line number, parsed value) for each non-blank line; a malformed line fails or is skipped."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
            if _SURROGATE_ESCAPE.search(line):
                value = _without_surrogates(value)
        except RecursionError:
            _bad_line(f"{name}:{number}: malformed JSON (nested too deeply)", bad_lines, warn)
            continue
        except ValueError as error:  # JSONDecodeError, or a number too long to convert
            reason = error.msg if isinstance(error, json.JSONDecodeError) else "a number with too many digits"
            _bad_line(f"{name}:{number}: malformed JSON ({reason})", bad_lines, warn)
            continue
        yield number, value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(value: object) -> object:
    """JSON may escape half a surrogate pair (\\ud800), which no UTF-8 file can hold: drop it."""
    if isinstance(value, str):
        return _SURROGATE.sub("", value)
    if isinstance(value, list):
        return [_without_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_surrogates(key): _without_surrogates(item) for key, item in value.items()}
    return value


def _bad_line(message: str, bad_lines: str, warn: Warn) -> None:
    if bad_lines == "skip":
        warn(f"skipped {message}")
        return
    raise InputError(f"{message}; fix the line, or pass --bad-lines skip to skip it")


def read_text_file(path: Path, what: str) -> str:
    """The decoded text of a file the user named, or one InputError saying what is wrong with it."""
    try:
        text = decode_bytes(path.read_bytes())
    except OSError as error:
        raise InputError(f"{path}: cannot read {what} ({error.strerror or error}); check its permissions") from None
    if text is None:
        raise InputError(f"{path}: binary data, not {what}; fix or replace the file")
    return text


# --- manifest ---------------------------------------------------------------------------------

def read_manifest(path: Path) -> dict[str, dict[str, str]]:
    """`sources.csv`: file,outlet[,date,url,title] -> {file: {column: value}}; empty when absent."""
    if not path.is_file():
        return {}
    rows = csv.DictReader(io.StringIO(read_text_file(path, "the CSV manifest")))
    try:
        return _manifest_rows(path, rows)
    except csv.Error as error:  # e.g. a field over the csv module's size limit
        raise InputError(f"{path}:{rows.reader.line_num}: not valid CSV ({error}); fix the manifest") from None


def _manifest_rows(path: Path, rows: csv.DictReader) -> dict[str, dict[str, str]]:
    columns = set(rows.fieldnames or [])
    if not {"file", "outlet"} <= columns:
        raise InputError(f"{path}: a manifest needs the columns 'file' and 'outlet' (it has: "
                         f"{', '.join(sorted(columns)) or 'none'})")
    manifest: dict[str, dict[str, str]] = {}
    for number, row in enumerate(rows, start=2):
        name, outlet = (row.get("file") or "").strip(), (row.get("outlet") or "").strip()
        if not name or not outlet:
            raise InputError(f"{path}:{number}: 'file' and 'outlet' must both be filled in")
        manifest[name] = {key: (value or "").strip() for key, value in row.items() if key and value}
    return manifest

