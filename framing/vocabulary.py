"""Characteristic vocabulary per outlet: the words and phrases it uses far more than the other outlets.

Weighted log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008, "Fightin'
Words", section 3.5): for term w, outlet i and the pool of all other outlets r,

    delta_w = log((y_iw + a_w) / (n_i + a0 - y_iw - a_w)) - log((y_rw + a_w) / (n_r + a0 - y_rw - a_w))
    var_w  ~= 1 / (y_iw + a_w) + 1 / (y_rw + a_w)
    z_w     = delta_w / sqrt(var_w)

with the prior a_w = prior_scale * (count of w in the whole corpus), a0 = sum of a_w. The prior shrinks
rare terms towards the corpus rate, so an outlet's one-off word does not top its list; the z-score divides
by the estimate's own uncertainty, so frequent words with a modest lean still show.

Counting is separate from scoring: `VocabularyCounts` holds one `Counter` per outlet, fills while
streaming, merges with another (in any order: the result is the same), and can be pruned to the terms
seen at least twice, which bounds memory on a large archive.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

TOP_N = 15
PRIOR_SCALE = 1.0
MIN_TERM_COUNT = 2  # an outlet's term must occur this often in the outlet to be listed

# Letters, with inner apostrophes and hyphens ("win-win", "Xi's"); digits are not terms.
_WORD = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")

# Function words and news-writing filler, authored for this project: they carry no framing.
_STOP_TEXT = """
a about above after again against all also am an and any are aren't as at be because been before being below
between both but by can can't could couldn't did didn't do does doesn't doing don't down during each few for
from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself him
himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't my
myself no nor not of off on once only or other ought our ours ourselves out over own same shan't she she'd
she'll she's should shouldn't so some such than that that's the their theirs them themselves then there
there's these they they'd they'll they're they've this those through to too under until up very was wasn't we
we'd we'll we're we've were weren't what what's when when's where where's which while who who's whom why
why's with won't would wouldn't you you'd you'll you're you've your yours yourself yourselves
said says say saying told tells according also would will may might must shall one two three year years
mr mrs ms per cent percent via within without upon among amid however since though although yet just like
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens; curly apostrophes read as straight ones."""
    return [t.replace("’", "'") for t in _WORD.findall(text.lower())]


def terms(text: str) -> Counter:
    """Unigrams and bigrams of a text, stop words dropped: a bigram needs two content words in a row."""
    words = tokens(text)
    content = [w if w not in STOP_WORDS and len(w) > 1 else None for w in words]
    counts = Counter(w for w in content if w)
    counts.update(f"{a} {b}" for a, b in zip(content, content[1:]) if a and b)
    return counts


@dataclass
class VocabularyCounts:
    """One term counter per outlet, filled while streaming; merges with another."""

    per_outlet: dict[str, Counter] = field(default_factory=dict)

    def add(self, outlet: str, text: str) -> None:
        self.per_outlet.setdefault(outlet, Counter()).update(terms(text))

    def merge(self, other: VocabularyCounts) -> VocabularyCounts:
        merged = {outlet: Counter(counts) for outlet, counts in self.per_outlet.items()}
        for outlet, counts in other.per_outlet.items():
            merged.setdefault(outlet, Counter()).update(counts)
        return VocabularyCounts(merged)

    def prune(self, min_count: int = 2) -> VocabularyCounts:
        """Only the terms seen at least `min_count` times in all outlets together (bounded memory)."""
        total = corpus_counts(self.per_outlet)
        return VocabularyCounts({outlet: Counter({t: c for t, c in counts.items() if total[t] >= min_count})
                                 for outlet, counts in self.per_outlet.items()})


def corpus_counts(per_outlet: Mapping[str, Counter]) -> Counter:
    total: Counter = Counter()
    for counts in per_outlet.values():
        total.update(counts)
    return total


def log_odds(per_outlet: Mapping[str, Mapping[str, int]], prior_scale: float = PRIOR_SCALE,
             min_count: int = MIN_TERM_COUNT) -> dict[str, dict[str, float]]:
    """z-scores of each outlet's terms against the pool of the other outlets.

    Only terms the outlet uses at least `min_count` times are scored: a term it never uses cannot be
    characteristic of it. An outlet alone in the corpus has nothing to be compared with and gets {}.
    """
    total = corpus_counts(per_outlet)  # type: ignore[arg-type]
    n_total = sum(total.values())
    a0 = prior_scale * n_total
    out: dict[str, dict[str, float]] = {}
    for outlet, counts in per_outlet.items():
        n_i = sum(counts.values())
        n_r = n_total - n_i
        if n_r <= 0:
            out[outlet] = {}
            continue
        scores = {}
        for term, y_i in counts.items():
            if y_i < min_count:
                continue
            a_w = prior_scale * total[term]
            y_r = total[term] - y_i
            delta = (math.log((y_i + a_w) / (n_i + a0 - y_i - a_w))
                     - math.log((y_r + a_w) / (n_r + a0 - y_r - a_w)))
            scores[term] = delta / math.sqrt(1 / (y_i + a_w) + 1 / (y_r + a_w))
        out[outlet] = scores
    return out


def top_terms(per_outlet: Mapping[str, Mapping[str, int]], n: int = TOP_N, prior_scale: float = PRIOR_SCALE,
              min_count: int = MIN_TERM_COUNT, min_z: float = 0.0) -> dict[str, list[tuple[str, float]]]:
    """Per outlet its `n` most characteristic terms as (term, z), highest z first, ties by term."""
    scored = log_odds(per_outlet, prior_scale, min_count)
    return {outlet: [(term, round(z, 3)) for term, z in
                     heapq.nsmallest(n, ((t, z) for t, z in scores.items() if z > min_z),
                                     key=lambda item: (-item[1], item[0]))]
            for outlet, scores in sorted(scored.items())}


def count_texts(pairs: Iterable[tuple[str, str]]) -> VocabularyCounts:
    """(outlet, text) pairs to counts: the non-streaming shortcut."""
    counts = VocabularyCounts()
    for outlet, text in pairs:
        counts.add(outlet, text)
    return counts
