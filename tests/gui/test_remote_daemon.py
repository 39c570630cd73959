"""The tray app with a daemon on another computer: two fake daemons over TCP loopback, each with its own home.

``gpu`` serves the network with CURVE (remote mode on, slow chunks); the
app runs as the laptop: this test process takes the laptop's home (its
paired daemons, its gui.json) and the laptop's ALSA file sink as its own
speaker, beside the laptop's own local daemon. Pairing goes through the
Settings page's form, the daemon through its choice, and speech must be
heard here, in the laptop's sink, never in the gpu's.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from chatterbox_tray.gui import prefs
from chatterbox_tray.gui.app import TrayApp
from chatterbox_tray.gui.state import LOCAL_CHOICE
from chatterbox_tray.gui.window import LOCAL_BUTTON
from chatterbox_tray.ipc import endpoints, pairing, remote
from chatterbox_tray.ipc import requests as rq
from chatterbox_tray.ipc.client import Client
from tests.gui.conftest import CONNECT_TIMEOUT_MS
from tests.protocol.test_cli import cli, ok
from tests.support.daemons import Clips, DaemonProcess
from tests.support.remote import home_env, serving_daemon

#: The gpu daemon's per-chunk delay: speech is still coming when a test pauses or stops it.
CHUNK_DELAY_S = 0.2
TEXT = "Hello from the other room. Here is a second sentence."
LONG = " ".join(f"Sentence number {i} is here." for i in range(12))


@pytest.fixture(scope="module")
def gpu() -> Iterator[DaemonProcess]:
    """The GPU machine's daemon: remote mode on, fake engine, slow chunks."""
    proc = serving_daemon({"CHATTERBOX_TRAY_FAKE_DELAY": str(CHUNK_DELAY_S)}).start()
    yield proc
    proc.cleanup()


@pytest.fixture(scope="module")
def laptop() -> Iterator[DaemonProcess]:
    """The laptop: its own home and its own local daemon."""
    proc = DaemonProcess().start()
    yield proc
    proc.cleanup()


@pytest.fixture
def as_laptop(laptop: DaemonProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[DaemonProcess]:
    """This process is the laptop: its home, and its speaker (PortAudio started again to see the sink)."""
    import sounddevice as sd

    env = laptop.env()
    monkeypatch.setenv(endpoints.HOME_ENV, str(laptop.home))
    monkeypatch.setenv("ALSA_CONFIG_PATH", env["ALSA_CONFIG_PATH"])
    monkeypatch.delenv(remote.DAEMON_ENV, raising=False)
    sd._terminate()
    sd._initialize()
    yield laptop
    sd._terminate()
    sd._initialize()


def invite(gpu: DaemonProcess, minutes: float | None = None) -> str:
    args = ("remote", "invite") + (("--minutes", str(minutes)) if minutes else ())
    return re.search(r"pairing code:\s+(\S+)", ok(cli(gpu, *args))).group(1)


def open_app(qtbot, laptop: DaemonProcess, daemon: str | None = None) -> TrayApp:
    app = TrayApp(laptop.connection_path, autostart=False, probe_microphone=False, daemon=daemon)
    qtbot.addWidget(app.window)
    app.start()
    return app


def wait_ready(qtbot, app: TrayApp, remote_name: str | None) -> None:
    qtbot.waitUntil(
        lambda: app.state.remote == remote_name and app.state.ready and bool(app.state.hello.capabilities),
        timeout=CONNECT_TIMEOUT_MS,
    )


def pair_in_form(qtbot, app: TrayApp, name: str, host: str, code: str) -> str:
    """Fill the Settings page's pairing form, press Pair, and return what it says when done."""
    dialog = app.window.settings.open_pairing()
    dialog.name.setText(name)
    dialog.host.setText(host)
    dialog.code.setText(code)
    qtbot.mouseClick(dialog.pair_button, Qt.MouseButton.LeftButton)
    assert dialog.busy or dialog.message.text().startswith("Not paired")  # it returned at once: off the GUI thread
    qtbot.waitUntil(lambda: not dialog.busy, timeout=20_000)
    return dialog.message.text()


def settle(daemon: DaemonProcess, timeout: float = 10.0) -> int:
    """The sink's length once it stops growing."""
    last, since, deadline = len(daemon.played()), time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = len(daemon.played())
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > 0.6:
            break
    return last


@pytest.fixture(scope="module")
def narrator(gpu: DaemonProcess, clips: Clips) -> str:
    """A default voice on the gpu daemon (added by its owner)."""
    with gpu.client() as client:
        client.voices_add("narrator", data=clips.new())
        client.voices_default("narrator")
    return "narrator"


@pytest.fixture
def paired_app(qtbot, gpu: DaemonProcess, as_laptop: DaemonProcess, narrator: str) -> Iterator[TrayApp]:
    """The app, paired with gpu-box through its form, and switched to it with the Settings choice."""
    app = open_app(qtbot, as_laptop)
    try:
        wait_ready(qtbot, app, None)
        if "gpu-box" not in remote.read_daemons():
            said = pair_in_form(qtbot, app, "gpu-box", f"127.0.0.1:{gpu.port}", invite(gpu))
            assert said.startswith("Paired with gpu-box") and "SHA256:" in said, said
        choice = app.window.settings.daemon_choice
        index = choice.findData("gpu-box")
        assert index > 0
        choice.setCurrentIndex(index)
        choice.activated.emit(index)  # as a person picks it
        wait_ready(qtbot, app, "gpu-box")
        yield app
    finally:
        app.close()


# -- pairing and choosing -----------------------------------------------------------------


def test_pairing_from_the_form_lists_the_daemon_and_choosing_it_reconnects_and_is_saved(
    qtbot, gpu: DaemonProcess, paired_app: TrayApp, clips: Clips
) -> None:
    app = paired_app
    assert prefs.load()["daemon"] == "gpu-box"
    with gpu.client() as local:
        assert app.state.hello.pid == local.hello()["pid"]  # the gpu daemon answers, not the laptop's
    qtbot.waitUntil(lambda: app.window.speak.voice.findData("narrator") >= 0)  # its voice library
    with gpu.client() as local:  # a voice added there (no event reaches this app): polling finds it
        local.voices_add("visitor", data=clips.new())
    qtbot.waitUntil(lambda: app.window.speak.voice.findData("visitor") >= 0, timeout=10_000)
    with gpu.client() as local:
        local.voices_remove("visitor")
    settings = app.window.settings
    assert settings.daemon_choice.currentData() == "gpu-box"
    assert not settings.apply_button.isEnabled()  # its settings are its owner's
    assert "changed on that computer" in settings.file_label.text()
    assert "this computer's output device and volume" in settings.output_box.toolTip()  # what is heard here
    # Back to this computer: the laptop's daemon answers again.
    choice = settings.daemon_choice
    choice.setCurrentIndex(0)
    choice.activated.emit(0)
    wait_ready(qtbot, app, None)
    assert app.state.conn.pid == app.state.hello.pid != gpu.pid
    assert prefs.load()["daemon"] == "local"
    qtbot.waitUntil(lambda: settings.output_box.toolTip() == "")  # this computer's speaker again


def test_a_wrong_a_reused_and_an_expired_code_are_said_plainly_and_change_nothing(
    qtbot, gpu: DaemonProcess, as_laptop: DaemonProcess
) -> None:
    app = open_app(qtbot, as_laptop)
    host = f"127.0.0.1:{gpu.port}"
    try:
        before = remote.read_daemons()
        code = invite(gpu)
        wrong = code[:5] + ("Z" if code[5] != "Z" else "Y") + code[6:]
        said = pair_in_form(qtbot, app, "box-w", host, wrong)
        assert app.window.settings.pair_dialog.use_button.isHidden()
        assert said.startswith("Not paired") and "does not match" in said and "nothing was changed" in said
        assert remote.read_daemons() == before
        said = pair_in_form(qtbot, app, "box-r", host, code)  # the right one still works after a typo
        assert said.startswith("Paired with box-r")
        assert not app.window.settings.pair_dialog.use_button.isHidden()
        assert app.window.settings.daemon_choice.findData("box-r") > 0  # listed at once
        said = pair_in_form(qtbot, app, "box-r2", host, code)
        assert said.startswith("Not paired") and "already used" in said
        with home_env(gpu.home):
            expired, _ = pairing.create_invite(ttl=0.2)
        time.sleep(0.5)
        said = pair_in_form(qtbot, app, "box-x", host, expired)
        assert said.startswith("Not paired") and "expired" in said
        said = pair_in_form(qtbot, app, "box-y", host, "hello")
        assert "is not a pairing code" in said
        assert set(remote.read_daemons()) == set(before) | {"box-r"}
        remote.forget_daemon("box-r")
    finally:
        app.close()


# -- speech plays here ----------------------------------------------------------------------


def test_the_speak_page_synthesizes_there_and_plays_here(
    qtbot, gpu: DaemonProcess, laptop: DaemonProcess, paired_app: TrayApp
) -> None:
    app, page = paired_app, paired_app.window.speak
    events: list[dict] = []
    app.state.job_event.connect(events.append)
    gpu_before, here_before = len(gpu.played()), len(laptop.played())
    page.text.setPlainText(TEXT)
    qtbot.mouseClick(page.speak_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.progress_label.text().startswith("Done"), timeout=30_000)
    mine = [e for e in events if e.get("request") == page.request_id]
    names = [e["event"] for e in mine]
    assert names[0] == "queued" and names[-1] == "finished"
    assert "started" in names and names.count("sentence") == 2  # the page highlighted each sentence
    spans = [tuple(e["span"]) for e in mine if e["event"] == "sentence"]
    assert [TEXT[a:b] for a, b in spans] == ["Hello from the other room.", "Here is a second sentence."]
    played_s = mine[-1]["playback"]["played_s"]
    heard = laptop.played()[here_before:]
    while len(heard) < played_s * 24000 * 0.99:
        qtbot.wait(100)
        heard = laptop.played()[here_before:]
    assert np.abs(heard).max() > 0.01  # real samples reached this computer's speaker
    assert len(gpu.played()) == gpu_before  # nothing played in the other room
    assert "from gpu-box" in app.window.status_text.text() and "from gpu-box" in app.tray.icon.toolTip()
    assert not app.state.busy
    assert not app.tray.quit_and_stop.isVisible()  # that daemon is its owner's to stop


def test_speech_on_the_remote_daemons_own_speaker_is_not_this_apps(
    qtbot, gpu: DaemonProcess, paired_app: TrayApp
) -> None:
    app = paired_app
    with gpu.client() as owner:
        job = owner.speak(LONG)["job"]  # its owner speaks there, in the other room
        try:
            app.state.refresh_playback()  # what the app asks on connecting, and when events go quiet
            qtbot.wait(1000)
            assert not app.state.busy and not app.state.paused  # this computer's speaker is idle
            assert not app.window.speak.stop_button.isEnabled()
            app.window.speak.stop()  # and Stop here is for here
            qtbot.wait(500)
            assert job in (owner.playback().get("queue") or [])  # the owner's speech goes on
        finally:
            owner.stop(all=True)


def test_save_as_makes_the_file_there_and_writes_it_here(
    qtbot, gpu: DaemonProcess, paired_app: TrayApp, tmp_path
) -> None:
    import soundfile as sf

    page = paired_app.window.speak
    page.text.setPlainText(TEXT)
    page.save_to(str(tmp_path / "made-there.flac"))
    qtbot.waitUntil(lambda: page.progress_label.text().startswith("Saved made-there.flac"), timeout=30_000)
    audio, rate = sf.read(tmp_path / "made-there.flac")
    assert rate == 24000 and len(audio) > 0.5 * rate


def test_stop_silences_it_here_and_cancels_it_there(
    qtbot, gpu: DaemonProcess, laptop: DaemonProcess, paired_app: TrayApp
) -> None:
    app, page = paired_app, paired_app.window.speak
    page.text.setPlainText(LONG)
    qtbot.mouseClick(page.speak_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.progress_label.text().startswith("Speaking sentence 2"), timeout=30_000)
    assert page.stop_button.isEnabled() and app.state.speaking
    qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)  # stopped while paused, even
    qtbot.waitUntil(lambda: app.state.paused, timeout=5_000)
    qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.progress_label.text() == "Stopped", timeout=5_000)
    assert not app.state.busy
    assert not app.state.paused and page.pause_button.text() == "Pause"  # nothing here is left paused
    after = settle(laptop)
    time.sleep(3 * CHUNK_DELAY_S)
    assert len(laptop.played()) == after  # no more sentences arrive here
    with gpu.client() as local:
        deadline = time.monotonic() + 10
        while local.status()["queue"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert local.status()["queue"] == 0  # and the job was cancelled on the gpu daemon


def test_pause_holds_it_here_and_resume_plays_the_rest(
    qtbot, gpu: DaemonProcess, laptop: DaemonProcess, paired_app: TrayApp
) -> None:
    app, page = paired_app, paired_app.window.speak
    text = " ".join(f"Part {i} of the story." for i in range(6))
    before = len(laptop.played())
    page.text.setPlainText(text)
    qtbot.mouseClick(page.speak_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.progress_label.text().startswith("Speaking sentence 1"), timeout=30_000)
    qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: app.state.paused and page.pause_button.text() == "Resume", timeout=5_000)
    assert app.state.icon_state == "paused"
    held = settle(laptop)
    time.sleep(4 * CHUNK_DELAY_S)  # later sentences arrive meanwhile, and wait
    assert len(laptop.played()) == held
    events: list[dict] = []
    app.state.job_event.connect(events.append)
    qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.progress_label.text().startswith("Done"), timeout=30_000)
    assert not app.state.paused
    end = [e for e in events if e["event"] == "finished"][-1]
    assert end["summary"]["chunks"] == 6
    assert settle(laptop) - before >= end["playback"]["played_s"] * 24000 * 0.99  # all of it, after the pause


def test_skip_goes_to_the_next_sentence_here(
    qtbot, gpu: DaemonProcess, laptop: DaemonProcess, paired_app: TrayApp
) -> None:
    """The Speak page's Skip button with a remote daemon: this computer's speaker moves on at once."""
    app, page = paired_app, paired_app.window.speak
    events: list[dict] = []
    app.state.job_event.connect(events.append)
    assert not page.skip_button.isEnabled()  # nothing to skip yet
    page.text.setPlainText(LONG)
    qtbot.mouseClick(page.speak_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.progress_label.text().startswith("Speaking sentence 1"), timeout=30_000)
    qtbot.waitUntil(page.skip_button.isEnabled, timeout=5_000)
    started_at = len(laptop.played())
    heard_at_skip: list[int] = []
    app.state.job_event.connect(
        lambda e: heard_at_skip.append(len(laptop.played())) if e.get("event") == "sentence" else None
    )
    qtbot.mouseClick(page.skip_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.progress_label.text().startswith("Speaking sentence 2"), timeout=10_000)
    mine = [e for e in events if e.get("request") == page.request_id]
    assert [e["sentence"] for e in mine if e["event"] == "sentence"][:2] == [0, 1]
    # Sentence 1 began long before sentence 0 (about 2 s of audio) could have played out.
    assert heard_at_skip and heard_at_skip[0] - started_at < 1.5 * 24000
    qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not app.state.busy, timeout=5_000)


def test_priorities_between_this_apps_own_speech_are_the_daemons(
    qtbot, gpu: DaemonProcess, laptop: DaemonProcess, paired_app: TrayApp
) -> None:
    """Urgent speech interrupts a long text, which resumes; quick speech (the tray, the hotkey) replaces it."""
    app, page = paired_app, paired_app.window.speak
    events: list[dict] = []
    app.state.job_event.connect(events.append)
    page.text.setPlainText(LONG)
    qtbot.mouseClick(page.speak_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.progress_label.text().startswith("Speaking sentence 1"), timeout=30_000)
    long_request = page.request_id
    urgent = app.state.send(rq.speak("Attention please.", priority="urgent"))
    qtbot.waitUntil(
        lambda: any(e["event"] == "finished" and e.get("request") == urgent for e in events), timeout=30_000
    )
    mine = [e["event"] for e in events if e.get("request") == long_request]
    assert "interrupted" in mine and mine[-1] not in ("cancelled", "finished")  # it goes on after
    QGuiApplication.clipboard().setText("Quick words. From the tray.")
    app.tray.speak_clipboard.trigger()  # quick: replaces the long text, as on the daemon's speaker
    qtbot.waitUntil(
        lambda: any(e["event"] == "cancelled" and e.get("request") == long_request for e in events), timeout=10_000
    )
    ends = {"finished", "cancelled", "failed"}
    qtbot.waitUntil(
        lambda: any(e["event"] in ends and e.get("request") not in (long_request, urgent) for e in events),
        timeout=30_000,
    )
    quick_end = next(e for e in events if e["event"] in ends and e.get("request") not in (long_request, urgent))
    assert quick_end["event"] == "finished"
    with gpu.client() as local:
        deadline = time.monotonic() + 10
        while local.status()["queue"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert local.status()["queue"] == 0  # the replaced text's job was cancelled there


def test_this_computers_volume_and_device_apply_to_remote_speech(
    qtbot, gpu: DaemonProcess, laptop: DaemonProcess, paired_app: TrayApp
) -> None:
    """The output device and volume chosen for this computer (its settings.json) are used for speech from gpu-box."""
    app, page = paired_app, paired_app.window.speak
    page.text.setPlainText(TEXT)
    try:
        choose_speaker(laptop, volume=1.0, output_device="")
        loud = speak_and_hear(qtbot, app, laptop)
        choose_speaker(laptop, volume=0.25)
        quiet = speak_and_hear(qtbot, app, laptop)
        assert np.abs(quiet).max() == pytest.approx(0.25 * np.abs(loud).max(), rel=0.05)
        choose_speaker(laptop, output_device="Speakers in the attic")
        errors: list[str] = []
        app.state.job_event.connect(
            lambda e: errors.append(e["error"]["message"]) if e.get("event") == "failed" else None
        )
        qtbot.mouseClick(page.speak_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(errors), timeout=30_000)
        assert "no output device named 'Speakers in the attic'" in errors[0]
        qtbot.waitUntil(lambda: not app.state.busy, timeout=10_000)
    finally:
        choose_speaker(laptop, volume=1.0, output_device="")


def choose_speaker(laptop: DaemonProcess, **values: object) -> None:
    """This computer's speaker choice, written in its settings.json as its daemon would save it."""
    path = laptop.home / "config" / "settings.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**current, **values}))


def speak_and_hear(qtbot, app: TrayApp, laptop: DaemonProcess) -> np.ndarray:
    """Press Speak and return what this computer's speaker played."""
    page = app.window.speak
    before = settle(laptop)
    qtbot.mouseClick(page.speak_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.progress_label.text().startswith("Done"), timeout=30_000)
    settle(laptop)
    return laptop.played()[before:]


def test_clipboard_and_hotkey_speech_play_here_and_the_hotkey_stops_it(
    qtbot, gpu: DaemonProcess, laptop: DaemonProcess, paired_app: TrayApp
) -> None:
    app = paired_app
    gpu_before, here_before = len(gpu.played()), len(laptop.played())
    QGuiApplication.clipboard().setText("From the clipboard. Two sentences.")
    app.tray.speak_clipboard.trigger()
    qtbot.waitUntil(lambda: app.state.busy, timeout=10_000)
    qtbot.waitUntil(lambda: not app.state.busy, timeout=30_000)
    assert settle(laptop) > here_before
    QGuiApplication.clipboard().setText(LONG)
    here_before = len(laptop.played())
    app.quick.trigger()  # what a press of the hotkey does: speak the selection...
    qtbot.waitUntil(lambda: app.state.speaking, timeout=30_000)
    assert len(laptop.played()) > here_before or settle(laptop) > here_before
    app.quick.trigger()  # ...and, while speaking, be quiet
    qtbot.waitUntil(lambda: not app.state.busy, timeout=5_000)
    assert len(gpu.played()) == gpu_before


# -- an unreachable daemon ------------------------------------------------------------------


def test_an_unreachable_remote_daemon_is_said_and_the_fallback_uses_this_computers(
    qtbot, gpu: DaemonProcess, as_laptop: DaemonProcess
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]  # closed again: nobody listens there
    key = remote.load_or_create_keypair(remote.client_key_file()).public
    remote.save_daemon(remote.RemoteDaemon("switched-off", "127.0.0.1", dead_port, key, "attic, RTX 4090"))
    prefs.save(daemon="switched-off")
    app = open_app(qtbot, as_laptop, daemon=prefs.chosen_daemon())
    try:
        banner = app.window.daemon_banner.banner
        qtbot.waitUntil(lambda: banner.isVisible() and banner.action.text() == LOCAL_BUTTON, timeout=20_000)
        assert "did not answer" in banner.label.text() and "switched-off" in banner.label.text()
        assert app.state.where == "switched-off, RTX 4090"
        assert "switched-off" in app.tray.icon.toolTip()
        assert not app.window.speak.speak_button.isEnabled()
        assert app.tray.retry.isVisible() and app.tray.retry.text() == LOCAL_CHOICE  # the tray offers it too
        said: list[str] = []
        app.quick.notify = said.append
        app.quick.trigger()  # a hotkey press names the daemon that is not answering
        assert said == ["Quick-speak: the daemon switched-off is not answering"]
        started = time.monotonic()
        qtbot.mouseClick(banner.action, Qt.MouseButton.LeftButton)
        assert time.monotonic() - started < 1.0  # the switch does not wait for the old link
        wait_ready(qtbot, app, None)
        assert app.state.conn.pid == as_laptop.pid
        assert prefs.load()["daemon"] == "local"
        assert not banner.isVisible()
    finally:
        app.close()
        remote.forget_daemon("switched-off")


def test_the_environment_variable_wins_at_start(
    qtbot, gpu: DaemonProcess, as_laptop: DaemonProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "gpu-box" not in remote.read_daemons():
        ok(cli(as_laptop, "remote", "add", "gpu-box", f"127.0.0.1:{gpu.port}", invite(gpu)))
    prefs.save(daemon="local")
    monkeypatch.setenv(remote.DAEMON_ENV, "gpu-box")
    assert prefs.chosen_daemon() == "gpu-box"
    app = open_app(qtbot, as_laptop, daemon=prefs.chosen_daemon())
    try:
        wait_ready(qtbot, app, "gpu-box")
        assert app.window.settings.daemon_choice.currentData() == "gpu-box"
        with Client(remote.remote_connection("gpu-box")) as client:
            assert app.state.hello.pid == client.hello()["pid"]
    finally:
        app.close()
    monkeypatch.setenv(remote.DAEMON_ENV, "local")
    assert prefs.chosen_daemon() is None


def test_a_remote_model_that_reloads_is_followed_without_events(
    qtbot, laptop: DaemonProcess, as_laptop: DaemonProcess
) -> None:
    """A remote daemon sends no events: the app asks for its state, so loading and ready still show."""
    slow = serving_daemon({"CHATTERBOX_TRAY_FAKE_LOAD_DELAY": "4"}).start()
    port = slow.port
    app = None
    try:
        ok(cli(laptop, "remote", "add", "slow-box", f"127.0.0.1:{port}", invite(slow)))
        app = open_app(qtbot, as_laptop, daemon="slow-box")
        wait_ready(qtbot, app, "slow-box")
        seen: list[str] = []
        app.state.changed.connect(lambda: seen.append(app.state.model_state))
        with slow.client() as owner:
            assert owner.reload()["started"]  # its owner reloads it there (4 s)
        qtbot.waitUntil(lambda: app.state.model_state == "loading", timeout=10_000)
        assert "Loading the model" in app.window.status_text.text()
        qtbot.waitUntil(lambda: app.state.ready, timeout=20_000)
        assert seen.index("loading") < len(seen) - 1 - seen[::-1].index("ready")
    finally:
        if app is not None:
            app.close()
        remote.forget_daemon("slow-box")
        slow.cleanup()
