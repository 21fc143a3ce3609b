"""A content-addressed embedding cache on disk, wrapped around any Embedder.

Key: (embedder fingerprint, sha256 of the text). Storage: one SQLite file in WAL mode.
SQLite's transactions make the cache safe for two runs at once and for a run killed
half-way: a batch is either all written or not at all, and a vector whose size does
not match is treated as a miss.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .embed import Embedder
from .errors import ModelError, OutputError

ENV_VAR = "FRAMING_CACHE_DIR"
FILE_NAME = "embeddings-v1.sqlite3"
_LOOKUP_CHUNK = 500  # SQLite limits the number of parameters in one statement


def default_cache_dir() -> Path:
    """FRAMING_CACHE_DIR, else the user's cache folder (e.g. ~/.cache/framing)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("framing", appauthor=False))


def text_digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class EmbeddingCache:
    def __init__(self, folder: str | os.PathLike | None = None, warn: Callable[[str], None] = lambda _: None) -> None:
        self.folder = Path(folder) if folder else default_cache_dir()
        self.path = self.folder / FILE_NAME
        self.warn = warn
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            db = self._connect()
        except sqlite3.DatabaseError:
            # Not a database (overwritten, truncated): set it aside and start afresh, never trust it.
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            os.replace(self.path, aside)
            self.warn(f"the embedding cache {self.path} was damaged; moved it to {aside.name} and started a new one")
            db = self._connect()
        except OSError as error:
            raise OutputError(f"cannot use the cache folder {self.folder} ({error.strerror}); choose another cache "
                              f"folder or run without the cache", option="cache") from None
        return db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE IF NOT EXISTS vectors (embedder TEXT NOT NULL, digest BLOB NOT NULL, "
                   "vector BLOB NOT NULL, PRIMARY KEY (embedder, digest)) WITHOUT ROWID")
        db.execute("SELECT count(*) FROM vectors WHERE embedder = ''").fetchone()  # touch: fails if damaged
        return db

    def get_many(self, embedder: str, digests: Sequence[bytes], dimension: int) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        size = dimension * 4
        for start in range(0, len(digests), _LOOKUP_CHUNK):
            chunk = list(digests[start:start + _LOOKUP_CHUNK])
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT digest, vector FROM vectors WHERE embedder = ? AND digest IN ({marks})",
                                   [embedder, *chunk])
            for digest, blob in rows:
                if len(blob) == size:
                    found[digest] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, embedder: str, items: Sequence[tuple[bytes, np.ndarray]]) -> None:
        rows = [(embedder, digest, np.asarray(vector, dtype=np.float32).tobytes()) for digest, vector in items]
        with self.db:  # one transaction: all of the batch or none of it
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)

    def info(self) -> dict:
        if not self.path.exists():
            return {"path": str(self.path), "bytes": 0, "entries": {}}
        counts = dict(self.db.execute("SELECT embedder, count(*) FROM vectors GROUP BY embedder").fetchall())
        size = sum(p.stat().st_size for p in self.folder.glob(FILE_NAME + "*") if p.is_file())
        return {"path": str(self.path), "bytes": size, "entries": counts}

    def clear(self) -> int:
        """Delete every cached vector; returns how many there were."""
        if not self.path.exists():
            return 0
        n = self.db.execute("SELECT count(*) FROM vectors").fetchone()[0]
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM vectors")
        self.db.execute("VACUUM")
        return int(n)


class CachedEmbedder:
    """An Embedder that looks each text up first and embeds only the misses."""

    def __init__(self, inner: Embedder, cache: EmbeddingCache, dimension: int | None = None) -> None:
        """`dimension`, when known (from a model's metadata), spares loading the encoder on a warm cache."""
        self.inner, self.cache = inner, cache
        self.name = inner.name
        self._dimension = dimension
        self._disabled = False

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = self.inner.dimension
        return self._dimension

    @property
    def fingerprint(self) -> str:
        return getattr(self.inner, "fingerprint", self.inner.name)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        digests = [text_digest(text) for text in texts]
        key, dimension = self.fingerprint, self.dimension
        found = self._lookup(key, digests, dimension)
        missing = [i for i, digest in enumerate(digests) if digest not in found]
        if missing:
            fresh = self.inner.embed([texts[i] for i in missing])
            if fresh.shape[1] != dimension:
                raise ModelError(f"the embedder {self.name!r} gives {fresh.shape[1]}-dimensional vectors, "
                                 f"the model expects {dimension}; retrain the model")
            self._store(key, [(digests[i], fresh[row]) for row, i in enumerate(missing)])
            found.update((digests[i], fresh[row]) for row, i in enumerate(missing))
        out = np.empty((len(texts), dimension), dtype=np.float32)
        for i, digest in enumerate(digests):
            out[i] = found[digest]
        return out

    # A cache is a convenience: when it cannot be read or written (disk full, read-only, locked by
    # another program), say so once and go on without it; the run's results do not depend on it.
    def _lookup(self, key: str, digests: list[bytes], dimension: int) -> dict[bytes, np.ndarray]:
        if self._disabled:
            return {}
        try:
            return self.cache.get_many(key, digests, dimension)
        except (sqlite3.Error, OSError, OutputError) as error:
            self._disable(error)
            return {}

    def _store(self, key: str, items: list[tuple[bytes, np.ndarray]]) -> None:
        if self._disabled:
            return
        try:
            self.cache.put_many(key, items)
        except (sqlite3.Error, OSError, OutputError) as error:
            self._disable(error)

    def _disable(self, error: Exception) -> None:
        self._disabled = True
        self.cache.warn(f"the embedding cache {self.cache.path} cannot be used ({error}); going on without it")
