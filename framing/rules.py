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

# Lines that open a list of furniture (other stories, tickers, tags). Matched case-insensitively against a
# whole line. The list runs to the next blank line when the page separates its paragraphs by blank lines and
# the list's items are not; otherwise it runs until the article visibly resumes (RESUME_LONG, below).
BLOCK_MARKERS = re.compile(
    r"(breaking( news)?|news ?line|latest( news| stories| updates)?|most (read|popular|viewed|shared)"
    r"|read (next|more|also)|also read|related( news| articles| stories| coverage| content| posts)?"
    r"|more (stories|news|from [\w .&'-]{1,40})|top (stories|news)|trending( now| news)?|recommended( for you)?"
    r"|you (may|might) (also )?like|editor'?s'? (picks|choice)|popular( now| stories)?|in other news"
    r"|don'?t miss|what to read next|further reading|see also|coverage|tags?|topics|key events|more on this story"
    r"|you may have missed|recommended reading|more in [\w .&'-]{1,40}|latest from [\w .&'-]{1,40}"
    r"|popular (in|on) [\w .&'-]{1,40}|most (read|popular|viewed) (in|on) [\w .&'-]{1,40}"
    r"|(?:related|more|also|latest|popular|trending|recommended|top|other) (?:reading|in|on|from|stories|articles"
    r"|news|posts|headlines|coverage)(?: [\w .&'-]{1,40})?"
    r"|key (?:points|facts|takeaways)|at a glance|in brief|fast facts|quick facts"
    r"|sponsored(?: content| post| links)?|promoted(?: stories| content)?|partner content|paid (?:post|content))\s*:?",
    re.I)

# Lines that open the page's tail: comments, author boxes. Everything after goes, until the article visibly
# resumes: RESUME_LONG long prose lines in a row, the first strong, no furniture between (a newsletter box
# mid-article).
TAIL_MARKERS = re.compile(
    r"(?:\d+\s+)?(?:comments?|responses?|replies)(?:\s*\(\d+\))?|join the (?:conversation|discussion|debate)"
    r"(?:\s*\(\d+\))?|leave a (?:comment|reply)|add (?:a|your) comment|post a comment|show comments"
    r"|reader comments|have your say|discussion|about the authors?|more about the authors?|author bio"
    r"|(?:view|show|load|read) (?:all )?\d* ?comments?"
    r"|\d+ (?:thoughts?|responses?|repl(?:y|ies)|comments?) (?:on|to) .{1,200}",
    re.I)
RESUME_LONG = 2
TAIL_MARKER_MAX_WORDS = 40

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
    # wire credits at the foot of a story: "Reporting by ...; editing by ..."
    ("byline", re.compile(r"(?:additional )?(?:reporting|writing|editing|edited|compiled|translated) by\s.{2,300}"
                          r"|(?:with )?(?:additional )?reporting (?:from|by) .{2,200}", re.I), 45),
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
    # a ticker line: a time, then a headline that does not end a sentence ("07:31 Japan's exports rise ...")
    ("ticker", re.compile(rf"(?:{_TIME}|\d+\s*(?:m|h|min|mins|hrs?)\s+ago)\s+[^.!?]{{3,160}}", re.I), 20),
    ("placeholder", re.compile(r"undefined|null|nan|loading\W*|advertisement\W*|ad\W*", re.I), 3),
]

# (reason, pattern, most words): the same, for a phrase found anywhere in the line (searched, not matched,
# so that a long line costs one scan), written in lower case and searched in the lower-cased line (a case-blind
# search of many alternatives is three times slower). Applied after LINE_RULES, in order.
CONTAINS_RULES: list[tuple[str, re.Pattern[str], int]] = [
    # template placeholders a page was published with: "{{author_name}}", "%%footer_links%%"
    ("placeholder", re.compile(r"\{\{[^{}]{0,80}\}\}|\{%[^{}]{0,80}%\}|\$\{\w{1,40}\}|%%?[a-z_]{3,40}%%?"
                               r"|\[object object\]|lorem ipsum"), 30),
    # comment-form, cookie-box, newsletter, paywall and syndication notices
    ("boilerplate", re.compile(r"your email address will not be published|required fields are marked"
                               r"|comments are (?:moderated|closed|open|reviewed)"
                               r"|community (?:guidelines|standards|rules)"
                               r"|(?:we|and our partners|this (?:site|website)) uses? cookies"
                               r"|cookie (?:policy|settings)"
                               r"|(?:log|sign) in to (?:comment|reply|continue)|you can unsubscribe"
                               r"|(?:turn on|enable) javascript|your browser (?:does not|doesn't|is not)"
                               r"|our standards:|quotes (?:are )?delayed|free (?:weekly|daily) newsletter"
                               r"|(?:delivered|straight|direct) to your inbox"
                               r"|(?:already|become) a (?:subscriber|member)"
                               r"|for subscribers only|free articles? (?:left|remaining)|reached your (?:limit|monthly)"
                               r"|(?:first|originally) (?:appeared|published) (?:in|on|by)"
                               r"|republished (?:here )?(?:with|under)|^disclaimer:|views expressed (?:are|in|here)"
                               r"|stay up to date with"
                               r"|follow (?:us|[\w ]{2,40}) on (?:our )?(?:whatsapp|telegram|x|twitter|facebook"
                               r"|instagram|google news|linkedin|youtube)"), 60),
    ("boilerplate", re.compile(r"all rights reserved|©|copyright \d{4}|privacy policy|terms of (use|service)"
                               r"|cookie|subscribe|sign up for|newsletter|advertisement|sponsored"
                               r"|download (our|the) app|about us|contact us"), 25),
]

# A logical line ends a sentence when it ends like one; lines that do not, and are short, are headings.
SENTENCE_END = re.compile(r"(?:[.!?…]|\.\.\.)[\"”’'»)\]]*$|[\"”»]$")
HEADING_MAX_WORDS = 30
MIN_WORDS = 6  # fewer words than this is a fragment, not a paragraph
PROSE_MIN_WORDS = 12  # a line this long that ends a sentence closes a block of furniture
BULLET = re.compile(r"^\s*(?:[•·▪●◦‣∙*+-]|\d+[.)])\s+")

# --- context: lines that only the page around them shows to be furniture ---------------------------------

# A `strong` line is one the article is surely made of: prose of at least STRONG_WORDS words whose content
# words recur elsewhere in the document (COHESION_MIN of them, when the document has COHESION_MIN_LINES prose
# lines to compare with). The article's extent runs from the first strong line to the last.
STRONG_WORDS = 20
COHESION_MIN = 0.2
COHESION_RELATIVE = 0.5  # ... or half the document's median cohesion, when that is lower (a short article)
COHESION_MIN_LINES = 4
CONTENT_WORD = re.compile(r"[^\W\d_]{3,}")
STEM_CHARS = 6  # content words compare by their first six letters: "sanction", "sanctions", "sanctioned"

# Outside the article's extent a prose line stays only while it is attached to the article: reached from the
# extent across at most MARGIN_GAP furniture lines. Further out (a footer's "All quotes delayed 15 minutes.",
# a site's description of itself) it goes as "margin", and so does a margin line that matches MARGIN_CUES.
MARGIN_GAP = 2
MARGIN_CUES = re.compile(  # searched in the lower-cased line; every repeat is bounded: linear time on a long line
    r"\b(?:cookies?|newsletters?|subscri(?:be|ption)s?|sign[ -]?up|inbox|e-?mail address"
    r"|privacy (?:policy|notice|settings)|advertise with us|comments? (?:are|policy|section)|post (?:a|your) comment"
    r"|log in|sign in|donate (?:to|now|today)|support (?:our|independent) journalism|download (?:our|the) app"
    r"|send (?:us )?(?:your|a) (?:pictures|photos|tips?|stories|story|letter)|join [\d,.]+ (?:readers|subscribers))\b"
    r"|(?<!\S)[^\s@]{1,64}@[^\s@]{1,64}\.[a-z]{2,}")
# ... and a line that opens like an author's bio or the site describing itself ("Jane Roe is a senior
# correspondent ...", "The Courier is an independent weekly newspaper ...", "She writes ..."). Matched at the start.
SELF_DESCRIPTION = re.compile(
    r"[A-Z][\w.'’&-]*(?: [A-Z][\w.'’&-]*){0,5},? (?:is|was|has been) (?:a|an|the) (?:[\w,’'-]+ ){0,12}"
    r"(?:correspondent|reporter|editor|writer|journalist|columnist|contributor|fellow|analyst|author|researcher"
    r"|professor|newspaper|news(?:paper| agency| site| website| outlet| service| organi[sz]ation)|magazine"
    r"|publication|broadcaster|channel|agency|network|weekly|daily)\b"
    r"|[A-Z][\w.'’&-]*(?: [A-Z][\w.'’&-]*){0,5} (?:has served|has covered|publishes|covers|writes)\b"
    r"|[A-Z][\w.'’&-]*(?: [A-Z][\w.'’&-]*){0,5} (?:is|was) (?:a|an|the) .{0,120}\b(?:writes|covers|column)"
    r"|(?:[Ss]he|[Hh]e|[Tt]hey) (?:writes|covers|is the author of|previously (?:worked|reported|served)|lives in)\b")

# Inside the extent, a near-good line (a sentence of fewer than NEAR_GOOD_WORDS words) between two pieces of
# furniture that are not headings (a "Sign up" box: "Free weekly newsletter" / "... / "Enter your email") goes
# as "context"; headings do not count, since an article's subheadings sit next to its short paragraphs.
NEAR_GOOD_WORDS = 15
# ... and a line shorter than STRONG_WORDS whose two neighbours, with no blank line between, are furniture and
# one of them says why (a box: "Get our Sunday letter" / its blurb / "Subscribe").
BOX_REASONS = frozenset({"boilerplate", "share", "tail", "block", "related", "byline", "social", "margin"})

# A caption is a short line right above its credit ("Photo: ...", "© Name / Site", "Name for Site").
CREDIT = re.compile(r"(?!.*\b(?:19|20)\d\d\b)"  # a footer's "(c) 2024 ..." is no credit
                    r"(?:(?:©|\(c\)|photo(?:graph)?s?\b|image\b|picture\b|credit\b|illustration\b).{0,80}"
                    r"|(?-i:[A-Z][\w.'’-]+(?: [A-Z][\w.'’-]+){1,3}) (?:for|/) .{2,50})", re.I)
CREDIT_MAX_WORDS = 10

# A text is hard-wrapped (a fixed column, as in e-mail and some dumps) when, among at least WRAP_MIN_LINES
# lines, the WRAP_PERCENTILE line length is at most WRAP_MAX_WIDTH characters and WRAP_MIN_SHARE of the lines
# are full (at least WRAP_FULL of that width). A full line then continues on the next one.
WRAP_MIN_LINES = 8
WRAP_PERCENTILE = 0.9
WRAP_MAX_WIDTH = 100
WRAP_FULL = 0.75
WRAP_OVER = 1.1  # the width is a percentile: a wrapped line may run a little past it
WRAP_MIN_SHARE = 0.3

# A page is blank-separated when BLANK_SEPARATED of its prose lines have a blank line before them.
BLANK_SEPARATED = 0.6
MARKER_MAX_WORDS = 6  # a marker line is a label, not a sentence
COHESION_MIN_WORDS = 4  # a line with fewer content words says too little to judge its cohesion

# Function words of English, for content words; they are never evidence that two lines share a topic.
STOPWORDS = frozenset([
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "as", "at",
    "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do",
    "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he",
    "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its",
    "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once",
    "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some",
    "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this",
    "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where",
    "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself",
    "yourselves", "said", "says", "say", "told", "one", "two", "three", "new", "last", "first", "year", "years",
    "week", "day", "days", "time", "many", "much", "may", "might", "must", "shall", "since", "still", "yet"
])
