"""The Wyoming server's zeroconf announcement (bridges/announce.py, ``serve wyoming --zeroconf``).

Discovered the way Home Assistant does it: the ``zeroconf`` package's own
``ServiceBrowser`` on ``_wyoming._tcp.local.``, then the ``wyoming`` package's
client at the address announced. Skipped where this machine has no network
interface but loopback (nothing to announce on).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

from chatterbox_tray.bridges.announce import SERVICE_TYPE, announced_address, lan_address
from tests.bridges.conftest import Library
from tests.protocol.test_bridge_supervision import free_port

BRIDGE = [sys.executable, "-m", "chatterbox_tray.bridges"]


def lan() -> str:
    try:
        address = lan_address()
    except OSError:
        address = "127.0.0.1"
    if address.startswith("127."):
        pytest.skip("no network interface but loopback")
    return address


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("tcp://127.0.0.1:10200", "reachable from this machine only"),
        ("tcp://localhost:10200", "reachable from this machine only"),
        ("unix:///tmp/wy.sock", "needs a tcp://HOST:PORT address"),
        ("tcp://0.0.0.0", "needs a tcp://HOST:PORT address"),
    ],
)
def test_only_an_address_others_reach_is_announced(uri: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        announced_address(uri)


def test_any_address_announces_the_lan_one() -> None:
    assert announced_address("tcp://0.0.0.0:10300") == (lan(), 10300)


def test_the_command_refuses_to_announce_loopback(lib: Library) -> None:
    done = subprocess.run(
        [*BRIDGE, "wyoming", "--zeroconf", "--no-start", "--connection", str(lib.daemon.connection_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--zeroconf: tcp://127.0.0.1:10200 is reachable from this machine only" in done.stderr


class Seen:
    """Names a ServiceBrowser reports, by state change."""

    def __init__(self) -> None:
        self.added: set[str] = set()
        self.removed: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        with self.lock:
            if state_change is ServiceStateChange.Added:
                self.added.add(name)
            elif state_change is ServiceStateChange.Removed:
                self.removed.add(name)


def wait(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


async def describe(host: str, port: int) -> Info:
    async with AsyncTcpClient(host, port) as client:
        await client.write_event(Describe().event())
        while True:
            event = await asyncio.wait_for(client.read_event(), 10)
            assert event is not None
            if Info.is_type(event.type):
                return Info.from_event(event)


def test_home_assistant_finds_the_server_and_it_says_goodbye(lib: Library) -> None:
    address, port = lan(), free_port()
    name = f"CT test {uuid.uuid4().hex[:6]}"
    full = f"{name}.{SERVICE_TYPE}"
    zc = Zeroconf(interfaces=[address], ip_version=IPVersion.V4Only)
    seen = Seen()
    browser = ServiceBrowser(zc, SERVICE_TYPE, handlers=[seen])
    where = ["--uri", f"tcp://0.0.0.0:{port}", "--connection", str(lib.daemon.connection_path)]
    proc = subprocess.Popen(
        [*BRIDGE, "wyoming", *where, "--zeroconf", name, "--no-start"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True).start()
    try:
        wait(lambda: full in seen.added)
        info = zc.get_service_info(SERVICE_TYPE, full, timeout=5000)
        assert info is not None and info.port == port and info.parsed_addresses() == [address]
        described = asyncio.run(describe(info.parsed_addresses()[0], info.port))
        assert described.tts and {v.name for v in described.tts[0].voices} >= {lib.default, lib.other}
        # It says so once its announcements are out (a few seconds: probe, then announce twice).
        wait(lambda: f"announced as {full!r} over zeroconf\n" in lines)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, proc.stderr.read() if proc.stderr else ""
        wait(lambda: full in seen.removed)  # the goodbye packet, not a record left to expire
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        browser.cancel()
        zc.close()
