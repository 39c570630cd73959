"""Our own T3 decode loop: a static KV cache and the same sampling as chatterbox 0.1.7.

chatterbox's ``T3.inference`` (original) and ``T3.inference_turbo`` call the
Hugging Face transformer once per token with a ``DynamicCache`` that grows by
``torch.cat`` every step (30 layers x 2 tensors re-allocated and copied a
token), plus HF's mask building and output bookkeeping. Here the prompt is
run once through the same HF module (so its numbers are chatterbox's), its
keys and values are copied into buffers sized for the whole utterance, and
each new token runs through a short step function over the same weights:
layer norms, projections and MLPs are the model's own modules (so a
quantized or bf16 copy of them is picked up unchanged), attention reads the
cache in place.

Sampling reuses the very logits processors chatterbox builds, in the same
order, and draws with ``torch.multinomial`` on the same shapes, so with
float32 weights and the same seed the speech tokens are exactly the stock
ones (``tests/integration/test_fast_t3.py`` checks it for both variants).

The loop is a generator of speech tokens so a caller can hand them to S3Gen
while T3 is still running (token-level streaming).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .engine import Cancelled

#: Cache slots are allocated in steps of this many tokens (a new utterance
#: reuses the buffers when they are long enough, and CUDA graphs key on it).
CACHE_STEP = 256


@dataclass
class Sampling:
    """chatterbox's sampling knobs; defaults are its ``generate`` defaults."""

    temperature: float = 0.8
    cfg_weight: float = 0.5  # original only
    repetition_penalty: float = 1.2
    min_p: float = 0.05  # original only
    top_p: float = 1.0  # original's generate passes 1.0; Turbo's 0.95
    top_k: int = 1000  # Turbo only


class StaticKV:
    """Per-layer key/value buffers of a fixed capacity, filled from the front."""

    def __init__(self, layers: int, batch: int, heads: int, head_dim: int, capacity: int, like: Tensor) -> None:
        shape = (layers, batch, heads, capacity, head_dim)
        self.k = torch.zeros(shape, dtype=like.dtype, device=like.device)
        self.v = torch.zeros(shape, dtype=like.dtype, device=like.device)
        self.length = 0

    @property
    def capacity(self) -> int:
        return self.k.shape[3]

    def fits(self, batch: int, length: int, like: Tensor) -> bool:
        return (
            self.k.shape[1] == batch
            and self.capacity >= length
            and self.k.dtype == like.dtype
            and self.k.device == like.device
        )


def cache_capacity(needed: int) -> int:
    """Round a token count up to the allocation step."""
    return max(CACHE_STEP, -(-needed // CACHE_STEP) * CACHE_STEP)


class FastT3:
    """Decode loop over one loaded chatterbox ``T3`` (Llama original or GPT-2 Turbo).

    Not thread-safe: the daemon's worker thread is its only caller. The KV
    buffers are kept between utterances and reallocated only when a longer
    one needs more room.
    """

    def __init__(self, t3: Any, tfmr: Any = None) -> None:
        """``tfmr``: a converted copy of ``t3.tfmr`` to run instead (benchmarks compare several)."""
        self.t3 = t3
        self.tfmr = tfmr if tfmr is not None else t3.tfmr
        self.is_gpt = bool(getattr(t3, "is_gpt", False))
        cfg = t3.cfg
        self.layers = cfg.num_hidden_layers if not self.is_gpt else cfg.n_layer
        self.heads = cfg.num_attention_heads if not self.is_gpt else cfg.n_head
        self.head_dim = cfg.hidden_size // self.heads
        self.kv: StaticKV | None = None
        #: The last voice's conditioning embeddings and their keys and values per layer (``_prefill``).
        self._prefix: tuple[Tensor, list[tuple[Tensor, Tensor]]] | None = None
        self._scale: float | None = None
        #: ``cuda_graphs.StepGraphs`` when CUDA graphs are on (``cuda_graphs.use_cuda_graphs``).
        self.graphs: Any = None

    # -- transformer pieces ------------------------------------------------------

    def _dtype(self) -> torch.dtype:
        """The dtype activations must have to enter the transformer (its norms' weights)."""
        norm = self.tfmr.h[0].ln_1 if self.is_gpt else self.tfmr.layers[0].input_layernorm
        return norm.weight.dtype

    def _prefill(self, embeds: Tensor, capacity: int, prefix: int = 0) -> Tensor:
        """Run the prompt through the HF module (chatterbox's numbers) and keep its cache.

        Returns the final-norm hidden states of the prompt's positions (from
        ``prefix`` on when the prefix was reused: callers read the last one).

        ``prefix``: the prompt's first ``prefix`` positions are the voice's
        conditioning, the same for every sentence spoken in that voice (Turbo:
        376 of about 400 positions). The transformer is causal, so their keys
        and values do not depend on what follows: they are kept, and a prompt
        that starts with the very same embeddings runs only its own text
        through the transformer. Measured on Turbo (2-core CPU): a sentence's
        prefill 0.8-1.1 s -> docs/engine.md. The kept positions differ from a
        whole prefill only by float rounding (a GEMM's blocking depends on
        its row count), so the exact-token path (``prefix`` 0) never reuses.
        """
        dtype = self._dtype()
        x = embeds.to(dtype)
        past, start = None, 0
        kept = self._prefix
        if (
            prefix
            and kept is not None
            and kept[0].shape == x[:, :prefix].shape
            and kept[0].dtype == x.dtype
            and torch.equal(kept[0], x[:, :prefix])
        ):
            from transformers import DynamicCache

            past = DynamicCache()
            for i, (k, v) in enumerate(kept[1]):
                past.update(k, v, i)  # HF concatenates into new tensors: the kept ones stay as they are
            start = prefix
        out = self.tfmr(inputs_embeds=x[:, start:], past_key_values=past, use_cache=True)
        cache = out.past_key_values
        if prefix and start == 0:
            self._prefix = (
                x[:, :prefix].clone(),
                [(layer.keys[:, :, :prefix].clone(), layer.values[:, :, :prefix].clone()) for layer in cache.layers],
            )
        batch, length = embeds.shape[0], embeds.shape[1]
        like = cache.layers[0].keys
        if self.kv is None or not self.kv.fits(batch, capacity, like):
            self.kv = None  # free the old buffers before making new ones
            self.kv = StaticKV(self.layers, batch, self.heads, self.head_dim, capacity, like)
        for i, layer in enumerate(cache.layers):
            self.kv.k[i, :, :, :length].copy_(layer.keys)
            self.kv.v[i, :, :, :length].copy_(layer.values)
        self.kv.length = length
        return out.last_hidden_state

    def _attend(self, i: int, q: Tensor, k: Tensor, v: Tensor, pos: int, scale: float | None) -> Tensor:
        """Write this token's key/value at ``pos`` and attend over positions 0..pos."""
        kv = self.kv
        assert kv is not None
        kv.k[i, :, :, pos : pos + 1].copy_(k)
        kv.v[i, :, :, pos : pos + 1].copy_(v)
        keys = kv.k[i, :, :, : pos + 1]
        values = kv.v[i, :, :, : pos + 1]
        return F.scaled_dot_product_attention(q, keys, values, scale=scale)

    def _step_llama(self, x: Tensor, pos: int) -> Tensor:
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        tfmr = self.tfmr
        batch = x.shape[0]
        position_ids = torch.tensor([[pos]], device=x.device)
        cos, sin = tfmr.rotary_emb(x, position_ids=position_ids)
        for i, layer in enumerate(tfmr.layers):
            attn = layer.self_attn
            h = layer.input_layernorm(x)
            q = attn.q_proj(h).view(batch, 1, -1, self.head_dim).transpose(1, 2)
            k = attn.k_proj(h).view(batch, 1, -1, self.head_dim).transpose(1, 2)
            v = attn.v_proj(h).view(batch, 1, -1, self.head_dim).transpose(1, 2)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            o = self._attend(i, q, k, v, pos, attn.scaling)
            o = attn.o_proj(o.transpose(1, 2).reshape(batch, 1, -1))
            x = x + o
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return tfmr.norm(x)

    def _step_gpt2(self, x: Tensor, pos: int) -> Tensor:
        """Turbo's step, written flat: about 1 ms a token less than the layers' own forwards.

        The norms are ``F.layer_norm`` on the modules' own weights, the
        position is the embedding's row, the MLP skips its dropout (an
        identity in eval) and the fused query/key/value projection is split
        by one view: the same ops on the same numbers (float32 tokens stay
        stock's exactly), fewer Python calls a layer.
        """
        tfmr, kv = self.tfmr, self.kv
        assert kv is not None
        batch, end = x.shape[0], pos + 1
        x = x + tfmr.wpe.weight[pos]
        for i, block in enumerate(tfmr.h):
            attn, mlp, ln1, ln2 = block.attn, block.mlp, block.ln_1, block.ln_2
            h = F.layer_norm(x, ln1.normalized_shape, ln1.weight, ln1.bias, ln1.eps)
            qkv = attn.c_attn(h).view(batch, 1, 3, self.heads, self.head_dim)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
            keys, values = kv.k[i], kv.v[i]
            keys[:, :, pos:end].copy_(k)
            values[:, :, pos:end].copy_(v)
            o = F.scaled_dot_product_attention(q, keys[:, :, :end], values[:, :, :end])
            x = attn.c_proj(o.transpose(1, 2).reshape(batch, 1, -1)) + x
            h = F.layer_norm(x, ln2.normalized_shape, ln2.weight, ln2.bias, ln2.eps)
            x = x + mlp.c_proj(mlp.act(mlp.c_fc(h)))
        ln = tfmr.ln_f
        return F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)

    # -- the graph-friendly step (fixed shapes, position in a tensor) ------------------

    def _attend_static(self, i: int, q: Tensor, k: Tensor, v: Tensor, position: Tensor, bucket: int) -> Tensor:
        """Like ``_attend`` over a fixed window of ``bucket`` slots, masking those after ``position``."""
        kv = self.kv
        assert kv is not None
        kv.k[i].index_copy_(2, position, k)
        kv.v[i].index_copy_(2, position, v)
        keys = kv.k[i, :, :, :bucket]
        values = kv.v[i, :, :, :bucket]
        mask = torch.arange(bucket, device=q.device) <= position
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask.view(1, 1, 1, bucket), scale=self._scale)

    def step_static(self, x: Tensor, position: Tensor, bucket: int) -> Tensor:
        """The decode step with every shape fixed by (batch, bucket): what a CUDA graph captures.

        Does not advance ``kv.length`` (the caller does: the graph cannot).
        """
        tfmr = self.tfmr
        batch = x.shape[0]
        position_ids = position.view(1, 1)
        if self.is_gpt:
            self._scale = None
            x = x + tfmr.wpe(position_ids)
            for i, block in enumerate(tfmr.h):
                attn = block.attn
                h = block.ln_1(x)
                q, k, v = attn.c_attn(h).split(attn.split_size, dim=2)
                q, k, v = (t.view(batch, 1, -1, self.head_dim).transpose(1, 2) for t in (q, k, v))
                o = self._attend_static(i, q, k, v, position, bucket)
                x = attn.c_proj(o.transpose(1, 2).reshape(batch, 1, -1)) + x
                x = x + block.mlp(block.ln_2(x))
            return tfmr.ln_f(x)
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        cos, sin = tfmr.rotary_emb(x, position_ids=position_ids)
        for i, layer in enumerate(tfmr.layers):
            attn = layer.self_attn
            self._scale = attn.scaling
            h = layer.input_layernorm(x)
            q = attn.q_proj(h).view(batch, 1, -1, self.head_dim).transpose(1, 2)
            k = attn.k_proj(h).view(batch, 1, -1, self.head_dim).transpose(1, 2)
            v = attn.v_proj(h).view(batch, 1, -1, self.head_dim).transpose(1, 2)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            o = self._attend_static(i, q, k, v, position, bucket)
            x = x + attn.o_proj(o.transpose(1, 2).reshape(batch, 1, -1))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return tfmr.norm(x)

    def step(self, embed: Tensor) -> Tensor:
        """One new position for every batch row: (B, 1, C) embeddings -> (B, 1, C) final hidden state."""
        kv = self.kv
        assert kv is not None
        pos = kv.length
        if pos >= kv.capacity:
            raise RuntimeError("speech-token budget exceeds the KV cache")
        if self.graphs is not None:
            return self.graphs.step(embed)
        x = embed.to(self._dtype())
        out = self._step_gpt2(x, pos) if self.is_gpt else self._step_llama(x, pos)
        kv.length = pos + 1
        return out

    # -- the loops ---------------------------------------------------------------------

    @torch.inference_mode()
    def original(
        self,
        t3_cond: Any,
        text_tokens: Tensor,
        sampling: Sampling,
        max_new_tokens: int,
        cancel: threading.Event | None = None,
        generator: torch.Generator | None = None,
        reuse_prefix: bool = False,
    ) -> Iterator[int]:
        """``T3.inference``'s loop (CFG batch of two), yielding each speech token, EOS included.

        ``text_tokens`` are as chatterbox's ``generate`` makes them: padded
        with start/stop text tokens, two rows when ``cfg_weight > 0``.
        ``generator``: draw from it instead of torch's global random stream
        (a loop on its own thread must not move the stream another thread
        draws from); None draws as stock does. ``reuse_prefix``: reuse the
        voice's conditioning from the previous prompt (``_prefill``); off,
        the tokens are exactly stock's.
        """
        from transformers.generation.logits_process import (
            MinPLogitsWarper,
            RepetitionPenaltyLogitsProcessor,
            TopPLogitsWarper,
        )

        t3, hp = self.t3, self.t3.hp
        text_tokens = torch.atleast_2d(text_tokens).to(dtype=torch.long, device=t3.device)
        initial = hp.start_speech_token * torch.ones_like(text_tokens[:, :1])
        embeds, len_cond = t3.prepare_input_embeds(
            t3_cond=t3_cond, text_tokens=text_tokens, speech_tokens=initial, cfg_weight=sampling.cfg_weight
        )
        device = embeds.device
        bos = torch.tensor([[hp.start_speech_token]], dtype=torch.long, device=device)
        bos_embed = t3.speech_emb(bos) + t3.speech_pos_emb.get_fixed_embedding(0)
        bos_embed = torch.cat([bos_embed, bos_embed])
        inputs = torch.cat([embeds, bos_embed], dim=1)
        # stock builds these with CFG's batch of 2 even when cfg_weight is 0
        # (text rows are duplicated only then): the shapes must agree.
        generated = bos.clone()
        top_p = TopPLogitsWarper(top_p=sampling.top_p)
        min_p = MinPLogitsWarper(min_p=sampling.min_p)
        repetition = RepetitionPenaltyLogitsProcessor(penalty=float(sampling.repetition_penalty))
        cfg = torch.as_tensor(sampling.cfg_weight, device=device, dtype=torch.float32)

        prefix = int(len_cond) if reuse_prefix else 0
        hidden = self._prefill(inputs, cache_capacity(inputs.shape[1] + max_new_tokens + 1), prefix)
        # stock applies the head to every prompt position; the same call keeps
        # its float rounding (GEMM blocking depends on the row count).
        logits_all = t3.speech_head(hidden.to(t3.speech_head.weight.dtype))
        step_logits = logits_all[:, -1, :].float()
        del logits_all, hidden
        for i in range(max_new_tokens):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            cond, uncond = step_logits[0:1, :], step_logits[1:2, :]
            logits = cond + cfg * (cond - uncond)
            ids = generated[:1, ...]
            logits = repetition(ids, logits)
            if sampling.temperature != 1.0:
                logits = logits / sampling.temperature
            logits = min_p(ids, logits)
            logits = top_p(ids, logits)
            probs = torch.softmax(logits, dim=-1)
            token = torch.multinomial(probs, num_samples=1, generator=generator)
            generated = torch.cat([generated, token], dim=1)
            value = int(token)
            yield value
            if value == hp.stop_speech_token:
                return
            embed = t3.speech_emb(token) + t3.speech_pos_emb.get_fixed_embedding(i + 1)
            embed = torch.cat([embed, embed])
            hidden = self.step(embed)
            step_logits = t3.speech_head(hidden.to(t3.speech_head.weight.dtype))[:, -1, :].float()

    @torch.inference_mode()
    def turbo(
        self,
        t3_cond: Any,
        text_tokens: Tensor,
        sampling: Sampling,
        max_tokens: int,
        cancel: threading.Event | None = None,
        generator: torch.Generator | None = None,
        reuse_prefix: bool = False,
    ) -> Iterator[int]:
        """``T3.inference_turbo``'s loop, yielding each speech token (EOS included).

        ``max_tokens`` counts every sampled token; stock's ``max_gen_len`` is
        ``max_tokens - 1`` (it samples one before its loop). ``generator``
        and ``reuse_prefix``: as in ``original``.
        """
        from transformers.generation.logits_process import (
            LogitsProcessorList,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        t3, hp = self.t3, self.t3.hp
        processors = LogitsProcessorList()
        temperature = sampling.temperature
        if temperature > 0 and temperature != 1.0:
            processors.append(TemperatureLogitsWarper(temperature))
        if sampling.top_k > 0:
            processors.append(TopKLogitsWarper(sampling.top_k))
        if sampling.top_p < 1.0:
            processors.append(TopPLogitsWarper(sampling.top_p))
        if sampling.repetition_penalty != 1.0:
            processors.append(RepetitionPenaltyLogitsProcessor(sampling.repetition_penalty))

        start = hp.start_speech_token * torch.ones_like(text_tokens[:, :1])
        embeds, len_cond = t3.prepare_input_embeds(
            t3_cond=t3_cond, text_tokens=text_tokens, speech_tokens=start, cfg_weight=0.0
        )
        prefix = int(len_cond) if reuse_prefix else 0
        hidden = self._prefill(embeds, cache_capacity(embeds.shape[1] + max_tokens + 1), prefix)
        logits = t3.speech_head(hidden[:, -1:].to(t3.speech_head.weight.dtype))[:, -1, :].float()
        del hidden
        history = start
        count = 0
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            processed = processors(history, logits)
            if count > 0 and torch.all(processed == -float("inf")):
                return
            probs = F.softmax(processed, dim=-1)
            token = torch.multinomial(probs, num_samples=1, generator=generator)
            history = token if count == 0 else torch.cat([history, token], dim=1)
            count += 1
            value = int(token)
            yield value
            # stock checks for EOS only after its first loop step, so an EOS
            # drawn first does not stop it (it is filtered out downstream).
            if (value == hp.stop_speech_token and count > 1) or count >= max_tokens:
                return
            hidden = self.step(t3.speech_emb(token))
            logits = t3.speech_head(hidden.to(t3.speech_head.weight.dtype))[:, -1, :].float()


@torch.inference_mode()
def teacher_forced_logits(
    fast: FastT3, t3_cond: Any, text_tokens: Tensor, tokens: list[int], cfg_weight: float
) -> Tensor:
    """Raw next-token logits (CFG-combined for the original) at each step of a given token sequence.

    Row ``i`` is the distribution the loop samples token ``i`` from, before
    repetition penalty, temperature and filtering: what a precision change
    moves. Used to compare precisions on identical inputs.
    """
    t3, hp = fast.t3, fast.t3.hp
    text_tokens = torch.atleast_2d(text_tokens).to(dtype=torch.long, device=t3.device)
    start = hp.start_speech_token * torch.ones_like(text_tokens[:, :1])
    embeds, _ = t3.prepare_input_embeds(
        t3_cond=t3_cond, text_tokens=text_tokens, speech_tokens=start, cfg_weight=0.0 if fast.is_gpt else cfg_weight
    )
    if not fast.is_gpt:
        bos = torch.tensor([[hp.start_speech_token]], dtype=torch.long, device=embeds.device)
        bos_embed = t3.speech_emb(bos) + t3.speech_pos_emb.get_fixed_embedding(0)
        embeds = torch.cat([embeds, bos_embed.expand(embeds.shape[0], -1, -1)], dim=1)
    hidden = fast._prefill(embeds, cache_capacity(embeds.shape[1] + len(tokens) + 1))[:, -1:]
    rows = []
    for i, token in enumerate(tokens):
        logits = t3.speech_head(hidden.to(t3.speech_head.weight.dtype))[:, -1, :].float()
        if not fast.is_gpt:
            logits = logits[0:1] + cfg_weight * (logits[0:1] - logits[1:2])
        rows.append(logits[0])
        ids = torch.tensor([[token]], dtype=torch.long, device=embeds.device)
        embed = t3.speech_emb(ids)
        if not fast.is_gpt:
            embed = (embed + t3.speech_pos_emb.get_fixed_embedding(i + 1)).expand(embeds.shape[0], -1, -1)
        hidden = fast.step(embed)
    return torch.stack(rows)


def collect(tokens: Iterator[int], stop_token: int, on_token: Callable[[int], None] | None = None) -> list[int]:
    """Drain a token generator into a list without the stop token."""
    out: list[int] = []
    for token in tokens:
        if on_token is not None:
            on_token(token)
        if token == stop_token:
            break
        out.append(token)
    return out
