"""`framing label`, `framing suggest` and `framing labels import`: the terminal side of active labelling.

The selection and the answers are `framing.active`'s, the files `framing.labelstore`'s; this module
parses options, reads one key at a time from the terminal and renders. `register(app, labels_app)` adds
the commands to the CLI. Heavy imports (NumPy, scikit-learn) happen inside the commands, so `framing --help` stays fast.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Optional

import typer

MIN_COLUMNS = 60
CONTROL_KEYS = {"s": "skip", "u": "undo", "q": "quit", "?": "help"}
_SHOWN_CHARS = 1500  # a paragraph longer than this is cut on screen (it is stored whole)
_CONTEXT_LINES = 2


def register(app: typer.Typer, labels_app: typer.Typer) -> None:
    """Add `label` and `suggest` to the main app and `import` to `framing labels`."""
    app.command("label")(label)
    app.command("suggest")(suggest)
    labels_app.command("import")(labels_import)


PathsArg = Annotated[list[Path], typer.Argument(help="Articles to pick paragraphs from: files and folders "
                                                "(.txt, .md, .html, .jsonl; folders recursively).")]
LabelsFileOpt = Annotated[Path, typer.Option("--labels", help="Labels file answers are appended to (a .jsonl file "
                                             "in the labels folder, beside scheme.json), or the labels folder "
                                             "itself (then user.jsonl in it). The rest of the folder is the "
                                             "labelled set the model starts from.")]
EmbedderOpt = Annotated[str, typer.Option("--embedder", help="sentence-transformers model name or path; default: "
                                          "the packaged all-MiniLM-L6-v2.")]
CacheDirOpt = Annotated[Optional[Path], typer.Option("--cache-dir", envvar="FRAMING_CACHE_DIR",
                                                     help="Embedding cache folder.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the embedding cache.")]
DEFAULT_LABELS_FILE = Path("labels/user.jsonl")


def answer_keys(labels: tuple[str, ...]) -> dict[str, str]:
    """One key per label: 1-9, then letters other than the control keys."""
    keys = [str(d) for d in range(1, 10)] + [c for c in "abcdefghijklmnoprtvwxyz" if c not in CONTROL_KEYS]
    if len(labels) > len(keys):
        raise ValueError(f"a scheme of {len(labels)} labels has more labels than keys")
    return dict(zip(keys, labels))


def label(
    paths: PathsArg,
    labels: LabelsFileOpt = DEFAULT_LABELS_FILE,
    n: Annotated[int, typer.Option("-n", "--n", min=1, help="Stop after this many answers.")] = 20,
    refit_every: Annotated[int, typer.Option("--refit-every", min=1, help="Refit the model after this many "
                                             "answers.")] = 5,
    embedder: EmbedderOpt = "default",
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Label paragraphs where the model is least sure, one key per answer, appended to the labels file.

    Keys: one per label (shown on screen), s skip, u undo, q quit, ? the label definitions. The file is
    only ever appended to, so the latest answer waits in memory until the next key (or quit, or Ctrl-C)
    writes it: that is what u can take back."""
    from .cli import errors_translated, fail, say, warn

    problem = _terminal_problem()
    if problem:
        fail(problem, 2)
    with errors_translated():
        from .active import SelectOptions, open_session

        session = open_session(paths, labels, _embedder(embedder, cache_dir, no_cache, warn),
                               SelectOptions(refit_every=refit_every), warn=warn,
                               on_refit=lambda k: say(f"fitting the model on {k} labels…"),
                               on_embed=lambda k: say(f"embedding {k} paragraphs…"))
        try:
            stopped = _loop(session, n)
        finally:
            written = session.close()
            typer.echo(f"{written} answer{'s' * (written != 1)} appended to {session.labels_file}, "
                       f"{session.n_skipped} skipped; `framing train` uses them")
        if stopped == "eof":
            fail("stdin closed; the answers given are saved", 2)


def _terminal_problem() -> str | None:
    """Why the loop cannot run here, or None: it needs a terminal at least MIN_COLUMNS wide."""
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        return "stdin is closed; `framing label` reads one key per answer from a terminal " \
               "(use `framing suggest` to label in a spreadsheet)"
    try:
        interactive = stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError, OSError):
        interactive = False
    if not interactive:
        return "`framing label` needs an interactive terminal on stdin and stdout " \
               "(use `framing suggest` to label in a spreadsheet)"
    columns = shutil.get_terminal_size((80, 24)).columns
    if columns < MIN_COLUMNS:
        return f"the terminal is {columns} columns wide; `framing label` needs at least {MIN_COLUMNS}: widen it"
    return None


def _embedder(name: str, cache_dir: Optional[Path], no_cache: bool, warn):
    from .options import CacheOptions
    from .pipeline import make_embedder

    return make_embedder(name, CacheOptions(enabled=not no_cache, folder=cache_dir), warn=warn)


class _Keys:
    """Single keypresses from the terminal (cbreak mode: no Enter needed, no echo, Ctrl-C still interrupts)."""

    def __enter__(self) -> _Keys:
        import termios
        import tty

        self.fd = sys.stdin.fileno()
        self.saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        return self

    def read(self) -> str | None:
        """One key; None when stdin is closed. An escape sequence (arrows) or a paste counts as its first key."""
        try:
            data = os.read(self.fd, 64)
        except OSError:  # the terminal went away
            return None
        if not data:
            return None
        if data.startswith(b"\x1b"):
            return ""
        return data[:1].decode("ascii", errors="ignore").lower()

    def __exit__(self, *exc_info) -> None:
        import termios

        termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


def _loop(session, n: int) -> str:
    """Show, read a key, act, until n answers, quit, no paragraph left, or stdin closes; says which."""
    keys = answer_keys(session.scheme.labels)
    with _Keys() as terminal:
        while session.n_answers < n:
            row = session.current()
            if row is None:
                typer.echo("No unlabelled paragraph is left in these articles.")
                return "done"
            _show(session, row, keys, session.n_answers + 1, n)
            while True:
                key = terminal.read()
                if key is None:
                    return "eof"
                if key in keys:
                    session.answer(keys[key])
                    typer.echo(f"  -> {keys[key]}")
                elif key == "s":
                    session.skip()
                    typer.echo("  -> skipped")
                elif key == "u":
                    if not session.undo():
                        typer.echo("  (nothing to undo)")
                        continue
                    typer.echo("  -> undone; that paragraph again:")
                elif key in ("q", "\x04"):  # Ctrl-D too: in cbreak mode it arrives as a key, not as end of input
                    typer.echo("  -> quit")
                    return "quit"
                elif key == "?":
                    _help(session.scheme, keys)
                    continue
                else:
                    continue
                break
    return "done"


def _show(session, row: int, keys: dict[str, str], number: int, n: int) -> None:
    width = max(MIN_COLUMNS, min(shutil.get_terminal_size((80, 24)).columns, 100)) - 1
    c, p = session.candidates[row], session.proba[row]
    title = f" answer {number} of {n} "
    where = f"{_cut(c.outlet, 30)} | paragraph {c.index + 1} | "
    lines = ["", "-" * (width - len(title)) + title, where + _cut_left(c.doc, width - len(where))]
    if c.before:
        lines += _wrap(c.before, width, "  before: ", _CONTEXT_LINES)
    lines += _wrap(c.text[:_SHOWN_CHARS] + ("…" if len(c.text) > _SHOWN_CHARS else ""), width, "  >> ")
    if c.after:
        lines += _wrap(c.after, width, "  after:  ", _CONTEXT_LINES)
    if session.model_ready:
        ranked = sorted(zip(session.scheme.labels, p), key=lambda pair: -pair[1])
        lines += _wrap("model: " + ", ".join(f"{label} {v:.2f}" for label, v in ranked), width, "  ")
    else:
        lines.append("  model: none yet (each label needs 2 answers); picked for variety")
    lines += textwrap.wrap("  ".join(f"[{k}] {label}" for k, label in keys.items())
                           + "  [s]kip [u]ndo [q]uit [?]help", width=width, initial_indent="  ",
                           subsequent_indent="  ")
    typer.echo("\n".join(lines))


def _help(scheme, keys: dict[str, str]) -> None:
    width = max(MIN_COLUMNS, min(shutil.get_terminal_size((80, 24)).columns, 100)) - 1
    lines = []
    for key, name in keys.items():
        lines += _wrap(f"[{key}] {name}: {scheme.definitions.get(name) or '(no definition in the scheme)'}",
                       width, "  ")
    lines.append("  [s] skip (not labelled)  [u] undo the latest answer or skip  [q] quit (answers are saved)")
    typer.echo("\n".join(lines))


def _wrap(text: str, width: int, prefix: str, max_lines: int | None = None) -> list[str]:
    lines = textwrap.wrap(" ".join(text.split()), width=width, initial_indent=prefix,
                          subsequent_indent=" " * len(prefix), max_lines=max_lines, placeholder=" …")
    return lines or [prefix.rstrip()]


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _cut_left(text: str, width: int) -> str:
    """A path's end is what tells articles apart: cut from the left."""
    return text if len(text) <= width else "…" + text[len(text) - width + 1:]


def suggest(
    paths: PathsArg,
    out: Annotated[Path, typer.Option("--out", help="New CSV file to write (never overwritten): fill in its "
                                      "'label' column, then `framing labels import` it.")],
    n: Annotated[int, typer.Option("-n", "--n", min=1, help="How many paragraphs to suggest.")] = 50,
    labels: LabelsFileOpt = DEFAULT_LABELS_FILE,
    embedder: EmbedderOpt = "default",
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Write the paragraphs the model is least sure of to a CSV, for labelling in a spreadsheet."""
    from .cli import errors_translated, say, warn

    with errors_translated():
        from .active import SelectOptions, open_session, suggestion_rows
        from .labelstore import write_suggestions

        session = open_session(paths, labels, _embedder(embedder, cache_dir, no_cache, warn), SelectOptions(),
                               warn=warn, on_embed=lambda k: say(f"embedding {k} paragraphs…"))
        rows = suggestion_rows(session, n)
        write_suggestions(out, rows)
    typer.echo(f"{len(rows)} paragraphs to label in {out}: fill in the 'label' column "
               f"({', '.join(session.scheme.labels)}), then `framing labels import {out}`")


def labels_import(
    file: Annotated[Path, typer.Argument(help="CSV with 'text' and 'label' columns (as `framing suggest` writes "
                                         "it); rows with an empty label are left out.")],
    labels: LabelsFileOpt = DEFAULT_LABELS_FILE,
) -> None:
    """Validate a labelled CSV and append its new rows to the labels file; nothing is written if any row is
    refused (unknown label, empty text, a conflict with the labelled set)."""
    from .cli import errors_translated, warn

    with errors_translated():
        from .labelstore import import_labels

        result = import_labels(file, labels)
    for duplicate in result.duplicates[:10]:
        warn(f"left out {duplicate}")
    if len(result.duplicates) > 10:
        warn(f"and {len(result.duplicates) - 10} more rows already labelled")
    typer.echo(f"{result.added} labels appended to {result.labels_file}; {len(result.duplicates)} already "
               f"labelled, {result.unlabelled} without a label left out")
