"""``chatterbox-tray remote``: pair with daemons on other computers, and manage who may use ours.

On the daemon's machine: ``invite`` (a one-time code), ``list``, ``revoke NAME``.
On a client: ``add NAME HOST CODE``, ``list``, ``forget NAME``. None of them
needs a running daemon except pairing itself (``add`` talks to the remote
daemon's pairing socket). docs/security.md has the design.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time

from ..bridges.serve import EXIT_ERROR
from ..ipc import endpoints, pairing, remote


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``remote`` and its subcommands to the CLI."""
    rem = sub.add_parser("remote", help="use a daemon on another computer, or let others use this one")
    rsub = rem.add_subparsers(dest="remote_command", required=True)
    inv = rsub.add_parser("invite", help="(on the daemon's machine) print a one-time pairing code")
    inv.add_argument("--minutes", type=float, default=pairing.INVITE_TTL_S / 60, help="how long the code lasts")
    add = rsub.add_parser("add", help="(on a client) pair with a remote daemon using its code")
    add.add_argument("name", help="what to call that daemon here, e.g. gpu-box")
    add.add_argument("host", help=f"its address, HOST or HOST:PORT (port {remote.DEFAULT_PORT} by default)")
    add.add_argument("code", help="the code `remote invite` printed there")
    add.add_argument(
        "--as", dest="client_name", help="what the daemon should call this computer (default: its host name)"
    )
    rsub.add_parser("list", help="paired daemons, and the clients this daemon authorizes")
    rev = rsub.add_parser("revoke", help="(on the daemon's machine) stop a client from using this daemon")
    rev.add_argument("name")
    fgt = rsub.add_parser("forget", help="(on a client) unpin a paired daemon")
    fgt.add_argument("name")
    rem.set_defaults(offline=run)


def run(args: argparse.Namespace) -> int:
    """Run a ``remote`` subcommand; plain errors, exit status 1."""
    try:
        return {"invite": invite, "add": add, "list": list_all, "revoke": revoke, "forget": forget}[
            args.remote_command
        ](args)
    except remote.RemoteError as exc:
        if args.json:
            print(json.dumps({"error": {"code": "remote", "message": str(exc)}}), file=sys.stderr)
        else:
            print(f"chatterbox-tray remote: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _remote_enabled() -> remote.RemoteSettings | None:
    try:
        raw = json.loads((endpoints.config_dir() / "settings.json").read_text(encoding="utf-8"))
        return remote.remote_settings(raw.get("remote") if isinstance(raw, dict) else None)
    except (OSError, ValueError, remote.RemoteError):
        return None


def _serving_now() -> tuple[bool, str] | None:
    """What the running local daemon says of remote mode: (serving, why not); None when none answers.

    ``--remote-bind`` turns remote mode on for one run, and a taken port turns
    it off, so the settings file alone cannot say whether pairing will work.
    """
    from ..ipc.client import connect

    try:
        with connect(autostart=False, daemon="local") as client:
            state = client.status().get("remote") or {}
    except Exception:  # no daemon, an old one, a garbled answer: fall back to the settings file
        return None
    if state.get("serving"):
        return True, ""
    return False, str(state.get("error") or 'remote mode is off (add "remote": {"enabled": true} to settings.json)')


def invite(args: argparse.Namespace) -> int:
    if not 0.5 <= args.minutes <= 60:
        raise remote.RemoteError("--minutes must be between 0.5 and 60")
    keys = remote.load_or_create_keypair(remote.server_key_file())
    code, inv = pairing.create_invite(args.minutes * 60)
    if args.json:
        print(json.dumps({"code": code, "fingerprint": remote.fingerprint(keys.public), "expires": inv.expires}))
        return 0
    until = time.strftime("%H:%M", time.localtime(inv.expires))
    print(f"pairing code:  {code}   (once, until {until})")
    print(f"daemon key:    {remote.fingerprint(keys.public)}")
    print(f"on the other computer: chatterbox-tray remote add NAME {socket.gethostname()} {code}")
    serving = _serving_now()
    if serving is not None and not serving[0]:
        print(f"note: this daemon does not serve the network now: {serving[1]}", file=sys.stderr)
        return 0
    settings = _remote_enabled()
    if serving is None and (settings is None or not settings.enabled):
        print(
            'note: this daemon does not serve the network yet: add "remote": {"enabled": true} to '
            f"{endpoints.config_dir() / 'settings.json'} and restart it (or run it with --remote-bind)",
            file=sys.stderr,
        )
    return 0


def add(args: argparse.Namespace) -> int:
    client_name = args.client_name or remote.default_client_name()
    paired = pairing.pair(args.name, args.host, args.code, client_name)
    if args.json:
        print(json.dumps({"daemon": args.name, "fingerprint": paired.fingerprint, "client_name": paired.client_name}))
        return 0
    print(f"paired with {args.name} ({paired.daemon.where}), daemon key {paired.fingerprint}")
    print("  check that this key is the one `remote invite` showed there")
    print(f"  that daemon knows this computer as {paired.client_name!r}")
    print(f"  use it: chatterbox-tray --daemon {args.name} say 'Hello'   (or set {remote.DAEMON_ENV}={args.name})")
    return 0


def list_all(args: argparse.Namespace) -> int:
    daemons = remote.read_daemons()
    clients = remote.read_authorized()
    if args.json:
        paired = {
            n: {"host": d.host, "port": d.port, "fingerprint": remote.fingerprint(d.server_key)}
            for n, d in daemons.items()
        }
        print(json.dumps({"daemons": paired, "clients": {n: remote.fingerprint(k) for n, k in clients.items()}}))
        return 0
    print("daemons this computer paired with:" if daemons else "no paired daemons")
    for name, d in daemons.items():
        print(f"  {name:<16} {d.host}:{d.port}  {remote.fingerprint(d.server_key)}  {d.label}")
    print("clients authorized to use this computer's daemon:" if clients else "no authorized clients")
    for name, key in clients.items():
        print(f"  {name:<16} {remote.fingerprint(key)}")
    return 0


def revoke(args: argparse.Namespace) -> int:
    key = remote.revoke(args.name)
    print(f"revoked {args.name} ({remote.fingerprint(key)}): the daemon refuses its next message")
    return 0


def forget(args: argparse.Namespace) -> int:
    remote.forget_daemon(args.name)
    print(f"forgot {args.name}")
    return 0
