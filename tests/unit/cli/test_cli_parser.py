"""The CLI's parser and start-up (its commands against a daemon: tests/protocol/test_cli.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chatterbox_tray.cli import main, speech_dispatcher
from chatterbox_tray.ipc.limits import DEFAULT_PRIORITY, OPTION_RANGES, PRIORITIES


@pytest.mark.parametrize(
    ("argv", "daemon_argv"),
    [
        (["daemon"], []),
        (["daemon", "--variant", "turbo", "-v"], ["--variant", "turbo", "-v"]),
        (["--no-start", "daemon", "--help"], ["--help"]),
        (["say", "daemon"], None),  # the word as text to say, not the command
        (["status"], None),
        (["--json"], None),
        ([], None),
    ],
)
def test_the_daemon_command_is_recognised_before_parsing(argv: list[str], daemon_argv: list[str] | None) -> None:
    assert main._daemon_argv(argv) == daemon_argv


def cli(*argv: str) -> subprocess.CompletedProcess:
    """``chatterbox-tray ARGV`` in a fresh process (``daemon`` becomes the daemon's own program)."""
    return subprocess.run(
        [sys.executable, "-m", "chatterbox_tray.cli.main", *argv], capture_output=True, text=True, timeout=60
    )


def test_daemon_help_is_the_daemons_own() -> None:
    done = cli("daemon", "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: chatterbox-tray-daemon")
    for flag in ("--variant", "--checkpoint", "--device", "--no-warmup", "--max-tokens-per-chunk"):
        assert flag in done.stdout


def test_a_bad_daemon_option_is_a_usage_error() -> None:
    done = cli("daemon", "--variant", "nonsense")
    assert done.returncode == 2
    assert "invalid choice" in done.stderr


def test_priorities_and_option_ranges_come_from_the_shared_limits() -> None:
    parser = main.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    say = sub.choices["say"]
    priority = next(a for a in say._actions if a.dest == "priority")
    assert tuple(priority.choices) == PRIORITIES and priority.default == DEFAULT_PRIORITY
    for name, (lo, hi, default) in OPTION_RANGES.items():
        action = next(a for a in say._actions if a.dest == name)
        assert f"{lo:g}-{hi:g} (default {default:g})" in action.help
    assert speech_dispatcher.PRIORITIES == PRIORITIES and speech_dispatcher.DEFAULT_PRIORITY == DEFAULT_PRIORITY


def test_starting_the_cli_imports_no_daemon_code() -> None:
    code = (
        "import json, sys; import chatterbox_tray.cli.main as cli; cli.build_parser();"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('chatterbox_tray'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded = json.loads(out.stdout)
    assert "chatterbox_tray.cli.main" in loaded
    assert not [m for m in loaded if m.startswith(("chatterbox_tray.daemon", "chatterbox_tray.gui"))], loaded


def test_settings_help_lists_every_setting_with_what_it_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    from chatterbox_tray.ipc.settings_schema import SETTINGS

    with pytest.raises(SystemExit):
        main.build_parser().parse_args(["settings", "--help"])
    shown = capsys.readouterr().out
    for spec in SETTINGS.values():
        assert f"  {spec.name}: {spec.accepts()}; default {json.dumps(spec.default)}" in shown
    assert "sentence_pause_ms: between 0 and 5000; default 250" in shown
