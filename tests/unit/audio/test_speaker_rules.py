"""audio/speaker_rules.py: the speaker's rules, with plain numbers (no thread, no device)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from chatterbox_tray.audio import speaker_rules
from chatterbox_tray.ipc.limits import PRIORITY_RANK

URGENT, QUICK, TEXT, NOTE = (PRIORITY_RANK[p] for p in ("urgent", "quick", "text", "notification"))


@dataclass
class S:
    """A job on the speaker, as the rules see it."""

    rank: int
    seq: int


# -- which job plays next ------------------------------------------------------------


def test_nothing_plays_from_an_empty_queue() -> None:
    assert speaker_rules.next_to_play([]) is None


def test_rank_first_then_arrival() -> None:
    queue = [S(TEXT, 1), S(TEXT, 0), S(QUICK, 5), S(NOTE, 2)]
    assert speaker_rules.next_to_play(queue) == 2
    assert sorted(queue, key=speaker_rules.playing_order) == [S(QUICK, 5), S(TEXT, 0), S(TEXT, 1), S(NOTE, 2)]


def test_urgent_goes_before_everything() -> None:
    assert speaker_rules.next_to_play([S(QUICK, 0), S(TEXT, 1), S(URGENT, 9)]) == 2


# -- what a priority displaces ----------------------------------------------------------


def test_text_queues_behind_text_and_displaces_nothing() -> None:
    verdict = speaker_rules.admission(TEXT, 3, [S(TEXT, 1), S(TEXT, 2)], playing=0)
    assert verdict == speaker_rules.Admission()


def test_a_notification_is_dropped_when_anything_is_on_the_speaker() -> None:
    assert speaker_rules.admission(NOTE, 1, [S(TEXT, 0)], playing=None).dropped
    assert speaker_rules.admission(NOTE, 1, [S(NOTE, 0)], playing=0).dropped
    assert not speaker_rules.admission(NOTE, 1, [], playing=None).dropped


def test_any_later_request_cuts_a_notification_off() -> None:
    for rank in (URGENT, QUICK, TEXT):
        assert speaker_rules.admission(rank, 1, [S(NOTE, 0)], playing=0).displaced == [0]


def test_quick_replaces_the_playing_text_and_other_quick_jobs_but_queued_text_stays() -> None:
    queue = [S(TEXT, 0), S(QUICK, 1), S(TEXT, 2)]
    # Sorted, the quick job (seq 1) plays: it is the current one.
    verdict = speaker_rules.admission(QUICK, 3, queue, playing=1)
    assert verdict.displaced == [1]  # the other quick job; both texts stay queued
    verdict = speaker_rules.admission(QUICK, 3, [S(TEXT, 0), S(TEXT, 2)], playing=0)
    assert verdict.displaced == [0]  # the playing text
    assert not verdict.interrupts


def test_quick_never_replaces_an_urgent_job() -> None:
    verdict = speaker_rules.admission(QUICK, 2, [S(URGENT, 0), S(TEXT, 1)], playing=0)
    assert verdict.displaced == []
    assert not verdict.interrupts  # it waits behind the urgent one


def test_urgent_interrupts_what_plays_without_displacing_it() -> None:
    verdict = speaker_rules.admission(URGENT, 2, [S(TEXT, 0), S(TEXT, 1)], playing=0)
    assert verdict.displaced == []
    assert verdict.interrupts


def test_nothing_is_interrupted_before_its_sound_starts() -> None:
    verdict = speaker_rules.admission(URGENT, 2, [S(TEXT, 0)], playing=None)
    assert not verdict.interrupts


def test_urgent_after_urgent_waits() -> None:
    verdict = speaker_rules.admission(URGENT, 2, [S(URGENT, 0)], playing=0)
    assert verdict == speaker_rules.Admission()


# -- when the pre-buffer lets playback start -----------------------------------------------


def ready(**overrides: object) -> bool:
    args: dict = {
        "buffered_s": 1.0,
        "segments": 1,
        "made_chars": 18,
        "chars_total": 72,
        "produced_all": False,
        "prebuffer": "adaptive",
        "rtf": 1.5,
        "seconds_per_char": 0.08,
    }
    args.update(overrides)
    return speaker_rules.ready_to_start(**args)


def test_nothing_made_means_nothing_to_play() -> None:
    assert not ready(segments=0, buffered_s=0.0, made_chars=0, prebuffer="off", produced_all=True)


def test_everything_made_or_prebuffer_off_starts_at_once() -> None:
    assert ready(produced_all=True)
    assert ready(prebuffer="off")


@pytest.mark.parametrize("rtf", [None, 0.3, 1.0])
def test_synthesis_as_fast_as_playback_starts_on_the_first_sentence(rtf: float | None) -> None:
    assert ready(rtf=rtf)


def test_slow_synthesis_waits_until_the_rest_arrives_in_time() -> None:
    # 54 characters left at 0.08 s each: 4.32 s to come; with 1 s buffered the
    # total is 5.32 s, and at rtf 1.5 the speaker must hold a third of it
    # (1.77 s) plus half a sentence before it can start without running dry.
    assert not ready(buffered_s=1.0, segments=1, made_chars=18)
    assert ready(buffered_s=2.4, segments=2, made_chars=36)


def test_work_since_the_latest_sentence_counts_but_at_most_one_sentence() -> None:
    # One 1.4 s sentence held, one more (1.44 s) to come, rtf 1.5: 0.95 + 0.7
    # = 1.65 s needed without credit. Work since the sentence came takes
    # done/1.5 s off, less a tenth of the work left (0.22 s) as room for error.
    at = dict(buffered_s=1.4, segments=1, made_chars=54, rtf=1.5)
    assert not ready(**at)
    assert not ready(since_made_s=0.5, **at)  # credit 0.33 - 0.22: 1.54 s needed
    assert ready(since_made_s=1.0, **at)  # credit 0.67 - 0.22: 1.20 s needed
    # Much left to make (4.32 s): however long the wait, one sentence's work
    # at most counts, less the room for error, and it is not enough.
    assert not ready(since_made_s=600.0, buffered_s=1.4, segments=1, made_chars=18, rtf=1.5)


def test_slower_synthesis_needs_more_buffered() -> None:
    at = dict(buffered_s=2.4, segments=2, made_chars=36)
    assert ready(rtf=1.5, **at)
    assert not ready(rtf=3.0, **at)


def test_without_a_measured_speech_rate_the_prior_is_used() -> None:
    at = dict(buffered_s=2.0, segments=2, made_chars=36, rtf=1.5)
    assert ready(seconds_per_char=None, **at) == ready(seconds_per_char=speaker_rules.SECONDS_PER_CHAR, **at)


def test_the_last_sentence_is_always_enough() -> None:
    # Nothing is left to make: whatever is buffered is all there will be.
    assert ready(buffered_s=0.5, segments=4, made_chars=72, rtf=5.0)


def test_next_block_walks_sentences_waits_on_an_open_one_and_ends_when_all_are_made() -> None:
    from types import SimpleNamespace

    from chatterbox_tray.audio.speaker_rules import next_block

    first = SimpleNamespace(samples=list(range(5)), open=False)
    second = SimpleNamespace(samples=[10, 11], open=True)  # its later pieces are still being made
    item = SimpleNamespace(segments=[first, second], seg=0, pos=0, produced_all=False)
    block, new, done = next_block(item, 3)
    assert (block, new, done) == ([0, 1, 2], first, False)
    assert next_block(item, 3) == ([3, 4], None, False)
    assert next_block(item, 3) == ([10, 11], second, False)
    assert next_block(item, 3) == (None, None, False)  # an underrun, not the end
    second.samples += [12]
    second.open = False
    assert next_block(item, 3) == ([12], None, False)
    assert next_block(item, 3) == (None, None, False)  # every sentence played, more may be coming
    item.produced_all = True
    assert next_block(item, 3) == (None, None, True)


# -- a sentence still being made (token streaming) ------------------------------------------


def test_an_open_sentence_waits_until_the_next_piece_and_the_rest_will_come_in_time() -> None:
    may = speaker_rules.sentence_may_start
    # 0.6 s made; the next piece takes 1.2 s to make: playing 0.6 s would leave a gap.
    assert not may(buffered_s=0.6, remaining_s=1.5, rtf=1.2, next_piece_s=1.2)
    # 1.6 s held, the next piece in 0.9 s, 0.5 s left at rtf 1.25 (0.125 s short at most): it may start.
    assert may(buffered_s=1.6, remaining_s=0.5, rtf=1.25, next_piece_s=0.9)
    # The same, but making the rest is much slower than playing it: wait.
    assert not may(buffered_s=1.6, remaining_s=2.0, rtf=2.0, next_piece_s=0.9)
    # Nothing left to make: always.
    assert may(buffered_s=0.1, remaining_s=0.0, rtf=5.0, next_piece_s=3.0)


def test_next_block_waits_before_an_open_sentence_it_may_not_enter_never_inside_one() -> None:
    from types import SimpleNamespace

    from chatterbox_tray.audio.speaker_rules import next_block

    first = SimpleNamespace(samples=[0, 1], open=False)
    second = SimpleNamespace(samples=[10, 11, 12, 13], open=True)
    item = SimpleNamespace(segments=[first, second], seg=0, pos=0, produced_all=False)
    allowed = {"yes": False}

    def may_enter(seg: object) -> bool:
        assert seg is second  # asked only at the start of a sentence still being made
        return allowed["yes"]

    assert next_block(item, 2, may_enter) == ([0, 1], first, False)
    assert next_block(item, 2, may_enter) == (None, None, False)  # waits between the sentences
    assert (item.seg, item.pos) == (1, 0)
    allowed["yes"] = True
    assert next_block(item, 2, may_enter) == ([10, 11], second, False)
    allowed["yes"] = False  # once inside, it plays on: the question is not asked again
    assert next_block(item, 2, may_enter) == ([12, 13], None, False)
