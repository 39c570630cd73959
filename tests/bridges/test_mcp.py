"""``chatterbox-tray serve mcp`` answers the official MCP SDK's own client, over stdio, against a real daemon.

The server runs as an agent's MCP client starts it (a subprocess speaking
JSON-RPC on its stdin and stdout); the daemon is a fake-engine one with two
voices (``Library``), whose speaker plays into a file.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import soundfile as sf
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.bridges.conftest import Library

TOOLS = {"speak", "list_voices", "stop", "save", "list_tags"}


def server(lib: Library, *extra: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "chatterbox_tray.cli.main",
            "serve",
            "mcp",
            "--connection",
            str(lib.daemon.connection_path),
            *extra,
        ],
    )


def run_session(params: StdioServerParameters, steps: Any) -> Any:
    """Open a session with the server, run ``await steps(session)``, and return what it returns."""

    async def main() -> Any:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return await steps(session)

    return anyio.run(main)


def payload(result: Any) -> Any:
    """A tool result's JSON (structured content if the SDK gave it, else its text)."""
    structured = getattr(result, "structured_content", None)
    if structured is not None:
        return structured.get("result", structured) if set(structured) == {"result"} else structured
    return json.loads(result.content[0].text)


def test_the_tools_answer_the_sdk_client(lib: Library, tmp_path: Path) -> None:
    out = tmp_path / "hello.wav"

    async def steps(session: ClientSession) -> dict[str, Any]:
        tools = await session.list_tools()
        voices = await session.call_tool("list_voices", {})
        spoken = await session.call_tool("speak", {"text": "Hello from an agent. [pause 300ms] Bye.", "wait": True})
        saved = await session.call_tool("save", {"text": "Saved speech here.", "path": str(out)})
        again = await session.call_tool("save", {"text": "Saved speech here.", "path": str(out)})
        tags = await session.call_tool("list_tags", {})
        return {"tools": tools, "voices": voices, "spoken": spoken, "saved": saved, "again": again, "tags": tags}

    before = len(lib.daemon.played())
    got = run_session(server(lib), steps)
    assert {t.name for t in got["tools"].tools} == TOOLS
    speak_tool = next(t for t in got["tools"].tools if t.name == "speak")
    assert set(speak_tool.input_schema["properties"]) == {"text", "voice", "priority", "wait"}

    with lib.daemon.client() as c:
        library = c.voices_list()
    voices = payload(got["voices"])
    assert [v["name"] for v in voices["voices"]] == [v["name"] for v in library]
    assert voices["default"] == lib.default

    spoken = payload(got["spoken"])
    assert not got["spoken"].is_error
    assert spoken["state"] == "finished" and spoken["queued"] is True
    assert len(lib.daemon.played()) > before  # it was heard

    assert not got["saved"].is_error, got["saved"].content
    audio, rate = sf.read(out, dtype="float32")
    assert rate == 24_000 and len(audio) > 0.5 * rate and np.abs(audio).max() > 0.05
    assert got["again"].is_error and "exists" in got["again"].content[0].text
    assert payload(got["tags"])["pause"]["max_s"] == 10.0


def test_errors_come_back_plain(lib: Library, tmp_path: Path) -> None:
    async def steps(session: ClientSession) -> list[Any]:
        return [
            await session.call_tool("speak", {"text": "Hi.", "voice": "nobody-here"}),
            await session.call_tool("speak", {"text": "Wait [pause 30s] now."}),
            await session.call_tool("save", {"text": "Hi.", "path": "relative.wav"}),
            await session.call_tool("save", {"text": "Hi.", "path": str(tmp_path / "x.xyz")}),
        ]

    results = run_session(server(lib), steps)
    texts = [r.content[0].text for r in results]
    assert all(r.is_error for r in results), texts
    # The SDK puts "Error executing tool speak: " before our message.
    assert texts[0].endswith("unknown_voice: no voice called 'nobody-here'")
    assert "bad_markup: " in texts[1] and "at most 10 s" in texts[1]
    assert "absolute path" in texts[2]
    assert "cannot write .xyz" in texts[3]
    assert not any("Traceback" in t for t in texts)


def test_an_agent_has_its_own_voice_and_can_stop(lib: Library) -> None:
    async def steps(session: ClientSession) -> list[Any]:
        queued = await session.call_tool("speak", {"text": "A long text to stop. " * 6, "priority": "quick"})
        await anyio.sleep(0.3)
        stopped = await session.call_tool("stop", {"all": True})
        return [queued, stopped]

    queued, stopped = run_session(server(lib, "--voice", lib.other), steps)
    job = payload(queued)["job"]
    assert payload(queued)["voice"] == lib.other
    with lib.daemon.client() as c:
        end = c.wait(job)
    assert end["state"] == "cancelled"
    assert job in payload(stopped)["stopped"] or end["error"]["code"] == "cancelled"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the job's voice, as the daemon recorded it
        recent = [j for j in c_stats(lib)["recent_jobs"] if j.get("job") == job]
        if recent:
            assert recent[0]["voice"] == lib.other
            break
        time.sleep(0.1)


def c_stats(lib: Library) -> dict[str, Any]:
    with lib.daemon.client() as c:
        return c.stats()


def test_the_http_transport_on_loopback(lib: Library) -> None:
    import socket
    import subprocess

    from mcp.client.streamable_http import streamable_http_client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, *server(lib, "--http", "--port", str(port)).args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        async def main() -> list[str]:
            deadline = time.monotonic() + 30
            while True:  # until it listens
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    await anyio.sleep(0.2)
            url = f"http://127.0.0.1:{port}/mcp"
            async with streamable_http_client(url) as (read, write, *_), ClientSession(read, write) as session:
                await session.initialize()
                voices = await session.call_tool("list_voices", {})
                return [v["name"] for v in payload(voices)["voices"]]

        assert run_http(main) == sorted([lib.default, lib.other], key=str.lower)
    finally:
        proc.terminate()
        proc.wait(10)


def run_http(main: Any) -> Any:
    return anyio.run(main)
