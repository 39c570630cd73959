"""The OpenAI-compatible endpoint, driven by the official ``openai`` client.

Every test runs a real bridge (ThreadingHTTPServer on a free port) in front of
a real fake-engine daemon on real ZeroMQ sockets. Audio is checked by decoding
it (soundfile) and, where the format is lossless, by comparing it sample for
sample with what a direct ZeroMQ client gets for the same text, voice and
seed.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import openai
import pytest
import soundfile as sf

from chatterbox_tray.bridges.encoders import to_int16
from chatterbox_tray.bridges.openai_server import Config, check_bind
from tests.bridges.conftest import Library, RunningBridge, start_bridge
from tests.support.daemons import DaemonProcess

TEXT = "Hello there. How are you today?"


def api(bridge: RunningBridge, key: str = "not-needed") -> openai.OpenAI:
    """The official client pointed at the bridge, without retries (a test wants the first answer)."""
    return openai.OpenAI(base_url=bridge.url, api_key=key, max_retries=0, timeout=60)


def direct(lib: Library, text: str, voice: str, seed: int = 7, speaking_rate: float | None = None) -> np.ndarray:
    """What a plain ZeroMQ client gets: float32 samples."""
    with lib.daemon.client() as client:
        audio, rate = client.synthesize(text, voice=voice, seed=seed, rate=speaking_rate).collect()
    assert rate == 24_000
    return audio


def decode(data: bytes, fmt: str) -> np.ndarray:
    """The samples of a response: int16 for the lossless formats (exact), float32 for the others."""
    if fmt == "pcm":
        return np.frombuffer(data, dtype="<i2")
    lossless = fmt in ("wav", "flac")
    samples, rate = sf.read(io.BytesIO(data), dtype="int16" if lossless else "float32")
    assert rate == 24_000
    return samples


def pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples as the int16 samples a lossless response carries."""
    return np.frombuffer(to_int16(samples), dtype="<i2")


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Sample-for-sample equality (a plain bool, so a failure does not print 100 kB)."""
    return a.shape == b.shape and bool(np.array_equal(a, b))


def raw(bridge: RunningBridge, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """A plain urllib request: (status, headers, body) whatever the status."""
    url = bridge.url.removesuffix("/v1") + path
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


# -- models and voices ----------------------------------------------------------------------


def test_models_list_openai_names_and_ours(bridge: RunningBridge) -> None:
    ids = [m.id for m in api(bridge).models.list()]
    assert {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "chatterbox", "chatterbox-original"} <= set(ids)
    assert api(bridge).models.retrieve("tts-1").id == "tts-1"


def test_voices_list_the_library_and_the_openai_aliases(bridge: RunningBridge, lib: Library) -> None:
    status, _, body = raw(bridge, "GET", "/v1/audio/voices")
    data = json.loads(body)
    assert status == 200
    names = [v["id"] for v in data["voices"]]
    assert lib.default in names and lib.other in names
    assert data["count"] == len(names)
    assert data["default"] == lib.default
    assert data["aliases"]["alloy"] == lib.default  # no table entry: the default voice stands in


# -- formats -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["wav", "pcm", "flac", "mp3", "opus"])
def test_each_format_decodes_to_the_daemons_audio(bridge: RunningBridge, lib: Library, fmt: str) -> None:
    reply = api(bridge).audio.speech.create(
        model="tts-1", voice=lib.other, input=TEXT, response_format=fmt, extra_body={"seed": 7}
    )
    got = decode(reply.content, fmt)
    want = direct(lib, TEXT, lib.other)
    if fmt in ("wav", "pcm", "flac"):  # lossless: the very samples, as 16-bit PCM
        assert reply.content.startswith(b"RIFF") == (fmt == "wav")
        assert same(got, pcm16(want)), (got.shape, want.shape)
    else:  # lossy: the same length (plus encoder padding) and loudness
        assert len(want) <= len(got) <= len(want) + 4800
        rms = lambda x: float(np.sqrt(np.mean(np.square(x))))  # noqa: E731
        assert rms(got) == pytest.approx(rms(want), rel=0.2)


def test_aac_is_refused_with_a_clear_message(bridge: RunningBridge) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        api(bridge).audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format="aac")
    err = info.value.body
    assert err["code"] == "unsupported_format" and err["param"] == "response_format"
    assert "mp3" in err["message"] and "aac" in err["message"]


# -- voices ---------------------------------------------------------------------------------


def test_openai_voice_names_use_the_default_voice(bridge: RunningBridge, lib: Library) -> None:
    reply = api(bridge).audio.speech.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="pcm", extra_body={"seed": 7}
    )
    assert reply.content == to_int16(direct(lib, TEXT, lib.default))


def test_the_voice_table_maps_openai_names_and_is_reread(bridge: RunningBridge, lib: Library) -> None:
    table = lib.daemon.home / "openai-voices.json"
    table.write_text(json.dumps({"nova": lib.other.lower()}), encoding="utf-8")
    try:
        reply = api(bridge).audio.speech.create(
            model="tts-1", voice="nova", input=TEXT, response_format="pcm", extra_body={"seed": 7}
        )
        assert reply.content == to_int16(direct(lib, TEXT, lib.other))
        _status, _, body = raw(bridge, "GET", "/v1/audio/voices")
        assert json.loads(body)["aliases"]["nova"] == lib.other
    finally:
        table.unlink()


def test_library_voice_names_in_any_case(bridge: RunningBridge, lib: Library) -> None:
    reply = api(bridge).audio.speech.create(
        model="gpt-4o-mini-tts", voice=lib.other.upper(), input=TEXT, response_format="pcm", extra_body={"seed": 7}
    )
    assert reply.content == to_int16(direct(lib, TEXT, lib.other))


def test_unknown_voice_is_400_and_names_the_library(bridge: RunningBridge, lib: Library) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        api(bridge).audio.speech.create(model="tts-1", voice="nobody", input=TEXT)
    err = info.value.body
    assert err["code"] == "voice_not_found" and err["param"] == "voice"
    assert "nobody" in err["message"] and lib.other in err["message"]


# -- checks ----------------------------------------------------------------------------------


def test_text_over_the_daemons_limit_is_413(bridge: RunningBridge) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        api(bridge).audio.speech.create(model="tts-1", voice="alloy", input="a" * 100_001)
    assert info.value.status_code == 413
    assert info.value.body["code"] == "input_too_long"


@pytest.mark.parametrize("speed", [0.1, 4.5, "fast"])
def test_speed_outside_openais_range_is_400(bridge: RunningBridge, speed) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        api(bridge).audio.speech.create(model="tts-1", voice="alloy", input=TEXT, speed=speed)
    assert info.value.body["param"] == "speed"


@pytest.mark.parametrize(("speed", "rate"), [(2.0, 2.0), (0.5, 0.5), (1.5, 1.5), (0.25, 0.5), (4.0, 2.0)])
def test_speed_is_the_daemons_rate_held_to_its_range(
    bridge: RunningBridge, lib: Library, speed: float, rate: float
) -> None:
    reply = api(bridge).audio.speech.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="pcm", speed=speed, extra_body={"seed": 7}
    )
    got = np.frombuffer(reply.content, dtype="<i2")
    assert same(got, pcm16(direct(lib, TEXT, lib.default, speaking_rate=rate)))
    normal = direct(lib, TEXT, lib.default)
    assert len(got) / len(normal) == pytest.approx(1 / rate, rel=0.05)


def test_no_speed_leaves_the_rate_to_the_daemons_setting(bridge: RunningBridge, lib: Library) -> None:
    with lib.daemon.client() as client:
        client.settings_set(rate=1.25)
        try:
            reply = api(bridge).audio.speech.create(
                model="tts-1", voice="alloy", input=TEXT, response_format="pcm", extra_body={"seed": 7}
            )
            one = api(bridge).audio.speech.create(
                model="tts-1", voice="alloy", input=TEXT, response_format="pcm", speed=1.0, extra_body={"seed": 7}
            )
        finally:
            client.settings_set(rate=1.0)
    assert same(np.frombuffer(reply.content, dtype="<i2"), pcm16(direct(lib, TEXT, lib.default, speaking_rate=1.25)))
    assert same(np.frombuffer(one.content, dtype="<i2"), pcm16(direct(lib, TEXT, lib.default)))


@pytest.mark.parametrize(
    ("model", "code"),
    [("chatterbox-turbo", "model_not_loaded"), ("whisper-1", "model_not_found"), ("", "invalid_value")],
)
def test_models_the_daemon_cannot_serve_are_400(bridge: RunningBridge, model: str, code: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        api(bridge).audio.speech.create(model=model, voice="alloy", input=TEXT)
    assert info.value.body["code"] == code
    assert info.value.body["param"] == "model"


def test_bad_bodies_get_openai_error_json(bridge: RunningBridge) -> None:
    cases = [
        (b"{not json", {"Content-Type": "application/json"}, 400, "invalid_json"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 400, "invalid_json"),
        (b'{"model": "tts-1", "input": "hi"}', {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        (b'{"model": "tts-1"}', {"Content-Type": "application/json"}, 400, "invalid_value"),
    ]
    for body, headers, status, code in cases:
        got, _, reply = raw(bridge, "POST", "/v1/audio/speech", body, headers)
        assert (got, json.loads(reply)["error"]["code"]) == (status, code), body
    got, _, reply = raw(bridge, "GET", "/v1/nothing")
    assert got == 404 and json.loads(reply)["error"]["type"] == "invalid_request_error"


def test_request_bodies_are_size_limited(lib: Library) -> None:
    small = start_bridge(lib.daemon, max_body=200)
    try:
        body = json.dumps({"model": "tts-1", "voice": "alloy", "input": "x" * 500}).encode()
        status, _, reply = raw(small, "POST", "/v1/audio/speech", body, {"Content-Type": "application/json"})
        assert status == 413 and json.loads(reply)["error"]["code"] == "request_too_large"
    finally:
        small.stop()


#: A body far bigger than the kernel's socket buffers, so that its sender is
#: still writing when the answer comes (8 MB was enough to break a pipe here).
HUGE_INPUT = "x" * 16_000_000


def test_an_oversized_body_gets_its_413_with_http_client(lib: Library) -> None:
    """http.client sends the whole body before it reads: it must not get a broken pipe."""
    small = start_bridge(lib.daemon, max_body=200)
    try:
        host, port = small.server.server_address[:2]
        body = json.dumps({"model": "tts-1", "voice": "alloy", "input": HUGE_INPUT}).encode()
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            conn.request("POST", "/v1/audio/speech", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            assert resp.status == 413 and resp.getheader("Connection") == "close"
            assert json.loads(resp.read())["error"]["code"] == "request_too_large"
        finally:
            conn.close()
    finally:
        small.stop()


def test_an_oversized_body_gets_its_413_with_the_openai_client(lib: Library) -> None:
    small = start_bridge(lib.daemon, max_body=200)
    try:
        with pytest.raises(openai.APIStatusError) as info:
            api(small).audio.speech.create(model="tts-1", voice="alloy", input=HUGE_INPUT)
        assert info.value.status_code == 413
        assert info.value.body["code"] == "request_too_large"
    finally:
        small.stop()


def test_an_oversized_body_is_refused_before_it_is_sent_when_the_client_asks(lib: Library) -> None:
    """``Expect: 100-continue`` (curl sends it for big bodies): a 413 instead of 100 Continue."""
    small = start_bridge(lib.daemon, max_body=200)
    try:
        host, port = small.server.server_address[:2]
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 5000000\r\nExpect: 100-continue\r\n\r\n"
            )
            reply = b""
            while chunk := sock.recv(65536):  # the server closes after its answer
                reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413 "), head
        assert json.loads(body)["error"]["code"] == "request_too_large"
    finally:
        small.stop()


def test_a_body_sent_to_no_route_does_not_break_the_pipe(bridge: RunningBridge) -> None:
    """Any answer given with the body unread (404, 401, ...) reaches a client still sending."""
    host, port = bridge.server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("POST", "/v1/nothing", HUGE_INPUT.encode(), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 404 and json.loads(resp.read())["error"]["code"] == "not_found"
    finally:
        conn.close()


# -- streaming -------------------------------------------------------------------------------


def test_audio_stream_delivers_bytes_while_the_job_runs(slow_lib: Library) -> None:
    running = start_bridge(slow_lib.daemon)
    text = "One little sentence. Another little sentence. A third little sentence. And a fourth one."
    try:
        speech = api(running).audio.speech.with_streaming_response
        with (
            speech.create(model="tts-1", voice="alloy", input=text, response_format="pcm") as resp,
            slow_lib.daemon.client() as observer,
        ):
            job = resp.headers["x-chatterbox-job"]
            pieces = resp.iter_bytes()
            first = next(pieces)
            # The daemon is still working on this job when its first bytes have arrived.
            assert observer.status()["queue"] >= 1
            rest = b"".join(pieces)
            end = observer.wait(job, timeout=30)
        assert len(first) > 0
        assert end["state"] == "finished" and end["summary"]["chunks"] == 4
        assert len(first + rest) == 2 * round(end["summary"]["audio_s"] * 24_000)
    finally:
        running.stop()


def test_sse_stream_has_deltas_then_done(bridge: RunningBridge, lib: Library) -> None:
    with api(bridge).audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts",
        voice=lib.other,
        input=TEXT,
        response_format="wav",
        stream_format="sse",
        extra_body={"seed": 7},
    ) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "speech.audio.done" and set(kinds[:-1]) == {"speech.audio.delta"} and len(kinds) >= 3
    wav = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert same(decode(wav, "wav"), pcm16(direct(lib, TEXT, lib.other)))
    usage = events[-1]["usage"]
    assert usage["input_tokens"] == len(TEXT) and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_a_client_that_leaves_cancels_its_job(slow_lib: Library) -> None:
    running = start_bridge(slow_lib.daemon)
    text = " ".join(f"Sentence number {i}." for i in range(12))
    try:
        with api(running).audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=text, response_format="pcm"
        ) as resp:
            job = resp.headers["x-chatterbox-job"]
            next(resp.iter_bytes())
        # Leaving the block closed the connection; the bridge's next write fails and it cancels.
        with slow_lib.daemon.client() as observer:
            end = observer.wait(job, timeout=30)
        assert end["state"] == "cancelled"
    finally:
        running.stop()


# -- readiness and the daemon's absence --------------------------------------------------------------


def test_model_not_ready_is_503_with_retry_after(clips) -> None:
    loading = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_LOAD_DELAY": "60"}).start(ready=False)
    running = start_bridge(loading)
    try:
        with pytest.raises(openai.InternalServerError) as info:
            api(running).audio.speech.create(model="tts-1", voice="alloy", input=TEXT)
        assert info.value.status_code == 503
        assert int(info.value.response.headers["retry-after"]) > 0
        assert info.value.body["code"] == "model_not_ready"
        status, _, body = raw(running, "GET", "/health")
        assert status == 503 and json.loads(body)["status"] in ("starting", "loading", "warming_up")
    finally:
        running.stop()
        loading.cleanup()


def test_no_daemon_is_503_not_a_traceback(tmp_path) -> None:
    running = RunningBridge(Config(port=0, connection=tmp_path / "daemon.json"))
    try:
        with pytest.raises(openai.InternalServerError) as info:
            api(running).audio.speech.create(model="tts-1", voice="alloy", input=TEXT)
        assert info.value.status_code == 503 and info.value.body["code"] == "daemon_unavailable"
        assert "Traceback" not in info.value.response.text
        assert "retry-after" in info.value.response.headers
    finally:
        running.stop()


# -- security --------------------------------------------------------------------------------


def test_no_key_means_loopback_only() -> None:
    for host in ("0.0.0.0", "::", "192.168.1.10"):
        with pytest.raises(ValueError, match="API key"):
            check_bind(Config(host=host))
        check_bind(Config(host=host, api_key="k"))  # allowed with a key (not bound here)
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_bind(Config(host=host))


def test_api_key_is_required_when_set(lib: Library) -> None:
    running = start_bridge(lib.daemon, api_key="s3cret-key")
    try:
        with pytest.raises(openai.AuthenticationError) as info:
            api(running, key="wrong").models.list()
        assert info.value.body["code"] == "invalid_api_key"
        for path in ("/v1/models", "/v1/models/tts-1", "/v1/audio/voices", "/v1/audio/models"):
            status, headers, _ = raw(running, "GET", path)
            assert status == 401 and headers["WWW-Authenticate"] == "Bearer", path
        assert raw(running, "GET", "/health")[0] == 200  # for supervisors: no key, no secrets
        assert [m.id for m in api(running, key="s3cret-key").models.list()]
        reply = api(running, key="s3cret-key").audio.speech.create(model="tts-1", voice="alloy", input=TEXT)
        assert sf.read(io.BytesIO(reply.content))[0].size > 0
    finally:
        running.stop()


def test_cors_is_off_unless_origins_are_listed(bridge: RunningBridge, lib: Library) -> None:
    origin = {"Origin": "http://localhost:3000"}
    status, headers, _ = raw(bridge, "GET", "/v1/models", headers=origin)
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    assert raw(bridge, "OPTIONS", "/v1/audio/speech", headers=origin)[0] == 403

    listed = start_bridge(lib.daemon, cors_origins=("http://localhost:3000",))
    try:
        status, headers, _ = raw(listed, "GET", "/v1/models", headers=origin)
        assert headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
        status, headers, _ = raw(
            listed, "OPTIONS", "/v1/audio/speech", headers={**origin, "Access-Control-Request-Method": "POST"}
        )
        assert status == 204 and "POST" in headers["Access-Control-Allow-Methods"]
        other = raw(listed, "GET", "/v1/models", headers={"Origin": "http://evil.example"})[1]
        assert "Access-Control-Allow-Origin" not in other
    finally:
        listed.stop()


def test_requests_for_foreign_host_names_are_refused(bridge: RunningBridge) -> None:
    """DNS rebinding: a page on evil.example resolved to 127.0.0.1 still says Host: evil.example."""
    status, _, body = raw(bridge, "GET", "/v1/models", headers={"Host": "evil.example:8880"})
    assert status == 403 and json.loads(body)["error"]["code"] == "forbidden_host"
    assert raw(bridge, "GET", "/v1/models", headers={"Host": "localhost:8880"})[0] == 200


# -- the command -------------------------------------------------------------------------------


def test_the_command_serves_and_stops_on_sigterm(lib: Library) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatterbox_tray.bridges",
            "openai",
            "--port",
            "0",
            "--connection",
            str(lib.daemon.connection_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CHATTERBOX_TRAY_HOME": str(lib.daemon.home)},
    )
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.strip().rsplit(" ", 1)[-1]
        client = openai.OpenAI(base_url=url, api_key="x", max_retries=0)
        assert "tts-1" in [m.id for m in client.models.list()]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_command_refuses_a_lan_bind_without_a_key(lib: Library) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatterbox_tray.bridges",
            "openai",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--connection",
            str(lib.daemon.connection_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "CHATTERBOX_TRAY_OPENAI_API_KEY"},
    )
    assert out.returncode == 2
    assert "API key" in out.stderr and "Traceback" not in out.stderr


def test_a_sleeping_model_is_woken_by_a_request_not_refused(clips) -> None:
    """Idle unload must not turn the endpoint into a permanent 503: asleep is healthy, and speech wakes it."""
    daemon = DaemonProcess().start()
    running = start_bridge(daemon)
    try:
        with daemon.client() as c:
            c.voices_add("alloy-voice", data=clips.new())
            c.voices_default("alloy-voice")
            c.settings_set(unload_after_idle_minutes=0.01)
            deadline = time.monotonic() + 30
            while c.status()["state"] != "sleeping" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert c.status()["state"] == "sleeping"
            status, _, body = raw(running, "GET", "/health")
            assert status == 200 and json.loads(body)["status"] == "sleeping"
            c.settings_set(unload_after_idle_minutes=0)
        audio = api(running).audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format="wav")
        assert len(decode(audio.content, "wav")) > 0
        with daemon.client() as c:
            assert c.status()["state"] == "ready"
    finally:
        running.stop()
        daemon.cleanup()
