"""Time and size of report.html: render_html on a seeds-sized input and on 5,000 outlets, and, where Chromium
is installed, the time the page takes to open (navigation until its script has built the first page).

    .venv/bin/python bench/report_size.py [--outlets 5 5000] [--no-browser]

Prints a table and saves bench/results/report_size.json. The inputs are tests/report_sample.py's seeded,
authored sample (invented outlets, a long tail of small ones).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from headless import missing, open_page  # noqa: E402
from report_sample import sample_report_data  # noqa: E402

from framing.htmlreport import render_html  # noqa: E402


def measure(n_outlets: int, browser: bool) -> dict:
    data = sample_report_data(n_outlets, vocabulary=n_outlets <= 500)
    wall, cpu = time.perf_counter(), time.process_time()
    page = render_html(data)
    row = {"outlets": n_outlets, "documents": len(data["documents"]),
           "paragraphs": sum(o["paragraphs"] for o in data["outlets"]),
           "render_wall_s": round(time.perf_counter() - wall, 3), "render_cpu_s": round(time.process_time() - cpu, 3),
           "bytes": len(page.encode("utf-8"))}
    if browser:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "report.html"
            path.write_text(page, encoding="utf-8")
            run = open_page(path, "window.__reportReadyMs", timeout=300)
            row |= {"browser_open_s": round(run.seconds_to_ready, 3),
                    "page_script_done_ms": round(float(run.values or 0), 1) if run.ready else None,
                    "browser_errors": len(run.errors), "requests": len(run.requests)}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outlets", type=int, nargs="+", default=[5, 5000])
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    browser = not args.no_browser and missing() is None
    rows = [measure(n, browser) for n in args.outlets]
    keys = list(rows[0])
    print("  ".join(f"{k:>18}" for k in keys))
    for row in rows:
        print("  ".join(f"{row[k]!s:>18}" for k in keys))
    out = ROOT / "bench" / "results" / "report_size.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
