"""The Python client: a blocking core for scripts, the CLI and the GUI's worker.

Imports zmq and the standard library only (numpy lazily, for audio), so a
script or the hotkey pays milliseconds, not the seconds torch costs.

    from chatterbox_tray.ipc.client import connect
    with connect() as daemon:
        daemon.voices_add("narrator", path="clip.wav")
        for chunk in daemon.synthesize("Hello there.", voice="narrator"):
            play(chunk.samples, chunk.sample_rate)
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import zmq

from . import endpoints
from . import requests as rq
from .core import DEFAULT_TIMEOUT, STREAM_GAP_TIMEOUT, ClientCore, DaemonFinder, DaemonUnavailable
from .messages import Accepted, ChunkReply, ErrorReply, Progress, RawRequest, Reply, Request, Result
from .protocol import FINAL_KINDS, MAX_FRAME_BYTES, Message, ProtocolError
from .remote import DAEMON_ENV, CurveConnection

__all__ = [
    "DEFAULT_TIMEOUT",
    "STREAM_GAP_TIMEOUT",
    "Chunk",
    "Client",
    "DaemonUnavailable",
    "EventStream",
    "Synthesis",
    "chosen_daemon",
    "connect",
]


@dataclass(frozen=True)
class Chunk:
    """One sentence, or one piece of it, as float32 mono samples, and where in the text it came from."""

    index: int
    samples: Any  # numpy.ndarray of float32
    sample_rate: int
    text: str
    span: tuple[int, int]
    #: Which piece of sentence ``index`` this is; a sentence may come in pieces (token streaming).
    piece: int = 0
    #: The sentence's last piece.
    final: bool = True

    @classmethod
    def from_reply(cls, reply: ChunkReply) -> Chunk:
        """A ``chunk`` reply's chunk; ProtocolError when it carries no audio."""
        import numpy as np

        if reply.audio is None:
            raise ProtocolError("bad_message", "chunk reply without audio")
        samples = np.frombuffer(reply.audio, dtype="<f4")
        span = tuple(reply.span[:2])
        return cls(reply.index, samples, reply.sample_rate, reply.text, span, reply.piece, reply.final)  # type: ignore[arg-type]


@dataclass
class Synthesis:
    """A running ``synthesize`` request: iterate for chunks, then read ``summary``.

    Leaving the loop early (break, an exception, Ctrl-C) cancels the job so
    the daemon stops spending the model on audio nobody will hear.
    """

    client: Client
    req_id: str
    job: str | None = None
    #: Jobs ahead of it for the model when it was accepted (see ``accepted``).
    position: int | None = None
    #: How many sentences (chunks) the daemon cut the text into, once accepted.
    chunks: int | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)
    #: Polled at every reply (one comes at least every second): True stops
    #: the iteration and cancels the job, from any thread, without touching
    #: this client's socket (a server's other thread, say).
    should_stop: Callable[[], bool] = lambda: False
    _replies: Iterator[Message] | None = None
    _done: bool = False

    def accepted(self) -> Synthesis:
        """Wait for the daemon's ``accepted``; raise its error if it refused the request.

        For servers that must know before they answer their own client (an
        HTTP status line cannot be taken back).
        """
        if any(isinstance(reply, Accepted) for reply in self._read()):
            return self
        raise ProtocolError("internal", "the daemon ended the request without accepting it")

    def _read(self) -> Iterator[Reply | Chunk]:
        """The replies, typed (a chunk's as a ``Chunk``), once what they say of the job is noted."""
        self._replies = self._replies or self.client.replies(self.req_id, STREAM_GAP_TIMEOUT)
        try:
            for msg in self._replies:
                reply = Reply.from_header(msg.header, msg.buffers)
                if isinstance(reply, Accepted):
                    self.job, self.position, self.chunks = reply.job, reply.position, reply.chunks
                elif isinstance(reply, Progress):
                    self.progress = reply.progress
                elif isinstance(reply, Result):
                    self.summary = reply.result
                yield Chunk.from_reply(reply) if isinstance(reply, ChunkReply) else reply
        except ProtocolError:
            self._done = True  # the daemon ended the job itself
            raise
        self._done = True  # (not when the caller stops reading: a GeneratorExit)

    def __iter__(self) -> Iterator[Chunk]:
        try:
            for item in self._read():
                if self.should_stop():
                    return  # not done: the finally below cancels the job
                if isinstance(item, Chunk):
                    yield item
        finally:
            if not self._done:
                self.cancel()

    def cancel(self) -> None:
        """Ask the daemon to cancel this job (harmless if it already ended)."""
        self._done = True
        with contextlib.suppress(ProtocolError, DaemonUnavailable):
            self.client.request(rq.cancel(request=self.req_id), timeout=2.0)

    def collect(self) -> tuple[Any, int]:
        """Run to the end and return (all samples, sample rate)."""
        import numpy as np

        parts, rate = [], 0
        for chunk in self:
            parts.append(chunk.samples)
            rate = chunk.sample_rate
        rate = rate or int(self.summary.get("sample_rate", 0))
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        return audio, rate


_C = TypeVar("_C", bound="_Connection")


class _Connection:
    """One signed socket to the daemon (``info``: its connection file's, by default), closed on leaving ``with``."""

    def __init__(self, info: endpoints.ConnectionInfo | None, context: zmq.Context | None, kind: int) -> None:
        self.info = info or endpoints.read_connection()
        self._core = ClientCore(self.info.key_bytes)
        self._sock = (context or zmq.Context.instance()).socket(kind)
        self._sock.setsockopt(zmq.LINGER, 0)

    @property
    def socket(self) -> zmq.Socket:
        """The socket, for a caller that polls it itself (a Qt notifier) or takes it over (the tray app's link)."""
        return self._sock

    def close(self) -> None:
        """Close the socket; pending requests are abandoned."""
        self._sock.close(0)

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_P = ParamSpec("_P")


def _op(build: Callable[_P, Request], doc: str) -> Callable[Concatenate[Client, _P], dict[str, Any]]:
    """A ``Client`` method that sends what ``build`` (an ``ipc.requests`` builder) returns: its result object."""

    def method(self: Client, *args: _P.args, **kwargs: _P.kwargs) -> dict[str, Any]:
        return self.request(build(*args, **kwargs))

    method.__doc__ = doc
    return method


class Client(_Connection):
    """A blocking connection to the daemon's request socket, for one thread (ZeroMQ sockets are not thread-safe)."""

    def __init__(
        self,
        info: endpoints.ConnectionInfo | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        context: zmq.Context | None = None,
    ) -> None:
        super().__init__(info, context, zmq.DEALER)
        self.timeout = timeout
        self._sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES * 2)
        if isinstance(self.info, CurveConnection):
            # The daemon's pinned key means that a machine pretending to be it cannot
            # finish the handshake; our own key pair is what the daemon authorizes.
            self._sock.setsockopt(zmq.CURVE_SERVERKEY, self.info.server_key.encode("ascii"))
            self._sock.setsockopt(zmq.CURVE_PUBLICKEY, self.info.public_key.encode("ascii"))
            self._sock.setsockopt(zmq.CURVE_SECRETKEY, self.info.secret_key.encode("ascii"))
            # Notice a vanished daemon (a network cut) instead of waiting on a dead TCP connection.
            self._sock.setsockopt(zmq.HEARTBEAT_IVL, 2000)
            self._sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 6000)
        self._sock.connect(self.info.requests)

    @property
    def remote(self) -> bool:
        """Whether this is a daemon on another computer (its speaker is not ours)."""
        return self.info.transport == "curve"

    @property
    def daemon_name(self) -> str:
        """The paired name of a remote daemon ("gpu-box"); "local" for this computer's."""
        return self.info.name if isinstance(self.info, CurveConnection) else "local"

    # -- core -------------------------------------------------------------

    def submit(self, request: Request) -> str:
        """Send a built request and return its id; read answers with ``replies``."""
        req_id = self._core.new_id()
        self._sock.send_multipart(self._core.encode(req_id, request), copy=False)
        return req_id

    def send(self, op: str, args: dict[str, Any] | None = None, buffers: tuple | list = ()) -> str:
        """Send a request by op name (ops this client has no method for) and return its id."""
        return self.submit(RawRequest(op, dict(args or {}), tuple(buffers)))

    def replies(self, req_id: str, gap_timeout: float) -> Iterator[Message]:
        """Yield replies to ``req_id`` until the final one; raise on error or silence.

        Replies to other (abandoned) requests are skipped: a client that timed
        out once must not read an old answer as the new one.
        """
        while True:
            if not self._sock.poll(int(gap_timeout * 1000)):
                raise DaemonUnavailable(f"no answer from the daemon within {gap_timeout:.0f} s")
            msg = self._core.decode_reply(self._sock.recv_multipart())
            if msg.header.get("id") != req_id:
                continue
            reply = Reply.from_header(msg.header, msg.buffers)
            if isinstance(reply, ErrorReply):
                raise reply.raised()
            yield msg
            if reply.kind in FINAL_KINDS:
                return

    def request(self, request: Request, timeout: float | None = None) -> dict[str, Any]:
        """Send a built request and return its final result; raise ProtocolError on error.

        ``timeout`` bounds the silence between replies; by default the
        request's own, else this client's.
        """
        req_id = self.submit(request)
        gap = timeout or request.timeout or self.timeout
        result: dict[str, Any] = {}
        for msg in self.replies(req_id, gap):
            if msg.header["kind"] == "result":
                result = Result.from_header(msg.header).result
        return result

    def call(
        self, op: str, args: dict[str, Any] | None = None, buffers: tuple | list = (), timeout: float | None = None
    ) -> dict[str, Any]:
        """A request by op name (ops this client has no method for); see ``request``."""
        return self.request(RawRequest(op, dict(args or {}), tuple(buffers)), timeout=timeout)

    # -- ops (``_op``: those that only send what their builder makes) ------------------------

    def ping(self) -> float:
        """Round-trip time in seconds."""
        start = time.perf_counter()
        self.request(rq.ping())
        return time.perf_counter() - start

    hello = _op(rq.hello, "Versions and what the daemon and its loaded model support.")
    status = _op(rq.status, "State (starting, loading, warming_up, ready, failed), progress, error.")
    retry_load = _op(rq.retry_load, "Ask a failed daemon to load its model again.")
    reload = _op(rq.reload, "Load the model again with the current settings.")
    stats = _op(rq.stats, "Model, device, GPU memory and utilization, process RAM and CPU.")
    shutdown = _op(rq.shutdown, "Stop the daemon after it has answered.")

    def wait_ready(self, timeout: float = 600.0) -> dict[str, Any]:
        """Block until the model is ready; raise ProtocolError if loading failed."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status["state"] == "ready":
                return status
            if status["state"] == "failed":
                raise ProtocolError("model_failed", status.get("error") or "model failed to load")
            if time.monotonic() > deadline:
                raise DaemonUnavailable(f"model not ready after {timeout:.0f} s")
            time.sleep(0.2)

    def voices_list(self) -> list[dict[str, Any]]:
        """All voices with their cache state; the default is marked."""
        return self.request(rq.voices_list())["voices"]

    def voices_add(
        self, name: str, *, path: str | os.PathLike | None = None, data: bytes | None = None
    ) -> dict[str, Any]:
        """Add a voice from a clip file or its bytes; the bytes travel in the message."""
        if (path is None) == (data is None):
            raise ValueError("give exactly one of path or data")
        if path is not None:
            return self.request(rq.voices_add(name, Path(path).read_bytes(), Path(path).name))
        return self.request(rq.voices_add(name, data or b""))  # (data is not None here)

    voices_rename = _op(rq.voices_rename, "Rename a voice.")
    voices_remove = _op(rq.voices_remove, "Remove a voice and its clip.")
    voices_default = _op(rq.voices_default, "Get the default voice, set it with ``name``, or unset it with ``clear``.")
    voices_play = _op(rq.voices_play, "Play a voice's reference clip on the daemon's speaker, replacing what plays.")

    def synthesize(
        self,
        text: str,
        *,
        voice: str | None = None,
        voice_path: str | os.PathLike | None = None,
        voice_data: bytes | None = None,
        rate: float | None = None,
        **options: Any,
    ) -> Synthesis:
        """Start synthesis; iterate the result for chunks as they are made.

        ``voice`` names a library voice; ``voice_path`` a clip on disk the
        daemon reads; ``voice_data`` clip bytes sent with the request. With none
        of them the default voice is used. ``rate``: speaking rate, 0.5-2.0
        (None: the daemon's setting). ``options``: exaggeration, cfg_weight,
        temperature, seed, language.
        """
        request = rq.synthesize(
            text, voice=voice, voice_path=voice_path, voice_data=voice_data, options=options, rate=rate
        )
        return Synthesis(self, self.submit(request))

    cancel = _op(rq.cancel, "Cancel a job by its id, or by the id of the request that made it.")

    # -- the daemon's speaker ---------------------------------------------------------

    def speak(
        self,
        text: str,
        *,
        voice: str | None = None,
        voice_path: str | os.PathLike | None = None,
        voice_data: bytes | None = None,
        priority: str = "text",
        volume: float | None = None,
        rate: float | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Queue text on the daemon's speaker; returns ``{job, dropped, position, ...}`` at once.

        ``priority``: "urgent", "quick", "text" or "notification" (docs/protocol.md).
        ``volume`` (0-1) scales this job only, on top of the speaker's volume.
        """
        request = rq.speak(
            text,
            voice=voice,
            voice_path=voice_path,
            voice_data=voice_data,
            priority=priority,
            volume=volume,
            options=options,
            rate=rate,
        )
        return self.request(request)

    def wait(self, job: str, timeout: float | None = None, stop_on_disconnect: bool = False) -> dict[str, Any]:
        """Block until a job ends; returns ``{job, state, summary, playback, error}``.

        ``timeout`` bounds the silence between the daemon's progress replies,
        not the whole wait (speech can last hours). With ``stop_on_disconnect``
        the daemon stops the job if this client dies (or closes) before it ends.
        """
        return self.request(rq.wait(job, stop_on_disconnect=stop_on_disconnect), timeout=timeout)

    stop = _op(rq.stop, "Stop the playing speech job, one job, or (``all``) everything queued too.")
    pause = _op(rq.pause, "Pause the speaker.")
    resume = _op(rq.resume, "Resume the speaker.")
    skip = _op(rq.skip, "Skip to the next sentence.")
    playback = _op(rq.playback, "The speaker's state, queue, device, volume and underruns.")
    audio_devices = _op(rq.audio_devices, "Output devices, the chosen one and the volume.")
    audio_set = _op(rq.audio_set, 'Choose the output device ("" for the system default) and/or the volume (0-1).')

    settings_get = _op(rq.settings_get, "The daemon's settings, which are editable and which need a reload.")

    def settings_set(self, **values: Any) -> dict[str, Any]:
        """Change settings; returns the new settings and whether a model reload is needed."""
        return self.request(rq.settings_set(values))

    cache_stats = _op(rq.cache_stats, "Hits by tier, misses, hit rate, entries and bytes, seconds saved.")
    cache_clear = _op(rq.cache_clear, "Drop cached conditionals of one voice, or all.")


class EventStream(_Connection):
    """The daemon's broadcast: ``(topic, data)`` pairs, signature-checked."""

    def __init__(
        self,
        info: endpoints.ConnectionInfo | None = None,
        topics: tuple[str, ...] = ("",),
        context: zmq.Context | None = None,
    ) -> None:
        info = info or endpoints.read_connection()
        if not info.events:
            raise DaemonUnavailable("a remote daemon publishes no events to other computers (docs/security.md)")
        super().__init__(info, context, zmq.SUB)
        for topic in topics:
            self._sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self._sock.connect(self.info.events)

    def recv(self, timeout: float | None = None) -> tuple[str, dict[str, Any]] | None:
        """The next event, or None after ``timeout`` seconds. Bad events are skipped."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._sock.poll(None if wait is None else int(wait * 1000)):
                return None
            try:
                msg = self._core.decode_event(self._sock.recv_multipart())
            except ProtocolError:
                continue
            return str(msg.header.get("event")), msg.header.get("data") or {}


def chosen_daemon(daemon: str | None = None) -> str | None:
    """The remote daemon a client should use: ``daemon``, else ``$CHATTERBOX_TRAY_DAEMON``, else None (local).

    "local" (or an empty value) means the daemon on this machine.
    """
    name = daemon if daemon is not None else os.environ.get(DAEMON_ENV, "")
    return None if name in ("", "local") else name


def connect(
    autostart: bool = True, start_timeout: float = 60.0, daemon_args: list[str] | None = None, daemon: str | None = None
) -> Client:
    """Connect to the daemon, starting one when none answers (unless told not to).

    ``daemon`` names a paired remote daemon (``chatterbox-tray remote add``);
    by default ``$CHATTERBOX_TRAY_DAEMON``, else this machine's own daemon.
    A remote daemon is never started from here. The policy is ``DaemonFinder``'s.
    """
    finder = DaemonFinder(chosen_daemon(daemon), autostart=autostart, daemon_args=daemon_args)
    ping_s = 1.5 if finder.remote is None else 5.0
    deadline = time.monotonic() + start_timeout
    started = False
    while True:
        info = finder.find()
        if info is not None:
            client = Client(info, timeout=ping_s)
            try:
                client.ping()
                client.timeout = DEFAULT_TIMEOUT
                return client
            except (DaemonUnavailable, ProtocolError) as exc:
                client.close()
                if finder.remote is not None and isinstance(exc, ProtocolError):
                    raise  # refused (its owner revoked this computer): say so
            if finder.remote is not None:
                raise DaemonUnavailable(
                    f"{finder.silent(info, ping_s)} (then `chatterbox-tray remote add` again); "
                    "use --daemon local for this machine's daemon"
                ) from None
        if info is not None and started and not finder.starting:  # the one started here left it to this one
            log = endpoints.daemon_log()
            raise DaemonUnavailable(f"the daemon (pid {info.pid}) did not answer within {ping_s:g} s; see {log}")
        started = finder.start() or started
        if not started:
            raise DaemonUnavailable("no daemon is running (start one with `chatterbox-tray daemon`)")
        if time.monotonic() > deadline:
            raise DaemonUnavailable(f"started a daemon but it did not answer within {start_timeout:.0f} s")
        time.sleep(0.1)
