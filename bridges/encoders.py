"""Audio encoders for the bridges: float32 chunks in, the bytes of a file out, as they are made.

Every encoder is fed one chunk at a time and hands back the bytes it can
already give, so a response starts before the last sentence is made:

- ``pcm``: raw 16-bit little-endian mono at the model's rate (24 kHz), as
  OpenAI documents it;
- ``wav``: a 16-bit PCM WAV whose RIFF and data sizes are 0xFFFFFFFF ("until
  the end of the stream"), because the length is unknown when the header must
  be sent. That is what OpenAI's own API sends too; browsers, ffmpeg and
  libsndfile read such files to their real end;
- ``mp3`` and ``opus`` (Ogg): libsndfile through soundfile, with the same
  format table as ``chatterbox-tray say -o``, writing into a stream sink. MP3
  is constant-bitrate: a VBR stream needs the Xing frame that the encoder
  writes at the start and fills in at the end, after those bytes have left,
  and libsndfile's own reader then finds a fraction of the audio. A CBR stream
  has no such frame and every decoder reads it to its end;
- ``flac``: libsndfile too, but sent whole when the job ends: FLAC's header
  (STREAMINFO) holds the sample count, which libFLAC fills in at the end, and
  libsndfile misreads a stream whose count is "unknown". FLAC is for keeping,
  not for live playback; the other formats stream.

``aac`` is not offered: libsndfile has no AAC encoder, and the only light way
to one (PyAV's wheel, which bundles ffmpeg) would add about 30 MB to every
install for a format that none of the clients we target asks for by default.
"""

from __future__ import annotations

import io
import struct
from typing import TYPE_CHECKING, Any

from ..audio.file_formats import FILE_FORMATS

if TYPE_CHECKING:  # numpy is imported at the first chunk: a bridge starts listening without it
    import numpy as np

#: OpenAI's names -> (MIME type, the ``say -o`` extension whose libsndfile format it is, or None).
FORMATS: dict[str, tuple[str, str | None]] = {
    "mp3": ("audio/mpeg", ".mp3"),
    "opus": ("audio/ogg", ".opus"),
    "flac": ("audio/flac", ".flac"),
    "wav": ("audio/wav", None),
    "pcm": ("audio/pcm", None),
}

#: What OpenAI's API accepts that we cannot make, with the reason for the error message.
UNSUPPORTED = {
    "aac": "aac is not supported here (no AAC encoder ships with Chatterbox Tray); "
    "ask for mp3, opus, flac, wav or pcm instead",
}


class UnsupportedFormat(ValueError):
    """A format we cannot encode; the message says what to ask for instead."""


def to_int16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] as 16-bit little-endian PCM bytes (clipped, rounded)."""
    import numpy as np

    scaled = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * 32767.0
    return np.rint(scaled).astype("<i2").tobytes()


def wav_stream_header(rate: int) -> bytes:
    """A canonical 44-byte 16-bit mono WAV header whose sizes say "until the end of the stream"."""
    unknown = struct.pack("<I", 0xFFFFFFFF)
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)  # PCM, mono, 2 bytes a frame, 16 bits
    return b"RIFF" + unknown + b"WAVEfmt " + fmt + b"data" + unknown


class Encoder:
    """Feed float32 chunks, get encoded bytes back; ``finish`` gives the tail.

    This class itself writes raw 16-bit little-endian mono (``pcm``), after
    ``header`` (``wav``'s streaming header, sent alone by ``finish`` when no
    audio came: an empty but valid file).
    """

    #: False when the bytes can only leave at the end (``finish``).
    streams = True

    def __init__(self, header: bytes = b"") -> None:
        self._header = header

    def _head(self) -> bytes:
        head, self._header = self._header, b""
        return head

    def feed(self, samples: np.ndarray) -> bytes:
        """Encode one chunk; return what can be sent now (possibly nothing)."""
        return self._head() + to_int16(samples)

    def finish(self) -> bytes:
        """Flush the encoder; return the last bytes."""
        return self._head()


class _StreamSink:
    """A write-only file for libsndfile's virtual I/O that hands bytes on as they come.

    Bytes before ``sent`` have left; a write there (a header fixed up at the
    end) is dropped. ``take`` returns the bytes written since the last call.
    """

    def __init__(self) -> None:
        self._pending = bytearray()
        self._sent = 0
        self._pos = 0

    @property
    def _end(self) -> int:
        return self._sent + len(self._pending)

    def write(self, data: Any) -> int:
        data = bytes(data)
        size, start = len(data), self._pos
        self._pos += size
        if self._pos <= self._sent:
            return size  # all of it is already sent
        if start < self._sent:
            data, start = data[self._sent - start :], self._sent
        offset = start - self._sent
        if offset > len(self._pending):
            self._pending.extend(bytes(offset - len(self._pending)))
        self._pending[offset : offset + len(data)] = data
        return size

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._end}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        return b""  # write-only: libsndfile reads nothing back when it writes these formats

    def take(self) -> bytes:
        out = bytes(self._pending)
        self._sent += len(out)
        self._pending.clear()
        return out


class SndfileEncoder(Encoder):
    """mp3, opus or flac through libsndfile (the ``say -o`` format table).

    ``streams`` false (flac) writes to a seekable file in memory that leaves
    whole at the end, so that its header is complete (see the module's docstring).
    """

    def __init__(self, rate: int, extension: str, *, streams: bool = True, **options: Any) -> None:
        import soundfile

        fmt, subtype = FILE_FORMATS[extension]
        if subtype not in soundfile.available_subtypes(fmt):
            raise UnsupportedFormat(
                f"this libsndfile ({soundfile.__libsndfile_version__}) cannot write {extension[1:]}; "
                "ask for wav or pcm instead"
            )
        self.streams = streams
        self._sink: Any = _StreamSink() if streams else io.BytesIO()
        self._file = soundfile.SoundFile(
            self._sink, "w", samplerate=rate, channels=1, format=fmt, subtype=subtype, **options
        )

    def feed(self, samples: np.ndarray) -> bytes:
        import numpy as np

        # Our own 16-bit rounding, so FLAC holds the very samples that wav and pcm carry.
        self._file.write(np.frombuffer(to_int16(samples), dtype="<i2"))
        return self._sink.take() if self.streams else b""

    def finish(self) -> bytes:
        self._file.close()
        return self._sink.take() if self.streams else self._sink.getvalue()


def check_format(name: str) -> str:
    """The format's canonical name; raise UnsupportedFormat with a plain reason."""
    key = name.lower()
    if key in UNSUPPORTED:
        raise UnsupportedFormat(UNSUPPORTED[key])
    if key not in FORMATS:
        raise UnsupportedFormat(f"unknown response_format {name!r}; use one of mp3, opus, flac, wav, pcm")
    return key


def encoder(name: str, rate: int) -> Encoder:
    """A fresh encoder for one response in format ``name`` at ``rate`` Hz."""
    key = check_format(name)
    if key in ("pcm", "wav"):
        return Encoder(wav_stream_header(rate) if key == "wav" else b"")
    extension = FORMATS[key][1]
    assert extension is not None
    # libsndfile sets the bitrate mode only along with a level; 0.5 gives 80 kbit/s at 24 kHz.
    options = {"compression_level": 0.5, "bitrate_mode": "CONSTANT"} if key == "mp3" else {}
    return SndfileEncoder(rate, extension, streams=key != "flac", **options)
