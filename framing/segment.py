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
from .records import Document, DroppedLine, Paragraph, Segmented

# Each scan stops at the next bracket or delimiter, so a hostile line ("[[[[...", "_a _a _a ...") costs
# linear time, not quadratic. A link target may hold one level of parentheses (Wikipedia URLs).
_MD_URL = r"\((?:[^()]|\([^()]*\))*\)"
_MD_IMAGE = re.compile(r"!\[[^\][]*\]" + _MD_URL)
_MD_LINK = re.compile(r"\[([^\][]+)\]" + _MD_URL)
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(\S(?:(?:(?!\1).)*?\S)?)\1")
_SPACES = re.compile(r"\s{2,}|[^\S ]")  # only runs that are not already one space: no copy of clean text
_WORD_CAP = 1000  # words are counted up to this: every rule's threshold is far below, and a 50 MB line stays cheap
_EMBED_LEAD_BACK = 4
_CONTAINS_MAX_WORDS = max(max_words for _, _, max_words in rules.CONTAINS_RULES)
_END_CHARS = 12  # a sentence end is read from a line's last characters
_COHESION_CHARS = 5000  # content words are read from a line's first 5,000 characters: a 50 MB line stays cheap


@dataclass
class _Line:
    text: str
    number: int  # 1-based line in the document text
    blank_before: bool
    reason: str | None = None
    words: int = 0
    cohesion: float | None = None  # share of its content words found in other prose lines; None: too few to tell
    cohesion_floor: float = 0.0  # below this the line is off the document's topic
    prose: bool = False  # ends a sentence and has PROSE_MIN_WORDS words
    cue: bool = False  # carries a margin cue (newsletter, bio, the site describing itself)


def segment(document: Document) -> Segmented:
    """Split a document into article paragraphs; say which lines of furniture were dropped and why."""
    lines = _logical_lines(document.text, markdown=document.format == "md")
    _mark_furniture(lines)
    kept = [line for line in lines if line.reason is None]
    paragraphs = [Paragraph(doc=document.id, outlet=document.outlet, index=i, text=line.text, line=line.number,
                            publisher=document.publisher)
                  for i, line in enumerate(kept)]
    dropped = [DroppedLine(line=line.number, text=line.text, reason=line.reason) for line in lines if line.reason]
    prose = [line for line in lines if _reads_as_prose(line)]
    return Segmented(paragraphs=paragraphs, dropped=dict(Counter(d.reason for d in dropped)), dropped_lines=dropped,
                     n_prose_lines=len(prose), n_prose_dropped=sum(1 for line in prose if line.reason))


def _logical_lines(text: str, markdown: bool) -> list[_Line]:
    """Non-blank lines, with soft- and hard-wrapped continuations joined and markdown syntax removed."""
    raw_lines = [(_strip_markdown(raw) if markdown else raw) for raw in text.split("\n")]
    raw_lines = [_SPACES.sub(" ", raw).strip() for raw in raw_lines]  # not split/join: no word list of a huge line
    width = _wrap_width(raw_lines)
    lines: list[_Line] = []
    blank = True
    for number, stripped in enumerate(raw_lines, start=1):
        if not stripped:
            blank = True
            continue
        if lines and not blank and (_continues(lines[-1].text, stripped)
                                    or _hard_wrapped(lines[-1].text, raw_lines[number - 2], stripped, width)):
            lines[-1].text += " " + stripped
        else:
            lines.append(_Line(stripped, number, blank))
        blank = False
    return lines


def _continues(previous: str, line: str) -> bool:
    """A line that starts in lower case after a line that ended mid-sentence is a soft wrap."""
    return line[0].islower() and not rules.SENTENCE_END.search(previous) and not rules.BULLET.match(previous) \
        and _n_words(previous) >= rules.MIN_WORDS and line.split(" ", 1)[0].isalpha()  # not a user name


def _wrap_width(lines: list[str]) -> int | None:
    """The column a hard-wrapped text was wrapped at, or None when the text is not hard-wrapped."""
    lengths = sorted(len(line) for line in lines if line)
    if len(lengths) < rules.WRAP_MIN_LINES:
        return None
    width = lengths[int(len(lengths) * rules.WRAP_PERCENTILE)]
    near = sum(1 for n in lengths if rules.WRAP_FULL * width <= n <= width)
    if width > rules.WRAP_MAX_WIDTH or near < rules.WRAP_MIN_SHARE * len(lengths):
        return None
    return width


def _hard_wrapped(joined: str, previous: str, line: str, width: int | None) -> bool:
    """A full line followed by a line whose first word would not have fitted on it: the wrap of one paragraph."""
    if width is None or rules.BULLET.match(line) or rules.BULLET.match(previous) \
            or len(previous) > rules.WRAP_OVER * width:
        return False
    first_word = line.split(" ", 1)[0]
    # full: the next word would not have fitted, or the line stops mid-sentence before a word in lower case
    full = (len(previous) + 1 + len(first_word) > width and _has_letters(first_word)) \
        or (not _ends_sentence(previous) and not first_word[:1].isupper())
    return full and len(previous) >= rules.WRAP_FULL * width and not rules.BLOCK_MARKERS.fullmatch(joined.rstrip(" :"))


def _strip_markdown(line: str) -> str:
    line = _MD_IMAGE.sub("", line)
    line = _MD_LINK.sub(r"\1", line)
    line = _MD_EMPHASIS.sub(r"\2", line)
    if line.lstrip().startswith("#"):
        return "# " + line.lstrip("# \t")  # keep the mark: a markdown heading is never a paragraph
    return line.lstrip("> \t")


def _mark_furniture(lines: list[_Line]) -> None:
    """Name the reason of every furniture line; the lines left with no reason are the article."""
    for line in lines:
        line.words = _n_words(line.text)
        line.reason = line_reason(line.text)
        line.prose = _ends_sentence(line.text) and line.words >= rules.PROSE_MIN_WORDS
        head = line.text[:_COHESION_CHARS]
        line.cue = rules.MARGIN_CUES.search(head.lower()) is not None or rules.SELF_DESCRIPTION.match(head) is not None
    _mark_cohesion(lines)
    _mark_captions(lines)
    _mark_blocks(lines)
    _mark_timestamped_headlines(lines)
    _mark_embed_leads(lines)
    _mark_margins(lines)
    _mark_context(lines)


def _blank_separated(lines: list[_Line], before: int) -> bool:
    """Whether the page puts blank lines between its prose paragraphs (then a list without them stands out).

    Judged on the prose above line `before` when there is some: the list itself must not outvote the article.
    """
    prose = [line for line in lines[1:before] if _reads_as_prose(line)]
    if len(prose) < 2:
        prose = [line for line in lines[1:] if _reads_as_prose(line)]
    return bool(prose) and sum(line.blank_before for line in prose) >= rules.BLANK_SEPARATED * len(prose)


def _mark_captions(lines: list[_Line]) -> None:
    """A short line right above a credit line, with no blank line between, is the picture's caption."""
    for line, credit in zip(lines, lines[1:]):
        if line.reason is None and line.words < rules.STRONG_WORDS and not credit.blank_before \
                and credit.reason in ("caption", "heading", "boilerplate", "byline") \
                and credit.words <= rules.CREDIT_MAX_WORDS and rules.CREDIT.fullmatch(credit.text):
            line.reason = "caption"
            credit.reason = "caption"


def _mark_blocks(lines: list[_Line]) -> None:
    """A list marker opens a list of other stories; a tail marker opens comments or an author box."""
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = line.text.rstrip(" :")
        if line.reason not in (None, "heading", "share", "boilerplate"):
            i += 1
            continue
        if line.words <= rules.TAIL_MARKER_MAX_WORDS and rules.TAIL_MARKERS.fullmatch(marker):
            i = _mark_tail(lines, i)
        elif line.words <= rules.MARKER_MAX_WORDS and rules.BLOCK_MARKERS.fullmatch(marker):
            i = _mark_list(lines, i, _blank_separated(lines, i))
        else:
            i += 1


def _mark_list(lines: list[_Line], start: int, blank_separated: bool) -> int:
    """Mark the list opened at `start`; return the index of the first line after it."""
    lines[start].reason = "block"
    following = lines[start + 1] if start + 1 < len(lines) else None
    # tight: the items follow the marker with no blank line, on a page whose paragraphs have blank lines between
    # (two items at least: a subheading right above its paragraph is not a list)
    second = lines[start + 2] if start + 2 < len(lines) else None
    tight = blank_separated and following is not None and not following.blank_before \
        and (not _strong(following) or (second is not None and not second.blank_before))
    i = start + 1
    while i < len(lines):
        line = lines[i]
        if (tight and line.blank_before) or (not tight and _resumes(lines, i)):
            break
        line.reason = "block" if line.reason is None or line.reason == "heading" else line.reason
        i += 1
    return i


def _mark_tail(lines: list[_Line], start: int) -> int:
    """Mark comments or an author box from `start` until the article resumes (`_resumes`), or the end."""
    lines[start].reason = "tail"
    i = start + 1
    while i < len(lines):
        if _resumes(lines, i):
            break
        lines[i].reason = lines[i].reason or "tail"
        i += 1
    return i


def _resumes(lines: list[_Line], i: int) -> bool:
    """Whether the article visibly resumes at line i: a strong line and RESUME_LONG - 1 more long prose lines
    right after it, not one teaser that happens to be long, nor comments with a name and a date between them.
    (The lines after the first need not share the topic: a block must not swallow prose on that cue alone.)"""
    run = lines[i:i + rules.RESUME_LONG]
    return len(run) == rules.RESUME_LONG and _strong(run[0]) and all(_long_prose(line) for line in run[1:])


def _mark_margins(lines: list[_Line]) -> None:
    """Outside the article's extent keep only the prose attached to it; drop the margin's boxes and blurbs."""
    strong = [i for i, line in enumerate(lines) if _strong(line)]
    if not strong:
        return  # nothing shows where the article is: leave every line to the single-line rules
    for outward in (range(strong[0] - 1, -1, -1), range(strong[-1] + 1, len(lines))):
        crossed = 0
        for i in outward:
            line = lines[i]
            if line.reason is not None:
                crossed += line.reason != "heading" or not _reads_as_prose(line)
                continue
            if crossed > rules.MARGIN_GAP or line.cue \
                    or (crossed and _incoherent(line) and line.words < rules.STRONG_WORDS):
                line.reason = "margin"
                crossed += 1


def _mark_context(lines: list[_Line]) -> None:
    """A short sentence with furniture (not a heading) on both sides goes with its neighbours; so does one
    boxed in by furniture lines, with no blank line between, when one of them says why (a newsletter box)."""
    for i, line in enumerate(lines):
        if line.reason is not None or line.words >= rules.STRONG_WORDS:
            continue
        if 0 < i < len(lines) - 1:
            before, after = lines[i - 1], lines[i + 1]
            if before.reason and after.reason and not line.blank_before and not after.blank_before \
                    and (before.reason in rules.BOX_REASONS or after.reason in rules.BOX_REASONS):
                line.reason = "context"
                continue
        if line.words >= rules.NEAR_GOOD_WORDS:
            continue
        before = next((lines[j].reason for j in range(i - 1, -1, -1) if lines[j].reason != "heading"), "edge")
        after = next((lines[j].reason for j in range(i + 1, len(lines)) if lines[j].reason != "heading"), "edge")
        sides = (before, after)
        if all(side is not None for side in sides) and sides != ("edge", "edge") \
                and not any(side in ("edge", "fragment") for side in sides):
            line.reason = "context"


def _mark_cohesion(lines: list[_Line]) -> None:
    """Each prose line's share of content words that recur in another prose line of the document."""
    prose = [line for line in lines if line.reason is None]
    if len(prose) < rules.COHESION_MIN_LINES:
        return
    stems = [{word[:rules.STEM_CHARS] for word in rules.CONTENT_WORD.findall(line.text[:_COHESION_CHARS].lower())
              if word not in rules.STOPWORDS} for line in prose]
    counts = Counter(stem for line_stems in stems for stem in line_stems)
    for line, line_stems in zip(prose, stems):
        if len(line_stems) >= rules.COHESION_MIN_WORDS:
            line.cohesion = sum(1 for stem in line_stems if counts[stem] > 1) / len(line_stems)
    # a short article shares fewer words between its paragraphs: the floor follows the document's median
    values = sorted(line.cohesion for line in prose if line.cohesion is not None)
    if values:
        floor = min(rules.COHESION_MIN, rules.COHESION_RELATIVE * values[len(values) // 2])
        for line in prose:
            line.cohesion_floor = floor


def _strong(line: _Line) -> bool:
    """A line the article is surely made of: long prose that shares its topic and carries no cue of a blurb."""
    return line.reason is None and line.words >= rules.STRONG_WORDS and not _incoherent(line) \
        and (line.prose or line.words > rules.HEADING_MAX_WORDS) and not line.cue


def _long_prose(line: _Line) -> bool:
    return line.reason is None and line.words >= rules.STRONG_WORDS and not line.cue \
        and (line.prose or line.words > rules.HEADING_MAX_WORDS)


def _incoherent(line: _Line) -> bool:
    return line.cohesion is not None and line.cohesion < line.cohesion_floor


def _reads_as_prose(line: _Line) -> bool:
    return line.prose


def _ends_sentence(text: str) -> bool:
    return rules.SENTENCE_END.search(text[-_END_CHARS:]) is not None  # the pattern is anchored at the end


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
    lowered = text.lower() if words <= _CONTAINS_MAX_WORDS else ""
    for reason, pattern, max_words in rules.CONTAINS_RULES:
        if words <= max_words and pattern.search(lowered):
            return reason
    if not _has_letters(text):
        return "fragment"
    if not rules.SENTENCE_END.search(text) and words <= rules.HEADING_MAX_WORDS:
        return "heading"
    if words < rules.MIN_WORDS:
        return "fragment"
    return None


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
