"""From what the user wrote to what the model is given: rules, pauses and tags, before sentence splitting.

Every job's text goes through `prepare` on its way in (``synthesize``,
``speak``, and so every client: the tray, the CLI, Speech Dispatcher, the
bridges), and through `resolve_tags` once the model that will speak it is
loaded (the worker calls it before the first sentence):

1. the text is cut into plain runs, pause markups (``[pause 500ms]``) and
   tag-shaped words in brackets (``[laugh]``, ``[clear throat]``);
2. pronunciation rules rewrite the plain runs (never inside a markup: a rule
   for "pause" or "laugh" leaves ``[pause 1s]`` and ``[laugh]`` alone), all of
   them together within `RULES_TIME_LIMIT_S`: this runs on the daemon's main
   loop, and a user's regular expression that backtracks without end is
   stopped there and the job refused, naming the rule;
3. each pause ends the sentence before it and becomes a chunk of its own
   (``TextPiece.pause_s``), which the worker turns into silence: it never reaches
   the model;
4. the rest is split into sentences, a tag never cut in two, and every
   chunk's span is mapped back through the rewrites, so highlighting points
   at what the user wrote;
5. `resolve_tags`: tags the loaded model's tokenizer knows stay in the text
   (Turbo's tokenizer turns each into its one token); the others are taken
   out of the text, and the job's summary says so once.
"""

from __future__ import annotations

import bisect
import heapq
import re
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import regex

from ..ipc.markup import PAUSE_RE, PAUSE_TOTAL_MAX_S, TAG_RE, Rule, parse_pause
from ..ipc.protocol import ProtocolError
from .text import TextPiece, split_sentences

#: A tag as tokenizers list them: lowercase words in brackets.
_TOKENIZER_TAG_RE = re.compile(r"\[[a-z][a-z ]{0,40}\]")
_MARKUP_RE = re.compile(f"(?P<pause>{PAUSE_RE.pattern})|(?P<tag>{TAG_RE.pattern})", re.IGNORECASE)

#: The most time all pronunciation rules together may take on one text. They run on the
#: daemon's main loop (every other client waits meanwhile), so this bounds a user's own
#: regular expression that backtracks without end; fair rules do not come near it (2000
#: rules replacing 9000 words of a 100 000-character text take 0.2 s).
RULES_TIME_LIMIT_S = 1.0


class TextMap:
    """Positions in a rewritten text, mapped back to the text it was made from.

    ``edits`` are the rewritten regions, in order: ``(new_start, new_end,
    old_start, old_end)``. Between them the texts agree, shifted. A position
    inside a rewritten region maps to its whole original region: a span that
    starts or ends inside "engine x" covers all of "nginx".
    """

    def __init__(self, edits: Sequence[tuple[int, int, int, int]]) -> None:
        self._edits = list(edits)
        self._starts = [e[0] for e in self._edits]

    def start(self, pos: int) -> int:
        """Where a span starting at ``pos`` starts in the original."""
        i = bisect.bisect_right(self._starts, pos) - 1
        if i < 0:
            return pos
        _, new_end, old_start, old_end = self._edits[i]
        return old_start if pos < new_end else old_end + (pos - new_end)

    def end(self, pos: int) -> int:
        """Where a span ending at ``pos`` (exclusive) ends in the original."""
        i = bisect.bisect_left(self._starts, pos) - 1
        if i < 0:
            return pos
        _, new_end, _, old_end = self._edits[i]
        return old_end if pos <= new_end else old_end + (pos - new_end)


class _Builder:
    """Makes a rewritten text piece by piece, recording the rewrites."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.parts: list[str] = []
        self.length = 0
        self.edits: list[tuple[int, int, int, int]] = []

    def keep(self, start: int, end: int) -> None:
        if end > start:
            self.parts.append(self.source[start:end])
            self.length += end - start

    def put(self, start: int, end: int, text: str) -> None:
        self.edits.append((self.length, self.length + len(text), start, end))
        self.parts.append(text)
        self.length += len(text)

    def text(self) -> str:
        return "".join(self.parts)


class RuleClock:
    """The time the rules have left on one text, and what each rule has used of it.

    Every search is given what is left as its ``regex`` time limit. When it
    runs out, the job is refused (ProtocolError ``bad_rule``) naming the rule
    that used the most, which is the slow one: we do not skip it and speak
    on (docs/decisions.md says why).
    """

    def __init__(self, rules: Sequence[tuple[Rule, Any]], limit_s: float | None = None) -> None:
        self.rules = rules
        self.limit_s = RULES_TIME_LIMIT_S if limit_s is None else limit_s
        self.deadline = time.monotonic() + self.limit_s
        self.used = [0.0] * len(rules)

    def search(self, i: int, text: str, pos: int, end: int) -> Any:
        """Rule ``i``'s next non-empty match in ``text[pos:end]``, or None."""
        began = time.monotonic()
        try:
            match = self._next(self.rules[i][1], text, pos, end)
        except TimeoutError:
            self.used[i] += time.monotonic() - began
            raise self._too_slow() from None
        self.used[i] += time.monotonic() - began
        return match

    def _next(self, pattern: Any, text: str, pos: int, end: int) -> Any:
        while pos <= end:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            match = pattern.search(text, pos, end, timeout=left)
            if match is None or match.end() > match.start():
                return match
            pos = match.start() + 1
        return None

    def _too_slow(self) -> ProtocolError:
        slowest = self.rules[max(range(len(self.rules)), key=self.used.__getitem__)][0]
        remove = f"chatterbox-tray words remove {shlex.quote(slowest.word)}"
        if slowest.regex:
            return ProtocolError(
                "bad_rule",
                f"the pronunciation rule {slowest.word!r} took more than {self.limit_s:g} s on this text, so the "
                "text was not spoken: that regular expression backtracks too much (a repetition inside a repetition, "
                f"such as (a+)+, does that). Change it, or remove it: {remove}",
            )
        return ProtocolError(
            "bad_rule",
            f"the pronunciation rules took more than {self.limit_s:g} s on this text, so it was not spoken "
            f"(the slowest was {slowest.word!r}); try a shorter text, or fewer rules",
        )


def apply_rules(
    text: str, rules: Sequence[tuple[Rule, Any]], start: int = 0, end: int | None = None, clock: RuleClock | None = None
) -> list[tuple[int, int, str]]:
    """The replacements ``rules`` make in ``text[start:end]``: ``(match_start, match_end, replacement)``.

    ``rules``: each rule with its ``regex`` pattern (``rulebook.compile_rule``).
    One pass, left to right, never re-reading a replacement: at each point
    the leftmost match wins, then the longest, then the rule listed first.
    Patterns see the whole text around the run (so "whole word" holds at its
    edges) but match only inside it. ``clock``: the time left for the whole
    text (`RuleClock`; a fresh one by default); raises ProtocolError
    ``bad_rule`` when it runs out.
    """
    end = len(text) if end is None else end
    clock = clock if clock is not None else RuleClock(rules)
    found: list[tuple[int, int, str]] = []
    # Each rule's next match, in a heap by (start, longest first, rule order): a match
    # that starts before where we are is stale and is looked for again from there.
    heap: list[tuple[int, int, int, Any]] = []
    run = text[start:end]
    folded = run.casefold()
    for i, (rule, _) in enumerate(rules):
        # A plain word that is not in the text at all costs a fast substring test, not a scan.
        if not rule.regex and (rule.word not in run if rule.case_sensitive else rule.word.casefold() not in folded):
            continue
        if (match := clock.search(i, text, start, end)) is not None:
            heap.append((match.start(), match.start() - match.end(), i, match))
    heapq.heapify(heap)
    pos = start
    while heap:
        at, _, i, match = heapq.heappop(heap)
        if at >= pos:
            rule = rules[i][0]
            found.append((at, match.end(), _expand(rule, match) if rule.regex else rule.say))
            pos = match.end()
        if (match := clock.search(i, text, pos, end)) is not None:
            heapq.heappush(heap, (match.start(), match.start() - match.end(), i, match))
    return found


def _expand(rule: Rule, match: Any) -> str:
    """A regular expression rule's replacement for ``match`` (its ``\\1`` and ``\\g<name>`` filled in)."""
    try:
        return str(match.expand(rule.say))
    except (IndexError, ValueError, regex.error) as exc:  # checked with re when added; regex may differ
        raise ProtocolError("bad_rule", f"the replacement {rule.say!r} does not fit {rule.word!r}: {exc}") from None


@dataclass
class Prepared:
    """A job's text made ready: its chunks (spans in the original text) and what to tell the user."""

    chunks: list[TextPiece]
    #: Each chunk's tags, as (start, end) in the chunk's text, for `resolve_tags`.
    tags: list[list[tuple[int, int]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def prepare(text: str, rules: Sequence[tuple[Rule, Any]], max_chars: int) -> Prepared:
    """Rules, pauses and sentence splitting for ``text`` (see the module's docstring).

    ``rules``: `RuleBook.compiled`. Raises ProtocolError ``bad_markup`` for
    a malformed or too long pause, ``bad_rule`` when the rules take longer
    than `RULES_TIME_LIMIT_S` on the text.
    """
    clock = RuleClock(rules)
    out = _Builder(text)
    pauses: list[tuple[int, float, int, int]] = []  # (position in the new text, seconds, original span)
    tags: list[tuple[int, int]] = []  # in the new text
    pos, total = 0, 0.0
    for markup in [*_MARKUP_RE.finditer(text), None]:
        run_end = markup.start() if markup is not None else len(text)
        for m_start, m_end, say in apply_rules(text, rules, pos, run_end, clock):
            out.keep(pos, m_start)
            out.put(m_start, m_end, say)
            pos = m_end
        out.keep(pos, run_end)
        if markup is None:
            break
        if markup["pause"] is not None:
            seconds = parse_pause(markup["arg"] or "")
            total += seconds
            if total > PAUSE_TOTAL_MAX_S:
                raise ProtocolError(
                    "bad_markup", f"the text's pauses add up to more than {PAUSE_TOTAL_MAX_S:g} s, the most allowed"
                )
            out.put(markup.start(), markup.end(), " ")  # a space: the words either side stay apart
            pauses.append((out.length, seconds, markup.start(), markup.end()))
        else:
            tags.append((out.length, out.length + markup.end() - markup.start()))
            out.keep(markup.start(), markup.end())
        pos = markup.end()
    new = out.text()
    where = TextMap(out.edits)
    chunks: list[TextPiece] = []
    chunk_tags: list[list[tuple[int, int]]] = []
    region = 0
    for pause in [*pauses, None]:
        region_end = pause[0] - 1 if pause is not None else len(new)  # (the pause's space is not spoken)
        inside = [(a - region, b - region) for a, b in tags if region <= a and b <= region_end]
        for piece in split_sentences(new[region:region_end], max_chars, keep=inside):
            start, end = piece.start + region, piece.end + region
            chunks.append(TextPiece(piece.text, where.start(start), where.end(end)))
            chunk_tags.append([(a - start, b - start) for a, b in tags if start <= a and b <= end])
        if pause is None:
            break
        cut, seconds, m_start, m_end = pause
        chunks.append(TextPiece("", m_start, m_end, pause_s=seconds))
        chunk_tags.append([])
        region = cut
    return Prepared(chunks, chunk_tags)


def resolve_tags(prepared: Prepared, known: Sequence[str], variant: str) -> Prepared:
    """Keep the tags the loaded model knows; take the others out of the text and say so once.

    ``known``: the tags the model's tokenizer has (`tokenizer_tags`). A tag
    in other letter case ("[Laugh]") becomes the known spelling. A sentence
    that was only unknown tags becomes an empty pause (nothing to say, its
    place kept so the job's chunk count stays what ``accepted`` said).
    """
    lookup = {t.lower(): t for t in known}
    removed: list[str] = []
    chunks = []
    for chunk, spans in zip(prepared.chunks, prepared.tags or [[] for _ in prepared.chunks], strict=True):
        if not spans:
            chunks.append(chunk)
            continue
        text, shift = chunk.text, 0
        for a, b in spans:
            tag = text[a + shift : b + shift]
            keep = lookup.get(tag.lower())
            if keep is None and tag not in removed:
                removed.append(tag)
            left = text[: a + shift] if keep is not None else text[: a + shift].rstrip()  # "Done [laugh]." -> "Done."
            new = left + (keep or "") + text[b + shift :]
            shift += len(new) - len(text)
            text = new
        text = " ".join(text.split())
        if any(ch.isalnum() for ch in text):
            chunks.append(replace(chunk, text=text))
        else:
            chunks.append(replace(chunk, text="", pause_s=0.0))
    warnings = list(prepared.warnings)
    if removed:
        names = ", ".join(removed[:6]) + (f" and {len(removed) - 6} more" if len(removed) > 6 else "")
        if lookup:
            which = "that tag" if len(removed) == 1 else "those tags"
            warnings.append(
                f"removed {names}: the {variant} model does not know {which} "
                "(chatterbox-tray tags lists those it knows)"
            )
        else:
            warnings.append(
                f"removed {names}: the {variant} model has no tags (they work with the turbo model), so "
                f"{'it was' if len(removed) == 1 else 'they were'} not spoken"
            )
    return Prepared(chunks, [[] for _ in chunks], warnings)


def tokenizer_tags(tokenizer: Any) -> list[str]:
    """The paralinguistic and delivery tags a loaded tokenizer knows, in its id order.

    Read from the tokenizer itself (Turbo's GPT-2 tokenizer lists them as
    added tokens), never from a list of ours: a checkpoint with more or other
    tags is offered exactly those. Only a ``transformers`` tokenizer's added,
    non-special tokens count: chatterbox's own grapheme tokenizers (the
    original's and the multilingual one's) use added tokens for control only
    (``[START]``, ``[STOP]``, languages such as ``[fr]``, Cangjie codes), never
    for a sound, so those models offer none.
    """
    if tokenizer is None or not hasattr(tokenizer, "get_added_vocab"):
        return []
    try:
        vocab = dict(tokenizer.get_added_vocab())
        special = set(getattr(tokenizer, "all_special_tokens", None) or [])
    except Exception:  # a tokenizer we do not know: no tags rather than a failed job
        return []
    ordered = sorted(vocab.items(), key=lambda item: item[1])
    return [t for t, _ in ordered if t not in special and _TOKENIZER_TAG_RE.fullmatch(t)]


def silence_samples(seconds: float, sample_rate: int, rate: float, sentence_pause_s: float | None, first: bool) -> int:
    """Samples of silence a pause chunk holds, so the gap heard is ``seconds``.

    ``sentence_pause_s``: the speaker's own pause after each sentence (None
    for ``synthesize``, whose client joins chunks as they come): the speaker
    puts one after the sentence before and one after this silence, so those
    are taken off (a gap is never shorter than the speaker makes anyway).
    ``rate``: the job's speaking rate, which will stretch this silence too.
    """
    if sentence_pause_s is not None:
        seconds -= sentence_pause_s * (1 if first else 2)
    return max(0, round(seconds * rate * sample_rate))


def resolve_job(job: Any, engine: Any) -> None:
    """`resolve_tags` for a job, once, with the engine that is about to speak it (the worker's thread)."""
    if job.tags_resolved:
        return
    job.tags_resolved = True
    if not any(job.tag_spans):
        return
    resolved = resolve_tags(Prepared(job.chunks, job.tag_spans), engine.tags(), engine.variant)
    job.chunks = resolved.chunks
    job.tag_spans = resolved.tags
    job.warnings.extend(resolved.warnings)
