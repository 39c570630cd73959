"""Remote mode's files and pairing arithmetic, in process (the sockets are in tests/protocol/test_remote.py)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import zmq

from chatterbox_tray.ipc import pairing, remote


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHATTERBOX_TRAY_HOME", str(tmp_path))
    return tmp_path


def test_codes_are_forgiving_to_type_and_strict_about_shape() -> None:
    invite_id, secret, code = pairing.new_code()
    assert len(code) == 14 and code.count("-") == 2
    assert pairing.parse_code(code) == (invite_id, secret)
    assert pairing.parse_code(code.lower().replace("-", " ")) == (invite_id, secret)
    assert pairing.parse_code("7kqd-m9xd-3fhO") == ("7KQD", "M9XD3FH0")  # O typed for 0
    for bad in ("", "7KQD-M9XD", "7KQD-M9XD-3FHT-1", "7KQD-M9XD-3FH!"):
        with pytest.raises(pairing.PairingError, match="not a pairing code"):
            pairing.parse_code(bad)


def test_proofs_bind_role_key_and_every_part_of_the_exchange() -> None:
    key = pairing.stretch("M9XD3FHT", b"s" * 16)
    assert key != pairing.stretch("M9XD3FHV", b"s" * 16)
    assert key != pairing.stretch("M9XD3FHT", b"t" * 16)
    parts = ["7KQD", "laptop", "c" * 40, "s" * 40, "n1", "n2"]
    base = pairing.transcript(*parts)
    assert pairing.proof(key, "server", base) != pairing.proof(key, "client", base)
    for i in range(len(parts)):
        changed = [*parts]
        changed[i] = changed[i] + "x"
        assert pairing.proof(key, "server", pairing.transcript(*changed)) != pairing.proof(key, "server", base)


def test_an_invite_file_holds_no_code_and_is_owner_only(home: Path) -> None:
    code, invite = pairing.create_invite()
    path = pairing.invites_dir() / f"{invite.id}.json"
    text = path.read_text()
    assert code.split("-", 1)[1].replace("-", "") not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert pairing.load_invite(invite.id) == invite
    assert pairing.drop_invite(invite.id) and not pairing.drop_invite(invite.id)
    assert pairing.load_invite(invite.id) is None
    _, old = pairing.create_invite(ttl=-1)
    assert pairing.load_invite(old.id) is None and not (pairing.invites_dir() / f"{old.id}.json").exists()
    assert pairing.load_invite("../x") is None


def test_authorized_names_are_unique_and_revoke_names_what_exists() -> None:
    a, b = (zmq.curve_keypair()[0].decode() for _ in range(2))
    assert remote.authorize("laptop", a) == "laptop"
    assert remote.authorize("laptop", a) == "laptop"  # the same computer again: no new entry
    assert remote.authorize("laptop", b) == "laptop-2"
    assert remote.read_authorized() == {"laptop": a, "laptop-2": b}
    assert stat.S_IMODE(remote.authorized_keys_file().stat().st_mode) == 0o600
    with pytest.raises(
        remote.RemoteError, match=r"no authorized client is called 'tablet' \(authorized: laptop, laptop-2\)"
    ):
        remote.revoke("tablet")
    assert remote.revoke("laptop") == a
    assert remote.read_authorized() == {"laptop-2": b}


def test_hand_edited_authorized_keys_keep_good_lines_only() -> None:
    key = zmq.curve_keypair()[0].decode()
    remote.authorized_keys_file().parent.mkdir(parents=True)
    remote.authorized_keys_file().write_text(f"# comment\nok {key}\nbad short\n../evil {key}\n\n")
    assert remote.read_authorized() == {"ok": key}


def test_key_files_are_made_owner_only_and_a_readable_one_is_refused() -> None:
    path = remote.server_key_file()
    pair = remote.load_or_create_keypair(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert remote.load_or_create_keypair(path) == pair
    path.chmod(0o640)
    with pytest.raises(remote.RemoteError, match=r"readable by others.*chmod 600"):
        remote.load_or_create_keypair(path)
    path.chmod(0o600)
    other = zmq.curve_keypair()[0].decode()
    path.write_text(json.dumps({"public": other, "secret": pair.secret}))
    with pytest.raises(remote.RemoteError, match="does not match"):
        remote.load_or_create_keypair(path)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("yes", "must be an object"),
        ({"enabled": "yes"}, "remote.enabled must be true or false"),
        ({"bind": 7361}, "remote.bind must be a string"),
        ({"bind": "host:port"}, "the port must be a number"),
        ({"bind": ":7361"}, "has no host"),
        ({"max_queued_jobs": 0}, "max_queued_jobs must be a whole number from 1 to 1000"),
        ({"max_queued_jobs": True}, "max_queued_jobs"),
    ],
)
def test_bad_remote_settings_are_named(raw: object, message: str) -> None:
    with pytest.raises(remote.RemoteError, match=message):
        remote.remote_settings(raw)


def test_remote_settings_default_off_and_give_both_endpoints() -> None:
    assert remote.remote_settings(None).enabled is False
    settings = remote.remote_settings({"enabled": True, "bind": "192.168.1.10:9000"})
    assert settings.endpoints() == ("tcp://192.168.1.10:9000", "tcp://192.168.1.10:9001")
    assert remote.remote_settings({"bind": "box"}).endpoints()[0] == f"tcp://box:{remote.DEFAULT_PORT}"


def test_pinned_daemons_round_trip_and_an_unknown_name_is_explained() -> None:
    key = zmq.curve_keypair()[0].decode()
    remote.save_daemon(remote.RemoteDaemon("gpu-box", "192.168.1.10", 7361, key, "gpu-box"))
    info = remote.remote_connection("gpu-box")
    assert info.transport == "curve" and info.requests == "tcp://192.168.1.10:7361" and info.server_key == key
    assert info.events == ""  # no events for other computers
    with pytest.raises(remote.RemoteError, match=r"no daemon called 'other' is paired \(paired: gpu-box\)"):
        remote.remote_connection("other")
    remote.forget_daemon("gpu-box")
    assert remote.read_daemons() == {}
