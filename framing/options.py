"""Options of the scoring run, as frozen values: every default lives here, and the CLI reads it from here.

A light module (no NumPy, no scikit-learn), so that `framing --help` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .readers import BadLines, ReadOptions

DEFAULT_MODEL = Path("models/default")
DEFAULT_LABELS = Path("labels")
DEFAULT_OUT = Path("reports")


__all__ = ["BadLines", "CacheOptions", "ReadOptions", "ScoreOptions"]


@dataclass(frozen=True)
class CacheOptions:
    enabled: bool = True
    folder: Path | None = None  # None: FRAMING_CACHE_DIR, else the user's cache folder


@dataclass(frozen=True)
class ScoreOptions:
    """How to score."""

    read: ReadOptions = ReadOptions()
    cache: CacheOptions = CacheOptions()
    batch_size: int = 512  # paragraphs embedded together: bounds memory, lets the encoder sort by length
    seed: int = 0
    labels: Path | None = DEFAULT_LABELS  # never written into, whatever the output folder
    method: str | None = None  # how shares are corrected (framing.prevalence.Method); None: the default
    baseline: str | None = None  # compare every outlet with this one, instead of each pair or each vs the rest
    include_off_topic: bool = False  # count paragraphs the relevance stage marks off_topic in the shares
    include_other_languages: bool = False  # count non-English paragraphs even with an English-only model
    fast: bool = False  # the cascade: a static model for every paragraph, MiniLM for the uncertain ones
    fast_threshold: float | None = None  # the cascade's margin threshold instead of the trained one (0: static alone)
    fast_budget: float | None = None  # or the threshold that re-scored this share of the real rows at training

    @property
    def uses_fast_path(self) -> bool:
        return self.fast or self.fast_threshold is not None or self.fast_budget is not None
