"""The tray app's banner during the first run's download (issue 12, section 7).

A fake daemon downloads from a local stand-in hub (see
tests/protocol/test_download_progress.py); the real window shows the
figures the daemon reports, and a stall as a warning.
"""

from __future__ import annotations

import os

from tests.protocol.test_download_progress import MIB, REPO, hub_daemon
from tests.support.hub import FakeHub

from .conftest import open_app


def test_the_banner_shows_the_download_and_a_stall(qtbot):
    hub = FakeHub(REPO, {"t3_cfg.safetensors": os.urandom(8 * MIB)}, rate=2 * MIB, stall_at=4 * MIB, stall_s=3.0)
    hub.start()
    d = hub_daemon(hub, CHATTERBOX_TRAY_FAKE_HUB_STALL_S="1")
    try:
        d.spawn()
        d.wait_connectable()
        app = open_app(qtbot, d, ready=False)
        try:
            banner = app.window.daemon_banner
            label = banner.banner.label
            qtbot.waitUntil(lambda: "left" in label.text() and "MiB/s" in label.text(), timeout=30_000)
            assert label.text().startswith("Downloading the weights: ")
            assert banner.progress.isVisibleTo(app.window) and 10 <= banner.progress.value() <= 70
            qtbot.waitUntil(lambda: "stalled: no data for" in label.text(), timeout=30_000)
            assert "#fdf5e0" in banner.banner.styleSheet()  # the warning colours
            qtbot.waitUntil(lambda: app.state.ready, timeout=30_000)
            assert not banner.banner.isVisible()
        finally:
            app.close()
    finally:
        d.cleanup()
        hub.stop()
