"""The audio output: PortAudio through sounddevice, one mono float32 stream.

Both speakers use it: the daemon's (``daemon/player.py``) and this
computer's for a remote daemon's speech (``audio/local_player.py``), so a device
name means the same on both. numpy and sounddevice are imported when audio
is played, not when this module is imported (clients stay light).

Only the player thread touches the stream. We pace writes by the wall clock
and keep at most ``LEAD_S`` of audio ahead of what is audible: a stop or a
pause then silences the speaker within a block and the lead (well under
100 ms) whatever buffering the device has, and a sink that swallows audio
instantly (ALSA's file plugin, used by the tests) is fed in real time too.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from ..ipc.messages import Device
from ..ipc.protocol import CodedError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

#: Audio handed to the device ahead of the wall clock.
LEAD_S = 0.06
#: Fade at each end of a sentence, so joins and cuts never click.
FADE_S = 0.005


class AudioError(CodedError):
    """The output device is missing or stopped working; ``code`` is a protocol error code."""


_sd_lock = threading.Lock()
_probe: str | None = None  # "" once PortAudio is known to be safe here, else why not


def _probe_portaudio() -> str:
    """Let PortAudio list the devices once in a child process first.

    A broken ALSA configuration makes PortAudio abort() the whole process
    while it scans devices; better a dead child and a clear error than a dead
    daemon.
    """
    code = "import sounddevice; sounddevice.query_devices()"
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"PortAudio could not be probed: {exc}"
    if proc.returncode == 0:
        return ""
    tail = (proc.stderr.strip().splitlines() or ["no message"])[-1]
    if proc.returncode < 0:
        return (
            f"PortAudio crashed while listing audio devices (signal {-proc.returncode}; "
            f"check the ALSA or sound configuration): {tail}"
        )
    return f"PortAudio is not available: {tail}"


def _sounddevice() -> Any:
    global _probe
    with _sd_lock:
        if _probe is None:
            _probe = _probe_portaudio()
            if _probe:
                log.error("audio: %s", _probe)
    if _probe:
        raise AudioError("no_audio_device", _probe)
    try:
        import sounddevice
    except OSError as exc:  # libportaudio missing
        raise AudioError("no_audio_device", f"PortAudio is not available: {exc}") from None
    return sounddevice


def list_devices(rescan: bool = False) -> list[Device]:
    """Output devices PortAudio sees. ``rescan`` re-reads the system's device list."""
    sd = _sounddevice()
    with _sd_lock:
        if rescan:
            try:  # PortAudio lists devices at initialisation only
                sd._terminate()
                sd._initialize()
            except Exception as exc:
                log.warning("audio: could not rescan devices: %s", exc)
        try:
            devices = sd.query_devices()
            hostapis = sd.query_hostapis()
            default_out = sd.default.device[1]
        except Exception as exc:
            raise AudioError("no_audio_device", f"cannot list audio devices: {exc}") from None
    if default_out is None or default_out < 0:
        default_out = next((d["index"] for d in devices if d["max_output_channels"] > 0), -1)
    return [
        Device(
            index=int(d["index"]),
            name=str(d["name"]),
            hostapi=str(hostapis[d["hostapi"]]["name"]),
            channels=int(d["max_output_channels"]),
            default_samplerate=float(d["default_samplerate"]),
            default=int(d["index"]) == default_out,
        )
        for d in devices
        if d["max_output_channels"] > 0
    ]


def find_device(name: str) -> Device:
    """The device named ``name`` (exact, then case-insensitive substring); empty: the default."""
    devices = list_devices()
    if not devices:
        raise AudioError("no_audio_device", "there is no audio output device (synthesize to a file instead)")
    if not name:
        return next((d for d in devices if d.default), devices[0])
    found = [d for d in devices if d.name == name] or [d for d in devices if name.lower() in d.name.lower()]
    if found:
        return found[0]
    names = ", ".join(d.name for d in devices)
    raise AudioError("no_such_device", f"no output device named {name!r} (there are: {names})")


class OutputStream:
    """A paced mono float32 output stream on one device, opened on demand."""

    def __init__(self, device_name: str, sample_rate: int) -> None:
        self.device_name = device_name
        self.sample_rate = sample_rate
        self._stream: Any = None
        self._device_rate = sample_rate
        self._t0 = 0.0  # wall-clock time at which written audio began to play
        self._written = 0.0  # seconds of audio written since _t0
        self.device: Device | None = None

    @property
    def is_open(self) -> bool:
        return self._stream is not None

    def open(self) -> None:
        """Open and start the stream (no-op when open); AudioError when impossible."""
        if self._stream is not None:
            return
        sd = _sounddevice()
        device = find_device(self.device_name)
        stream = None
        for rate in dict.fromkeys((self.sample_rate, int(device.default_samplerate))):
            try:
                stream = sd.OutputStream(
                    device=device.index, samplerate=rate, channels=1, dtype="float32", latency="low"
                )
                self._device_rate = rate
                break
            except Exception as exc:
                last = exc
        if stream is None:
            raise AudioError("audio_device", f"cannot open {device.name}: {last}")
        try:
            stream.start()
        except Exception as exc:
            stream.close(ignore_errors=True)
            raise AudioError("audio_device", f"cannot start {device.name}: {exc}") from None
        self._stream, self.device = stream, device
        self._t0, self._written = time.monotonic(), 0.0
        log.info("audio: playing on %s at %d Hz", device.name, self._device_rate)

    def latency_ms(self) -> float | None:
        """The output latency PortAudio reports for the open stream (what plays after a silence)."""
        stream = self._stream
        return None if stream is None else round(1000 * float(stream.latency), 1)

    def ahead(self) -> float:
        """Seconds of written audio not yet audible (by the wall clock)."""
        return self._written - (time.monotonic() - self._t0)

    def write(self, samples: np.ndarray) -> None:
        """Write mono float32 samples at the stream's rate; AudioError if the device fails."""
        import numpy as np

        if self._stream is None:
            self.open()
        if self.ahead() < 0:  # we fell behind (nothing to play for a while): re-base the clock
            self._t0, self._written = time.monotonic(), 0.0
        data = (
            samples if self._device_rate == self.sample_rate else resample(samples, self.sample_rate, self._device_rate)
        )
        try:
            self._stream.write(np.ascontiguousarray(data, dtype=np.float32).reshape(-1, 1))
        except Exception as exc:
            self.close(abort=True)
            raise AudioError("audio_device", f"the audio device stopped working: {exc}") from None
        self._written += len(samples) / self.sample_rate

    def drop_pending(self) -> float:
        """Silence now: discard audio the device has not played. Returns the seconds dropped."""
        pending = max(0.0, self.ahead())
        self.close(abort=True)
        return pending

    def close(self, abort: bool = False) -> None:
        """Stop (after playing what was written, unless ``abort``) and close."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            (stream.abort if abort else stream.stop)()
            stream.close()
        except Exception as exc:
            log.warning("audio: closing the stream failed: %s", exc)


def resample(samples: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Linear resampling (devices that refuse the model's rate, clips played as they are)."""
    import numpy as np

    if src == dst:
        return np.asarray(samples, dtype=np.float32)
    n = round(len(samples) * dst / src)
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    return np.interp(np.linspace(0, len(samples) - 1, n), np.arange(len(samples)), samples).astype(np.float32)


def fade(samples: np.ndarray, rate: int, *, start: bool = True, end: bool = True) -> np.ndarray:
    """Short linear fades in (``start``) and out (``end``); the gain never reaches exactly zero.

    A sentence that arrives in pieces is faded in on its first piece and out
    on its last only: the engine joins the pieces themselves seamlessly.
    """
    import numpy as np

    out = np.array(samples, dtype=np.float32, copy=True)
    n = min(int(FADE_S * rate), len(out) // 2)
    if n > 0:
        ramp = (np.arange(1, n + 1, dtype=np.float32)) / (n + 1)
        if start:
            out[:n] *= ramp
        if end:
            out[-n:] *= ramp[::-1]
    return out
