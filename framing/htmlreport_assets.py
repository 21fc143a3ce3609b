"""The stylesheet and the script that report.html carries inline (see framing.htmlreport).

Kept as Python strings rather than package data files so that an installed wheel needs no data-file rules.
The script reads only the JSON blob, writes text with textContent and never uses innerHTML, eval or a
network API; the page's Content-Security-Policy would block a request if it tried.
"""

CSS = r"""
:root { --ink: #1d2330; --muted: #5b6472; --rule: #d9dde3; --soft: #f4f6f8; --accent: #0b5cad; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--ink); background: #fff; font: 15px/1.5 system-ui, -apple-system, "Segoe UI",
  Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif; }
header.top, main { max-width: 1260px; margin: 0 auto; padding: 0 24px; }
header.top { padding-top: 20px; }
h1 { font-size: 26px; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 20px; margin: 0 0 6px; padding-top: 8px; border-top: 2px solid var(--ink); }
h3 { font-size: 16px; margin: 18px 0 6px; }
h4 { font-size: 14px; margin: 14px 0 6px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.summary { margin: 0 0 6px; font-size: 16px; color: var(--muted); }
.notes { margin: 4px 0 10px; padding-left: 18px; color: var(--muted); font-size: 13px; }
.bar { position: sticky; top: 0; z-index: 5; background: rgba(255,255,255,.96); border-bottom: 1px solid var(--rule);
  padding: 8px 0; margin-bottom: 10px; }
.bar-in { max-width: 1260px; margin: 0 auto; padding: 0 24px; display: flex; flex-wrap: wrap; gap: 6px 18px;
  align-items: center; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 13px; font-weight: 600; }
.key { display: inline-flex; align-items: center; gap: 6px; }
.sw { display: inline-block; width: 14px; height: 14px; border-radius: 3px; vertical-align: -2px; }
.toc { display: flex; flex-wrap: wrap; gap: 2px 12px; font-size: 13px; }
.toc a { color: var(--accent); text-decoration: none; }
.toc a:hover { text-decoration: underline; }
section { margin: 26px 0 34px; }
.help { color: var(--muted); font-size: 13.5px; margin: 2px 0 10px; max-width: 900px; }
.controls { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; font-size: 13.5px; margin: 6px 0; }
input[type=search], select { font: inherit; font-size: 13.5px; padding: 3px 6px; border: 1px solid #b8bfc9;
  border-radius: 4px; }
input[type=search] { width: 220px; }
button { font: inherit; font-size: 13px; padding: 3px 10px; border: 1px solid #b8bfc9; border-radius: 4px;
  background: #fff; cursor: pointer; }
button:hover:not(:disabled) { background: var(--soft); }
button:disabled { color: #aab; cursor: default; }
.pager { display: flex; align-items: center; gap: 8px; font-size: 13px; color: var(--muted); margin: 6px 0; }
.chart svg { display: block; max-width: 100%; height: auto; }
.chart text { font-size: 12px; fill: var(--ink); }
.chart text.dim { fill: var(--muted); font-size: 11px; }
.chart .name { cursor: pointer; }
.chart .name:hover { fill: var(--accent); text-decoration: underline; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 7px; border-bottom: 1px solid var(--rule); text-align: right; vertical-align: top; }
th { background: var(--soft); font-weight: 600; white-space: nowrap; font-size: 12.5px; }
th.group { text-align: center; font-weight: 500; color: var(--muted); font-size: 12px;
  border-bottom: 1px solid #c3c9d1; }
td.name a { white-space: normal; }
th button { border: 0; background: none; padding: 0; font-weight: 600; font-size: 13px; color: var(--ink); }
th button::after { content: " ↕"; color: #aab; }
th[aria-sort=ascending] button::after { content: " ▲"; color: var(--ink); }
th[aria-sort=descending] button::after { content: " ▼"; color: var(--ink); }
td.name, th.name { text-align: left; min-width: 150px; max-width: 260px; overflow-wrap: anywhere; }
td .ci { color: var(--muted); font-size: 11.5px; display: block; }
tbody tr:nth-child(even) td { background: #fafbfc; }
a.out { color: var(--accent); cursor: pointer; text-decoration: none; }
a.out:hover { text-decoration: underline; }
details.card { border: 1px solid var(--rule); border-radius: 6px; margin: 8px 0; background: #fff; }
details.card > summary { padding: 8px 12px; cursor: pointer; display: flex; gap: 14px; align-items: center;
  flex-wrap: wrap; list-style-position: inside; }
details.card > summary .title { font-weight: 650; font-size: 15px; overflow-wrap: anywhere; }
details.card > summary .meta { color: var(--muted); font-size: 13px; }
details.card[open] > summary { border-bottom: 1px solid var(--rule); background: var(--soft); }
.card-body { padding: 4px 14px 14px; }
.terms { display: flex; flex-wrap: wrap; gap: 6px; }
.term { background: var(--soft); border: 1px solid var(--rule); border-radius: 12px; padding: 1px 9px;
  font-size: 13px; }
.term small { color: var(--muted); margin-left: 4px; }
.ev-grid { display: grid; grid-template-columns: 1fr 1fr; gap: 4px 18px; }
.ev-grid > h5 { margin: 6px 0 0; font-size: 13px; color: var(--muted); font-weight: 600; }
.label-head { display: flex; align-items: center; gap: 8px; margin: 16px 0 4px; font-weight: 650; }
details.ev { border-left: 4px solid var(--rule); padding: 4px 0 4px 10px; margin: 6px 0; }
details.ev > summary { cursor: pointer; list-style: none; }
details.ev > summary::-webkit-details-marker { display: none; }
details.ev > summary::before { content: "▸ "; color: var(--muted); }
details.ev[open] > summary::before { content: "▾ "; }
.ev .text { font-size: 14px; }
.ev .src { color: var(--muted); font-size: 12.5px; margin-top: 2px; overflow-wrap: anywhere; }
.ev .src a, .arts a { color: var(--accent); }
.nb { margin: 6px 0 2px; padding-left: 18px; font-size: 13px; }
.nb li { margin: 4px 0; }
.nb .sim { color: var(--muted); font-size: 11.5px; margin-right: 8px; }
.ev .scores { color: var(--muted); font-size: 12px; display: flex; gap: 8px; align-items: center; }
.chip { display: inline-block; font-size: 11.5px; font-weight: 650; color: #fff; padding: 0 7px; border-radius: 9px;
  margin-right: 6px; white-space: nowrap; }
.chip.plain { background: var(--soft); color: var(--ink); border: 1px solid var(--rule); font-weight: 500; }
.arts { list-style: none; padding: 0; margin: 0; }
.arts li { display: grid; grid-template-columns: 320px 1fr; gap: 12px; padding: 5px 0; border-bottom: 1px solid
  var(--rule); align-items: center; font-size: 13.5px; }
.arts .shares { color: var(--muted); font-size: 12px; }
.passage { border-left: 4px solid var(--rule); padding: 4px 0 6px 12px; margin: 10px 0; }
.passage .text { font-size: 14px; }
.passage .who { font-size: 12.5px; color: var(--muted); margin-top: 4px; }
.warn { background: #fff4e5; border: 1px solid #f0c27b; padding: 8px 12px; border-radius: 6px; }
.none { color: var(--muted); font-style: italic; font-size: 13px; }
.excl td { font-weight: 650; }
@media (max-width: 820px) { .ev-grid, .arts li { grid-template-columns: 1fr; } }
@media print {
  @page { margin: 14mm; }
  body { font-size: 10.5pt; }
  .bar { position: static; border: 0; }
  .controls, .pager button, .toc, input, select { display: none !important; }
  section { break-inside: auto; }
  h2, h3, h4, .label-head { break-after: avoid; }
  tr, details.ev, .passage, .arts li { break-inside: avoid; }
  th { position: static; }
  details.card { border: 0; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  a { color: inherit !important; text-decoration: none; }
}
"""

JS = r"""
(function () {
"use strict";
const D = JSON.parse(document.getElementById("report-data").textContent);
const L = D.labels, COL = D.colours, K = L.length, O = D.outlets;
const SVGNS = "http://www.w3.org/2000/svg";

// --- building blocks: text goes in as text, never as markup -----------------------------------------------
function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = String(v);
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
}
function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
}
const tip = (node, text) => { node.append(svg("title", {}, text)); return node; };
const pct = x => { const v = 100 * x; return (v !== 0 && Math.abs(v) < 10 ? v.toFixed(1) : v.toFixed(0)) + "%"; };
const bare = x => pct(x).replace("%", "");
const pp = x => { const v = 100 * x; return (v > 0 ? "+" : v < 0 ? "\u2212" : "\u00b1") + Math.abs(v).toFixed(1); };
const num = n => Number(n).toLocaleString("en");
const plural = (n, word) => `${num(n)} ${word}${n === 1 ? "" : "s"}`;
const short = (s, n) => s.length > n ? s.slice(0, n - 1) + "\u2026" : s;
const httpUrl = u => typeof u === "string" && /^https?:\/\//i.test(u) ? u : null;
function source(url, text) {
  const u = httpUrl(url);
  return u ? el("a", {href: u, rel: "noopener noreferrer nofollow", target: "_blank", text: text || u})
           : el("span", {text: text || url});
}
function chip(j) { return el("span", {class: "chip", style: "background:" + COL[j], text: L[j]}); }
function stack(values, width, height) {   // a small stacked bar of label shares
  const s = svg("svg", {width, height, viewBox: `0 0 ${width} ${height}`, class: "mini"});
  let x = 0;
  values.forEach((v, j) => {
    const w = Math.max(0, v) * width;
    s.append(tip(svg("rect", {x, y: 0, width: w, height, fill: COL[j]}), `${L[j]}: ${pct(v)}`));
    x += w;
  });
  return s;
}

// --- the outlet filter, shared by every section ---------------------------------------------------------
let visible = O.map((_, i) => i);
const sections = [];
function refilter() {
  const f = document.getElementById("filter").value.trim().toLowerCase();
  visible = O.map((_, i) => i).filter(i => !f || O[i].name.toLowerCase().includes(f));
  document.getElementById("filter-count").textContent =
    f ? `${num(visible.length)} of ${num(O.length)} outlets` : `${num(O.length)} outlets`;
  sections.forEach(s => s.reset());
}

// --- pagination: only the rows on screen are ever built --------------------------------------------------
function pager(name, size, draw, extra) {
  const box = document.querySelector(`.pager[data-for="${name}"]`);
  const p = {items: [], page: 0};
  p.show = function () {
    const pages = Math.max(1, Math.ceil(p.items.length / size));
    p.page = Math.min(Math.max(0, p.page), pages - 1);
    const prev = el("button", {type: "button", text: "\u2039 previous", disabled: p.page === 0,
                               onclick: () => { p.page--; p.show(); }});
    const next = el("button", {type: "button", text: "next \u203a", disabled: p.page >= pages - 1,
                               onclick: () => { p.page++; p.show(); }});
    const from = p.items.length ? p.page * size + 1 : 0, to = Math.min(p.items.length, (p.page + 1) * size);
    box.replaceChildren(...(extra ? [extra] : []), prev,
                        el("span", {text: `${num(from)}\u2013${num(to)} of ${num(p.items.length)}`}), next);
    draw(p.items.slice(p.page * size, (p.page + 1) * size));
  };
  p.set = function (items, keep) { p.items = items; if (!keep) p.page = 0; p.show(); };
  p.goTo = function (item) {
    const at = p.items.indexOf(item);
    if (at >= 0) { p.page = Math.floor(at / size); p.show(); }
  };
  return p;
}

// --- prevalence by outlet: stacked bars with 95% whiskers ------------------------------------------------
const orderSelect = el("select", {"aria-label": "order of outlets"},
  el("option", {value: "n", text: "most paragraphs first"}), el("option", {value: "name", text: "by name"}),
  ...L.map((l, j) => el("option", {value: String(j), text: `most ${l} first`})));
function ordered() {
  const key = orderSelect.value, v = visible.slice();
  if (key === "name") v.sort((a, b) => O[a].name.localeCompare(O[b].name));
  else if (key === "n") v.sort((a, b) => O[b].paragraphs - O[a].paragraphs || O[a].name.localeCompare(O[b].name));
  else { const j = +key; v.sort((a, b) => O[b].est[j] - O[a].est[j] || O[a].name.localeCompare(O[b].name)); }
  return v;
}
function drawOverview(rows) {
  const rowH = 30, left = 250, W = 760, right = 90, top = 8, axis = 30;
  const H = top + rowH * rows.length + axis, width = left + W + right;
  const s = svg("svg", {viewBox: `0 0 ${width} ${H}`, width, height: H, role: "img",
                        "aria-label": "label prevalence by outlet with 95% intervals"});
  for (const t of [0, .25, .5, .75, 1]) {
    const x = left + t * W;
    s.append(svg("line", {x1: x, x2: x, y1: top - 4, y2: H - axis + 4, stroke: "#d9dde3"}));
    s.append(svg("text", {x, y: H - axis + 18, "text-anchor": "middle", class: "dim"}, pct(t)));
  }
  rows.forEach((i, r) => {
    const o = O[i], y = top + r * rowH;
    const name = tip(svg("text", {x: left - 10, y: y + rowH / 2 + 4, "text-anchor": "end", class: "name"},
                         short(o.name, 34)), o.name);
    name.addEventListener("click", () => openOutlet(i));
    s.append(name);
    let start = 0;
    o.est.forEach((v, j) => {
      s.append(tip(svg("rect", {x: left + start * W, y: y + 5, width: Math.max(0, v) * W, height: rowH - 10,
                                fill: COL[j]}),
                   `${o.name}\n${L[j]}: ${pct(v)} (95% interval ${bare(o.lo[j])}\u2013${pct(o.hi[j])})`));
      start += Math.max(0, v);
    });
    // Each label's whisker sits on the end of its segment, drawn from the segment's start; the last label's
    // on its start, drawn from the bar's end: where that edge would lie at either end of the interval.
    const end = start;
    start = 0;
    o.est.forEach((v, j) => {
      const last = K > 1 && j === K - 1, yy = y + rowH / 2 + (j - (K - 1) / 2) * 5;
      const x1 = left + (last ? end - o.hi[j] : start + o.lo[j]) * W;
      const x2 = left + (last ? end - o.lo[j] : start + o.hi[j]) * W;
      const d = `M${x1},${yy}H${x2}M${x1},${yy - 3.5}v7M${x2},${yy - 3.5}v7`;
      s.append(svg("path", {d, stroke: "#fff", "stroke-width": 3, "stroke-opacity": .85, fill: "none"}));
      s.append(tip(svg("path", {d, stroke: "#111", "stroke-width": 1.3, fill: "none"}),
                   `${L[j]}: 95% interval ${bare(o.lo[j])}\u2013${pct(o.hi[j])}`));
      start += Math.max(0, v);
    });
    s.append(svg("text", {x: left + W + 8, y: y + rowH / 2 + 4, class: "dim"}, `n=${num(o.paragraphs)}`));
  });
  document.getElementById("overview-chart").replaceChildren(
    rows.length ? s : el("p", {class: "none", text: "No outlet matches the filter."}));
}
const overview = pager("overview", D.page_size, drawOverview, orderSelect);
orderSelect.addEventListener("change", () => { overview.set(ordered()); cards.set(ordered()); });
sections.push({reset: () => overview.set(ordered())});

// --- the outlet-by-label table, sortable ------------------------------------------------------------------
const columns = [
  {key: "name", head: "Outlet", cls: "name", value: o => o.name, cell: (o, i) =>
    el("a", {class: "out", onclick: () => openOutlet(i), text: o.name})},
  {key: "documents", head: "Documents", value: o => o.documents, cell: o => num(o.documents)},
  {key: "paragraphs", head: "Paragraphs", value: o => o.paragraphs, cell: o => num(o.paragraphs)},
  ...L.map((l, j) => ({key: "l" + j, head: l, group: "Prevalence, with its 95% interval", swatch: j,
    value: o => o.est[j],
    cell: o => [pct(o.est[j]), el("span", {class: "ci", text: `${bare(o.lo[j])}\u2013${pct(o.hi[j])}`})]})),
  {key: "method", head: "Method", value: o => o.method + (o.corrected ? "" : " (share)"),
   cell: o => o.method + (o.corrected ? "" : " (share)")},
  {key: "duplicates", head: "repeats", group: "Paragraphs left out", value: o => o.duplicates,
   cell: o => num(o.duplicates)},
  ...D.reasons.map(r => ({key: "r:" + r, head: r.replace(/_/g, " "), group: "Paragraphs left out",
                          value: o => o.left_out[r] || 0, cell: o => num(o.left_out[r] || 0)})),
];
let tableSort = {key: "paragraphs", dir: -1};
const table = document.getElementById("outlet-table");
function sortButton(c) {
  return el("button", {type: "button", text: c.head, onclick: () => {
    tableSort = {key: c.key, dir: tableSort.key === c.key ? -tableSort.dir : (c.key === "name" ? 1 : -1)};
    tableHead(); tablePager.set(sortedRows());
  }});
}
function headCell(c, attrs) {
  return el("th", Object.assign({class: c.cls, scope: "col",
    "aria-sort": tableSort.key === c.key ? (tableSort.dir > 0 ? "ascending" : "descending") : "none"}, attrs),
    c.swatch !== undefined ? el("span", {class: "sw", style: "background:" + COL[c.swatch]}) : null,
    c.swatch !== undefined ? " " : null, sortButton(c));
}
function tableHead() {
  const top = el("tr", {}), second = el("tr", {});
  columns.forEach((c, k) => {
    if (!c.group) { top.append(headCell(c, {rowspan: 2})); return; }
    if (k === 0 || columns[k - 1].group !== c.group) {
      top.append(el("th", {colspan: columns.filter(d => d.group === c.group).length, class: "group", text: c.group}));
    }
    second.append(headCell(c));
  });
  table.replaceChildren(el("thead", {}, top, second), el("tbody", {id: "outlet-rows"}));
}
function sortedRows() {
  const c = columns.find(c => c.key === tableSort.key), v = visible.slice();
  v.sort((a, b) => {
    const x = c.value(O[a]), y = c.value(O[b]);
    const d = typeof x === "string" ? x.localeCompare(y) : x - y;
    return tableSort.dir * d || O[a].name.localeCompare(O[b].name);
  });
  return v;
}
const tablePager = pager("table", 50, rows => {
  document.getElementById("outlet-rows").replaceChildren(...rows.map(i => el("tr", {},
    ...columns.map(c => { const v = c.cell(O[i], i); return el("td", {class: c.cls}, ...[].concat(v)); }))));
});
tableHead();
sections.push({reset: () => tablePager.set(sortedRows())});

// --- differences between outlets ------------------------------------------------------------------------
const diffLabel = document.getElementById("diff-label"), diffOnly = document.getElementById("diff-only");
diffLabel.append(el("option", {value: "", text: "all labels"}),
                 ...L.map((l, j) => el("option", {value: String(j), text: l})));
function diffRows() {
  const f = document.getElementById("filter").value.trim().toLowerCase(), j = diffLabel.value;
  return D.diffs.filter(d => (j === "" || d[2] === +j) && (!diffOnly.checked || d[6]) &&
      (!f || d[0].toLowerCase().includes(f) || (d[1] || "").toLowerCase().includes(f)))
    .sort((p, q) => (q[6] - p[6]) || Math.abs(q[3]) - Math.abs(p[3]) || p[0].localeCompare(q[0]));
}
let diffScale = 0.1;
function drawDiffs(rows) {
  const rowH = 24, left = 340, W = 450, right = 310, top = 8, axis = 30, width = left + W + right;
  const H = top + rowH * rows.length + axis, m = diffScale;
  const x = v => left + W / 2 + (Math.max(-m, Math.min(m, v)) / m) * (W / 2);  // clamped to the axis
  const s = svg("svg", {viewBox: `0 0 ${width} ${H}`, width, height: H, role: "img",
                        "aria-label": "differences in prevalence between outlets with 95% intervals"});
  for (const t of [-1, -.5, 0, .5, 1]) {
    s.append(svg("line", {x1: x(t * m), x2: x(t * m), y1: top - 4, y2: H - axis + 4,
                          stroke: t === 0 ? "#555" : "#e3e6ea", "stroke-width": t === 0 ? 1.2 : 1}));
    s.append(svg("text", {x: x(t * m), y: H - axis + 18, "text-anchor": "middle", class: "dim"}, pp(t * m)));
  }
  rows.forEach((d, r) => {
    const y = top + r * rowH + rowH / 2, c = COL[d[2]];
    const who = `${d[0]} \u2212 ${d[1] === null ? "all other outlets" : d[1]}`;
    s.append(tip(svg("text", {x: left - 10, y: y + 4, "text-anchor": "end", "font-weight": d[6] ? 650 : 400},
                     short(who, 46)), who));
    s.append(svg("line", {x1: x(d[4]), x2: x(d[5]), y1: y, y2: y, stroke: c, "stroke-width": 2.5}));
    s.append(tip(svg("circle", {cx: x(d[3]), cy: y, r: 4.5, fill: d[6] ? c : "#fff", stroke: c, "stroke-width": 2}),
                 `${who}, ${L[d[2]]}: ${pp(d[3])} points (95% ${pp(d[4])} to ${pp(d[5])})`));
    s.append(svg("text", {x: left + W + 12, y: y + 4, class: d[6] ? "" : "dim", "font-weight": d[6] ? 650 : 400},
                 `${pp(d[3])} [${pp(d[4])}, ${pp(d[5])}] ${L[d[2]]}`));
  });
  document.getElementById("diff-chart").replaceChildren(rows.length ? s :
    el("p", {class: "none", text: D.diffs.length ? "No difference matches." : "No comparisons in this report."}));
}
const diffPager = pager("differences", 30, drawDiffs);
function resetDiffs() {
  const rows = diffRows();
  const widest = rows.reduce((m, d) => Math.max(m, Math.abs(d[4]), Math.abs(d[5])), 0);
  diffScale = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1].find(m => m >= widest) || 1;
  diffPager.set(rows);
}
diffLabel.addEventListener("change", resetDiffs);
diffOnly.addEventListener("change", resetDiffs);
sections.push({reset: resetDiffs});

// --- own voice and quotation -----------------------------------------------------------------------------
const voiceTable = document.getElementById("voice-table");
const withVoice = () => visible.filter(i => O[i].voice);
voiceTable.append(el("thead", {},
  el("tr", {}, el("th", {class: "name", rowspan: 2, text: "Outlet"}), el("th", {rowspan: 2, text: "Own voice"}),
    el("th", {rowspan: 2, text: "Quoted"}),
    ...L.map((l, j) => el("th", {colspan: 2, class: "group"}, el("span", {class: "sw", style: "background:" + COL[j]}),
                          ` ${l}`))),
  el("tr", {}, ...L.flatMap(() => [el("th", {text: "own"}), el("th", {text: "quoted"})]))),
  el("tbody", {id: "voice-rows"}));
const voicePager = pager("voice", 50, rows => {
  document.getElementById("voice-rows").replaceChildren(...rows.map(i => {
    const v = O[i].voice;
    return el("tr", {},
      el("td", {class: "name"}, el("a", {class: "out", onclick: () => openOutlet(i), text: O[i].name})),
      el("td", {}, stack(v.own, 120, 12), el("span", {class: "ci", text: `${num(v.n_own)} paragraphs`})),
      el("td", {}, stack(v.quoted, 120, 12), el("span", {class: "ci", text: `${num(v.n_quoted)} paragraphs`})),
      ...L.flatMap((_, j) => [el("td", {text: pct(v.own[j])}), el("td", {text: pct(v.quoted[j])})]));
  }));
  if (!rows.length) document.getElementById("voice-rows").append(el("tr", {}, el("td", {
    class: "none", colspan: 3 + 2 * K,
    text: O.some(o => o.voice) ? "No outlet matches the filter." : "Voice was not measured in this run."})));
});
sections.push({reset: () => voicePager.set(withVoice())});

// --- outlet cards: built when opened ---------------------------------------------------------------------
function evidenceItem(p) {
  const [docId, index, text, scores, neighbours, voice] = D.paras[p];
  const [doc, title, date, url] = D.docs[docId];
  const src = el("div", {class: "src"}, el("strong", {text: title || doc}), date ? ` \u00b7 ${date}` : "",
    url ? " \u00b7 " : "", url ? source(url) : null, ` \u00b7 paragraph ${index}`,
    voice ? ` \u00b7 ${voice} voice` : "",
    el("div", {class: "scores"}, stack(scores, 80, 8),
       scores.map((v, j) => `${L[j]} ${v.toFixed(2)}`).join(" \u00b7 ")));
  const list = neighbours.length ? el("ol", {class: "nb"}, ...neighbours.map(([t, sim]) => el("li", {},
      D.train[t][1] >= 0 ? chip(D.train[t][1]) : el("span", {class: "chip plain", text: "unlabelled"}),
      el("span", {class: "sim", text: `similarity ${sim.toFixed(2)}`}), D.train[t][0])))
    : el("p", {class: "none", text: "No nearest training paragraphs were recorded."});
  return el("details", {class: "ev", style: "border-left-color:" + COL[scores.indexOf(Math.max(...scores))]},
    el("summary", {}, el("span", {class: "text", text}), src),
    el("h5", {text: "Nearest labelled training paragraphs"}), list);
}
function strip(codes, width) {
  const n = codes.length, w = n ? Math.max(2, Math.min(12, width / n)) : 0;
  const s = svg("svg", {width: Math.max(1, w * n), height: 14, class: "strip"});
  for (let k = 0; k < n; k++) {
    const j = codes.charCodeAt(k) - 48;
    s.append(tip(svg("rect", {x: k * w, y: 0, width: Math.max(1, w - 1), height: 14, fill: COL[j]}),
                 `paragraph ${k}: ${L[j]}`));
  }
  return s;
}
function cardBody(i) {
  const o = O[i], body = el("div", {class: "card-body"});
  const terms = D.vocab[i];
  body.append(el("h4", {text: "Characteristic vocabulary"}), terms.length ?
    el("div", {class: "terms"}, ...terms.map(([t, z]) => el("span", {class: "term", title: `log-odds z = ${z}`}, t,
      el("small", {text: z.toFixed(1)})))) :
    el("p", {class: "none", text: "None: too little text, or nothing it uses far more than the others."}));
  body.append(el("h4", {text: "Evidence"}));
  L.forEach((l, j) => {
    const [conf, border] = D.evidence[i][j];
    body.append(el("div", {class: "label-head"}, chip(j), el("span", {class: "ci",
      text: `${pct(o.est[j])} of paragraphs (95% ${bare(o.lo[j])}\u2013${pct(o.hi[j])})`})));
    if (!conf.length && !border.length) {
      body.append(el("p", {class: "none", text: "No paragraph given this label."}));
      return;
    }
    body.append(el("div", {class: "ev-grid"},
      el("div", {}, el("h5", {text: "Most confident"}), ...conf.map(evidenceItem)),
      el("div", {}, el("h5", {text: "Most borderline (closest calls)"}), ...border.map(evidenceItem))));
  });
  const arts = D.articles[i];
  body.append(el("h4", {text: arts.length < o.n_articles ?
    `Articles: the ${num(arts.length)} most slanted of ${num(o.n_articles)} (all in documents.jsonl)` :
    "Articles, most slanted first"}));
  body.append(arts.length ? el("ul", {class: "arts"}, ...arts.map(([docId, shares, codes]) => {
    const [doc, title, date, url] = D.docs[docId];
    const u = httpUrl(url);
    return el("li", {}, strip(codes, 320), el("div", {},
      u ? el("a", {href: u, rel: "noopener noreferrer nofollow", target: "_blank", text: title || doc})
        : el("strong", {text: title || doc}),
      date ? ` \u00b7 ${date}` : "", url && !u ? ` \u00b7 ${url}` : "",
      el("div", {class: "shares", text: `${codes.length} paragraphs \u00b7 ` +
        shares.map((v, j) => `${L[j]} ${pct(v)}`).join(" \u00b7 ")})));
  })) : el("p", {class: "none", text: "No article rows in this report."}));
  return body;
}
function card(i) {
  const o = O[i];
  const d = el("details", {class: "card", id: "outlet-" + i},
    el("summary", {}, el("span", {class: "title", text: o.name}), stack(o.est, 160, 12),
      el("span", {class: "meta",
                  text: `${plural(o.documents, "document")} \u00b7 ${plural(o.paragraphs, "paragraph")}`})));
  d.addEventListener("toggle", () => {
    if (d.open && !d.dataset.built) { d.dataset.built = "1"; d.append(cardBody(i)); }
  });
  return d;
}
const cards = pager("outlets", 10, rows => {
  const box = document.getElementById("outlet-cards");
  box.replaceChildren(...rows.map(card));
  if (O.length <= 3) box.querySelectorAll("details.card").forEach(d => { d.open = true; });
});
sections.push({reset: () => cards.set(ordered())});
function openAll() { document.querySelectorAll("#outlet-cards details.card").forEach(d => { d.open = true; }); }
document.getElementById("expand").addEventListener("click", openAll);
window.addEventListener("beforeprint", openAll);
function openOutlet(i) {
  if (!visible.includes(i)) { document.getElementById("filter").value = ""; refilter(); }
  cards.goTo(i);
  const d = document.getElementById("outlet-" + i);
  if (d) { d.open = true; d.scrollIntoView({block: "start"}); }
}

// --- shared passages -------------------------------------------------------------------------------------
const byName = new Map(O.map((o, i) => [o.name, i]));
const passagePager = pager("passages", 20, rows => {
  const box = document.getElementById("passage-list");
  box.replaceChildren(...rows.map(([text, outlets, n]) => el("div", {class: "passage"},
    el("div", {class: "text", text}),
    el("div", {class: "who"}, `${num(outlets.length)} outlets, ${num(n)} paragraphs: `,
      ...outlets.flatMap((name, k) => [k ? ", " : "", byName.has(name) ?
        el("a", {class: "out", onclick: () => openOutlet(byName.get(name)), text: name}) : name])))));
  if (!rows.length) box.append(el("p", {class: "none", text: D.n_passages ? "No passage matches the filter." :
    "No passage was run by more than one outlet."}));
  if (D.n_passages > D.passages.length) box.append(el("p", {class: "none",
    text: `The ${num(D.passages.length)} most widely shared of ${num(D.n_passages)} passages are shown.`}));
});
sections.push({reset: () => {
  const f = document.getElementById("filter").value.trim().toLowerCase();
  passagePager.set(D.passages.filter(p => !f || p[1].some(n => n.toLowerCase().includes(f))));
}});

document.getElementById("filter").addEventListener("input", refilter);
refilter();
document.documentElement.dataset.ready = "1";
window.__reportReadyMs = performance.now();
})();
"""
