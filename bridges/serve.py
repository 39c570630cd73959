"""``python -m chatterbox_tray.bridges openai|wyoming|mcp``: run a bridge in the foreground.

``chatterbox-tray serve openai|wyoming|mcp`` calls ``main`` with the same
arguments. Before serving, a bridge makes sure a daemon answers (starting one
unless ``--no-start``), like every other command; afterwards a daemon that
stops or restarts is found again at the next request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

API_KEY_ENV = "CHATTERBOX_TRAY_OPENAI_API_KEY"
#: Exit statuses, the same for every command: ``cli/`` takes them from here (no bridge may import the CLI).
EXIT_ERROR, EXIT_USAGE, EXIT_UNAVAILABLE = 1, 2, 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bridges' subcommands and options, on ``parser`` (ours, or ``chatterbox-tray serve``)."""
    sub = parser.add_subparsers(dest="bridge", required=True, metavar="BRIDGE")

    oa = sub.add_parser("openai", help="an OpenAI-compatible speech endpoint (/v1/audio/speech)")
    oa.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    oa.add_argument("--port", type=int, default=8880, help="port (default 8880; 0 picks a free one)")
    oa.add_argument(
        "--api-key",
        help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV}); needed to listen beyond loopback",
    )
    oa.add_argument("--api-key-file", type=Path, help="read the API key from this file (first line)")
    oa.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let web pages from ORIGIN (e.g. http://localhost:3000) call the API; repeatable; off by default",
    )
    oa.add_argument("--max-body-bytes", type=int, default=1 << 20, help="largest request body accepted (default 1 MiB)")
    oa.add_argument(
        "--voice-map",
        type=Path,
        help="JSON file mapping OpenAI voice names to library voices "
        "(default: openai-voices.json in the config folder)",
    )

    wy = sub.add_parser("wyoming", help="a Wyoming text-to-speech server for Home Assistant")
    wy.add_argument(
        "--uri",
        default="tcp://127.0.0.1:10200",
        help="where to listen (default tcp://127.0.0.1:10200; tcp://0.0.0.0:10200 for the LAN)",
    )
    wy.add_argument(
        "--zeroconf",
        nargs="?",
        const="Chatterbox Tray",
        metavar="NAME",
        help="announce the server over zeroconf (mDNS) so Home Assistant finds it, as NAME "
        "(default 'Chatterbox Tray'); needs a LAN address in --uri; off by default",
    )

    mc = sub.add_parser(
        "mcp",
        help="a Model Context Protocol server (stdio), so AI tools can speak (docs/mcp.md)",
        description="Serve the daemon to AI tools over the Model Context Protocol: tools speak, list_voices, "
        "stop, save and list_tags. By default over stdin/stdout, as MCP clients start their servers.",
    )
    mc.add_argument(
        "--voice", help="the voice this agent speaks with when a call names none (default: the default voice)"
    )
    mc.add_argument(
        "--http",
        action="store_true",
        help="serve the streamable HTTP transport on 127.0.0.1 (at /mcp) instead of stdio",
    )
    mc.add_argument("--port", type=int, default=8765, help="the HTTP port with --http (default 8765)")

    for p in (oa, wy, mc):
        p.add_argument("--connection", type=Path, help="the daemon's connection file (default: the usual one)")
        # SUPPRESS: under `chatterbox-tray --no-start serve ...` the global flag must not be reset to False.
        p.add_argument(
            "--no-start", action="store_true", default=argparse.SUPPRESS, help="do not start a daemon when none answers"
        )
        p.add_argument("-v", "--verbose", action="store_true", help="log every request")


def _ensure_daemon(args: argparse.Namespace) -> bool:
    """Check that a daemon answers (or start one); print why not and return False."""
    from ..ipc.client import DaemonUnavailable, connect

    if args.connection is not None:
        return True  # a given daemon: found at each request
    try:
        connect(autostart=not getattr(args, "no_start", False)).close()
    except DaemonUnavailable as exc:
        print(f"chatterbox-tray serve: {exc}", file=sys.stderr)
        return False
    return True


def _api_key(args: argparse.Namespace) -> str | None:
    if args.api_key_file is not None:
        try:
            return args.api_key_file.read_text(encoding="utf-8").splitlines()[0].strip() or None
        except (OSError, IndexError) as exc:
            raise SystemExit(
                f"chatterbox-tray serve: cannot read the API key from {args.api_key_file}: {exc}"
            ) from None
    return args.api_key or os.environ.get(API_KEY_ENV) or None


def run(args: argparse.Namespace) -> int:
    """Run the bridge ``args`` name until Ctrl-C or SIGTERM."""
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    return {"openai": _run_openai, "wyoming": _run_wyoming, "mcp": _run_mcp}[args.bridge](args)


def _run_mcp(args: argparse.Namespace) -> int:
    """The MCP server; stdout is the protocol's, so everything else goes to stderr."""
    from .mcp_server import make_server

    # A daemon that cannot start now is no reason to fail the agent's start:
    # each tool call looks for it again and says plainly when it is missing.
    _ensure_daemon(args)
    server = make_server(args.connection, args.voice)
    with contextlib.suppress(KeyboardInterrupt):
        if args.http:
            # Loopback only: the server speaks and writes files as the user, and MCP's
            # HTTP transport has no authentication of ours, so it is never offered to the network.
            print(f"MCP server on http://127.0.0.1:{args.port}/mcp", file=sys.stderr, flush=True)
            server.run("streamable-http", host="127.0.0.1", port=args.port)
        else:
            server.run("stdio")  # until the client closes stdin
    return 0


def _run_openai(args: argparse.Namespace) -> int:
    from .openai_server import BridgeServer, Config, check_bind

    config = Config(
        host=args.host,
        port=args.port,
        api_key=_api_key(args),
        cors_origins=tuple(args.cors_origin),
        max_body=args.max_body_bytes,
        voice_table=args.voice_map,
        connection=args.connection,
    )
    try:
        check_bind(config)  # before starting a daemon for a server that may not run
    except ValueError as exc:
        print(f"chatterbox-tray serve openai: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not _ensure_daemon(args):
        return EXIT_UNAVAILABLE
    try:
        server = BridgeServer(config)
    except ValueError as exc:
        print(f"chatterbox-tray serve openai: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"chatterbox-tray serve openai: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"OpenAI-compatible speech endpoint on {server.url}", flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a supervisor's stop ends it like Ctrl-C
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()
    return 0


def _run_wyoming(args: argparse.Namespace) -> int:
    from urllib.parse import urlparse

    from .openai_server import is_loopback
    from .upstream import DaemonClients
    from .wyoming_server import run as run_wyoming

    if not _ensure_daemon(args):
        return EXIT_UNAVAILABLE
    host = urlparse(args.uri).hostname
    if args.uri.startswith("tcp://") and host is not None and not is_loopback(host):
        # Wyoming has no authentication: say plainly who can now use the model.
        print(
            f"chatterbox-tray serve wyoming: listening on {host}: anyone who can reach this port can make speech "
            "with your voices (Wyoming has no password); allow only Home Assistant's address in your firewall",
            file=sys.stderr,
        )

    announce_at: tuple[str, int] | None = None
    if args.zeroconf:
        from .announce import announced_address

        try:  # before listening: a loopback address cannot be announced
            announce_at = announced_address(args.uri)
        except ValueError as exc:
            print(f"chatterbox-tray serve wyoming: --zeroconf: {exc}", file=sys.stderr)
            return EXIT_USAGE
    helpers: list[asyncio.Task] = []

    def started(server: object) -> None:
        sock = getattr(server, "_server", None)
        where = args.uri
        if sock is not None and sock.sockets and args.uri.startswith("tcp://"):
            host, port = sock.sockets[0].getsockname()[:2]
            where = f"tcp://{host}:{port}"
            if announce_at is not None:  # listening now: its port is known
                helpers.append(asyncio.ensure_future(announce(announce_at[0], port)))
        print(f"Wyoming text-to-speech server on {where}", flush=True)

    async def announce(host: str, port: int) -> None:
        from .announce import Announcement

        announcement = Announcement()
        try:
            name = await announcement.start(args.zeroconf, host, port)
            print(f"announced as {name!r} over zeroconf", flush=True)
            await asyncio.Event().wait()
        finally:
            await announcement.close()

    async def serve() -> None:
        # SIGTERM cancels the server the asyncio way (a KeyboardInterrupt raised
        # inside the event loop can land in the middle of its machinery).
        task = asyncio.current_task()
        assert task is not None
        with contextlib.suppress(NotImplementedError):  # Windows' loops have no signal handlers
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            with contextlib.suppress(asyncio.CancelledError):  # run_wyoming stops its server on the way out
                await run_wyoming(args.uri, DaemonClients(args.connection), started)
        finally:
            for helper in helpers:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve())
    except (OSError, ValueError) as exc:
        print(f"chatterbox-tray serve wyoming: cannot listen on {args.uri}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m chatterbox_tray.bridges openai|wyoming|mcp [options]``."""
    parser = argparse.ArgumentParser(
        prog="python -m chatterbox_tray.bridges", description="Serve the Chatterbox Tray daemon to other programs."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
