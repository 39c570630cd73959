"""A Model Context Protocol server, so AI tools (Claude Desktop, editors' agents) can speak.

``chatterbox-tray serve mcp`` runs it over stdio, as MCP clients start their
servers; ``--http`` serves the SDK's streamable HTTP transport on 127.0.0.1
instead. Built with the official ``mcp`` SDK (``MCPServer``). Each tool
(``speak``, ``list_voices``, ``stop``, ``save``, ``list_tags``; their
descriptions below are what agents read) is one or two of the daemon's own
operations, through a fresh client per call (`DaemonClients`), so a daemon
that restarts is found again; pronunciation rules, ``[pause 1s]`` and the
loaded model's tags apply, as for every client.

An agent can have its own voice: ``--voice NAME`` is used whenever a call
names none. A daemon error comes back as the tool's error with the daemon's
plain message (``unknown_voice: no voice called 'x'``), never a traceback.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from .. import __version__
from ..audio import file_formats
from ..ipc.client import DaemonUnavailable
from ..ipc.limits import PRIORITIES
from ..ipc.protocol import ProtocolError
from .upstream import NOT_ANSWERING, DaemonClients

log = logging.getLogger("chatterbox_tray.bridges.mcp")

#: How long ``speak`` with ``wait`` and ``save`` may go without a word from the daemon
#: (it sends progress every second, so this is only for a daemon that hangs).
WAIT_GAP_S = 60.0

INSTRUCTIONS = """\
Speak text aloud on the user's computer with Chatterbox Tray (local, private
text to speech with the user's own voices). Use `speak` to say something to the
user; it returns at once unless `wait` is true. `list_voices` names the voices;
`stop` silences speech. `save` writes speech to an audio file. Text may hold
pauses such as [pause 500ms] or [pause 1.5s], and, when `list_tags` lists any,
tags such as [laugh] or [sigh] where they should sound.
"""

Priority = Literal["urgent", "quick", "text", "notification"]
assert set(PRIORITIES) == set(Priority.__args__)  # type: ignore[attr-defined]


def make_server(connection: Path | None = None, voice: str | None = None) -> MCPServer:
    """The MCP server, its tools bound to the daemon at ``connection`` (None: the usual one).

    ``voice``: the voice used when a call names none (else the daemon's default).
    """
    clients = DaemonClients(connection, timeout=10.0)
    default_voice = voice
    server = MCPServer(name="chatterbox-tray", title="Chatterbox Tray", version=__version__, instructions=INSTRUCTIONS)

    def call(fn: Any) -> Any:
        """Run ``fn(client)`` on a fresh client; daemon errors become the tool's plain error."""
        try:
            with clients.client() as client:
                return fn(client)
        except ProtocolError as exc:
            raise ToolError(f"{exc.code}: {exc.message}") from None
        except DaemonUnavailable as exc:
            raise ToolError(NOT_ANSWERING.format(exc)) from None

    @server.tool(
        description="Say text aloud on the user's speaker. Returns the job id at once, or with wait=true "
        "when the speech has been heard (or stopped). priority: urgent (now, even over other speech), "
        "quick (replaces what is playing), text (queued, the default), notification (only if nothing "
        "else is speaking)."
    )
    def speak(text: str, voice: str | None = None, priority: Priority = "text", wait: bool = False) -> dict[str, Any]:
        chosen = voice or default_voice

        def run(client: Any) -> dict[str, Any]:
            queued = client.speak(text, voice=chosen, priority=priority)
            answer: dict[str, Any] = {
                "job": queued.get("job"),
                "voice": chosen,
                "queued": not queued.get("dropped", False),
            }
            if queued.get("dropped"):
                answer["note"] = "not spoken: a notification is dropped while something else is speaking"
                return answer
            if wait:
                end = client.wait(queued["job"], timeout=WAIT_GAP_S)
                answer["state"] = end.get("state")
                summary = end.get("summary") or {}
                answer["seconds"] = summary.get("audio_s")
                if summary.get("warnings"):
                    answer["warnings"] = summary["warnings"]
                if end.get("error"):
                    answer["error"] = end["error"].get("message")
            return answer

        return call(run)

    @server.tool(description="The voices Chatterbox Tray can speak with (its voice library), and the default one.")
    def list_voices() -> dict[str, Any]:
        def run(client: Any) -> dict[str, Any]:
            result = client.call("voices.list")
            voices = [
                {"name": v["name"], "default": v.get("default", False), "duration_s": v.get("duration_s")}
                for v in result.get("voices", [])
            ]
            return {"voices": voices, "default": result.get("default"), "server_voice": default_voice}

        return call(run)

    @server.tool(description="Stop the speech that is playing (all=true: and everything queued after it).")
    def stop(all: bool = False) -> dict[str, Any]:
        return call(lambda client: client.stop(all=all))

    @server.tool(
        description="Write text as speech to an audio file on this computer. path: an absolute path ending in "
        f"{', '.join(file_formats.FILE_FORMATS)}; an existing file is replaced only with overwrite=true."
    )
    def save(text: str, path: str, voice: str | None = None, overwrite: bool = False) -> dict[str, Any]:
        target = Path(path).expanduser()
        if not target.is_absolute():
            raise ToolError(f"give an absolute path (not {path!r}): the server's working folder is not yours")
        if target.exists() and not overwrite:
            raise ToolError(f"{target} exists; pass overwrite=true to replace it")
        try:
            file_formats.check_writable(target)
        except file_formats.AudioFileError as exc:
            raise ToolError(str(exc)) from None
        chosen = voice or default_voice

        def run(client: Any) -> tuple[Any, int, dict[str, Any]]:
            synthesis = client.synthesize(text, voice=chosen)
            return (*synthesis.collect(), synthesis.summary)

        samples, rate, summary = call(run)
        partial = target.with_name(f".{target.name}.partial{target.suffix}")
        try:
            file_formats.write_audio(partial, samples, rate)
            os.replace(partial, target)
        except (file_formats.AudioFileError, OSError) as exc:
            partial.unlink(missing_ok=True)
            raise ToolError(f"cannot write {target}: {exc}") from None
        answer = {"path": str(target), "seconds": summary.get("audio_s"), "voice": summary.get("voice")}
        if summary.get("warnings"):
            answer["warnings"] = summary["warnings"]
        return answer

    @server.tool(
        description="The tags the loaded model knows (put one such as [laugh] in the text where it should "
        "sound; none for models without them) and the pause markup ([pause 500ms], [pause 1.5s]) with its bounds."
    )
    def list_tags() -> dict[str, Any]:
        return call(lambda client: client.call("tags.list"))

    return server
