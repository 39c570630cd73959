"""The ``chatterbox-tray`` command line, run as a subprocess against fake-engine daemons.

The CLI finds its daemon through ``CHATTERBOX_TRAY_HOME``, as a user's shell
would through the platform folders. Output is checked for what a user or a
script relies on: exit codes, the facts in the text, JSON with ``--json``, and
the audio in files and on stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from chatterbox_tray.ipc import endpoints
from chatterbox_tray.ipc.client import Client
from tests.support.daemons import Clips, DaemonProcess, short_home, uid

EXE = Path(sys.executable).with_name("chatterbox-tray")


def cli(
    home: Path | DaemonProcess, *args: str, stdin: bytes | str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """Run ``chatterbox-tray ARGS`` with its folders under ``home``; bytes in, bytes out."""
    daemon = home if isinstance(home, DaemonProcess) else DaemonProcess(home=home)
    command = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "chatterbox_tray.cli.main"]
    data = stdin.encode() if isinstance(stdin, str) else stdin
    return subprocess.run(
        [*command, *args],
        input=data if data is not None else b"",
        capture_output=True,
        env=daemon.env(),
        timeout=timeout,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    """stdout of a command that must have succeeded."""
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout.decode()


def err(result: subprocess.CompletedProcess) -> str:
    return result.stderr.decode()


@pytest.fixture(scope="module")
def voice(daemon: DaemonProcess, clips: Clips) -> str:
    with daemon.client() as c:
        return c.voices_add(uid("cli"), data=clips.new())["name"]


@pytest.fixture
def default_restored(client: Client) -> Iterator[None]:
    before = client.voices_default()["default"]
    yield
    if before is None or before.casefold() not in {v["name"].casefold() for v in client.voices_list()}:
        client.voices_default(clear=True)
    else:
        client.voices_default(before)


def reference(client: Client, text: str, voice: str, seed: int) -> np.ndarray:
    audio, rate = client.synthesize(text, voice=voice, seed=seed).collect()
    assert rate == 24_000
    return audio


# -- quick commands ----------------------------------------------------------------------


def test_status_in_words_and_in_json(daemon: DaemonProcess) -> None:
    lines = ok(cli(daemon, "status")).splitlines()
    assert lines[0] == "ready"
    assert "fake-original:1" in lines[1] and "cpu" in lines[1]
    assert lines[2].startswith("queue:")
    status = json.loads(ok(cli(daemon, "--json", "status")))
    assert status["state"] == "ready"
    assert status["model_id"] == "fake-original:1"


def test_ping_names_the_daemons_pid(daemon: DaemonProcess) -> None:
    out = ok(cli(daemon, "ping", "-c", "2"))
    assert out.startswith(f"pong from pid {daemon.pid}:")


def test_stats_in_words_and_in_json(daemon: DaemonProcess) -> None:
    out = ok(cli(daemon, "stats"))
    assert "model:    original fake-original:1 on cpu [ready]" in out
    assert "process:" in out
    stats = json.loads(ok(cli(daemon, "--json", "stats")))
    assert stats["status"]["state"] == "ready"
    assert stats["uptime_s"] >= 0


def test_a_missing_command_is_a_usage_error(daemon: DaemonProcess) -> None:
    result = cli(daemon)
    assert result.returncode == 2
    assert "usage:" in err(result)


# -- voices -------------------------------------------------------------------------------


@pytest.mark.usefixtures("default_restored")
def test_voices_add_list_rename_default_and_remove(daemon: DaemonProcess, client: Client, clips: Clips) -> None:
    name, new = uid("Cli"), uid("Cli")
    path = clips.write(clips.new(), f"{uid('speaker')}.wav")

    out = ok(cli(daemon, "voices", "add", name, str(path), "--default"))
    assert out.startswith(f"added {name} (")
    assert client.voices_default()["default"] == name

    lines = [line for line in ok(cli(daemon, "voices", "list")).splitlines() if name in line]
    assert len(lines) == 1
    assert lines[0].startswith(f"* {name}")  # the default is starred
    assert "cache:" in lines[0]
    listed = json.loads(ok(cli(daemon, "--json", "voices", "list")))
    ours = [v for v in listed if v["name"] == name]
    assert len(ours) == 1 and ours[0]["default"] is True and ours[0]["source_name"] == path.name

    assert ok(cli(daemon, "voices", "rename", name, new)).strip() == f"renamed to {new}"
    assert ok(cli(daemon, "voices", "default")).strip() == new  # the default follows the rename
    assert ok(cli(daemon, "voices", "default", "--clear")).strip() == "no default voice"
    assert ok(cli(daemon, "voices", "default", new)).strip() == new

    assert ok(cli(daemon, "voices", "remove", new)).strip() == f"removed {new}"
    assert new not in ok(cli(daemon, "voices", "list"))
    assert client.voices_default()["default"] is None


def test_voice_errors_exit_1_with_the_code(daemon: DaemonProcess, clips: Clips) -> None:
    ghost = uid("ghost")
    result = cli(daemon, "voices", "remove", ghost)
    assert result.returncode == 1
    assert "[" not in err(result) and ghost in err(result)  # plain words for people
    result = cli(daemon, "--json", "voices", "remove", ghost)
    assert result.returncode == 1
    assert json.loads(err(result))["error"]["code"] == "unknown_voice"  # codes for scripts

    short = clips.write(clips.new()[:24_000], f"{uid('short')}.wav")
    result = cli(daemon, "--json", "voices", "add", uid("short"), str(short))
    assert result.returncode == 1
    assert json.loads(err(result))["error"]["code"] == "clip_too_short"

    result = cli(daemon, "voices", "add", uid("nofile"), str(clips.folder / "missing.wav"))
    assert result.returncode != 0
    assert "missing.wav" in err(result)
    assert "Traceback" not in err(result) and "Errno" not in err(result)


# -- say ------------------------------------------------------------------------------------


TEXT = "Hello from the command line. This is the second sentence."


def test_say_to_a_wav_file(daemon: DaemonProcess, client: Client, voice: str, tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    result = cli(daemon, "say", "-v", voice, "--seed", "7", "-o", str(out), TEXT)
    ok(result)
    assert f"-> {out}" in err(result)
    info = sf.info(str(out))
    assert (info.format, info.samplerate, info.channels) == ("WAV", 24_000, 1)
    audio, _ = sf.read(str(out), dtype="float32")
    expected = reference(client, TEXT, voice, seed=7)
    assert len(audio) == len(expected)
    np.testing.assert_allclose(audio, expected, atol=1e-3)  # 16-bit PCM


def test_say_on_a_paused_speaker_says_so_and_how_to_resume(daemon: DaemonProcess, client: Client, voice: str) -> None:
    """Not "making speech…" and then silence: the speaker is paused, and the command that resumes it."""
    command = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "chatterbox_tray.cli.main"]
    client.pause()
    try:
        proc = subprocess.Popen(
            [*command, "say", "-v", voice, "Paused words."], stderr=subprocess.PIPE, env=daemon.env()
        )
        assert proc.stderr is not None
        said, _, _ = select.select([proc.stderr], [], [], 15)  # a pipe, not a terminal: said all the same
        assert said, "say waits on the paused speaker without a word"
        line = proc.stderr.readline().decode()
        assert "speaker is paused" in line and "`chatterbox-tray resume`" in line, line
        assert "making speech" not in line
        time.sleep(0.5)
        assert proc.poll() is None  # it waits for the resume
        client.resume()
        assert proc.wait(timeout=30) == 0
        proc.stderr.close()
        client.pause()
        queued = cli(daemon, "say", "--no-wait", "-v", voice, "Later.")
        assert ok(queued).strip().startswith("j")
        assert "speaker is paused" in err(queued) and "`chatterbox-tray resume`" in err(queued)
        client.stop(all=True)
    finally:
        client.resume()


def test_say_reads_stdin_and_writes_raw_float32_to_stdout(daemon: DaemonProcess, client: Client, voice: str) -> None:
    result = cli(daemon, "say", "--raw", "-v", voice, "--seed", "8", stdin=TEXT + "\n")
    assert result.returncode == 0, err(result)
    audio = np.frombuffer(result.stdout, dtype="<f4")
    assert np.array_equal(audio, reference(client, TEXT + "\n", voice, seed=8))


def test_say_with_json_and_verbose_reports_the_summary_and_sentences(
    daemon: DaemonProcess, voice: str, tmp_path: Path
) -> None:
    out = tmp_path / "out.flac"
    result = cli(daemon, "--json", "say", "--verbose", "-v", voice, "-o", str(out), TEXT)
    ok(result)
    lines = err(result).splitlines()
    assert lines[0] == "[1] Hello from the command line."
    assert lines[1] == "[2] This is the second sentence."
    summary = json.loads(lines[-1])
    assert summary["chunks"] == 2
    assert summary["voice"] == voice
    assert sf.info(str(out)).format == "FLAC"


def test_say_with_a_voice_file_uses_the_clip_without_adding_it(
    daemon: DaemonProcess, client: Client, clips: Clips
) -> None:
    path = clips.write(clips.new(), f"{uid('adhoc')}.wav")
    before = client.voices_list()
    result = cli(daemon, "say", "--raw", "--voice-file", str(path), "--seed", "2", "One line.")
    assert result.returncode == 0, err(result)
    expected, _ = client.synthesize("One line.", voice_path=path, seed=2).collect()
    assert np.array_equal(np.frombuffer(result.stdout, dtype="<f4"), expected)
    assert client.voices_list() == before


@pytest.mark.parametrize(
    ("args", "stdin", "code"),
    [
        (["-v", "__no_such_voice__", "Hi."], None, "unknown_voice"),
        ([], "  \n", "empty_text"),
        (["--exaggeration", "9", "Hi."], None, "bad_args"),
    ],
    ids=["unknown-voice", "empty-stdin", "bad-option"],
)
def test_say_errors_exit_1_and_write_no_file(
    daemon: DaemonProcess, voice: str, tmp_path: Path, args: list[str], stdin: str | None, code: str
) -> None:
    out = tmp_path / "never.wav"
    if "-v" not in args:
        args = ["-v", voice, *args]
    result = cli(daemon, "--json", "say", "-o", str(out), *args, stdin=stdin)
    assert result.returncode == 1
    assert json.loads(err(result).strip().splitlines()[-1])["error"]["code"] == code
    assert not out.exists()


def test_say_to_a_folder_that_does_not_exist_fails_cleanly(daemon: DaemonProcess, voice: str, tmp_path: Path) -> None:
    out = tmp_path / "no" / "such" / "folder" / "out.wav"
    text = f"Never synthesized {uuid.uuid4().hex}."
    result = cli(daemon, "say", "-v", voice, "-o", str(out), text)
    assert result.returncode == 1
    assert str(out) in err(result) and "does not exist" in err(result)
    assert "Traceback" not in err(result)
    # Checked before synthesizing: the daemon never saw the text.
    with daemon.client() as client:
        assert all(job.get("text") != text for job in client.call("stats")["recent_jobs"])
    # The same command to a folder that exists does reach the daemon (so the check above can fail).
    assert cli(daemon, "say", "-v", voice, "-o", str(tmp_path / "out.wav"), text).returncode == 0
    with daemon.client() as client:
        assert any(job.get("text") == text for job in client.call("stats")["recent_jobs"])


def test_say_refuses_an_unknown_file_type(daemon: DaemonProcess, voice: str, tmp_path: Path) -> None:
    result = cli(daemon, "say", "-v", voice, "-o", str(tmp_path / "out.xyz"), "Hi.")
    assert result.returncode != 0
    assert ".xyz" in err(result)
    assert not (tmp_path / "out.xyz").exists()


# -- cache -----------------------------------------------------------------------------------


def test_cache_stats_and_clear(daemon: DaemonProcess, client: Client, clips: Clips) -> None:
    name = uid("cached")
    client.voices_add(name, data=clips.new())
    client.synthesize("Fill the cache.", voice=name).collect()

    out = ok(cli(daemon, "cache", "stats"))
    assert out.startswith("hits:")
    assert "memory:" in out and "disk:" in out and "saved" in out
    stats = json.loads(ok(cli(daemon, "--json", "cache", "stats")))
    assert f"ahead:    {stats['prepared_in_background']} voices" in out
    assert f"of {stats['requests']} requests" in out
    assert {"hits", "misses", "hit_rate", "entries", "bytes", "seconds_saved"} <= set(stats)
    assert stats["entries"]["memory"] >= 1

    assert ok(cli(daemon, "cache", "clear", name)).strip() == "removed 1 cached entry"
    assert next(v for v in client.voices_list() if v["name"] == name)["cache"] is None
    result = cli(daemon, "--json", "cache", "clear", uid("ghost"))
    assert result.returncode == 1
    assert json.loads(err(result))["error"]["code"] == "unknown_voice"


# -- no daemon, autostart, shutdown ----------------------------------------------------------


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_no_start_without_a_daemon_fails_clearly_and_starts_nothing() -> None:
    home = short_home()
    for args in (["--no-start", "status"], ["--no-start", "say", "-o", str(home / "x.wav"), "Hi."], ["shutdown"]):
        result = cli(home, *args)
        assert result.returncode == 3, args
        assert "no daemon is running" in err(result)
        assert "Traceback" not in err(result)
    assert not (home / "run" / "daemon.json").exists()
    assert not (home / "log").exists()  # nothing was spawned
    assert not (home / "x.wav").exists()


@pytest.fixture
def empty_home() -> Iterator[Path]:
    """A home with settings for the fake engine; any daemon started there is stopped after."""
    home = short_home()
    (home / "config").mkdir()
    (home / "config" / "settings.json").write_text(json.dumps({"engine": "fake"}))
    yield home
    with contextlib.suppress(FileNotFoundError, Exception):
        pid = endpoints.read_connection(home / "run" / "daemon.json").pid
        if running(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_command_starts_the_daemon_when_none_answers_and_shutdown_stops_it(empty_home: Path) -> None:
    out = ok(cli(empty_home, "status", timeout=90))
    assert out.splitlines()[0].split()[0] in ("starting", "loading", "warming_up", "ready")
    info = endpoints.read_connection(empty_home / "run" / "daemon.json")
    assert running(info.pid)
    assert (empty_home / "log" / "daemon.log").is_file()

    # The next command finds the same daemon, which runs the fake engine from settings.json.
    for _ in range(100):
        status = json.loads(ok(cli(empty_home, "--json", "status")))
        if status["state"] == "ready":
            break
        time.sleep(0.1)
    assert status["state"] == "ready"
    assert status["model_id"] == "fake-original:1"
    assert endpoints.read_connection(empty_home / "run" / "daemon.json").pid == info.pid

    assert ok(cli(empty_home, "shutdown")).strip() == "daemon stopping"
    for _ in range(200):
        if not running(info.pid):
            break
        time.sleep(0.05)
    assert not running(info.pid)
    assert not (empty_home / "run" / "daemon.json").exists()
    result = cli(empty_home, "--no-start", "ping")
    assert result.returncode == 3
    assert "no daemon is running" in err(result)


def test_a_daemon_that_cannot_start_is_reported() -> None:
    home = short_home()
    (home / "config").mkdir()
    (home / "config" / "settings.json").write_text(json.dumps({"engine": "fake"}))
    (home / "run").mkdir(mode=0o700)
    # The CLI spawns the daemon without flags: a bad override cannot be passed, so
    # make the runtime folder unusable instead (a file where the socket must go).
    (home / "run" / "req.sock").mkdir()
    (home / "run" / "req.sock" / "blocker").write_text("")
    result = cli(home, "status", timeout=90)
    assert result.returncode == 3
    assert "the daemon exited with status" in err(result)
    assert str(home / "log" / "daemon.log") in err(result)
    assert "Traceback" not in err(result)
