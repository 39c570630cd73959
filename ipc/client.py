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
import itertools
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from . import endpoints
from .protocol import (
    FINAL_KINDS,
    MAX_FRAME_BYTES,
    Message,
    ProtocolError,
    decode,
    encode,
    request_header,
)

#: How long a plain request waits for its answer. The daemon answers control
#: requests from its main loop, which model work never blocks.
DEFAULT_TIMEOUT = 10.0
#: How long a streaming request waits between two replies. The daemon sends a
#: "progress" reply at least every second while a job is queued or running.
STREAM_GAP_TIMEOUT = 30.0


class DaemonUnavailable(ConnectionError):
    """No daemon answered: none runs, it died, or it is not ours."""


@dataclass(frozen=True)
class Chunk:
    """One synthesized piece of text: float32 mono samples and where it came from."""

    index: int
    samples: Any  # numpy.ndarray of float32
    sample_rate: int
    text: str
    span: tuple[int, int]


@dataclass
class Synthesis:
    """A running ``synthesize`` request: iterate for chunks, then read ``summary``.

    Leaving the loop early (break, an exception, Ctrl-C) cancels the job so
    the daemon stops spending the model on audio nobody will hear.
    """

    client: Client
    req_id: str
    job: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)
    _done: bool = False

    def __iter__(self) -> Iterator[Chunk]:
        import numpy as np

        try:
            for msg in self.client._replies(self.req_id, STREAM_GAP_TIMEOUT):
                head = msg.header
                kind = head["kind"]
                if kind == "accepted":
                    self.job = head.get("job")
                elif kind == "progress":
                    self.progress = head.get("progress", {})
                elif kind == "chunk":
                    if not msg.buffers:
                        raise ProtocolError("bad_message", "chunk reply without audio")
                    yield Chunk(
                        index=int(head["index"]),
                        samples=np.frombuffer(msg.buffers[0], dtype="<f4"),
                        sample_rate=int(head["sample_rate"]),
                        text=str(head.get("text", "")),
                        span=tuple(head.get("span", (0, 0))),  # type: ignore[arg-type]
                    )
                elif kind == "result":
                    self.summary = head.get("result", {})
            self._done = True
        except ProtocolError:
            self._done = True  # the daemon ended the job itself
            raise
        finally:
            if not self._done:
                self.cancel()

    def cancel(self) -> None:
        """Ask the daemon to cancel this job (harmless if it already ended)."""
        self._done = True
        with contextlib.suppress(ProtocolError, DaemonUnavailable):
            self.client.call("cancel", {"request": self.req_id}, timeout=2.0)

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


class Client:
    """A blocking connection to the daemon's request socket.

    One client is for one thread (ZeroMQ sockets are not thread-safe).
    """

    def __init__(
        self,
        info: endpoints.ConnectionInfo | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        context: zmq.Context | None = None,
    ) -> None:
        self.info = info or endpoints.read_connection()
        self.timeout = timeout
        self._key = self.info.key_bytes
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES * 2)
        self._sock.connect(self.info.requests)
        self._ids = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:8]

    def close(self) -> None:
        """Close the socket; pending requests are abandoned."""
        self._sock.close(0)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- core -------------------------------------------------------------

    def send(self, op: str, args: dict[str, Any] | None = None, buffers: tuple | list = ()) -> str:
        """Send a request and return its id; read answers with ``_replies``."""
        req_id = f"{self._prefix}-{next(self._ids)}"
        self._sock.send_multipart(encode(self._key, request_header(req_id, op, args), buffers), copy=False)
        return req_id

    def _replies(self, req_id: str, gap_timeout: float) -> Iterator[Message]:
        """Yield replies to ``req_id`` until the final one; raise on error or silence.

        Replies to other (abandoned) requests are skipped: a client that timed
        out once must not read an old answer as the new one.
        """
        while True:
            if not self._sock.poll(int(gap_timeout * 1000)):
                raise DaemonUnavailable(f"no answer from the daemon within {gap_timeout:.0f} s")
            msg = decode(self._key, self._sock.recv_multipart())
            if msg.header.get("id") != req_id:
                continue
            kind = msg.header.get("kind")
            if kind == "error":
                err = msg.header.get("error") or {}
                raise ProtocolError(str(err.get("code", "internal")), str(err.get("message", "")))
            yield msg
            if kind in FINAL_KINDS:
                return

    def call(
        self,
        op: str,
        args: dict[str, Any] | None = None,
        buffers: tuple | list = (),
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send a request and return its final result; raise ProtocolError on error."""
        req_id = self.send(op, args, buffers)
        result: dict[str, Any] = {}
        for msg in self._replies(req_id, timeout or self.timeout):
            if msg.header["kind"] == "result":
                result = msg.header.get("result") or {}
        return result

    # -- ops ---------------------------------------------------------------

    def ping(self) -> float:
        """Round-trip time in seconds."""
        start = time.perf_counter()
        self.call("ping")
        return time.perf_counter() - start

    def hello(self) -> dict[str, Any]:
        """Versions and what the daemon and its loaded model support."""
        return self.call("hello")

    def status(self) -> dict[str, Any]:
        """State (starting, loading, warming_up, ready, failed), progress, error."""
        return self.call("status")

    def retry_load(self) -> dict[str, Any]:
        """Ask a failed daemon to load its model again."""
        return self.call("retry_load")

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
        return self.call("voices.list")["voices"]

    def voices_add(
        self, name: str, *, path: str | os.PathLike | None = None, data: bytes | None = None
    ) -> dict[str, Any]:
        """Add a voice from a clip file or its bytes; the bytes travel in the message."""
        if (path is None) == (data is None):
            raise ValueError("give exactly one of path or data")
        source = ""
        if path is not None:
            data = Path(path).read_bytes()
            source = Path(path).name
        return self.call("voices.add", {"name": name, "source_name": source}, [data], timeout=60.0)

    def voices_rename(self, name: str, new_name: str) -> dict[str, Any]:
        """Rename a voice."""
        return self.call("voices.rename", {"name": name, "new_name": new_name})

    def voices_remove(self, name: str) -> dict[str, Any]:
        """Remove a voice and its clip."""
        return self.call("voices.remove", {"name": name})

    def voices_default(self, name: str | None = None, *, clear: bool = False) -> dict[str, Any]:
        """Get the default voice, or set it with ``name``, or unset it with ``clear``."""
        args: dict[str, Any] = {}
        if name is not None:
            args["name"] = name
        if clear:
            args["clear"] = True
        return self.call("voices.default", args)

    def synthesize(
        self,
        text: str,
        *,
        voice: str | None = None,
        voice_path: str | os.PathLike | None = None,
        voice_data: bytes | None = None,
        **options: Any,
    ) -> Synthesis:
        """Start synthesis; iterate the result for chunks as they are made.

        ``voice`` names a library voice; ``voice_path`` a clip on disk the
        daemon reads; ``voice_data`` clip bytes sent with the request. With none
        of them the default voice is used. ``options``: exaggeration,
        cfg_weight, temperature, seed, language.
        """
        args: dict[str, Any] = {"text": text, "options": options}
        buffers: list[bytes] = []
        if voice is not None:
            args["voice"] = voice
        if voice_path is not None:
            args["voice_path"] = str(Path(voice_path).resolve())
        if voice_data is not None:
            args["voice_data"] = True
            buffers.append(voice_data)
        return Synthesis(self, self.send("synthesize", args, buffers))

    def cancel(self, job: str) -> dict[str, Any]:
        """Cancel a job by its id."""
        return self.call("cancel", {"job": job})

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
        **options: Any,
    ) -> dict[str, Any]:
        """Queue text on the daemon's speaker; returns ``{job, dropped, position, ...}`` at once.

        ``priority``: "urgent", "quick", "text" or "notification" (docs/protocol.md).
        ``volume`` (0-1) scales this job only, on top of the speaker's volume.
        """
        args: dict[str, Any] = {"text": text, "options": options, "priority": priority}
        if volume is not None:
            args["volume"] = volume
        buffers: list[bytes] = []
        if voice is not None:
            args["voice"] = voice
        if voice_path is not None:
            args["voice_path"] = str(Path(voice_path).resolve())
        if voice_data is not None:
            args["voice_data"] = True
            buffers.append(voice_data)
        return self.call("speak", args, buffers)

    def wait(self, job: str, timeout: float | None = None, stop_on_disconnect: bool = False) -> dict[str, Any]:
        """Block until a job ends; returns ``{job, state, summary, playback, error}``.

        ``timeout`` bounds the silence between the daemon's progress replies,
        not the whole wait (speech can last hours). With ``stop_on_disconnect``
        the daemon stops the job if this client dies (or closes) before it ends.
        """
        args: dict[str, Any] = {"job": job}
        if stop_on_disconnect:
            args["stop_on_disconnect"] = True
        return self.call("wait", args, timeout=timeout)

    def stop(self, job: str | None = None, all: bool = False) -> dict[str, Any]:
        """Stop the playing speech job, one job, or (``all``) everything queued too."""
        args: dict[str, Any] = {"all": all}
        if job is not None:
            args["job"] = job
        return self.call("stop", args)

    def pause(self) -> dict[str, Any]:
        """Pause the speaker."""
        return self.call("pause")

    def resume(self) -> dict[str, Any]:
        """Resume the speaker."""
        return self.call("resume")

    def skip(self) -> dict[str, Any]:
        """Skip to the next sentence."""
        return self.call("skip")

    def playback(self) -> dict[str, Any]:
        """The speaker's state, queue, device, volume and underruns."""
        return self.call("playback")

    def voices_play(self, name: str) -> dict[str, Any]:
        """Play a voice's reference clip on the daemon's speaker (replaces what is playing)."""
        return self.call("voices.play", {"name": name})

    def settings_get(self) -> dict[str, Any]:
        """The daemon's settings (``settings``), which are editable and which need a reload."""
        return self.call("settings.get")

    def settings_set(self, **values: Any) -> dict[str, Any]:
        """Change settings; returns the new settings and whether a model reload is needed."""
        return self.call("settings.set", {"values": values})

    def reload(self) -> dict[str, Any]:
        """Load the model again with the current settings."""
        return self.call("reload")

    def audio_devices(self) -> dict[str, Any]:
        """Output devices, the chosen one and the volume."""
        return self.call("audio.devices")

    def audio_set(self, device: str | None = None, volume: float | None = None) -> dict[str, Any]:
        """Choose the output device ("" for the system default) and/or the volume (0-1)."""
        args: dict[str, Any] = {}
        if device is not None:
            args["device"] = device
        if volume is not None:
            args["volume"] = volume
        return self.call("audio.set", args)

    def cache_stats(self) -> dict[str, Any]:
        """Hits by tier, misses, hit rate, entries and bytes, seconds saved."""
        return self.call("cache.stats")

    def cache_clear(self, voice: str | None = None) -> dict[str, Any]:
        """Drop cached conditionals of one voice, or all."""
        return self.call("cache.clear", {"voice": voice} if voice else {})

    def stats(self) -> dict[str, Any]:
        """Model, device, GPU memory and utilization, process RAM and CPU."""
        return self.call("stats")

    def shutdown(self) -> dict[str, Any]:
        """Stop the daemon after it has answered."""
        return self.call("shutdown")


class EventStream:
    """The daemon's broadcast: ``(topic, data)`` pairs, signature-checked."""

    def __init__(
        self,
        info: endpoints.ConnectionInfo | None = None,
        topics: tuple[str, ...] = ("",),
        context: zmq.Context | None = None,
    ) -> None:
        self.info = info or endpoints.read_connection()
        self._key = self.info.key_bytes
        self._sock = (context or zmq.Context.instance()).socket(zmq.SUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        for topic in topics:
            self._sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self._sock.connect(self.info.events)

    @property
    def socket(self) -> zmq.Socket:
        """The SUB socket, for callers that poll it themselves (a Qt notifier)."""
        return self._sock

    def recv(self, timeout: float | None = None) -> tuple[str, dict[str, Any]] | None:
        """The next event, or None after ``timeout`` seconds. Bad events are skipped."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._sock.poll(None if wait is None else int(wait * 1000)):
                return None
            frames = self._sock.recv_multipart()
            try:
                msg = decode(self._key, frames[1:])
            except ProtocolError:
                continue
            return str(msg.header.get("event")), msg.header.get("data") or {}

    def close(self) -> None:
        """Close the socket."""
        self._sock.close(0)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":
        return True  # no cheap check; the ping decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def try_connect(timeout: float = 1.5) -> Client | None:
    """A client to a live daemon, or None when none answers a ping."""
    try:
        info = endpoints.read_connection()
    except (FileNotFoundError, ProtocolError):
        return None
    if not _pid_alive(info.pid):
        return None
    client = Client(info, timeout=timeout)
    try:
        client.ping()
    except (DaemonUnavailable, ProtocolError):
        client.close()
        return None
    client.timeout = DEFAULT_TIMEOUT
    return client


def connect(autostart: bool = True, start_timeout: float = 60.0, daemon_args: list[str] | None = None) -> Client:
    """Connect to the daemon, starting one when none answers (unless told not to)."""
    client = try_connect()
    if client is not None:
        return client
    if not autostart:
        raise DaemonUnavailable("no daemon is running (start one with `chatterbox-tray daemon`)")
    from .spawn import spawn_daemon

    proc = spawn_daemon(daemon_args or [])
    deadline = time.monotonic() + start_timeout
    while time.monotonic() < deadline:
        client = try_connect()
        if client is not None:
            return client
        code = proc.poll()
        if code is not None and code != 0:
            raise DaemonUnavailable(f"the daemon exited with status {code}; see {endpoints.log_dir() / 'daemon.log'}")
        time.sleep(0.1)
    raise DaemonUnavailable(f"started a daemon but it did not answer within {start_timeout:.0f} s")
