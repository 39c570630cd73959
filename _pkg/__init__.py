"""Chatterbox Tray: a daemon, tray app and CLI around Chatterbox TTS.

The repository keeps `daemon/`, `ipc/` and `gui/` at its top level; installed,
they are `chatterbox_tray.daemon`, `chatterbox_tray.ipc` and
`chatterbox_tray.gui`.
"""

__version__ = "0.1.0"
