"""Parquet files -> rows, one row group at a time, with pyarrow (the optional extra `framing[parquet]`).

Only readers.py calls this; it turns the rows into Documents like JSONL records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import InputError

COLUMNS = ("text", "id", "outlet", "date", "url", "title")  # `text` required, the others optional
BATCH_ROWS = 1024  # rows turned into Python values at a time: a row group can be large


def iter_parquet(path: Path, max_bytes: int, warn: Callable[[str], None], start: int = 0,
                 stop: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (row number from 1, {column: text or None}) for each row whose text is within `max_bytes`, of the
    row groups [start, stop) (default: all), numbered as in the whole file.

    A file pyarrow cannot open, or a row group it cannot read, is skipped with a warning (as a
    binary .txt is); a file without a usable `text` column is an InputError.
    """
    pa, pq = _pyarrow(path)
    failures = (OSError, ValueError, pa.ArrowException)  # ArrowInvalid is a ValueError, ArrowIOError an OSError
    try:
        file = pq.ParquetFile(path)
    except failures as error:
        warn(f"skipped {path}: not a readable Parquet file ({_reason(error)})")
        return
    try:
        columns = _columns(path, file.schema_arrow, pa)
        metadata = file.metadata
        stop = metadata.num_row_groups if stop is None else min(stop, metadata.num_row_groups)
        # the footer counts every group's rows: a range's rows get the file's numbers without reading what precedes
        first = 1 + sum(metadata.row_group(group).num_rows for group in range(min(start, stop)))
        for group in range(start, stop):
            n_rows = metadata.row_group(group).num_rows
            try:
                table = file.read_row_group(group, columns=columns)
            except failures as error:
                warn(f"skipped rows {first:,}-{first + n_rows - 1:,} of {path}: row group {group} cannot be read "
                     f"({_reason(error)})")
                first += n_rows
                continue
            for batch in table.to_batches(max_chunksize=BATCH_ROWS):
                values = {name: batch.column(name).to_pylist() for name in columns}
                for offset in range(batch.num_rows):
                    text = values["text"][offset]
                    size = _utf8_size(text, max_bytes)
                    if size > max_bytes:
                        warn(f"skipped row {first + offset:,} of {path}: {size:,} bytes is larger than the "
                             f"{max_bytes:,}-byte limit for one article")
                        continue
                    yield first + offset, {name: _as_text(values[name][offset]) for name in columns}
                first += batch.num_rows
            del table  # one row group in memory at a time
    finally:
        file.close()


def _pyarrow(path: Path) -> tuple[Any, Any]:
    try:
        import pyarrow as pa  # imported here: an optional extra, and only Parquet needs it
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(f"{path}: reading Parquet needs pyarrow: pip install 'framing[parquet]'") from None
    return pa, pq


def _columns(path: Path, schema: Any, pa: Any) -> list[str]:
    """The columns to read, after checking that each holds what a document field can take."""
    if "text" not in schema.names:
        raise InputError(f"{path}: a Parquet file needs a 'text' column (it has: "
                         f"{', '.join(schema.names) or 'none'})")
    columns = [name for name in COLUMNS if name in schema.names]
    for name in columns:
        if schema.get_field_index(name) < 0:  # -1 for a name that appears twice
            raise InputError(f"{path}: column '{name}' appears more than once")
        kind = schema.field(name).type
        if pa.types.is_dictionary(kind):  # a categorical column: its values decide
            kind = kind.value_type
        text_like = pa.types.is_string(kind) or pa.types.is_large_string(kind) or _is_string_view(pa, kind)
        scalar = not (pa.types.is_nested(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind)
                      or pa.types.is_fixed_size_binary(kind))
        if not text_like and (name == "text" or not scalar):
            raise InputError(f"{path}: column '{name}' should hold strings (it holds {kind})")
    return columns


def _is_string_view(pa: Any, kind: Any) -> bool:
    check = getattr(pa.types, "is_string_view", None)  # newer pyarrow only
    return bool(check and check(kind))


def _utf8_size(text: object, max_bytes: int) -> int:
    """The text's size in UTF-8, computed only when it could be over the limit (at most 4 bytes a character)."""
    if not isinstance(text, str) or 4 * len(text) <= max_bytes:
        return 0
    return len(text.encode("utf-8", errors="surrogatepass"))


def _as_text(value: object) -> Any:
    """A cell as a document field: text stays text, dates become ISO 8601, numbers their digits."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return str(value)


def _reason(error: BaseException) -> str:
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return lines[0][:200]
