"""Label where the model is least sure: pick paragraphs, hold the answers, refit on cached embeddings.

Selection is pure functions over arrays (`margins`, `uncertainty_order`, `select`): the least certain
paragraphs by margin (top probability minus the runner-up; Schröder et al. 2022 found it at least as good
as entropy), ties broken by reading order, skipping near-duplicates of each other and of what is already
labelled (cosine similarity of the embeddings), and spread across outlets and articles.

Answers go to an append-only labels file (`labelstore`): the file is never rewritten, so `undo` works on
the one answer not yet written. `LabelSession` keeps the latest answer in memory until the next answer, a
skip or `close()` writes it; Ctrl-C still writes it, and a hard crash loses at most that one.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .classify import HeadOptions, fit_head, head_input
from .embed import Embedder
from .errors import InputError, LabelError, ModelError
from .labels import Scheme
from .labelstore import append_records, existing_labels, label_record, labels_file_for, text_key
from .readers import ReadOptions, read_documents
from .segment import segment

Warn = Callable[[str], None]


def _quiet(*_: object) -> None:
    pass


@dataclass(frozen=True)
class SelectOptions:
    """How paragraphs are picked for labelling; one place for the defaults."""

    duplicate_similarity: float = 0.92  # cosine at or above which two paragraphs count as the same one
    pool_factor: int = 4  # diversity is sought among the `pool_factor * n` least certain candidates only
    refit_every: int = 5  # answers between refits in the loop; also how many are picked per refit
    stack_folds: int = 3  # the loop's head: fewer inner folds than `train`, so a refit takes a second or two


# --- selection: pure functions over arrays ------------------------------------------------------

def margins(proba: np.ndarray) -> np.ndarray:
    """Top probability minus the runner-up, per row: 0 is a coin toss, 1 is certain."""
    proba = np.asarray(proba, dtype=float)
    if proba.shape[1] < 2:
        return np.ones(len(proba))
    top = np.sort(proba, axis=1)
    return top[:, -1] - top[:, -2]


def uncertainty_order(proba: np.ndarray) -> np.ndarray:
    """Row indices, least certain first; equal margins (to 1e-9) keep reading order, so runs repeat."""
    rounded = np.round(margins(proba), 9)  # float noise must not decide between equally unsure paragraphs
    return np.lexsort((np.arange(len(rounded)), rounded))


def max_similarity(vectors: np.ndarray, others: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Each row's highest cosine similarity to any row of `others` (-1 where `others` is empty)."""
    vectors, others = _unit(vectors), _unit(others)
    if not len(others) or not len(vectors):
        return np.full(len(vectors), -1.0)
    best = np.empty(len(vectors))
    for start in range(0, len(vectors), chunk):  # bounded memory for many candidates x a large labelled set
        best[start:start + chunk] = (vectors[start:start + chunk] @ others.T).max(axis=1)
    return best


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    if not vectors.size:
        return vectors.reshape(len(vectors), vectors.shape[-1] if vectors.ndim == 2 else 0)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def select(proba: np.ndarray, embeddings: np.ndarray, outlets: Sequence[str], docs: Sequence[str], n: int, *,
           taken: Iterable[int] = (), labelled: np.ndarray | None = None,
           options: SelectOptions = SelectOptions()) -> list[int]:
    """Up to `n` candidate rows to label next, in the order to show them.

    1. Rows already `taken` (shown this session), and near-duplicates of a taken or `labelled` paragraph,
       are out.
    2. The rest, least certain first, fill a pool of `pool_factor * n`; a row that nearly duplicates one
       already in the pool is skipped, so of a pair the less certain one stays.
    3. From the pool the picks go round: each next pick comes from the outlet, then the article, with the
       fewest picks so far (taken rows count), and among those it is the least certain.
    """
    taken = sorted(set(taken))
    embeddings = _unit(embeddings)
    threshold = options.duplicate_similarity
    excluded = np.zeros(len(proba), dtype=bool)
    excluded[taken] = True
    references = embeddings[taken]
    if labelled is not None and len(labelled):
        references = np.vstack([_unit(labelled), references])
    excluded |= max_similarity(embeddings, references) >= threshold
    pool: list[int] = []
    for row in uncertainty_order(proba):
        if excluded[row]:
            continue
        if pool and float((embeddings[pool] @ embeddings[row]).max()) >= threshold:
            continue
        pool.append(int(row))
        if len(pool) >= options.pool_factor * n:
            break
    rank = {row: position for position, row in enumerate(pool)}
    per_outlet = Counter(outlets[row] for row in taken)
    per_doc = Counter(docs[row] for row in taken)
    picks: list[int] = []
    while pool and len(picks) < n:
        best = min(pool, key=lambda row: (per_outlet[outlets[row]], per_doc[docs[row]], rank[row]))
        pool.remove(best)
        picks.append(best)
        per_outlet[outlets[best]] += 1
        per_doc[docs[best]] += 1
    return picks


# --- the candidates -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    """An unlabelled paragraph, with its neighbours for context."""

    text: str
    outlet: str
    doc: str  # the document key: its path, or path#N for record N of a collection
    index: int  # position among the document's kept paragraphs
    line: int
    before: str = ""  # the previous kept paragraph of the same document
    after: str = ""


def gather_candidates(paths: Sequence[str | os.PathLike], known: set[str], read: ReadOptions = ReadOptions(),
                      warn: Warn = _quiet) -> list[Candidate]:
    """Every article paragraph under `paths` whose text is not labelled yet, each text once."""
    seen = set(known)
    candidates = []
    for number, document in enumerate(read_documents(paths, read, warn)):
        key = document.key or f"{document.path or document.id}#{number}"
        paragraphs = segment(document).paragraphs
        for i, paragraph in enumerate(paragraphs):
            text_id = text_key(paragraph.text)
            if text_id in seen:  # labelled already, or repeated: labelling it twice would break the set
                continue
            seen.add(text_id)
            candidates.append(Candidate(text=paragraph.text, outlet=document.outlet, doc=key, index=paragraph.index,
                                        line=paragraph.line, before=paragraphs[i - 1].text if i else "",
                                        after=paragraphs[i + 1].text if i + 1 < len(paragraphs) else ""))
    return candidates


def fit_proba(texts: Sequence[str], embeddings: np.ndarray, y: np.ndarray, targets: tuple[Sequence[str], np.ndarray],
              n_labels: int, options: SelectOptions = SelectOptions()) -> np.ndarray | None:
    """Fit the head on the labelled rows and score the targets (scheme order); None while too few labels."""
    counts = np.bincount(y, minlength=n_labels) if len(y) else np.zeros(n_labels, dtype=int)
    if (counts >= 2).sum() < 2 or (counts == 1).any():  # the head's inner folds need two of each label seen
        return None
    try:
        head = fit_head(head_input(texts, embeddings), y, HeadOptions(stack_folds=options.stack_folds))
    except ModelError:  # too few shared words for the text features: pick for diversity until there are
        return None
    target_texts, target_embeddings = targets
    proba = np.zeros((len(target_texts), n_labels))
    if len(target_texts):
        proba[:, head.classes_] = head.predict_proba(head_input(target_texts, target_embeddings))
    return proba


# --- the labelling session ----------------------------------------------------------------------

@dataclass
class LabelSession:
    """The labelling loop without a terminal: what to show next, the answers, the refits.

    Answers are written one step late: the latest stays pending in memory so that `undo` can take it
    back without rewriting the file; the next answer, a skip, or `close()` appends it."""

    scheme: Scheme
    labels_file: Path
    candidates: list[Candidate]
    embeddings: np.ndarray  # one row per candidate
    base_texts: list[str]  # the labelled set at the start
    base_embeddings: np.ndarray
    base_y: np.ndarray
    options: SelectOptions = SelectOptions()
    on_refit: Callable[[int], None] = _quiet  # told the number of labels before each refit
    proba: np.ndarray = field(init=False)
    model_ready: bool = field(init=False, default=False)  # False: too few labels yet; picks go for diversity
    n_written: int = field(init=False, default=0)
    n_skipped: int = field(init=False, default=0)
    _answers: dict[int, str] = field(init=False, default_factory=dict)  # candidate -> label, in answer order
    _acted: set[int] = field(init=False, default_factory=set)  # answered or skipped
    _queue: list[int] = field(init=False, default_factory=list)
    _last: tuple[int, str | None] | None = field(init=False, default=None)  # what undo takes back
    _pending: tuple[int, str] | None = field(init=False, default=None)  # the answer not yet on disk
    _fitted_on: set[int] = field(init=False, default_factory=set)  # answers the current model has seen

    def __post_init__(self) -> None:
        self.refit()

    @property
    def n_answers(self) -> int:
        return len(self._answers)

    def refit(self) -> None:
        """Fit the head on the labelled set plus this session's answers; score every candidate."""
        rows = list(self._answers)
        y = np.concatenate([self.base_y, [self.scheme.index(self._answers[r]) for r in rows]]).astype(int)
        self.on_refit(len(y))
        proba = fit_proba(self.base_texts + [self.candidates[r].text for r in rows],
                          np.vstack([self.base_embeddings, self.embeddings[rows]]),
                          y, ([c.text for c in self.candidates], self.embeddings), len(self.scheme.labels),
                          self.options)
        self.model_ready = proba is not None
        n = len(self.scheme.labels)
        self.proba = proba if proba is not None else np.full((len(self.candidates), n), 1.0 / n)
        self._fitted_on = set(rows)

    def pick(self, n: int) -> list[int]:
        """The next `n` candidates to label by the current model, none of them already shown."""
        labelled = np.vstack([self.base_embeddings,
                              self.embeddings[list(self._answers)]])
        return select(self.proba, self.embeddings, [c.outlet for c in self.candidates],
                      [c.doc for c in self.candidates], n, taken=self._acted | set(self._queue), labelled=labelled,
                      options=self.options)

    def current(self) -> int | None:
        """The candidate to show now (refitting first when a batch is done); None when none is left."""
        if not self._queue:
            if set(self._answers) != self._fitted_on:
                self.refit()
            self._queue = self.pick(self.options.refit_every)
        return self._queue[0] if self._queue else None

    def answer(self, label: str) -> None:
        if label not in self.scheme.labels:
            raise LabelError(f"unknown label {label!r} (the scheme has {', '.join(self.scheme.labels)})")
        row = self._advance()
        self._answers[row] = label
        self._pending = self._last = (row, label)

    def skip(self) -> None:
        row = self._advance()
        self.n_skipped += 1
        self._last = (row, None)

    def undo(self) -> bool:
        """Take back the latest answer or skip and show that paragraph again; False if there is none."""
        if self._last is None:
            return False
        row, label = self._last
        self._last = None
        self._acted.discard(row)
        if label is None:
            self.n_skipped -= 1
        else:
            self._pending = None
            del self._answers[row]
            if row in self._fitted_on:  # the scores on screen must not come from the answer taken back
                self.refit()
        self._queue.insert(0, row)
        return True

    def close(self) -> int:
        """Write the pending answer; the number of answers written this session."""
        self._commit()
        return self.n_written

    def _advance(self) -> int:
        row = self.current()
        if row is None:
            raise LabelError("no paragraph left to label")
        self._queue.pop(0)
        self._commit()
        self._acted.add(row)
        return row

    def _commit(self) -> None:
        if self._pending is not None:
            row, label = self._pending
            append_records(self.labels_file, [label_record(self.candidates[row], label, "label")])
            self._pending = None
            self.n_written += 1


def open_session(paths: Sequence[str | os.PathLike], labels: str | os.PathLike, embedder: Embedder,
                 options: SelectOptions = SelectOptions(), read: ReadOptions = ReadOptions(), warn: Warn = _quiet,
                 on_refit: Callable[[int], None] = _quiet,
                 on_embed: Callable[[int], None] = _quiet) -> LabelSession:
    """Read the articles and the labelled set, embed both once (cached), fit the first model."""
    labels_file = labels_file_for(labels)
    scheme, examples = existing_labels(labels_file)
    candidates = gather_candidates(paths, {text_key(e.text) for e in examples}, read, warn)
    if not candidates:
        raise InputError("every paragraph under the given paths is labelled already; give other articles")
    base_texts = [e.text for e in examples]
    on_embed(len(candidates) + len(base_texts))
    vectors = embedder.embed([c.text for c in candidates] + base_texts)
    return LabelSession(scheme=scheme, labels_file=labels_file, candidates=candidates,
                        embeddings=vectors[:len(candidates)], base_texts=base_texts,
                        base_embeddings=vectors[len(candidates):],
                        base_y=np.array([scheme.index(e.label) for e in examples], dtype=int),
                        options=options, on_refit=on_refit)


# --- suggestions for a spreadsheet ---------------------------------------------------------------

def suggestion_rows(session: LabelSession, n: int) -> list[dict]:
    """The first `n` picks as CSV rows: an empty `label` column first, then the paragraph, its context and
    the current scores."""
    rows = []
    for row in session.pick(n):
        c, p = session.candidates[row], session.proba[row]
        rows.append({"label": "", "text": c.text, "outlet": c.outlet, "doc": c.doc, "index": c.index,
                     "line": c.line, "before": c.before, "after": c.after,
                     "predicted": session.scheme.labels[int(p.argmax())] if session.model_ready else "",
                     "margin": f"{margins(p[None])[0]:.3f}",
                     **{f"score_{label}": f"{v:.3f}" for label, v in zip(session.scheme.labels, p)}})
    return rows
