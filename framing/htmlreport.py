"""report.html: one self-contained file an analyst can read, check and cite.

`render_html(data)` returns the page as a string: CSS and script inline, charts drawn as SVG by the inline
script, no request of any kind (a Content-Security-Policy forbids them). The numbers travel as one JSON blob
in a `<script type="application/json">`, with `<`, `>` and `&` written as `\\u003c`, `\\u003e`, `\\u0026` so that
no text in it can close the element; the script builds every table and chart from it page by page, so 5,000
outlets open as fast as five. The script writes text with `textContent` and attributes with
`setAttribute`, never `innerHTML`: a title or paragraph that holds `<script>` shows as text. A url becomes a
link only when it starts with http:// or https://.

The input `data` (plain JSON types; every key but `labels` and `outlets` may be missing or empty):

    labels        [str]                  the scheme's labels, in scheme order; colours follow this order
    neutral       str | None             the label whose absence makes an article "slanted" (e.g. "neutral_wire");
                                         without it an article's slant is its largest share
    title         str                    page title (default "Framing report")
    notes         [str]                  shown under the title: the model, how intervals were made, caveats
    outlets       [OutletRow]            one per outlet, like outlets.json
    comparisons   [Comparison]           outlet-vs-outlet differences (framing.prevalence.compare)
    documents     [DocumentRow]          one per article (documents.jsonl), any order
    evidence      {outlet: {label: {"confident": [Evidence], "borderline": [Evidence]}}}
                                         most confident first, closest call first
    vocabulary    {outlet: [[term, z]]}  characteristic terms, highest z first (framing.vocabulary.top_terms)
    passages      [Passage]              shared passages, most outlets first (framing.passages)

    OutletRow   = {outlet: str, documents: int, paragraphs: int,
                   share: {label: float}, ci: {label: [low, high]},            plain classify-and-count share
                   prevalence: {label: float}, prevalence_ci: {label: [low, high]},   corrected; {} if none
                   method: str, duplicates: int, duplicate_documents: int,
                   left_out: {reason: int},                       e.g. {"off_topic": 3, "language": 1}
                   voice: {own: {label: float}, quoted: {label: float}, n: {own: int, quoted: int}}}   optional
    Comparison  = {a: str, b: str | None (None: all other outlets pooled), label: str, difference: float,
                   ci: [low, high], excludes_zero: bool}
    DocumentRow = {doc: str, outlet: str, title: str | None, date: str | None, url: str | None,
                   shares: {label: float}, strip: [int]}        strip: label index of each paragraph, in order
    Evidence    = {text: str, doc: str, title: str | None, date: str | None, url: str | None, index: int,
                   scores: {label: float}, voice: "own" | "quoted" (optional),
                   neighbours: [{text: str, label: str, similarity: float}]}   nearest labelled paragraphs
    Passage     = {text: str, outlets: [str], n: int}

The page shows, where the value is given, `prevalence` with `prevalence_ci`, else `share` with `ci`.
Documents, evidence, terms and passages beyond the limits in `RenderOptions` are left out of the page (the
page says how many); the full lists are in documents.jsonl and outlets.json.
"""

from __future__ import annotations

import gc
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from . import htmlreport_assets as assets
from .charts import label_colours
from .errors import OutputError

CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:")


@dataclass(frozen=True)
class RenderOptions:
    max_documents_per_outlet: int = 50  # the most slanted first
    max_evidence: int = 5  # per outlet, label and kind (confident, borderline)
    max_neighbours: int = 3
    max_terms: int = 15
    max_passages: int = 1000
    page_size: int = 25  # outlets per page in the charts and the table


DEFAULT_OPTIONS = RenderOptions()


def render_html(data: Mapping, options: RenderOptions = DEFAULT_OPTIONS) -> str:
    """The whole report.html for `data` (schema in the module docstring)."""
    # Packing allocates many small lists and makes no cycles; the collector, walking the large input again
    # and again, took two thirds of the time on 5,000 outlets. It is paused, then restored as it was.
    enabled = gc.isenabled()
    gc.disable()
    try:
        packed = pack(data, options)
    finally:
        if enabled:
            gc.enable()
    labels = packed["labels"]
    title = str(data.get("title") or "Framing report")
    n_docs = sum(o["documents"] for o in packed["outlets"])
    n_paras = sum(o["paragraphs"] for o in packed["outlets"])
    legend = "".join(f'<span class="key"><span class="sw" style="background:{c}"></span>{_e(label)}</span>'
                     for label, c in zip(labels, packed["colours"]))
    notes = "".join(f"<li>{_e(note)}</li>" for note in data.get("notes") or [])
    slots = {"CSP": _e(CSP), "TITLE": _e(title),
             "SUMMARY": _e(f"{len(packed['outlets']):,} outlets · {n_docs:,} documents · "
                           f"{n_paras:,} paragraphs scored"),
             "LEGEND": legend, "NOTES": notes, "CSS": assets.CSS, "JS": assets.JS, "DATA": script_json(packed)}
    # One pass: a title that contains "@JS@" stays a title.
    return re.sub(r"@([A-Z]+)@", lambda m: slots[m.group(1)], _TEMPLATE)


def script_json(value: object) -> str:
    """JSON that is safe inside a <script> element: no `<`, `>` or `&`, no line separators."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


# --- packing: the input schema -> the compact blob the script reads ---------------------------------------------

def _r(x: object) -> float:
    return round(float(x), 4)  # type: ignore[arg-type]


def _slant(shares: Sequence[float], neutral: int) -> float:
    if neutral >= 0:
        return 1.0 - shares[neutral]
    return max(shares) if shares else 0.0


def pack(data: Mapping, options: RenderOptions = DEFAULT_OPTIONS) -> dict:
    """The blob the page's script reads: tables of documents, paragraphs and training paragraphs, referenced
    by index, so that a document or a training paragraph shown many times is stored once."""
    labels = data.get("labels")
    if not labels or not all(isinstance(label, str) for label in labels):
        raise OutputError("report data: 'labels' must be a non-empty list of label names")
    labels = list(labels)
    rows = data.get("outlets")
    if not isinstance(rows, Sequence) or not all(isinstance(r, Mapping) and "outlet" in r for r in rows):
        raise OutputError("report data: 'outlets' must be a list of rows, each with an 'outlet'")
    k = len(labels)
    where = {label: i for i, label in enumerate(labels)}
    neutral = where.get(data.get("neutral") or "", -1)
    index = {str(r["outlet"]): i for i, r in enumerate(rows)}
    docs: list[list] = []
    doc_ids: dict[str, int] = {}

    def doc_id(item: Mapping) -> int:
        key = str(item.get("doc", ""))
        if key not in doc_ids:
            doc_ids[key] = len(docs)
            docs.append([key, item.get("title") or "", item.get("date") or "", item.get("url") or ""])
        return doc_ids[key]

    outlets = [_pack_outlet(r, labels) for r in rows]
    articles: list[list] = [[] for _ in rows]
    for d in data.get("documents") or []:
        i = index.get(str(d.get("outlet")))
        if i is None:
            continue
        shares = [_r((d.get("shares") or {}).get(label, 0.0)) for label in labels]
        strip = "".join(chr(48 + int(x)) for x in d.get("strip") or [] if 0 <= int(x) < k)
        articles[i].append([doc_id(d), shares, strip, round(_slant(shares, neutral), 4)])
    for i, listed in enumerate(articles):
        outlets[i]["n_articles"] = len(listed)
        listed.sort(key=lambda a: (-a[3], -len(a[2]), docs[a[0]][0]))
        del listed[options.max_documents_per_outlet:]
    paras: list[list] = []
    para_ids: dict[tuple, int] = {}
    train: list[list] = []
    train_ids: dict[tuple, int] = {}

    def para_id(item: Mapping) -> int:
        key = (str(item.get("doc", "")), int(item.get("index", 0)), str(item.get("text", "")))
        if key not in para_ids:
            neighbours = []
            for n in (item.get("neighbours") or [])[:options.max_neighbours]:
                t = (str(n.get("text", "")), where.get(n.get("label"), -1))
                if t not in train_ids:
                    train_ids[t] = len(train)
                    train.append(list(t))
                neighbours.append([train_ids[t], _r(n.get("similarity", 0.0))])
            scores = [_r((item.get("scores") or {}).get(label, 0.0)) for label in labels]
            para_ids[key] = len(paras)
            paras.append([doc_id(item), key[1], key[2], scores, neighbours, item.get("voice") or ""])
        return para_ids[key]

    evidence: list[list] = [[[[], []] for _ in labels] for _ in rows]
    for outlet, by_label in (data.get("evidence") or {}).items():
        i = index.get(str(outlet))
        if i is None:
            continue
        for label, kinds in by_label.items():
            if label not in where:
                continue
            for kind, name in enumerate(("confident", "borderline")):
                evidence[i][where[label]][kind] = [para_id(e) for e in (kinds.get(name) or [])[:options.max_evidence]]
    vocabulary = [[[str(t), _r(z)] for t, z in (data.get("vocabulary") or {}).get(str(r["outlet"]), [])
                   [:options.max_terms]] for r in rows]
    diffs = [[str(c["a"]), None if c.get("b") is None else str(c["b"]), where[c["label"]], _r(c["difference"]),
              _r(c["ci"][0]), _r(c["ci"][1]), bool(c.get("excludes_zero"))]
             for c in data.get("comparisons") or [] if c.get("label") in where]
    all_passages = data.get("passages") or []
    passages = [[str(p.get("text", "")), [str(o) for o in p.get("outlets") or []], int(p.get("n", 0))]
                for p in all_passages[:options.max_passages]]
    reasons = sorted({str(reason) for r in rows for reason in (r.get("left_out") or {})})
    return {"labels": labels, "colours": list(label_colours(labels).values()), "neutral": neutral,
            "outlets": outlets, "reasons": reasons, "docs": docs, "articles": articles, "paras": paras,
            "train": train, "evidence": evidence, "vocab": vocabulary, "diffs": diffs, "passages": passages,
            "n_passages": len(all_passages), "page_size": options.page_size,
            "max_documents": options.max_documents_per_outlet}


def _pack_outlet(row: Mapping, labels: Sequence[str]) -> dict:
    corrected = bool(row.get("prevalence"))
    estimate = row.get("prevalence") if corrected else row.get("share") or {}
    interval = (row.get("prevalence_ci") if corrected else row.get("ci")) or {}
    voice = row.get("voice") or None
    packed_voice = None
    if voice:
        counts = voice.get("n") or {}
        packed_voice = {"own": [_r((voice.get("own") or {}).get(label, 0.0)) for label in labels],
                        "quoted": [_r((voice.get("quoted") or {}).get(label, 0.0)) for label in labels],
                        "n_own": int(counts.get("own", 0)), "n_quoted": int(counts.get("quoted", 0))}
    return {"name": str(row["outlet"]), "documents": int(row.get("documents", 0)),
            "paragraphs": int(row.get("paragraphs", 0)), "method": str(row.get("method") or ""),
            "corrected": corrected,
            "est": [_r(estimate.get(label, 0.0)) for label in labels],
            "lo": [_r(interval.get(label, (0, 0))[0]) for label in labels],
            "hi": [_r(interval.get(label, (0, 0))[1]) for label in labels],
            "duplicates": int(row.get("duplicates", 0)), "duplicate_documents": int(row.get("duplicate_documents", 0)),
            "left_out": {str(k): int(v) for k, v in (row.get("left_out") or {}).items()}, "voice": packed_voice}


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="@CSP@">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>@TITLE@</title>
<style>@CSS@</style>
</head>
<body>
<header class="top">
<h1>@TITLE@</h1>
<p class="summary">@SUMMARY@</p>
<ul class="notes">@NOTES@</ul>
</header>
<div class="bar"><div class="bar-in">
<div class="legend" aria-label="label colours">@LEGEND@</div>
<nav class="toc"><a href="#overview">Prevalence</a><a href="#table">Table</a><a href="#differences">Differences</a>
<a href="#voice">Voice</a><a href="#outlets">Outlets</a><a href="#passages">Shared passages</a></nav>
<div class="controls"><label>Find outlets <input id="filter" type="search" placeholder="name contains…"
 autocomplete="off"></label> <span id="filter-count"></span></div>
</div></div>
<noscript><p class="warn">This report draws its charts and tables with JavaScript, which is off. The same numbers
are in outlets.json, outlets.csv and documents.jsonl beside this file.</p></noscript>
<main>
<section id="overview"><h2>Prevalence by outlet</h2>
<p class="help">Each bar splits an outlet's paragraphs by label. The black whiskers are each label's 95% interval:
on the right edge of its segment, drawn from the segment's start (for the last label, on its left edge, drawn from
the bar's end), they show where that edge would lie at either end of the interval. Hover for the numbers.</p>
<div class="pager" data-for="overview"></div><div id="overview-chart" class="chart"></div></section>
<section id="table"><h2>Outlet by label</h2>
<p class="help">Click a column to sort. Left out: paragraphs not counted in the shares (repeats, off-topic,
other languages).</p>
<div class="pager" data-for="table"></div><div class="scroll"><table id="outlet-table"></table></div></section>
<section id="differences"><h2>Differences between outlets</h2>
<p class="help">Difference in prevalence (first minus second), percentage points, with its 95% interval.
Filled points and bold rows: the interval excludes zero.</p>
<div class="controls"><label>Label <select id="diff-label"></select></label>
<label><input type="checkbox" id="diff-only"> only intervals that exclude zero</label></div>
<div class="pager" data-for="differences"></div><div id="diff-chart" class="chart"></div></section>
<section id="voice"><h2>Own voice and quotation</h2>
<p class="help">Each outlet's label shares among the paragraphs in its own voice and among those that are mainly
direct quotation or attributed speech.</p>
<div class="pager" data-for="voice"></div><div class="scroll"><table id="voice-table"></table></div></section>
<section id="outlets"><h2>Outlets: vocabulary, evidence, articles</h2>
<p class="help">Open an outlet for its characteristic terms (log-odds z against all other outlets), its most
confident and most borderline paragraphs per label (open one for its three nearest labelled training paragraphs),
and its articles, most slanted first, each drawn as a strip of its paragraphs in reading order.</p>
<div class="controls"><button type="button" id="expand">Open all on this page</button></div>
<div class="pager" data-for="outlets"></div><div id="outlet-cards"></div></section>
<section id="passages"><h2>Shared passages</h2>
<p class="help">Near-identical paragraphs that more than one outlet ran: agency copy, joint statements.</p>
<div class="pager" data-for="passages"></div><div id="passage-list"></div></section>
</main>
<script type="application/json" id="report-data">@DATA@</script>
<script>@JS@</script>
</body>
</html>
"""
