"""Which bridge commands the daemon's settings ask for (daemon/bridge_supervisor.py), and their checks."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from chatterbox_tray.daemon.bridge_supervisor import bridge_commands
from chatterbox_tray.daemon.settings import Settings

CONN = Path("/run/user/1000/chatterbox-tray/daemon.json")


def test_nothing_runs_by_default() -> None:
    assert bridge_commands(Settings(), CONN) == {}


def test_each_setting_asks_for_its_bridge_on_this_daemon_only() -> None:
    s = replace(Settings(), bridge_openai=True, bridge_openai_port=9001, bridge_wyoming=True)
    got = bridge_commands(s, CONN)
    base = [sys.executable, "-m", "chatterbox_tray.bridges"]
    tail = ["--connection", str(CONN), "--no-start"]
    assert got["openai"] == [*base, "openai", "--host", "127.0.0.1", "--port", "9001", *tail]
    assert got["wyoming"] == [*base, "wyoming", "--uri", "tcp://127.0.0.1:10200", *tail]
    lan = replace(s, bridge_wyoming_uri="tcp://0.0.0.0:10200", bridge_wyoming_zeroconf=True).validate()
    assert "--zeroconf" in bridge_commands(lan, CONN)["wyoming"]


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"bridge_wyoming_zeroconf": True}, "needs bridge_wyoming_uri on an address other machines reach"),
        (
            {"bridge_wyoming_zeroconf": True, "bridge_wyoming_uri": "unix:///tmp/w.sock"},
            "needs bridge_wyoming_uri on an address other machines reach",
        ),
        ({"bridge_openai_port": 0}, "from 1 to 65535"),
        ({"bridge_wyoming_uri": "http://x"}, "must start with tcp://"),
        ({"rate": 2.5}, "rate must be between 0.5 and 2.0"),
        ({"rate": float("nan")}, r"rate must be a finite number \(between 0.5 and 2.0\)"),
    ],
)
def test_bad_values_are_refused_in_plain_words(values: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        replace(Settings(), **values).validate()
