"""Furniture benchmark: how much article prose each method keeps and how much page furniture it drops.

    .venv/bin/python bench/furniture.py [--only dev|heldout|seeds] [--no-write]

Pages: corpus/pages/{dev,heldout}/NAME.txt + NAME.html + NAME.json ("paragraphs": the article paragraphs
as in the .txt, each joined to one line; "furniture": the furniture lines; "layouts"), and the five seeds
(seeds/*.txt with their article paragraphs in labels/seeds.jsonl; every other non-blank line of a seed that is
not part of an article paragraph counts as furniture; seeds have no HTML).

Methods, each on the same page:
  framing-text   framing.segment on the .txt as `framing score` reads it
  framing-html   framing.segment on trafilatura's text of the .html (framing.readers.extract_html)
  justext-text   jusText (English stoplist, default thresholds) on the .txt, one <p> per line: the lines it calls good
  trafilatura-text  trafilatura.extract on the .txt wrapped as minimal HTML, one <p> per line
  length>=N      a plain filter: keep the lines of at least N words (N = 10)

Matching (text compared after whitespace normalisation):
  an article paragraph is kept when a kept paragraph contains it, or when the kept paragraphs joined in
  order contain it (a paragraph that a method split over several lines is covered);
  a furniture line is let through when a kept paragraph contains it outside the article paragraphs that
  kept paragraph holds (so "Energy", a menu word, is not counted as let through because the article says
  "National Energy Administration"). "drop %" = furniture lines not let through.
Results: bench/results/furniture.json; the table goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from framing.readers import read_documents  # noqa: E402
from framing.segment import segment  # noqa: E402

CORPUS = ROOT / "corpus" / "pages"
LENGTH_N = 10


@dataclass
class Page:
    name: str
    split: str
    layouts: list[str]
    paragraphs: list[str]
    furniture: list[str]
    txt: Path
    html: Path | None


def norm(text: str) -> str:
    return " ".join(text.split())


def load_pages(split: str) -> list[Page]:
    folder = CORPUS / split
    pages = []
    for meta_path in sorted(folder.glob("*.json")):
        meta = json.loads(meta_path.read_text("utf-8"))
        txt, html = meta_path.with_suffix(".txt"), meta_path.with_suffix(".html")
        if not txt.is_file():
            continue
        pages.append(Page(meta_path.stem, split, list(meta.get("layouts", [])),
                          [norm(p) for p in meta["paragraphs"] if norm(p)],
                          [norm(f) for f in meta["furniture"] if norm(f)], txt, html if html.is_file() else None))
    return pages


def load_seeds() -> list[Page]:
    records = [json.loads(line) for line in (ROOT / "labels" / "seeds.jsonl").read_text("utf-8").splitlines()
               if line.strip()]
    pages = []
    for txt in sorted((ROOT / "seeds").glob("*.txt")):
        gold = [norm(r["text"]) for r in records if r["doc"] == txt.name]
        lines = [norm(line) for line in txt.read_text("utf-8").split("\n") if norm(line)]
        furniture = [line for line in lines if not any(line in g for g in gold)]
        pages.append(Page(txt.stem, "seeds", ["seed"], gold, furniture, txt, None))
    return pages


# --- methods: page -> kept paragraphs ------------------------------------------------------------------

def framing_text(page: Page) -> list[str]:
    (document,) = read_documents([page.txt])
    return [p.text for p in segment(document).paragraphs]


def framing_html(page: Page) -> list[str] | None:
    if page.html is None:
        return None
    (document,) = read_documents([page.html])
    return [p.text for p in segment(document).paragraphs]


def _lines(page: Page) -> list[str]:
    return [norm(line) for line in page.txt.read_text("utf-8").split("\n") if norm(line)]


def _as_html(lines: list[str]) -> str:
    from html import escape
    body = "\n".join(f"<p>{escape(line)}</p>" for line in lines)
    return f"<html><head><title></title></head><body>{body}</body></html>"


def justext_text(page: Page) -> list[str]:
    import justext
    paragraphs = justext.justext(_as_html(_lines(page)).encode("utf-8"), justext.get_stoplist("English"))
    return [norm(p.text) for p in paragraphs if not p.is_boilerplate]


def trafilatura_text(page: Page) -> list[str]:
    import trafilatura
    text = trafilatura.extract(_as_html(_lines(page)), include_comments=False, include_tables=False) or ""
    return [norm(line) for line in text.split("\n") if norm(line)]


def length_filter(page: Page) -> list[str]:
    return [line for line in _lines(page) if len(line.split()) >= LENGTH_N]


METHODS: dict[str, Callable[[Page], list[str] | None]] = {
    "framing-text": framing_text, "framing-html": framing_html, "justext-text": justext_text,
    "trafilatura-text": trafilatura_text, f"length>={LENGTH_N}": length_filter,
}


# --- matching ----------------------------------------------------------------------------------------

def score_page(page: Page, kept: list[str]) -> dict:
    kept = [norm(k) for k in kept]
    joined = " ".join(kept)
    body_kept = [g for g in page.paragraphs if any(g in k for k in kept) or g in joined]
    leftovers = []
    for k in kept:
        for g in page.paragraphs:
            if g in k:
                k = k.replace(g, "\x00")
        leftovers.append(k)
    leaked = [f for f in page.furniture if any(f in rest for rest in leftovers)]
    return {"body": len(page.paragraphs), "body_kept": len(body_kept), "furniture": len(page.furniture),
            "furniture_dropped": len(page.furniture) - len(leaked),
            "lost": [g for g in page.paragraphs if g not in body_kept], "leaked": leaked}


def _pct(n: int, d: int) -> float | None:
    return round(100 * n / d, 1) if d else None


def summarise(rows: list[dict]) -> dict:
    body = sum(r["body"] for r in rows)
    kept = sum(r["body_kept"] for r in rows)
    furn = sum(r["furniture"] for r in rows)
    dropped = sum(r["furniture_dropped"] for r in rows)
    return {"pages": len(rows), "body": body, "body_kept": kept, "kept_pct": _pct(kept, body),
            "furniture": furn, "furniture_dropped": dropped, "dropped_pct": _pct(dropped, furn),
            "pages_with_no_body": sum(1 for r in rows if r["body"] and r["body_kept"] == 0)}


def run_split(pages: list[Page]) -> dict:
    out: dict = {}
    for method, fn in METHODS.items():
        started = time.perf_counter()
        per_page, by_layout = {}, defaultdict(list)
        for page in pages:
            kept = fn(page)
            if kept is None:
                continue
            row = score_page(page, kept)
            per_page[page.name] = row
            for layout in page.layouts:
                by_layout[layout].append(row)
        if not per_page:
            continue
        out[method] = {"overall": summarise(list(per_page.values())),
                       "layouts": {k: summarise(v) for k, v in sorted(by_layout.items())},
                       "pages": per_page, "seconds": round(time.perf_counter() - started, 2)}
    return out


def _cell(s: dict) -> str:
    kept = "-" if s["kept_pct"] is None else f"{s['kept_pct']:5.1f}"
    dropped = "-" if s["dropped_pct"] is None else f"{s['dropped_pct']:5.1f}"
    return f"{kept} / {dropped}"


def print_table(split: str, results: dict) -> None:
    methods = list(results)
    if not methods:
        print(f"\n## {split}: no pages")
        return
    first = results[methods[0]]
    n = first["overall"]
    print(f"\n## {split}: {n['pages']} pages, {n['body']} article paragraphs, {n['furniture']} furniture lines")
    print("body kept % / furniture dropped %")
    header = f"| {'layout':32} | " + " | ".join(f"{m:>16}" for m in methods) + " |"
    print(header)
    print("|" + "---|" * (len(methods) + 1))
    rows = ["overall"] + sorted({layout for m in methods for layout in results[m]["layouts"]})
    for row in rows:
        cells = []
        for m in methods:
            s = results[m]["overall"] if row == "overall" else results[m]["layouts"].get(row)
            cells.append(f"{_cell(s):>16}" if s else f"{'n/a':>16}")
        label = row if row == "overall" else f"{row} ({results[methods[0]]['layouts'].get(row, {}).get('pages', 0)})"
        print(f"| {label:32} | " + " | ".join(cells) + " |")
    if "framing-text" in results:
        empty = results["framing-text"]["overall"]["pages_with_no_body"]
        print(f"framing-text: pages with no article paragraph kept: {empty}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["dev", "heldout", "seeds"], action="append")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--show", action="store_true", help="print lost paragraphs and leaked furniture (framing)")
    args = parser.parse_args()
    import justext
    import trafilatura
    splits = args.only or ["dev", "heldout", "seeds"]
    results: dict = {"versions": {"justext": getattr(justext, "__version__", "3.0.2"),
                                  "trafilatura": trafilatura.__version__},
                     "length_n": LENGTH_N}
    for split in splits:
        pages = load_seeds() if split == "seeds" else load_pages(split)
        results[split] = run_split(pages)
        print_table(split, results[split])
        if args.show:
            for method in ("framing-text", "framing-html"):
                for name, row in results[split].get(method, {}).get("pages", {}).items():
                    for g in row["lost"]:
                        print(f"  {method} {name} LOST: {g[:110]}")
                    for f in row["leaked"]:
                        print(f"  {method} {name} LEAKED: {f[:110]}")
    if not args.no_write:
        out = ROOT / "bench" / "results" / "furniture.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
