"""The real daemon (original model, test checkpoint): a tag it does not know is removed, once, in the summary."""

from __future__ import annotations

import pytest

from chatterbox_tray.ipc.client import Client
from tests.support.daemons import Clips
from tests.support.realdaemon import synth

pytestmark = pytest.mark.integration


def test_a_tag_the_original_does_not_know_is_removed_and_named_in_the_summary(rc: Client, clips: Clips) -> None:
    chunks = list(synthesis := rc.synthesize("Hello [laugh] there. [sigh]", voice_data=clips.new(), seed=1))
    assert [c.text for c in chunks if c.final] == ["Hello there.", ""]
    [warning] = synthesis.summary["warnings"]
    assert warning.startswith("removed [laugh], [sigh]: the original model has no tags")
    audio, summary = synth(rc, "A pause [pause 300ms] here.", voice_data=clips.new(), seed=1)
    assert summary["chunks"] == 3 and summary["warnings"] == []
    assert len(audio) >= 0.3 * 24_000  # at least the pause
