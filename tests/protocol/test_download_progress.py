"""The first run's download, followed through status, status --watch and a failure (issue 12, section 7).

A fake-engine daemon runs the real engine's download step (the
``CHATTERBOX_TRAY_FAKE_HUB`` knob calls `download.fetch_weights`) with the
real huggingface_hub client against a local stand-in hub (``HF_ENDPOINT``),
since the real hub is out of reach here. The tray app's banner is checked
in tests/gui/test_download_banner.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemons import DaemonProcess
from tests.support.hub import MIB, REPO, FakeHub, hub_daemon

EXE = Path(sys.executable).with_name("chatterbox-tray")


def watch(d: DaemonProcess) -> subprocess.Popen:
    """``chatterbox-tray status --watch``, output to a pipe."""
    command = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "chatterbox_tray.cli.main"]
    return subprocess.Popen(
        [*command, "status", "--watch"], env=d.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    files = {"t3_cfg.safetensors": os.urandom(8 * MIB), "tokenizer.json": b'{"v": 1}'}
    server = FakeHub(REPO, files, rate=2 * MIB).start()
    yield server
    server.stop()


def test_status_and_status_watch_show_bytes_total_speed_and_time_left(hub: FakeHub) -> None:
    d = hub_daemon(hub)
    try:
        d.spawn()
        d.wait_connectable()
        watcher = watch(d)
        seen = []
        with d.client() as client:
            deadline = time.monotonic() + 60
            while (status := client.status())["state"] != "ready" and time.monotonic() < deadline:
                if status["download"]:
                    seen.append(status)
                time.sleep(0.1)
        assert status["state"] == "ready", d.log_text()
        out, err = watcher.communicate(timeout=30)
        assert watcher.returncode == 0, err

        total = 8 * MIB + len(b'{"v": 1}')
        assert seen, "the download was seen in status"
        figures = [s["download"] for s in seen]
        assert all(f["bytes_total"] == total and f["repo"] == REPO for f in figures)
        done = [f["bytes_done"] for f in figures]
        assert done == sorted(done) and max(done) > 0
        under_way = [s for s in seen if 0 < s["download"]["bytes_done"] < total]
        assert under_way
        assert any(s["download"]["seconds_left"] and s["download"]["bytes_per_s"] > 0 for s in under_way)
        assert all(s["message"].startswith("downloading the weights: ") for s in under_way)
        assert all(0.1 <= s["progress"] <= 0.7 for s in under_way)

        lines = out.decode().splitlines()
        assert any("downloading the weights: " in line and "MiB/s" in line and "left" in line for line in lines), lines
        assert lines[-1] == "ready"
        # The files are in the daemon's Hugging Face cache, where chatterbox looks.
        assert list((d.home / "hf" / "hub").glob("models--ResembleAI--chatterbox/snapshots/*/t3_cfg.safetensors"))
    finally:
        d.cleanup()


def test_a_failed_download_says_so_and_retry_load_finishes_it(hub: FakeHub) -> None:
    hub.fail_at, hub.fail_times = 2 * MIB, 1000
    d = hub_daemon(hub)
    try:
        d.spawn()
        d.wait_connectable()
        with d.client() as client:
            deadline = time.monotonic() + 90
            while (status := client.status())["state"] != "failed" and time.monotonic() < deadline:
                time.sleep(0.2)
            assert status["state"] == "failed", d.log_text()
            assert status["error"].startswith("the download of the weights failed at t3_cfg.safetensors (")
            assert "Check the connection and retry" in status["error"]
            assert status["download"]["bytes_total"] == 8 * MIB + 8  # as it stood
            watcher = watch(d)
            out, _ = watcher.communicate(timeout=30)
            assert watcher.returncode == 1
            assert out.decode().startswith("failed: the download of the weights failed")

            hub.fail_times = 0  # the connection is back
            client.retry_load()
            assert client.wait_ready(60)["state"] == "ready"
            assert client.status()["download"]["bytes_done"] == 8 * MIB + 8
    finally:
        d.cleanup()


def test_a_stalled_download_says_so(hub: FakeHub) -> None:
    hub.stall_at, hub.stall_s = 2 * MIB, 3.0
    d = hub_daemon(hub, CHATTERBOX_TRAY_FAKE_HUB_STALL_S="1")
    try:
        d.spawn()
        d.wait_connectable()
        stalled = None
        with d.client() as client:
            deadline = time.monotonic() + 60
            while (status := client.status())["state"] != "ready" and time.monotonic() < deadline:
                if status["download"] and status["download"]["stalled"]:
                    stalled = status
                time.sleep(0.1)
        assert status["state"] == "ready"
        assert stalled is not None, "a stall of 3 s was reported"
        assert "stalled: no data for" in stalled["message"] and stalled["download"]["idle_s"] >= 1
    finally:
        d.cleanup()
