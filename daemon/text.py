"""Cutting text into chunks at sentence boundaries, and sizing each chunk's token budget.

Chunks keep their character span in the original text so a client can
highlight the sentence being spoken. Chatterbox speaks one chunk per
``generate`` call, so a chunk should be a sentence: short enough that the
first one arrives quickly, long enough to sound natural.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

#: Abbreviations whose full stop does not end a sentence: those that come before a name ("Dr. Smith",
#: "Mt. Everest"), then the others.
_BEFORE_NAMES = frozenset({"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt"})
_ABBREVIATIONS = _BEFORE_NAMES | {"vs", "etc", "e.g", "i.e", "no", "fig", "approx", "dept", "est", "inc", "ltd", "co"}
# A sentence ends at . ! ? … (with closing quotes/brackets) followed by space,
# or at a line break that separates paragraphs.
_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|\n\s*\n")


@dataclass(frozen=True)
class TextPiece:
    """A piece of text to speak, with its [start, end) span in the original.

    ``pause_s``: not speech but that much silence (pause markup, ``daemon/saytext.py``);
    its ``text`` is empty and its span the markup's.
    """

    text: str
    start: int
    end: int
    pause_s: float | None = None


def split_sentences(text: str, max_chars: int = 300, keep: Sequence[tuple[int, int]] = ()) -> list[TextPiece]:
    """Split ``text`` into sentence chunks no longer than ``max_chars``.

    Whitespace-only pieces are dropped. Long sentences are cut at the last
    comma, semicolon or colon before the limit, else at a space, else hard;
    never inside one of the ``keep`` spans (a tag such as ``[clear throat]``).
    """
    chunks: list[TextPiece] = []
    start = 0
    for match in _END.finditer(text):
        end = match.end()
        if match.group().strip() and _is_abbreviation(text, match.start()):
            continue
        _emit(text, start, end, max_chars, chunks, keep)
        start = end
    _emit(text, start, len(text), max_chars, chunks, keep)
    return chunks


def _is_abbreviation(text: str, dot: int) -> bool:
    if text[dot] != ".":
        return False
    word = re.search(r"([A-Za-z.]+)$", text[max(0, dot - 64) : dot])
    if not word:
        return False
    token = word.group(1).lower().strip(".")
    # Single capital letters are initials ("J. R. R. Tolkien").
    return token in _ABBREVIATIONS or (len(token) == 1 and text[dot - 1].isupper())


def _emit(
    text: str, start: int, end: int, max_chars: int, out: list[TextPiece], keep: Sequence[tuple[int, int]] = ()
) -> None:
    # Trim surrounding whitespace but keep spans pointing into the original.
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    while end - start > max_chars:
        cut = _cut_point(text, start, start + max_chars, keep)
        _emit(text, start, cut, max_chars, out, keep)
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start and any(ch.isalnum() for ch in text[start:end]):
        out.append(TextPiece(text[start:end], start, end))


def _cut_point(text: str, start: int, limit: int, keep: Sequence[tuple[int, int]] = ()) -> int:
    window = text[start:limit]
    cut = limit
    for marks in (",;:", " "):
        pos = max(window.rfind(m) for m in marks)
        if pos > len(window) // 3:
            cut = start + pos + 1
            break
    for lo, hi in keep:  # a tag is never cut in two: cut before it, or after it when it opens the piece
        if lo < cut < hi:
            return lo if lo > start else hi
    return cut


#: Slowest speech we budget for: about 8 characters a second (a slow, careful
#: reader; ordinary speech is 12-15). At Chatterbox's 25 speech tokens a second
#: that is ~3 tokens a char.
TOKENS_PER_CHAR = 3.2
#: Floor, so that "Hi." still has room for its breath and ending.
MIN_TOKENS = 50


def token_budget(text: str, cap: int) -> int:
    """Speech tokens allowed for ``text``: proportional, floored, capped.

    Chatterbox's ``generate`` allows 1000 tokens (40 s) for any text; a model
    that never emits its stop token then babbles for 40 s. A budget
    proportional to the text stops such a runaway at about twice the
    slowest plausible reading of it.
    """
    budget = max(MIN_TOKENS, int(len(text) * TOKENS_PER_CHAR))
    return max(1, min(budget, cap))
