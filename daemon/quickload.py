"""Build chatterbox's models without drawing random weights that the checkpoint replaces.

``from_local`` constructs T3 and the voice encoder, which fills every weight
with random numbers (torch's ``kaiming_uniform_`` in each ``nn.Linear``, then
transformers' ``normal_`` in ``post_init``), and then loads the checkpoint over
all of them. For the original model that is 5.8 of the 7.9 s ``from_local``
takes on a 2-core CPU (cProfile), paid at every start, wake and reload.

Only T3 and the voice encoder are built this way: chatterbox loads both with a
strict ``load_state_dict``, so every parameter and persistent buffer is
overwritten and a skipped draw can never leak into the model. S3Gen keeps its
random draws, because the original and multilingual loaders load it with
``strict=False``: a weight missing from a checkpoint would otherwise hold
whatever was in memory. Buffers computed at construction (rotary tables,
filters) are made as usual; only the ``torch.nn.init`` draws are skipped, with
transformers' own ``no_init_weights``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def strict_loaded_modules_skip_random_init() -> Iterator[None]:
    """While inside, building ``T3`` or ``VoiceEncoder`` draws no random weights.

    The classes are patched only for the duration, and the draws are skipped
    only inside their constructors. Not thread-safe against another thread
    building torch modules at the same time; the daemon loads on one thread.
    """
    from chatterbox.models.t3 import T3
    from chatterbox.models.voice_encoder import VoiceEncoder

    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # another transformers: build the stock way, only slower
        yield
        return

    def quiet(init: Any) -> Any:
        @functools.wraps(init)
        def build(self: Any, *args: Any, **kwargs: Any) -> None:
            with no_init_weights():
                init(self, *args, **kwargs)

        return build

    originals = {cls: cls.__dict__["__init__"] for cls in (T3, VoiceEncoder)}
    try:
        for cls, init in originals.items():
            cls.__init__ = quiet(init)  # type: ignore[method-assign]
        yield
    finally:
        for cls, init in originals.items():
            cls.__init__ = init  # type: ignore[method-assign]
