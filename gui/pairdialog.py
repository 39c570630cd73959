"""Pair with a daemon on another computer: what ``chatterbox-tray remote add NAME HOST CODE`` does, in a form.

The exchange itself is ``ipc.pairing.pair`` (the CLI's own function). It
talks to the other computer and stretches the code with scrypt, so it runs
on a helper thread: the window stays live, and a daemon that does not answer
is said after ``pairing.PAIR_TIMEOUT_S``. Wrong, used and expired codes come
back as the daemon's plain words, and nothing is changed.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..ipc import pairing, remote
from .widgets import arrange


class PairDialog(QDialog):
    """Name, host and code; Pair. ``paired(name)`` once a daemon is pinned; ``use(name)`` to switch to it."""

    paired = Signal(str)
    use = Signal(str)
    _done = Signal(object)  # pairing.Paired or an error message (from the helper thread)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Pair with a daemon")
        self.name = QLineEdit(objectName="pairName", placeholderText="gpu-box")
        self.name.setToolTip("What to call that daemon on this computer")
        port = remote.DEFAULT_PORT
        self.host = QLineEdit(objectName="pairHost", placeholderText=f"gpu-box.local or 192.168.1.10:{port}")
        self.host.setToolTip(f"Its address: HOST, or HOST:PORT (port {port} unless its owner chose another)")
        self.code = QLineEdit(objectName="pairCode", placeholderText="7KQD-M9XD-3FHT")
        self.code.setToolTip("The code `chatterbox-tray remote invite` shows on that computer (once, for 5 minutes)")
        help_text = QLabel(
            "On the computer with the GPU, run <code>chatterbox-tray remote invite</code> and type the code it "
            "shows here. Its daemon must serve the network (<code>remote.enabled</code>, docs/security.md).",
            wordWrap=True,
            styleSheet="color: palette(placeholder-text);",
        )
        self.message = QLabel(objectName="pairMessage", wordWrap=True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # copy the key
        self.message.hide()
        self.pair_button = QPushButton("Pair", objectName="pairButton", default=True, clicked=self.start)
        self.use_button = QPushButton("Use it now", objectName="pairUse", clicked=self._use)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, rejected=self.reject)
        buttons.addButton(self.use_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.pair_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.use_button.hide()  # after addButton, which shows it: only once a pairing worked
        form = arrange(QFormLayout(), ("Name", self.name), ("Host", self.host), ("Code", self.code))
        arrange(QVBoxLayout(self), help_text, form, self.message, buttons)
        self.setMinimumWidth(460)
        self.busy = False
        self.last: pairing.Paired | None = None
        self._done.connect(self._finished)

    def start(self) -> None:
        """Check the form, then pair on a helper thread (the window stays live)."""
        name, host, code = self.name.text().strip(), self.host.text().strip(), self.code.text().strip()
        try:
            remote.check_name(name, "the name")
            if name == "local":
                raise remote.RemoteError("'local' means this computer's own daemon: choose another name")
            if not host:
                raise remote.RemoteError("type the other computer's address (HOST or HOST:PORT)")
            remote.split_host_port(host, remote.DEFAULT_PORT)
            pairing.parse_code(code)
        except remote.RemoteError as exc:
            self._say(f"Not paired: {exc}", error=True)
            return
        self.busy = True
        self.pair_button.setEnabled(False)
        self.use_button.hide()
        self._say(f"Pairing with {host}…")

        def work() -> None:
            try:
                result: object = pairing.pair(name, host, code, remote.default_client_name())
            except remote.RemoteError as exc:
                result = str(exc)
            except Exception as exc:  # a bug must not leave the form waiting forever
                result = f"pairing failed: {exc}"
            self._done.emit(result)

        threading.Thread(target=work, name="pairing", daemon=True).start()

    def _finished(self, result: object) -> None:
        self.busy = False
        self.pair_button.setEnabled(True)
        if isinstance(result, str):
            self._say(f"Not paired: {result}", error=True)
            return
        assert isinstance(result, pairing.Paired)
        self.last = result
        d = result.daemon
        self._say(
            f"Paired with {d.name} ({d.where}). Its key is {result.fingerprint}: check that it is the key "
            f"<code>remote invite</code> showed there. That daemon knows this computer as "
            f"'{result.client_name}'."
        )
        self.code.clear()
        self.use_button.setText(f"Use {d.name} now")
        self.use_button.show()
        self.paired.emit(d.name)

    def _use(self) -> None:
        if self.last is not None:
            self.use.emit(self.last.daemon.name)
        self.accept()

    def _say(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #b3261e;" if error else "")
        self.message.show()
