"""Real daemons for tests: a subprocess on real ZeroMQ sockets, and clips to feed it.

``DaemonProcess`` runs ``python -m chatterbox_tray.daemon`` (usually with the
fake engine) under its own ``CHATTERBOX_TRAY_HOME``, with stdout and stderr in
a log file that the test report shows when a test fails. Clients get the
connection file's path explicitly, so the test process never depends on its
own environment to find the daemon.

The clip helpers make reference clips the daemon accepts: real speech from
``espeak-ng`` where it is installed, else a voiced tone (harmonics, vibrato,
syllable-like envelope) of the same length.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from chatterbox_tray.ipc import endpoints
from chatterbox_tray.ipc.client import Client, DaemonUnavailable, EventStream
from chatterbox_tray.ipc.protocol import ProtocolError

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Environment knobs of the fake engine; never inherited from the test run.
FAKE_KNOBS = (
    "CHATTERBOX_TRAY_FAKE_DELAY",
    "CHATTERBOX_TRAY_FAKE_TOKEN_DELAY",
    "CHATTERBOX_TRAY_FAKE_PREPARE_DELAY",
    "CHATTERBOX_TRAY_FAKE_LOAD_DELAY",
    "CHATTERBOX_TRAY_FAKE_FAIL_LOADS",
    "CHATTERBOX_TRAY_FAKE_FAIL_CHECKPOINT",
    "CHATTERBOX_TRAY_FAKE_FAIL_MESSAGE",
    "CHATTERBOX_TRAY_FAKE_PIECES",
    "CHATTERBOX_TRAY_FAKE_HUB",
    "CHATTERBOX_TRAY_FAKE_HUB_STALL_S",
    "CHATTERBOX_TRAY_FAULT",
)

#: Every daemon process started in this test session, oldest first (for logs).
STARTED: list[DaemonProcess] = []


def uid(prefix: str = "v") -> str:
    """A short unique name (voices on the shared daemon outlive one test)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def short_home() -> Path:
    """A fresh, short folder under /tmp (ipc socket paths are limited to 107 bytes)."""
    return Path(tempfile.mkdtemp(prefix="cbt", dir="/tmp"))


class DaemonProcess:
    """One daemon home and the process currently serving it (restartable)."""

    def __init__(
        self,
        home: Path | None = None,
        args: tuple[str, ...] = ("--engine", "fake"),
        env: dict[str, str] | None = None,
    ) -> None:
        self.home = home or short_home()
        self.args = args
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.info: endpoints.ConnectionInfo | None = None
        self._clients: list[Client | EventStream] = []
        self._starts = itertools.count(1)

    # -- paths ---------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        """The runtime folder: lock, sockets, connection file."""
        return self.home / "run"

    @property
    def connection_path(self) -> Path:
        """The connection file (daemon.json)."""
        return self.run_dir / "daemon.json"

    @property
    def pid(self) -> int:
        """The current process's pid."""
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        """Whether the current process is still running."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def sink_path(self) -> Path:
        """Where the daemon's "speaker" writes: ALSA's file plugin, raw float32 mono."""
        return self.home / "played.raw"

    def env(self) -> dict[str, str]:
        """The daemon's environment: ours, minus fake knobs, plus its home, audio sink and knobs."""
        env = {k: v for k, v in os.environ.items() if k not in FAKE_KNOBS}
        env[endpoints.HOME_ENV] = str(self.home)
        env["ALSA_CONFIG_PATH"] = str(write_alsa_file_sink(self.home / "asound.conf", self.sink_path))
        env.update(self.extra_env)
        return env

    def played_settled(self, most_s: float = 0.25, rate: int = 24_000) -> int:
        """Samples in the sink once it stops growing (at most ``most_s`` more than now, else it raises).

        The sink is ALSA's file plugin through ``cat``: what the device took
        just before a stop can reach the file a moment after the stop's reply.
        """
        start = settled = len(self.played())
        for _ in range(10):
            time.sleep(0.15)
            now = len(self.played())
            if now == settled:
                break
            settled = now
        assert settled - start < most_s * rate, f"the sink grew by {(settled - start) / rate:.2f} s after a stop"
        return settled

    def played(self) -> np.ndarray:
        """Everything the daemon has played so far (float32 samples)."""
        try:
            data = self.sink_path.read_bytes()
        except FileNotFoundError:
            return np.zeros(0, dtype=np.float32)
        return np.frombuffer(data[: len(data) // 4 * 4], dtype="<f4")

    # -- lifecycle -------------------------------------------------------------

    def spawn(self) -> subprocess.Popen:
        """Start a process on this home without waiting for anything."""
        self.log_path = self.home / f"daemon-{next(self._starts)}.log"
        with open(self.log_path, "wb") as log:
            # A fault to die at needs tests/support/faults.py's hook installed first.
            faults = ("tests.support.faults",) if self.extra_env.get("CHATTERBOX_TRAY_FAULT") else ()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", *faults, "chatterbox_tray.daemon", *self.args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
                cwd=REPO_ROOT if faults else None,
            )
        self.info = None
        STARTED.append(self)
        return self.proc

    def start(self, ready: bool = True, timeout: float = 60.0) -> DaemonProcess:
        """Spawn, wait until it answers, and (by default) until the model is ready."""
        self.spawn()
        self.wait_connectable(timeout)
        if ready:
            self.wait_ready(timeout)
        return self

    def wait_connectable(self, timeout: float = 60.0) -> endpoints.ConnectionInfo:
        """Wait for this process's connection file and a ping answer."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"daemon exited with status {self.proc.returncode} before answering:\n{self.log_text()}"
                )
            with contextlib.suppress(FileNotFoundError, ProtocolError):
                info = endpoints.read_connection(self.connection_path)
                if info.pid == self.proc.pid:
                    self.info = info
                    with Client(info, timeout=2.0) as client:
                        client.ping()
                    return info
            if time.monotonic() > deadline:
                raise RuntimeError(f"daemon did not answer within {timeout:.0f} s:\n{self.log_text()}")
            time.sleep(0.05)

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        """Block until the model is ready (Client.wait_ready); raise with the log if not."""
        with self.client() as client:
            try:
                return client.wait_ready(timeout)
            except (ProtocolError, DaemonUnavailable) as exc:
                raise RuntimeError(f"daemon not ready: {exc}\n{self.log_text()}") from exc

    def client(self, timeout: float = 10.0) -> Client:
        """A new client of the current process (closed at stop if still open)."""
        assert self.info is not None, "daemon not connectable yet"
        client = Client(self.info, timeout=timeout)
        self._clients.append(client)
        return client

    def events(self, topics: tuple[str, ...] = ("",)) -> EventStream:
        """A new subscriber to the current process's events."""
        assert self.info is not None, "daemon not connectable yet"
        stream = EventStream(self.info, topics)
        self._clients.append(stream)
        return stream

    def close_clients(self) -> None:
        """Close every client and subscriber handed out."""
        for sock in self._clients:
            sock.close()
        self._clients.clear()

    def stop(self, timeout: float = 15.0) -> int | None:
        """Stop the current process: shutdown op, then SIGTERM, then SIGKILL."""
        self.close_clients()
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None and self.info is not None:
            with contextlib.suppress(ProtocolError, DaemonUnavailable), Client(self.info, timeout=3.0) as c:
                c.shutdown()
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and proc.poll() is None:
                proc.send_signal(sig)
            try:
                return proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                continue
        return proc.poll()

    def restart(self, timeout: float = 60.0) -> DaemonProcess:
        """Stop the current process and start a new one on the same home."""
        code = self.stop()
        assert code == 0, f"daemon exited with {code}:\n{self.log_text()}"
        return self.start(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the current process and reap it."""
        self.close_clients()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=15)

    def cleanup(self) -> None:
        """Stop the process and remove the home."""
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    def log_text(self) -> str:
        """The current process's log (stdout and stderr)."""
        if self.log_path is None:
            return "(never started)"
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"


@contextlib.contextmanager
def narrated_daemon(clips: Clips, **kwargs: Any) -> Iterator[DaemonProcess]:
    """A fake daemon of its own with "narrator" as its default voice, removed afterwards.

    ``kwargs`` go to `DaemonProcess`; a module that needs files in the home
    before the start (a words.json, settings) writes them through ``files``:
    ``{"data/words.json": text}``, made private as the daemon makes its own.
    """
    files: dict[str, str] = kwargs.pop("files", {})
    proc = DaemonProcess(**kwargs)
    try:
        for name, text in files.items():
            path = proc.home / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            path.chmod(0o600)
        proc.start()
        with proc.client() as c:
            c.voices_add("narrator", data=clips.new())
            c.voices_default("narrator")
        yield proc
    finally:
        proc.cleanup()


def write_alsa_file_sink(conf: Path, sink: Path) -> Path:
    """An ALSA config whose default output "plays" into ``sink`` (DESIGN.md).

    The file plugin hands what PortAudio sends (float32 mono here) to ``cat``,
    which appends it to ``sink``, and the null slave discards it; the daemon paces its writes by the clock, so the
    file fills in real time as a speaker would play.
    """
    conf.write_text(
        "</usr/share/alsa/alsa.conf>\n"
        "pcm.!default {\n"
        "  type file\n"
        '  slave.pcm "null"\n'
        # Through "cat >>" so that every time the daemon reopens the device (it
        # lets go of it when idle) the file grows instead of starting again.
        f'  file "| cat >> {shlex.quote(str(sink))}"\n'
        '  format "raw"\n'
        "}\n",
        encoding="utf-8",
    )
    return conf


class EventLog:
    """Events received so far from one subscriber, with waiting helpers."""

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def sync(self, client: Client, timeout: float = 10.0) -> None:
        """Return once the subscription is live.

        ZeroMQ subscriptions take effect a little after ``connect``; events
        published before are lost. Re-setting the default voice to what it is
        publishes a ``voices`` event and changes nothing, so we do that until
        one arrives.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            default = client.voices_default()["default"]
            if default:
                client.voices_default(default)
            else:
                client.voices_default(clear=True)
            if self.wait_for(lambda t, d: t == "voices", timeout=0.2, raise_on_timeout=False):
                return
        raise AssertionError("event subscription never became live")

    def wait_for(self, match, timeout: float = 15.0, raise_on_timeout: bool = True):
        """Read events until one satisfies ``match(topic, data)``; return its data."""
        for topic, data in self.seen:
            if match(topic, data):
                return data
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            event = self.stream.recv(timeout=left)
            if event is None:
                break
            self.seen.append(event)
            if match(*event):
                return event[1]
        if raise_on_timeout:
            raise AssertionError(f"no matching event within {timeout} s; seen: {self.seen}")
        return None

    def job_events(self, *jobs: str) -> list[tuple[str, str]]:
        """(job, event) pairs of the given jobs, in the order they were published."""
        return [(d["job"], d["event"]) for t, d in self.seen if t == "job" and d.get("job") in jobs]

    def wait_job(self, job: str, *events: str, timeout: float = 15.0) -> dict[str, Any]:
        """Wait for a job event of ``job`` whose kind is one of ``events``."""
        return self.wait_for(lambda t, d: t == "job" and d.get("job") == job and d.get("event") in events, timeout)


def accepted(client: Client, synthesis) -> dict[str, Any]:
    """Read a synthesize request's ``accepted`` reply and note the job id on it.

    Iterating the Synthesis afterwards goes on with the next replies.
    """
    for msg in client.replies(synthesis.req_id, 10.0):
        if msg.header["kind"] == "accepted":
            synthesis.job = msg.header["job"]
            return msg.header
        if msg.header["kind"] != "progress":
            raise AssertionError(f"expected 'accepted', got {msg.header}")
    raise AssertionError("request ended without 'accepted'")


# -- clips -------------------------------------------------------------------


def wav_bytes(samples: np.ndarray, sr: int, subtype: str = "PCM_16") -> bytes:
    """Encode mono float samples as a WAV file's bytes."""
    buf = io.BytesIO()
    sf.write(buf, samples, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def voiced_tone(seconds: float = 7.0, f0: float = 140.0, sr: int = 24_000, amp: float = 0.3) -> bytes:
    """A speech-like voiced tone as WAV bytes: harmonics, vibrato, syllable envelope."""
    t = np.arange(round(seconds * sr)) / sr
    pitch = f0 * (1 + 0.03 * np.sin(2 * np.pi * 5.0 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    wave = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 3.5 * t) ** 2
    x = wave * envelope
    x = amp * x / np.max(np.abs(x))
    return wav_bytes(x.astype(np.float32), sr)


def espeak_clip(text: str, pitch: int = 50) -> bytes | None:
    """Real speech from espeak-ng (WAV bytes), or None where it is missing."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory(prefix="cbt") as tmp:
        out = Path(tmp) / "clip.wav"
        proc = subprocess.run([exe, "-p", str(pitch), "-w", str(out), text], capture_output=True, timeout=30)
        if proc.returncode != 0 or not out.is_file():
            return None
        return out.read_bytes()


SPEECH_TEXT = (
    "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore, "
    "and the shells she sells are surely sea shells."
)


def _cut(data: bytes, seconds: float) -> bytes:
    """The first ``seconds`` of a WAV clip, as 16-bit WAV bytes."""
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    return wav_bytes(samples[: round(seconds * rate)], rate)


class Clips:
    """Reference clips of 6 to 8 s; ``new()`` never returns the same bytes twice.

    ``seconds`` cuts every clip to that length. The real-model tests use 5.5 s
    (just over the 5 s minimum): S3Gen runs its flow over the whole reference
    for every sentence, so a shorter one makes each real synthesis cheaper.
    """

    def __init__(self, folder: Path, seconds: float | None = None) -> None:
        self.folder = folder
        self.seconds = seconds
        self._n = itertools.count()
        self._pitches = iter(range(20, 100, 3))

    def new(self) -> bytes:
        """A clip whose bytes (hence cache key) no other call returned."""
        n = next(self._n)
        pitch = next(self._pitches, None)
        if pitch is not None:
            data = espeak_clip(SPEECH_TEXT, pitch)
            if data is not None and 6.0 <= sf.info(io.BytesIO(data)).duration <= 8.0:
                return data if self.seconds is None else _cut(data, self.seconds)
        return voiced_tone(self.seconds or 7.0, f0=110.0 + 3.0 * n)

    def write(self, data: bytes, name: str | None = None) -> Path:
        """Save clip bytes as a file and return its path."""
        path = self.folder / (name or f"clip{next(self._n)}.wav")
        path.write_bytes(data)
        return path


def ctrl_c_reaches_it() -> None:
    """``preexec_fn`` for a child a test will Ctrl-C: SIGINT as in a terminal.

    A test run started in the background (``cmd &`` in a script, nohup) has
    SIGINT ignored, and children inherit that: Python then never raises
    KeyboardInterrupt, and a Ctrl-C test would see the command run to its end.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
