"""Our decode step against the HF transformer it stands in for, on tiny random models.

The real-checkpoint tests (tests/integration/test_fast_t3.py) check exact
tokens against chatterbox; these check the step math in milliseconds, the
graph-shaped step (fixed window plus mask, what a CUDA graph captures), and
the CUDA-graph bookkeeping that needs no GPU: bucket choice, one thread,
re-capture when the KV buffers change.
"""

from __future__ import annotations

import copy
import threading
from types import SimpleNamespace

import pytest
import torch
from transformers import GPT2Config, GPT2Model, LlamaConfig, LlamaModel

from chatterbox_tray.daemon.cuda_graphs import StepGraphs, WrongThread, bucket_for
from chatterbox_tray.daemon.precision import conv1d_to_linear
from chatterbox_tray.daemon.t3_decode import CACHE_STEP, FastT3, cache_capacity


def tiny(kind: str) -> SimpleNamespace:
    torch.manual_seed(0)
    if kind == "llama":
        cfg = LlamaConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            head_dim=16,
            vocab_size=8,
            attn_implementation="sdpa",
            rope_scaling=dict(
                factor=8.0,
                high_freq_factor=4.0,
                low_freq_factor=1.0,
                original_max_position_embeddings=8192,
                rope_type="llama3",
            ),
            rope_theta=500000.0,
        )
        return SimpleNamespace(tfmr=LlamaModel(cfg).eval(), cfg=cfg, is_gpt=False)
    cfg = GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=512, vocab_size=8, attn_implementation="sdpa")
    return SimpleNamespace(tfmr=GPT2Model(cfg).eval(), cfg=cfg, is_gpt=True)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_prefill_then_steps_match_one_hf_forward_over_the_whole_sequence(kind: str) -> None:
    t3 = tiny(kind)
    seq = torch.randn(2, 12, 64)
    with torch.inference_mode():
        whole = t3.tfmr(inputs_embeds=seq).last_hidden_state
        fast = FastT3(t3)
        fast._prefill(seq[:, :7], cache_capacity(12))
        steps = [fast.step(seq[:, i : i + 1]) for i in range(7, 12)]
    torch.testing.assert_close(torch.cat(steps, dim=1), whole[:, 7:], rtol=1e-5, atol=1e-5)
    assert fast.kv is not None and fast.kv.length == 12


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_graph_shaped_step_matches_the_plain_step(kind: str) -> None:
    t3 = tiny(kind)
    seq = torch.randn(1, 10, 64)
    with torch.inference_mode():
        plain = FastT3(t3)
        plain._prefill(seq[:, :6], cache_capacity(10))
        expected = [plain.step(seq[:, i : i + 1]) for i in range(6, 10)]
        static = FastT3(t3)
        static._prefill(seq[:, :6], cache_capacity(10))
        got = []
        for i in range(6, 10):
            assert static.kv is not None
            position = torch.tensor([static.kv.length])
            got.append(static.step_static(seq[:, i : i + 1], position, bucket_for(static.kv.length, 256)))
            static.kv.length += 1
    torch.testing.assert_close(torch.cat(got, dim=1), torch.cat(expected, dim=1), rtol=1e-5, atol=1e-5)


def test_gpt2_conv1d_swapped_for_linear_computes_the_same() -> None:
    t3 = tiny("gpt2")
    x = torch.randn(1, 5, 64)
    with torch.inference_mode():
        before = t3.tfmr(inputs_embeds=x).last_hidden_state
        conv1d_to_linear(t3.tfmr)
        after = t3.tfmr(inputs_embeds=x).last_hidden_state
    assert isinstance(t3.tfmr.h[0].attn.c_attn, torch.nn.Linear)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_bucket_is_the_next_cache_step_within_capacity() -> None:
    assert bucket_for(0, 1024) == CACHE_STEP
    assert bucket_for(CACHE_STEP - 1, 1024) == CACHE_STEP
    assert bucket_for(CACHE_STEP, 1024) == 2 * CACHE_STEP
    assert bucket_for(1000, 1024) == 1024
    with pytest.raises(ValueError, match="outside"):
        bucket_for(1024, 1024)


def test_graphs_stay_on_their_thread_and_are_dropped_with_their_kv_buffers() -> None:
    t3 = tiny("llama")
    fast = FastT3(t3)
    graphs = StepGraphs(fast)
    with torch.inference_mode():
        fast._prefill(torch.randn(2, 4, 64), 256)
    graphs._check()  # first use claims the thread
    graphs.graphs[graphs.key(2, 4)] = "captured"
    graphs._check()
    assert graphs.graphs == {(2, 256): "captured"}

    errors: list[BaseException] = []

    def elsewhere() -> None:
        try:
            graphs._check()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], WrongThread)

    # A longer utterance reallocates the buffers: graphs captured on the old ones go.
    with torch.inference_mode():
        fast._prefill(torch.randn(2, 4, 64), 512)
    graphs._check()
    assert graphs.graphs == {}
    # A reload builds a new FastT3, hence new StepGraphs: nothing is shared between models.
    assert StepGraphs(FastT3(tiny("llama"))).graphs == {}


def test_bfloat16_gpt2_runs_linear_layers_close_to_float32_and_float32_is_left_alone() -> None:
    from transformers.pytorch_utils import Conv1D

    from chatterbox_tray.daemon.int8 import PackedLinear
    from chatterbox_tray.daemon.precision import convert_transformer

    t3 = tiny("gpt2")
    x = torch.randn(1, 5, 64)
    with torch.inference_mode():
        reference = t3.tfmr(inputs_embeds=x).last_hidden_state
        kept = convert_transformer(t3.tfmr, "float32", "cpu")
        assert isinstance(kept.h[0].attn.c_attn, Conv1D)  # stock numerics: the exact-token tests rely on it
        assert type(kept.h[0].mlp.act).__name__ == "NewGELUActivation"
        half = convert_transformer(copy.deepcopy(t3.tfmr), "bfloat16", "cpu")
        got = half(inputs_embeds=x.bfloat16()).last_hidden_state.float()
    # bfloat16 linears packed for oneDNN (int8.PackedLinear)
    assert isinstance(half.h[0].attn.c_attn, PackedLinear)
    assert half.h[0].attn.c_attn.packed.dtype == torch.bfloat16
    assert isinstance(half.h[0].mlp.act, torch.nn.GELU) and half.h[0].mlp.act.approximate == "tanh"
    error = (got - reference).norm() / reference.norm()
    assert 0 < error < 0.05


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_a_voice_prefix_is_reused_and_matches_a_whole_prefill(kind: str) -> None:
    """Two prompts that share their first 9 positions (the voice's conditioning): the second runs
    only its own positions through the transformer, and its cache and steps match a whole prefill."""
    t3 = tiny(kind)
    voice = torch.randn(2, 9, 64)
    first = torch.cat([voice, torch.randn(2, 4, 64)], dim=1)
    second = torch.cat([voice, torch.randn(2, 3, 64)], dim=1)
    nxt = torch.randn(2, 1, 64)
    calls: list[int] = []
    hook = t3.tfmr.register_forward_pre_hook(
        lambda _m, _a, kw: calls.append(kw["inputs_embeds"].shape[1]), with_kwargs=True
    )
    with torch.inference_mode():
        reused = FastT3(t3)
        reused._prefill(first, cache_capacity(20), prefix=9)
        last = reused._prefill(second, cache_capacity(20), prefix=9)[:, -1:]
        step = reused.step(nxt)
        hook.remove()
        whole = FastT3(t3)
        expected_last = whole._prefill(second, cache_capacity(20))[:, -1:]
        expected_step = whole.step(nxt)
    assert calls == [13, 3]  # the second prompt ran 3 positions, not 12
    torch.testing.assert_close(last, expected_last, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(step, expected_step, rtol=1e-5, atol=1e-5)
    assert reused.kv is not None and reused.kv.length == whole.kv.length == 13


def test_a_different_voice_is_not_taken_for_the_kept_one() -> None:
    t3 = tiny("gpt2")
    calls: list[int] = []
    t3.tfmr.register_forward_pre_hook(lambda _m, _a, kw: calls.append(kw["inputs_embeds"].shape[1]), with_kwargs=True)
    with torch.inference_mode():
        fast = FastT3(t3)
        fast._prefill(torch.randn(1, 12, 64), cache_capacity(20), prefix=9)
        fast._prefill(torch.randn(1, 12, 64), cache_capacity(20), prefix=9)
        fast._prefill(torch.randn(1, 12, 64), cache_capacity(20))  # prefix 0: the exact path never reuses
    assert calls == [12, 12, 12]


def test_int8_weight_only_linear_is_close_to_the_float_layer_and_a_quarter_of_its_bytes() -> None:
    from chatterbox_tray.daemon.int8 import Int8Linear, linears_to_int8

    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 96)
    x = torch.randn(3, 5, 256)
    with torch.inference_mode():
        q = Int8Linear(linear)
        got = q(x.to(torch.bfloat16)).float()
        want = linear(x)
    assert q.weight_int8.dtype == torch.int8 and q.weight_int8.numel() == linear.weight.numel()
    # Per-channel rounding to 1/127 of each row's largest weight, bf16 activations: about 1 % relative.
    rel = (got - want).norm() / want.norm()
    assert rel < 0.02, rel
    # A prefill's many rows take the dequantised path: the same layer's result, row for row.
    many = torch.randn(Int8Linear.MANY_ROWS + 3, 256)
    with torch.inference_mode():
        together = q(many.to(torch.bfloat16)).float()
        one_by_one = torch.cat([q(row.to(torch.bfloat16)[None]).float() for row in many])
    assert ((together - one_by_one).norm() / one_by_one.norm()) < 0.005
    t3 = tiny("gpt2")
    conv1d_to_linear(t3.tfmr)
    linears_to_int8(t3.tfmr)
    assert not any(isinstance(m, torch.nn.Linear) for m in t3.tfmr.modules())


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_mixed_precision_puts_the_chosen_parts_in_int8_and_keeps_the_rest_bfloat16(kind: str) -> None:
    from chatterbox_tray.daemon.int8 import Int8Linear, PackedLinear
    from chatterbox_tray.daemon.precision import convert_transformer

    t3 = tiny(kind)
    seq = torch.randn(1, 6, 64)
    with torch.inference_mode():
        want = t3.tfmr(inputs_embeds=seq).last_hidden_state
        mixed = convert_transformer(copy.deepcopy(t3.tfmr), "mixed", "cpu")
        got = mixed(inputs_embeds=seq).last_hidden_state
    # only the linear layers change: the residual stream and the norms stay float32
    assert got.dtype == torch.float32
    block = mixed.h[0] if kind == "gpt2" else mixed.layers[0]
    int8 = {name for name, m in block.named_modules() if isinstance(m, Int8Linear)}
    bf16 = {name for name, m in block.named_modules() if isinstance(m, PackedLinear)}
    assert not any(isinstance(m, torch.nn.Linear) for m in block.modules())
    if kind == "gpt2":
        assert int8 == {"attn.c_attn", "attn.c_proj", "mlp.c_fc"} and bf16 == {"mlp.c_proj"}
    else:
        assert int8 == {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"}
        assert bf16 == {"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}
    assert all(m.packed.dtype == torch.bfloat16 for m in block.modules() if isinstance(m, PackedLinear))
    assert ((got - want).norm() / want.norm()) < 0.05


@pytest.mark.parametrize("rows", [1, 2, 37])
def test_packed_bfloat16_linear_gives_the_plain_layers_result(rows: int) -> None:
    """One row (decode), two (the original's guidance pair), many (a prefill)."""
    from chatterbox_tray.daemon.int8 import PackedLinear

    plain = torch.nn.Linear(256, 96).to(torch.bfloat16)
    packed = PackedLinear(plain)
    x = torch.randn(1, rows, 256, dtype=torch.bfloat16)
    with torch.inference_mode():
        want, got = plain(x).float(), packed(x).float()
    assert got.shape == want.shape == (1, rows, 96)
    # the same products, summed in another order at most: within bfloat16's last bit
    assert torch.allclose(got, want, rtol=1e-2, atol=1e-2)
    assert (got - want).norm() / want.norm() < 1e-2


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_int8_keeps_the_stream_between_its_layers_float32_and_lands_closer_to_float32(kind: str) -> None:
    """``int8`` reduces only the linear layers; the old int8 (bfloat16 between them) lands further away.

    Prefill and decode steps through our own loop, against float32's hidden
    states on the same inputs: the float32 stream's relative error must be
    the smaller one (docs/engine.md measures the same on the real model as
    KL divergence: Turbo 1.17e-4 -> 7.9e-5).
    """
    from chatterbox_tray.daemon.int8 import linears_to_int8
    from chatterbox_tray.daemon.precision import convert_transformer, fuse_gelu

    t3 = tiny(kind)
    old = copy.deepcopy(t3.tfmr)
    conv1d_to_linear(old)
    fuse_gelu(old)
    old.to(torch.bfloat16)
    linears_to_int8(old)
    new = convert_transformer(copy.deepcopy(t3.tfmr), "int8", "cpu")
    torch.manual_seed(1)
    prompt, steps = torch.randn(1, 12, 64), [torch.randn(1, 1, 64) for _ in range(8)]

    def hidden(tfmr: torch.nn.Module) -> torch.Tensor:
        fast = FastT3(t3, tfmr)
        with torch.inference_mode():
            rows = [fast._prefill(prompt, 256)[:, -1:].float()]
            rows += [fast.step(x).float() for x in steps]
        return torch.cat(rows, dim=1)

    want = hidden(t3.tfmr)
    got_new, got_old = hidden(new), hidden(old)
    assert (
        got_new.dtype == torch.float32
        and new.get_submodule("h.0.ln_1" if kind == "gpt2" else "norm").weight.dtype == torch.float32
    )
    error_new = ((got_new - want).norm() / want.norm()).item()
    error_old = ((got_old - want).norm() / want.norm()).item()
    assert error_new < error_old
