"""Speech Dispatcher's module configuration and installer (cli/speech_dispatcher.py, docs/speech-dispatcher.md).

In process, on files in a temporary ``XDG_CONFIG_HOME`` (fast, no daemon).
The daemon's side of stopping and the real ``speech-dispatcher`` are in
tests/protocol/test_speechd.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chatterbox_tray.cli import speech_dispatcher
from tests.support.dotconf import directive, dotconf_value

CLI = [sys.executable, "-m", "chatterbox_tray.cli.main"]


# -- the configuration ------------------------------------------------------------------


def test_the_command_survives_sd_generic_substitution_with_hostile_text_and_names(tmp_path: Path) -> None:
    """Substitute as sd_generic does (its source, generic.c: $VOICE and $VOLUME pasted,
    quotes in $DATA escaped as '\\'' and the rest pasted into '...') and run the
    command in bash: the text and the voice arrive intact, nothing is executed."""
    probe = tmp_path / "probe.py"
    probe.write_text("import json, sys; print(json.dumps([sys.argv[1:], sys.stdin.read()]))\n")
    space_dir = tmp_path / "a dir with 'quotes'"
    space_dir.mkdir()
    python = space_dir / "py"
    python.symlink_to(sys.executable)
    conf = speech_dispatcher.render(["O'Brien", 'Say "hi"', "$DATA and $HOME"], command=[str(python), str(probe)])
    [synth] = directive(conf, "GenericExecuteSynth")
    template = dotconf_value(synth)
    assert "$LANGUAGE" not in template  # never passed: see the docs
    assert "GenericRateForceInteger 1" in conf.splitlines()  # else "%.2f", a decimal comma in some locales
    text = 'It\'s "quoted" $HOME `touch pwned` $(touch pwned) \\ done; exit 1'
    for token in speech_dispatcher.VoiceMap.build(["O'Brien", 'Say "hi"', "$DATA and $HOME"]).tokens:
        command = template.replace("$VOLUME", "-40").replace("$RATE", "-25").replace("$VOICE", token)
        head, tail = command.split("$DATA")
        command = head + text.replace("'", "'\\''") + tail
        out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=tmp_path, timeout=30)
        assert out.returncode == 0, out.stderr
        argv, stdin = __import__("json").loads(out.stdout)
        assert stdin == text
        assert argv == ["speechd", "speak", "--voice", token, "--volume", "-40", "--rate", "-25", "--priority", "text"]
    assert not (tmp_path / "pwned").exists()


def test_voices_are_offered_under_safe_names_with_the_default_last() -> None:
    conf = speech_dispatcher.render(["narrator", "O'Brien", "Default", "O\u2019Brien", "$x"], language="fr")
    voices = [re.findall(r'"([^"]*)"', line) for line in directive(conf, "AddVoice")]
    assert voices == [
        ["fr", "MALE1", "narrator"],
        ["fr", "MALE1", "O\u2019Brien"],  # the quote would end the command's '...'
        ["fr", "MALE1", "\uff04x"],  # "$" would be taken for one of sd_generic's variables
        ["fr", "MALE1", "default"],  # last: what symbolic voices (-t male1, ...) get
    ]
    assert 'DefaultVoice "default"' in conf
    skipped = [line for line in conf.splitlines() if line.startswith("# not offered")]
    assert len(skipped) == 2 and "Default" in skipped[0] and "O\u2019Brien" in skipped[1]


def test_text_settings_keep_one_command_per_message_and_utf8() -> None:
    conf = speech_dispatcher.render(["narrator"])
    assert 'GenericDelimiters "\x1f"' in conf  # not ".", which runs one command per sentence
    assert 'GenericLanguage "ja" "ja" "utf-8"' in conf and 'GenericLanguage "en" "en" "utf-8"' in conf
    assert len(directive(conf, "GenericLanguage")) == len(speech_dispatcher.ISO_639_1) == 184
    with pytest.raises(ValueError):
        speech_dispatcher.render(["narrator"], priority="loud")


def test_the_text_the_module_hands_over_is_cleaned() -> None:
    assert speech_dispatcher.clean_text("Grüße, 日本".encode()) == ("Grüße, 日本", False)
    assert speech_dispatcher.clean_text("Grüße".encode("latin-1")) == ("Grüße", False)  # recoded by the module
    # What speech-dispatcher 0.11.4 sent us for "A.\n\nB." (second command).
    assert speech_dispatcher.clean_text(b"\nB.\n.\nle1\nlanguage=c\nsyn\nB.") == ("\nB.", True)
    assert speech_dispatcher.clean_text(b"\nThird.\n.\n para.") == ("\nThird.", True)
    assert speech_dispatcher.clean_text(b"3.5 and .5 stay.\n.5 too") == ("3.5 and .5 stay.\n.5 too", False)


def test_later_commands_of_a_message_with_stale_bytes_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHATTERBOX_TRAY_HOME", str(tmp_path))
    assert not speech_dispatcher.after_overrun(4242)
    speech_dispatcher.note_overrun(4242)
    assert speech_dispatcher.after_overrun(4242)  # the same message (process group): stale
    assert not speech_dispatcher.after_overrun(4243)  # the next message runs in a new group
    speech_dispatcher.note_overrun(4243)
    assert not speech_dispatcher.after_overrun(4242)


@pytest.mark.parametrize(
    ("value", "gain"), [("100", 1.0), ("0", 0.5), ("-100", 0.0), ("-50.00", 0.25), ("250", 1.0), ("x", 1.0)]
)
def test_speechd_volume_maps_to_a_gain(value: str, gain: float) -> None:
    assert speech_dispatcher.volume_gain(value) == gain


@pytest.mark.parametrize(
    ("value", "factor"),
    [
        ("100", 2.0),
        ("-100", 0.5),
        ("50", 2**0.5),
        ("-50", 2**-0.5),
        ("0", None),
        (None, None),
        ("250", 2.0),
        ("-300", 0.5),
        ("x", None),
        ("nan", None),
    ],
)
def test_speechd_rate_maps_to_a_speaking_rate(value: str | None, factor: float | None) -> None:
    got = speech_dispatcher.rate_factor(value)
    assert got == (None if factor is None else pytest.approx(factor))


def test_voice_names_resolve_back_to_the_library() -> None:
    names = ["narrator", "O'Brien", "$x"]
    assert speech_dispatcher.resolve_voice("O\u2019Brien", names) == "O'Brien"
    assert speech_dispatcher.resolve_voice("NARRATOR", names) == "narrator"
    assert speech_dispatcher.resolve_voice("\uff04x", names) == "$x"
    assert speech_dispatcher.resolve_voice("default", names) is None
    assert speech_dispatcher.resolve_voice("no_voice", names) is None
    assert speech_dispatcher.resolve_voice("someone else", names) is None


# -- the installer -------------------------------------------------------------------------

USER_EDITS = "# my own settings\nDefaultRate 20\nLogLevel 4\n"


@pytest.fixture
def system(tmp_path: Path) -> Path:
    """A system speechd folder like Debian's: AddModule lines all commented out."""
    folder = tmp_path / "etc-speech-dispatcher"
    (folder / "clients").mkdir(parents=True)
    (folder / "clients" / "emacs.conf").write_text('BeginClient "emacs:*"\nEndClient\n')
    real = Path("/etc/speech-dispatcher/speechd.conf")
    base = real.read_text() if real.is_file() else '#AddModule "espeak-ng" "sd_espeak-ng" "espeak-ng.conf"\n'
    (folder / "speechd.conf").write_text(base)
    return folder


def test_install_writes_the_module_and_leaves_discovery_alone(tmp_path: Path, system: Path) -> None:
    home = tmp_path / "xdg"
    report = speech_dispatcher.install(["narrator"], home=home, system=system)
    conf = home / "speech-dispatcher" / "modules" / "chatterbox-tray-generic.conf"
    assert report.module_conf == conf and conf.is_file()
    assert report.discovery is True and report.speechd_conf is None
    assert not (home / "speech-dispatcher" / "speechd.conf").exists()  # an AddModule would hide every other module
    assert 'AddVoice "en" "MALE1" "narrator"' in conf.read_text()


def test_install_honours_xdg_config_home(tmp_path: Path, system: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "elsewhere"))
    speech_dispatcher.install(["narrator"], system=system)
    assert (tmp_path / "elsewhere" / "speech-dispatcher" / "modules" / speech_dispatcher.CONF_NAME).is_file()
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert speech_dispatcher.module_conf_path() == tmp_path / "home" / ".config" / "speech-dispatcher" / "modules" / (
        speech_dispatcher.CONF_NAME
    )


def test_install_is_idempotent_and_keeps_a_users_speechd_conf(tmp_path: Path, system: Path) -> None:
    home = tmp_path / "xdg"
    user = home / "speech-dispatcher" / "speechd.conf"
    user.parent.mkdir(parents=True)
    user.write_text(USER_EDITS)
    speech_dispatcher.install(["narrator"], home=home, system=system)
    first = speech_dispatcher.module_conf_path(home).read_bytes()
    speech_dispatcher.install(["narrator"], home=home, system=system)
    assert speech_dispatcher.module_conf_path(home).read_bytes() == first
    assert user.read_text() == USER_EDITS  # no AddModule there: discovery finds the module


def test_install_registers_where_discovery_is_off_and_uninstall_restores(tmp_path: Path, system: Path) -> None:
    home = tmp_path / "xdg"
    user = home / "speech-dispatcher" / "speechd.conf"
    user.parent.mkdir(parents=True)
    original = USER_EDITS + 'AddModule "espeak-ng" "sd_espeak-ng" "espeak-ng.conf"\nDefaultModule espeak-ng\n'
    user.write_text(original)
    report = speech_dispatcher.install(["narrator"], home=home, system=system, make_default=True)
    assert report.discovery is False and report.speechd_conf == user and not report.created_speechd_conf
    once = user.read_text()
    assert once.startswith(USER_EDITS + 'AddModule "espeak-ng"')  # the user's lines stay, in place
    assert f"{speech_dispatcher.OFF}DefaultModule espeak-ng\n" in once
    conf_path = speech_dispatcher.module_conf_path(home)
    assert f'\nAddModule "chatterbox-tray-generic" "sd_generic" "{conf_path}"\n' in once
    assert once.count("AddModule") == 2 and "\nDefaultModule chatterbox-tray-generic\n" in once
    speech_dispatcher.install(["narrator"], home=home, system=system, make_default=True)
    assert user.read_text() == once  # idempotent
    # The README says to run install again after adding voices: that keeps --default ...
    speech_dispatcher.install(["narrator", "other"], home=home, system=system)
    assert "\nDefaultModule chatterbox-tray-generic\n" in user.read_text()
    assert f"{speech_dispatcher.OFF}DefaultModule espeak-ng\n" in user.read_text()
    # ... until --no-default
    speech_dispatcher.install(["narrator"], home=home, system=system, make_default=False)
    assert "DefaultModule chatterbox-tray-generic" not in user.read_text()
    assert "\nDefaultModule espeak-ng\n" in user.read_text()
    speech_dispatcher.uninstall(home)
    assert user.read_text() == original
    assert not conf_path.exists()


def test_install_creates_the_users_speechd_conf_from_the_systems_only_when_needed(tmp_path: Path, system: Path) -> None:
    home = tmp_path / "xdg"
    (system / "speechd.conf").write_text('LogLevel 3\nAddModule "dummy" "sd_dummy" ""\n')
    report = speech_dispatcher.install(["narrator"], home=home, system=system)
    user = home / "speech-dispatcher" / "speechd.conf"
    assert report.created_speechd_conf and report.speechd_conf == user
    text = user.read_text()
    assert text.startswith('LogLevel 3\nAddModule "dummy" "sd_dummy" ""\n') and "chatterbox-tray-generic" in text
    assert (home / "speech-dispatcher" / "clients" / "emacs.conf").is_file()  # as spd-conf -u copies it


def test_uninstall_needs_no_daemon(tmp_path: Path, system: Path) -> None:
    home = tmp_path / "xdg"
    speech_dispatcher.install(["narrator"], home=home, system=system)
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(home),
        "CHATTERBOX_TRAY_HOME": str(tmp_path / "nodaemon"),
        "XDG_RUNTIME_DIR": str(tmp_path),
    }
    out = subprocess.run(
        [*CLI, "--no-start", "speechd", "uninstall", "--no-reload"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert not speech_dispatcher.module_conf_path(home).exists()


# -- uninstalling takes away what install added (issue 23) --------------------------------------


def test_install_default_on_a_discovering_system_then_uninstall_leaves_nothing(tmp_path: Path, system: Path) -> None:
    """`install --default` made the user's speechd.conf as a copy of the system's (and its clients/):
    uninstall removes that copy while it is unchanged, and the folders install made."""
    home = tmp_path / "xdg"
    report = speech_dispatcher.install(["narrator"], home=home, system=system, make_default=True)
    user = home / "speech-dispatcher" / "speechd.conf"
    assert report.created_speechd_conf and "\nDefaultModule chatterbox-tray-generic\n" in user.read_text()
    assert (home / "speech-dispatcher" / "clients" / "emacs.conf").is_file()
    speech_dispatcher.install(["narrator", "other"], home=home, system=system, make_default=True)  # again
    report = speech_dispatcher.uninstall(home)
    assert report.removed_speechd_conf
    assert not home.joinpath("speech-dispatcher").exists(), sorted(home.rglob("*"))


def test_uninstall_keeps_a_copy_the_user_edited_without_our_lines(tmp_path: Path, system: Path) -> None:
    home = tmp_path / "xdg"
    speech_dispatcher.install(["narrator"], home=home, system=system, make_default=True)
    user = home / "speech-dispatcher" / "speechd.conf"
    user.write_text(user.read_text() + "DefaultRate 30\n")
    (home / "speech-dispatcher" / "clients" / "mine.conf").write_text("BeginClient\nEndClient\n")
    report = speech_dispatcher.uninstall(home)
    assert not report.removed_speechd_conf
    assert user.read_text() == (system / "speechd.conf").read_text() + "DefaultRate 30\n"
    assert (home / "speech-dispatcher" / "clients" / "emacs.conf").is_file()


def test_the_block_names_the_whole_command_and_older_blocks_are_still_removed(tmp_path: Path, system: Path) -> None:
    home = tmp_path / "xdg"
    speech_dispatcher.install(["narrator"], home=home, system=system, make_default=True)
    user = home / "speech-dispatcher" / "speechd.conf"
    first = next(line for line in user.read_text().splitlines() if line.startswith("# >>> chatterbox-tray"))
    assert "`chatterbox-tray speechd uninstall`" in first and "`speechd uninstall` removes" not in first
    # A block written before (its first line named `speechd uninstall` alone) is ours too.
    user.write_text(user.read_text().replace(first, speech_dispatcher.BEGIN_PREFIX + ": added by `chatterbox-tray "
                    "speechd install`; `speechd uninstall` removes it"))  # fmt: skip
    speech_dispatcher.uninstall(home)
    assert not user.exists()


# -- Speech Dispatcher without PulseAudio (issue 23) ----------------------------------------------


def test_without_pulseaudio_install_chooses_alsa_and_uninstall_takes_it_away(tmp_path: Path, system: Path) -> None:
    home = tmp_path / "xdg"
    report = speech_dispatcher.install(["narrator"], home=home, system=system, alsa=True)
    user = home / "speech-dispatcher" / "speechd.conf"
    assert report.alsa and report.created_speechd_conf and report.speechd_conf == user
    assert directive(user.read_text(), "AudioOutputMethod") == ['AudioOutputMethod "alsa"']
    assert report.discovery  # still no AddModule: every module is found
    speech_dispatcher.uninstall(home)
    assert not user.exists()
    # A speechd.conf that already chooses an output is left to choose it.
    (system / "speechd.conf").write_text('AudioOutputMethod "pulse,alsa"\n')
    report = speech_dispatcher.install(["narrator"], home=home, system=system, alsa=True)
    assert not report.alsa and not user.exists()


def test_a_pulse_server_is_found_by_its_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.delenv("PULSE_SERVER", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    if Path("/var/run/pulse/native").is_socket():
        pytest.skip("this machine runs a system-wide PulseAudio")
    assert speech_dispatcher.pulse_server() is None
    (tmp_path / "pulse").mkdir()
    (tmp_path / "pulse" / "native").write_text("")  # not a socket
    assert speech_dispatcher.pulse_server() is None
    (tmp_path / "pulse" / "native").unlink()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "pulse" / "native"))
        assert speech_dispatcher.pulse_server() == str(tmp_path / "pulse" / "native")
    monkeypatch.setenv("PULSE_SERVER", "tcp:studio:4713")
    assert speech_dispatcher.pulse_server() == "tcp:studio:4713"


def test_the_module_log_is_named_after_the_module(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    path = speech_dispatcher.module_log_path()
    assert path == tmp_path / "speech-dispatcher" / "log" / "chatterbox-tray-generic.log"


# -- what would keep messages silent (issue 23) ------------------------------------------------


class _Daemon:
    def __init__(self, voices: list[dict], state: str = "ready", error: str = "") -> None:
        self.voices, self.state, self.error = voices, state, error

    def voices_list(self) -> list[dict]:
        return self.voices

    def status(self) -> dict:
        return {"state": self.state, "error": self.error}


def test_readiness_names_what_is_missing_and_what_to_do() -> None:
    narrator = {"name": "narrator", "default": True}
    assert speech_dispatcher.readiness(_Daemon([narrator])) == []
    assert speech_dispatcher.readiness(_Daemon([narrator], state="loading")) == []  # a message waits for it
    assert speech_dispatcher.readiness(_Daemon([narrator], state="sleeping")) == []
    [none] = speech_dispatcher.readiness(_Daemon([]))
    assert "no voices" in none and "chatterbox-tray voices add NAME CLIP" in none
    [no_default] = speech_dispatcher.readiness(_Daemon([{"name": "narrator", "default": False}]))
    assert "no default voice" in no_default and "chatterbox-tray voices default NAME" in no_default
    [failed] = speech_dispatcher.readiness(_Daemon([narrator], state="failed", error="s3gen.safetensors is missing"))
    assert "failed to load (s3gen.safetensors is missing)" in failed and "chatterbox-tray reload" in failed


def test_a_failure_is_one_dated_line_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    speech_dispatcher.log_failure("not_ready", "the model failed to load: no such folder (send retry_load)")
    err = capsys.readouterr().err
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d chatterbox-tray speechd: NOT SPOKEN: the model failed to load: "
        r"no such folder \(send retry_load\) \[not_ready\]; to fix: .*chatterbox-tray reload\n",
        err,
    ), err


FAKE_SPD_SAY = """#!/bin/sh
echo "spd-say $*" >> "{log}"
if [ "$1" = -O ]; then
    printf 'OUTPUT MODULES\\n{modules}\\n'
fi
"""


@pytest.mark.parametrize(
    ("modules", "chosen"),
    [
        ("chatterbox-tray-generic\\ndummy\\nfestival\\nespeak-ng", "espeak-ng"),
        ("chatterbox-tray-generic\\nrhvoice", "rhvoice"),
        ("chatterbox-tray-generic\\ndummy", None),
    ],
)
def test_a_failure_is_said_aloud_by_another_module_once_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, modules: str, chosen: str | None
) -> None:
    log = tmp_path / "calls.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "spd-say").write_text(FAKE_SPD_SAY.format(log=log, modules=modules))
    (bin_dir / "spd-say").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("CHATTERBOX_TRAY_HOME", str(tmp_path / "home"))
    assert speech_dispatcher.say_failure_aloud("unknown_voice") == chosen
    calls = log.read_text().splitlines()
    if chosen is None:
        assert calls == ["spd-say -O"]  # nothing but ours and the dummy: nothing said
        return
    assert calls[0] == "spd-say -O"
    assert calls[1].startswith(f"spd-say -o {chosen} -P important Chatterbox Tray said nothing: it has no default")
    # A minute later at the soonest: a screen reader sends a message for every key.
    assert speech_dispatcher.say_failure_aloud("unknown_voice") is None
    assert len(log.read_text().splitlines()) == 2
    # A failure that is not the user's to fix (a stop, say) is never said.
    assert speech_dispatcher.say_failure_aloud("cancelled") is None


class _FailingDaemon:
    """A daemon whose model failed to load: `speak` is refused with not_ready."""

    remote = False

    def voices_list(self) -> list[dict]:
        return [{"name": "narrator", "default": True}]

    def request(self, request: object) -> dict:
        from chatterbox_tray.ipc.protocol import ProtocolError

        raise ProtocolError("not_ready", "the model failed to load: /models/turbo has no t3_turbo.safetensors")


def test_speak_with_a_failed_model_logs_why_and_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Hello there.")))
    spoken_aloud: list[str] = []
    monkeypatch.setattr(speech_dispatcher, "say_failure_aloud", spoken_aloud.append)
    args = argparse.Namespace(voice="default", volume="100", rate="0", priority="text")
    assert speech_dispatcher.speak(_FailingDaemon(), args) == 1
    err = capsys.readouterr().err
    assert "NOT SPOKEN: the model failed to load: /models/turbo has no t3_turbo.safetensors [not_ready]" in err
    assert "chatterbox-tray reload" in err
    assert spoken_aloud == []  # run by hand (no sd_generic above it): nothing said aloud
