"""The number format T3's transformer runs in on the fast path.

T3 decode reads every weight once a token, so on a CPU its speed follows the
bytes per weight: float32 (4), bfloat16 (2), int8 (1); ``mixed`` puts the
parts that move the distribution least in int8 and the rest in bfloat16.
``int8`` and ``mixed`` change only the linear layers: the residual stream
between them stays float32 (``keep_float32_between``), which is what keeps
int8 within twice bfloat16's distance to float32.
What each costs in speed and in how far it moves the next-token
distribution was measured with
``bench/t3_precision_bench.py`` (docs/engine.md has the figures); ``auto``
picks from those measurements. Only the transformer is converted: the
embeddings, the speech head and the sampling stay float32, so the logits
that drive sampling keep float32's range.
"""

from __future__ import annotations

import logging
from typing import Any

from ..ipc.settings_schema import SETTINGS

log = logging.getLogger(__name__)

#: The ``precision`` setting's values, declared once in the settings schema.
PRECISIONS = tuple(SETTINGS["precision"].choices)

#: What ``auto`` means per device type. CPU: ``int8``, measured (docs/engine.md):
#: the fastest, and within twice plain bfloat16's KL divergence to float32
#: on both variants (Turbo 1.7x, original 1.7x) since the residual stream
#: stays float32. CUDA and MPS: float32 until half precision is measured on
#: one (the GPU path is written but unmeasured; "auto" means off on an
#: unmeasured path).
AUTO_PRECISION = {"cpu": "int8", "cuda": "float32", "mps": "float32"}


def resolve_precision(wanted: str, device: str) -> str:
    """The concrete precision for a setting value on a device ("cuda:0" counts as cuda)."""
    if wanted not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {wanted!r}")
    kind = device.split(":", 1)[0]
    if wanted == "auto":
        return AUTO_PRECISION.get(kind, "float32")
    if wanted in ("int8", "mixed") and kind != "cpu":
        # Measured on a CPU only; the GPU path keeps float32 or bfloat16.
        raise ValueError(f"precision {wanted} runs on the CPU only, not on {device}")
    return wanted


def half_dtype(device: str) -> Any:
    """bfloat16 where the device has it, else float16 (older CUDA GPUs)."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def convert_transformer(tfmr: Any, precision: str, device: str, *, pack: bool = True) -> Any:
    """Convert T3's HF transformer in place; return it.

    ``bfloat16``: the whole transformer in bfloat16 (the plain conversion,
    and the GPU's). Rotary inverse frequencies stay float32: cast to
    bfloat16 they lose the precision positions need (HF keeps them float32
    for the same reason).

    ``int8`` and ``mixed`` (CPU): only the linear layers change (int8
    weights, or bfloat16 ones for the parts ``mixed`` keeps), and their
    inputs are rounded to bfloat16; everything between them stays float32
    (``keep_float32_between``). That costs a cast a linear layer and
    moves the next-token distribution far less: Turbo, int8, KL to float32
    1.17e-4 with a bfloat16 residual stream, 7.9e-5 with a float32 one
    (docs/engine.md).

    On a CPU the bfloat16 linear layers are packed for oneDNN
    (``int8.PackedLinear``: 1.5x plain bfloat16's speed on a decode step's
    one row); ``pack=False`` leaves them ``nn.Linear`` (benches that put
    other parts in int8 afterwards).
    """
    if precision == "float32":
        return tfmr
    if precision not in ("bfloat16", "int8", "mixed"):
        raise ValueError(f"unknown precision {precision!r}")
    # GPT-2's Conv1D runs addmm on a transposed weight, which the CPU's
    # bf16 kernels handle far slower than nn.Linear's layout (Turbo's
    # decode step: 63.7 -> 54.2 ms, bench/compile_bench.py notes).
    conv1d_to_linear(tfmr)
    fuse_gelu(tfmr)
    from .int8 import Int8Linear, linears_to_int8, pack_bfloat16_linears

    if precision == "bfloat16":
        rotary = getattr(tfmr, "rotary_emb", None)
        kept = {}
        if rotary is not None:
            kept = {n: b.clone() for n, b in rotary.named_buffers(recurse=False)}
        tfmr.to(half_dtype(device))
        for name, buf in kept.items():
            setattr(rotary, name, buf)
        if pack and device == "cpu":
            pack_bfloat16_linears(tfmr)
        return tfmr
    import torch

    for block in _blocks(tfmr):
        if precision == "int8":
            linears_to_int8(block)
            continue
        for name in mixed_int8_parts(block):
            part = block.get_submodule(name)
            if isinstance(part, torch.nn.Linear):
                parent, _, leaf = name.rpartition(".")
                setattr(block.get_submodule(parent), leaf, Int8Linear(part))
            else:
                linears_to_int8(part)
        if pack:
            pack_bfloat16_linears(block)
    keep_float32_between(tfmr)
    return tfmr


def _blocks(tfmr: Any) -> Any:
    """The transformer's layers: GPT-2's ``h`` (Turbo) or Llama's ``layers`` (original)."""
    return getattr(tfmr, "h", None) or tfmr.layers


def keep_float32_between(tfmr: Any) -> None:
    """Let the converted linear layers' bfloat16 outputs meet a float32 residual stream.

    The transformer's own norms and position embeddings stay float32; the
    linear layers return bfloat16, and torch's type promotion turns
    ``residual + bfloat16 output`` into float32, so the stream, the norms
    and the final hidden state stay float32 at no extra op. Queries, keys
    and values stay bfloat16, and so does the key/value cache (half the
    bytes to read a token). Llama's rotary positions would turn its queries
    and keys float32 (its cosines follow the float32 stream) while its
    values stay bfloat16, which HF's attention refuses: the cosines are
    handed over in bfloat16, as a plain bfloat16 model has them.
    """
    from .int8 import BFloat16Rotary

    rotary = getattr(tfmr, "rotary_emb", None)
    if rotary is not None and not isinstance(rotary, BFloat16Rotary):
        tfmr.rotary_emb = BFloat16Rotary(rotary)


def mixed_int8_parts(block: Any) -> list[str]:
    """The parts of one transformer block that ``mixed`` puts in int8; the rest stays bfloat16.

    Chosen (with bfloat16 between the layers, before the stream stayed
    float32) by how far each part moves T3's next-token distribution
    (bench/t3_precision_bench.py, docs/engine.md): within twice bfloat16's
    KL divergence. GPT-2 (Turbo): attention and the MLP's up-projection.
    Llama (original): attention only. With the float32 stream ``mixed`` is
    as close to float32 as plain bfloat16 (0.97x and 0.85x its KL), and
    ``int8`` everywhere is within 1.7x, so ``int8`` became the CPU default.
    """
    if hasattr(block, "attn"):  # GPT-2
        return ["attn", "mlp.c_fc"]
    return ["self_attn"]


def fuse_gelu(tfmr: Any) -> None:
    """Swap GPT-2's ``NewGELUActivation`` (Turbo's MLP) for torch's fused tanh GELU, in place.

    The same formula, but one kernel instead of eight element-wise ops a
    layer, and computed in float32 inside (closer to float32's GELU than the
    eight bfloat16 steps: max error 0.0078 against 0.0089 on N(0, 9) inputs).
    About 3 ms of Turbo's decode step on a 2-core CPU. float32 keeps
    chatterbox's own, so the exact path stays bit-identical to stock.
    """
    import torch
    from transformers.activations import NewGELUActivation

    for block in getattr(tfmr, "h", None) or ():
        if isinstance(block.mlp.act, NewGELUActivation):
            block.mlp.act = torch.nn.GELU(approximate="tanh")


def conv1d_to_linear(module: Any) -> None:
    """Swap GPT-2's ``Conv1D`` layers (Turbo's T3) for equivalent ``nn.Linear`` ones, in place.

    ``Conv1D`` is a linear layer with its weight stored transposed; quantizers
    only recognise ``nn.Linear``.
    """
    import torch
    from transformers.pytorch_utils import Conv1D

    for name, child in list(module.named_children()):
        if isinstance(child, Conv1D):
            linear = torch.nn.Linear(child.weight.shape[0], child.weight.shape[1], bias=child.bias is not None)
            linear.weight = torch.nn.Parameter(child.weight.detach().t().contiguous(), requires_grad=False)
            if child.bias is not None:
                linear.bias = torch.nn.Parameter(child.bias.detach().clone(), requires_grad=False)
            setattr(module, name, linear)
        else:
            conv1d_to_linear(child)
