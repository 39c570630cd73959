"""The tray app: a PySide6 client of the daemon (built in the tray app issue)."""
