"""Stats, Settings, and what the Speak page offers for each variant."""

from __future__ import annotations

import pytest

from tests.support.daemons import DaemonProcess

from .conftest import open_app


def test_stats_page_shows_figures_and_recent_jobs(qtbot, tray_app, daemon, clips):
    page = tray_app.window.stats
    with daemon.client() as client:
        client.voices_add(name := f"st-{id(page)}", data=clips.new())
        client.synthesize("A short job for the stats page.", voice=name).collect()
        qtbot.waitUntil(lambda: page.jobs.topLevelItemCount() > 0, timeout=15_000)
        qtbot.waitUntil(lambda: page.plots["cpu"].latest()[1] is not None)
        assert page.gpu is False  # the fake engine runs on the CPU: CPU and RAM plots instead
        assert set(page.plots) == {"cpu", "ram"}
        assert page.plots["ram"].latest()[0] > 0
        # The cache figures come with the page's next poll, which may follow the job's end.
        qtbot.waitUntil(lambda: "in memory" in page.values["entries"].text(), timeout=10_000)
        # The cache figures are the daemon's, as docs/protocol.md defines them.
        counted = ("prepared_in_background", "misses", "requests", "entries", "hits")

        def same_as_daemon() -> bool:
            daemon_stats = client.cache_stats()
            return page.cache is not None and all(getattr(page.cache, k) == daemon_stats[k] for k in counted)

        qtbot.waitUntil(same_as_daemon, timeout=10_000)
        stats = page.cache.to_data()
        assert page.values["background"].text().split()[0] == str(stats["prepared_in_background"])
        assert page.values["misses"].text() == str(stats["misses"])
        assert f"of {stats['requests']}" in page.values["hit_rate"].text()
        assert page.values["entries"].text() == (
            f"{stats['entries']['memory']} in memory, {stats['entries']['disk']} on disk"
        )
        assert "not a request" in page.values["hit_rate"].toolTip()
        assert page.values["model"].text().startswith("original")
        # Shared daemon: other tests' jobs may be listed too; ours shows its text, not a bare job id.
        qtbot.waitUntil(
            lambda: any(
                page.jobs.topLevelItem(i).text(1) == "A short job for the stats page."
                for i in range(page.jobs.topLevelItemCount())
            ),
            timeout=15_000,
        )
        item = next(
            page.jobs.topLevelItem(i)
            for i in range(page.jobs.topLevelItemCount())
            if page.jobs.topLevelItem(i).text(1) == "A short job for the stats page."
        )
        assert item.text(0).count(":") == 2 and item.text(5) != "–"  # when it ended; its real-time factor
        client.voices_remove(name)


def test_settings_are_read_from_and_written_to_the_daemon(qtbot, tray_app, daemon):
    page = tray_app.window.settings
    with daemon.client() as client:
        before = client.settings_get()["settings"]
        qtbot.waitUntil(lambda: page.memory_mb.value() == before["memory_cache_mb"])
        page.memory_mb.setValue(before["memory_cache_mb"] + 64)
        assert page.changes() == {"memory_cache_mb": before["memory_cache_mb"] + 64}
        page.apply()
        qtbot.waitUntil(lambda: client.settings_get()["settings"]["memory_cache_mb"] == before["memory_cache_mb"] + 64)
        # Another client changes it back: the page follows the settings event.
        client.settings_set(memory_cache_mb=before["memory_cache_mb"])
        qtbot.waitUntil(lambda: page.memory_mb.value() == before["memory_cache_mb"])
        assert page.changes() == {}


@pytest.fixture(scope="module")
def turbo_daemon():
    proc = DaemonProcess(args=("--engine", "fake", "--variant", "turbo")).start()
    yield proc
    proc.cleanup()


def test_turbo_shows_cfg_and_exaggeration_disabled(qtbot, turbo_daemon):
    app = open_app(qtbot, turbo_daemon)
    try:
        sliders = app.window.speak.sliders
        assert sliders["temperature"].isEnabled()
        for name in ("cfg_weight", "exaggeration"):
            assert not sliders[name].isEnabled()
            assert "ignores" in sliders[name].toolTip()
        assert set(app.window.speak.options()) == {"temperature"}
    finally:
        app.close()


def test_stats_and_settings_fit_the_default_window_without_scrolling(qtbot, tray_app):
    from PySide6.QtWidgets import QScrollArea

    from chatterbox_tray.gui.window import DEFAULT_SIZE

    window = tray_app.window
    window.resize(*DEFAULT_SIZE)  # the offscreen screen is smaller than a desktop's
    window.show()
    for name, page in (("Stats", window.stats), ("Settings", window.settings)):
        window.show_page(name)
        qtbot.waitUntil(lambda page=page: page.isVisible())
        scroll = page.findChild(QScrollArea)
        qtbot.wait(50)  # a layout pass
        assert scroll.verticalScrollBar().maximum() == 0, f"{name} scrolls at {DEFAULT_SIZE}"


def test_plots_have_scales(qtbot):
    from chatterbox_tray.gui.plots import Sparkline

    plot = Sparkline("CPU", [("all", "#000")], maximum=100, unit=" %", capacity=150)
    qtbot.addWidget(plot)
    plot.add([40.0])
    assert plot.axis_labels() == ("100 %", "0 %", "−5 min", "now")
    plot.grab()  # paints with the scales
