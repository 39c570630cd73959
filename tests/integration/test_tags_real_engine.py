"""Tags on the real engine (random-weight test checkpoints): Turbo's reach T3 whole, the original's are removed.

What the daemon does to a job's text (``saytext.prepare``, then
``resolve_tags`` with the loaded engine's ``tags()``), then the engine's own
streamed path (``generate_stream``, the one the worker calls), with a spy on
``_t3_inputs``: the text tokens T3 is given. The spy cancels the sentence
once they are known, so no S3Gen work is spent on random weights.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from chatterbox_tray.daemon.chatterbox_engine import ChatterboxEngine
from chatterbox_tray.daemon.engine import Cancelled, SynthOptions
from chatterbox_tray.daemon.saytext import prepare, resolve_tags
from tests.integration.test_fast_t3 import tone_clip
from tests.support.checkpoint import _TURBO_TAGS, ensure_checkpoint, loader_env

pytestmark = pytest.mark.integration

TEXT = "Well [laugh] that is funny. [clear throat] Next one."


@pytest.fixture(scope="module", params=["turbo", "original"])
def engine(request: pytest.FixtureRequest) -> Iterator[ChatterboxEngine]:
    variant = request.param
    ckpt = ensure_checkpoint(variant)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in loader_env(ckpt, variant).items():
            mp.setenv(key, value)
        eng = ChatterboxEngine(variant, str(ckpt), "cpu", engine_path="fast", precision="float32")
        eng.load(lambda _f, _m: None)
        yield eng
        eng.unload()


def t3_input(engine: ChatterboxEngine, text: str) -> tuple[str, list[int]]:
    """The text the engine's streamed path hands T3, and its text tokens (first row)."""
    seen: dict[str, Any] = {}
    cancel = threading.Event()
    original = engine._t3_inputs

    def spy(text: str, conds: Any, kwargs: dict[str, Any]) -> Any:
        result = original(text, conds, kwargs)
        seen["text"], seen["ids"] = text, result[1][0].tolist()
        cancel.set()  # known: no need to make the audio
        return result

    engine._t3_inputs = spy  # type: ignore[method-assign]
    try:
        conds = engine.prepare(tone_clip())
        with pytest.raises(Cancelled):
            for _ in engine.generate_stream(text, conds, SynthOptions(seed=1), 4, cancel, hurry=lambda: True):
                pass
    finally:
        del engine._t3_inputs
    return seen["text"], seen["ids"]


def test_tags_reach_t3_as_their_one_token_or_are_removed(engine: ChatterboxEngine) -> None:
    tags = engine.tags()
    prepared = resolve_tags(prepare(TEXT, [], 300), tags, engine.variant)
    if engine.variant == "turbo":
        # Read from the checkpoint's tokenizer, in its id order: the test checkpoint's added tokens.
        assert tags == list(_TURBO_TAGS)
        assert [c.text for c in prepared.chunks] == ["Well [laugh] that is funny.", "[clear throat] Next one."]
        assert prepared.warnings == []
        tokenizer = engine.model.tokenizer
        for chunk, tag in zip(prepared.chunks, ("[laugh]", "[clear throat]"), strict=True):
            text, ids = t3_input(engine, chunk.text)
            tag_id = tokenizer.convert_tokens_to_ids(tag)
            assert tag_id >= 50257  # an added token, past GPT-2's vocabulary
            assert ids.count(tag_id) == 1  # the whole tag, as one token
            assert tag not in tokenizer.decode([i for i in ids if i != tag_id])  # and not spelt out as well
    else:
        assert tags == []
        assert [c.text for c in prepared.chunks] == ["Well that is funny.", "Next one."]
        assert len(prepared.warnings) == 1
        assert (
            "[laugh], [clear throat]" in prepared.warnings[0] and "original model has no tags" in prepared.warnings[0]
        )
        text, _ = t3_input(engine, prepared.chunks[0].text)
        assert "[" not in text and "laugh" not in text
