"""Speak and wait for the end: what ``say`` and the Speech Dispatcher module both do.

One place queues the text on the daemon's speaker, waits for the job's end,
and turns Ctrl-C, SIGTERM and SIGHUP into stopping that job, so the two
callers differ only in what they print (a module of its own: ``main``
imports ``speech_dispatcher``, so neither may borrow it from the other). With
a daemon on another computer the speech is made there and played here (`play_here`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..ipc.client import Client
from ..ipc.messages import SpeakResult, WaitResult
from ..ipc.protocol import ProtocolError
from ..ipc.requests import PlayHere, Request

#: How long ``wait`` may hear nothing; the daemon sends progress every second.
WAIT_GAP_S = 30.0


@contextlib.contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP (a closed terminal) act as Ctrl-C while this block runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {sig: signal.signal(sig, signal.default_int_handler) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass(frozen=True)
class Spoken:
    """How a speak-and-wait went.

    ``queued``: the ``speak`` answer. ``end``: the ``wait`` answer, or None
    when the speech was dropped, not waited for, or interrupted (then the job
    was asked to stop).
    """

    queued: SpeakResult
    end: WaitResult | None = None
    interrupted: bool = False


def speak_and_wait(
    client: Client,
    request: Request,
    *,
    wait: bool = True,
    stop_on_disconnect: bool = False,
    watch: Callable[[str], contextlib.AbstractContextManager[Any]] | None = None,
) -> Spoken:
    """Queue ``request`` (built by ``requests.speak``) and, unless ``wait`` is false, wait for its end.

    Ctrl-C, SIGTERM or SIGHUP while waiting stop the job. With
    ``stop_on_disconnect`` the daemon also stops it if this process dies
    without a word (Speech Dispatcher kills its module's commands).
    ``watch(job)``: a context held while the job is waited for (the Speech
    Dispatcher module watches its module in it). ProtocolError from the
    ``speak`` request itself is raised to the caller.
    """
    if client.remote:
        return play_here(client, request)
    queued = SpeakResult.from_data(client.request(request))
    if queued.dropped or not wait:
        return Spoken(queued)
    job = queued.job
    try:
        with interrupt_on_signals(), watch(job) if watch else contextlib.nullcontext():
            end = WaitResult.from_data(client.wait(job, timeout=WAIT_GAP_S, stop_on_disconnect=stop_on_disconnect))
    except KeyboardInterrupt:
        # The user asked to stop: whatever stopping says, the answer is "interrupted".
        with contextlib.suppress(Exception):
            client.stop(job)
        return Spoken(queued, interrupted=True)
    return Spoken(queued, end)


def play_here(client: Client, request: Request) -> Spoken:
    """A ``speak`` request for a remote daemon: synthesize there, play on this computer's speaker.

    The daemon's speaker is in another room. This computer's speaker
    (``audio.local_player``) plays it with the daemon's player logic, on the
    output device and volume chosen for this computer (the local daemon's
    settings.json); the request's priority and volume apply here. Always
    waits (there is nothing here to leave playing); Ctrl-C, SIGTERM or
    SIGHUP stop it and cancel the job.
    """
    from ..audio.local_player import LocalPlayer
    from ..ipc.client import Synthesis

    here = PlayHere.of(request)
    synthesis = Synthesis(client, client.submit(here.synthesize))
    synthesis.accepted()  # raises the daemon's refusal (unknown voice, too_many_jobs...) as speak would
    queued = SpeakResult(str(synthesis.job), False, synthesis.position)
    player = LocalPlayer.for_this_computer()
    speech_over = threading.Event()
    synthesis.should_stop = speech_over.is_set  # a stop from another thread ends the stream at its next reply
    try:
        with interrupt_on_signals():
            played = player.play(
                synthesis,
                priority=here.priority,
                chars=here.chars,
                gain=here.gain,
                listener=lambda event, data: speech_over.set() if event == "ended" else None,
            )
    except KeyboardInterrupt:
        synthesis.cancel()
        return Spoken(queued, interrupted=True)
    finally:
        player.close()
    if played.stopped:
        synthesis.cancel()
        if played.error is not None:
            raise ProtocolError("audio_device", f"Could not play here: {played.error}")
        return Spoken(queued, interrupted=True)
    end = WaitResult(str(synthesis.job), "speak", "finished", synthesis.summary or None, played.playback(), None)
    return Spoken(queued, end)
