"""Zeroconf (mDNS) announcement of the Wyoming server, so Home Assistant finds it by itself.

Off unless asked for (``serve wyoming --zeroconf``, or the daemon's
``bridge_wyoming_zeroconf`` setting): Wyoming has no password, so a server
should be found by every device on the network only on purpose. Home
Assistant's Wyoming integration browses ``_wyoming._tcp.local.`` and offers
each server it finds under **Settings → Devices & services → Discovered**.

Announcing a loopback address would tell other machines to connect to
themselves, so the server must listen on an address they can reach; for
``0.0.0.0`` the address announced is the one this machine reaches the LAN
from (the address a socket "connected" to the mDNS group gets; no packet is
sent).
"""

from __future__ import annotations

import logging
import re
import socket
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)

SERVICE_TYPE = "_wyoming._tcp.local."
_MDNS_GROUP = ("224.0.0.251", 5353)


def lan_address() -> str:
    """The IPv4 address this machine reaches the local network from."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(_MDNS_GROUP)  # UDP connect: picks a route and an address, sends nothing
        return sock.getsockname()[0]


def announced_address(uri: str) -> tuple[str, int]:
    """(IPv4 address, port) to announce for a server listening at ``uri``; ValueError in plain words."""
    parsed = urlparse(uri)
    if parsed.scheme != "tcp" or parsed.port is None:
        raise ValueError(f"zeroconf needs a tcp://HOST:PORT address to announce, not {uri!r}")
    host = parsed.hostname or "0.0.0.0"
    if host in ("0.0.0.0", "::", ""):
        host = lan_address()
    else:
        try:
            host = socket.gethostbyname(host)
        except OSError as exc:
            raise ValueError(f"cannot resolve {host!r} to announce it: {exc}") from None
    if host.startswith("127.") or host == "::1":
        raise ValueError(
            f"{uri} is reachable from this machine only, so announcing it would help nobody; "
            "listen on tcp://0.0.0.0:PORT (or this machine's LAN address) to use zeroconf"
        )
    return host, parsed.port


class Announcement:
    """One registered ``_wyoming._tcp`` service; ``close`` withdraws it (a goodbye packet)."""

    def __init__(self) -> None:
        self._zc: Any = None
        self._info: Any = None

    async def start(self, name: str, host: str, port: int) -> str:
        """Register ``name`` at host:port; returns the full service name."""
        from zeroconf import IPVersion
        from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

        label = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname()).strip("-") or "chatterbox-tray"
        full = f"{name}.{SERVICE_TYPE}"
        self._info = AsyncServiceInfo(
            SERVICE_TYPE,
            full,
            addresses=[socket.inet_aton(host)],
            port=port,
            properties={"program": "chatterbox-tray"},
            server=f"{label}.local.",
        )
        self._zc = AsyncZeroconf(interfaces=[host], ip_version=IPVersion.V4Only)
        # The call returns a task that probes and announces: wait for it, so the
        # name is out (or refused as taken) before we say so.
        await (await self._zc.async_register_service(self._info))
        log.info("announced %s at %s:%d over zeroconf", full, host, port)
        return full

    async def close(self) -> None:
        """Withdraw the service and close the mDNS sockets."""
        if self._zc is None:
            return
        try:
            await (await self._zc.async_unregister_service(self._info))  # the goodbye packets
        finally:
            await self._zc.async_close()
            self._zc = None
