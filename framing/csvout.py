"""`outlets.csv` and `paragraphs.csv` for spreadsheets, safe to open in Excel, LibreOffice or Sheets.

A text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read by a spreadsheet as a
formula (CSV injection: `=HYPERLINK(...)` in an outlet name); such a cell gets a leading apostrophe, which
the spreadsheet shows as text. Numbers are written as numbers: they came from the model, not a document.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text that a spreadsheet would run as a formula, prefixed with an apostrophe; anything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _writer(stream: IO[str]) -> csv.writer:
    return csv.writer(stream, lineterminator="\n")


def outlet_columns(labels: Sequence[str], rows: Sequence[Mapping]) -> list[str]:
    """The header of outlets.csv: per label the share and prevalence with their interval, then what was left out."""
    reasons = sorted({reason for row in rows for reason in (row.get("left_out") or {})})
    columns = ["outlet", "documents", "paragraphs", "method"]
    for label in labels:
        columns += [f"{label}_share", f"{label}_share_low", f"{label}_share_high",
                    f"{label}_prevalence", f"{label}_prevalence_low", f"{label}_prevalence_high"]
    columns += ["duplicates", "duplicate_documents", *(f"left_out_{reason}" for reason in reasons)]
    if any(row.get("voice") for row in rows):
        columns += [f"{voice}_{label}" for voice in ("own", "quoted") for label in labels]
    return columns


def _outlet_cells(row: Mapping, labels: Sequence[str], columns: Sequence[str]) -> list:
    cells: dict[str, Any] = {key: row.get(key, "") for key in ("outlet", "documents", "paragraphs", "method",
                                                                "duplicates", "duplicate_documents")}
    for label in labels:
        share_ci = (row.get("ci") or {}).get(label, ("", ""))
        prev_ci = (row.get("prevalence_ci") or {}).get(label, ("", ""))
        cells |= {f"{label}_share": (row.get("share") or {}).get(label, ""), f"{label}_share_low": share_ci[0],
                  f"{label}_share_high": share_ci[1],
                  f"{label}_prevalence": (row.get("prevalence") or {}).get(label, ""),
                  f"{label}_prevalence_low": prev_ci[0], f"{label}_prevalence_high": prev_ci[1]}
    for reason, n in (row.get("left_out") or {}).items():
        cells[f"left_out_{reason}"] = n
    for voice, shares in (row.get("voice") or {}).items():
        if voice in ("own", "quoted"):
            cells |= {f"{voice}_{label}": shares.get(label, "") for label in labels}
    return [neutralise(cells.get(column, 0 if column.startswith("left_out_") else "")) for column in columns]


def write_outlets_csv(stream: IO[str], rows: Sequence[Mapping], labels: Sequence[str]) -> None:
    """One line per outlet from `outlets.json`-style rows (see framing.htmlreport for the row's keys)."""
    columns = outlet_columns(labels, rows)
    writer = _writer(stream)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(_outlet_cells(row, labels, columns))


PARAGRAPH_COLUMNS = ("doc", "outlet", "publisher", "title", "date", "url", "index", "line", "label", "lang",
                     "voice")


def write_paragraphs_csv(stream: IO[str], records: Iterable[Mapping], labels: Sequence[str]) -> int:
    """One line per `paragraphs.jsonl` record, streamed; the text last, so the columns stay readable.

    Returns the number of lines written.
    """
    writer = _writer(stream)
    writer.writerow([*PARAGRAPH_COLUMNS, *(f"score_{label}" for label in labels), "text"])
    n = 0
    for record in records:
        scores = record.get("scores") or {}
        writer.writerow([neutralise(record.get(key, "")) if record.get(key) is not None else ""
                         for key in PARAGRAPH_COLUMNS]
                        + [scores.get(label, "") for label in labels] + [neutralise(record.get("text", ""))])
        n += 1
    return n
