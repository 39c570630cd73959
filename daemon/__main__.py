"""``python -m chatterbox_tray.daemon``: run the daemon in the foreground.

Clients start it this way (detached) when none answers; ``chatterbox-tray
daemon`` runs it in a terminal. Flags override settings.json for this run only.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import MutableMapping

from .settings import DEVICES, ENGINES, VARIANTS, load_remote_settings, load_settings


def build_parser() -> argparse.ArgumentParser:
    """The daemon's flags: they override settings.json for one run (``chatterbox-tray daemon`` passes them on)."""
    parser = argparse.ArgumentParser(prog="chatterbox-tray-daemon", description=__doc__)
    parser.add_argument("--variant", choices=VARIANTS, help="which Chatterbox model to load")
    parser.add_argument("--checkpoint", metavar="DIR", help="load weights from this folder instead of the hub")
    parser.add_argument("--device", choices=DEVICES, help="where the model runs (default: auto)")
    parser.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-warmup", dest="warmup", action="store_false", default=None, help="skip the warm-up run at load"
    )
    parser.add_argument(
        "--max-tokens-per-chunk", type=int, metavar="N", help="upper bound of each chunk's speech-token budget"
    )
    parser.add_argument(
        "--remote-bind",
        metavar="HOST:PORT",
        help="also serve other computers with CURVE on HOST:PORT for this run (docs/security.md)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    return parser


def set_openmp_waiting(env: MutableMapping[str, str], platform: str) -> None:
    """How long an idle OpenMP thread spins before it sleeps; the user's own setting wins.

    Linux's torch uses GNU OpenMP: a short spin (``GOMP_SPINCOUNT`` 20000,
    tens of microseconds) keeps a decode step's many small parallel regions
    fast, and the threads still sleep before they hold a core another program
    wants. Measured (2-core CPU, Turbo's T3 in int8, ms a token): alone
    PASSIVE 40.7, spin 20000 31.4, torch's default 32.1; beside one busy
    program with two threads PASSIVE 55, spin 20000 109, default 490 (the
    daemon gives T3 one thread there once it sees the load: ``CpuShare``).
    Elsewhere (Intel or LLVM OpenMP) PASSIVE, as measured before.
    """
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        return
    if platform.startswith("linux"):
        env["GOMP_SPINCOUNT"] = "20000"
    else:
        env["OMP_WAIT_POLICY"] = "PASSIVE"


def run(args: argparse.Namespace) -> int:
    """Start the daemon with parsed flags; return the exit status."""
    # chatterbox uses a few ops MPS lacks; let torch run those on the CPU rather
    # than fail. Set before torch is imported, whoever started us (app, launchd, CLI).
    os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")
    # T3 and S3Gen run torch on two threads at once, beside whatever else the
    # user runs: an idle OpenMP thread must not spin for long for a core
    # another thread needs (measured: docs/engine.md, "A shared CPU"). Read by
    # the OpenMP runtime when torch loads it, so set before the first import.
    set_openmp_waiting(os.environ, sys.platform)
    # A voice clip is someone's voice: whatever the daemon writes (clips, the
    # cache, the log) is for its user alone, even under a world-readable home.
    os.umask(0o077)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    quiet_libraries()
    overrides = {
        k: getattr(args, k) for k in ("variant", "checkpoint", "device", "engine", "warmup", "max_tokens_per_chunk")
    }
    import zmq

    from ..ipc.remote import RemoteError
    from .instance import AlreadyRunning
    from .server import Server

    try:
        settings = load_settings(overrides=overrides)
        remote = load_remote_settings(bind=args.remote_bind)
    except (TypeError, ValueError, RemoteError) as exc:
        return _failed(str(exc), 2)
    try:
        server = Server(settings, remote)
    except AlreadyRunning as exc:
        return _failed(str(exc), 3)
    except OSError as exc:
        return _failed(f"cannot set up the runtime folder: {exc}", 1)
    try:
        return server.run()
    except (RemoteError, zmq.ZMQError) as exc:  # a bad key file, a port in use
        return _failed(f"cannot serve the network: {exc}", 1)


def _failed(message: str, status: int) -> int:
    print(f"chatterbox-tray daemon: {message}", file=sys.stderr)
    return status


def quiet_libraries() -> None:
    """Keep the log about the daemon: no progress bars, no third-party debug chatter.

    chatterbox draws a tqdm bar per chunk and numba logs every compiled
    function at debug level; neither helps someone reading daemon.log.
    """
    os.environ.setdefault("TQDM_DISABLE", "1")
    for name in ("numba", "matplotlib", "urllib3", "filelock", "huggingface_hub", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (".*pkg_resources is deprecated.*", ".*LoRACompatibleLinear.*", ".*sdp_kernel.*"):
        warnings.filterwarnings("ignore", message=pattern)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
