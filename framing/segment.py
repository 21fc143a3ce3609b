"""Document -> paragraphs, with page furniture dropped and counted by reason.

Scraped pages put one paragraph per line (or per blank-line block) and surround the
article with menus, tickers, captions and lists of other stories. The rules that
recognise those are data in `rules.py`; this module only walks the lines.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from . import rules
from .records import Document, Paragraph, Segmented

# Each scan stops at the next bracket or delimiter, so a hostile line ("[[[[...", "_a _a _a ...") costs
# linear time, not quadratic. A link target may hold one level of parentheses (Wikipedia URLs).
_MD_URL = r"\((?:[^()]|\([^()]*\))*\)"
_MD_IMAGE = re.compile(r"!\[[^\][]*\]" + _MD_URL)
_MD_LINK = re.compile(r"\[([^\][]+)\]" + _MD_URL)
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(\S(?:(?:(?!\1).)*?\S)?)\1")
_SPACES = re.compile(r"\s{2,}|[^\S ]")  # only runs that are not already one space: no copy of clean text
_WORD_CAP = 1000  # words are counted up to this: every rule's threshold is far below, and a 50 MB line stays cheap
_EMBED_LEAD_BACK = 4  # an embedded post rarely runs to more than four lines above its credit


@dataclass
class _Line:
    text: str
    number: int  # 1-based line in the document text
    blank_before: bool
    reason: str | None = None


def segment(document: Document) -> Segmented:
    """Split a document into article paragraphs; say how many lines of furniture were dropped and why."""
    lines = _logical_lines(document.text, markdown=document.format == "md")
    _mark_furniture(lines)
    kept = [line for line in lines if line.reason is None]
    paragraphs = [Paragraph(doc=document.id, outlet=document.outlet, index=i, text=line.text, line=line.number,
                            publisher=document.publisher)
                  for i, line in enumerate(kept)]
    return Segmented(paragraphs=paragraphs, dropped=dict(Counter(line.reason for line in lines if line.reason)))


def _logical_lines(text: str, markdown: bool) -> list[_Line]:
    """Non-blank lines, with soft-wrapped continuations joined and markdown syntax removed."""
    lines: list[_Line] = []
    blank = True
    for number, raw in enumerate(text.split("\n"), start=1):
        stripped = _strip_markdown(raw) if markdown else raw
        stripped = _SPACES.sub(" ", stripped).strip()  # not split/join: no list of every word of a huge line
        if not stripped:
            blank = True
            continue
        if lines and not blank and _continues(lines[-1].text, stripped):
            lines[-1].text += " " + stripped
        else:
            lines.append(_Line(stripped, number, blank))
        blank = False
    return lines


def _continues(previous: str, line: str) -> bool:
    """A line that starts in lower case after a line that ended mid-sentence is a soft wrap."""
    return line[0].islower() and not rules.SENTENCE_END.search(previous) and not rules.BULLET.match(previous)


def _strip_markdown(line: str) -> str:
    line = _MD_IMAGE.sub("", line)
    line = _MD_LINK.sub(r"\1", line)
    line = _MD_EMPHASIS.sub(r"\2", line)
    if line.lstrip().startswith("#"):
        return "# " + line.lstrip("# \t")  # keep the mark: a markdown heading is never a paragraph
    return line.lstrip("> \t")


def _mark_furniture(lines: list[_Line]) -> None:
    block: str | None = None  # None, "tight" (until a blank line) or "loose" (until prose)
    for i, line in enumerate(lines):
        if block == "tight" and line.blank_before:
            block = None
        if block == "loose" and _is_prose(line.text):
            block = None
        if block:
            line.reason = "block"
            continue
        if rules.BLOCK_MARKERS.fullmatch(line.text.rstrip(" :")):
            line.reason = "block"
            following = lines[i + 1] if i + 1 < len(lines) else None
            block = "tight" if following and not following.blank_before else "loose"
            continue
        line.reason = line_reason(line.text)
    _mark_timestamped_headlines(lines)
    _mark_embed_leads(lines)


def line_reason(text: str) -> str | None:
    """Why a single line is furniture, or None when it may be an article paragraph."""
    words = _n_words(text)
    if text.startswith("# "):
        return "heading"
    if rules.BULLET.match(text) and words <= 8:
        return "menu"
    for reason, pattern, max_words in rules.LINE_RULES:
        if words <= max_words and pattern.fullmatch(text):
            return reason
    if not _has_letters(text):
        return "fragment"
    if not rules.SENTENCE_END.search(text) and words <= rules.HEADING_MAX_WORDS:
        return "heading"
    if words < rules.MIN_WORDS:
        return "fragment"
    return None


def _is_prose(text: str) -> bool:
    return bool(rules.SENTENCE_END.search(text)) and _n_words(text) >= rules.PROSE_MIN_WORDS \
        and line_reason(text) is None


def _n_words(text: str) -> int:
    """Number of words, counted up to _WORD_CAP + 1."""
    return len(text.split(maxsplit=_WORD_CAP))


def _has_letters(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def _mark_timestamped_headlines(lines: list[_Line]) -> None:
    """In a list of headlines each followed by its time, the headline goes with its timestamp."""
    for previous, line in zip(lines, lines[1:]):
        if line.reason in ("timestamp", "dateline") and not line.blank_before and previous.reason is None:
            previous.reason = "headline list"


def _mark_embed_leads(lines: list[_Line]) -> None:
    """An embedded post's credit line ends it; its text starts at a line opening with an emoji."""
    for i, line in enumerate(lines):
        if line.reason != "social" or "(@" not in line.text:
            continue
        for j in range(i - 1, max(-1, i - 1 - _EMBED_LEAD_BACK), -1):
            if _starts_with_symbol(lines[j].text):
                for k in range(j, i):
                    lines[k].reason = lines[k].reason or "social"
                break


def _starts_with_symbol(text: str) -> bool:
    return unicodedata.category(text[0]) in ("So", "Sk") or 0x1F1E6 <= ord(text[0]) <= 0x1F1FF
