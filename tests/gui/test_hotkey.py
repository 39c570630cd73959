"""The quick-speak hotkey on a real X server (Xvfb), keys pressed through XTEST.

The first tests run the real app (``python -m chatterbox_tray.gui``) on the
xcb platform, as a desktop session would, and watch the daemon's events; the
app is a separate process, so nothing in it is reached into. The CLI's
``say --selection`` and ``quick`` read the same selections through xclip.
The Settings test runs the app in-process (offscreen Qt) but grabs keys on
the Xvfb with the real X11 backend.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from PySide6.QtGui import QGuiApplication

from chatterbox_tray.gui import prefs
from chatterbox_tray.gui.hotkeys import DEFAULT_HOTKEY, HotkeyError, parse_chord
from chatterbox_tray.gui.hotkeys.x11 import X11Backend
from tests.gui.conftest import open_app
from tests.support.daemons import Clips, DaemonProcess, EventLog, narrated_daemon
from tests.support.xserver import XServer

SELECTED = "Selected text is spoken first. It keeps going for a while, so there is time to stop it."
COPIED = "Copied text is spoken when nothing is selected."


@pytest.fixture(scope="module")
def xserver() -> Iterator[XServer]:
    server = XServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hk_daemon(clips: Clips) -> Iterator[DaemonProcess]:
    with narrated_daemon(clips) as proc:
        yield proc


@pytest.fixture
def log(hk_daemon: DaemonProcess) -> Iterator[EventLog]:
    with hk_daemon.client() as c:
        events = EventLog(hk_daemon.events(("job", "voices")))
        events.sync(c)
        yield events
        c.stop(all=True)


def queued(log: EventLog, since: int, timeout: float = 15.0) -> dict | None:
    """The next speech job queued after event number ``since``."""
    found = log.wait_for(
        lambda t, d: t == "job" and d.get("event") == "queued" and log.seen.index((t, d)) >= since,
        timeout=timeout,
        raise_on_timeout=False,
    )
    return found


@pytest.fixture(scope="module")
def app_process(xserver: XServer, hk_daemon: DaemonProcess) -> Iterator[subprocess.Popen]:
    """The real tray app on the Xvfb, pointed at the test daemon's home (and its gui.json)."""
    env = hk_daemon.env() | {"DISPLAY": xserver.display, "QT_QPA_PLATFORM": "xcb"}
    env.pop("WAYLAND_DISPLAY", None)
    log_path = hk_daemon.home / "gui.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chatterbox_tray.gui", "--no-start"], env=env, stdout=out, stderr=out
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if "quick-speak hotkey:" in log_path.read_text(errors="replace"):
            break
        time.sleep(0.2)
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    print(log_path.read_text(errors="replace"))


def press_until_queued(xserver: XServer, log: EventLog, chord: str) -> dict:
    """Press the hotkey until a job is queued (the app may still be connecting at first)."""
    since = len(log.seen)
    for _ in range(12):
        xserver.key(chord)
        job = queued(log, since, timeout=5)
        if job is not None:
            return job
    raise AssertionError(f"the hotkey never queued speech; seen: {log.seen}")


def test_the_app_grabs_the_default_hotkey(app_process, hk_daemon):
    text = (hk_daemon.home / "gui.log").read_text(errors="replace")
    assert app_process.poll() is None, text
    assert f"quick-speak hotkey: Active: {DEFAULT_HOTKEY} (X11)" in text


def test_hotkey_speaks_the_primary_selection_and_a_second_press_stops(app_process, xserver, log, hk_daemon):
    xserver.own("primary", SELECTED)
    job = press_until_queued(xserver, log, "ctrl+alt+s")
    assert job["text"] == SELECTED[:200] and job["priority"] == "quick" and job["voice"] == "narrator"
    log.wait_job(job["job"], "started", timeout=30)
    time.sleep(1.0)  # let the app see that it is speaking
    xserver.key("ctrl+alt+s")
    end = log.wait_job(job["job"], "finished", "cancelled", timeout=15)
    assert end["event"] == "cancelled"
    with hk_daemon.client() as c:
        assert c.playback()["state"] == "idle"


def test_with_nothing_selected_the_hotkey_speaks_the_clipboard(app_process, xserver, log):
    xserver.disown()
    xserver.own("clipboard", COPIED)
    assert xserver.read("primary") == ""
    job = press_until_queued(xserver, log, "ctrl+alt+s")
    assert job["text"] == COPIED


def test_cli_say_selection_and_quick_toggle(xserver, hk_daemon, log):
    env = hk_daemon.env() | {"DISPLAY": xserver.display}
    cli = [sys.executable, "-m", "chatterbox_tray.cli.main", "--no-start"]
    xserver.disown()
    xserver.own("primary", SELECTED)
    since = len(log.seen)
    done = subprocess.run([*cli, "say", "--selection", "--no-wait"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    job = queued(log, since)
    assert job is not None and job["text"] == SELECTED[:200] and job["job"] == done.stdout.strip()
    # quick: something is speaking, so it stops everything.
    log.wait_job(job["job"], "started", timeout=30)
    done = subprocess.run([*cli, "quick"], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("stopped"), done
    assert log.wait_job(job["job"], "cancelled", "finished")["event"] == "cancelled"
    # quick again: silence now, so it speaks the selection with the quick priority.
    since = len(log.seen)
    done = subprocess.run([*cli, "quick"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    job = queued(log, since)
    assert job is not None and job["priority"] == "quick" and job["job"] == done.stdout.strip()
    # Nothing selected, nothing copied: a clear error, nothing queued.
    xserver.disown()
    subprocess.run([*cli, "stop", "--all"], env=env, check=True, capture_output=True)
    done = subprocess.run([*cli, "say", "--selection"], env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "nothing is selected" in done.stderr


def test_settings_changes_the_grabbed_chord(qtbot, xserver, daemon, monkeypatch, tmp_path):
    monkeypatch.setenv("CHATTERBOX_TRAY_HOME", str(tmp_path))  # gui.json goes here
    monkeypatch.setenv("DISPLAY", xserver.display)
    prefs.save(hotkey="Ctrl+Alt+H")  # the app under Xvfb above may still hold the default
    app = None
    try:
        app = open_app(qtbot, daemon, ready=True, hotkey_backend=X11Backend)
        page = app.window.settings
        assert page.hotkey_status.text() == "Active: Ctrl+Alt+H (X11)"
        assert page.hotkey.keySequence().toString() == "Ctrl+Alt+H"
        pressed = []
        app.quick.acted.connect(pressed.append)
        page.hotkey.setKeySequence("Ctrl+Alt+K")
        page.hotkey.editingFinished.emit()
        assert page.hotkey_status.text() == "Active: Ctrl+Alt+K (X11)"
        assert prefs.load()["hotkey"] == "Ctrl+Alt+K"
        # The old chord is free again (another client can grab it), the new one fires.
        other = X11Backend(lambda: None)
        other.register(parse_chord("Ctrl+Alt+H"))
        other.unregister()
        QGuiApplication.clipboard().setText(COPIED)  # offscreen Qt has no PRIMARY: the clipboard is read
        xserver.key("ctrl+alt+k")
        qtbot.waitUntil(lambda: pressed == ["speak"], timeout=10_000)
        # A chord another client holds is refused with a reason, and nothing is saved.
        holder = X11Backend(lambda: None)
        holder.register(parse_chord("Ctrl+Alt+J"))
        try:
            page.hotkey.setKeySequence("Ctrl+Alt+J")
            page.hotkey.editingFinished.emit()
            assert "already taken" in page.hotkey_status.text()
            assert prefs.load()["hotkey"] == "Ctrl+Alt+K"
        finally:
            holder.unregister()
        # Off releases the grab.
        page.hotkey_enabled.setChecked(False)
        assert page.hotkey_status.text() == "Off" and prefs.load()["hotkey_enabled"] is False
        probe = X11Backend(lambda: None)
        probe.register(parse_chord("Ctrl+Alt+J"))
        probe.unregister()
    finally:
        if app is not None:
            app.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("ctrl+alt+s", "Ctrl+Alt+S"), ("Meta+Space", "Meta+Space"), ("f9", "F9"), ("Shift+Ins", "Shift+Ins")],
)
def test_chords_parse_to_their_portable_form(text, expected):
    assert str(parse_chord(text)) == expected


@pytest.mark.parametrize("text", ["", "S", "Ctrl+Alt+Ä", "Hyper+S", "Ctrl+"])
def test_chords_a_hotkey_cannot_be_are_refused(text):
    with pytest.raises(HotkeyError):
        parse_chord(text)


def test_prefs_survive_a_broken_file(monkeypatch, tmp_path):
    monkeypatch.setenv("CHATTERBOX_TRAY_HOME", str(tmp_path))
    prefs.path().parent.mkdir(parents=True)
    prefs.path().write_text("{not json")
    assert prefs.load() == prefs.DEFAULTS
    prefs.save(hotkey="Ctrl+Alt+Q")
    assert prefs.load()["hotkey"] == "Ctrl+Alt+Q" and prefs.load()["hotkey_enabled"] is True
