"""What the bridges add: time to first byte against a direct ZeroMQ client, and requests per second.

Run from the repo root::

    uv run python -m bench.bridges_bench [--repeat 30] [--json out.json]

It starts a fake-engine daemon (``--engine fake``: no model, so every figure
is the bridges' and the protocol's own cost, not the model's), adds a voice,
and starts both bridges as the user would: ``python -m chatterbox_tray.bridges
openai|wyoming`` subprocesses. Then, interleaved round by round so that load
from other processes falls on all of them alike:

- **direct**: ``Client.synthesize`` over ZeroMQ, send to first chunk;
- **openai pcm / mp3 / sse**: ``POST /v1/audio/speech`` over a kept-alive
  HTTP/1.1 connection (``http.client``, not the ``openai`` package, whose own
  overhead is not the bridge's), send to the first body byte;
- **wyoming**: ``synthesize`` over a new TCP connection (as Home Assistant
  does), send to the first ``audio-chunk``.

and last, ``GET /v1/models`` in a loop on one kept-alive connection, and from
four threads, for requests per second (each request asks the daemon for its
status). It prints a markdown table; nothing asserts anything about time.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.daemons import DaemonProcess, voiced_tone  # noqa: E402

TEXT = "The morning was quiet and cool. Birds sang in the old oak tree."


def load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def start_bridge(args: list[str], prefix: str) -> tuple[subprocess.Popen, str, float]:
    """Start a bridge subprocess; return it, its printed address, and seconds to that line."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chatterbox_tray.bridges", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith(prefix):
        raise RuntimeError(f"bridge did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return proc, line.strip().rsplit(" ", 1)[-1], time.perf_counter() - t0


def direct_ttfb(daemon: DaemonProcess, voice: str) -> float:
    with daemon.client() as client:
        t0 = time.perf_counter()
        first = float("nan")
        for _ in client.synthesize(TEXT, voice=voice):  # read it all, as the bridges do
            if first != first:
                first = time.perf_counter() - t0
    return first


def http_ttfb(conn: http.client.HTTPConnection, voice: str, fmt: str, stream: str = "audio") -> float:
    body = json.dumps(
        {"model": "tts-1", "input": TEXT, "voice": voice, "response_format": fmt, "stream_format": stream}
    )
    t0 = time.perf_counter()
    conn.request("POST", "/v1/audio/speech", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"bridge answered {resp.status}: {resp.read()!r}")
    resp.read(1)
    first = time.perf_counter() - t0
    resp.read()
    return first


async def wyoming_ttfb(port: int, voice: str) -> float:
    from wyoming.audio import AudioChunk, AudioStop
    from wyoming.client import AsyncTcpClient
    from wyoming.tts import Synthesize, SynthesizeVoice

    first = float("nan")
    t0 = time.perf_counter()
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=TEXT, voice=SynthesizeVoice(name=voice)).event())
        while (event := await client.read_event()) is not None:
            if AudioChunk.is_type(event.type) and first != first:
                first = time.perf_counter() - t0
            if AudioStop.is_type(event.type):
                break
    return first


def models_rps(host: str, port: int, seconds: float, threads: int) -> tuple[float, int]:
    """GET /v1/models as fast as ``threads`` kept-alive connections go, for ``seconds``."""
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        while time.perf_counter() < stop and counts[i] < 100_000:
            conn.request("GET", "/v1/models")
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"GET /v1/models answered {resp.status}")
            counts[i] += 1
        conn.close()

    t0 = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    total = sum(counts)
    return total / (time.perf_counter() - t0), total


def summary(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {
        "median_ms": statistics.median(xs) * 1e3,
        "p90_ms": xs[min(len(xs) - 1, int(0.9 * len(xs)))] * 1e3,
        "min_ms": xs[0] * 1e3,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=30, help="rounds of the first-byte measurements")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each requests/s measurement")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)

    print("starting a fake-engine daemon...", file=sys.stderr)
    daemon = DaemonProcess().start()
    procs: list[subprocess.Popen] = []
    try:
        with daemon.client() as client:
            client.voices_add("bench", data=voiced_tone(7.0))
            client.voices_default("bench")
        conn_args = ["--connection", str(daemon.connection_path)]
        oa, url, oa_start = start_bridge(["openai", "--port", "0", *conn_args], "OpenAI-compatible speech endpoint on ")
        procs.append(oa)
        wy, wy_uri, wy_start = start_bridge(
            ["wyoming", "--uri", "tcp://127.0.0.1:0", *conn_args], "Wyoming text-to-speech server on "
        )
        procs.append(wy)
        host, port = url.removeprefix("http://").removesuffix("/v1").rsplit(":", 1)
        wy_port = int(wy_uri.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection(host, int(port), timeout=60)

        kinds = ["direct", "openai pcm", "openai mp3", "openai sse (pcm)", "wyoming"]
        times: dict[str, list[float]] = {k: [] for k in kinds}
        load_start = load()
        # One warm-up round (first imports, the voice's conditionals), not counted.
        for counted in [False] + [True] * args.repeat:
            got = {
                "direct": direct_ttfb(daemon, "bench"),
                "openai pcm": http_ttfb(conn, "bench", "pcm"),
                "openai mp3": http_ttfb(conn, "bench", "mp3"),
                "openai sse (pcm)": http_ttfb(conn, "bench", "pcm", "sse"),
                "wyoming": asyncio.run(wyoming_ttfb(wy_port, "bench")),
            }
            if counted:
                for k, v in got.items():
                    times[k].append(v)
        conn.close()
        rps1, n1 = models_rps(host, int(port), args.seconds, 1)
        rps4, n4 = models_rps(host, int(port), args.seconds, 4)
        load_end = load()
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        daemon.cleanup()

    stats = {k: summary(v) for k, v in times.items()}
    base = stats["direct"]["median_ms"]
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; ")
    print(f"load average (1 min) {load_start:.1f} at start, {load_end:.1f} at end; fake engine, no delay\n")
    print(f"bridge start to listening: openai {oa_start * 1e3:.0f} ms, wyoming {wy_start * 1e3:.0f} ms\n")
    print(f"| first byte ({args.repeat} rounds) | median | p90 | min | added to direct (median) |")
    print("|---|---|---|---|---|")
    for k in kinds:
        s = stats[k]
        added = "" if k == "direct" else f"+{s['median_ms'] - base:.1f} ms"
        print(f"| {k} | {s['median_ms']:.1f} ms | {s['p90_ms']:.1f} ms | {s['min_ms']:.1f} ms | {added} |")
    print("\n| GET /v1/models | requests/s | requests |")
    print("|---|---|---|")
    print(f"| 1 connection | {rps1:.0f} | {n1} |")
    print(f"| 4 connections | {rps4:.0f} | {n4} |")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "times_s": times,
                    "stats": stats,
                    "models_rps": {"1": rps1, "4": rps4},
                    "start_s": {"openai": oa_start, "wyoming": wy_start},
                    "load": [load_start, load_end],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
