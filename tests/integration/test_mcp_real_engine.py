"""The MCP server once against the real engine: a Turbo daemon on its test checkpoint, the SDK's own client.

``list_tags`` gives the checkpoint tokenizer's tags, and ``speak`` with one of
them and a pause is spoken to its end (the tag kept, no warning); ``save``
writes the same through ``synthesize``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters

from tests.bridges.test_mcp import payload, run_session
from tests.integration.test_variants import start
from tests.support.checkpoint import _TURBO_TAGS
from tests.support.daemons import Clips

pytestmark = pytest.mark.integration


def test_mcp_tools_on_a_real_turbo(clips: Clips, tmp_path: Path) -> None:
    daemon = start("turbo")
    try:
        with daemon.client(timeout=120) as c:
            c.voices_add("Agent", data=clips.new())
        where = str(daemon.connection_path)
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "chatterbox_tray.cli.main", "serve", "mcp", "--voice", "Agent", "--connection", where],
        )
        out = tmp_path / "agent.flac"

        async def steps(session: ClientSession) -> dict[str, Any]:
            return {
                "tags": await session.call_tool("list_tags", {}),
                "spoken": await session.call_tool("speak", {"text": "Hi [laugh]. [pause 300ms] Bye.", "wait": True}),
                "saved": await session.call_tool("save", {"text": "Saved [sigh].", "path": str(out)}),
            }

        got = run_session(params, steps)
        tags = payload(got["tags"])
        assert tags["variant"] == "turbo" and tags["tags"] == list(_TURBO_TAGS)
        spoken = payload(got["spoken"])
        assert not got["spoken"].is_error and spoken["state"] == "finished", spoken
        assert "warnings" not in spoken  # [laugh] is Turbo's: kept, nothing left out
        assert not got["saved"].is_error, got["saved"].content
        audio, rate = sf.read(out, dtype="float32")
        assert rate == 24_000 and len(audio) > 0
    finally:
        daemon.cleanup()
