"""Shared passages: near-identical paragraphs run by more than one outlet.

Agency copy reprinted, a joint statement quoted in full: the same passage in several outlets, perhaps with
a changed word or two. Two steps, neither of them all-pairs:
1. exact: paragraphs whose normalised text (NFKC, lower case, letters and digits only) is the same are one
   entry, with a counter of the outlets that ran it;
2. near: each entry gets a MinHash signature of its word 5-gram shingles; locality-sensitive hashing
   (bands of rows) proposes candidates that share a band, and a candidate joins a cluster only when the
   signatures agree on at least `threshold` of their positions (the estimated Jaccard similarity).

`PassageIndex` fills while streaming, merges with another, and builds the clusters at the end. Memory is one
entry per distinct paragraph: its first 16 bytes of hash, a signature of `n_perm` uint32 and one text.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

SHINGLE = 5  # words per shingle
N_PERM = 64
BANDS = 16  # 16 bands of 4 rows: pairs with Jaccard ~0.5 and up become candidates
THRESHOLD = 0.8  # estimated Jaccard at which two paragraphs are the same passage
MIN_WORDS = 12  # shorter paragraphs (datelines, "Photo: ...") repeat by chance, not by copying

_NON_WORD = re.compile(r"[^\w]+")
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
# Fixed seeds: signatures must agree between runs and between workers that merge their indexes.
_SEEDS = np.random.default_rng(20080101).integers(1, 2**63, size=N_PERM, dtype=np.uint64)


def normalise(text: str) -> str:
    """NFKC, lower case, punctuation and spacing collapsed: "Xi’s “new era”" == "xi s new era"."""
    return " ".join(_NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower()).split())


def _splitmix(x: np.ndarray) -> np.ndarray:
    # A 64-bit mixer (splitmix64): uint64 arithmetic wraps, which is what the hash wants.
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def shingles(normalised: str, size: int = SHINGLE) -> list[str]:
    words = normalised.split()
    if len(words) <= size:
        return [" ".join(words)] if words else []
    return [" ".join(words[i:i + size]) for i in range(len(words) - size + 1)]


def signature(normalised: str, n_perm: int = N_PERM) -> np.ndarray:
    """MinHash signature uint32[n_perm] of the text's word shingles."""
    grams = shingles(normalised)
    if not grams:
        return np.zeros(n_perm, dtype=np.uint32)
    hashed = np.frombuffer(b"".join(hashlib.blake2b(g.encode(), digest_size=8).digest() for g in grams),
                           dtype=np.uint64)
    with np.errstate(over="ignore"):
        mixed = _splitmix(hashed[:, None] ^ _SEEDS[None, :n_perm])
    return (mixed.min(axis=0) >> np.uint64(32)).astype(np.uint32)


@dataclass
class _Entry:
    text: str  # a representative original text: the smallest, so merges agree
    outlets: Counter  # outlet -> paragraphs
    signature: np.ndarray


@dataclass
class PassageIndex:
    """Distinct paragraphs with the outlets that ran them; `clusters()` groups the near-identical ones."""

    threshold: float = THRESHOLD
    bands: int = BANDS
    min_words: int = MIN_WORDS
    entries: dict[bytes, _Entry] = field(default_factory=dict)

    def add(self, outlet: str, text: str, n: int = 1) -> None:
        norm = normalise(text)
        if len(norm.split()) < self.min_words:
            return
        key = hashlib.blake2b(norm.encode(), digest_size=16).digest()
        entry = self.entries.get(key)
        if entry is None:
            self.entries[key] = _Entry(text, Counter({outlet: n}), signature(norm))
        else:
            entry.outlets[outlet] += n
            entry.text = min(entry.text, text)

    def add_all(self, pairs: Iterable[tuple[str, str]]) -> PassageIndex:
        for outlet, text in pairs:
            self.add(outlet, text)
        return self

    def merge(self, other: PassageIndex) -> PassageIndex:
        merged = PassageIndex(self.threshold, self.bands, self.min_words)
        merged.update(self)
        merged.update(other)
        return merged

    def update(self, other: PassageIndex) -> None:
        """Merge `other` into this index in place: folding many blocks' indexes into one stays linear."""
        for key, entry in other.entries.items():
            mine = self.entries.get(key)
            if mine is None:
                self.entries[key] = _Entry(entry.text, Counter(entry.outlets), entry.signature)
            else:
                mine.outlets.update(entry.outlets)
                mine.text = min(mine.text, entry.text)

    def clusters(self, min_outlets: int = 2, limit: int | None = None) -> list[dict]:
        """[{text, outlets, n}] for passages run by at least `min_outlets` outlets: most outlets first.

        `text` is the version run most often (ties: the smallest text), `outlets` the sorted names,
        `n` the paragraphs counted in all of them.
        """
        keys = sorted(self.entries)  # sorted: the clusters do not depend on the order of arrival
        if not keys:
            return []
        signatures = np.stack([self.entries[k].signature for k in keys])
        parent = list(range(len(keys)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        rows = signatures.shape[1] // self.bands
        for band in range(self.bands):
            chunk = np.ascontiguousarray(signatures[:, band * rows:(band + 1) * rows])
            buckets: dict[bytes, list[int]] = {}
            for i in range(len(keys)):
                buckets.setdefault(chunk[i].tobytes(), []).append(i)
            for members in buckets.values():
                self._join(members, signatures, find, parent)
        groups: dict[int, list[int]] = {}
        for i in range(len(keys)):
            groups.setdefault(find(i), []).append(i)
        out = []
        for members in groups.values():
            outlets: Counter = Counter()
            for i in members:
                outlets.update(self.entries[keys[i]].outlets)
            if len(outlets) < min_outlets:
                continue
            best = min(members, key=lambda i: (-sum(self.entries[keys[i]].outlets.values()),
                                               self.entries[keys[i]].text))
            out.append({"text": self.entries[keys[best]].text, "outlets": sorted(outlets),
                        "n": sum(outlets.values())})
        out.sort(key=lambda c: (-len(c["outlets"]), -c["n"], c["text"]))
        return out[:limit] if limit is not None else out

    def _join(self, members: list[int], signatures: np.ndarray, find, parent: list[int]) -> None:
        # Pivot on the first member, join every member close enough to it; repeat on the rest. A bucket
        # of k unrelated paragraphs costs k pivots at worst, a bucket of copies costs one.
        rest = np.asarray(members)
        while len(rest) > 1:
            agree = (signatures[rest] == signatures[rest[0]]).mean(axis=1)
            close = agree >= self.threshold
            root = find(int(rest[0]))
            for i in rest[close][1:]:
                parent[find(int(i))] = root
            rest = rest[~close]


def shared_passages(pairs: Iterable[tuple[str, str]], min_outlets: int = 2, limit: int | None = None) -> list[dict]:
    """(outlet, text) pairs to shared passages: the non-streaming shortcut."""
    return PassageIndex().add_all(pairs).clusters(min_outlets, limit)
