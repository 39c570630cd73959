"""Wayland: the XDG GlobalShortcuts portal (org.freedesktop.portal.GlobalShortcuts).

Wayland apps cannot grab keys. Desktops that implement this portal (KDE
Plasma 5.27+, GNOME 48+, Hyprland) let an app *ask* for a shortcut: we create
a session, bind one shortcut with our preferred trigger, and the desktop (which
may show the user a dialog to confirm or change it) sends ``Activated`` when it
is pressed. Every call answers through a Request object's ``Response`` signal,
so we subscribe to that path before calling. Plain D-Bus through jeepney, in
a thread of our own: never Qt's event loop.

Without the portal (``org.freedesktop.DBus.Error.ServiceUnknown`` or
``UnknownInterface``), ``register`` says so and the Settings page points to the
command to bind in the desktop's own keyboard settings (docs/hotkey.md).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from typing import Any

from .chords import Backend, Chord, HotkeyError

BUS_NAME = "org.freedesktop.portal.Desktop"
OBJECT_PATH = "/org/freedesktop/portal/desktop"
INTERFACE = "org.freedesktop.portal.GlobalShortcuts"
SHORTCUT_ID = "quick-speak"
#: How long the user may take to confirm the shortcut in the desktop's dialog.
BIND_TIMEOUT_S = 120.0


class PortalBackend(Backend):
    name = "portal"
    may_block = True

    def __init__(self, on_activate: Callable[[], None], bus: str = "SESSION") -> None:
        super().__init__(on_activate)
        self.bus = bus
        self._conn: Any = None
        self._session: str | None = None

    # -- the portal's request/response dance -------------------------------------------

    def _request(self, conn: Any, method: str, signature: str, body: tuple, timeout: float) -> dict[str, Any]:
        """Call a portal method that answers through a Request object; return its results."""
        from jeepney import DBusAddress, MatchRule, message_bus, new_method_call
        from jeepney.io.blocking import Proxy
        from jeepney.wrappers import DBusErrorResponse

        token = "cbt" + secrets.token_hex(6)
        sender = conn.unique_name[1:].replace(".", "_")
        rule = MatchRule(
            type="signal",
            interface="org.freedesktop.portal.Request",
            member="Response",
            path=f"/org/freedesktop/portal/desktop/request/{sender}/{token}",
        )
        Proxy(message_bus, conn).AddMatch(rule)
        body[-1]["handle_token"] = ("s", token)  # the call's options
        portal = DBusAddress(OBJECT_PATH, bus_name=BUS_NAME, interface=INTERFACE)
        with conn.filter(rule) as responses:
            reply = conn.send_and_get_reply(new_method_call(portal, method, signature, body), timeout=10)
            if reply.header.message_type.name == "error":
                raise DBusErrorResponse(reply)
            response = conn.recv_until_filtered(responses, timeout=timeout)
        code, results = response.body
        if code == 1:
            raise HotkeyError("the shortcut was not accepted (cancelled in the desktop's dialog)")
        if code != 0:
            raise HotkeyError(f"the desktop refused the shortcut (portal response {code})")
        return {k: v[1] for k, v in results.items()}

    def register(self, chord: Chord) -> str:
        from jeepney import MatchRule, message_bus
        from jeepney.io.blocking import Proxy, open_dbus_connection
        from jeepney.wrappers import DBusErrorResponse

        self.unregister()
        try:
            conn = open_dbus_connection(bus=self.bus)
        except Exception as exc:
            raise HotkeyError(f"cannot reach the session bus: {exc}") from None
        try:
            session = self._request(
                conn, "CreateSession", "a{sv}", ({"session_handle_token": ("s", "cbt" + secrets.token_hex(4))},), 10
            )["session_handle"]
            shortcut = {"description": ("s", "Speak the selected text (press again to stop)")}
            shortcut["preferred_trigger"] = ("s", chord.xdg_trigger())
            shortcuts = [(SHORTCUT_ID, shortcut)]
            bound = self._request(
                conn, "BindShortcuts", "oa(sa{sv})sa{sv}", (session, shortcuts, "", {}), BIND_TIMEOUT_S
            )
        except DBusErrorResponse as exc:
            conn.close()
            if "ServiceUnknown" in exc.name or "UnknownMethod" in exc.name or "UnknownInterface" in exc.name:
                raise HotkeyError("this desktop offers no GlobalShortcuts portal") from None
            raise HotkeyError(f"the GlobalShortcuts portal failed: {exc.name}: {exc.data}") from None
        except TimeoutError:
            conn.close()
            raise HotkeyError("the GlobalShortcuts portal did not answer") from None
        except HotkeyError:
            conn.close()
            raise
        trigger = ""
        for shortcut_id, props in bound.get("shortcuts") or []:
            if shortcut_id == SHORTCUT_ID:
                trigger = props.get("trigger_description", ("s", ""))[1]
        rule = MatchRule(type="signal", interface=INTERFACE, member="Activated", path=OBJECT_PATH)
        Proxy(message_bus, conn).AddMatch(rule)
        self._conn, self._session = conn, session
        self._listen(self._run, "hotkey-portal", conn, rule, session)
        return f"{trigger or chord} (desktop shortcut)"

    def _run(self, conn: Any, rule: Any, session: str) -> None:
        with conn.filter(rule) as activations:
            while not self._stop.is_set():
                try:
                    signal = conn.recv_until_filtered(activations, timeout=0.25)
                except TimeoutError:
                    continue
                except Exception:  # the bus went away
                    return
                session_handle, shortcut_id = signal.body[0], signal.body[1]
                if session_handle == session and shortcut_id == SHORTCUT_ID:
                    self.on_activate()

    def unregister(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        self._stop_listening()
        if self._session:
            from jeepney import DBusAddress, new_method_call

            session = DBusAddress(self._session, bus_name=BUS_NAME, interface="org.freedesktop.portal.Session")
            with contextlib.suppress(Exception):
                conn.send(new_method_call(session, "Close"))
        self._session = None
        conn.close()
