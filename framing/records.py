"""The values that travel between stages: Document -> Paragraph -> Prediction -> OutletSummary."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """One article as read from disk, before segmentation."""

    id: str
    text: str
    path: str = ""
    format: str = "txt"  # txt | md | html | jsonl
    outlet: str = "unknown"
    publisher: str | None = None  # original publisher of a syndicated item
    date: str | None = None
    url: str | None = None
    title: str | None = None
    key: str = ""  # unique in a run, assigned by the reader: "path", or "path#N" for record N of a collection


@dataclass(frozen=True)
class Paragraph:
    doc: str
    outlet: str
    index: int  # position among the document's kept paragraphs
    text: str
    line: int = 0  # 1-based line in the (extracted) text where it starts
    publisher: str | None = None  # original publisher of a syndicated item


@dataclass(frozen=True)
class DroppedLine:
    """One line of page furniture that segmentation dropped, for the audit trail (`dropped.jsonl`)."""

    line: int  # 1-based line in the document text where the dropped logical line starts
    text: str
    reason: str


@dataclass(frozen=True)
class Segmented:
    """What segmentation kept and what it dropped, with the reason for each drop."""

    paragraphs: list[Paragraph]
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> number of lines
    dropped_lines: list[DroppedLine] = field(default_factory=list)  # every dropped line, in reading order
    n_prose_lines: int = 0  # lines that read like prose (a sentence of some length), kept or dropped
    n_prose_dropped: int = 0  # of those, how many were dropped as furniture

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())

    @property
    def suspicious(self) -> str | None:
        """Why the pipeline should warn about this document, or None: no paragraph kept, or most prose dropped."""
        if not self.paragraphs and (self.dropped_lines or self.n_dropped):
            return f"no article paragraph kept ({self.n_dropped} lines dropped as furniture)"
        if self.n_prose_lines >= 4 and 2 * self.n_prose_dropped > self.n_prose_lines:
            return f"{self.n_prose_dropped} of {self.n_prose_lines} prose-like lines dropped as furniture"
        return None


@dataclass(frozen=True)
class OutletSummary:
    """One outlet's answer: plain shares, corrected prevalence, their intervals, and what was left out."""

    outlet: str
    documents: int  # every document read for the outlet, duplicates included
    paragraphs: int  # paragraphs counted in the shares
    share: dict[str, float]  # classify and count: share of paragraphs whose most probable label is each label
    mean_score: dict[str, float]
    ci: dict[str, tuple[float, float]]  # 95% interval of `share` (documents resampled)
    prevalence: dict[str, float] = field(default_factory=dict)  # corrected for the classifier's errors
    prevalence_ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    method: str = "cc"
    duplicates: int = 0  # paragraphs left out as exact repeats within the outlet
    duplicate_documents: int = 0  # documents left out whole as repeats
    left_out: dict[str, int] = field(default_factory=dict)  # reason (off_topic, language) -> paragraphs
