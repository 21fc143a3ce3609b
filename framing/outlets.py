"""Which outlet published a document, when no manifest or record says so.

Rules are data: mastheads (a line near the top that is the outlet's name) and
credits (a dateline naming the syndicator and the original publisher). Spellings
are data too: `canonical_outlet` folds case and whitespace variants of a name onto
one spelling, with an alias table the caller builds (see readers.read_aliases).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

UNKNOWN = "unknown"
MASTHEAD_LINES = 8  # a masthead sits in the first few non-blank lines

# (pattern matched against a whole stripped line near the top, outlet name)
MASTHEADS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"al mayadeen( english)?", re.I), "Al Mayadeen"),
    (re.compile(r"global ?times", re.I), "Global Times"),
    (re.compile(r"(cgtn|china global television network)", re.I), "CGTN"),
    (re.compile(r"china daily", re.I), "China Daily"),
    (re.compile(r"xinhua( news agency)?|xinhuanet", re.I), "Xinhua"),
    (re.compile(r"(rt|russia today)( news)?", re.I), "RT"),
    (re.compile(r"tass( russian news agency)?", re.I), "TASS"),
    (re.compile(r"sputnik( international| globe)?", re.I), "Sputnik"),
    (re.compile(r"press ?tv", re.I), "Press TV"),
]

# Syndication credits: (pattern searched in the first lines, outlet); group "publisher" names
# the original publisher, which is kept beside the syndicator.
CREDITS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\(MENAFN\s*-\s*(?P<publisher>[^)]+?)\s*\)"), "MENAFN"),
]


# The spellings the rules above produce: a run that meets "GLOBAL TIMES" reports it as "Global Times".
KNOWN_OUTLETS: tuple[str, ...] = tuple(dict.fromkeys([UNKNOWN, *(outlet for _, outlet in MASTHEADS + CREDITS)]))


def outlet_key(name: str) -> str:
    """What two spellings of one outlet share: compatibility-normalised, case-folded, single-spaced."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def canonical_outlet(name: str, aliases: Mapping[str, str]) -> str:
    """The canonical spelling of `name`: `aliases` maps outlet_key(variant) -> spelling.

    A name the table does not know comes back with its whitespace tidied, so that
    "Global  Times " and "Global Times" are one outlet even without a table.
    """
    tidy = " ".join(name.split())
    return aliases.get(outlet_key(tidy), tidy)


def attribute_outlet(text: str, declared: str | None = None,
                     site_name: str | None = None) -> tuple[str, str | None]:
    """Return (outlet, original publisher or None): declared, else credit, masthead, site name.

    A syndication credit names the original publisher even when the outlet is declared.
    """
    head = [line.strip() for line in text.split("\n", 200)[:200] if line.strip()][:MASTHEAD_LINES]
    for pattern, outlet in CREDITS:
        for line in head:
            match = pattern.search(line)
            if match:
                return (declared or "").strip() or outlet, match.group("publisher").strip()
    if declared and declared.strip():
        return declared.strip(), None
    for pattern, outlet in MASTHEADS:
        if any(pattern.fullmatch(line) for line in head):
            return outlet, None
    if site_name and site_name.strip():
        return site_name.strip(), None
    return UNKNOWN, None
