"""A local stand-in for the Hugging Face hub, for download tests (the real hub is out of reach here).

It answers the three requests huggingface_hub's ``model_info`` and
``hf_hub_download`` make, with the headers they read:

- ``GET /api/models/<repo>[/revision/<rev>]``: the repo's commit and files with sizes;
- ``HEAD /<repo>/resolve/<rev>/<file>``: ``X-Repo-Commit``, ``ETag``, ``Content-Length``;
- ``GET`` of the same: the bytes (``Range`` honoured, so a retry resumes),
  paced at ``rate`` bytes a second, optionally pausing once (``stall_s`` after
  ``stall_at`` bytes) or dropping the connection after ``fail_at`` bytes
  (``fail_times`` times).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.daemons import DaemonProcess

COMMIT = "0123456789abcdef0123456789abcdef01234567"
MIB = 1024 * 1024
#: The original model's repository, as chatterbox names it.
REPO = "ResembleAI/chatterbox"


@dataclass
class FakeHub:
    """The repo (files by name) and how to misbehave."""

    repo: str
    files: dict[str, bytes]
    rate: float = 1e12  # bytes a second
    stall_at: int | None = None
    stall_s: float = 0.0
    fail_at: int | None = None
    #: How many times to drop the connection at ``fail_at`` (then serve whole).
    fail_times: int = 1
    requests: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                hub.requests.append(f"{self.command} {self.path}")
                path = self.path.split("?")[0]
                api = re.fullmatch(rf"/api/models/{re.escape(hub.repo)}(?:/revision/[^/]+)?", path)
                if api:
                    return self._json(hub.info())
                m = re.fullmatch(rf"/{re.escape(hub.repo)}/resolve/[^/]+/(.+)", path)
                if not m or m.group(1) not in hub.files:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.end_headers()
                    return None
                data = hub.files[m.group(1)]
                start = 0
                rng = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
                if rng:
                    start = int(rng.group(1))
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if not body:
                    return None
                return self._send_paced(data, start)

            def _send_paced(self, data: bytes, start: int) -> None:
                sent, step = start, 4096
                began = time.monotonic()
                while sent < len(data):
                    if hub.fail_at is not None and hub.fail_times > 0 and sent >= hub.fail_at:
                        hub.fail_times -= 1
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if hub.stall_at is not None and sent >= hub.stall_at:
                        hub.stall_at = None
                        time.sleep(hub.stall_s)
                        began = time.monotonic() - (sent - start) / hub.rate
                    chunk = data[sent : sent + step]
                    try:
                        self.wfile.write(chunk)
                    except OSError:
                        return
                    sent += len(chunk)
                    ahead = (sent - start) / hub.rate - (time.monotonic() - began)
                    if ahead > 0:
                        time.sleep(ahead)

            def _json(self, doc: dict[str, Any]) -> None:
                payload = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="fake-hub", daemon=True).start()
        return self

    def info(self) -> dict[str, Any]:
        return {
            "id": self.repo,
            "modelId": self.repo,
            "sha": COMMIT,
            "private": False,
            "siblings": [
                {"rfilename": name, "size": len(data), "blobId": hashlib.sha1(data).hexdigest()}
                for name, data in self.files.items()
            ],
        }

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def hub_daemon(hub: FakeHub, **extra: str) -> DaemonProcess:
    """A daemon whose load downloads from ``hub`` into its own Hugging Face cache."""
    d = DaemonProcess()
    d.extra_env = {
        "CHATTERBOX_TRAY_FAKE_HUB": f"{REPO}:*.safetensors,*.json",
        "HF_ENDPOINT": hub.endpoint,
        "HF_HOME": str(d.home / "hf"),
        "HF_HUB_OFFLINE": "0",
        **extra,
    }
    return d
