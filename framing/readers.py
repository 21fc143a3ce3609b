"""Paths -> Iterator[Document]: files and folders, five formats, several encodings.

Outlet attribution happens here too, because its first two sources (a folder's
`sources.csv` and a record's `outlet`) are only visible while reading. So does the
document key: only the reader knows which file and which record a document came from.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from .encodings import clean_text, decode_bytes, sniff_encoding
from .errors import InputError
from .outlets import KNOWN_OUTLETS, attribute_outlet, canonical_outlet, outlet_key
from .records import Document

Warn = Callable[[str], None]
Canonical = Callable[[str], str]

SUFFIX_FORMAT = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md",
                 ".html": "html", ".htm": "html", ".jsonl": "jsonl", ".parquet": "parquet"}
MANIFEST = "sources.csv"
JSONL_OPTIONAL = ("id", "outlet", "date", "url", "title")


class BadLines(StrEnum):
    """What a malformed record does: stop the run, or be skipped with a warning."""

    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class ReadOptions:
    """How strictly to read. Defaults live here and nowhere else."""

    bad_lines: BadLines = BadLines.FAIL  # a malformed JSONL line or Parquet row stops the run or is skipped
    max_bytes: int = 20_000_000  # a larger article is skipped with a warning: no article is that long
    aliases: Path | None = None  # a CSV of outlet spellings (name,canonical), see read_aliases

    def __post_init__(self) -> None:
        object.__setattr__(self, "bad_lines", BadLines(self.bad_lines))  # "skip" works as well as SKIP
        if self.max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, not {self.max_bytes}")


@dataclass(frozen=True)
class LineRange:
    """The lines of a file whose first byte lies in [start, end) (end None: to the end of the file), numbered
    from `first_line`. `start` must be a line start; only a UTF-8 file, split on b"\\n", is read in ranges."""

    start: int = 0
    end: int | None = None
    first_line: int = 1


@dataclass(frozen=True)
class RowGroups:
    """The row groups [start, stop) of a Parquet file (stop None: to its last). Their rows keep the file's own
    numbers: the reader counts the rows before `start` from the file's footer."""

    start: int = 0
    stop: int | None = None


def _ignore(message: str) -> None:
    pass


def input_files(paths: list[Path], warn: Warn = _ignore) -> Iterator[tuple[Path, dict[str, dict[str, str]], bool]]:
    """Every file to read under `paths`, in order, each once: (file, its folder's manifest, whether it is
    the first file of that folder). Both engines walk their inputs through this."""
    if not paths:
        raise InputError("no input path given: name at least one file or folder")
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder; check the path")
    manifests: dict[Path, dict[str, dict[str, str]]] = {}
    read: dict[tuple[int, int], Path] = {}  # (device, inode) -> path: a file reached twice is read once
    for file in _iter_files(paths, warn):
        identity = _identity(file)
        if identity in read:
            warn(f"skipped {file}: the same file as {read[identity]}, already read")
            continue
        if identity is not None:
            read[identity] = file
        first = file.parent not in manifests
        if first:
            manifests[file.parent] = read_manifest(file.parent / MANIFEST)
            for name in sorted(n for n in manifests[file.parent] if not (file.parent / n).is_file()):
                warn(f"{file.parent / MANIFEST} names {name}, which is not in the folder")
        yield file, manifests[file.parent], first


def read_documents(paths: Iterable[str | os.PathLike], options: ReadOptions = ReadOptions(),
                   warn: Warn = _ignore) -> Iterator[Document]:
    """Yield every document under `paths` (files and folders, recursively, in sorted order).

    Each document gets a `key` unique in the run (its path, or path#N for record N of a
    JSONL or Parquet file) and an outlet spelled one way however its sources spell it.
    """
    paths = [Path(p) for p in paths]
    canonical = outlet_speller(read_aliases(options.aliases) if options.aliases else {})
    n_files = n_documents = 0
    for file, manifest, first_in_folder in input_files(paths, warn):
        n_files += 1
        if first_in_folder:
            for row in manifest.values():  # a manifest's spelling wins over its folder's records
                canonical(row["outlet"])
        for document in _read_file(file, manifest.get(file.name, {}), options, warn, canonical):
            n_documents += 1
            yield document
    if n_files and not n_documents:  # every file was binary, too large, unreadable or held no record
        raise InputError(f"no readable documents under {', '.join(map(str, paths))}: all {n_files} file(s) "
                         "were skipped or empty (see the warnings)")
    if not n_files:
        names = ", ".join(sorted(SUFFIX_FORMAT))
        raise InputError(f"no readable documents under {', '.join(map(str, paths))}: "
                         f"expected files ending in {names}")


def outlet_speller(aliases: dict[str, str]) -> Canonical:
    """A run's outlet spelling: the alias table's, else the known outlets', else the first one seen."""
    spellings = {outlet_key(name): name for name in KNOWN_OUTLETS} | aliases

    def canonical(name: str) -> str:
        spelling = canonical_outlet(name, spellings)
        spellings.setdefault(outlet_key(spelling), spelling)
        return spelling

    return canonical


def _identity(file: Path) -> tuple[int, int] | None:
    try:
        status = file.stat()
    except OSError:  # reported when the file is read
        return None
    return status.st_dev, status.st_ino


def _iter_files(paths: list[Path], warn: Warn) -> Iterator[Path]:
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            try:
                root = path.resolve(strict=True)
            except (OSError, RuntimeError):
                warn(f"skipped {path}: cannot resolve (broken link or link loop)")
                continue
            yield from _walk(path, root, seen, warn)
        elif path.suffix.lower() in SUFFIX_FORMAT:
            if path.is_file():
                yield path
            else:  # a FIFO or device would block the read or never end
                warn(f"skipped {path}: not a regular file")
        else:
            warn(f"skipped {path}: unknown file type (expected {', '.join(sorted(SUFFIX_FORMAT))})")


def _walk(folder: Path, root: Path, seen: set[Path], warn: Warn) -> Iterator[Path]:
    """Walk a folder in sorted order; a symlink loop is visited once and reported.

    A link is followed only while it stays inside `root`, the resolved folder the user
    named: a link to /etc in a folder of articles is not an article.
    """
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
        if entry.is_symlink():
            try:
                target = entry.resolve(strict=True)
            except (OSError, RuntimeError):
                warn(f"skipped {entry}: broken link or link loop")
                continue
            if not target.is_relative_to(root):
                if target.is_dir() or entry.suffix.lower() in SUFFIX_FORMAT:  # silent for what is never read
                    warn(f"skipped {entry}: a symbolic link to {target}, outside {root}")
                continue
        if entry.is_dir():
            yield from _walk(entry, root, seen, warn)
        elif entry.suffix.lower() in SUFFIX_FORMAT and entry.is_file():
            yield entry


def _read_file(path: Path, entry: dict[str, str], options: ReadOptions, warn: Warn, canonical: Canonical,
               lines: LineRange = LineRange(), groups: RowGroups = RowGroups()) -> Iterator[Document]:
    """One file's documents; of a UTF-8 JSONL file, only those in `lines`, of a Parquet file only those in
    `groups` (the Ray engine reads a large file in ranges)."""
    fmt = SUFFIX_FORMAT[path.suffix.lower()]
    if fmt == "jsonl":
        yield from _jsonl_documents(path, entry, options, warn, canonical, lines)
        return
    if fmt == "parquet":
        yield from _parquet_documents(path, entry, options, warn, canonical, groups)
        return
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
    del data  # a large page is not held twice while it is extracted
    if text is None:
        warn(f"skipped {path}: binary data, not text")
        return
    meta: dict[str, str | None] = {}
    if fmt == "html":
        text, meta = extract_html(text)
    yield _document(path.as_posix(), path.as_posix(), text, fmt, path.as_posix(), entry, meta, canonical)


def _document(key: str, doc_id: str, text: str, fmt: str, path: str, entry: dict[str, str],
              meta: dict[str, str | None], canonical: Canonical) -> Document:
    """Build a Document, filling outlet and metadata from the manifest, the record, then the text."""
    outlet, publisher = attribute_outlet(text, declared=entry.get("outlet") or meta.get("outlet"),
                                         site_name=meta.get("site_name"))
    return Document(id=doc_id, key=key, text=text, path=path, format=fmt, outlet=canonical(outlet),
                    publisher=canonical(publisher) if publisher else None,
                    date=entry.get("date") or meta.get("date"), url=entry.get("url") or meta.get("url"),
                    title=entry.get("title") or meta.get("title"))


# --- HTML -------------------------------------------------------------------------------------

def extract_html(html: str) -> tuple[str, dict[str, str | None]]:
    """Main text of a web page with trafilatura, paragraphs separated by blank lines."""
    import trafilatura  # imported here: it costs half a second and only HTML needs it

    text = trafilatura.extract(html, include_comments=False, include_tables=False,
                               include_images=False, favor_precision=True, deduplicate=True) or ""
    metadata = trafilatura.extract_metadata(html)
    meta: dict[str, str | None] = {}
    if metadata is not None:  # og:/twitter: tags, JSON-LD, <title>; the site name falls back to the host
        meta = {"title": _meta_value(metadata.title), "date": _meta_value(metadata.date),
                "url": _meta_value(metadata.url), "site_name": _meta_value(metadata.sitename)}
    return "\n\n".join(line for line in text.split("\n") if line.strip()), meta


def _meta_value(value: object) -> str | None:
    """A metadata field on one line, or None when the page leaves it empty."""
    if not isinstance(value, str):
        return None
    return " ".join(clean_text(value).split()) or None


# --- JSONL ------------------------------------------------------------------------------------

_HEAD_BYTES = 65_536  # enough of a file to tell its encoding and whether it is text at all
_SKIP_CHUNK = 1 << 20  # an over-long line is read past in pieces this size, never held whole


def _jsonl_documents(path: Path, entry: dict[str, str], options: ReadOptions, warn: Warn,
                     canonical: Canonical, lines: LineRange = LineRange()) -> Iterator[Document]:
    """Stream a JSONL file one line at a time; a line over the limit is one article too long, not a bad file."""
    try:
        stream = path.open("rb")
    except OSError as error:
        warn(f"skipped {path}: cannot read ({error.strerror or error})")
        return
    with stream:
        try:
            encoding = sniff_encoding(stream.read(_HEAD_BYTES), os.fstat(stream.fileno()).st_size)
            stream.seek(lines.start)
            if encoding is None:
                warn(f"skipped {path}: binary data, not text")
                return
            for number, line in _jsonl_lines(stream, encoding, path, options.max_bytes, warn, lines):
                value = _parse_json_line(line, f"{path}:{number}", options.bad_lines, warn)
                if value is _SKIP:
                    continue
                problem = _jsonl_problem(value)
                if problem:
                    _bad_line(f"{path}:{number}: {problem}", options.bad_lines, warn)
                    continue
                assert isinstance(value, dict)
                doc_id = str(value.get("id") or f"{path.as_posix()}:{number}")
                meta = {key: (str(value[key]) if value.get(key) is not None else None) for key in JSONL_OPTIONAL}
                yield _document(f"{path.as_posix()}#{number}", doc_id, clean_text(value["text"]), "jsonl",
                                path.as_posix(), entry, meta, canonical)
        except OSError as error:  # e.g. the disk went away half-way: what was read stays read
            warn(f"skipped the rest of {path}: cannot read ({error.strerror or error})")


def _jsonl_lines(stream: IO[bytes], encoding: str, path: Path, max_bytes: int, warn: Warn,
                 lines: LineRange = LineRange()) -> Iterator[tuple[int, str]]:
    """(line number, cleaned line), numbered as decode_bytes(whole file).split("\n") would number them.

    A UTF-8 stream is read from where it stands (`lines.start`) while lines start before `lines.end`."""
    if encoding == "utf-8":  # UTF-8, or cp1252 where a line is not UTF-8: split on the byte b"\n"
        number = lines.first_line - 1
        for raw, length in _bounded_lines(stream, max_bytes, (b"\r\n", b"\n")):
            if raw is None:
                number += 1
                warn(f"skipped {path}:{number}: {length:,} bytes is larger than the {max_bytes:,}-byte limit "
                     "for one article")
            else:
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    line = raw.decode("cp1252", errors="replace").replace("\ufffd", "")
                for part in clean_text(line).split("\n"):  # a lone CR ends a line too
                    number += 1
                    yield number, part
            if lines.end is not None and stream.tell() >= lines.end:  # the next line is the next range's
                return
        return
    # UTF-16 and UTF-32 cannot be split on a byte; the text layer also turns every line ending into \n
    width = 4 if "32" in encoding else 2
    text = io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline=None)
    try:
        for number, (line, length) in enumerate(_bounded_lines(text, max_bytes // width, ("\n",)), start=1):
            if line is None:
                warn(f"skipped {path}:{number}: {length * width:,} bytes is larger than the {max_bytes:,}-byte "
                     "limit for one article")
                continue
            yield number, clean_text(line)
    finally:
        text.detach()  # the caller owns, and closes, the byte stream


def _bounded_lines(stream: IO[Any], limit: int, endings: tuple[Any, ...]) -> Iterator[tuple[Any, int]]:
    """(line without its ending, length), or (None, length) for a line longer than `limit`.

    `endings` lists the line endings, longest first. Memory stays within one line of `limit`,
    however long a line is.
    """
    while True:
        line = stream.readline(limit + 2)  # room for the limit and a CRLF
        if not line:
            return
        ending = next((e for e in endings if line.endswith(e)), line[:0])
        length = len(line) - len(ending)
        if length <= limit:
            yield line[:length], length
            continue
        while not ending and line:  # read past the rest of the line in pieces
            line = stream.readline(_SKIP_CHUNK)
            ending = next((e for e in endings if line.endswith(e)), line[:0])
            length += len(line) - len(ending)
        yield None, length


# --- Parquet ----------------------------------------------------------------------------------

def _parquet_documents(path: Path, entry: dict[str, str], options: ReadOptions, warn: Warn,
                       canonical: Canonical, groups: RowGroups = RowGroups()) -> Iterator[Document]:
    from .parquet import iter_parquet  # pyarrow is an optional extra: imported only when a Parquet file is met

    for row, record in iter_parquet(path, options.max_bytes, warn, groups.start, groups.stop):
        if not isinstance(record["text"], str):
            _bad_line(f"{path}: row {row}: missing 'text' in this row", options.bad_lines, warn, what="row")
            continue
        key = f"{path.as_posix()}#{row}"
        meta = {name: record.get(name) for name in JSONL_OPTIONAL}
        yield _document(key, str(record.get("id") or key), clean_text(record["text"]), "parquet",
                        path.as_posix(), entry, meta, canonical)


# --- JSONL records ------------------------------------------------------------------------------

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
        value = _parse_json_line(line, f"{name}:{number}", bad_lines, warn)
        if value is not _SKIP:
            yield number, value


_SKIP = object()  # what _parse_json_line returns for a blank or skipped line


def _parse_json_line(line: str, where: str, bad_lines: str, warn: Warn) -> object:
    if not line.strip():
        return _SKIP
    try:
        value = json.loads(line)
        if _SURROGATE_ESCAPE.search(line):
            value = _without_surrogates(value)
    except RecursionError:
        _bad_line(f"{where}: malformed JSON (nested too deeply)", bad_lines, warn)
        return _SKIP
    except ValueError as error:  # JSONDecodeError, or a number too long to convert
        reason = error.msg if isinstance(error, json.JSONDecodeError) else "a number with too many digits"
        _bad_line(f"{where}: malformed JSON ({reason})", bad_lines, warn)
        return _SKIP
    return value


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


def _bad_line(message: str, bad_lines: str, warn: Warn, what: str = "line") -> None:
    if bad_lines == "skip":
        warn(f"skipped {message}")
        return
    raise InputError(f"{message}; fix the {what}, or pass --bad-lines skip to skip it", option="bad_lines")


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


# --- outlet aliases -----------------------------------------------------------------------------

def read_aliases(path: str | os.PathLike) -> dict[str, str]:
    """An alias CSV (columns name,canonical) -> {outlet_key(spelling): canonical}, for canonical_outlet.

    Each canonical name is also its own alias, so its case variants fold onto it too.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such outlet alias file; check the path", option="aliases")
    rows = csv.DictReader(io.StringIO(read_text_file(path, "the outlet alias CSV")))
    try:
        return _alias_rows(path, rows)
    except csv.Error as error:
        raise InputError(f"{path}:{rows.reader.line_num}: not valid CSV ({error}); fix the alias file",
                         option="aliases") from None


def _alias_rows(path: Path, rows: csv.DictReader) -> dict[str, str]:
    columns = set(rows.fieldnames or [])
    if not {"name", "canonical"} <= columns:
        raise InputError(f"{path}: an outlet alias file needs the columns 'name' and 'canonical' (it has: "
                         f"{', '.join(sorted(columns)) or 'none'})", option="aliases")
    aliases: dict[str, str] = {}
    where: dict[str, int] = {}
    for number, row in enumerate(rows, start=2):
        name, spelling = (" ".join((row.get(column) or "").split()) for column in ("name", "canonical"))
        if not name or not spelling:
            raise InputError(f"{path}:{number}: 'name' and 'canonical' must both be filled in", option="aliases")
        for variant in (name, spelling):
            key = outlet_key(variant)
            if aliases.setdefault(key, spelling) != spelling:
                raise InputError(f"{path}:{number}: {variant!r} is already spelled {aliases[key]!r} "
                                 f"(line {where[key]}); give each outlet one canonical name", option="aliases")
            where.setdefault(key, number)
    return aliases

