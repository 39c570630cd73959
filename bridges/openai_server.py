"""The OpenAI-compatible speech endpoint: ``POST /v1/audio/speech`` and friends.

Built on the standard library's ``ThreadingHTTPServer``: one thread per
connection fits the blocking ZeroMQ client (one socket per thread), it does
HTTP/1.1 keep-alive, and we write chunked bodies and server-sent events
ourselves in a few lines. It imports in about 40 ms where aiohttp took 490 ms
and starlette with uvicorn 440 ms on the same machine (docs/benchmarks.md),
and it adds no dependency.

Routes (all under ``/v1``; see docs/openai.md):

- ``POST /v1/audio/speech``: text to audio, streamed as it is made;
- ``GET /v1/models``: the model names ``model`` accepts;
- ``GET /v1/audio/voices``: the voice library and the OpenAI voice table;
- ``GET /v1/audio/models``: the models again, in the shape Open WebUI reads;
- ``GET /health``: the daemon's state, for supervisors (no key needed).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import ipaddress
import json
import logging
import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..ipc.client import DaemonUnavailable
from ..ipc.limits import RATE_RANGE
from ..ipc.messages import StateEvent, VoiceInfo
from ..ipc.protocol import ProtocolError
from ..ipc.settings_schema import SETTINGS
from . import encoders, upstream
from .upstream import OPENAI_VOICES, DaemonClients, UnknownVoice, VoiceTable, open_synthesis, resolve_voice

log = logging.getLogger("chatterbox_tray.bridges.openai")

#: The largest request body accepted: the daemon's longest text (100 000
#: characters by default) is at most 400 kB in UTF-8, with room for JSON escapes.
DEFAULT_MAX_BODY = 1 << 20
#: How much of a body refused unread is thrown away after the answer, and for how
#: long, before the connection closes (`Handler._discard_body` says why).
DISCARD_MAX_BYTES = 64 << 20
DISCARD_MAX_S = 10.0
#: While discarding, the longest silence before we give up on the rest.
DISCARD_IDLE_S = 2.0
#: OpenAI's model names, accepted as aliases of the loaded model.
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
#: The models a daemon may have loaded (the ``variant`` setting's choices but "auto").
VARIANTS = tuple(v for v in SETTINGS["variant"].choices if v != "auto")
#: Generation options passed through to the daemon when a request carries them (our extension).
PASSTHROUGH_OPTIONS = ("exaggeration", "cfg_weight", "temperature", "seed", "language")
SPEED_RANGE = (0.25, 4.0)
#: Seconds a client is told to wait while the model loads, or the daemon is away.
RETRY_LOADING_S = 5
RETRY_FAILED_S = 60


class ApiError(Exception):
    """An error answered in OpenAI's JSON shape."""

    def __init__(
        self, status: int, message: str, code: str, param: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        """``{"error": {"message", "type", "param", "code"}}`` as OpenAI sends it."""
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


#: The daemon's error codes (docs/protocol.md) -> HTTP status, OpenAI code, param.
DAEMON_ERRORS: dict[str, tuple[int, str, str | None]] = {
    "bad_args": (400, "invalid_value", None),
    "too_large": (413, "input_too_long", "input"),
    "empty_text": (400, "empty_input", "input"),
    "bad_markup": (400, "invalid_markup", "input"),
    # the request is sound; the user's own pronunciation rules failed on it (too slow)
    "bad_rule": (422, "pronunciation_rule_failed", "input"),
    "unknown_voice": (400, "voice_not_found", "voice"),
    "unknown_language": (400, "unsupported_language", "language"),
    "not_ready": (503, "model_not_ready", None),
    "busy": (503, "model_busy", None),
    "cancelled": (503, "cancelled", None),
    "model_failed": (500, "model_failed", None),
    "internal": (500, "internal_error", None),
}


def daemon_error(exc: ProtocolError) -> ApiError:
    """The HTTP answer to an error the daemon sent."""
    status, code, param = DAEMON_ERRORS.get(exc.code, (500, exc.code, None))
    if exc.code.startswith("clip_"):
        status, code, param = 400, exc.code, "voice"
    retry = None
    if status == 503:
        retry = RETRY_FAILED_S if exc.code == "not_ready" else RETRY_LOADING_S
    return ApiError(status, exc.message or exc.code, code, param, retry)


def unavailable(exc: Exception) -> ApiError:
    """The daemon is not running or does not answer."""
    return ApiError(503, upstream.NOT_ANSWERING.format(exc), "daemon_unavailable", retry_after=RETRY_LOADING_S)


@dataclass
class Config:
    """What ``serve openai`` was started with."""

    host: str = "127.0.0.1"
    port: int = 8880
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    max_body: int = DEFAULT_MAX_BODY
    voice_table: Path | None = None
    connection: Path | None = None


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine."""
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False


def check_bind(config: Config) -> None:
    """Refuse a bind that would expose the server without a key (ValueError says why)."""
    if not config.api_key and not is_loopback(config.host):
        raise ValueError(
            f"refusing to listen on {config.host!r} without an API key: anyone on the network could use the model. "
            "Set --api-key (or CHATTERBOX_TRAY_OPENAI_API_KEY), or listen on 127.0.0.1"
        )


def model_names(variant: str) -> list[str]:
    """The ``model`` values that mean the loaded model, as /v1/models lists them."""
    return ["chatterbox", f"chatterbox-{variant}", *OPENAI_MODELS]


def check_model(model: Any, variant: str) -> None:
    """Accept OpenAI's names, ``chatterbox`` and the loaded variant's names; else a clear 400."""
    if not isinstance(model, str) or not model:
        raise ApiError(
            400, "'model' is required: use tts-1, tts-1-hd, gpt-4o-mini-tts or chatterbox", "invalid_value", "model"
        )
    name = model.strip().lower()
    wanted = name.removeprefix("chatterbox-")
    if name in OPENAI_MODELS or name.startswith("gpt-4o-mini-tts-") or name == "chatterbox" or wanted == variant:
        return
    if wanted in VARIANTS:
        raise ApiError(
            400,
            f"the daemon has the {variant} model loaded, not {wanted}; ask for 'chatterbox' (or tts-1), "
            f"or switch models with `chatterbox-tray settings variant={wanted}` and `chatterbox-tray reload`",
            "model_not_loaded",
            "model",
        )
    raise ApiError(
        400, f"unknown model {model!r}; use one of: " + ", ".join(model_names(variant)), "model_not_found", "model"
    )


@dataclass
class SpeechRequest:
    """A checked ``/v1/audio/speech`` body."""

    text: str
    model: str
    voice: str | None
    response_format: str
    stream_format: str
    #: OpenAI's ``speed`` as given (None: absent, the daemon's ``rate`` setting applies).
    speed: float | None
    options: dict[str, Any]

    @property
    def rate(self) -> float | None:
        """The daemon's speaking rate for ``speed``: OpenAI's 0.25-4.0 held to the daemon's 0.5-2.0.

        Clamped, not refused: OpenAI accepts the whole range, and a client with
        a 4x slider should get our fastest speech rather than an error.
        """
        if self.speed is None:
            return None
        return min(RATE_RANGE[1], max(RATE_RANGE[0], self.speed))


def parse_speech(body: dict[str, Any]) -> SpeechRequest:
    """Check the request's fields (not the model or voice, which need the daemon)."""
    text = body.get("input")
    if not isinstance(text, str):
        raise ApiError(400, "'input' is required and must be a string: the text to speak", "invalid_value", "input")
    voice = body.get("voice")
    if isinstance(voice, dict):  # OpenAI's custom voice object {"id": "..."}
        voice = voice.get("id")
    if voice is not None and not isinstance(voice, str):
        raise ApiError(400, "'voice' must be a voice name", "invalid_value", "voice")
    fmt = body.get("response_format", "mp3")
    if not isinstance(fmt, str):
        raise ApiError(400, "'response_format' must be a string", "invalid_value", "response_format")
    try:
        fmt = encoders.check_format(fmt)
    except encoders.UnsupportedFormat as exc:
        raise ApiError(400, str(exc), "unsupported_format", "response_format") from None
    stream = body.get("stream_format", "audio")
    if stream not in ("audio", "sse"):
        raise ApiError(400, "'stream_format' must be 'audio' or 'sse'", "invalid_value", "stream_format")
    speed = body.get("speed")
    if speed is not None:
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not math.isfinite(speed):
            raise ApiError(400, "'speed' must be a number from 0.25 to 4.0", "invalid_value", "speed")
        if not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]:
            raise ApiError(400, f"'speed' must be from 0.25 to 4.0, not {speed}", "invalid_value", "speed")
        speed = float(speed)
    options = {k: body[k] for k in PASSTHROUGH_OPTIONS if body.get(k) is not None}
    return SpeechRequest(text, body.get("model"), voice, fmt, stream, speed, options)  # type: ignore[arg-type]


class BridgeServer(ThreadingHTTPServer):
    """The HTTP server with the bridge's configuration, bound at once (ValueError: refused; OSError: port taken)."""

    daemon_threads = True
    # Many clients (a browser, an editor) open several keep-alive connections.
    request_queue_size = 64

    def __init__(self, config: Config) -> None:
        check_bind(config)
        self.config = config
        self.link = DaemonClients(config.connection)
        self.voice_table = VoiceTable(config.voice_table)
        self.address_family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        super().__init__((config.host.strip("[]"), config.port), Handler)

    @property
    def url(self) -> str:
        """The base URL clients use (``http://127.0.0.1:8880/v1``)."""
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}/v1"


class Handler(BaseHTTPRequestHandler):
    """One connection; requests on it are handled one after the other (keep-alive)."""

    protocol_version = "HTTP/1.1"
    server: BridgeServer
    # Headers and body leave in separate writes: with Nagle's algorithm on, the
    # body would wait for the client's delayed ACK (40 ms a request, measured).
    disable_nagle_algorithm = True
    #: Seconds a silent client may hold the connection (also bounds a slow body).
    timeout = 60
    error_content_type = "application/json"

    # -- plumbing -------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)

    def _origin_allowed(self) -> str | None:
        origin = self.headers.get("Origin")
        allowed = self.server.config.cors_origins
        if origin and (origin in allowed or "*" in allowed):
            return origin
        return None

    def _common_headers(self) -> None:
        origin = self._origin_allowed()
        if origin:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")
            self.send_header("Access-Control-Expose-Headers", "X-Chatterbox-Job, Retry-After")

    def _send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self._common_headers()
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_error(self, err: ApiError) -> None:
        unread = self.command == "POST" and not getattr(self, "_body_read", False)
        if unread:
            self.close_connection = True  # an unread body would be taken for the next request
        headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else {}
        if err.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if self.close_connection:
            headers["Connection"] = "close"
        self._send_json(err.status, err.body(), headers)
        if unread:
            self._discard_body()

    def _content_length(self) -> int | None:
        """The Content-Length header's number; None where there is none (or chunked, or garbled)."""
        try:
            return int(self.headers.get("Content-Length", ""))
        except ValueError:
            return None

    def _discard_body(self) -> None:
        """Read and drop the unread body (bounded) so that closing does not reset the connection.

        Closing a socket with unread bytes sends a reset, and a client still
        writing its body (Python's http.client sends it all before it reads)
        gets a broken pipe before it reads our answer. So the answer goes
        first, then the body is read and thrown away: at most
        ``DISCARD_MAX_BYTES`` in ``DISCARD_MAX_S``, giving up after
        ``DISCARD_IDLE_S`` of silence (a client that sent ``Expect:
        100-continue`` and got a final answer sends nothing). A bigger body is
        still cut off, as any server must do at some size.
        """
        budget = min(self._content_length() or 0, DISCARD_MAX_BYTES)  # none: nothing tells where the body ends
        if budget <= 0:
            return
        try:
            self.wfile.flush()
            self.connection.settimeout(DISCARD_IDLE_S)
            deadline = time.monotonic() + DISCARD_MAX_S
            while budget > 0 and time.monotonic() < deadline:
                data = self.rfile.read1(min(budget, 1 << 16))
                if not data:
                    break
                budget -= len(data)
        except OSError:  # a timeout, a reset: the client is gone or stalled
            pass
        finally:
            self._body_read = True

    def handle_expect_100(self) -> bool:
        """Refuse an oversized body before it is sent, where the client asked first (curl does)."""
        if self.command == "POST" and (self._content_length() or 0) > self.server.config.max_body:
            self._body_read = False
            self._send_error(self._too_large())
            return False
        return super().handle_expect_100()

    def _too_large(self) -> ApiError:
        return ApiError(413, f"the request body is over {self.server.config.max_body} bytes", "request_too_large")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (a malformed request line, ...) in OpenAI's shape."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self.close_connection = True
        self._send_json(code, ApiError(code, message or phrase, phrase.lower().replace(" ", "_")).body())

    def _dispatch(self, route: Callable[[], None], auth: bool) -> None:
        """Answer with ``route`` (after the key check with ``auth``); every error in OpenAI's shape."""
        self._body_read = False
        try:
            self._check_host()
            if auth:
                self._check_auth()
            route()
        except ApiError as err:
            self._send_error(err)
        except ProtocolError as exc:
            self._send_error(daemon_error(exc))
        except DaemonUnavailable as exc:
            self._send_error(unavailable(exc))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # never a traceback to the client; the log has it
            log.exception("error handling %s %s", self.command, self.path)
            self._send_error(ApiError(500, "internal error in the bridge; its log has the details", "internal_error"))

    def _check_host(self) -> None:
        """Without a key on loopback, answer only requests addressed to this machine.

        A web page can point a name it controls at 127.0.0.1 (DNS rebinding) and
        so reach a loopback server; its requests then carry that name in Host.
        """
        if self.server.config.api_key:
            return
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name.startswith("[") and "]" in name:
            name = name[1 : name.index("]")]
        if name in ("localhost", "") or name.endswith(".localhost") or is_loopback(name):
            return
        raise ApiError(403, f"requests for host {host!r} are refused: use 127.0.0.1 or localhost", "forbidden_host")

    def _check_auth(self) -> None:
        key = self.server.config.api_key
        if not key:
            return
        given = self.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
            raise ApiError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'", "invalid_api_key")

    def _read_json(self) -> dict[str, Any]:
        """The request's JSON object; refused before the body is read, it is not (`_send_error`)."""
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            raise ApiError(
                411, "send the body with a Content-Length (chunked bodies are not accepted)", "length_required"
            )
        length = self._content_length()
        if length is None:
            raise ApiError(411, "a Content-Length header is required", "length_required")
        if length < 0:
            raise ApiError(400, "the Content-Length header is negative", "invalid_value")
        if length > self.server.config.max_body:
            raise self._too_large()
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        raw = self.rfile.read(length)
        self._body_read = True
        if ctype != "application/json":
            # Also keeps browsers' "simple" cross-site posts (text/plain forms) out.
            raise ApiError(415, "send the body as JSON with 'Content-Type: application/json'", "unsupported_media_type")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"the body is not valid JSON: {exc}", "invalid_json") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object", "invalid_json")
        return body

    # -- routes ----------------------------------------------------------------------

    def do_OPTIONS(self) -> None:
        """CORS preflight: answered for listed origins only."""
        origin = self._origin_allowed()
        self.send_response(204 if origin else 403)
        if origin:
            self._common_headers()
            self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
            self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        routes = {"/v1/models": self._models, "/v1/audio/models": self._audio_models, "/v1/audio/voices": self._voices}
        if path.startswith("/v1/models/"):
            routes[path] = partial(self._model, path.removeprefix("/v1/models/"))
        if path == "/health":  # for supervisors: no key needed
            self._dispatch(self._health, auth=False)
        else:
            self._dispatch(routes.get(path, self._not_found), auth=path in routes)

    def do_POST(self) -> None:
        speech = self.path.split("?", 1)[0].rstrip("/") == "/v1/audio/speech"
        self._dispatch(self._speech if speech else self._not_found, auth=speech)  # not found: the body stays unread

    def _not_found(self) -> None:
        raise ApiError(404, f"no route {self.command} {self.path.split('?', 1)[0]}; see docs/openai.md", "not_found")

    # A ProtocolError or DaemonUnavailable below is answered by `_dispatch`.

    def _model_list(self) -> list[dict[str, Any]]:
        with self.server.link.client() as client:
            variant = StateEvent.from_data(client.status()).variant
        return [{"id": m, "object": "model", "created": 0, "owned_by": "chatterbox-tray"} for m in model_names(variant)]

    def _models(self) -> None:
        self._send_json(200, {"object": "list", "data": self._model_list()})

    def _model(self, name: str) -> None:
        for model in self._model_list():
            if model["id"] == name:
                self._send_json(200, model)
                return
        raise ApiError(404, f"no model {name!r}", "model_not_found", "model")

    def _audio_models(self) -> None:
        self._send_json(200, {"models": [{"id": m["id"], "name": m["id"]} for m in self._model_list()]})

    def _voices(self) -> None:
        with self.server.link.client() as client:
            voices = client.voices_list()
        table = self.server.voice_table.table()
        listed = [VoiceInfo.from_data(v) for v in voices]
        default = next((v.name for v in listed if v.default), None)
        library = {v.name.casefold(): v.name for v in listed}
        aliases = {name: library.get((table.get(name) or "").casefold()) or default for name in OPENAI_VOICES}
        items = [
            {"id": v["name"], "name": v["name"], "default": v["default"], "duration_s": v["duration_s"]} for v in voices
        ]
        self._send_json(200, {"voices": items, "count": len(items), "default": default, "aliases": aliases})

    def _health(self) -> None:
        try:
            with self.server.link.client() as client:
                status = StateEvent.from_data(client.status())
        except (DaemonUnavailable, ProtocolError) as exc:
            self._send_json(503, {"status": "unavailable", "error": str(exc)}, {"Retry-After": str(RETRY_LOADING_S)})
            return
        ok = status.state in ("ready", "sleeping")  # asleep: the next request wakes it
        self._send_json(200 if ok else 503, {"status": status.state, "variant": status.variant})

    # -- speech ----------------------------------------------------------------------

    def _speech(self) -> None:
        req = parse_speech(self._read_json())
        with self.server.link.client() as client:
            status = StateEvent.from_data(client.status())
            check_model(req.model, status.variant)
            if status.state == "failed":
                raise ApiError(
                    503,
                    f"the model failed to load: {status.error} (fix it, then `chatterbox-tray retry`)",
                    "model_not_ready",
                    retry_after=RETRY_FAILED_S,
                )
            if status.state not in ("ready", "sleeping"):  # a sleeping model wakes for this request
                raise ApiError(
                    503,
                    f"the model is {status.state.replace('_', ' ')} ({status.progress * 100:.0f}%); "
                    f"try again in a few seconds",
                    "model_not_ready",
                    retry_after=RETRY_LOADING_S,
                )
            try:
                voice = resolve_voice(req.voice, client.voices_list(), self.server.voice_table.table())
            except UnknownVoice as exc:
                raise ApiError(400, str(exc), "voice_not_found", "voice") from None
            stream = open_synthesis(client, req.text, voice, req.options, rate=req.rate)
            self._stream_speech(req, stream)

    def _stream_speech(self, req: SpeechRequest, stream: Any) -> None:
        """Send the audio as it is made: a chunked body, or server-sent events."""
        sse = req.stream_format == "sse"
        chunked = self.request_version != "HTTP/1.0"
        enc: encoders.Encoder | None = None
        self.send_response(200)
        if sse:
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
        else:
            self.send_header("Content-Type", encoders.FORMATS[req.response_format][0])
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.close_connection = True
        self.send_header("X-Chatterbox-Job", stream.job or "")
        self._common_headers()
        self.end_headers()

        def emit_raw(data: bytes) -> None:
            self.wfile.write(b"%x\r\n%b\r\n" % (len(data), data) if chunked else data)
            self.wfile.flush()

        def emit(data: bytes) -> None:
            if data:
                audio = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")}
                emit_raw(_sse(audio) if sse else data)

        try:
            for chunk in stream:
                if enc is None:
                    enc = encoders.encoder(req.response_format, chunk.sample_rate)
                # Quarter-second slices: an MP3 encoder takes about 60 ms per second of
                # audio on a busy 2-core machine, so a whole chunk would hold back its first bytes.
                step = max(1, chunk.sample_rate // 4)
                for i in range(0, len(chunk.samples), step):
                    emit(enc.feed(chunk.samples[i : i + step]))
            if enc is None:
                enc = encoders.encoder(req.response_format, int(stream.summary.get("sample_rate") or 24_000))
            emit(enc.finish())
        except _DISCONNECTED:
            log.info("client went away; cancelling job %s", stream.job)
            stream.cancel()
            self.close_connection = True
            return
        except (ProtocolError, DaemonUnavailable) as exc:
            # The status line has left: an SSE client gets an error event; an
            # audio client gets a body cut short (no closing chunk), which
            # every HTTP client reports as an incomplete read.
            err = daemon_error(exc) if isinstance(exc, ProtocolError) else unavailable(exc)
            log.warning("job %s ended with an error after the response began: %s", stream.job, err.message)
            if sse:
                with contextlib.suppress(*_DISCONNECTED):
                    emit_raw(_sse({"type": "error", **err.body()}))
                    if chunked:
                        emit_raw(b"")
            self.close_connection = True
            return
        # A client that left while the last bytes go is no error.
        with contextlib.suppress(*_DISCONNECTED):
            if sse:
                # No OpenAI tokenizer here: input "tokens" are characters, output tokens are speech tokens.
                tokens = int(stream.summary.get("tokens", 0))
                usage = {"input_tokens": len(req.text), "output_tokens": tokens, "total_tokens": len(req.text) + tokens}
                emit_raw(_sse({"type": "speech.audio.done", "usage": usage}))
            if chunked:
                emit_raw(b"")


#: What writing to a client that went away raises.
_DISCONNECTED = (BrokenPipeError, ConnectionResetError, TimeoutError)


def _sse(event: dict[str, Any]) -> bytes:
    """One server-sent event."""
    return f"data: {json.dumps(event)}\n\n".encode()
