"""Many clients, one GPU: each client's time to first audio when four send at once.

Run from the repo root::

    uv run python -m bench.fairness_bench [--token-delay 0.004] [--rounds 3] [--json out.json]
    uv run python -m bench.fairness_bench --real [--tokens 8]   # the random-weight test checkpoint

One daemon serves the network (remote mode on 127.0.0.1) and four client
homes pair with it through the real exchange. Each round, four threads send
a five-sentence text at the same moment, once as four **paired computers**
(four keys: they take turns sentence by sentence) and once as four **local
clients** (one user: first come first served, as before issue 11). For each
client it records the time from the common start to its first chunk and to
its last. With ``--real`` the daemon runs the Turbo variant of the
random-weight test checkpoint (``CHATTERBOX_TRAY_TEST_CKPT_DIR``) with a
small token budget instead of the fake engine. Nothing asserts anything
about time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.remote_bench import home_env  # noqa: E402
from chatterbox_tray.ipc import pairing, remote  # noqa: E402
from chatterbox_tray.ipc.client import Client  # noqa: E402
from tests.protocol.test_remote import free_port_pair  # noqa: E402
from tests.support.daemons import DaemonProcess, short_home, voiced_tone  # noqa: E402

TEXT = (
    "The morning was quiet and cool. Birds sang in the old oak tree. "
    "A cat watched them from the wall. Then the wind rose a little. The day had begun."
)
CLIENTS = 4


def run_round(makers: list) -> list[dict[str, float]]:
    """Four clients send TEXT at once; each one's first- and last-chunk times from the common start."""
    clients = [make() for make in makers]
    for c in clients:
        c.ping()
    barrier = threading.Barrier(len(clients))
    out: list[dict[str, float]] = [{} for _ in clients]

    def one(i: int, client: Client) -> None:
        barrier.wait()
        start = time.perf_counter()
        first = None
        for _ in client.synthesize(TEXT, voice="bench"):
            if first is None:
                first = time.perf_counter() - start
        out[i] = {"first": first or 0.0, "last": time.perf_counter() - start}

    threads = [threading.Thread(target=one, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--token-delay", type=float, default=0.004, help="fake engine: seconds per speech token")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each mode, interleaved")
    parser.add_argument("--real", action="store_true", help="the random-weight Turbo checkpoint, not the fake engine")
    parser.add_argument("--tokens", type=int, default=8, help="--real: speech-token budget per sentence")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args()

    port = free_port_pair()
    home = short_home()
    (home / "config").mkdir(parents=True)
    (home / "config/settings.json").write_text(
        json.dumps({"remote": {"enabled": True, "bind": f"127.0.0.1:{port}", "max_queued_jobs": 10}})
    )
    if args.real:
        from tests.support.checkpoint import ensure_checkpoint, loader_env

        ckpt = ensure_checkpoint("turbo")
        daemon_args = (
            "--variant",
            "turbo",
            "--checkpoint",
            str(ckpt),
            "--device",
            "cpu",
            "--no-warmup",
            "--max-tokens-per-chunk",
            str(args.tokens),
        )
        env: dict[str, str] = loader_env(ckpt, "turbo")
    else:
        daemon_args = ("--engine", "fake")
        env = {"CHATTERBOX_TRAY_FAKE_TOKEN_DELAY": str(args.token_delay)}
    daemon = DaemonProcess(home=home, args=daemon_args, env=env).start(timeout=600)
    homes = [short_home() for _ in range(CLIENTS)]
    results: dict[str, list[list[dict[str, float]]]] = {"paired": [], "local": []}
    try:
        with daemon.client(timeout=600) as c:
            c.voices_add("bench", data=voiced_tone(7.0))
            c.synthesize("Warm up.", voice="bench").collect()
        infos = []
        for i, h in enumerate(homes):
            with home_env(home):
                code, _ = pairing.create_invite()
            with home_env(h):
                pairing.pair("gpu", f"127.0.0.1:{port}", code, f"client{i}")
                infos.append(remote.remote_connection("gpu"))
        paired = [lambda info=info: Client(info, timeout=600) for info in infos]
        local = [lambda: Client(daemon.info, timeout=600) for _ in range(CLIENTS)]
        for _ in range(args.rounds):
            results["paired"].append(run_round(paired))
            results["local"].append(run_round(local))
    finally:
        daemon.cleanup()
        for h in homes:
            shutil.rmtree(h, ignore_errors=True)

    engine = (
        f"Turbo random-weight checkpoint, {args.tokens} tokens a sentence, CPU"
        if args.real
        else f"fake engine, {args.token_delay * 1000:.1f} ms per speech token"
    )
    print(f"\n{engine}; {CLIENTS} clients x 5 sentences at once; {args.rounds} rounds; {os.cpu_count()} CPUs")
    print("(client n = the n-th to be served first come first served; median over rounds)\n")
    print("| mode | client 1 first audio | client 2 | client 3 | client 4 | spread | last client done |")
    print("|---|---|---|---|---|---|---|")
    for mode, label in (("local", "first come first served (one local user)"), ("paired", "take turns (4 computers)")):
        rounds = results[mode]
        firsts = [sorted(c["first"] for c in r) for r in rounds]
        med = [statistics.median(f[i] for f in firsts) for i in range(CLIENTS)]
        done = statistics.median(max(c["last"] for c in r) for r in rounds)
        cells = " | ".join(f"{x:.2f} s" for x in med)
        print(f"| {label} | {cells} | {med[-1] - med[0]:.2f} s | {done:.2f} s |")
    if args.json:
        args.json.write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
