"""The Voices page and the tray's voice menu follow the daemon's library."""

from __future__ import annotations

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
        supported = "voices.play" in tray_app.state.hello["ops"]
        assert page.play_button.isEnabled() == supported
        if supported:  # the clip plays on the daemon's speaker: the app sees it speaking
            page.play_button.click()
            qtbot.waitUntil(lambda: tray_app.state.speaking, timeout=15_000)
            client.stop(all=True)
            qtbot.waitUntil(lambda: not tray_app.state.busy, timeout=15_000)
        client.voices_remove(name)
