"""A daemon on another computer: two daemons on this machine, over TCP loopback with CURVE.

``gpu`` is the daemon that serves the network (remote mode on, fake engine
with a per-chunk delay, its own home); ``laptop`` is a second home with its
own local daemon, the computer a person works at. Pairing, speaking and
revoking go through the real CLI, as a person would type them; the refusals
are checked with real ZeroMQ sockets, plain and CURVE.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pytest
import zmq

from chatterbox_tray.ipc import pairing, remote
from chatterbox_tray.ipc.client import Client, DaemonUnavailable
from chatterbox_tray.ipc.protocol import ProtocolError, encode, request_header
from tests.protocol.test_cli import cli, err, ok
from tests.support.daemons import Clips, DaemonProcess, ctrl_c_reaches_it, short_home
from tests.support.remote import free_port_pair, home_env, serving_daemon

#: Per-chunk delay of the gpu daemon: jobs are still running when a test acts on them.
CHUNK_DELAY_S = 0.2
#: The gpu daemon's cap on each remote client's queued jobs.
CAP = 2
LONG_TEXT = " ".join(f"Sentence number {i} is here." for i in range(40))


@pytest.fixture(scope="module")
def gpu() -> Iterator[DaemonProcess]:
    """The GPU machine's daemon: remote mode on (settings.json), fake engine, slow chunks."""
    proc = serving_daemon({"CHATTERBOX_TRAY_FAKE_DELAY": str(CHUNK_DELAY_S)}, max_queued_jobs=CAP).start()
    yield proc
    proc.cleanup()


@pytest.fixture(scope="module")
def laptop() -> Iterator[DaemonProcess]:
    """The laptop: its own home and its own local daemon."""
    proc = DaemonProcess().start()
    yield proc
    proc.cleanup()


def invite(gpu: DaemonProcess) -> str:
    out = ok(cli(gpu, "remote", "invite"))
    return re.search(r"pairing code:\s+(\S+)", out).group(1)


@pytest.fixture(scope="module")
def paired(gpu: DaemonProcess, laptop: DaemonProcess, clips: Clips) -> str:
    """The laptop paired with the gpu daemon as "gpu-box", and a voice on the gpu daemon."""
    out = ok(cli(laptop, "remote", "add", "gpu-box", f"127.0.0.1:{gpu.port}", invite(gpu), "--as", "laptop"))
    assert "paired with gpu-box" in out
    with home_env(laptop.home), connect_gpu() as client:
        client.voices_add("narrator", data=clips.new())
        client.voices_default("narrator")
    return "gpu-box"


def connect_gpu(timeout: float = 10.0) -> Client:
    """A remote client of "gpu-box" with the current home's keys (call inside home_env)."""
    return Client(remote.remote_connection("gpu-box"), timeout=timeout)


def fingerprint_in(text: str) -> str:
    return re.search(r"SHA256:[0-9a-f:]+", text).group(0)


# -- pairing -------------------------------------------------------------------------


def test_pairing_pins_the_key_the_invite_showed(gpu: DaemonProcess, laptop: DaemonProcess, paired: str) -> None:
    invited = cli(gpu, "remote", "invite")
    assert "does not serve" not in err(invited)  # it serves: no misleading note
    shown = fingerprint_in(ok(invited))
    listed = ok(cli(laptop, "remote", "list"))
    assert f"gpu-box          127.0.0.1:{gpu.port}  {shown}" in listed
    assert "laptop" in ok(cli(gpu, "remote", "list"))


def test_the_laptop_speaks_with_the_remote_daemon_on_its_own_speaker(
    gpu: DaemonProcess, laptop: DaemonProcess, paired: str
) -> None:
    gpu_before, laptop_before = len(gpu.played()), len(laptop.played())
    result = cli(laptop, "--daemon", "gpu-box", "--json", "say", "Hello from the other room. Second sentence.")
    end = json.loads(ok(result))
    assert end["state"] == "finished" and end["playback"]["device"] == "this computer"
    summary = end["summary"]
    assert summary["chunks"] >= 2 and summary["audio_s"] > 0
    deadline = time.monotonic() + 10
    while len(laptop.played()) - laptop_before < summary["audio_s"] * 24000 and time.monotonic() < deadline:
        time.sleep(0.1)
    heard = laptop.played()[laptop_before:]
    assert len(heard) >= summary["audio_s"] * 24000  # all of it (plus sentence pauses) reached the laptop's speaker
    assert np.abs(heard).max() > 0.01
    assert len(gpu.played()) == gpu_before  # nothing played in the other room


def test_remote_speech_here_uses_this_computers_volume_and_device(
    gpu: DaemonProcess, laptop: DaemonProcess, paired: str
) -> None:
    """``say --daemon`` plays at the volume and on the device chosen for this computer (its settings.json)."""
    settings = laptop.home / "config" / "settings.json"
    saved = settings.read_text() if settings.exists() else None

    def choose(**values: object) -> None:
        current = json.loads(settings.read_text()) if settings.exists() else {}
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps({**current, **values}))

    def say() -> np.ndarray:
        before = len(laptop.played())
        end = json.loads(ok(cli(laptop, "--daemon", "gpu-box", "--json", "say", "The same words, twice.")))
        deadline = time.monotonic() + 10
        while len(laptop.played()) - before < end["playback"]["played_s"] * 24000 * 0.99:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        return laptop.played()[before:]

    try:
        choose(volume=1.0, output_device="")
        loud = say()
        choose(volume=0.25)
        quiet = say()
        assert np.abs(quiet).max() == pytest.approx(0.25 * np.abs(loud).max(), rel=0.05)
        choose(output_device="Speakers in the attic")
        refused = cli(laptop, "--daemon", "gpu-box", "say", "Nowhere to go.")
        assert refused.returncode != 0 and "no output device named 'Speakers in the attic'" in err(refused)
    finally:
        if saved is None:
            settings.unlink(missing_ok=True)
        else:
            settings.write_text(saved)


def test_remote_speech_here_waits_for_enough_audio_when_it_comes_slower_than_it_plays(
    laptop: DaemonProcess, clips: Clips
) -> None:
    """The adaptive pre-buffer over CURVE: a daemon that makes speech at 1.5x real time, in pieces.

    With ``prebuffer`` adaptive (this computer's setting) the speech starts once
    enough has arrived and never runs dry; with it off, it starts with the
    first sentence at the latest and stalls (the sentence rule may hold back a
    sentence whose pieces come too slowly to play through, so on a busy
    machine the whole first sentence can be there when it starts).
    """
    slow = serving_daemon(
        {"CHATTERBOX_TRAY_FAKE_TOKEN_DELAY": "0.06", "CHATTERBOX_TRAY_FAKE_PIECES": "3"}  # 60 ms a 40 ms token
    ).start()
    settings = laptop.home / "config" / "settings.json"
    saved = settings.read_text() if settings.exists() else None
    try:
        with slow.client() as owner:
            owner.voices_add("narrator", data=clips.new())
            owner.voices_default("narrator")
        ok(cli(laptop, "remote", "add", "slow-box", f"127.0.0.1:{slow.port}", invite(slow), "--as", "laptop"))
        text = "One short line here. Two short lines here. Three short lines. Four short lines."
        ends = {}
        for mode in ("adaptive", "off"):
            current = json.loads(settings.read_text()) if settings.exists() else {}
            settings.parent.mkdir(parents=True, exist_ok=True)
            settings.write_text(json.dumps({**current, "prebuffer": mode}))
            ends[mode] = json.loads(ok(cli(laptop, "--daemon", "slow-box", "--json", "say", text, timeout=60)))
        first_sentence_s = 2 * len("One short line here.") / 25 + 0.25
        adaptive, off = ends["adaptive"]["playback"], ends["off"]["playback"]
        assert adaptive["underruns"] == 0 and adaptive["prebuffer_s"] > first_sentence_s
        assert off["underruns"] > 0 and off["prebuffer_s"] <= first_sentence_s + 0.01
    finally:
        if saved is None:
            settings.unlink(missing_ok=True)
        else:
            settings.write_text(saved)
        cli(laptop, "remote", "forget", "slow-box")
        slow.cleanup()


def test_the_environment_variable_picks_the_daemon_and_local_stays_local(
    gpu: DaemonProcess, laptop: DaemonProcess, paired: str
) -> None:
    env_daemon = DaemonProcess(home=laptop.home, env={remote.DAEMON_ENV: "gpu-box"})
    remote_status = ok(cli(env_daemon, "--json", "stats"))
    local_status = ok(cli(env_daemon, "--daemon", "local", "--json", "stats"))
    assert json.loads(remote_status)["pid"] == gpu.pid
    assert json.loads(local_status)["pid"] == laptop.pid


def test_a_reused_code_is_refused_and_changes_nothing(gpu: DaemonProcess, laptop: DaemonProcess) -> None:
    code = invite(gpu)
    first = cli(laptop, "remote", "add", "box-a", f"127.0.0.1:{gpu.port}", code, "--as", "reuser")
    ok(first)
    keys_before = (gpu.home / "config/remote/authorized_keys").read_text()
    daemons_before = (laptop.home / "config/remote/daemons.json").read_text()
    again = cli(laptop, "remote", "add", "box-b", f"127.0.0.1:{gpu.port}", code, "--as", "reuser2")
    assert again.returncode == 1
    assert "no such invite" in err(again) and "already used" in err(again)
    assert (gpu.home / "config/remote/authorized_keys").read_text() == keys_before
    assert (laptop.home / "config/remote/daemons.json").read_text() == daemons_before
    ok(cli(laptop, "remote", "forget", "box-a"))


def test_a_wrong_code_is_refused_and_changes_nothing(gpu: DaemonProcess, laptop: DaemonProcess) -> None:
    code = invite(gpu)
    wrong = code[:5] + ("Z" if code[5] != "Z" else "Y") + code[6:]  # right invite, wrong secret
    keys_before = (gpu.home / "config/remote/authorized_keys").read_text()
    result = cli(laptop, "remote", "add", "box-w", f"127.0.0.1:{gpu.port}", wrong, "--as", "wrong")
    assert result.returncode == 1
    assert "does not match" in err(result) and "nothing was changed" in err(result)
    assert "box-w" not in remote.read_daemons(laptop.home / "config/remote/daemons.json")
    assert (gpu.home / "config/remote/authorized_keys").read_text() == keys_before
    # The right code still works after a typo.
    ok(cli(laptop, "remote", "add", "box-w", f"127.0.0.1:{gpu.port}", code, "--as", "wrong"))
    ok(cli(laptop, "remote", "forget", "box-w"))


def test_an_expired_code_is_refused(gpu: DaemonProcess, laptop: DaemonProcess) -> None:
    with home_env(gpu.home):
        code, _ = pairing.create_invite(ttl=0.2)
    time.sleep(0.5)
    result = cli(laptop, "remote", "add", "box-x", f"127.0.0.1:{gpu.port}", code)
    assert result.returncode == 1 and "expired" in err(result)


def test_a_malformed_code_and_an_absent_daemon_get_plain_errors(laptop: DaemonProcess) -> None:
    bad = cli(laptop, "remote", "add", "box", "127.0.0.1", "hello")
    assert bad.returncode == 1 and "is not a pairing code" in err(bad)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens on port + 1 once this closes
    start = time.monotonic()
    with home_env(laptop.home), pytest.raises(pairing.PairingError, match="no answer"):
        pairing.pair("box", f"127.0.0.1:{port - 1}", "AAAA-BBBB-CCCC", "me", timeout=1.0)
    assert time.monotonic() - start < 5


# -- refusals --------------------------------------------------------------------------


def test_an_unknown_key_is_refused_and_logged_with_the_peer_address(gpu: DaemonProcess, paired: str) -> None:
    stranger = short_home()
    with home_env(stranger):
        mine = remote.load_or_create_keypair(remote.client_key_file())
    with home_env(gpu.home):
        server_key = remote.load_or_create_keypair(remote.server_key_file()).public
    info = remote.CurveConnection(
        requests=f"tcp://127.0.0.1:{gpu.port}",
        events="",
        key=server_key,
        pid=0,
        transport="curve",
        server_key=server_key,
        public_key=mine.public,
        secret_key=mine.secret,
    )
    with Client(info, timeout=1.5) as client, pytest.raises(DaemonUnavailable):
        client.ping()
    shutil.rmtree(stranger, ignore_errors=True)
    assert re.search(r"refused a connection from 127\.0\.0\.1: key SHA256:\S+ is not authorized", gpu.log_text())


def test_a_plain_connection_gets_no_reply(gpu: DaemonProcess, paired: str) -> None:
    with home_env(gpu.home):
        server_key = remote.load_or_create_keypair(remote.server_key_file()).public
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://127.0.0.1:{gpu.port}")
    try:
        # Signed exactly as a CURVE client signs; only the encryption is missing.
        sock.send_multipart(encode(server_key.encode(), request_header("plain-1", "ping", {})))
        assert sock.poll(1500) == 0
    finally:
        sock.close(0)
    assert gpu.alive


def test_the_socket_is_curve_on_both_ends(gpu: DaemonProcess, laptop: DaemonProcess, paired: str) -> None:
    assert re.search(r"serving the network with CURVE on tcp://127\.0\.0\.1:\d+ \(mechanism CURVE;", gpu.log_text())
    with home_env(laptop.home), connect_gpu() as client:
        client.ping()
        assert client._sock.getsockopt(zmq.MECHANISM) == zmq.CURVE


def test_a_revoked_key_is_refused_on_its_next_message(gpu: DaemonProcess, laptop: DaemonProcess, paired: str) -> None:
    tablet = DaemonProcess(home=short_home())  # a second client computer (no daemon of its own needed)
    ok(cli(tablet, "remote", "add", "gpu-box", f"127.0.0.1:{gpu.port}", invite(gpu), "--as", "tablet"))
    with home_env(tablet.home):
        client = connect_gpu(timeout=5.0)
    with client:
        client.ping()  # connected and authorized
        ok(cli(gpu, "remote", "revoke", "tablet"))
        with pytest.raises(ProtocolError) as caught:
            client.ping()  # the same connection: ZAP ran long before
        assert caught.value.code == "unauthorized"
    with home_env(tablet.home):
        fresh = connect_gpu(timeout=1.5)
    with fresh, pytest.raises(DaemonUnavailable):
        fresh.ping()  # a new connection: ZAP refuses it
    unavailable = cli(tablet, "--daemon", "gpu-box", "ping", timeout=30)
    assert unavailable.returncode != 0 and "did not answer" in err(unavailable)
    with home_env(laptop.home), connect_gpu() as still:
        still.ping()  # the laptop's own key is untouched
    tablet.cleanup()


def test_remote_clients_may_not_run_the_owners_ops_or_name_files(
    gpu: DaemonProcess, laptop: DaemonProcess, paired: str
) -> None:
    with home_env(laptop.home), connect_gpu() as client:
        for call in (client.shutdown, lambda: client.settings_set(volume=0.5)):
            with pytest.raises(ProtocolError) as caught:
                call()
            assert caught.value.code == "not_allowed"
        with pytest.raises(ProtocolError) as caught:
            client.call("voices.add", {"name": "etc", "path": "/etc/passwd"})
        assert caught.value.code == "not_allowed"
    assert gpu.alive


def test_one_remote_client_cannot_fill_the_queue(gpu: DaemonProcess, laptop: DaemonProcess, paired: str) -> None:
    with home_env(laptop.home), connect_gpu() as first, connect_gpu() as second:
        running = [first.synthesize(LONG_TEXT) for _ in range(CAP)]
        for synthesis in running:
            synthesis.accepted()
        over = second.synthesize("One more.")  # another connection, same computer's key: same share
        with pytest.raises(ProtocolError) as caught:
            over.accepted()
        assert caught.value.code == "too_many_jobs"
        with gpu.client() as local:  # the daemon's own user is not capped
            local.synthesize("Local is fine.").accepted().cancel()
        for synthesis in running:
            synthesis.cancel()


def test_a_remote_client_sees_only_its_own_texts_and_the_owner_sees_all(
    gpu: DaemonProcess, laptop: DaemonProcess, paired: str
) -> None:
    """Recent jobs in ``stats`` hold what people said: one paired computer must not read another's."""
    tablet = DaemonProcess(home=short_home())
    ok(cli(tablet, "remote", "add", "gpu-box", f"127.0.0.1:{gpu.port}", invite(gpu), "--as", "tablet-2"))
    try:
        with home_env(laptop.home), connect_gpu() as client:
            client.synthesize("The laptop's private words.").collect()
        with home_env(tablet.home), connect_gpu() as client:
            client.synthesize("The tablet's private words.").collect()
        said = {"The laptop's private words.", "The tablet's private words.", "The owner's own words."}
        with gpu.client() as owner:
            owner.synthesize("The owner's own words.").collect()
            # The last reply can reach the client just before the job's end is recorded.
            deadline = time.monotonic() + 10
            while not said <= {j["text"] for j in owner.stats()["recent_jobs"]} and time.monotonic() < deadline:
                time.sleep(0.05)
            everything = [j["text"] for j in owner.stats()["recent_jobs"]]
        assert said <= set(everything)
        for home, mine in ((laptop.home, "The laptop's"), (tablet.home, "The tablet's")):
            with home_env(home), connect_gpu() as client:
                stats = client.stats()
            texts = [j["text"] for j in stats["recent_jobs"]]
            assert f"{mine} private words." in texts, texts
            assert not any("client" in j for j in stats["recent_jobs"])  # keys are not shown either
            others = {"The laptop's", "The tablet's", "The owner's"} - {mine}
            assert not any(other in json.dumps(stats) for other in others)  # anywhere in the answer
    finally:
        ok(cli(gpu, "remote", "revoke", "tablet-2"))
        tablet.cleanup()


# -- failures of the network ----------------------------------------------------------------


def test_a_client_killed_mid_stream_leaves_the_daemon_serving(
    gpu: DaemonProcess, laptop: DaemonProcess, paired: str
) -> None:
    script = (
        "import os, sys\n"
        "from chatterbox_tray.ipc.client import connect\n"
        "c = connect(daemon='gpu-box')\n"
        f"s = c.synthesize({LONG_TEXT!r})\n"
        "for chunk in s:\n"
        "    print('chunk', flush=True)\n"
    )
    env = {**laptop.env()}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    assert proc.stdout.readline().strip() == b"chunk"  # mid-stream
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    with home_env(laptop.home), connect_gpu() as other:
        other.ping()
        audio, rate = other.synthesize("Still here.").collect()
        assert rate == 24000 and len(audio) > 0
    deadline = time.monotonic() + 15
    with gpu.client() as local:
        while time.monotonic() < deadline and local.status().get("queue", 0):
            time.sleep(0.2)
        assert local.status().get("queue", 0) == 0  # the killed client's job was cancelled, not left running


def test_a_network_cut_leaves_the_daemon_serving(gpu: DaemonProcess, laptop: DaemonProcess, paired: str) -> None:
    with home_env(laptop.home):
        cut = connect_gpu()
        synthesis = cut.synthesize(LONG_TEXT)
        next(iter(synthesis))  # a chunk has arrived: mid-stream
        job = synthesis.job
        cut._sock.close(0)  # the socket closes under it, no goodbye
    with gpu.client() as local:
        end = local.wait(job, timeout=30)
        assert end["state"] == "cancelled"
    with home_env(laptop.home), connect_gpu() as other:
        audio, _ = other.synthesize("Still serving.").collect()
        assert len(audio) > 0


def test_garbage_on_the_pairing_socket_is_answered_and_harmless(gpu: DaemonProcess, paired: str) -> None:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://127.0.0.1:{gpu.port + 1}")
    try:
        for junk in (b"\xff\x00", b"[1,2]", json.dumps({"op": "pair.start", "invite": "0000"}).encode()):
            sock.send(junk)
            assert sock.poll(3000)
            assert json.loads(sock.recv())["ok"] is False
    finally:
        sock.close(0)
    with gpu.client() as local:
        local.ping()


# -- key files ---------------------------------------------------------------------------------


def test_secret_key_files_are_owner_only(gpu: DaemonProcess, laptop: DaemonProcess, paired: str) -> None:
    for path in (
        gpu.home / "config/remote/server_key.json",
        gpu.home / "config/remote/authorized_keys",
        laptop.home / "config/remote/client_key.json",
        laptop.home / "config/remote/daemons.json",
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_daemon_with_a_readable_secret_key_refuses_to_serve() -> None:
    home = short_home()
    with home_env(home):
        path = remote.server_key_file()
        remote.load_or_create_keypair(path)
    path.chmod(0o644)
    proc = DaemonProcess(home=home, args=("--engine", "fake", "--remote-bind", f"127.0.0.1:{free_port_pair()}"))
    proc.spawn()
    try:
        assert proc.proc.wait(timeout=30) == 1
        assert "readable by others" in proc.log_text() and "chmod 600" in proc.log_text()
        # It exited cleanly: no socket files, no connection file pointing at a dead daemon.
        run_dir = proc.connection_path.parent
        assert not list(run_dir.glob("*.sock")) and not proc.connection_path.exists()
    finally:
        proc.cleanup()


def test_a_taken_port_leaves_remote_mode_off_and_this_computer_served(clips: Clips) -> None:
    """Another program on remote mode's port: the daemon keeps serving locally and says why, plainly."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    home = short_home()
    (home / "config").mkdir(parents=True)
    (home / "config" / "settings.json").write_text(
        json.dumps({"remote": {"enabled": True, "bind": f"127.0.0.1:{port}"}})
    )
    proc = DaemonProcess(home=home)
    try:
        proc.start()  # it answers locally
        with proc.client() as local:
            status = local.status()
            assert status["remote"]["serving"] is None
            assert status["remote"]["error"].startswith(f"remote mode off: port {port} is in use")
            assert local.stats()["status"]["remote"]["error"] == status["remote"]["error"]
            local.voices_add("here", data=clips.new())
            audio, _ = local.synthesize("Still speaking here.", voice="here").collect()
            assert len(audio) > 0
        assert f"remote mode off: port {port} is in use" in proc.log_text()
        shown = cli(proc, "status")
        assert f"remote mode off: port {port} is in use" in ok(shown)
        invited = cli(proc, "remote", "invite")  # the settings say on, the daemon says why it is not
        assert invited.returncode == 0
        assert f"does not serve the network now: remote mode off: port {port} is in use" in err(invited)
        assert proc.stop() == 0
        run_dir = proc.connection_path.parent
        assert not list(run_dir.glob("*.sock")) and not proc.connection_path.exists()  # it cleaned up
    finally:
        holder.close()
        proc.cleanup()


def test_ctrl_c_stops_remote_speech_here_and_cancels_it_there(
    gpu: DaemonProcess, laptop: DaemonProcess, paired: str
) -> None:
    command = [sys.executable, "-m", "chatterbox_tray.cli.main", "--daemon", "gpu-box", "say", LONG_TEXT]
    proc = subprocess.Popen(
        command, env=laptop.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=ctrl_c_reaches_it
    )
    before = len(laptop.played())
    deadline = time.monotonic() + 20
    while len(laptop.played()) == before and time.monotonic() < deadline:
        time.sleep(0.05)  # wait until it is audibly playing here
    assert len(laptop.played()) > before
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 130 and b"stopped" in stderr
    with gpu.client() as local:
        deadline = time.monotonic() + 10
        while local.status()["queue"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert local.status()["queue"] == 0  # its job was cancelled on the daemon


def test_an_unreachable_remote_daemon_is_said_plainly_and_quickly() -> None:
    home = short_home()
    with home_env(home):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # closed again: nobody listens there
        remote.save_daemon(
            remote.RemoteDaemon(
                "gone", "127.0.0.1", port, remote.load_or_create_keypair(remote.client_key_file()).public
            )
        )
    start = time.monotonic()
    result = cli(DaemonProcess(home=home), "--daemon", "gone", "say", "Hello.", timeout=30)
    assert result.returncode != 0
    assert "did not answer within 5 s" in err(result) and "--daemon local" in err(result)
    assert time.monotonic() - start < 20
    unknown = cli(DaemonProcess(home=home), "--daemon", "nobody", "ping")
    assert unknown.returncode != 0 and "no daemon called 'nobody' is paired" in err(unknown)
    shutil.rmtree(home, ignore_errors=True)


def test_two_computers_take_turns_so_a_short_text_is_not_stuck_behind_a_book(
    gpu: DaemonProcess, laptop: DaemonProcess, paired: str
) -> None:
    from tests.support.daemons import EventLog

    tablet = DaemonProcess(home=short_home())
    ok(cli(tablet, "remote", "add", "gpu-box", f"127.0.0.1:{gpu.port}", invite(gpu), "--as", "tablet-turns"))
    log = EventLog(gpu.events())
    with gpu.client() as local:
        log.sync(local)
    with home_env(laptop.home), connect_gpu() as book_client:
        book = book_client.synthesize(LONG_TEXT).accepted()
        with home_env(tablet.home), connect_gpu() as quick_client:
            quick = quick_client.synthesize("A quick one.").accepted()
            audio, _ = quick.collect()
        assert len(audio) > 0
        log.wait_job(quick.job, "finished")
        book_chunks = [e for j, e in log.job_events(book.job) if e == "chunk"]
        assert "finished" not in [e for _, e in log.job_events(book.job)]  # the book is still being made
        assert len(book_chunks) <= 2  # the quick text had its turn after one of the book's sentences
        book.cancel()
    log.stream.close()
    tablet.cleanup()


def test_the_long_lived_link_reaches_a_remote_daemon_and_says_why_when_it_cannot(
    gpu: DaemonProcess, laptop: DaemonProcess, paired: str
) -> None:
    import threading

    from chatterbox_tray.ipc import requests as rq
    from chatterbox_tray.ipc.link import CONNECTED, FAILED, LOST, DaemonLink
    from tests.protocol.test_link import Recorder

    def run_link(name: str) -> tuple[DaemonLink, Recorder, threading.Thread]:
        sink = Recorder()
        link = DaemonLink(sink, None, autostart=False, daemon_args=[], remote=name)
        thread = threading.Thread(target=link.run, daemon=True)
        thread.start()
        return link, sink, thread

    def stop(link: DaemonLink, thread: threading.Thread) -> None:
        link.stop()
        thread.join(10)
        assert not thread.is_alive()
        link.dispose()

    with home_env(laptop.home):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead_port = s.getsockname()[1]
        gpu_key = remote.read_daemons()["gpu-box"].server_key
        remote.save_daemon(remote.RemoteDaemon("switched-off", "127.0.0.1", dead_port, gpu_key))
        link, sink, thread = run_link("gpu-box")
        try:
            assert sink.find("link", where=lambda a: a[0] == CONNECTED)[1] == "remote daemon gpu-box"
            req_id = link.core.new_id()
            link.submit(("req", req_id, rq.synthesize("Over the link."), 30.0))
            sink.find("message", where=lambda a: a[0] == req_id and a[1]["kind"] == "result")
            assert sink.all("message", where=lambda a: a[0] == req_id and a[1]["kind"] == "chunk")
        finally:
            stop(link, thread)
        link, sink, thread = run_link("switched-off")
        try:
            detail = sink.find("link", where=lambda a: a[0] == LOST)[1]
            assert "did not answer" in detail and "local daemon" in detail
        finally:
            stop(link, thread)  # prompt even while it waits to try again
        link, sink, thread = run_link("never-paired")
        try:
            assert "daemon called 'never-paired' is paired" in sink.find("link", where=lambda a: a[0] == FAILED)[1]
        finally:
            stop(link, thread)
        remote.forget_daemon("switched-off")


def test_invite_on_a_daemon_run_with_remote_bind_says_nothing_about_settings() -> None:
    """``--remote-bind`` serves for one run with settings.json untouched: the invite must not claim it is off."""
    port = free_port_pair()
    proc = DaemonProcess(args=("--engine", "fake", "--remote-bind", f"127.0.0.1:{port}"))
    try:
        proc.start()
        invited = cli(proc, "remote", "invite")
        assert "pairing code:" in ok(invited)
        assert "does not serve" not in err(invited)
        assert proc.stop() == 0
        assert "does not serve the network yet" in err(cli(proc, "remote", "invite"))  # no daemon, settings off
    finally:
        proc.cleanup()
