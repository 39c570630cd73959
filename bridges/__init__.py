"""Bridges: servers that let programs which speak other protocols use the daemon.

- ``openai``: the OpenAI ``/v1/audio/speech`` HTTP API (Open WebUI, SillyTavern,
  the official ``openai`` client libraries), see docs/openai.md;
- ``wyoming``: the Wyoming protocol of Home Assistant's voice pipeline, see
  docs/wyoming.md;
- ``mcp``: the Model Context Protocol, so AI tools can speak, see docs/mcp.md.

Each bridge is a plain client of the daemon's ZeroMQ protocol: it imports
``chatterbox_tray.ipc`` and never torch, Qt or the daemon's modules, so it
starts in a fraction of a second and can run (or crash) beside the daemon
without harming it. Run one with ``python -m chatterbox_tray.bridges openai``.
"""
