"""segment: Document -> article paragraphs, with page furniture dropped and counted by reason.

Every furniture regression checks both directions: the furniture is gone AND a named body
sentence next to it is kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framing.readers import read_documents
from framing.records import Document
from framing.segment import line_reason, segment

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_001 = "001_d74d3e3d1cd4878b.txt"
SEED_002 = "002_c5c4c158f6d558ed.txt"
SEED_003 = "003_83c0fac24c7e58fd.txt"


def seed_paragraphs(name: str) -> list[str]:
    (document,) = read_documents([SEEDS / name])
    return [p.text for p in segment(document).paragraphs]


def labelled_paragraphs(name: str) -> list[str]:
    """The gold paragraphs of one seed document, whitespace-normalised as the labelled set is read."""
    records = [json.loads(line) for line in (ROOT / "labels" / "seeds.jsonl").read_text("utf-8").splitlines()
               if line.strip()]
    return [" ".join(r["text"].split()) for r in records if r["doc"] == name]


@pytest.fixture(scope="module")
def seed_001() -> list[str]:
    return seed_paragraphs(SEED_001)


@pytest.fixture(scope="module")
def seed_003() -> list[str]:
    return seed_paragraphs(SEED_003)


def kept(paragraphs: list[str], fragment: str) -> bool:
    """True when one kept paragraph contains `fragment`."""
    return any(fragment in p for p in paragraphs)


# --- the two seed furniture cases ------------------------------------------------------------------

@pytest.mark.parametrize("name", [SEED_001, SEED_003])
def test_seed_paragraphs_are_exactly_the_labelled_ones(name):
    expected = labelled_paragraphs(name)
    assert len(expected) > 10  # the gold set is really there
    assert seed_paragraphs(name) == expected  # every article paragraph, no furniture, same order


# --- seed 001 (Al Mayadeen English): named regressions ----------------------------------------------

def test_001_breaking_ticker_dropped_first_body_paragraph_kept(seed_001):
    assert not kept(seed_001, "Israeli media reported explosions")
    assert not kept(seed_001, "An earthquake strikes the Turkish city of Konya")
    assert not kept(seed_001, "Pezeshkian: We believe in negotiations")
    assert seed_001[1].startswith("The development of defense cooperation between Russia and China effectively "
                                  "strengthens regional and global security")


def test_001_menus_dropped_standfirst_kept(seed_001):
    for menu in ("Politics", "Economy", "Arts&Culture", "Infographs", "In Pictures", "Slogan", "Al Mayadeen English"):
        assert not kept(seed_001, menu), menu
    assert seed_001[0].startswith("Russian President Vladimir Putin and Chinese President Xi Jinping officially "
                                  "ratify a joint declaration")


def test_001_min_read_byline_and_headline_dropped(seed_001):
    assert not kept(seed_001, "16 Min Read")
    assert not kept(seed_001, "By Al Mayadeen English")
    assert not kept(seed_001, "Source: Agencies")
    assert "Russia, China defense coop. effectively strengthens global security" not in seed_001
    assert kept(seed_001, "officially ratify a joint declaration, underscoring their commitment")


def test_001_image_credit_caption_dropped(seed_001):
    assert not kept(seed_001, "(@EmbassyofRussia / X)")
    assert not kept(seed_001, "(@EmbassyofRussia/X)")
    assert kept(seed_001, "a joint statement published by the Kremlin on Thursday read.")


def test_001_related_news_headlines_dropped_next_paragraph_kept(seed_001):
    assert not kept(seed_001, "Related News")
    assert not kept(seed_001, "France to impose handling fee on low-value Chinese packages")
    assert not kept(seed_001, "Gold slips below $3,300")
    # the paragraphs on both sides of the block
    assert kept(seed_001, "In this regard, Russia and China said they supported a review of the Treaty")
    assert kept(seed_001, "They also agreed to promote the use of the Northern Sea Route")


def test_001_embedded_tweet_dropped_paragraphs_around_it_kept(seed_001):
    for piece in ("pic.twitter.com", "President of Russia Vladimir Putin arrived in Beijing",
                  "Vladimir Putin’s state visit to China will last two days", "(@EmbassyofRussia) May 16, 2024",
                  "Russian Embassy in South Africa"):
        assert not kept(seed_001, piece), piece
    before = seed_001.index(next(p for p in seed_001 if p.startswith("At a joint press briefing on Thursday, Xi")))
    assert seed_001[before + 1].startswith("The Chinese President emphasized that China and Russia will collaborate")


def test_001_read_next_and_tags_dropped_last_paragraph_kept(seed_001):
    assert not kept(seed_001, "Read next: Putin, Xi launch")
    assert not kept(seed_001, "World Order")
    assert "strategic partnership" not in seed_001 and "Xi Jinping" not in seed_001
    assert seed_001[-1] == ("It is worth noting that Russia and China formally agreed upon a unified concept for "
                            "the development of Bolshoy Ussuriysky Island.")


def test_001_most_read_block_and_its_ap_captions_dropped(seed_001):
    for piece in ("Most Read", "Trump cut off contact with Netanyahu", "Yemen announces hypersonic missile strike",
                  "A boy draped in a Palestinian flag carries a mock rocket",  # caption ending "(AP)"
                  "President Donald Trump, left, greets Israeli Prime Minister", "Gaza casualty figures",
                  "Susan Sarandon", "All Rights Reserved", "Privacy Policy"):
        assert not kept(seed_001, piece), piece
    assert kept(seed_001, "Bolshoy Ussuriysky Island")


def test_001_section_subheadings_dropped_their_paragraphs_kept(seed_001):
    for heading in ("Ukraine", "Latin America", "Syria, Libya", "Energy sector", "Bilateral relations"):
        assert heading not in seed_001
    assert kept(seed_001, "Russia positively assesses China's objective and unbiased position")
    assert kept(seed_001, "Russia and China have agreed to continue strengthening their strategic energy")


# --- seed 002 (Global Times): the photo caption in the dateline ----------------------------------------

def test_002_photo_xinhua_caption_dropped_lede_kept():
    paragraphs = seed_paragraphs(SEED_002)
    assert not kept(paragraphs, "Photo: Xinhua")
    assert not kept(paragraphs, "greets Russian Foreign Minister Sergei Lavrov at the Great Hall")
    assert paragraphs[0].startswith("Chinese President Xi Jinping met with Russian Foreign Minister Sergei Lavrov "
                                    "in Beijing on Tuesday.")


# --- seed 003 (Ednews): dateline, author bio, news-line ticker, soft wrap ----------------------------

def test_003_dateline_and_author_bio_dropped_lede_kept(seed_003):
    for piece in ("Politics 10:00 18.06.2024", "Pak-China Corridor of Knowledge", "Executive Director:",
                  "Regional Expert:", "China-Russia Strategic Partnership and Way Forward"):
        assert not kept(seed_003, piece), piece
    assert seed_003[0].startswith("China and Russia's strategic partnership represents an axis of peace")


def test_003_news_line_ticker_dropped_last_paragraph_kept(seed_003):
    for piece in ("News line", "Azerbaijan weather forecast", "Tesla to use humanoid robots", "14:01 23.07.2024",
                  "Trump on Biden's withdrawal", "Biden drops out of 2024 US presidential election race",
                  "22:22 21.07.2024", "Hajiyev: Baku offers Yerevan"):
        assert not kept(seed_003, piece), piece
    assert seed_003[-1].endswith("build \"small yard, high fence\" should be discouraged and discarded.")


def test_003_soft_wrapped_paragraph_is_joined_into_one(seed_003):
    joined = [p for p in seed_003 if p.startswith("It has become a model for the development of partnerships")]
    assert len(joined) == 1
    assert "Thus every effort of imposing so-called" in joined[0]
    assert "promote de-globalization and group politics" in joined[0]
    assert not any(p.startswith("promote de-globalization") for p in seed_003)


def test_soft_wrap_is_not_joined_after_a_finished_sentence():
    text = ("The minister arrived in Geneva on Tuesday for two days of talks.\n"
            "officials said the agenda had not been agreed in advance of the meeting.\n")
    assert len(segment(Document(id="d", text=text)).paragraphs) == 2


# --- drop counts, markdown, fragments ---------------------------------------------------------------

FURNISHED = """Home
• World
• Business
• Sport

Talks end without a deal

By Jane Smith
16 Min Read

Negotiators from both countries left Geneva on Tuesday without agreeing on a ceasefire, officials said.

Share
Tweet

Protesters gather outside the venue on Monday. (AP)

The next round is expected in March, according to a statement released after the talks.

Photo: Xinhua

Read more: Five things to know about the talks

OK then.
2024-03-05 10:00

Copyright 2024 The Daily Example. All rights reserved.
"""


def test_drop_counts_are_reported_per_reason():
    result = segment(Document(id="doc-1", text=FURNISHED, outlet="Example"))
    assert [p.text for p in result.paragraphs] == [
        "Negotiators from both countries left Geneva on Tuesday without agreeing on a ceasefire, officials said.",
        "The next round is expected in March, according to a statement released after the talks.",
    ]
    assert result.dropped == {"heading": 2, "menu": 3, "byline": 2, "share": 2, "caption": 2, "related": 1,
                              "fragment": 1, "dateline": 1, "boilerplate": 1}
    assert result.n_dropped == 15


def test_caption_ending_ap_dropped_between_kept_paragraphs():
    result = segment(Document(id="d", text=FURNISHED))
    assert not kept([p.text for p in result.paragraphs], "(AP)")
    assert result.dropped["caption"] == 2  # "... (AP)" and "Photo: Xinhua"
    assert line_reason("Protesters gather outside the venue on Monday. (AP)") == "caption"
    assert line_reason("Xi greets Lavrov at the Great Hall of the People in Beijing. Photo: Xinhua") == "caption"


def test_paragraphs_carry_document_outlet_index_and_line():
    result = segment(Document(id="doc-1", text=FURNISHED, outlet="Example", publisher="Wire"))
    first, second = result.paragraphs
    assert (first.doc, first.outlet, first.publisher, first.index, first.line) == ("doc-1", "Example", "Wire", 0, 11)
    assert (second.index, second.line) == (1, 18)


def test_markdown_headings_links_images_and_emphasis():
    text = """# Big Title

![A photo of the harbour](harbour.jpg)

The [port authority](https://example.org/pa) said on **Tuesday** that shipping would resume within _days_.

## What happens next

> Officials expect the backlog of waiting vessels to clear by the `end` of the week.

* [Home](/)
* [World](/world)
"""
    result = segment(Document(id="m", text=text, format="md"))
    assert [p.text for p in result.paragraphs] == [
        "The port authority said on Tuesday that shipping would resume within days.",
        "Officials expect the backlog of waiting vessels to clear by the end of the week.",
    ]
    assert result.dropped == {"heading": 2, "menu": 2}


@pytest.mark.parametrize("fragment", ["OK then.", "Yes.", "12,345", "—", "Click here."])
def test_very_short_fragments_dropped_body_kept(fragment):
    body = "The ministers agreed to meet again in March, according to a statement released after the talks."
    result = segment(Document(id="f", text=f"{body}\n\n{fragment}\n\n{body.replace('March', 'April')}\n"))
    assert [p.text for p in result.paragraphs] == [body, body.replace("March", "April")]
    assert result.n_dropped == 1


def test_empty_document_gives_no_paragraphs():
    result = segment(Document(id="e", text="\n \n\t\n"))
    assert result.paragraphs == [] and result.dropped == {}
