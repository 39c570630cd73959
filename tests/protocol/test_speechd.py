"""Speech Dispatcher integration (ipc/speechd.py, docs/speech-dispatcher.md).

Three layers:

* the module configuration and the installer, on files in a temporary
  ``XDG_CONFIG_HOME`` (fast, no processes);
* the daemon's side of stopping: ``wait`` with ``stop_on_disconnect``, per-job
  ``volume``, and SIGTERM/SIGHUP in ``say``, on a real fake-engine daemon;
* the real thing: Debian's ``speech-dispatcher`` (a private instance on a
  socket in a temporary folder, configured by our own ``speechd install``)
  running our module against a fake-engine daemon that "plays" into ALSA's
  file plugin, driven with ``spd-say``. Skipped where speech-dispatcher is
  not installed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from chatterbox_tray.ipc import speechd
from chatterbox_tray.ipc.client import Client
from chatterbox_tray.ipc.protocol import ProtocolError
from tests.support.daemons import Clips, DaemonProcess, EventLog, accepted, uid

CLI = [sys.executable, "-m", "chatterbox_tray.ipc.cli"]
SENTENCE = "Number {:02d} says the quick brown fox jumps."


def sentences(n: int) -> str:
    return " ".join(SENTENCE.format(i) for i in range(n))


def dotconf_value(line: str) -> str:
    """The value of a one-string dotconf line, unescaped as dotconf does (backslash takes the next char)."""
    raw = line.split(" ", 1)[1].strip()
    assert raw.startswith('"') and raw.endswith('"'), line
    out, chars = [], iter(raw[1:-1])
    for c in chars:
        out.append(next(chars) if c == "\\" else c)
    return "".join(out)


def directive(conf: str, name: str) -> list[str]:
    return [line for line in conf.splitlines() if line.split(" ", 1)[0] == name]


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
    conf = speechd.render(["O'Brien", 'Say "hi"', "$DATA and $HOME"], command=[str(python), str(probe)])
    [synth] = directive(conf, "GenericExecuteSynth")
    template = dotconf_value(synth)
    assert "$LANGUAGE" not in template and "$RATE" not in template  # never passed: see the docs
    text = 'It\'s "quoted" $HOME `touch pwned` $(touch pwned) \\ done; exit 1'
    for token in speechd.VoiceMap.build(["O'Brien", 'Say "hi"', "$DATA and $HOME"]).tokens:
        command = template.replace("$VOLUME", "-40").replace("$VOICE", token)
        head, tail = command.split("$DATA")
        command = head + text.replace("'", "'\\''") + tail
        out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=tmp_path, timeout=30)
        assert out.returncode == 0, out.stderr
        argv, stdin = __import__("json").loads(out.stdout)
        assert stdin == text
        assert argv == ["speechd", "speak", "--voice", token, "--volume", "-40", "--priority", "text"]
    assert not (tmp_path / "pwned").exists()


def test_voices_are_offered_under_safe_names_with_the_default_last() -> None:
    conf = speechd.render(["narrator", "O'Brien", "Default", "O\u2019Brien", "$x"], language="fr")
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
    conf = speechd.render(["narrator"])
    assert 'GenericDelimiters "\x1f"' in conf  # not ".", which runs one command per sentence
    assert 'GenericLanguage "ja" "ja" "utf-8"' in conf and 'GenericLanguage "en" "en" "utf-8"' in conf
    assert len(directive(conf, "GenericLanguage")) == len(speechd.ISO_639_1) == 184
    with pytest.raises(ValueError):
        speechd.render(["narrator"], priority="loud")


def test_the_text_the_module_hands_over_is_cleaned() -> None:
    assert speechd.clean_text("Grüße, 日本".encode()) == ("Grüße, 日本", False)
    assert speechd.clean_text("Grüße".encode("latin-1")) == ("Grüße", False)  # recoded by the module
    # What speech-dispatcher 0.11.4 sent us for "A.\n\nB." (second command).
    assert speechd.clean_text(b"\nB.\n.\nle1\nlanguage=c\nsyn\nB.") == ("\nB.", True)
    assert speechd.clean_text(b"\nThird.\n.\n para.") == ("\nThird.", True)
    assert speechd.clean_text(b"3.5 and .5 stay.\n.5 too") == ("3.5 and .5 stay.\n.5 too", False)


def test_later_commands_of_a_message_with_stale_bytes_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHATTERBOX_TRAY_HOME", str(tmp_path))
    assert not speechd.after_overrun(4242)
    speechd.note_overrun(4242)
    assert speechd.after_overrun(4242)  # the same message (process group): stale
    assert not speechd.after_overrun(4243)  # the next message runs in a new group
    speechd.note_overrun(4243)
    assert not speechd.after_overrun(4242)


@pytest.mark.parametrize(
    ("value", "gain"), [("100", 1.0), ("0", 0.5), ("-100", 0.0), ("-50.00", 0.25), ("250", 1.0), ("x", 1.0)]
)
def test_speechd_volume_maps_to_a_gain(value: str, gain: float) -> None:
    assert speechd.volume_gain(value) == gain


def test_voice_names_resolve_back_to_the_library() -> None:
    names = ["narrator", "O'Brien", "$x"]
    assert speechd.resolve_voice("O\u2019Brien", names) == "O'Brien"
    assert speechd.resolve_voice("NARRATOR", names) == "narrator"
    assert speechd.resolve_voice("\uff04x", names) == "$x"
    assert speechd.resolve_voice("default", names) is None
    assert speechd.resolve_voice("no_voice", names) is None
    assert speechd.resolve_voice("someone else", names) is None


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
    report = speechd.install(["narrator"], home=home, system=system)
    conf = home / "speech-dispatcher" / "modules" / "chatterbox-tray-generic.conf"
    assert report.module_conf == conf and conf.is_file()
    assert report.discovery is True and report.speechd_conf is None
    assert not (home / "speech-dispatcher" / "speechd.conf").exists()  # an AddModule would hide every other module
    assert 'AddVoice "en" "MALE1" "narrator"' in conf.read_text()


def test_install_honours_xdg_config_home(tmp_path: Path, system: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "elsewhere"))
    speechd.install(["narrator"], system=system)
    assert (tmp_path / "elsewhere" / "speech-dispatcher" / "modules" / speechd.CONF_NAME).is_file()
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert speechd.module_conf_path() == tmp_path / "home" / ".config" / "speech-dispatcher" / "modules" / (
        speechd.CONF_NAME
    )


def test_install_is_idempotent_and_keeps_a_users_speechd_conf(tmp_path: Path, system: Path) -> None:
    home = tmp_path / "xdg"
    user = home / "speech-dispatcher" / "speechd.conf"
    user.parent.mkdir(parents=True)
    user.write_text(USER_EDITS)
    speechd.install(["narrator"], home=home, system=system)
    first = speechd.module_conf_path(home).read_bytes()
    speechd.install(["narrator"], home=home, system=system)
    assert speechd.module_conf_path(home).read_bytes() == first
    assert user.read_text() == USER_EDITS  # no AddModule there: discovery finds the module


def test_install_registers_where_discovery_is_off_and_uninstall_restores(tmp_path: Path, system: Path) -> None:
    home = tmp_path / "xdg"
    user = home / "speech-dispatcher" / "speechd.conf"
    user.parent.mkdir(parents=True)
    original = USER_EDITS + 'AddModule "espeak-ng" "sd_espeak-ng" "espeak-ng.conf"\nDefaultModule espeak-ng\n'
    user.write_text(original)
    report = speechd.install(["narrator"], home=home, system=system, make_default=True)
    assert report.discovery is False and report.speechd_conf == user and not report.created_speechd_conf
    once = user.read_text()
    assert once.startswith(USER_EDITS + 'AddModule "espeak-ng"')  # the user's lines stay, in place
    assert f"{speechd.OFF}DefaultModule espeak-ng\n" in once
    conf_path = speechd.module_conf_path(home)
    assert f'\nAddModule "chatterbox-tray-generic" "sd_generic" "{conf_path}"\n' in once
    assert once.count("AddModule") == 2 and "\nDefaultModule chatterbox-tray-generic\n" in once
    speechd.install(["narrator"], home=home, system=system, make_default=True)
    assert user.read_text() == once  # idempotent
    speechd.install(["narrator"], home=home, system=system)  # no longer the default
    assert "DefaultModule chatterbox-tray-generic" not in user.read_text()
    assert "\nDefaultModule espeak-ng\n" in user.read_text()
    speechd.uninstall(home)
    assert user.read_text() == original
    assert not conf_path.exists()


def test_install_creates_the_users_speechd_conf_from_the_systems_only_when_needed(tmp_path: Path, system: Path) -> None:
    home = tmp_path / "xdg"
    (system / "speechd.conf").write_text('LogLevel 3\nAddModule "dummy" "sd_dummy" ""\n')
    report = speechd.install(["narrator"], home=home, system=system)
    user = home / "speech-dispatcher" / "speechd.conf"
    assert report.created_speechd_conf and report.speechd_conf == user
    text = user.read_text()
    assert text.startswith('LogLevel 3\nAddModule "dummy" "sd_dummy" ""\n') and "chatterbox-tray-generic" in text
    assert (home / "speech-dispatcher" / "clients" / "emacs.conf").is_file()  # as spd-conf -u copies it


def test_uninstall_needs_no_daemon(tmp_path: Path, system: Path) -> None:
    home = tmp_path / "xdg"
    speechd.install(["narrator"], home=home, system=system)
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
    assert not speechd.module_conf_path(home).exists()


# -- the daemon's side -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sd_daemon(clips: Clips) -> Iterator[DaemonProcess]:
    """A fake-engine daemon with a default voice and a voice whose name has a quote."""
    proc = DaemonProcess().start()
    with proc.client() as c:
        c.voices_add("narrator", data=clips.new())
        c.voices_default("narrator")
        c.voices_add("O'Brien", data=clips.new())
    yield proc
    proc.cleanup()


@pytest.fixture
def dc(sd_daemon: DaemonProcess) -> Iterator[Client]:
    with sd_daemon.client() as c:
        yield c
        c.stop(all=True)


def listen(daemon: DaemonProcess, client: Client) -> EventLog:
    log = EventLog(daemon.events(("job", "voices")))
    log.sync(client)
    return log


def _waiter(daemon: DaemonProcess, job: str, stop: bool) -> subprocess.Popen:
    """Another process that waits for ``job`` (with or without stop_on_disconnect)."""
    code = (
        "import sys; from chatterbox_tray.ipc.client import connect\n"
        f"c = connect(autostart=False); print('waiting', flush=True); c.wait({job!r}, stop_on_disconnect={stop})\n"
    )
    env = {**os.environ, "CHATTERBOX_TRAY_HOME": str(daemon.home)}
    child = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "waiting"
    return child


def test_a_killed_waiter_with_stop_on_disconnect_stops_the_job(sd_daemon: DaemonProcess, dc: Client) -> None:
    log = listen(sd_daemon, dc)
    kept = dc.speak("Short words. Then more words.")["job"]
    doomed = dc.speak(sentences(6))["job"]
    keeper, killer = _waiter(sd_daemon, kept, stop=False), _waiter(sd_daemon, doomed, stop=True)
    for child in (keeper, killer):
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert dc.wait(kept, timeout=30)["state"] == "finished"  # a plain wait leaves speech to the daemon
    end = dc.wait(doomed, timeout=30)
    assert end["state"] == "cancelled"
    assert end["error"]["message"] == "stopped: the client waiting for it went away"
    assert end["playback"]["played_s"] < 6 * 2 * len(SENTENCE.format(0)) / 25
    log.wait_job(doomed, "cancelled")


def test_a_waiter_that_closes_its_socket_stops_a_synthesis_it_waits_for(
    slow_daemon: DaemonProcess, clips: Clips
) -> None:
    """Another client's synthesis, waited for with stop_on_disconnect, is cancelled when the waiter leaves."""
    with slow_daemon.client() as owner, slow_daemon.client() as other:
        voice = uid("sd")
        owner.voices_add(voice, data=clips.new())
        synthesis = owner.synthesize(sentences(8), voice=voice)
        job = accepted(owner, synthesis)["job"]
        req = other.send("wait", {"job": job, "stop_on_disconnect": True})
        assert next(other._replies(req, 10.0)).header["kind"] == "progress"
        other.close()
        with pytest.raises(ProtocolError) as err:
            for _ in synthesis:
                pass
        assert err.value.code == "cancelled"
    assert "the client waiting for job" in slow_daemon.log_text()


def test_speak_volume_scales_this_job_only(sd_daemon: DaemonProcess, dc: Client) -> None:
    before = len(sd_daemon.played())
    end = dc.wait(dc.speak("A quarter as loud.", seed=5, volume=0.25)["job"], timeout=30)
    assert end["playback"]["volume"] == 0.25
    played = sd_daemon.played()[before:]
    played = played[played != 0]
    [chunk] = [c.samples for c in dc.synthesize("A quarter as loud.", seed=5)]
    fade = int(0.005 * 24_000)
    np.testing.assert_allclose(played[fade:-fade], 0.25 * chunk[fade:-fade], atol=1e-6)
    assert dc.playback()["volume"] == 1.0  # the speaker's own volume is untouched
    for bad in (1.5, -0.1, "loud"):
        with pytest.raises(ProtocolError) as err:
            dc.speak("No.", volume=bad)
        assert err.value.code == "bad_args"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_in_say_stop_its_job(sd_daemon: DaemonProcess, dc: Client, sig: signal.Signals) -> None:
    log = listen(sd_daemon, dc)
    child = subprocess.Popen(
        [*CLI, "--no-start", "say", sentences(5)],
        env={**os.environ, "CHATTERBOX_TRAY_HOME": str(sd_daemon.home)},
        stderr=subprocess.PIPE,
        text=True,
    )
    started = log.wait_for(lambda t, d: t == "job" and d["event"] == "started" and d.get("chunks") == 5)
    child.send_signal(sig)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130, err
    assert "stopped" in err
    assert dc.wait(started["job"], timeout=10)["state"] == "cancelled"


# -- the real Speech Dispatcher --------------------------------------------------------------------

needs_speechd = pytest.mark.skipif(
    not (shutil.which("speech-dispatcher") and shutil.which("spd-say") and speechd.system_dir()),
    reason="Debian's speech-dispatcher is not installed",
)


class Speechd:
    """A private speech-dispatcher: its own config, runtime folder and socket; our module installed."""

    def __init__(self, daemon: DaemonProcess, extra_conf: str = "") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cbtsd", dir="/tmp"))
        self.env = {
            **daemon.env(),  # our CLI finds the daemon; ALSA plays into the daemon's file sink
            "XDG_CONFIG_HOME": str(self.root / "xdg"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "HOME": str(self.root / "home"),
            "SPEECHD_ADDRESS": f"unix_socket:{self.root / 'sock'}",
        }
        for sub in ("xdg/speech-dispatcher", "run", "home"):
            (self.root / sub).mkdir(parents=True, mode=0o700)
        system = speechd.system_dir()
        assert system is not None
        # A user's speechd.conf with edits of their own: ALSA (no PulseAudio here; the
        # module must open an audio output even though ours never uses it) and no autospawn.
        self.user_conf = self.root / "xdg" / "speech-dispatcher" / "speechd.conf"
        self.user_conf.write_text(
            (system / "speechd.conf").read_text() + '\nAudioOutputMethod "alsa"\nDisableAutoSpawn\n' + extra_conf
        )
        self.user_text = self.user_conf.read_text()
        self.install = subprocess.run(
            [*CLI, "--no-start", "speechd", "install", "--no-reload"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.proc = subprocess.Popen(
            ["speech-dispatcher", "-s", "-t", "0", "-S", str(self.root / "sock")],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not (self.root / "sock").exists():
            assert self.proc.poll() is None, f"speech-dispatcher exited:\n{self.logs()}"
            assert time.monotonic() < deadline, f"speech-dispatcher did not start:\n{self.logs()}"
            time.sleep(0.05)

    def say(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["spd-say", *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def module_say(self, *args: str, language: str = "en", timeout: float = 60) -> subprocess.CompletedProcess:
        """spd-say to our module, in English unless told (as a desktop's locale would set it)."""
        out = self.say("-o", speechd.MODULE, "-l", language, *args, timeout=timeout)
        assert out.returncode == 0, out.stderr + self.logs()
        return out

    def logs(self) -> str:
        parts = []
        for path in sorted((self.root / "run").rglob("*.log")):
            with contextlib.suppress(OSError):
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def sd(sd_daemon: DaemonProcess) -> Iterator[Speechd]:
    server = Speechd(sd_daemon)
    yield server
    server.close()


def queued_texts(log: EventLog, jobs: list[str]) -> list[str]:
    return [d["text"] for t, d in log.seen if t == "job" and d["event"] == "queued" and d["job"] in jobs]


def jobs_since(log: EventLog, client: Client, mark: int) -> list[str]:
    """Jobs queued since ``mark``, once every event published so far has been read.

    A ``voices`` event published now arrives after every event published
    before it (one PUB socket), so reading up to it reads them all.
    """
    client.voices_default(client.voices_default()["default"])
    start = len(log.seen)
    while not any(t == "voices" for t, _ in log.seen[start:]):
        event = log.stream.recv(timeout=10)
        assert event is not None, "no voices event"
        log.seen.append(event)
    return [d["job"] for t, d in log.seen[mark:] if t == "job" and d["event"] == "queued"]


@needs_speechd
def test_install_registers_a_module_speechd_finds_with_the_library_voices(sd: Speechd) -> None:
    assert sd.install.returncode == 0, sd.install.stderr
    assert sd.user_conf.read_text() == sd.user_text  # no AddModule: discovery finds it, nothing else hidden
    modules = sd.say("-O")
    assert speechd.MODULE in modules.stdout.split(), modules.stdout + sd.logs()
    listed = sd.module_say("-L").stdout
    rows = [line.split() for line in listed.splitlines()[1:]]
    assert [r[0] for r in rows] == ["narrator", "O\u2019Brien", "default"], listed
    assert all(r[-2:] == ["en", "MALE1"] for r in rows)


@needs_speechd
def test_spd_say_speaks_through_the_daemon_as_one_job(sd: Speechd, sd_daemon: DaemonProcess, dc: Client) -> None:
    log = listen(sd_daemon, dc)
    mark, before = len(log.seen), len(sd_daemon.played())
    text = 'Hello there. It\'s "me", <b>bold</b> & $HOME `id`, Grüße, 日本.'
    sd.module_say("-w", text)
    [job] = jobs_since(log, dc, mark)
    end = log.wait_job(job, "finished", "cancelled", "failed")
    assert end["event"] == "finished", end
    # speechd's own punctuation processing (mode "none" by default) makes quotes,
    # brackets, "&" and the like spaces; every word arrives, and nothing ran.
    [got] = queued_texts(log, [job])
    words = ["Hello", "there", "It's", "me", "b", "bold", "b", "$HOME", "id", "Grüße", "日本"]
    assert re.findall(r"[\w$']+", got) == words, got
    assert end["voice"] == "narrator"  # the default voice
    assert end["chunks"] == 2  # one command for the whole message: the daemon splits sentences
    assert end["playback"]["priority"] == "text" and end["playback"]["volume"] == 1.0
    played = sd_daemon.played()[before:]
    assert np.count_nonzero(played) / 24_000 == pytest.approx(end["summary"]["audio_s"], abs=0.05)


@needs_speechd
def test_a_chosen_voice_and_volume_reach_the_daemon(sd: Speechd, sd_daemon: DaemonProcess, dc: Client) -> None:
    log = listen(sd_daemon, dc)
    loudness = {}
    for volume in ("100", "0"):
        mark, before = len(log.seen), len(sd_daemon.played())
        sd.module_say("-w", "-y", "O\u2019Brien", "-i", volume, "Volume check here.")
        [job] = jobs_since(log, dc, mark)
        end = log.wait_job(job, "finished")
        assert end["voice"] == "O'Brien"
        assert end["playback"]["volume"] == speechd.volume_gain(volume)
        played = sd_daemon.played()[before:]
        loudness[volume] = float(np.sqrt(np.mean(played[played != 0] ** 2)))
    assert loudness["0"] / loudness["100"] == pytest.approx(0.5, rel=0.05)
    mark = len(log.seen)
    sd.module_say("-w", "-y", "nobody by that name", "Fallback voice.")
    [job] = jobs_since(log, dc, mark)
    assert log.wait_job(job, "finished")["voice"] == "narrator"


@needs_speechd
@pytest.mark.parametrize("how", ["-S", "-C"])
def test_stopping_in_speech_dispatcher_stops_our_audio(
    sd: Speechd, sd_daemon: DaemonProcess, dc: Client, how: str
) -> None:
    log = listen(sd_daemon, dc)
    mark = len(log.seen)
    sd.module_say(sentences(8))  # without -w: spd-say returns at once
    job = log.wait_for(lambda t, d: t == "job" and d["event"] == "queued", timeout=30)["job"]
    assert job in jobs_since(log, dc, mark)
    log.wait_for(lambda t, d: t == "job" and d.get("job") == job and d["event"] == "sentence" and d["sentence"] == 1)
    assert sd.say(how).returncode == 0
    end = log.wait_job(job, "cancelled", "finished", timeout=15)
    assert end["event"] == "cancelled", end
    assert end["error"]["message"] == "stopped: the client waiting for it went away"
    settled = len(sd_daemon.played())
    time.sleep(0.6)
    assert len(sd_daemon.played()) == settled  # silence after the stop
    assert end["playback"]["played_s"] < 3 * 2 * len(SENTENCE.format(0)) / 25
    assert dc.playback()["queue"] == []


@needs_speechd
def test_a_new_message_after_a_cancel_plays_and_the_old_one_is_gone(
    sd: Speechd, sd_daemon: DaemonProcess, dc: Client
) -> None:
    log = listen(sd_daemon, dc)
    mark = len(log.seen)
    sd.module_say(sentences(8))
    old = log.wait_for(lambda t, d: t == "job" and d["event"] == "queued", timeout=30)["job"]
    log.wait_job(old, "started")
    assert sd.say("-C").returncode == 0
    sd.module_say("-w", "Next message.")
    [_, new] = jobs_since(log, dc, mark)
    assert log.wait_job(new, "finished")["event"] == "finished"
    order = [(j, e) for j, e in log.job_events(old, new) if e in ("started", "cancelled", "finished")]
    assert order == [(old, "started"), (old, "cancelled"), (new, "started"), (new, "finished")]


PARAGRAPHS = [
    ["A one.", "B two."],
    ["First para here.", "Second para.", "Third."],
    ["Hello there, this is longer.", "Bye."],
]


@needs_speechd
@pytest.mark.parametrize("paragraphs", PARAGRAPHS)
def test_paragraphs_arrive_as_one_message(
    sd: Speechd, sd_daemon: DaemonProcess, dc: Client, paragraphs: list[str]
) -> None:
    """With a language that has symbol dictionaries (nearly all do), speechd's own
    preprocessing turns the blank lines into spaces: one command, one job."""
    log = listen(sd_daemon, dc)
    mark = len(log.seen)
    sd.module_say("-w", "\n\n".join(paragraphs))
    [job] = jobs_since(log, dc, mark)
    assert log.wait_job(job, "finished")["chunks"] == len(paragraphs)
    assert queued_texts(log, [job])[0].split() == " ".join(paragraphs).split()


@needs_speechd
@pytest.mark.parametrize("paragraphs", PARAGRAPHS)
def test_raw_blank_lines_never_speak_the_modules_stale_bytes(
    sd: Speechd, sd_daemon: DaemonProcess, dc: Client, paragraphs: list[str]
) -> None:
    """Without symbol preprocessing (the C locale's language), sd_generic 0.11.4 runs one
    command per paragraph and hands the last one stale bytes from its buffers: every
    paragraph is spoken, in order, and none of the stale protocol text is."""
    log = listen(sd_daemon, dc)
    mark = len(log.seen)
    sd.module_say("-w", "\n\n".join(paragraphs), language="c")
    jobs = jobs_since(log, dc, mark)
    for job in jobs:
        log.wait_job(job, "finished")
    texts = [t.strip() for t in queued_texts(log, jobs)]
    assert texts == paragraphs, texts


@needs_speechd
def test_the_module_runs_our_command_as_written(sd: Speechd) -> None:
    conf = speechd.module_conf_path(Path(sd.env["XDG_CONFIG_HOME"])).read_text()
    [synth] = directive(conf, "GenericExecuteSynth")
    words = shlex.split(dotconf_value(synth))
    start = words.index("|") + 1
    assert words[start : start + 5] == [sys.executable, "-m", "chatterbox_tray.ipc.cli", "speechd", "speak"]


@needs_speechd
def test_where_the_user_lists_modules_install_adds_ours(sd_daemon: DaemonProcess) -> None:
    """An AddModule line turns speechd's discovery off: then install registers the module too."""
    server = Speechd(sd_daemon, extra_conf='AddModule "dummy" "sd_dummy" ""\n')
    try:
        assert server.install.returncode == 0, server.install.stderr
        conf = server.user_conf.read_text()
        assert conf.startswith(server.user_text) and f'AddModule "{speechd.MODULE}" "sd_generic"' in conf
        assert speechd.MODULE in server.say("-O").stdout.split(), server.logs()
        server.module_say("-w", "Registered by hand.")
    finally:
        server.close()


@needs_speechd
def test_install_again_after_adding_a_voice_reloads_a_running_speechd(
    sd: Speechd, sd_daemon: DaemonProcess, clips: Clips
) -> None:
    with sd_daemon.client() as c:
        c.voices_add("Newcomer", data=clips.new())
    try:
        out = subprocess.run(
            [*CLI, "--no-start", "speechd", "install"], env=sd.env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert f"pid {sd.proc.pid}" in out.stdout  # it found the running one and sent it SIGHUP
        deadline = time.monotonic() + 30
        while "Newcomer" not in (listed := sd.module_say("-L").stdout):
            assert time.monotonic() < deadline, listed + sd.logs()
            time.sleep(0.2)
    finally:
        with sd_daemon.client() as c:
            c.voices_remove("Newcomer")
        subprocess.run([*CLI, "--no-start", "speechd", "install"], env=sd.env, capture_output=True, timeout=60)
