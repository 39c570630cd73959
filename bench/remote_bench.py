"""What CURVE costs: ping round trip and first-chunk overhead over ipc, plain TCP and CURVE TCP.

Run from the repo root::

    uv run python -m bench.remote_bench [--pings 2000] [--synths 100] [--json out.json]

It starts two fake-engine daemons (``--engine fake``, no per-chunk delay: a
chunk costs the engine next to nothing, so what is measured is the socket,
the framing and the daemon's loop):

- **ipc**: the ordinary local daemon (``ipc://`` sockets) which also serves
  the network with CURVE on 127.0.0.1 (**curve**), paired with a client home
  through the real pairing exchange;
- **tcp**: a second daemon whose local sockets are loopback TCP without
  CURVE (``CHATTERBOX_TRAY_LOCAL_TCP=1``, the Windows path).

Then, interleaved round by round so that load from other processes falls on
all three alike: ``ping`` round trips, ``synthesize`` of one short sentence
from send to the first chunk, and a new connection's first ``ping`` (CURVE
pays its handshake there). It prints a markdown table of medians and 90th
percentiles; nothing asserts anything about time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chatterbox_tray.ipc import endpoints, pairing, remote  # noqa: E402
from chatterbox_tray.ipc.client import Client  # noqa: E402
from tests.support.daemons import DaemonProcess, short_home, voiced_tone  # noqa: E402
from tests.support.remote import home_env, serving_daemon  # noqa: E402

TEXT = "Hello there."


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def first_chunk(client: Client) -> float:
    start = time.perf_counter()
    took = None
    for _ in client.synthesize(TEXT, voice="bench"):  # read to the end so the next request starts clean
        if took is None:
            took = time.perf_counter() - start
    assert took is not None
    return took


def connect_ping(make: Callable[[], Client]) -> float:
    start = time.perf_counter()
    with make() as client:
        client.ping()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pings", type=int, default=2000, help="ping round trips per transport")
    parser.add_argument("--synths", type=int, default=100, help="first-chunk measurements per transport")
    parser.add_argument("--connects", type=int, default=50, help="new connections per transport")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args()

    ipc_daemon = serving_daemon(max_queued_jobs=1000).start()
    port, server_home = ipc_daemon.port, ipc_daemon.home
    tcp_daemon = DaemonProcess(env={endpoints.LOCAL_TCP_ENV: "1"}).start()
    client_home = short_home()
    try:
        with home_env(server_home):
            code, _ = pairing.create_invite()
        with home_env(client_home):
            pairing.pair("bench", f"127.0.0.1:{port}", code, "bench-client")
            curve_info = remote.remote_connection("bench")
        assert tcp_daemon.info is not None and tcp_daemon.info.requests.startswith("tcp://")
        makers: dict[str, Callable[[], Client]] = {
            "ipc": lambda: Client(ipc_daemon.info),
            "tcp": lambda: Client(tcp_daemon.info),
            "curve": lambda: Client(curve_info),
        }
        clip = voiced_tone(7.0)
        for daemon in (ipc_daemon, tcp_daemon):
            with daemon.client() as c:
                c.voices_add("bench", data=clip)
        clients = {name: make() for name, make in makers.items()}
        for c in clients.values():  # warm: connections up, voice prepared
            for _ in range(20):
                c.ping()
            first_chunk(c)
        pings: dict[str, list[float]] = {n: [] for n in clients}
        chunks: dict[str, list[float]] = {n: [] for n in clients}
        connects: dict[str, list[float]] = {n: [] for n in clients}
        rounds = max(args.pings // 100, 1)
        for _ in range(rounds):
            for name, c in clients.items():
                pings[name] += [c.ping() for _ in range(100)]
        for _ in range(args.synths):
            for name, c in clients.items():
                chunks[name].append(first_chunk(c))
        for _ in range(args.connects):
            for name, make in makers.items():
                connects[name].append(connect_ping(make))
        for c in clients.values():
            c.close()
    finally:
        ipc_daemon.cleanup()
        tcp_daemon.cleanup()
        shutil.rmtree(client_home, ignore_errors=True)

    labels = {"ipc": "local ipc://", "tcp": "plain TCP loopback", "curve": "CURVE TCP loopback"}
    load = os.getloadavg()[0]
    print(f"\n{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, load {load:.2f}")
    print(f"{len(pings['ipc'])} pings, {args.synths} first chunks, {args.connects} connections per transport\n")
    print("| transport | ping median | ping p90 | first chunk median | first chunk p90 | connect + first ping median |")
    print("|---|---|---|---|---|---|")
    for name in clients:
        print(
            f"| {labels[name]} | {1e6 * statistics.median(pings[name]):.0f} µs | {1e6 * pct(pings[name], 0.9):.0f} µs "
            f"| {1e3 * statistics.median(chunks[name]):.2f} ms | {1e3 * pct(chunks[name], 0.9):.2f} ms "
            f"| {1e3 * statistics.median(connects[name]):.2f} ms |"
        )
    if args.json:
        args.json.write_text(json.dumps({"pings": pings, "first_chunk": chunks, "connect": connects}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
