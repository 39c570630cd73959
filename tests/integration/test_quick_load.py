"""Loading without random draws gives the very model chatterbox's own loader gives.

``daemon/quickload.py`` skips the random initialisation of T3 and the voice
encoder, which the checkpoint then overwrites. If any weight or buffer were
not overwritten, it would hold leftover memory instead of what stock
``from_local`` leaves there, and these comparisons would fail.
"""

from __future__ import annotations

import pytest
import torch

from tests.support.checkpoint import ensure_checkpoint, load_model

pytestmark = pytest.mark.integration


def _tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer, persistent or not, by name."""
    found = dict(module.named_parameters())
    found.update(module.named_buffers())
    return found


@pytest.mark.parametrize("variant", ["original", "turbo"])
def test_quick_construction_loads_the_same_weights_and_buffers(variant: str) -> None:
    from chatterbox.models.t3 import T3
    from chatterbox.models.voice_encoder import VoiceEncoder

    from chatterbox_tray.daemon.quickload import strict_loaded_modules_skip_random_init

    folder = ensure_checkpoint(variant)
    stock = load_model(folder, variant)
    inits = {cls: cls.__init__ for cls in (T3, VoiceEncoder)}
    kaiming = torch.nn.init.kaiming_uniform_
    with strict_loaded_modules_skip_random_init():
        quick = load_model(folder, variant)
    # Everything is put back as it was.
    assert {cls: cls.__init__ for cls in inits} == inits
    assert torch.nn.init.kaiming_uniform_ is kaiming

    for part in ("t3", "ve", "s3gen"):
        ours, theirs = _tensors(getattr(quick, part)), _tensors(getattr(stock, part))
        assert ours.keys() == theirs.keys(), part
        different = [name for name in ours if not torch.equal(ours[name], theirs[name])]
        assert not different, f"{variant} {part}: {different[:5]}"
    assert len(_tensors(quick.t3)) > 100  # the comparison covered the transformer
