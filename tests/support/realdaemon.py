"""Helpers for tests of the real daemon (the random-weight checkpoint, real chatterbox classes)."""

from __future__ import annotations

import time

import numpy as np

from chatterbox_tray.ipc.client import Client

#: Speech tokens per chunk: enough for real T3 and S3Gen work, little enough to be quick.
TOKENS = 6

#: Seconds a real daemon may take to import, load and warm up on a busy 2-core
#: machine (the bridges' daemon once took 6 minutes under load).
START_S = 1200.0


def cached_tier(client: Client, name: str, timeout: float = 300.0) -> str | None:
    """Wait until a library voice's conditionals are cached; return the tier."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        voice = next(v for v in client.voices_list() if v["name"] == name)
        if voice["cache"] is not None:
            return voice["cache"]
        time.sleep(0.2)
    return None


def synth(client: Client, text: str, **kwargs) -> tuple[np.ndarray, dict]:
    """Synthesize to the end; return the samples and the summary."""
    synthesis = client.synthesize(text, **kwargs)
    audio, rate = synthesis.collect()
    assert rate == 24_000
    return audio, synthesis.summary
