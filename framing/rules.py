"""Page furniture, as data. The segmenter applies these in order; the first match names the reason.

Patterns match a whole logical line after stripping. Order matters: specific furniture
(datelines, captions, embeds) is recognised before the generic shape rules (headings,
fragments) so that the report says why a line went.
"""

from __future__ import annotations

import re

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE = (rf"(?:\d{{1,2}}[./-]\d{{1,2}}[./-]\d{{2,4}}|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}} {_MONTH},? \d{{4}}"
         rf"|{_MONTH} \d{{1,2}},? \d{{4}})")
_TIME = r"\d{1,2}:\d{2}(?::\d{2})?(?:\s?[ap]\.?m\.?)?(?:\s?(?:gmt|utc|[a-z]{2,4}t))?"

# Lines that open a block of furniture (lists of other stories, tickers). Matched case-insensitively.
BLOCK_MARKERS = re.compile(
    r"(breaking( news)?|news ?line|latest( news| stories| updates)?|most (read|popular|viewed|shared)"
    r"|read (next|more|also)|also read|related( news| articles| stories| coverage| content| posts)?"
    r"|more (stories|news|from [\w .&'-]{1,40})|top (stories|news)|trending( now| news)?|recommended( for you)?"
    r"|you (may|might) (also )?like|editor'?s'? (picks|choice)|popular( now| stories)?|in other news"
    r"|don'?t miss|what to read next|further reading|see also|coverage|tags?|topics)\s*:?",
    re.I)

# (reason, pattern, most words a line may have to count): single lines, in order. The word cap
# keeps a rule from eating a body sentence that happens to start like furniture.
LINE_RULES: list[tuple[str, re.Pattern[str], int]] = [
    # " date 2024-05-17 (MENAFN- Khaama Press)", "Politics 10:00 18.06.2024", "16 May 2024 16:32"
    ("dateline", re.compile(rf"(?:date\s+)?{_DATE}\s*(?:\(.{{1,60}}\))?|(?:[\w&]+\s+)?{_TIME}\s+{_DATE}"
                            rf"|{_DATE},?\s+{_TIME}|(?:updated|published|posted)\s*(?::|on)\s*.{{0,40}}", re.I), 12),
    ("timestamp", re.compile(rf"{_TIME}|\d+\s+(?:min(?:ute)?s?|hours?|days?)\s+ago|(?:yesterday|today)"
                             rf"(?:,? {_TIME})?", re.I), 6),
    # "Read next: ...", "READ MORE: ..." inline links to other stories
    ("related", re.compile(r"(read (next|more|also)|also read|see also|related|watch|listen)\s*:\s*.+", re.I), 30),
    # tweet and post embeds
    ("social", re.compile(r".*(pic\.twitter\.com/\S+|t\.co/\S+).*|[—–-]\s*.{1,80}\(@\w{1,30}\)\s*"
                          rf"{_DATE}.*|view this post on (instagram|facebook|x)|a post shared by .*", re.I), 80),
    ("byline", re.compile(r"(?:by|written by|reporting by|edited by|author|reporter|source)\s*:?"
                          r"\s+[\w ,'&@/-]{2,80}|\d+\s+min(?:ute)?s?\s+read|[\w .'-]{2,40}\s+\|\s+"
                          r"[\w .'-]{2,40}", re.I), 12),
    # image captions and credits: "... Photo: Xinhua", "... (AP)", "... (@EmbassyofRussia / X)"
    ("caption", re.compile(r".*(?:\b(?:photo|image|picture|credit)s?\s*(?::|/)\s*[\w .,/&-]{1,40}"
                           r"|\((?:ap|afp|reuters|getty images|epa|xinhua|tass|sputnik|ria novosti|anadolu|ap photo"
                           r"|[^()]{0,40}@\w+[^()]{0,20}|[^()]{0,40}/\s*(?:x|twitter|instagram|telegram))\s*\)"
                           r"|\b(?:photo|image)s?\s*courtesy of .{1,60})\.?", re.I), 80),
    ("share", re.compile(r"(?:share|share this( article| story)?|tweet|facebook|twitter|x|whatsapp|telegram|linkedin"
                         r"|reddit|email|e-mail|print|copy link|comments?|\d+ comments?|follow us.*"
                         r"|share on \w+|[a-z]{1,2})\s*", re.I), 4),
    ("boilerplate", re.compile(r".*(?:all rights reserved|©|copyright \d{4}|privacy policy|terms of (use|service)"
                               r"|cookie|subscribe|sign up for|newsletter|advertisement|sponsored"
                               r"|download (our|the) app|about us|contact us).*", re.I), 25),
]

# A logical line ends a sentence when it ends like one; lines that do not, and are short, are headings.
SENTENCE_END = re.compile(r"(?:[.!?…]|\.\.\.)[\"”’'»)\]]*$|[\"”»]$")
HEADING_MAX_WORDS = 20
MIN_WORDS = 6  # fewer words than this is a fragment, not a paragraph
PROSE_MIN_WORDS = 12  # a line this long that ends a sentence closes a block of furniture
BULLET = re.compile(r"^\s*(?:[•·▪●◦‣∙*+-]|\d+[.)])\s+")
