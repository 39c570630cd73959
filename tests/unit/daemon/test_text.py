"""daemon/text.py: sentence chunks with spans into the original text, and token budgets."""

from __future__ import annotations

import pytest

from chatterbox_tray.daemon.text import MIN_TOKENS, TOKENS_PER_CHAR, TextPiece, split_sentences, token_budget


def texts(text: str, max_chars: int = 300) -> list[str]:
    return [c.text for c in split_sentences(text, max_chars)]


def test_spans_point_into_the_original_text() -> None:
    text = "  Hello there.  How are you?\n\nFine!  "
    chunks = split_sentences(text)
    assert [c.text for c in chunks] == ["Hello there.", "How are you?", "Fine!"]
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text


def test_sentence_ends_with_closing_quotes_and_brackets() -> None:
    assert texts('She said "stop." Then (quietly) left.) Done.') == [
        'She said "stop."',
        "Then (quietly) left.)",
        "Done.",
    ]
    assert texts("Wait… Really?! Yes.") == ["Wait…", "Really?!", "Yes."]


def test_a_blank_line_ends_a_paragraph_without_punctuation() -> None:
    assert texts("A heading\n\nThe body text.") == ["A heading", "The body text."]
    assert texts("one line\nnext line.") == ["one line\nnext line."]  # a single line break does not


def test_abbreviations_and_initials_do_not_end_sentences() -> None:
    assert texts("Dr. Smith met Mrs. Jones, e.g. at St. Mary's. Then left.") == [
        "Dr. Smith met Mrs. Jones, e.g. at St. Mary's.",
        "Then left.",
    ]
    assert texts("J. R. R. Tolkien wrote it. Yes.") == ["J. R. R. Tolkien wrote it.", "Yes."]


def test_a_sentence_ending_in_a_lowercase_single_letter_still_ends() -> None:
    assert texts("Take plan b. Then go.") == ["Take plan b.", "Then go."]


def test_long_sentences_are_cut_at_punctuation_then_spaces_then_hard() -> None:
    clause = "word " * 10  # 50 characters
    text = f"{clause.strip()}, {clause.strip()}, {clause.strip()}."
    chunks = split_sentences(text, max_chars=80)
    assert all(len(c.text) <= 80 for c in chunks)
    assert chunks[0].text.endswith(",")  # the comma, not a space, was chosen
    assert "".join(text[c.start : c.end] for c in chunks).replace(" ", "") == text.replace(" ", "")
    no_spaces = "x" * 100
    assert [len(c) for c in texts(no_spaces, max_chars=40)] == [40, 40, 20]


def test_pieces_without_letters_or_digits_are_dropped() -> None:
    assert texts("... !!! ---") == []
    assert texts("Hi. ... Bye.") == ["Hi.", "Bye."]
    assert texts("") == []
    assert texts("   \n\n  ") == []


def test_chunks_are_values() -> None:
    assert split_sentences("One.") == [TextPiece("One.", 0, 4)]


@pytest.mark.parametrize(
    ("text", "cap", "expected"),
    [
        ("Hi.", 1000, MIN_TOKENS),  # the floor
        ("x" * 100, 1000, int(100 * TOKENS_PER_CHAR)),  # proportional
        ("x" * 1000, 1000, 1000),  # the cap
        ("Hi.", 10, 10),  # a cap below the floor wins
        ("Hi.", 0, 1),  # never zero
    ],
)
def test_token_budget(text: str, cap: int, expected: int) -> None:
    assert token_budget(text, cap) == expected
