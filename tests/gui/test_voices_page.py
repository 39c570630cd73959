"""The Voices page and the tray's voice menu follow the daemon's library."""

from __future__ import annotations

import pytest

from chatterbox_tray.gui.widgets import CACHE_LABELS
from tests.support.daemons import uid


def test_list_follows_add_and_remove_events_from_another_client(qtbot, tray_app, daemon, clips):
    page = tray_app.window.voices
    name = uid("ext")
    with daemon.client() as client:
        client.voices_add(name, data=clips.new())
        qtbot.waitUntil(lambda: name in page.names())
        # The tray's voice menu follows too.
        assert name in [a.text() for a in tray_app.tray.voices_menu.actions()]
        # Its conditionals get prepared in the background; the cache column follows the cache event.
        row = page.names().index(name)
        qtbot.waitUntil(lambda: page.table.topLevelItem(page.names().index(name)).text(2) == CACHE_LABELS["memory"])
        assert row >= 0
        client.voices_remove(name)
    qtbot.waitUntil(lambda: name not in page.names())
    assert name not in [a.text() for a in tray_app.tray.voices_menu.actions()]


def test_add_rename_default_and_delete_from_the_page(qtbot, tray_app, daemon, clips):
    page = tray_app.window.voices
    name, new = uid("page"), uid("renamed")
    page.add_bytes(name, clips.new(), "clip.wav")
    qtbot.waitUntil(lambda: name in page.names())
    with daemon.client() as client:
        assert name in [v["name"] for v in client.voices_list()]
        page.rename_to(name, new)
        qtbot.waitUntil(lambda: new in page.names() and name not in page.names())
        page.select(new)
        page.set_default()
        qtbot.waitUntil(lambda: tray_app.state.default_voice == new)
        assert client.voices_default()["default"] == new
        # The Speak page's picker and the tray's menu show the new default.
        assert tray_app.window.speak.voice.currentData() == new
        checked = [a.text() for a in tray_app.tray.voices_menu.actions() if a.isChecked()]
        assert checked == [new]
        page.delete_voice(new)
        qtbot.waitUntil(lambda: new not in page.names())
        assert new not in [v["name"] for v in client.voices_list()]
    assert tray_app.state.default_voice is None


def test_a_bad_clip_shows_the_daemons_reason(qtbot, tray_app):
    page = tray_app.window.voices
    tray_app.window.show_page("Voices")
    page.add_bytes(uid("bad"), b"this is not audio at all", "notes.txt")
    qtbot.waitUntil(lambda: page.banner.isVisible() and "Could not add" in page.banner.label.text(), timeout=30_000)
    assert tray_app.state.connected  # a slow answer is not a lost daemon
    assert "decode" in page.banner.label.text().lower() or "audio" in page.banner.label.text().lower()


def test_play_button_follows_the_daemons_ops(qtbot, tray_app, daemon, clips):
    page = tray_app.window.voices
    name = uid("play")
    with daemon.client() as client:
        client.voices_add(name, data=clips.new())
        qtbot.waitUntil(lambda: name in page.names())
        page.select(name)
        supported = "voices.play" in tray_app.state.hello.ops
        assert page.play_button.isEnabled() == supported
        if supported:  # the clip plays on the daemon's speaker: the app sees it speaking
            page.play_button.click()
            qtbot.waitUntil(lambda: tray_app.state.speaking, timeout=15_000)
            client.stop(all=True)
            qtbot.waitUntil(lambda: not tray_app.state.busy, timeout=15_000)
        client.voices_remove(name)


@pytest.mark.parametrize(
    ("clip", "why"),
    [
        (b"RIFF\x24\x00\x00\x00WAVEfmt this is not audio at all" * 40, "as audio"),
        ("silent", "silent"),
    ],
    ids=["unreadable", "silent"],
)
def test_every_clip_is_checked_before_its_name_is_asked(qtbot, tray_app, monkeypatch, tmp_path, clip, why):
    """An unreadable or silent clip is refused before the name dialog (issue 23 §4).

    Before: only the length in the file's header was checked first; an
    unreadable file asked for a name, then failed.
    """
    import numpy as np
    from PySide6.QtWidgets import QInputDialog

    from tests.support.daemons import wav_bytes

    page = tray_app.window.voices
    tray_app.window.show_page("Voices")
    path = tmp_path / "clip.wav"
    path.write_bytes(wav_bytes(np.zeros(24_000 * 7, dtype=np.float32), 24_000) if clip == "silent" else clip)
    asked = []
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: asked.append(a) or ("x", False))
    page.add_file(path)
    qtbot.waitUntil(
        lambda: page.banner.isVisible() and "Cannot add clip.wav" in page.banner.label.text(), timeout=15_000
    )
    assert why in page.banner.label.text().lower() and not page.banner.label.text().endswith("..")
    assert asked == [], "the name was asked for a clip that can never be a voice"


def test_a_good_clip_is_checked_then_named_then_added(qtbot, tray_app, daemon, clips, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QInputDialog

    page = tray_app.window.voices
    path = tmp_path / "good.wav"
    path.write_bytes(clips.new())
    name = uid("named")
    asked = []
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: asked.append(k.get("text")) or (name, True))
    before = {v.name for v in tray_app.state.voices}
    page.add_file(path)
    qtbot.waitUntil(lambda: name in page.names(), timeout=15_000)
    assert asked == ["good"]  # the file's name, offered
    # ``before`` may predate the shared daemon's list arriving: only the new name matters
    assert name not in before and name in {v.name for v in tray_app.state.voices}
