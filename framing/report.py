"""Reports: paragraphs.jsonl (streamed), documents.jsonl, outlets.json, report.md, and the terminal table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import IO

from .aggregate import Evidence
from .records import OutletSummary

EVIDENCE_SHOWN = 3  # per outlet and label in report.md; outlets.json and report.html may show more
MAX_DOCUMENT_ROWS = 200  # report.md stays readable; documents.jsonl has every document


def write_jsonl_record(stream: IO[str], record: dict) -> None:
    stream.write(json.dumps(record, ensure_ascii=False) + "\n")


def outlets_json(summaries: Sequence[OutletSummary]) -> str:
    rows = [dict(asdict(s), ci={k: list(v) for k, v in s.ci.items()},
                 prevalence_ci={k: list(v) for k, v in s.prevalence_ci.items()}) for s in summaries]
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"


def _cell(summary: OutletSummary, label: str) -> str:
    low, high = summary.ci[label]
    return f"{summary.share[label]:.0%} [{low:.0%}–{high:.0%}]"


def format_table(summaries: Sequence[OutletSummary], labels: Sequence[str]) -> str:
    """Plain-text outlet-by-label table: share of paragraphs [95% interval]."""
    header = ["outlet", "docs", "paras", *labels]
    rows = [[s.outlet, str(s.documents), str(s.paragraphs), *(_cell(s, label) for label in labels)]
            for s in summaries]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_report(summaries: Sequence[OutletSummary], labels: Sequence[str], evidence: Evidence,
                    model_note: str, documents: Sequence[dict]) -> str:
    out = ["# Framing report", "", model_note, "",
           "Share of each outlet's paragraphs whose most probable label is the column's, with a 95% "
           "bootstrap interval (documents resampled, then paragraphs within them).", "",
           "| outlet | documents | paragraphs | " + " | ".join(labels) + " |",
           "|---|---:|---:|" + "---|" * len(labels)]
    for s in summaries:
        out.append(f"| {s.outlet} | {s.documents} | {s.paragraphs} | "
                   + " | ".join(_cell(s, label) for label in labels) + " |")
    out += ["", "Mean probability per label:", "", "| outlet | " + " | ".join(labels) + " |",
            "|---|" + "---:|" * len(labels)]
    for s in summaries:
        out.append(f"| {s.outlet} | " + " | ".join(f"{s.mean_score[label]:.2f}" for label in labels) + " |")
    repeats = sum(s.duplicates for s in summaries)
    if repeats:
        whole = sum(s.duplicate_documents for s in summaries)
        out += ["", f"{repeats} paragraphs were exact repeats of paragraphs the same outlet had already run and "
                    f"were counted once; {whole} documents were repeats in full (they count in `documents`, "
                    "not in the shares)."]
    out += ["", "## Evidence", "", f"The {EVIDENCE_SHOWN} most confident paragraphs per outlet and label.", ""]
    for s in summaries:
        out += [f"### {s.outlet}", ""]
        for label in labels:
            best = evidence.best(s.outlet, label)[:EVIDENCE_SHOWN]
            out.append(f"**{label}**" + ("" if best else ": none"))
            out.append("")
            out += [f"> {e.text}\n>\n> — {e.doc} ¶{e.index}, p = {e.probability:.2f}\n" for e in best]
    out += ["## Documents", "", "| document | outlet | paragraphs | furniture lines dropped |", "|---|---|---:|---:|"]
    out += [f"| {d['doc']} | {d['outlet']} | {d['paragraphs']} | {d['dropped_lines']} |"
            for d in documents[:MAX_DOCUMENT_ROWS]]
    if len(documents) > MAX_DOCUMENT_ROWS:
        out.append(f"\n…and {len(documents) - MAX_DOCUMENT_ROWS} more documents: see documents.jsonl.")
    return "\n".join(out) + "\n"
