"""The daemon's settings: one JSON file in the user config dir, flags on top.

Every setting is declared in ``ipc/settings_schema.py`` (type, default, range,
label, help). The daemon is the only owner of this file; clients read and
change settings through it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, field, fields, make_dataclass, replace
from pathlib import Path
from typing import Any

from ..ipc import endpoints
from ..ipc.atomic import write_atomic
from ..ipc.remote import RemoteSettings, remote_settings
from ..ipc.settings_schema import SETTINGS
from .storage import disk_full_as_error

log = logging.getLogger(__name__)

VARIANTS, DEVICES, ENGINES = (tuple(SETTINGS[name].choices) for name in ("variant", "device", "engine"))
#: Settings fixed for a daemon's run: the command line's, not clients' ("engine" picks the fake engine for tests).
READ_ONLY = tuple(s.name for s in SETTINGS.values() if not s.editable)
#: Settings that take effect only when the model is loaded again (``reload``).
NEEDS_RELOAD = tuple(s.name for s in SETTINGS.values() if s.needs_reload)


class _Checks:
    """``Settings``' methods; its fields come from ``ipc/settings_schema.py``."""

    @staticmethod
    def editable() -> tuple[str, ...]:
        """The settings clients may change (``settings.set``), in declaration order."""
        return tuple(s.name for s in SETTINGS.values() if s.editable)

    def validate(self) -> Settings:
        """Raise ValueError naming the first bad value (wrong type included)."""
        for spec in SETTINGS.values():
            problem = spec.problem(getattr(self, spec.name))
            if problem:
                raise ValueError(problem)
        if not self.bridge_wyoming_uri.startswith(("tcp://", "unix://")):
            raise ValueError("bridge_wyoming_uri must start with tcp:// (or unix://), e.g. tcp://127.0.0.1:10200")
        if self.bridge_wyoming_zeroconf and _loopback_uri(self.bridge_wyoming_uri):
            raise ValueError(
                "bridge_wyoming_zeroconf needs bridge_wyoming_uri on an address other machines reach "
                "(e.g. tcp://0.0.0.0:10200), not loopback"
            )
        return self  # type: ignore[return-value]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)  # type: ignore[call-overload]


#: Everything the daemon can be told, frozen: one field per setting of the schema, with its default.
Settings = make_dataclass(
    "Settings",
    [(s.name, s.type, field(default=s.default)) for s in SETTINGS.values()],
    bases=(_Checks,),
    frozen=True,
)
Settings.__module__ = __name__


def _loopback_uri(uri: str) -> bool:
    """A tcp:// address only this machine reaches (or a unix:// socket): nothing to announce."""
    from urllib.parse import urlparse

    host = urlparse(uri).hostname or ""
    return not uri.startswith("tcp://") or host in ("localhost", "::1") or host.startswith("127.")


def load_settings(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Read the settings file (missing or broken: defaults, logged) and apply overrides."""
    path = path or endpoints.settings_file()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        raw = {}
    except (OSError, ValueError) as exc:
        log.error("settings: %s is unreadable (%s); using defaults", path, exc)
        raw = {}
    known = {f.name for f in fields(Settings)}
    for key in raw:
        if key not in known and key != REMOTE_KEY:  # remote: read by load_remote_settings
            log.warning("settings: ignoring unknown key %r in %s", key, path)
    try:
        settings = replace(Settings(), **{k: v for k, v in raw.items() if k in known}).validate()
    except (TypeError, ValueError) as exc:
        log.error("settings: %s has a bad value (%s); using defaults", path, exc)
        settings = Settings()
    if overrides:
        settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None}).validate()
    return settings


#: settings.json's object for serving other computers (ipc/remote.py,
#: docs/security.md). Not a ``Settings`` field: no client may change it over
#: any socket, only the daemon's owner by editing the file.
REMOTE_KEY = "remote"


def load_remote_settings(path: Path | None = None, bind: str | None = None) -> RemoteSettings:
    """settings.json's ``remote`` object; ``bind`` (``--remote-bind``) turns it on for one run.

    Raises RemoteError on a bad value: a daemon asked to serve the network
    must not silently serve it some other way.
    """
    current = remote_settings(_saved(path or endpoints.settings_file()).get(REMOTE_KEY))
    if bind:
        current = remote_settings({**asdict(current), "enabled": True, "bind": bind})
    return current


def save_changes(changes: dict[str, Any], path: Path | None = None) -> None:
    """Merge ``changes`` into the settings file, atomically.

    Only what a client changed is written: a flag the daemon was started with
    (``--variant``, ``--engine``) stays a flag for that run, not a saved setting.
    """
    path = path or endpoints.settings_file()
    _write({**_saved(path), **changes}, path)


def _saved(path: Path) -> dict[str, Any]:
    """The settings file's object; empty when it is missing, unreadable or not an object."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _write(values: dict[str, Any], path: Path) -> None:
    with disk_full_as_error("the settings", path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(values, indent=2) + "\n", site="settings")
