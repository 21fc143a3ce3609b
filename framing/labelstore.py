"""The user's labels file: append-only label records, and a labelled spreadsheet merged back.

Records are appended one JSON line at a time (or one import in one write), flushed and fsynced; the file
is never rewritten in place, so a crash can lose only what was being written. The file lives in the labels
folder (default `labels/user.jsonl`), so `framing train` reads it with the rest of the labelled set.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .csvout import FORMULA_STARTS, neutralise
from .errors import InputError, LabelError, OutputError
from .files import write_error
from .labels import Example, Scheme, load_scheme, read_examples, scheme_path_for
from .readers import read_text_file

USER_FILE = "user.jsonl"  # inside the labels folder, so `framing train` reads what the user adds


def append_records(path: str | os.PathLike, records: Sequence[dict]) -> None:
    """Append JSON lines to `path` in one write, then flush and fsync: never a rewrite of what is there.

    A last line without its newline (a power cut mid-write) gets one first, so it cannot swallow these."""
    path = Path(path)
    if not records:
        return
    data = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")
    try:
        new = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+b") as stream:  # append mode: every write lands at the end, whatever was read
            stream.seek(0, os.SEEK_END)
            if stream.tell():
                stream.seek(-1, os.SEEK_END)
                if stream.read(1) != b"\n":
                    data = b"\n" + data
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if new:  # the new file's name must survive a crash too
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    except OSError as error:
        raise write_error(path, error) from None


def label_record(candidate, label: str, via: str) -> dict:
    """What one user label looks like on disk: `source: user`, with where the paragraph came from.

    `candidate`: anything with text, outlet, doc, index and line (`active.Candidate`); `doc`, `index` and
    `line` are left out when unknown ("" or -1), as for a spreadsheet row without them."""
    where = {"doc": candidate.doc, "index": candidate.index, "line": candidate.line}
    return {"text": candidate.text, "label": label, "outlet": candidate.outlet, "source": "user",
            **{key: value for key, value in where.items() if value not in ("", -1)}, "via": via,
            "added": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


# --- the labelled set -----------------------------------------------------------------------------

def labels_file_for(path: str | os.PathLike) -> Path:
    """The file answers go to: `path` itself, or `user.jsonl` inside a labels folder."""
    path = Path(path)
    if path.is_dir():
        return path / USER_FILE
    if path.suffix != ".jsonl":
        raise InputError(f"{path}: labels are appended to a .jsonl file in the labels folder, so that training "
                         "reads them; give one ending in .jsonl", option="labels")
    return path


def existing_labels(labels_file: Path) -> tuple[Scheme, list[Example]]:
    """The scheme beside the labels file and every labelled paragraph in its folder (what training reads)."""
    scheme = load_scheme(scheme_path_for(labels_file))
    folder = labels_file.parent
    has_records = any(p.stat().st_size for p in folder.glob("*.jsonl"))
    return scheme, (read_examples(folder, scheme) if has_records else [])


def text_key(text: str) -> str:
    """How the labelled set tells two paragraphs apart (see labels._duplicates)."""
    return " ".join(text.split()).casefold()


# --- a spreadsheet round trip ---------------------------------------------------------------------

def write_suggestions(path: str | os.PathLike, rows: Sequence[dict]) -> Path:
    """Write the CSV beside its target and link it into place: an existing file is never overwritten."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise InputError(f"{path}: the suggestions are a CSV file; give a name ending in .csv", option="out")
    if path.exists():
        raise OutputError(f"{path} exists; choose a new file for the suggestions", option="out")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["label", "text"])
    writer.writeheader()
    writer.writerows({key: neutralise(value) for key, value in row.items()} for row in rows)  # no formulas
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp.write_text(buffer.getvalue(), encoding="utf-8-sig")  # the BOM makes spreadsheets read UTF-8
        os.link(temp, path)  # fails if the target appeared meanwhile: no overwrite, ever
    except FileExistsError:
        raise OutputError(f"{path} exists; choose a new file for the suggestions", option="out") from None
    except OSError as error:
        raise write_error(path, error) from None
    finally:
        temp.unlink(missing_ok=True)
    return path


def unneutralise(text: str) -> str:
    """The text as it was before `csvout.neutralise` put an apostrophe before a leading =, +, - or @."""
    return text[1:] if text[:1] == "'" and text[1:2] and text[1:2] in FORMULA_STARTS else text


@dataclass(frozen=True)
class ImportResult:
    labels_file: Path
    added: int
    duplicates: tuple[str, ...]  # rows left out: already labelled the same way (here or earlier in the CSV)
    unlabelled: int  # rows with an empty label: not labelled yet, left out


def import_labels(csv_path: str | os.PathLike, labels_path: str | os.PathLike,
                  scheme: Scheme | None = None) -> ImportResult:
    """Validate every row of a labelled CSV first; append the new ones only if nothing is refused.

    Refused (LabelError, nothing written): unknown labels, empty text, a label that conflicts with the
    labelled set or with another row. Reported and left out: rows already labelled the same way."""
    csv_path, labels_file = Path(csv_path), labels_file_for(labels_path)
    known_scheme, examples = existing_labels(labels_file)
    scheme = scheme or known_scheme
    existing = {text_key(e.text): e for e in examples}
    reader = csv.DictReader(io.StringIO(read_text_file(csv_path, "a labelled CSV")))
    try:
        rows = list(reader)
    except csv.Error as error:
        raise InputError(f"{csv_path}:{reader.line_num}: not valid CSV ({error}); fix the file") from None
    if not {"text", "label"} <= set(reader.fieldnames or []):
        raise InputError(f"{csv_path}: needs the columns 'text' and 'label' (it has: "
                         f"{', '.join(reader.fieldnames or []) or 'none'})")
    unknown: dict[str, list[int]] = {}
    problems: list[str] = []
    duplicates: list[str] = []
    seen: dict[str, tuple[int, str]] = {}
    records = []
    unlabelled = 0
    for number, row in enumerate(rows, start=2):  # spreadsheet row numbers: the header is row 1
        label, text = (row.get("label") or "").strip(), unneutralise((row.get("text") or "").strip())
        if not label:
            unlabelled += 1
            continue
        if label not in scheme.labels:
            unknown.setdefault(label, []).append(number)
            continue
        if not text:
            problems.append(f"row {number}: empty text")
            continue
        key = text_key(text)
        if key in existing:
            other = existing[key]
            if other.label != label:
                problems.append(f"row {number}: labelled {label} here but {other.label} in {other.where}")
            else:
                duplicates.append(f"row {number}: already labelled {label} in {other.where}")
            continue
        if key in seen:
            first, first_label = seen[key]
            if first_label != label:
                problems.append(f"row {number}: labelled {label} here but {first_label} in row {first}")
            else:
                duplicates.append(f"row {number}: same text as row {first}")
            continue
        seen[key] = (number, label)
        records.append(label_record(_row_candidate(row, text), label, f"import {csv_path.name}"))
    problems = [f"row{'s' * (len(numbers) > 1)} {', '.join(map(str, numbers))}: unknown label {label!r}"
                for label, numbers in unknown.items()] + problems
    if problems:
        shown = "; ".join(problems[:8]) + (f"; and {len(problems) - 8} more" if len(problems) > 8 else "")
        raise LabelError(f"{csv_path}: nothing imported: {shown} (the scheme has {', '.join(scheme.labels)})")
    append_records(labels_file, records)
    return ImportResult(labels_file=labels_file, added=len(records), duplicates=tuple(duplicates),
                        unlabelled=unlabelled)


def _row_candidate(row: dict, text: str) -> _Row:
    def number(name: str) -> int:
        value = (row.get(name) or "").strip()
        return int(value) if value.isdigit() else -1

    return _Row(text=text, outlet=(row.get("outlet") or "").strip() or "unknown",
                     doc=(row.get("doc") or "").strip(), index=number("index"), line=number("line"))


@dataclass(frozen=True)
class _Row:
    """Where a spreadsheet row's paragraph came from, as far as its columns say."""

    text: str
    outlet: str
    doc: str
    index: int
    line: int
