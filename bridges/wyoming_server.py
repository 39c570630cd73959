"""A Wyoming text-to-speech server for Home Assistant's voice pipeline.

Events (the ``wyoming`` package's classes):

- ``Describe`` -> ``Info`` with one TTS program whose voices are the library's
  voices (read from the daemon at each Describe, so a voice added in the tray
  shows up when Home Assistant next asks);
- ``Synthesize`` -> ``AudioStart``, ``AudioChunk``..., ``AudioStop``: 16-bit
  mono PCM at the model's rate, each daemon chunk sent the moment it is made;
- ``SynthesizeStart``, ``SynthesizeChunk``..., ``SynthesizeStop``: the text
  arrives while Home Assistant's language model is still writing it. Each
  finished sentence is sent to the daemon at once, so speech starts before
  the reply is complete; the answer is one ``AudioStart`` ... ``AudioStop``
  followed by ``SynthesizeStopped``. The plain ``Synthesize`` that Home
  Assistant also sends inside a stream (for older servers) is ignored there.

Errors reach the client as Wyoming ``Error`` events with the daemon's code.
Zeroconf announcement is ``announce.py``'s, and only on request (``--zeroconf``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from functools import partial
from typing import Any

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice
from wyoming.server import AsyncEventHandler, AsyncServer
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped

from ..ipc.client import DaemonUnavailable
from ..ipc.messages import HelloResult, VoiceInfo
from ..ipc.protocol import ProtocolError
from .encoders import to_int16
from .upstream import NOT_ANSWERING, DaemonClients, open_synthesis

log = logging.getLogger("chatterbox_tray.bridges.wyoming")

#: Samples per AudioChunk event (about 170 ms at 24 kHz): small enough for a
#: satellite's buffer, large enough that framing costs nothing.
SAMPLES_PER_EVENT = 4096
WIDTH, CHANNELS = 2, 1
#: Where a sentence ends in streamed text: end punctuation then space, or a blank line.
SENTENCE_END = re.compile(r"(?<=[.!?…。！？])[\"'”’)\]]*\s+|\n\s*\n")
ATTRIBUTION = Attribution(name="Resemble AI (Chatterbox)", url="https://github.com/resemble-ai/chatterbox")


class WyomingError(Exception):
    """A failure to report to the client as an Error event."""

    def __init__(self, text: str, code: str) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


def as_wyoming_error(exc: BaseException) -> WyomingError:
    """Any failure as the Error event's text and code (a bug is logged with its traceback)."""
    if isinstance(exc, WyomingError):
        return exc
    if isinstance(exc, ProtocolError):
        return WyomingError(exc.message or exc.code, exc.code)
    if isinstance(exc, DaemonUnavailable):
        return WyomingError(NOT_ANSWERING.format(exc), "daemon_unavailable")
    log.error("error in the Wyoming bridge", exc_info=exc)
    return WyomingError(f"internal error in the Wyoming bridge: {exc}", "internal")


def split_sentences(buffer: str) -> tuple[list[str], str]:
    """Complete sentences in ``buffer`` and the unfinished rest."""
    parts, start = [], 0
    for match in SENTENCE_END.finditer(buffer):
        piece = buffer[start : match.start()].strip()
        if piece:
            parts.append(piece + buffer[match.start() : match.end()].strip())
        start = match.end()
    return parts, buffer[start:]


def build_info(link: DaemonClients) -> Info:
    """Info listing the library's voices (blocking: call it in a thread)."""
    with link.client() as client:
        hello = HelloResult.from_data(client.hello())
        voices = [VoiceInfo.from_data(v) for v in client.voices_list()]
    caps = hello.capabilities or {}
    languages = list(caps.get("languages") or (["en"] if hello.variant != "multilingual" else []))
    version = hello.daemon_version
    tts_voices = [
        TtsVoice(
            name=v.name,
            description=v.name + (" (default)" if v.default else ""),
            attribution=ATTRIBUTION,
            installed=True,
            version=version,
            languages=languages,
        )
        for v in voices
    ]
    program = TtsProgram(
        name="chatterbox-tray",
        description=f"Chatterbox TTS ({hello.variant}) through Chatterbox Tray",
        attribution=ATTRIBUTION,
        installed=True,
        version=version,
        voices=tts_voices,
        supports_synthesize_streaming=True,
    )
    return Info(tts=[program])


class ChatterboxHandler(AsyncEventHandler):
    """One Wyoming connection (Home Assistant opens one per request)."""

    def __init__(self, link: DaemonClients, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.link = link
        self._stop = threading.Event()
        self._stream_voice: Any = None
        self._stream_text = ""
        self._sentences: asyncio.Queue[str | None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._audio_started = False
        self._rate = 24_000

    async def handle_event(self, event: Event) -> bool:
        try:
            if Describe.is_type(event.type):
                info = await asyncio.to_thread(build_info, self.link)
                await self.write_event(info.event())
            elif SynthesizeStart.is_type(event.type):
                start = SynthesizeStart.from_event(event)
                self._stream_voice = start.voice
                self._stream_text = ""
                self._audio_started = False
                self._sentences = asyncio.Queue()
                self._worker = asyncio.create_task(self._speak_stream(self._sentences))
            elif SynthesizeChunk.is_type(event.type):
                if self._sentences is None:
                    raise WyomingError("synthesize-chunk without synthesize-start", "bad_event")
                self._stream_text += SynthesizeChunk.from_event(event).text
                sentences, self._stream_text = split_sentences(self._stream_text)
                for sentence in sentences:
                    self._sentences.put_nowait(sentence)
            elif SynthesizeStop.is_type(event.type):
                if self._sentences is None or self._worker is None:
                    raise WyomingError("synthesize-stop without synthesize-start", "bad_event")
                rest = self._stream_text.strip()
                if rest:
                    self._sentences.put_nowait(rest)
                self._sentences.put_nowait(None)
                worker, self._worker, self._sentences = self._worker, None, None
                await worker
                await self.write_event(SynthesizeStopped().event())
            elif Synthesize.is_type(event.type):
                if self._sentences is not None:
                    return True  # sent inside a stream for older servers: the chunks carry the text
                synth = Synthesize.from_event(event)
                self._audio_started = False
                await self._speak(synth.text, synth.voice)
                await self._end_audio()
        except Exception as exc:
            # Home Assistant reads until AudioStop and skips other events: after
            # an Error, closing the connection is what ends its wait.
            err = as_wyoming_error(exc)
            await self.write_event(Error(text=err.text, code=err.code).event())
            return False
        return True

    async def disconnect(self) -> None:
        """The client went away: stop any job of ours."""
        self._stop.set()
        if self._worker is not None:
            self._worker.cancel()

    async def _speak_stream(self, queue: asyncio.Queue[str | None]) -> None:
        """Speak each sentence as it is queued; a WyomingError ends the stream (raised at SynthesizeStop).

        The queue is an argument, not ``self._sentences``: SynthesizeStop may
        clear that before this task first runs.
        """
        while (sentence := await queue.get()) is not None:
            await self._speak(sentence, self._stream_voice)
        await self._end_audio()

    async def _end_audio(self) -> None:
        if not self._audio_started:  # nothing to say (or all failed): still a well-formed answer
            await self.write_event(AudioStart(rate=self._rate, width=WIDTH, channels=CHANNELS).event())
        await self.write_event(AudioStop().event())
        self._audio_started = False

    async def _speak(self, text: str, voice: Any) -> None:
        """Synthesize ``text`` and send its audio as it comes (AudioStart before the first)."""
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[Any] = asyncio.Queue()

        def put(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed under a job that was being stopped
                loop.call_soon_threadsafe(pieces.put_nowait, item)

        name = voice.name if voice is not None else None
        language = voice.language if voice is not None else None
        stop = threading.Event()
        job = asyncio.ensure_future(asyncio.to_thread(self._run_job, text, name, language, put, stop))
        try:
            while (item := await pieces.get()) is not None:
                if isinstance(item, WyomingError):
                    raise item
                rate, pcm = item
                if not self._audio_started:
                    self._rate = rate
                    await self.write_event(AudioStart(rate=rate, width=WIDTH, channels=CHANNELS).event())
                    self._audio_started = True
                step = SAMPLES_PER_EVENT * WIDTH
                for i in range(0, len(pcm), step):
                    await self.write_event(
                        AudioChunk(rate=rate, width=WIDTH, channels=CHANNELS, audio=pcm[i : i + step]).event()
                    )
        except BaseException:
            # Failed, cancelled or disconnected: the thread sees the flag within a
            # second and cancels the daemon's job; nothing here waits for it.
            stop.set()
            raise
        await job  # it has handed over its last piece and is ending

    def _run_job(self, text: str, voice: str | None, language: str | None, put: Any, stop: threading.Event) -> None:
        """In a worker thread: run one daemon job, handing (rate, pcm) pieces to the event loop."""
        try:
            with self.link.client() as client:
                options = {"language": language} if language else {}
                if voice is not None:
                    known = {v.name.casefold(): v.name for v in map(VoiceInfo.from_data, client.voices_list())}
                    if voice.casefold() not in known:
                        raise WyomingError(f"no voice named {voice!r} in the Chatterbox Tray library", "unknown_voice")
                    voice = known[voice.casefold()]
                stream = open_synthesis(
                    client, text, voice, options, should_stop=lambda: stop.is_set() or self._stop.is_set()
                )
                for chunk in stream:
                    put((chunk.sample_rate, to_int16(chunk.samples)))
        except Exception as exc:
            put(as_wyoming_error(exc))
        finally:
            put(None)


async def run(uri: str, link: DaemonClients, started: Any = None) -> None:
    """Serve until cancelled; ``started(server)`` is called once listening (its ``_server`` has the port)."""
    server = AsyncServer.from_uri(uri)
    await server.start(partial(ChatterboxHandler, link))
    try:
        if started is not None:
            started(server)
        await asyncio.Event().wait()
    finally:
        await server.stop()
