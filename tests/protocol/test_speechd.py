"""Speech Dispatcher integration (cli/speech_dispatcher.py, docs/speech-dispatcher.md).

Two layers here (the module configuration and the installer, in process,
are in tests/unit/cli/test_speech_dispatcher.py):

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

from chatterbox_tray.cli import speech_dispatcher
from chatterbox_tray.ipc.client import Client
from chatterbox_tray.ipc.protocol import ProtocolError
from tests.support.daemons import Clips, DaemonProcess, EventLog, accepted, uid
from tests.support.dotconf import directive, dotconf_value

CLI = [sys.executable, "-m", "chatterbox_tray.cli.main"]
SENTENCE = "Number {:02d} says the quick brown fox jumps."


def sentences(n: int) -> str:
    return " ".join(SENTENCE.format(i) for i in range(n))


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
    """Another process that waits for ``job`` (with or without stop_on_disconnect).

    It says "waiting" once the daemon has answered the ``wait`` (a progress
    reply), so a kill that follows cannot come before the daemon knows the waiter.
    """
    code = (
        "from chatterbox_tray.ipc import requests as rq\n"
        "from chatterbox_tray.ipc.client import connect\n"
        "c = connect(autostart=False)\n"
        f"replies = c.replies(c.submit(rq.wait({job!r}, stop_on_disconnect={stop})), 30.0)\n"
        "next(replies); print('waiting', flush=True)\n"
        "for _ in replies: pass\n"
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
        assert next(other.replies(req, 10.0)).header["kind"] == "progress"
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


#: Four short sentences: about 3 s of the fake engine's audio.
SHORT = "One two three. Four five six. Seven eight. Nine ten."

#: A stand-in for sd_generic (its source, generic.c): it names itself sd_generic,
#: forks a process-group leader that runs the command with system(), and on a
#: line on stdin kills that group with SIGKILL, as its module_stop does. Like
#: sd_generic it talks to the leader over pipes that are not close-on-exec, and
#: waits for the leader's end of one to close. Then it exits ("quit": module_close,
#: when the server quits) or lives on ("stay": a stop).
FAKE_MODULE = """
import ctypes, os, signal, sys, time
ctypes.CDLL(None).prctl(15, b"sd_generic", 0, 0, 0)
command, then = sys.argv[1], sys.argv[2]
acks, ack = os.pipe()
os.set_inheritable(ack, True)
leader = os.fork()
if leader == 0:
    os.close(acks)
    os.setpgid(0, 0)
    os._exit(os.waitstatus_to_exitcode(os.system(command)) & 0xFF)
os.close(ack)
print(leader, flush=True)
sys.stdin.readline()
os.kill(-leader, signal.SIGKILL)
while os.read(acks, 1):  # as module_parent_wfork: until every holder of the other end is gone
    pass
os.waitpid(leader, 0)
if then == "stay":
    time.sleep(60)
"""


def module_command(text: str) -> str:
    """Our GenericExecuteSynth as sd_generic substitutes it for ``text`` (default voice, neutral rate)."""
    [synth] = directive(speech_dispatcher.render([]), "GenericExecuteSynth")
    command = dotconf_value(synth).replace("$VOICE", "default").replace("$VOLUME", "100").replace("$RATE", "0")
    head, tail = command.split("$DATA")
    return head + text.replace("'", "'\\''") + tail


def fake_module(daemon: DaemonProcess, text: str, then: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", FAKE_MODULE, module_command(text), then],
        env=daemon.env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the module is found through /proc (Linux)")
def test_a_message_is_spoken_to_its_end_when_the_module_closes(sd_daemon: DaemonProcess, dc: Client) -> None:
    """spd-say without -w: the client leaves, the server quits 5 s later and closes the
    module, which kills the message's process group. The message is still spoken whole."""
    log = listen(sd_daemon, dc)
    before = len(sd_daemon.played())
    module = fake_module(sd_daemon, SHORT, "quit")
    try:
        job = log.wait_for(lambda t, d: t == "job" and d["event"] == "queued", timeout=30)["job"]
        log.wait_job(job, "started")
        assert module.stdin is not None
        module.stdin.write("\n")
        module.stdin.flush()
        assert module.wait(timeout=10) == 0  # the module is gone, with our command's shell
        end = log.wait_job(job, "finished", "cancelled", "failed", timeout=30)
        assert end["event"] == "finished", end
        assert end["chunks"] == 4
        played = sd_daemon.played()[before:]  # every sentence's audio reached the speaker
        assert np.count_nonzero(played) / 24_000 == pytest.approx(end["summary"]["audio_s"], abs=0.05)
    finally:
        module.kill()
        module.communicate(timeout=10)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the module is found through /proc (Linux)")
def test_a_message_the_module_stops_is_stopped(sd_daemon: DaemonProcess, dc: Client) -> None:
    """spd-say -S: the module kills the group and lives on; the job stops within a second."""
    log = listen(sd_daemon, dc)
    module = fake_module(sd_daemon, sentences(6), "stay")
    try:
        job = log.wait_for(lambda t, d: t == "job" and d["event"] == "queued", timeout=30)["job"]
        log.wait_job(job, "started")
        assert module.stdin is not None
        module.stdin.write("\n")
        module.stdin.flush()
        end = log.wait_job(job, "cancelled", "finished", timeout=15)
        assert end["event"] == "cancelled", end
        assert end["playback"]["played_s"] < 2 * 2 * len(SENTENCE.format(0)) / 25
        assert module.poll() is None  # the module lives on
    finally:
        module.kill()
        module.communicate(timeout=10)


def test_speak_run_by_hand_still_dies_with_its_group(sd_daemon: DaemonProcess, dc: Client) -> None:
    """Not run by sd_generic: the command keeps its process group and stop_on_disconnect."""
    log = listen(sd_daemon, dc)
    child = subprocess.Popen(["bash", "-c", module_command(sentences(6))], env=sd_daemon.env(), start_new_session=True)
    try:
        job = log.wait_for(lambda t, d: t == "job" and d["event"] == "queued", timeout=30)["job"]
        log.wait_job(job, "started")
        time.sleep(0.3)  # the daemon has the wait
        os.killpg(child.pid, signal.SIGKILL)
        end = log.wait_job(job, "cancelled", "finished", timeout=15)
        assert end["event"] == "cancelled", end
        assert end["error"]["message"] == "stopped: the client waiting for it went away"
    finally:
        child.wait(timeout=10)


# -- the real Speech Dispatcher --------------------------------------------------------------------

needs_speechd = pytest.mark.skipif(
    not (shutil.which("speech-dispatcher") and shutil.which("spd-say") and speech_dispatcher.system_dir()),
    reason="Debian's speech-dispatcher is not installed",
)


class Speechd:
    """A private speech-dispatcher: its own config, runtime folder and socket; our module installed."""

    def __init__(
        self,
        daemon: DaemonProcess,
        extra_conf: str = "",
        idle_timeout: int = 0,
        *,
        alsa_line: bool = True,
        other_modules: dict[str, str] | None = None,
    ) -> None:
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
        system = speech_dispatcher.system_dir()
        assert system is not None
        # A user's speechd.conf with edits of their own: ALSA (no PulseAudio here; the
        # module must open an audio output even though ours never uses it) and no autospawn.
        self.user_conf = self.root / "xdg" / "speech-dispatcher" / "speechd.conf"
        # alsa_line=False: as a user's own speechd.conf would be; `speechd install` must add it.
        audio = '\nAudioOutputMethod "alsa"' if alsa_line else ""
        self.user_conf.write_text((system / "speechd.conf").read_text() + audio + "\nDisableAutoSpawn\n" + extra_conf)
        self.user_text = self.user_conf.read_text()
        for name, conf in (other_modules or {}).items():  # more synthesizers beside ours
            (self.root / "xdg" / "speech-dispatcher" / "modules").mkdir(exist_ok=True)
            (self.root / "xdg" / "speech-dispatcher" / "modules" / f"{name}-generic.conf").write_text(conf)
        self.install = subprocess.run(
            [*CLI, "--no-start", "speechd", "install", "--no-reload"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.proc = subprocess.Popen(
            ["speech-dispatcher", "-s", "-t", str(idle_timeout), "-S", str(self.root / "sock")],
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
        out = self.say("-o", speech_dispatcher.MODULE, "-l", language, *args, timeout=timeout)
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
    assert speech_dispatcher.MODULE in modules.stdout.split(), modules.stdout + sd.logs()
    listed = sd.module_say("-L").stdout
    rows = [line.split() for line in listed.splitlines()[1:]]
    assert [r[0] for r in rows] == ["narrator", "O\u2019Brien", "default"], listed
    assert all(r[-2:] == ["en", "MALE1"] for r in rows)


@needs_speechd
def test_without_pulseaudio_install_lets_speech_dispatcher_start(sd_daemon: DaemonProcess, dc: Client) -> None:
    """Issue 23: without PulseAudio speech-dispatcher loads no module and does not start, unless
    its configuration says AudioOutputMethod "alsa"; `speechd install` adds it (there is no pulse
    server in the private runtime folder) and the server starts and speaks through our module."""
    server = Speechd(sd_daemon, alsa_line=False)
    try:
        assert server.install.returncode == 0, server.install.stderr
        assert 'added AudioOutputMethod "alsa"' in server.install.stdout
        assert directive(server.user_conf.read_text(), "AudioOutputMethod") == ['AudioOutputMethod "alsa"']
        assert speech_dispatcher.MODULE in server.say("-O").stdout.split(), server.logs()
        out = subprocess.run(
            [*CLI, "speechd", "uninstall", "--no-reload"], env=server.env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert out.returncode == 0 and server.user_conf.read_text() == server.user_text
    finally:
        server.close()


@needs_speechd
def test_a_message_that_cannot_be_spoken_is_said_so_aloud_by_another_synthesizer(
    sd_daemon: DaemonProcess, dc: Client, tmp_path: Path
) -> None:
    """sd_generic cannot report our failure to the client; the command hands a notice to
    speech-dispatcher for another of its modules (here a generic one that writes what it says)."""
    said = tmp_path / "said.txt"
    other = (
        f'GenericExecuteSynth "printf %s \'$DATA\' >> {said}"\nGenericCmdDependency "printf"\n'
        'GenericLanguage "en" "en" "utf-8"\nAddVoice "en" "MALE1" "plain"\nDefaultVoice "plain"\n'
    )
    server = Speechd(sd_daemon, other_modules={"notice": other})
    default = dc.voices_default()["default"]
    dc.voices_default(clear=True)
    try:
        assert "notice-generic" in server.say("-O").stdout.split(), server.logs()
        server.module_say("-w", "Nobody will hear this.")
        deadline = time.monotonic() + 20
        while "no default voice" not in (said.read_text() if said.exists() else ""):
            assert time.monotonic() < deadline, server.logs()
            time.sleep(0.1)
        assert said.read_text().startswith("Chatterbox Tray said nothing: it has no default voice.")
        assert "said so aloud through the notice-generic module" in server.logs()
    finally:
        dc.voices_default(default)
        server.close()


@needs_speechd
def test_a_message_that_cannot_be_spoken_says_why_in_the_module_log(sd: Speechd, dc: Client) -> None:
    """Issue 23: with no default voice `spd-say -w` returns 0 at once and nothing is heard. sd_generic
    ignores the command's exit status, so the reason goes to the module's log, which install names."""
    default = dc.voices_default()["default"]
    log = sd.root / "run" / "speech-dispatcher" / "log" / f"{speech_dispatcher.MODULE}.log"
    dc.voices_default(clear=True)
    try:
        sd.module_say("-w", "Nobody will hear this.")
        deadline = time.monotonic() + 20
        while "NOT SPOKEN" not in (text := log.read_text(errors="replace") if log.exists() else ""):
            assert time.monotonic() < deadline, sd.logs()
            time.sleep(0.1)
        line = next(x for x in text.splitlines() if "NOT SPOKEN" in x)
        assert "no default voice" in line and "chatterbox-tray voices default NAME" in line, line
        # `speechd install` says what is missing, and where the module's log is.
        out = subprocess.run(
            [*CLI, "--no-start", "speechd", "install", "--no-reload"], env=sd.env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "warning: there is no default voice" in out.stderr and "voices default NAME" in out.stderr
        assert f"why a message was not spoken: {log}" in out.stdout
    finally:
        dc.voices_default(default)
    out = subprocess.run(
        [*CLI, "--no-start", "speechd", "install", "--no-reload"], env=sd.env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert "warning" not in out.stderr, out.stderr


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
        assert end["playback"]["volume"] == speech_dispatcher.volume_gain(volume)
        played = sd_daemon.played()[before:]
        loudness[volume] = float(np.sqrt(np.mean(played[played != 0] ** 2)))
    assert loudness["0"] / loudness["100"] == pytest.approx(0.5, rel=0.05)
    mark = len(log.seen)
    sd.module_say("-w", "-y", "nobody by that name", "Fallback voice.")
    [job] = jobs_since(log, dc, mark)
    assert log.wait_job(job, "finished")["voice"] == "narrator"


@needs_speechd
def test_spd_say_rate_reaches_the_daemon_and_scales_the_speech(
    sd: Speechd, sd_daemon: DaemonProcess, dc: Client
) -> None:
    log = listen(sd_daemon, dc)
    rates, audio = {}, {}
    for rate in ("0", "100", "-100", "50"):
        mark = len(log.seen)
        sd.module_say("-w", "-r", rate, "Rate check here.")
        [job] = jobs_since(log, dc, mark)
        summary = log.wait_job(job, "finished")["summary"]
        rates[rate], audio[rate] = summary["rate"], summary["audio_s"]
    assert rates == {"0": 1.0, "100": 2.0, "-100": 0.5, "50": pytest.approx(2**0.5)}
    for rate, factor in rates.items():
        assert audio[rate] / audio["0"] == pytest.approx(1 / factor, rel=0.05)


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
    assert end["error"]["message"] == "stopped"  # by our command, which saw the module live on
    settled = sd_daemon.played_settled()
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


@needs_speechd
def test_plain_spd_say_is_spoken_to_its_end_after_the_server_quits(sd_daemon: DaemonProcess, dc: Client) -> None:
    """spd-say without -w leaves at once; an idle server (here after 1 s, by default 5 s)
    quits and closes our module while the message plays. All of it is still spoken.

    speech-dispatcher 0.11.4 itself sometimes hangs while quitting mid-message (it
    waits for the module's answer to QUIT on a pipe that a later module inherited;
    seen here with and without this change), so the test watches its log, not its exit.
    """
    server = Speechd(sd_daemon, idle_timeout=1)
    try:
        log = listen(sd_daemon, dc)
        mark, before = len(log.seen), len(sd_daemon.played())
        server.module_say(SHORT)  # without -w: spd-say returns at once
        job = log.wait_for(lambda t, d: t == "job" and d["event"] == "queued", timeout=30)["job"]
        deadline = time.monotonic() + 20
        while f'Closing module "{speech_dispatcher.MODULE}"' not in server.logs():
            assert time.monotonic() < deadline, server.logs()
            time.sleep(0.05)
        assert job in dc.playback()["queue"]  # the module was closed mid-message ...
        end = log.wait_job(job, "finished", "cancelled", "failed", timeout=30)
        assert end["event"] == "finished", end  # ... and the message was spoken to its end
        assert end["chunks"] == 4 and jobs_since(log, dc, mark) == [job]
        played = sd_daemon.played()[before:]
        assert np.count_nonzero(played) / 24_000 == pytest.approx(end["summary"]["audio_s"], abs=0.05)
    finally:
        server.proc.kill()  # quit, or hung quitting (above)
        server.close()


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
    conf = speech_dispatcher.module_conf_path(Path(sd.env["XDG_CONFIG_HOME"])).read_text()
    [synth] = directive(conf, "GenericExecuteSynth")
    words = shlex.split(dotconf_value(synth))
    start = words.index("|") + 1
    assert words[start : start + 5] == [sys.executable, "-m", "chatterbox_tray.cli.main", "speechd", "speak"]


@needs_speechd
def test_where_the_user_lists_modules_install_adds_ours(sd_daemon: DaemonProcess) -> None:
    """An AddModule line turns speechd's discovery off: then install registers the module too."""
    server = Speechd(sd_daemon, extra_conf='AddModule "dummy" "sd_dummy" ""\n')
    try:
        assert server.install.returncode == 0, server.install.stderr
        conf = server.user_conf.read_text()
        assert conf.startswith(server.user_text) and f'AddModule "{speech_dispatcher.MODULE}" "sd_generic"' in conf
        assert speech_dispatcher.MODULE in server.say("-O").stdout.split(), server.logs()
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
