"""The furniture remover on pages no rule was written for: context, not single lines, decides.

Pages under tests/data/ are authored for these tests. Every test checks both directions: the furniture
is gone AND the article prose next to it is kept.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from framing.readers import read_documents
from framing.records import Document, DroppedLine, Paragraph, Segmented
from framing.segment import segment

DATA = Path(__file__).resolve().parent / "data"


def paragraphs_of(name: str) -> list[str]:
    (document,) = read_documents([DATA / name])
    return [p.text for p in segment(document).paragraphs]


def kept(paragraphs: list[str], fragment: str) -> bool:
    return any(fragment in p for p in paragraphs)


@pytest.fixture(scope="module")
def no_blanks() -> list[str]:
    return paragraphs_of("furniture_no_blank_lines.txt")


@pytest.fixture(scope="module")
def wrapped() -> list[str]:
    return paragraphs_of("furniture_hard_wrapped.txt")


# --- a whole-page dump with no blank lines: the failure ---------------------------------------

def test_a_marker_followed_by_a_line_no_longer_swallows_the_article(no_blanks):
    # "Topics" directly followed by tags, on a page with no blank line at all: the old rule dropped everything
    assert not kept(no_blanks, "Energy") and not kept(no_blanks, "Trade")
    assert no_blanks[0].startswith("Rail freight between Kazakhstan and western China doubled")
    assert len(no_blanks) == 5


def test_no_blank_page_keeps_exactly_its_article(no_blanks):
    assert [p[:40] for p in no_blanks] == [
        "Rail freight between Kazakhstan and west", "The company said 412,000 containers cros",
        "Freight forwarders in Almaty said waitin", "\"We are not competing with the sea on pr",
        "Analysts expect the growth to slow next ",
    ]


def test_timestamped_ticker_dropped_lede_kept(no_blanks):
    assert not kept(no_blanks, "Port strike enters third day")
    assert not kept(no_blanks, "Regional rail fares")
    assert kept(no_blanks, "the national railway company said on Monday")


def test_related_teasers_that_are_sentences_dropped_article_resumes(no_blanks):
    assert not kept(no_blanks, "Grain exporters look to new Caspian ferry service")
    assert not kept(no_blanks, "Airline adds a weekly cargo flight")
    assert kept(no_blanks, "we are competing on time")  # the paragraph right after the list


def test_newsletter_box_bio_comments_and_site_blurb_dropped(no_blanks):
    for piece in ("in your inbox before breakfast", "Subscribe", "Ayla Brennan is the Ledger's",
                  "steppe_trader", "Good to see the border finally working", "independent daily newspaper",
                  "All rights reserved"):
        assert not kept(no_blanks, piece), piece
    assert no_blanks[-1].endswith("it would keep investing in the corridor regardless.")


# --- a hard-wrapped opinion page ----------------------------------------------------------------------

def test_hard_wrapped_paragraphs_are_joined_whole(wrapped):
    assert len(wrapped) == 3
    assert wrapped[0].startswith("Every container ship that turns away from the Red Sea")
    assert wrapped[0].endswith("the bill runs into billions.")
    assert "Freight rates rose sharply in January but have eased since" in wrapped[1]


def test_author_bio_and_masthead_blurb_after_share_buttons_dropped(wrapped):
    assert not kept(wrapped, "Tomas Wendel is a former ship broker")
    assert not kept(wrapped, "publishes independent commentary")
    assert wrapped[-1].endswith("long after the original shock has passed.")


# --- the audit trail and the warning hook ------------------------------------------------------------

def test_every_dropped_line_is_listed_with_its_line_number_and_reason():
    text = ("Home\nWorld\n\nOfficials in Astana said on Monday that the new rail corridor to China would open "
            "in the spring, a year ahead of schedule.\n\nThe corridor will carry containers and grain.\n\nShare\n")
    result = segment(Document(id="d", text=text))
    assert [p.text[:9] for p in result.paragraphs] == ["Officials", "The corri"]
    assert result.dropped_lines == [DroppedLine(1, "Home", "heading"), DroppedLine(2, "World", "heading"),
                                    DroppedLine(8, "Share", "share")]
    assert result.dropped == {"heading": 2, "share": 1} and result.suspicious is None


def test_a_document_that_keeps_nothing_is_suspicious():
    result = segment(Document(id="d", text="Home\nNews\n\nMost Read\nTrade talks resume\n\nShare\n"))
    assert result.paragraphs == [] and result.suspicious is not None
    assert "no article paragraph" in result.suspicious


def test_a_document_whose_prose_went_into_a_list_is_suspicious():
    sentences = [f"Delegates from region {i} said the negotiations on fishing quotas would continue next month."
                 for i in range(6)]
    result = segment(Document(id="d", text="Most Read\n" + "\n".join(sentences) + "\n"))
    assert (result.n_prose_lines, result.n_prose_dropped) == (6, 6)
    assert result.suspicious is not None


def test_suspicious_when_most_prose_like_lines_were_dropped():
    paragraph = Paragraph(doc="d", outlet="o", index=0, text="x")
    assert Segmented([paragraph], n_prose_lines=10, n_prose_dropped=6).suspicious == \
        "6 of 10 prose-like lines dropped as furniture"
    assert Segmented([paragraph], n_prose_lines=10, n_prose_dropped=5).suspicious is None
    assert Segmented([paragraph], n_prose_lines=3, n_prose_dropped=3).suspicious is None  # too few to tell


def test_an_empty_document_is_not_suspicious():
    assert segment(Document(id="e", text="\n\n")).suspicious is None


# --- single lines that look like furniture inside an article stay ---------------------------------------

def test_a_short_article_paragraph_between_long_ones_is_kept():
    long_a = ("The ministry said on Thursday that exports of wheat through the northern ports rose by a fifth in the "
              "first quarter, helped by a mild winter and new rail links.")
    long_b = ("Traders in Rotterdam said the extra supply had pushed prices down for the third month in a row, "
              "and that buyers in North Africa were placing larger orders than a year ago.")
    short = "Officials did not give a figure for maize."
    result = segment(Document(id="d", text=f"{long_a}\n\n{short}\n\n{long_b}\n"))
    assert [p.text for p in result.paragraphs] == [long_a, short, long_b]


def test_a_comment_word_in_the_last_paragraph_does_not_drop_it():
    body = ("Regional governors met in Novosibirsk on Tuesday to discuss a new subsidy for river freight, "
            "which carriers say has fallen behind road transport for a decade.")
    last = "The transport ministry did not respond to a request for comment."
    result = segment(Document(id="d", text=f"{body}\n\n{body.replace('Tuesday', 'Friday')}\n\n{last}\n\n"
                                           "Copyright 2024 Example Media. All rights reserved.\n"))
    assert [p.text for p in result.paragraphs][-1] == last
    assert result.dropped == {"boilerplate": 1}
