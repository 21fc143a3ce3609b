"""Errors the library raises; the CLI turns each into one stderr line and an exit code.

FramingError                 exit 1   base class, never raised directly
├── InputError               exit 2   a path or document cannot be read as asked
├── LabelError               exit 3   the scheme or the labelled set is invalid
├── ModelError               exit 4   a model is missing, damaged, untrusted or does not fit
└── OutputError              exit 5   a report or model cannot be written where asked

Every message says what is wrong and what to do about it.
"""

from __future__ import annotations


class FramingError(Exception):
    """Base of every error `framing` raises on purpose.

    `option` names the setting the error is about ("model", "out", "labels", ...), so that the CLI can
    point at its flag; the message itself names no flag, and makes sense to a Python caller too.
    """

    exit_code = 1

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class InputError(FramingError):
    exit_code = 2


class LabelError(FramingError):
    exit_code = 3


class ModelError(FramingError):
    exit_code = 4


class OutputError(FramingError):
    exit_code = 5
