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


@dataclass(frozen=True)
class Paragraph:
    doc: str
    outlet: str
    index: int  # position among the document's kept paragraphs
    text: str
    line: int = 0  # 1-based line in the (extracted) text where it starts
    publisher: str | None = None  # original publisher of a syndicated item


@dataclass(frozen=True)
class Segmented:
    """What segmentation kept and what it dropped, with the reason for each drop."""

    paragraphs: list[Paragraph]
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> number of lines

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())


@dataclass(frozen=True)
class OutletSummary:
    outlet: str
    documents: int
    paragraphs: int
    share: dict[str, float]
    mean_score: dict[str, float]
    ci: dict[str, tuple[float, float]]
