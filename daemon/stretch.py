"""The speaking rate: time-scale modification by WSOLA, chunk by chunk.

Speech faster or slower without a change of pitch. WSOLA (waveform-similarity
overlap-add, Verhelst and Roelands 1993) cuts the input into windowed frames
taken every ``hop * rate`` samples and lays them down every ``hop`` samples;
each frame is moved by up to ``tolerance`` samples to where it best continues
the frame before it (cross-correlation), so the periods of a voiced sound line
up and no phase is smeared (the "phasiness" of a plain phase vocoder such as
librosa's ``time_stretch``). Speech is one voice at a time, which is what
WSOLA is good at. Why our own and not a library: docs/decisions.md
("Speaking rate").

``Stretcher`` is streaming: ``push`` takes any number of samples and returns
what is final so far (it holds back about one frame and the search span,
about 70 ms at 24 kHz, whatever the rate), ``flush`` ends the stream. The
output of a whole stream is exactly ``round(len(input) / rate)`` samples, so a
sentence's duration scales as asked however it was cut into pieces.

numpy only; no torch. The daemon's worker owns one per sentence.
"""

from __future__ import annotations

import numpy as np

from ..ipc.limits import RATE_RANGE

#: Frame length (s). 40 ms holds three or more periods of any speaking voice
#: (75 Hz and up), so the correlation finds the period reliably, yet is short
#: enough that a frame is part of one phone. Measured on a steady harmonic tone
#: (bench/rate_bench.py): 30 ms left 45-47 dB of harmonic purity, 40 ms 50-51
#: (the input has 52); 20 ms fell to 34.
FRAME_S = 0.040
#: How far (s) a frame may move to line up with the one before: one period of
#: a 100 Hz voice; a wider search costs more and finds no better join.
TOLERANCE_S = 0.010


class Stretcher:
    """Stream-wise WSOLA at a fixed ``rate`` (2.0: twice as fast, half as long)."""

    def __init__(self, rate: float, sample_rate: int) -> None:
        lo, hi = RATE_RANGE
        if not lo <= rate <= hi:  # NaN fails too
            raise ValueError(f"rate must be between {lo} and {hi}, not {rate!r}")
        self.rate = float(rate)
        self.frame = max(4, round(sample_rate * FRAME_S) // 2 * 2)
        self.hop = self.frame // 2  # synthesis hop: a periodic Hann at 50 % overlap sums to 1
        self.tolerance = round(sample_rate * TOLERANCE_S)
        self._window = np.hanning(self.frame + 1)[: self.frame]
        # Input positions count from a virtual ``hop`` zeros in front, so the first
        # output sample is under a full window, not a fade-in; those ``hop``
        # output samples are dropped.
        self._buf = np.zeros(self.hop, dtype=np.float64)
        self._buf_start = 0  # position of _buf[0]
        self._in = 0  # real input samples pushed
        self._out = -self.hop  # output samples given out (the dropped lead-in counts below 0)
        self._k = 0  # next frame
        self._prev: int | None = None  # where the last frame was taken
        self._ola = np.zeros(self.frame, dtype=np.float64)
        self._done = False

    @property
    def latency(self) -> int:
        """Samples of input ``push`` may hold back before it can give out their output."""
        return self.frame + self.tolerance + self.hop

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add input; return the output that is final so far (float32, maybe empty)."""
        if self._done:
            raise RuntimeError("the stream was flushed")
        samples = np.asarray(samples, dtype=np.float64).reshape(-1)
        self._in += len(samples)
        self._buf = np.concatenate([self._buf, samples])
        return self._run(None)

    def flush(self) -> np.ndarray:
        """End the stream: the rest of the output, so that the whole is ``round(input / rate)`` long."""
        if self._done:
            return np.zeros(0, dtype=np.float32)
        self._done = True
        target = round(self._in / self.rate)
        if self._out >= target:
            return np.zeros(0, dtype=np.float32)
        # Zeros after the end let the last frames be taken; enough for the frames
        # that fill ``target``, whatever the rate.
        self._buf = np.concatenate([self._buf, np.zeros(3 * self.frame + 2 * self.tolerance)])
        return self._run(target)

    def _run(self, target: int | None) -> np.ndarray:
        n, hop, tol = self.frame, self.hop, self.tolerance
        end = self._buf_start + len(self._buf)  # positions available
        analysis_hop = hop * self.rate
        out: list[np.ndarray] = []
        while target is None or self._out < target:
            nominal = round(self._k * analysis_hop)
            lo, hi = max(0, nominal - tol), nominal + tol
            if self._prev is None:
                lo = hi = nominal  # the first frame: nothing to line up with
            natural = None if self._prev is None else self._prev + hop
            need = hi + n if natural is None else max(hi + n, natural + n)
            if need > end:
                break
            b = self._buf_start
            if natural is None:
                pos = nominal
            else:
                span = self._buf[lo - b : hi - b + n]
                like = self._buf[natural - b : natural - b + n]
                pos = lo + int(np.argmax(np.correlate(span, like, mode="valid")))
            self._ola += self._window * self._buf[pos - b : pos - b + n]
            ready = self._ola[:hop].copy()
            self._ola[:-hop] = self._ola[hop:]
            self._ola[-hop:] = 0.0
            self._prev, self._k = pos, self._k + 1
            if self._out < 0:  # the lead-in
                ready = ready[-self._out :] if -self._out < hop else ready[:0]
                self._out = min(0, self._out + hop)
                if self._out == 0 and len(ready) == 0:
                    continue
            if target is not None:
                ready = ready[: max(0, target - self._out)]
            self._out += len(ready)
            out.append(ready)
            # Keep only what later frames can still reach.
            keep = min(round(self._k * analysis_hop) - tol, self._prev + hop)
            if keep - self._buf_start > 4 * n:
                self._buf = self._buf[keep - self._buf_start :]
                self._buf_start = keep
        if not out:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(out).astype(np.float32)


def stretch(samples: np.ndarray, rate: float, sample_rate: int) -> np.ndarray:
    """A whole signal at ``rate`` (1.0 returns it as it is)."""
    if rate == 1.0:
        return np.asarray(samples, dtype=np.float32)
    s = Stretcher(rate, sample_rate)
    return np.concatenate([s.push(samples), s.flush()])
