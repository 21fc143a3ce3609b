"""Atomic file writes: write beside the target, flush to disk, rename over it.

A run killed half-way leaves the previous file whole and at most a hidden temporary
file, which the next run's rename does not touch.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .errors import OutputError


@contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[IO[str]]:
    """Open a temporary text file beside `path`; it replaces `path` only if the block completes."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a folder; cannot write a file there")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise OutputError(f"cannot write under {path.parent} ({error.strerror}); choose another folder") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path) as stream:
        stream.write(text)


def check_output_folder(folder: str | os.PathLike) -> Path:
    """A folder we may write reports into: it may hold other files (we leave them), but not be a file."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"--out {folder} is a file; give a folder for the reports")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create {folder} ({error.strerror}); choose another --out folder") from None
    return folder
