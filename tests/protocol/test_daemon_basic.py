"""The daemon's quick ops over real sockets: ping, hello, status, stats."""

from __future__ import annotations

import pytest

from chatterbox_tray import __version__
from chatterbox_tray.ipc.client import Client
from chatterbox_tray.ipc.protocol import OPS, PROTOCOL_VERSION, ProtocolError
from tests.support.daemons import DaemonProcess


def test_ping_answers_with_pong(client: Client) -> None:
    result = client.call("ping")
    assert result["pong"] is True
    assert isinstance(result["time"], float)
    assert client.ping() > 0


def test_hello_reports_versions_ops_and_capabilities(client: Client, daemon: DaemonProcess) -> None:
    hello = client.hello()
    assert hello["protocol"] == PROTOCOL_VERSION
    assert hello["daemon_version"] == __version__
    assert hello["ops"] == sorted(OPS)
    assert hello["variant"] == "original"
    assert hello["pid"] == daemon.pid
    caps = hello["capabilities"]
    assert caps["languages"] == ["en"]
    assert caps["sample_rate"] == 24_000
    assert set(caps["options"]) == {"exaggeration", "cfg_weight", "temperature"}
    assert hello["limits"]["max_text_chars"] > 0


def test_status_of_a_ready_daemon(client: Client) -> None:
    status = client.status()
    assert status["state"] == "ready"
    assert status["progress"] == 1.0
    assert status["error"] == ""
    assert status["model_id"] == "fake-original:1"
    assert status["device"] == "cpu"
    assert status["variant"] == "original"
    assert isinstance(status["queue"], int)


def test_retry_load_on_a_ready_daemon_does_nothing(client: Client) -> None:
    result = client.retry_load()
    assert result["started"] is False
    assert result["state"] == "ready"


def test_stats_carry_status_and_process_figures(client: Client) -> None:
    stats = client.stats()
    assert stats["status"]["state"] == "ready"
    assert stats["uptime_s"] >= 0
    assert isinstance(stats["recent_jobs"], list)


def test_requests_from_two_clients_are_answered_to_each(daemon: DaemonProcess) -> None:
    with daemon.client() as a, daemon.client() as b:
        id_a = a.send("ping")
        id_b = b.send("status")
        reply_b = next(b.replies(id_b, 5.0))
        reply_a = next(a.replies(id_a, 5.0))
    assert reply_a.header["id"] == id_a
    assert reply_a.header["result"]["pong"] is True
    assert reply_b.header["id"] == id_b
    assert reply_b.header["result"]["state"] == "ready"


def test_cancel_of_an_unknown_job_is_no_such_job(client: Client) -> None:
    with pytest.raises(ProtocolError) as err:
        client.cancel("no-such-job")
    assert err.value.code == "no_such_job"
