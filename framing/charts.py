"""PNG charts for report.md: prevalence by outlet, and outlet-vs-outlet differences (matplotlib, offline).

matplotlib is optional: without it each chart function returns None and `unavailable()` says why, so the
report is written without its pictures rather than not at all. The palette lives here and report.html
uses the same one, so a label has one colour everywhere.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency, and in greyscale by order.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
MAX_OUTLETS = 40  # rows in the prevalence chart; report.html shows every outlet
MAX_DIFFERENCES = 40


def label_colours(labels: Sequence[str]) -> dict[str, str]:
    """Label -> colour, in scheme order, the same in every chart and in report.html."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def unavailable() -> str | None:
    """Why charts cannot be drawn here, or None when they can."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib): report.md is written without charts"
    return None


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # the object API: no pyplot, no global state, no display needed

    fig = Figure(figsize=(width, height), dpi=110)
    fig.set_layout_engine("constrained")
    return fig


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})  # no version stamp: same input, same bytes
    return buffer.getvalue()


def _estimate(row: Mapping) -> tuple[dict, dict]:
    """The corrected prevalence and its interval where the row has one, else the plain share."""
    if row.get("prevalence"):
        return row["prevalence"], row.get("prevalence_ci") or {}
    return row.get("share") or {}, row.get("ci") or {}


def prevalence_chart(outlets: Sequence[Mapping], labels: Sequence[str], max_outlets: int = MAX_OUTLETS) -> bytes | None:
    """Stacked horizontal bars, one per outlet (the largest `max_outlets` by paragraphs), with whiskers.

    Each label's whisker is its 95% interval drawn from the start of its segment: where the segment would
    end at the low and the high end of the interval.
    """
    if unavailable() or not outlets:
        return None
    rows = sorted(outlets, key=lambda r: (-r.get("paragraphs", 0), str(r.get("outlet"))))[:max_outlets]
    rows = rows[::-1]  # matplotlib draws bottom-up; the largest outlet on top
    colours = label_colours(labels)
    fig = _figure(8.5, 1.2 + 0.38 * len(rows))
    ax = fig.add_subplot()
    offsets = {label: (i - (len(labels) - 1) / 2) * 0.12 for i, label in enumerate(labels)}
    for y, row in enumerate(rows):
        values, intervals = _estimate(row)
        end = sum(float(values.get(label, 0.0)) for label in labels)
        start = 0.0
        for j, label in enumerate(labels):
            value = float(values.get(label, 0.0))
            ax.barh(y, value, left=start, color=colours[label], height=0.7, edgecolor="white", linewidth=0.6,
                    label=label if y == 0 else None)
            if label in intervals:
                # As in report.html: on the segment's right edge, drawn from its start; the last label's on
                # its left edge, drawn from the bar's end.
                low, high = intervals[label]
                last = len(labels) > 1 and j == len(labels) - 1
                edge, x_low, x_high = (start, end - high, end - low) if last else \
                    (start + value, start + low, start + high)
                xerr = [[max(edge - x_low, 0)], [max(x_high - edge, 0)]]
                ax.errorbar([edge], [y + offsets[label]], xerr=xerr, fmt="none", ecolor="#222222",
                            elinewidth=1.0, capsize=2.5)
            start += value
    ax.set_yticks(range(len(rows)), [_short(str(r.get("outlet", ""))) + f"  (n={r.get('paragraphs', 0)})"
                                     for r in rows], fontsize=8)
    ax.set_xlim(0, 1.02)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1], ["0%", "25%", "50%", "75%", "100%"])
    ax.set_xlabel("share of the outlet's paragraphs; whiskers: each label's 95% interval, on its segment's right "
                  "edge (the last label's: left edge)", fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(labels), frameon=False, fontsize=8)
    if len(outlets) > len(rows):
        ax.set_title(f"the {len(rows)} largest of {len(outlets)} outlets", fontsize=8, loc="right", pad=18)
    return _png(fig)


def differences_chart(comparisons: Sequence[Mapping], labels: Sequence[str],
                      max_rows: int = MAX_DIFFERENCES) -> bytes | None:
    """Each difference as a point with its 95% interval; filled where the interval excludes zero.

    With more than `max_rows` differences, those that exclude zero and are largest are shown.
    """
    if unavailable() or not comparisons:
        return None
    chosen = sorted(comparisons, key=lambda c: (not c.get("excludes_zero"), -abs(c["difference"]),
                                                str(c.get("a")), str(c.get("b")), c["label"]))[:max_rows]
    chosen.sort(key=lambda c: (labels.index(c["label"]) if c["label"] in labels else 99, str(c.get("a")),
                               str(c.get("b"))))
    chosen = chosen[::-1]
    colours = label_colours(labels)
    fig = _figure(8.5, 1.3 + 0.3 * len(chosen))
    ax = fig.add_subplot()
    ax.axvline(0, color="#888888", linewidth=0.8)
    for y, c in enumerate(chosen):
        colour = colours.get(c["label"], "#000000")
        low, high = c["ci"]
        ax.plot([low, high], [y, y], color=colour, linewidth=2)
        ax.plot([c["difference"]], [y], marker="o", markersize=6, color=colour,
                markerfacecolor=colour if c.get("excludes_zero") else "white")
    from matplotlib.lines import Line2D

    shown = [label for label in labels if any(c["label"] == label for c in chosen)]
    handles = [Line2D([], [], color=colours[label], marker="o", linewidth=2, label=label) for label in shown]
    ax.set_yticks(range(len(chosen)), [f"{_short(str(c.get('a')))} − {_short(str(c.get('b') or 'the rest'))}"
                                       for c in chosen], fontsize=8)
    ax.set_xlabel("difference in prevalence, percentage points (filled: the 95% interval excludes zero)")
    ax.xaxis.set_major_formatter(lambda x, _: f"{x * 100:+.0f}")
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_ylim(-0.7, len(chosen) - 0.3)
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(labels), frameon=False,
              fontsize=8)
    return _png(fig)


def _short(name: str, width: int = 28) -> str:
    # matplotlib renders "$...$" as mathtext: a dollar in an outlet name must stay a dollar.
    name = name.replace("$", r"\$")
    return name if len(name) <= width else name[: width - 1] + "…"
