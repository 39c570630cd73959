"""The speaking rate's time-stretch: its cost per second of audio, its quality, and the libraries it was chosen over.

Run from the repo root::

    uv run python -m bench.rate_bench [--repeat 5] [--json out.json]
    # with the candidates that are not our dependencies, side by side:
    uv run --with audiotsm --with pytsmod python -m bench.rate_bench

Signals: real speech from espeak-ng (where installed; else a voiced tone), at
24 kHz, and a steady harmonic tone (147.3 Hz, 8 harmonics). For each method
and rate, in one run, interleaved round by round:

- **cost**: milliseconds of CPU (one thread) per second of *input* audio,
  median of ``--repeat`` runs;
- **pieces**: whether it can stretch a stream piece by piece (what live
  playback needs) or only a whole signal;
- **duration error**: output length against ``input / rate``;
- **pitch shift**: semitones between the median pYIN f0 of input and output
  (speech);
- **harmonic purity**: on the steady tone, the share of the output's energy
  that lies within 5 Hz of a harmonic, in dB of in-harmonic over
  out-of-harmonic energy (the input has about 60 dB; clicks, phasiness and
  doubled periods all pour energy between the harmonics).

Last, through a fake-engine daemon (no model; each sentence in 5 pieces),
the time to the first chunk of ``synthesize`` at rates 1.0, 0.5 and 2.0,
interleaved: what the stretch adds to a stream's latency. Nothing asserts
anything about time; it prints markdown tables.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chatterbox_tray.daemon.stretch import Stretcher, stretch  # noqa: E402
from tests.support.daemons import SPEECH_TEXT, DaemonProcess, espeak_clip, voiced_tone  # noqa: E402

SR = 24_000
RATES = (0.5, 0.75, 1.5, 2.0)
PIECE_S = 0.2  # the stream's piece length for "ours, in pieces"


def speech() -> np.ndarray:
    import librosa
    import soundfile as sf

    data = espeak_clip(SPEECH_TEXT) or voiced_tone(7.0)
    x, sr = sf.read(io.BytesIO(data), dtype="float32")
    return librosa.resample(x, orig_sr=sr, target_sr=SR).astype(np.float32)


def steady_tone(seconds: float = 3.0, f0: float = 147.3) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return (0.3 * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 9))).astype(np.float32)


# -- the methods ---------------------------------------------------------------------------


def ours(x: np.ndarray, rate: float) -> np.ndarray:
    return stretch(x, rate, SR)


def ours_pieces(x: np.ndarray, rate: float) -> np.ndarray:
    s = Stretcher(rate, SR)
    step = round(PIECE_S * SR)
    out = [s.push(x[i : i + step]) for i in range(0, len(x), step)]
    return np.concatenate([*out, s.flush()])


def librosa_pv(x: np.ndarray, rate: float) -> np.ndarray:
    import librosa

    return librosa.effects.time_stretch(x, rate=rate)


def methods() -> dict[str, tuple[Callable[[np.ndarray, float], np.ndarray], str]]:
    found: dict[str, tuple[Callable[[np.ndarray, float], np.ndarray], str]] = {
        "ours: WSOLA (daemon/stretch.py), whole": (ours, "yes"),
        f"ours: WSOLA, {PIECE_S * 1000:.0f} ms pieces": (ours_pieces, "yes"),
        "librosa 0.11 `effects.time_stretch` (phase vocoder)": (librosa_pv, "no"),
    }
    try:
        from audiotsm import wsola
        from audiotsm.io.array import ArrayReader, ArrayWriter

        def audiotsm_wsola(x: np.ndarray, rate: float) -> np.ndarray:
            writer = ArrayWriter(1)
            wsola(1, speed=rate).run(ArrayReader(x[None, :].astype(np.float64)), writer)
            return writer.data[0].astype(np.float32)

        found["audiotsm 0.1.2 WSOLA (last release 2017)"] = (audiotsm_wsola, "yes")
    except ImportError:
        pass
    try:
        import pytsmod

        found["pytsmod 0.3.8 WSOLA"] = (lambda x, r: pytsmod.wsola(x, 1 / r).astype(np.float32), "no")
        found["pytsmod 0.3.8 phase vocoder, phase-locked"] = (
            lambda x, r: pytsmod.phase_vocoder(x, 1 / r, phase_lock=True).astype(np.float32),
            "no",
        )
    except ImportError:
        pass
    return found


# -- the measures -------------------------------------------------------------------------------


def median_f0(x: np.ndarray) -> float:
    import librosa

    f0, flag, _ = librosa.pyin(x.astype(np.float64), fmin=60, fmax=500, sr=SR, frame_length=2048)
    return float(np.median(f0[flag & np.isfinite(f0)]))


def harmonic_purity(x: np.ndarray, f0: float = 147.3) -> float:
    """dB of energy within 5 Hz of a harmonic over the rest, on the middle second."""
    mid = x[len(x) // 2 - SR // 2 : len(x) // 2 + SR // 2]
    spec = np.abs(np.fft.rfft(mid * np.hanning(len(mid)))) ** 2
    freqs = np.fft.rfftfreq(len(mid), 1 / SR)
    near = np.zeros(len(freqs), bool)
    for k in range(1, 9):
        near |= np.abs(freqs - k * f0) <= 5.0
    band = freqs < 9.5 * f0
    return float(10 * np.log10(spec[near].sum() / max(spec[band & ~near].sum(), 1e-20)))


def cost_ms_per_s(fn: Callable, x: np.ndarray, rate: float, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn(x, rate)
        times.append(time.process_time() - t0)
    return 1000 * statistics.median(times) / (len(x) / SR)


def daemon_first_chunk(repeat: int) -> dict[float, list[float]]:
    """Seconds from send to the first chunk of ``synthesize``, per rate, interleaved."""
    proc = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_PIECES": "5"}).start()
    try:
        with proc.client(timeout=30) as c:
            c.voices_add("bench", data=voiced_tone(7.0))
            c.voices_default("bench")
            text = "The morning was quiet and cool. Birds sang in the old oak tree."
            list(c.synthesize(text, seed=1))  # warm: conditionals cached
            got: dict[float, list[float]] = {1.0: [], 0.5: [], 2.0: []}
            for _ in range(repeat):
                for rate in got:
                    t0 = time.perf_counter()
                    s = c.synthesize(text, seed=1, rate=rate)
                    it = iter(s)
                    next(it)
                    got[rate].append(time.perf_counter() - t0)
                    for _ in it:
                        pass
            return got
    finally:
        proc.cleanup()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs per cost figure (median)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    x_speech, x_tone = speech(), steady_tone()
    f0_in = median_f0(x_speech)
    table = methods()
    print(f"# Time-stretch ({platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})\n")
    print(f"speech: {len(x_speech) / SR:.2f} s (f0 {f0_in:.1f} Hz); tone: {len(x_tone) / SR:.1f} s, ")
    print(f"purity of the input tone: {harmonic_purity(x_tone):.1f} dB\n")
    rows: list[dict] = []
    for name, (fn, pieces) in table.items():
        for rate in RATES:
            y = fn(x_speech, rate)
            rows.append(
                {
                    "method": name,
                    "pieces": pieces,
                    "rate": rate,
                    "cost_ms_per_s": cost_ms_per_s(fn, x_speech, rate, args.repeat),
                    "duration_error_pct": 100 * (len(y) / (len(x_speech) / rate) - 1),
                    "pitch_semitones": 12 * np.log2(median_f0(y) / f0_in),
                    "purity_db": harmonic_purity(fn(x_tone, rate)),
                }
            )
    print("| method | pieces | rate | cost, ms per s of audio | duration error | pitch shift | harmonic purity |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['method']} | {r['pieces']} | {r['rate']:g} | {r['cost_ms_per_s']:.1f} | "
            f"{r['duration_error_pct']:+.2f} % | {r['pitch_semitones']:+.2f} st | {r['purity_db']:.1f} dB |"
        )
    print()
    first = daemon_first_chunk(args.repeat * 4)
    base = statistics.median(first[1.0])
    print(f"| synthesize, fake engine, 5 pieces a sentence ({args.repeat * 4} rounds) | first chunk, median | added |")
    print("|---|---|---|")
    for rate, times in first.items():
        med = statistics.median(times)
        print(f"| rate {rate:g} | {1000 * med:.1f} ms | {1000 * (med - base):+.1f} ms |")
    if args.json:
        args.json.write_text(json.dumps({"stretch": rows, "first_chunk_s": {str(k): v for k, v in first.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
