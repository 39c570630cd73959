"""`chatterbox-tray speechd install --markup`: SymbolsPreproc "no" in the user's speechd.conf, marked as ours.

Speech Dispatcher's symbol pre-processing (on by default since 0.10) turns
"[" and "]" into spaces before any module sees the text, so our pauses and
Turbo's tags need it off; it is server-wide, so only when the user asks. The
real speech-dispatcher with this configuration is in
tests/protocol/test_speechd_markup.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chatterbox_tray.cli import speech_dispatcher
from chatterbox_tray.cli.main import build_parser
from tests.support.dotconf import directive

USER_CONF = '# my own settings\nDefaultRate 20\nSymbolsPreproc "char"\nSymbolsPreprocFile "symbols.dic"\n'


@pytest.fixture
def system(tmp_path: Path) -> Path:
    """A system speechd folder with symbol pre-processing on, as Debian's is."""
    folder = tmp_path / "etc-speech-dispatcher"
    folder.mkdir()
    real = Path("/etc/speech-dispatcher/speechd.conf")
    base = real.read_text() if real.is_file() else '#AddModule "espeak-ng" "sd_espeak-ng" "espeak-ng.conf"\n'
    (folder / "speechd.conf").write_text(base + ("" if "\nSymbolsPreproc " in base else 'SymbolsPreproc "char"\n'))
    return folder


def active(conf: str) -> list[str]:
    """The SymbolsPreproc lines speechd reads (ours, and any we did not turn off)."""
    return directive(conf, "SymbolsPreproc")


def test_markup_turns_symbol_preprocessing_off_in_our_block_and_uninstall_restores(tmp_path: Path, system) -> None:
    home = tmp_path / "xdg"
    user = home / "speech-dispatcher" / "speechd.conf"
    user.parent.mkdir(parents=True)
    user.write_text(USER_CONF)
    report = speech_dispatcher.install(["narrator"], home=home, system=system, markup=True)
    assert report.markup and report.speechd_conf == user and report.discovery
    text = user.read_text()
    assert active(text) == ['SymbolsPreproc "no"']  # the user's own line is turned off, as DefaultModule is
    assert f'{speech_dispatcher.OFF}SymbolsPreproc "char"\n' in text
    assert 'SymbolsPreprocFile "symbols.dic"' in text  # SymbolsPreprocFile is another directive: left alone
    block = text.split(speech_dispatcher.BEGIN, 1)[1]
    assert block.index('SymbolsPreproc "no"') < block.index(speech_dispatcher.END)
    assert "[pause 1s]" in block and "other voices" in block  # the file says why and what it changes
    assert speech_dispatcher.install(["narrator"], home=home, system=system, markup=True).markup
    assert user.read_text() == text  # idempotent
    speech_dispatcher.uninstall(home)
    assert user.read_text() == USER_CONF


def test_markup_stays_through_later_installs_until_no_markup(tmp_path: Path, system: Path) -> None:
    """The README says to run install again after adding voices: that must not undo --markup."""
    home = tmp_path / "xdg"
    user = home / "speech-dispatcher" / "speechd.conf"
    user.parent.mkdir(parents=True)
    user.write_text(USER_CONF)
    speech_dispatcher.install(["narrator"], home=home, system=system, markup=True)
    report = speech_dispatcher.install(["narrator", "other"], home=home, system=system)
    assert report.markup and active(user.read_text()) == ['SymbolsPreproc "no"']
    report = speech_dispatcher.install(["narrator"], home=home, system=system, markup=False)
    assert not report.markup and user.read_text() == USER_CONF
    assert not speech_dispatcher.install(["narrator"], home=home, system=system).markup


def test_markup_on_a_discovering_system_makes_a_copy_that_uninstall_removes(tmp_path: Path, system: Path) -> None:
    home = tmp_path / "xdg"
    report = speech_dispatcher.install(["narrator"], home=home, system=system, markup=True, alsa=True)
    user = home / "speech-dispatcher" / "speechd.conf"
    assert report.created_speechd_conf and report.markup and report.alsa
    assert active(user.read_text()) == ['SymbolsPreproc "no"']
    assert directive(user.read_text(), "AudioOutputMethod") == ['AudioOutputMethod "alsa"']
    report = speech_dispatcher.uninstall(home)
    assert report.removed_speechd_conf and not home.joinpath("speech-dispatcher").exists()


def test_the_install_command_takes_markup_and_no_markup() -> None:
    parser = build_parser()
    assert parser.parse_args(["speechd", "install"]).markup is None
    assert parser.parse_args(["speechd", "install", "--markup"]).markup is True
    assert parser.parse_args(["speechd", "install", "--no-markup"]).markup is False
    with pytest.raises(SystemExit):
        parser.parse_args(["speechd", "install", "--markup", "--no-markup"])


def test_the_install_command_takes_default_and_no_default() -> None:
    parser = build_parser()
    assert parser.parse_args(["speechd", "install"]).default is None  # keep what an earlier install chose
    assert parser.parse_args(["speechd", "install", "--default"]).default is True
    assert parser.parse_args(["speechd", "install", "--no-default"]).default is False
    with pytest.raises(SystemExit):
        parser.parse_args(["speechd", "install", "--default", "--no-default"])
