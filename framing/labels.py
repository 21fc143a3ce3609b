"""The label scheme and the labelled set: read, validate, hash, append.

`labels/scheme.json` names the labels and defines them; every `*.jsonl` file in the
labels folder holds labelled paragraphs, one JSON object a line:
{"text", "label", "outlet", "source"} plus optional "batch", "doc", "note".
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import LabelError
from .readers import decode_bytes, iter_jsonl

REAL_SOURCES = ("seed", "user", "real")  # labelled paragraphs taken from real articles, not written by us

SCHEME_FILE = "scheme.json"


@dataclass(frozen=True)
class Scheme:
    name: str
    labels: tuple[str, ...]
    definitions: dict[str, str]

    def index(self, label: str) -> int:
        return self.labels.index(label)


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    outlet: str
    source: str
    group: str  # what grouped cross-validation keeps apart: the outlet, or the authoring batch
    where: str  # file:line, for messages
    id: str = ""  # the record's own id, else file:line


def load_scheme(path: str | os.PathLike) -> Scheme:
    """Read a scheme file (or the scheme.json inside a labels folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / SCHEME_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabelError(f"{path}: no label scheme here; create it (see labels/GUIDELINES.md)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LabelError(f"{path}: cannot read the label scheme ({error}); fix the JSON") from None
    entries = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("name"), str)
                                                and e["name"].strip() for e in entries):
        raise LabelError(f"{path}: 'labels' must be a list of objects with a non-empty 'name'")
    names = [e["name"].strip() for e in entries]
    duplicated = sorted(name for name, n in Counter(names).items() if n > 1)
    if duplicated:
        raise LabelError(f"{path}: label names must be unique; repeated: {', '.join(duplicated)}")
    if len(names) < 2:
        raise LabelError(f"{path}: a scheme needs at least two labels to classify between (it has {len(names)})")
    return Scheme(name=str(data.get("name", path.stem)), labels=tuple(names),
                  definitions={e["name"].strip(): str(e.get("definition", "")) for e in entries})


def labelled_files(path: str | os.PathLike) -> list[Path]:
    """A labelled-set file, or every *.jsonl file in a labels folder, in sorted order."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise LabelError(f"{path}: no labelled *.jsonl files here; add some or give another labelled set",
                             option="labels")
        return files
    if not path.is_file():
        raise LabelError(f"{path}: no such labelled set; check the path", option="labels")
    return [path]


def scheme_path_for(labels: str | os.PathLike) -> Path:
    """The scheme that goes with a labelled set: labels/scheme.json beside or inside it."""
    path = Path(labels)
    return path / SCHEME_FILE if path.is_dir() else path.parent / SCHEME_FILE


def read_examples(path: str | os.PathLike, scheme: Scheme, what: str = "labelled set",
                  wrong_label: Callable[[object], str] | None = None) -> list[Example]:
    """Read and validate a labelled set (a folder of JSONL files, or one file); every problem is reported
    with its file and line. Training, auditing, evaluation and the relevance stage's off-topic set all
    read labels through this; `what` names the set in messages, `wrong_label` words a label's refusal."""
    examples: list[Example] = []
    problems: list[str] = []
    for file in labelled_files(path):
        text = decode_bytes(file.read_bytes())
        if text is None:
            raise LabelError(f"{file}: binary data, not a JSONL {what}")
        for number, record in _records(text, file, problems):
            example = _example(record, f"{file.name}:{number}", scheme, problems, wrong_label)
            if example:
                examples.append(example)
    problems += _duplicates(examples)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise LabelError(f"invalid {what}: {shown}")
    if not examples:
        raise LabelError(f"{path}: the {what} is empty")
    return examples


def _records(text: str, file: Path, problems: list[str]):
    def note(message: str) -> None:
        problems.append(message.removeprefix("skipped "))
    yield from iter_jsonl(text, file.name, bad_lines="skip", warn=note)


def _example(record: object, where: str, scheme: Scheme, problems: list[str],
             wrong_label: Callable[[object], str] | None = None) -> Example | None:
    if not isinstance(record, dict):
        problems.append(f"{where}: expected a JSON object")
        return None
    text, label = record.get("text"), record.get("label")
    if not isinstance(text, str) or not text.strip():
        problems.append(f"{where}: empty or missing 'text'")
        return None
    if label not in scheme.labels:
        refusal = wrong_label(label) if wrong_label else \
            f"unknown label {label!r} (the scheme has {', '.join(scheme.labels)})"
        problems.append(f"{where}: {refusal}")
        return None
    outlet = str(record.get("outlet") or "unknown")
    source = str(record.get("source") or "unknown")
    group = str(record.get("batch") or (outlet if outlet != "unknown" else record.get("doc") or where))
    return Example(text=" ".join(text.split()), label=label, outlet=outlet, source=source, group=group,
                   where=where, id=str(record.get("id") or where))


def _duplicates(examples: Sequence[Example]) -> list[str]:
    first: dict[str, Example] = {}
    problems = []
    for example in examples:
        key = example.text.casefold()
        if key in first:
            other = first[key]
            kind = "conflicting labels" if other.label != example.label else "duplicate text"
            problems.append(f"{example.where}: {kind}, same text as {other.where}")
        else:
            first[key] = example
    return problems


def labelled_set_hash(examples: Sequence[Example]) -> str:
    """sha256 over (text, label) pairs: what the model was trained on, independent of file layout."""
    digest = hashlib.sha256()
    for example in sorted(examples, key=lambda e: (e.text, e.label)):
        digest.update(json.dumps([example.text, example.label]).encode())
    return digest.hexdigest()


def label_counts(examples: Sequence[Example], scheme: Scheme) -> dict[str, int]:
    counts = Counter(example.label for example in examples)
    return {label: counts.get(label, 0) for label in scheme.labels}
