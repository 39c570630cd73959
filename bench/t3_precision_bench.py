"""T3 decode: stock loop vs ours, and our loop in each precision, in one run.

For one variant's checkpoint it measures, interleaved round by round so a
busy machine slows every candidate alike:

* ms per token of chatterbox's stock loop and of ours in float32, bfloat16,
  int8 weight-only with per-channel scales (``precision`` ``int8``), the
  ``mixed`` scheme (``daemon/precision.py``: the parts that move the
  distribution least in int8), another mix (MLPs int8, attention bfloat16),
  int8 with bfloat16 between the linear layers (``int8`` until 2026-12-05:
  ``int8`` and ``mixed`` now keep the residual stream and norms float32),
  bfloat16 linears with float32 between them, torch's ``quantize_dynamic`` (the
  former ``int8``: activations rounded to 8 bits too) and, when torchao is
  installed, torchao's int8 weight-only and int8 dynamic schemes;
* how far each precision moves the next-token distribution from float32 on
  identical inputs (teacher forcing on a float32-sampled sequence): mean and
  max KL(fp32 || p) of the tempered softmax, and top-1 agreement.

Run: ``CHATTERBOX_TRAY_TEST_CKPT_DIR=/work/ckpt uv run python -m bench.t3_precision_bench
--variant original --steps 48``. Random weights: the speed is the real one,
the distribution distances are indicative only (trained weights are smoother).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import statistics
import time
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F

from chatterbox_tray.daemon.int8 import linears_to_int8, pack_bfloat16_linears
from chatterbox_tray.daemon.precision import conv1d_to_linear, convert_transformer, keep_float32_between
from chatterbox_tray.daemon.t3_decode import FastT3, Sampling, teacher_forced_logits


def _t3(variant: str) -> Any:
    """T3 alone from the test checkpoint, as chatterbox's ``from_local`` builds it (no S3Gen: memory)."""
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config
    from safetensors.torch import load_file

    from tests.support.checkpoint import ensure_checkpoint

    folder = ensure_checkpoint(variant)
    if variant == "turbo":
        hp = T3Config(text_tokens_dict_size=50276)
        hp.llama_config_name = "GPT2_medium"
        hp.speech_tokens_dict_size = 6563
        hp.input_pos_emb = None
        hp.speech_cond_prompt_len = 375
        hp.use_perceiver_resampler = False
        hp.emotion_adv = False
        t3 = T3(hp)
        t3.load_state_dict(load_file(folder / "t3_turbo_v1.safetensors"))
        del t3.tfmr.wte
    else:
        t3 = T3()
        t3.load_state_dict(load_file(folder / "t3_cfg.safetensors"))
    return t3.eval(), folder


def _inputs(t3: Any, folder: Any, variant: str, text: str) -> tuple[Any, Any]:
    """Random speaker conditionals of the real shapes, and the text's tokens as ``generate`` makes them."""
    from chatterbox.models.t3.modules.cond_enc import T3Cond
    from chatterbox.tts import punc_norm

    gen = torch.Generator().manual_seed(0)
    prompt = t3.hp.speech_cond_prompt_len
    cond = T3Cond(
        speaker_emb=torch.randn(1, 256, generator=gen),
        cond_prompt_speech_tokens=torch.randint(0, 6561, (1, prompt), generator=gen),
        emotion_adv=0.5 * torch.ones(1, 1, 1),
    )
    text = punc_norm(text)
    if variant == "turbo":
        from transformers import AutoTokenizer

        return cond, AutoTokenizer.from_pretrained(folder)(text, return_tensors="pt").input_ids
    from chatterbox.models.tokenizers import EnTokenizer

    tokens = EnTokenizer(str(folder / "tokenizer.json")).text_to_tokens(text)
    tokens = torch.cat([tokens, tokens])
    tokens = F.pad(tokens, (1, 0), value=t3.hp.start_text_token)
    return cond, F.pad(tokens, (0, 1), value=t3.hp.stop_text_token)


def _torchao(tfmr: Any, scheme: str) -> Any:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig, quantize_

    conv1d_to_linear(tfmr)
    quantize_(tfmr, Int8WeightOnlyConfig() if scheme == "wo" else Int8DynamicActivationInt8WeightConfig())
    return tfmr


def _mlp_int8(tfmr: Any) -> Any:
    """The mixed scheme: bfloat16 everywhere, then only the MLPs' linears in int8 weight-only."""
    convert_transformer(tfmr, "bfloat16", "cpu", pack=False)
    for block in getattr(tfmr, "h", None) or tfmr.layers:
        linears_to_int8(block.mlp)
    pack_bfloat16_linears(tfmr)
    return tfmr


def _bfloat16_between(tfmr: Any, int8: bool) -> Any:
    """Linears int8 (or bfloat16) and everything between them bfloat16: ``int8`` before 2026-12-05."""
    convert_transformer(tfmr, "bfloat16", "cpu", pack=False)
    if int8:
        linears_to_int8(tfmr)
    pack_bfloat16_linears(tfmr)
    return tfmr


def _float32_between(tfmr: Any) -> Any:
    """Linears bfloat16 and packed, everything between them float32 (as ``int8`` and ``mixed`` now are)."""
    conv1d_to_linear(tfmr)
    for block in getattr(tfmr, "h", None) or tfmr.layers:
        pack_bfloat16_linears(block)
    keep_float32_between(tfmr)
    return tfmr


def _dynamic(tfmr: Any) -> Any:
    """torch's ``quantize_dynamic``: int8 weights and int8 activations (per tensor, each call)."""
    from torch.ao.quantization import quantize_dynamic

    conv1d_to_linear(tfmr)
    return quantize_dynamic(tfmr, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


def _forced(out: list[Any], *args: Any) -> None:
    out.append(teacher_forced_logits(*args))


def _step_times(fn: Any, module: Any) -> list[float]:
    """Seconds between consecutive calls of ``module``'s step (first call excluded: prefill)."""
    stamps: list[float] = []
    handle = module.register_forward_pre_hook(lambda *_: stamps.append(time.perf_counter()))
    try:
        fn()
    finally:
        handle.remove()
    return [b - a for a, b in itertools.pairwise(stamps)]


def _call_times(fn: Any, fast: FastT3) -> list[float]:
    """Seconds between consecutive calls of our loop's ``step`` (the first gap includes the first step only)."""
    stamps: list[float] = []
    step = fast.step

    def timed(embed: Any) -> Any:
        stamps.append(time.perf_counter())
        return step(embed)

    fast.step = timed  # type: ignore[method-assign]
    try:
        fn()
    finally:
        del fast.step
    return [b - a for a, b in itertools.pairwise(stamps)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="original", choices=("original", "turbo"))
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument(
        "--only", default="", help="semicolon-separated name prefixes of the schemes to run (float32 always runs)"
    )
    parser.add_argument("--text", default="The quick brown fox jumps over the lazy dog near the river bank.")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t3, folder = _t3(args.variant)
    cond, text_tokens = _inputs(t3, folder, args.variant, args.text)
    sampling = Sampling(top_p=0.95 if args.variant == "turbo" else 1.0)

    # One converted copy alive at a time (memory), each timed interleaved with
    # the stock loop, so every ratio compares runs under the same load.
    makers: dict[str, Any] = {
        "float32": lambda: t3.tfmr,
        "bfloat16": lambda: convert_transformer(copy.deepcopy(t3.tfmr), "bfloat16", "cpu"),
        "int8 weight-only (int8, CPU auto)": lambda: convert_transformer(copy.deepcopy(t3.tfmr), "int8", "cpu"),
        "mixed": lambda: convert_transformer(copy.deepcopy(t3.tfmr), "mixed", "cpu"),
        "int8 MLP, bf16 attention": lambda: _mlp_int8(copy.deepcopy(t3.tfmr)),
        "int8, bf16 between (old)": lambda: _bfloat16_between(copy.deepcopy(t3.tfmr), int8=True),
        "bf16 linears, f32 between": lambda: _float32_between(copy.deepcopy(t3.tfmr)),
        "int8 dynamic (quantize_dynamic)": lambda: _dynamic(copy.deepcopy(t3.tfmr)),
    }
    try:
        import torchao  # noqa: F401

        makers["int8 weight-only (torchao)"] = lambda: _torchao(copy.deepcopy(t3.tfmr), "wo")
        makers["int8 dynamic (torchao)"] = lambda: _torchao(copy.deepcopy(t3.tfmr), "dyn")
    except ImportError:
        print("torchao not installed: its schemes skipped")

    if args.only:
        wanted = tuple(p.strip() for p in args.only.split(";"))
        makers = {n: m for n, m in makers.items() if n == "float32" or n.startswith(wanted)}

    # The reference sequence: float32, our loop (identical to stock's, tested).
    torch.manual_seed(1)
    reference = FastT3(t3)
    gen = reference.original if args.variant == "original" else reference.turbo
    tokens = [t for t in gen(cond, text_tokens, sampling, args.steps) if t < 6561]
    tokens = (tokens + [1] * args.steps)[: args.steps]  # pad if an EOS came early: the distribution still counts
    del reference

    def stock() -> None:
        torch.manual_seed(1)
        if args.variant == "original":
            t3.inference(t3_cond=cond, text_tokens=text_tokens, max_new_tokens=args.steps, top_p=1.0)
        else:
            t3.inference_turbo(cond, text_tokens, max_gen_len=args.steps - 1)

    times: dict[str, tuple[list[float], list[float]]] = {}
    logits: dict[str, torch.Tensor] = {}
    for name, make in makers.items():
        fast = FastT3(t3, make())
        ours: list[float] = []
        theirs: list[float] = []
        out: list[torch.Tensor] = []
        for _ in range(args.rounds):
            theirs += _step_times(stock, t3.tfmr)
            ours += _call_times(partial(_forced, out, fast, cond, text_tokens, tokens, sampling.cfg_weight), fast)
        times[name] = (ours, theirs)
        logits[name] = out[0]
        del fast, out
        print(f"{name}: ours {statistics.median(ours) * 1e3:.1f} ms/token, stock {statistics.median(theirs) * 1e3:.1f}")

    ref = F.log_softmax(logits["float32"] / sampling.temperature, dim=-1)
    print(f"\nT3 decode, {args.variant}, {args.steps} steps x {args.rounds} rounds, threads={torch.get_num_threads()}")
    print(f"{'ours in':28} {'ms/token':>9} {'stock':>9} {'speed-up':>9} {'KL mean':>9} {'KL max':>9} {'top-1':>7}")
    for name, (ours, theirs) in times.items():
        ms, stock_ms = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
        lp = F.log_softmax(logits[name] / sampling.temperature, dim=-1)
        kl = (ref.exp() * (ref - lp)).sum(-1)
        top1 = (logits[name].argmax(-1) == logits["float32"].argmax(-1)).float().mean()
        print(
            f"{name:28} {ms:9.1f} {stock_ms:9.1f} {stock_ms / ms:8.2f}x"
            f" {kl.mean():9.2e} {kl.max():9.2e} {top1 * 100:6.1f}%"
        )


if __name__ == "__main__":
    main()
