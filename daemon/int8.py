"""T3's linear layers for decoding on a CPU: weight-only int8, and bfloat16 packed for oneDNN.

Kept apart from ``precision.py`` because it imports torch at module level,
and ``precision.py`` is read by code that must not (settings checks on the
daemon's main thread).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch


class _BFloat16Rows(torch.nn.Module):
    """A linear layer that takes bfloat16 rows: the shape and dtype handling of both kinds below.

    Its input is rounded to bfloat16 on the way in (the kernels take
    bfloat16), its output is bfloat16: ``precision.keep_float32_between``
    says how a float32 residual stream takes it.
    """

    def __init__(self, linear: Any) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        bias = linear.bias
        self.register_buffer("bias", None if bias is None else bias.detach().to(torch.bfloat16).clone())

    def forward(self, x: Any) -> Any:
        flat = x.reshape(-1, x.shape[-1])
        if flat.dtype != torch.bfloat16:
            flat = flat.to(torch.bfloat16)
        return self._product(flat).reshape(*x.shape[:-1], self.out_features)

    def _product(self, rows: Any) -> Any:
        raise NotImplementedError


class Int8Linear(_BFloat16Rows):
    """A linear layer whose weight is int8 with one float scale per output channel; activations stay bfloat16.

    Weight-only quantisation: the weight, which decode reads once a token,
    is a quarter of float32's bytes; the activations are not quantised at
    all, so the only error is each weight's rounding to 1/127 of its row's
    largest magnitude. torch's ``quantize_dynamic`` (the former ``int8``)
    also rounds every activation vector to 8 bits per tensor, which moved
    T3's next-token distribution 16 times as far as bfloat16 did
    (docs/engine.md). The product is torch's own CPU kernel for this layout,
    ``_weight_int8pack_mm`` (the one gpt-fast uses), for a decode step's
    few rows; for a prefill's many it is far slower than a bfloat16 matrix
    product (4096x1024, 2-core CPU: 1 row 0.15 ms, 30 rows 2.5 ms, 400 rows
    20.5 ms, where dequantising to bfloat16 and multiplying takes 1.3 and
    3.3 ms), so from `MANY_ROWS` rows on the weight is dequantised for the call.
    """

    #: Rows from which a call dequantises the weight instead (measured crossover: 8-16 rows).
    MANY_ROWS = 16

    def __init__(self, linear: Any) -> None:
        super().__init__(linear)
        weight = linear.weight.detach().float()
        # The kernel takes the scales in the activations' dtype: round them to
        # bfloat16 first and quantise against the rounded ones, so a scale's
        # own rounding (up to 0.4 %) does not skew its whole output channel.
        scale = (weight.abs().amax(dim=1).clamp(min=1e-12) / 127.0).to(torch.bfloat16)
        q = torch.round(weight / scale.float()[:, None]).clamp(-128, 127).to(torch.int8).contiguous()
        self.register_buffer("weight_int8", q)
        self.register_buffer("scale", scale)

    def _product(self, rows: Any) -> Any:
        if rows.shape[0] >= self.MANY_ROWS:
            weight = self.weight_int8.to(torch.bfloat16) * self.scale[:, None]
            return torch.nn.functional.linear(rows, weight, self.bias)
        out = torch._weight_int8pack_mm(rows, self.weight_int8, self.scale)
        return out if self.bias is None else out + self.bias


def _swap_linears(module: Any, make: Callable[[Any], torch.nn.Module]) -> None:
    """Swap every ``nn.Linear`` under ``module`` for ``make(linear)``, in place."""
    for name, child in list(module.named_children()):
        if isinstance(child, torch.nn.Linear):
            setattr(module, name, make(child))
        else:
            _swap_linears(child, make)


def linears_to_int8(module: Any) -> None:
    """Swap every ``nn.Linear`` under ``module`` for an `Int8Linear`, in place."""
    _swap_linears(module, Int8Linear)


class PackedLinear(_BFloat16Rows):
    """A bfloat16 linear layer whose weight oneDNN has laid out for its own kernels (CPU).

    torch's plain bfloat16 ``nn.Linear`` runs a decode step's one-row
    product at about float32's speed (1024x4096: 0.30 ms against 0.34),
    although it reads half the bytes; oneDNN's ``_linear_pointwise`` on a
    weight reordered once for one row takes 0.20 ms, with the same result
    for one row (and a last-bit difference for many, as any blocking
    change). Packed for a batch of one, it also serves the prefill's rows
    and the original's classifier-free-guidance pair at no loss.
    """

    def __init__(self, linear: Any) -> None:
        super().__init__(linear)
        weight = linear.weight.detach().to(torch.bfloat16)
        #: oneDNN's opaque tensor (not a parameter: ``.to()`` and state dicts do not know it).
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, 1)

    def _product(self, rows: Any) -> Any:
        return torch.ops.mkldnn._linear_pointwise(rows, self.packed, self.bias, "none", [], "")


def pack_bfloat16_linears(module: Any) -> None:
    """Swap every ``nn.Linear`` under ``module`` for a bfloat16 `PackedLinear`, in place.

    A float32 layer's weight is rounded to bfloat16 on the way. Where this
    torch has no oneDNN (or it refuses the layout), the layers left stay as they are.
    """
    if torch.backends.mkldnn.is_available():
        with contextlib.suppress(RuntimeError):
            _swap_linears(module, PackedLinear)


class BFloat16Rotary(torch.nn.Module):
    """A Llama rotary embedding whose cosines and sines come out bfloat16 (``precision.keep_float32_between``).

    HF computes them in float32 and casts them to the hidden state's dtype;
    with a float32 residual stream that would make queries and keys float32
    beside bfloat16 values. A plain bfloat16 model has them in bfloat16 too.
    """

    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Any, position_ids: Any) -> Any:
        cos, sin = self.inner(x, position_ids)
        return cos.to(torch.bfloat16), sin.to(torch.bfloat16)
