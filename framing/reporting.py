"""From scored rows to every report: the run's reduce state, and the writers that turn it into files.

The reduce works on `paragraphs.jsonl` records (plus one record per document), not on arrays held from
the map step, so that `framing report PARAGRAPHS.jsonl` rebuilds exactly the reports a scoring run wrote,
without a model or an embedder: the shares come from the rounded scores in the file, in both cases.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .aggregate import DocumentTally, Evidence, document_shares, summarize
from .csvout import write_outlets_csv, write_paragraphs_csv
from .files import ReportFolder
from .passages import PassageIndex
from .quotes import VoiceTally
from .records import OutletSummary
from .report import markdown_report, outlets_document, write_jsonl_record
from .vocabulary import VocabularyCounts, top_terms

CALIBRATION_COPY = "calibration.json"  # beside the reports: `framing report` corrects shares without the model
NEIGHBOURS_COPY = "labelled.json"  # the labelled paragraphs that evidence neighbours point into


@dataclass
class Reduction:
    """The run's reduce state: tallies per document key, evidence, per-outlet counters, documents."""

    labels: tuple[str, ...]
    tallies: dict[str, DocumentTally] = field(default_factory=dict)
    evidence: Evidence = field(default_factory=Evidence)
    documents: list[dict] = field(default_factory=list)
    left_out: dict[str, Counter] = field(default_factory=dict)  # outlet -> reason -> paragraphs
    vocabulary: VocabularyCounts = field(default_factory=VocabularyCounts)
    passages: PassageIndex = field(default_factory=PassageIndex)
    voices: VoiceTally = field(default_factory=VoiceTally)
    strips: dict[str, list[int]] = field(default_factory=dict)  # doc key -> label index per counted paragraph
    n_paragraphs: int = 0  # counted in the shares
    n_duplicates: int = 0
    non_english: int = 0
    _by_key: dict[str, dict] = field(default_factory=dict)
    _scores: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add_document(self, record: dict) -> None:
        """A documents.jsonl record (without its shares): counted as read even if it adds no paragraph."""
        self.documents.append(record)
        self._by_key[record["doc"]] = record
        self.n_duplicates += record.get("duplicates", 0)

    def document(self, key: str) -> dict:
        return self._by_key[key]

    def add_row(self, row: dict) -> None:
        """One paragraphs.jsonl record. Rows with `counted` false are tallied as left out, by reason."""
        outlet, lang = row["outlet"], row.get("lang", "en")
        self.non_english += lang != "en"
        if not row.get("counted", True):
            reason = "off_topic" if row.get("label") == "off_topic" else "language"
            self.left_out.setdefault(outlet, Counter())[reason] += 1
            return
        proba = np.array([row["scores"][label] for label in self.labels])
        top = int(proba.argmax())
        self._scores.setdefault(row["doc"], []).append(proba)
        self.strips.setdefault(row["doc"], []).append(top)
        self.evidence.offer(outlet, self.labels[top], proba, row["doc"], row["index"], row["text"],
                            neighbours=tuple(tuple(pair) for pair in row.get("neighbours") or ()),
                            voice=row.get("voice", ""))
        self.vocabulary.add(outlet, row["text"])
        self.passages.add(outlet, row["text"])
        self.voices.add(outlet, row.get("voice") or "own", self.labels[top])
        self.n_paragraphs += 1

    def finish(self) -> list[DocumentTally]:
        """One tally per document read, in reading order."""
        k = len(self.labels)
        for record in self.documents:
            rows = self._scores.get(record["doc"], [])
            proba = np.vstack(rows) if rows else np.zeros((0, k))
            self.tallies[record["doc"]] = DocumentTally(record["doc"], record["outlet"], proba,
                                                        record.get("duplicates", 0))
        return list(self.tallies.values())


@dataclass(frozen=True)
class ReportInputs:
    """What the writers need besides the reduction."""

    notes: tuple[str, ...]  # the model, what the intervals cover
    interval_note: str
    neighbour_texts: tuple[str, ...] = ()
    neighbour_labels: tuple[str, ...] = ()


def aggregate(reduction: Reduction, calibration, method: str | None, seed: int, baseline: str | None,
              progress: Callable[[int], None] | None = None) -> tuple[list[OutletSummary], list]:
    from dataclasses import replace

    from .prevalence import compare

    summaries, estimates = summarize(reduction.finish(), reduction.labels, calibration, method, seed,
                                     progress=progress)
    summaries = [replace(s, left_out=dict(reduction.left_out.get(s.outlet, {}))) for s in summaries]
    return summaries, compare(estimates, reduction.labels, baseline=baseline)


def write_reports(folder: ReportFolder, reduction: Reduction, summaries: list[OutletSummary], comparisons: list,
                  inputs: ReportInputs, paragraphs: Path) -> None:
    """documents.jsonl, outlets.json, outlets.csv, paragraphs.csv, report.md with its PNG charts, report.html."""
    labels = reduction.labels
    with folder.open("documents.jsonl") as stream:
        for record in reduction.documents:
            tally = reduction.tallies[record["doc"]]
            write_jsonl_record(stream, dict(record, shares=document_shares(tally, labels) if tally.n else {}))
    rows = outlets_document(summaries, comparisons, inputs.interval_note)
    folder.write_text("outlets.json", json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    for row in rows["outlets"]:  # the spreadsheet and the page also show own voice against quotation
        row["voice"] = reduction.voices.shares(row["outlet"], labels)
    with folder.open("outlets.csv") as stream:
        write_outlets_csv(stream, rows["outlets"], labels)
    with folder.open("paragraphs.csv") as stream, open(paragraphs, encoding="utf-8") as source:
        write_paragraphs_csv(stream, (json.loads(line) for line in source), labels)
    charts = _charts(folder, rows, labels)
    note = " ".join(inputs.notes)
    folder.write_text("report.md", markdown_report(summaries, labels, reduction.evidence, note,
                                                   reduction.documents, inputs.interval_note, comparisons,
                                                   charts=charts))
    from .htmlreport import render_html

    folder.write_text("report.html", render_html(html_data(reduction, rows, comparisons, inputs)))


def _charts(folder: ReportFolder, rows: dict, labels: Sequence[str]) -> list[tuple[str, str]]:
    """PNG charts for report.md: (file name, caption) of those made; none where matplotlib is missing."""
    from .charts import differences_chart, prevalence_chart

    made = []
    for name, caption, png in (
            ("prevalence.png", "Prevalence per outlet with 95% intervals", prevalence_chart(rows["outlets"], labels)),
            ("differences.png", "Differences between outlets with 95% intervals",
             differences_chart(_comparison_rows(rows["comparisons"]), labels) if rows["comparisons"] else None)):
        if png:
            folder.write_bytes(name, png)
            made.append((name, caption))
    return made


def _comparison_rows(comparisons: Iterable[dict]) -> list[dict]:
    return [{"a": c["outlet"], "b": c["other"], "label": c["label"], "difference": c["difference"],
             "ci": c["ci"], "excludes_zero": c["excludes_zero"]} for c in comparisons]


def html_data(reduction: Reduction, rows: dict, comparisons: list, inputs: ReportInputs) -> dict:
    """The input of `htmlreport.render_html` (schema in its docstring)."""
    labels = reduction.labels
    documents = []
    for record in reduction.documents:
        tally = reduction.tallies[record["doc"]]
        if tally.n:
            documents.append({"doc": record["doc"], "outlet": record["outlet"], "title": record.get("title"),
                              "date": record.get("date"), "url": record.get("url"),
                              "shares": document_shares(tally, labels), "strip": reduction.strips[record["doc"]]})
    evidence: dict = {}
    for (outlet, label), _ in sorted(reduction.evidence.confident.items()):
        evidence.setdefault(outlet, {})[label] = {
            "confident": [_evidence_item(reduction, e, inputs) for e in reduction.evidence.best(outlet, label)],
            "borderline": [_evidence_item(reduction, e, inputs) for e in reduction.evidence.closest_calls(outlet,
                                                                                                        label)]}
    return {"labels": list(labels), "neutral": "neutral_wire" if "neutral_wire" in labels else None,
            "title": "Framing report", "notes": [*inputs.notes, inputs.interval_note],
            "outlets": rows["outlets"], "comparisons": _comparison_rows(rows["comparisons"]),
            "documents": documents, "evidence": evidence,
            "vocabulary": {o: [list(t) for t in terms] for o, terms in
                           top_terms(reduction.vocabulary.prune(2).per_outlet).items()},
            "passages": reduction.passages.clusters()}


def _evidence_item(reduction: Reduction, example, inputs: ReportInputs) -> dict:
    document = reduction.document(example.doc)
    neighbours = [{"text": inputs.neighbour_texts[i], "label": inputs.neighbour_labels[i], "similarity": s}
                  for i, s in example.neighbours if i < len(inputs.neighbour_texts)]
    return {"text": example.text, "doc": example.doc, "title": document.get("title"), "date": document.get("date"),
            "url": document.get("url"), "index": example.index,
            "scores": dict(zip(reduction.labels, example.scores)), "voice": example.voice or None,
            "neighbours": neighbours}
