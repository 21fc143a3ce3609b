"""Writing files so that nothing of the user's is lost, half-written or mixed.

- `atomic_open`: one file, written beside its target, flushed and renamed over it.
- `ReportFolder`: every output of a run built in a staging folder beside `--out` and swapped in
  at the end, under a lock, so a run that fails or is interrupted leaves the previous reports
  exactly as they were, all of them, and two runs never mix their files.

Everything honours the user's umask: `tempfile` creates 0600 files and 0700 folders, which would
keep colleagues from reading shared reports and models.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .errors import OutputError

# What a scoring run writes. A folder holding only these is framing's to replace; anything else in it is
# the user's, and a run refuses to replace it rather than lose it.
REPORT_FILES = frozenset({"paragraphs.jsonl", "documents.jsonl", "dropped.jsonl", "outlets.json", "report.md",
                          "report.html", "outlets.csv", "paragraphs.csv", "calibration.json", "labelled.json",
                          "paragraphs.parquet"})
REPORT_SUFFIXES = (".png",)
REPORT_FOLDERS = frozenset({"paragraphs.parquet"})  # --format parquet: a folder of shards
SHARD_NAME = re.compile(r"part-\d{5,}\.parquet")
LOCK_SUFFIX = ".lock"


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: Path, folder: bool = False) -> None:
    """Give a tempfile-made file or folder the permissions a plain open() or mkdir() would have."""
    os.chmod(path, (0o777 if folder else 0o666) & ~current_umask())


def write_error(where: Path | str, error: OSError) -> OutputError:
    """The one message for a failed write: disk full, read-only, no permission."""
    reason = "the disk is full" if error.errno == errno.ENOSPC else error.strerror or str(error)
    return OutputError(f"cannot write {where} ({reason}); free space or choose another folder")


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
        raise write_error(path.parent, error) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        apply_umask(Path(temp))
        os.replace(temp, path)
    except OSError as error:
        raise write_error(path, error) from None
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path) as stream:
        stream.write(text)


def make_staging_folder(target: Path) -> Path:
    """An empty folder beside `target`, on the same file system, so that a rename can swap it in."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
        apply_umask(staging, folder=True)
    except OSError as error:
        raise write_error(target.parent, error) from None
    return staging


def swap_in(staging: Path, folder: Path) -> None:
    """Replace `folder` by `staging` with renames; the old folder survives until the new one is in place."""
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}-{time.time_ns()}")
    try:
        if folder.exists():
            os.rename(folder, old)
        os.rename(staging, folder)
    except BaseException:  # OSError, and Ctrl-C or SIGTERM between the two renames: put the old folder back
        if old.exists() and not folder.exists():
            os.rename(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


# --- locking ---------------------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


@contextmanager
def folder_lock(folder: Path, what: str = "reports") -> Iterator[None]:
    """Hold `.NAME.lock` beside `folder` (it holds the owner's pid) for the duration of the block.

    A lock whose owner is no longer running (killed with SIGKILL, machine restarted) is stale and
    taken over; a live one means another run is writing the same folder, and this one stops.
    """
    lock = folder.with_name(f".{folder.name}{LOCK_SUFFIX}")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_error(folder.parent, error) from None
    for _ in range(2):  # a second try after removing a stale lock
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            owner = _lock_owner(lock)
            if owner is not None and _alive(owner) and owner != os.getpid():
                raise OutputError(f"another framing run (pid {owner}) is writing the {what} in {folder}; wait for "
                                  f"it to finish, or write elsewhere") from None
            lock.unlink(missing_ok=True)  # stale: its owner is gone
            continue
        except OSError as error:
            raise write_error(lock, error) from None
        with os.fdopen(handle, "w") as stream:
            stream.write(json.dumps({"pid": os.getpid(), "started": time.time()}))
        break
    else:
        raise OutputError(f"cannot lock {folder}: {lock} keeps reappearing; remove it if no run is writing there")
    try:
        yield
    finally:
        if _lock_owner(lock) == os.getpid():
            lock.unlink(missing_ok=True)


def _lock_owner(lock: Path) -> int | None:
    try:
        return int(json.loads(lock.read_text(encoding="utf-8"))["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable or half-written: treated as stale


# --- the reports folder ----------------------------------------------------------------------------

def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_reports_folder(out: Path, inputs: Iterable[Path] = (), protected: Iterable[Path] = ()) -> Path:
    """Refuse an output folder that would replace or mix with anything that is not framing's reports.

    `inputs` are the paths being read; `protected` are folders that must never be replaced (the model,
    the labelled set). The folder itself may be absent, empty, or a reports folder framing wrote before.
    """
    resolved = out.resolve()
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file; give a folder for the reports")
    for path in inputs:
        source = path.resolve()
        if _within(source, resolved):
            raise OutputError(f"the output folder {out} holds the input {path}; write the reports elsewhere")
        if source.is_dir() and _within(resolved, source):
            raise OutputError(f"the output folder {out} is inside the input folder {path}, so the reports "
                              f"would be read as articles next time; write them elsewhere")
    for folder in protected:
        if _within(resolved, folder.resolve()) or _within(folder.resolve(), resolved):
            raise OutputError(f"the output folder {out} would replace or sit inside {folder}; write the reports "
                              f"elsewhere")
    if out.is_dir() and not _is_reports_folder(out):
        raise OutputError(f"{out} holds files that framing did not write; give an empty or new folder for "
                          f"the reports")
    return out


def _is_reports_folder(folder: Path) -> bool:
    return all(_is_report_entry(entry) for entry in folder.iterdir())


def _is_report_entry(entry: Path) -> bool:
    if entry.is_dir() and not entry.is_symlink():  # only the Parquet shards' folder, holding shards alone
        return entry.name in REPORT_FOLDERS and all(SHARD_NAME.fullmatch(part.name) and part.is_file()
                                                   for part in entry.iterdir())
    return entry.is_file() and (entry.name in REPORT_FILES or entry.name.endswith(REPORT_SUFFIXES))


class ReportFolder:
    """A staging folder for one run's outputs, swapped in over `out` by `commit()`, all at once.

    Use as a context manager: the lock is taken on entry; leaving without `commit()` (an error, an
    interrupt) removes the staging folder and leaves the previous reports untouched.
    """

    def __init__(self, out: str | os.PathLike, inputs: Iterable[Path] = (), protected: Iterable[Path] = ()) -> None:
        self.out = check_reports_folder(Path(out), list(inputs), list(protected))
        self.staging: Path | None = None
        self._lock = folder_lock(self.out)
        self.committed = False

    def __enter__(self) -> ReportFolder:
        self._lock.__enter__()
        try:
            check_reports_folder(self.out)  # again under the lock: another run may have just finished
            self.staging = make_staging_folder(self.out)
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self

    def path(self, name: str) -> Path:
        assert self.staging is not None, "use ReportFolder as a context manager"
        return self.staging / name

    @contextmanager
    def open(self, name: str) -> Iterator[IO[str]]:
        try:
            with open(self.path(name), "w", encoding="utf-8", newline="\n") as stream:
                yield stream
        except OSError as error:
            raise write_error(self.out / name, error) from None

    def write_text(self, name: str, text: str) -> None:
        with self.open(name) as stream:
            stream.write(text)

    def write_bytes(self, name: str, data: bytes) -> None:
        try:
            self.path(name).write_bytes(data)
        except OSError as error:
            raise write_error(self.out / name, error) from None

    def files(self) -> list[str]:
        assert self.staging is not None
        return sorted(p.name for p in self.staging.iterdir())

    def commit(self) -> None:
        """Flush everything to disk and swap the staging folder in over the reports."""
        assert self.staging is not None
        try:
            for file in self.staging.rglob("*"):
                if file.is_file():
                    with open(file, "rb") as stream:
                        os.fsync(stream.fileno())
            swap_in(self.staging, self.out)
        except OSError as error:
            raise write_error(self.out, error) from None
        self.committed = True

    def __exit__(self, *exc_info) -> None:
        try:
            if self.staging is not None and not self.committed:
                shutil.rmtree(self.staging, ignore_errors=True)
        finally:
            self._lock.__exit__(*exc_info)
