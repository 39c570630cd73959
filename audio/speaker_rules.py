"""The speaker's rules, as pure functions: no thread, no device, no lock.

``audio/playback_loop.py`` runs the speaker (a thread writing 20 ms blocks to a
device), for the daemon and for this computer's player alike; the decisions it
takes are here, so they can be read in one place and tested directly with
plain numbers:

* `admission`: what a newly spoken job of a priority does to what is on the
  speaker (drop the newcomer, displace others, interrupt the playing one);
* `playing_order` / `next_to_play`: which job plays next;
* `ready_to_start`: whether a job has buffered enough to start playing
  without running dry (the adaptive pre-buffer);
* `next_block`: where a job's playback cursor goes next through its
  sentences, some of them still being made.

The priorities follow Speech Dispatcher's (see docs/protocol.md):

* ``urgent`` interrupts what is playing; the interrupted job resumes after it,
  from the start of the sentence it was in;
* ``quick`` (quick-speak) replaces what is playing and any other quick job,
  but never an urgent one; queued text stays queued after it;
* ``text`` queues behind everything else, first come first served;
* ``notification`` is dropped when anything else is speaking or queued, and is
  itself cut off by any later request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..ipc.limits import PRIORITY_RANK

URGENT, QUICK, TEXT, NOTIFICATION = (PRIORITY_RANK[p] for p in ("urgent", "quick", "text", "notification"))

#: Prior for speech seconds per character, until jobs have measured it.
SECONDS_PER_CHAR = 0.07
#: Slack on top of what a sentence being made needs buffered before it starts (the
#: model's pace wobbles piece to piece).
PIECE_MARGIN_S = 0.1
#: A job's first sentence is made slower than the ones after it (the pipeline fills, and it
#: carries the job's set-up): in the daemon on a 2-core CPU a paragraph's first sentence took
#: 1.53 s of work a second of speech and the rest 1.07 (0.70 of it); beside a busy program 2.35
#: and 1.8 (0.77). Between the two, nearer the busy one: too low a figure means gaps there.
FIRST_TO_STEADY = 0.75


class Slot(Protocol):
    """What the rules need to know of a job on the speaker."""

    rank: int  # 0 urgent .. 3 notification
    seq: int  # arrival order on the speaker


@dataclass(frozen=True)
class Admission:
    """What admitting a job does to the speaker's queue."""

    #: The newcomer is a notification and something else is on the speaker.
    dropped: bool = False
    #: Positions (in the given queue) of the jobs the newcomer replaces.
    displaced: list[int] = field(default_factory=list)
    #: The playing job is not replaced but the newcomer goes before it: it
    #: pauses and resumes from the start of its sentence afterwards.
    interrupts: bool = False


def playing_order(slot: Slot) -> tuple[int, int]:
    """The sort key of the speaker's queue: priority rank, then arrival.

    The model worker uses the same order, so what plays next is also what is
    synthesized next.
    """
    return (slot.rank, slot.seq)


def next_to_play(queue: Sequence[Slot]) -> int | None:
    """Position of the job that plays now (or next) in ``queue``; None if it is empty."""
    return min(range(len(queue)), key=lambda i: playing_order(queue[i]), default=None)


def admission(rank: int, seq: int, queue: Sequence[Slot], playing: int | None) -> Admission:
    """What a new job of ``rank`` (arriving as ``seq``) does to ``queue``.

    ``playing`` is the position of the job whose sound has started, if any
    (a job at the head that is still pre-buffering is not "playing": it is
    displaced or outranked silently).
    """
    if rank == NOTIFICATION and queue:
        return Admission(dropped=True)
    current = next_to_play(queue)
    displaced = [
        i
        for i, other in enumerate(queue)
        if other.rank == NOTIFICATION
        or (rank == QUICK and other.rank == QUICK)
        or (rank == QUICK and i == current and other.rank > QUICK)
    ]
    interrupts = (
        playing is not None
        and playing == current
        and playing not in displaced
        and (rank, seq) < playing_order(queue[playing])
    )
    return Admission(displaced=displaced, interrupts=interrupts)


def ready_to_start(
    *,
    buffered_s: float,
    segments: int,
    made_chars: int,
    chars_total: int,
    produced_all: bool,
    prebuffer: str,
    rtf: float | None,
    seconds_per_char: float | None,
    since_made_s: float = 0.0,
) -> bool:
    """Whether a job that has not started may start playing now.

    ``buffered_s`` seconds of audio in ``segments`` sentences are made and
    unplayed, covering ``made_chars`` of the job's ``chars_total`` characters.
    ``rtf`` is the estimated synthesis real-time factor (seconds of work per
    second of audio; None when nothing is measured yet) and
    ``seconds_per_char`` the estimated speech length of a character.
    ``since_made_s``: seconds since the job's latest audio arrived; the model
    has been making what follows all that time (credited up to one
    sentence's work, less a tenth of the work left as room for error: a
    longer wait says the estimate is off, not that more is made).
    """
    if segments == 0:
        return False
    if produced_all or prebuffer == "off":
        return True
    if rtf is None or rtf <= 1.0:
        return True  # synthesis outruns playback: the first sentence is enough
    spc = SECONDS_PER_CHAR if seconds_per_char is None else seconds_per_char
    remaining = max(0, chars_total - made_chars) * spc
    total = buffered_s + remaining
    sentence = buffered_s / segments
    # Making what is left takes remaining*rtf; playing what we hold and what
    # is left takes buffered+remaining. With production spread evenly, the
    # speaker never catches up if it starts holding total*(1 - 1/rtf); half
    # a sentence more covers sentences arriving whole.
    need = total * (1 - 1 / rtf) + sentence / 2
    # The work done on what follows since the latest sentence came counts
    # (done/rtf seconds less to hold), once it exceeds a tenth of the work
    # left: room for the estimate to be off, which grows with what is left.
    done = min(max(0.0, since_made_s), sentence * rtf)
    credit = max(0.0, done / rtf - 0.1 * remaining * rtf)
    return buffered_s >= min(total, need - credit)


def sentence_may_start(*, buffered_s: float, remaining_s: float, rtf: float | None, next_piece_s: float) -> bool:
    """Whether a sentence still being made may start playing without stopping inside it.

    ``buffered_s`` of it are made, about ``remaining_s`` more are to come at
    ``rtf`` seconds of work per second of audio, in pieces the next of which
    takes about ``next_piece_s`` to make. Playing what is held must last
    until the next piece arrives, and making the rest must not outrun
    playing all of it (``buffered + remaining >= remaining * rtf``).
    """
    if remaining_s <= 0:
        return True
    need = max(next_piece_s, remaining_s * (rtf - 1.0) if rtf is not None else 0.0)
    return buffered_s >= need + PIECE_MARGIN_S


class Cursor(Protocol):
    """An item's sentences and where its playback stands (``playback_loop.Track``)."""

    segments: Any  # sequence of segments with ``samples`` and ``open`` (more of the sentence to come)
    seg: int
    pos: int
    produced_all: bool


def next_block(item: Cursor, samples: int, may_enter: Callable[[Any], bool] | None = None) -> tuple[Any, Any, bool]:
    """The next ``samples`` to play of ``item``, advancing its cursor: (block, segment it begins, finished).

    ``block`` is ``None`` when nothing is ready: either the job is done
    (``finished``, every sentence made and played) or the sentence playing,
    or the next one, is still being made (an underrun, not an end).
    ``may_enter(segment)``: asked before the first sample of a sentence that
    is still being made (``open``); False keeps the cursor at its start, so
    a wait falls between sentences, never inside one.
    """
    while item.seg < len(item.segments) and item.pos >= len(item.segments[item.seg].samples):
        if item.segments[item.seg].open:
            break
        item.seg += 1
        item.pos = 0
    if item.seg >= len(item.segments):
        return None, None, item.produced_all
    seg = item.segments[item.seg]
    if item.pos >= len(seg.samples):  # the rest of this sentence is still being made
        return None, None, False
    if item.pos == 0 and seg.open and may_enter is not None and not may_enter(seg):
        return None, None, False
    new = seg if item.pos == 0 else None
    block = seg.samples[item.pos : item.pos + samples]
    item.pos += len(block)
    return block, new, False
