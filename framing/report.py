"""Reports: paragraphs.jsonl (streamed), documents.jsonl, outlets.json, report.md, and the terminal table."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import IO

from .aggregate import Evidence
from .errors import InputError
from .records import OutletSummary

MAX_NAME_WIDTH = 40  # an outlet name in the terminal table
EVIDENCE_SHOWN = 3  # per outlet and label in report.md; outlets.json and report.html may show more
MAX_DOCUMENT_ROWS = 200  # report.md stays readable; documents.jsonl has every document


def write_jsonl_record(stream: IO[str], record: dict) -> None:
    stream.write(json.dumps(record, ensure_ascii=False) + "\n")


def outlets_json(summaries: Sequence[OutletSummary], comparisons: Sequence = (), interval_note: str = "") -> str:
    return json.dumps(outlets_document(summaries, comparisons, interval_note), indent=2, ensure_ascii=False) + "\n"


def outlets_document(summaries: Sequence[OutletSummary], comparisons: Sequence = (), interval_note: str = "") -> dict:
    """The per-outlet answer: shares, corrected prevalence with intervals, and outlet-vs-outlet differences."""
    rows = [dict(asdict(s), ci={k: list(v) for k, v in s.ci.items()},
                 prevalence_ci={k: list(v) for k, v in s.prevalence_ci.items()}) for s in summaries]
    differences = [{"outlet": c.outlet, "other": c.other, "label": c.label, "difference": round(float(c.difference), 6),
                    "ci": [round(float(c.ci[0]), 6), round(float(c.ci[1]), 6)], "excludes_zero": bool(c.excludes_zero),
                    "mode": str(c.mode)} for c in comparisons]
    return {"outlets": rows, "comparisons": differences, "interval_note": interval_note}


def _cell(summary: OutletSummary, label: str, corrected: bool = True) -> str:
    if corrected and summary.prevalence:
        low, high = summary.prevalence_ci[label]
        return f"{summary.prevalence[label]:.0%} [{low:.0%}–{high:.0%}]"
    low, high = summary.ci[label]
    return f"{summary.share[label]:.0%} [{low:.0%}–{high:.0%}]"


def format_table(summaries: Sequence[OutletSummary], labels: Sequence[str]) -> str:
    """Plain-text outlet-by-label table: corrected prevalence [95% interval]."""
    header = ["outlet", "docs", "paras", *labels]
    rows = [[terminal(s.outlet), str(s.documents), str(s.paragraphs), *(_cell(s, label) for label in labels)]
            for s in summaries]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def md(text: object) -> str:
    """Text a document brought, made inert in Markdown: no table break, heading, link, image or HTML."""
    flat = " ".join(str(text).split())
    return re.sub(r"([\\`*_{}\[\]()#+\-!|<>~])", r"\\\1", flat)


def terminal(text: object, width: int = MAX_NAME_WIDTH) -> str:
    """Text for the terminal: control characters (ANSI escapes) shown, not executed; long names cut."""
    shown = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in " ".join(str(text).split()))
    return shown if len(shown) <= width else shown[:width - 1] + "…"


def markdown_report(summaries: Sequence[OutletSummary], labels: Sequence[str], evidence: Evidence,
                    model_note: str, documents: Sequence[dict], interval_note: str = "",
                    comparisons: Sequence = (), charts: Sequence[tuple[str, str]] = ()) -> str:
    method = summaries[0].method if summaries else "cc"
    out = ["# Framing report", "", model_note, "",
           f"Prevalence of each label among each outlet's paragraphs, corrected for the classifier's errors "
           f"(method `{method}`), with a 95% interval. {interval_note}", "",
           "| outlet | documents | paragraphs | " + " | ".join(labels) + " |",
           "|---|---:|---:|" + "---|" * len(labels)]
    for s in summaries:
        out.append(f"| {md(s.outlet)} | {s.documents} | {s.paragraphs} | "
                   + " | ".join(_cell(s, label) for label in labels) + " |")
    left = {reason for s in summaries for reason in s.left_out}
    if left:
        def reasons(s: OutletSummary) -> str:
            return ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in sorted(s.left_out.items()))
        out += ["", "Paragraphs left out of the shares: " + "; ".join(
            f"{md(s.outlet)}: {reasons(s)}" for s in summaries if s.left_out) + "."]
    out += [f"\n![{caption}]({name})" for name, caption in charts]
    out += ["", "Plain share of paragraphs whose most probable label is the column's (classify and count), with a "
                "95% interval for sampling only:", "",
            "| outlet | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for s in summaries:
        out.append(f"| {md(s.outlet)} | " + " | ".join(_cell(s, label, corrected=False) for label in labels) + " |")
    out += ["", "Mean probability per label:", "", "| outlet | " + " | ".join(labels) + " |",
            "|---|" + "---:|" * len(labels)]
    for s in summaries:
        out.append(f"| {md(s.outlet)} | " + " | ".join(f"{s.mean_score[label]:.2f}" for label in labels) + " |")
    repeats = sum(s.duplicates for s in summaries)
    if repeats:
        whole = sum(s.duplicate_documents for s in summaries)
        out += ["", f"{repeats} paragraphs were exact repeats of paragraphs the same outlet had already run and "
                    f"were counted once; {whole} documents were repeats in full (they count in `documents`, "
                    "not in the shares)."]
    flagged = [c for c in comparisons if c.excludes_zero]
    if comparisons:
        out += ["", "## Differences between outlets", "",
                f"{len(flagged)} of {len(comparisons)} differences in prevalence have a 95% interval that excludes "
                f"zero ({comparisons[0].mode}; all in outlets.json).", ""]
        out += [f"- {md(c.outlet)} − {md(c.other or 'the rest')}, {c.label}: {c.difference:+.0%} "
                f"[{c.ci[0]:+.0%}, {c.ci[1]:+.0%}]" for c in flagged[:50]]
    out += ["", "## Evidence", "", f"The {EVIDENCE_SHOWN} most confident paragraphs per outlet and label.", ""]
    for s in summaries:
        out += [f"### {md(s.outlet)}", ""]
        for label in labels:
            best = evidence.best(s.outlet, label)[:EVIDENCE_SHOWN]
            out.append(f"**{label}**" + ("" if best else ": none"))
            out.append("")
            out += [f"> {md(e.text)}\n>\n> — {md(e.doc)} ¶{e.index}, p = {e.probability:.2f}\n" for e in best]
    out += ["## Documents", "", "| document | outlet | paragraphs | furniture lines dropped |", "|---|---|---:|---:|"]
    out += [f"| {md(d['doc'])} | {md(d['outlet'])} | {d['paragraphs']} | {d['dropped_lines']} |"
            for d in documents[:MAX_DOCUMENT_ROWS]]
    if len(documents) > MAX_DOCUMENT_ROWS:
        out.append(f"\n…and {len(documents) - MAX_DOCUMENT_ROWS} more documents: see documents.jsonl.")
    return "\n".join(out) + "\n"


def load_comparisons(reports: str | os.PathLike, a: str, b: str) -> list[dict]:
    """The saved differences between outlets `a` and `b` (a minus b), one per label, from outlets.json."""
    path = Path(reports) / "outlets.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        comparisons, outlets = document["comparisons"], {o["outlet"] for o in document["outlets"]}
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"{path}: no readable scoring reports here; score first, or give the reports folder",
                         option="reports") from None
    for name in (a, b):
        if name not in outlets:
            raise InputError(f"no outlet {name!r} in {path}; it has {', '.join(sorted(outlets)[:10])}")
    found = [c for c in comparisons if (c["outlet"], c["other"]) == (a, b)]
    flipped = [dict(c, difference=-c["difference"], ci=[-c["ci"][1], -c["ci"][0]])
               for c in comparisons if (c["outlet"], c["other"]) == (b, a)]
    if not found and not flipped:
        raise InputError(f"{path} holds no comparison of {a!r} with {b!r} (with many outlets each is compared with "
                         f"the rest); score again with {a!r} as the baseline", option="baseline")
    return found or flipped
