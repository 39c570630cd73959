"""S3Gen's flow estimator in torch, OpenVINO and ONNX Runtime, side by side in one run.

The estimator (the flow's U-Net/transformer, called twice a sentence by
Turbo's meanflow solver and ten times by the original's) is S3Gen's largest
cost on a CPU. This bench captures its real inputs from one whole-sentence
decode of the random-weight Turbo checkpoint (``--tokens`` speech tokens
over the voice's reference prompt) and times one call, best of
``--rounds``, at ``--threads`` threads in:

* torch float32 (chatterbox's own) and torch bfloat16 (``use_bfloat16``'s
  ``InBFloat16``, what the daemon runs on a CPU);
* OpenVINO (``openvino.convert_model`` of the same module) with its
  ``INFERENCE_PRECISION_HINT`` f32 and bf16;
* ONNX Runtime (``torch.onnx.export``, CPU execution provider) in float32.

Each candidate's output is compared with torch float32's (relative error).
The runtimes are not dependencies of the app: install them into the
environment to run this (``uv pip install openvino onnxruntime onnx onnxscript``);
a runtime that is missing is skipped and said so.

Run alone (nothing else on the CPU): ``uv run python -m bench.s3gen_runtime_bench``.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.s3gen_quality_bench import _s3gen

NAMES = ("x", "mask", "mu", "t", "spks", "cond", "r")


def _inputs(s3gen: Any, ref: dict, tokens: list[int]) -> dict[str, torch.Tensor]:
    """The estimator's keyword inputs from the first call of a real whole-sentence decode."""
    from chatterbox_tray.daemon.s3gen_stream import StreamingS3Gen

    estimator = s3gen.flow.decoder.estimator
    seen: dict[str, torch.Tensor] = {}
    forward = estimator.forward

    def capture(*args: Any, **kwargs: Any) -> Any:
        if not seen:
            seen.update({name: value.clone() for name, value in zip(NAMES, args, strict=False)})
            seen.update({name: value.clone() for name, value in kwargs.items() if isinstance(value, torch.Tensor)})
        return forward(*args, **kwargs)

    estimator.forward = capture
    try:
        with torch.inference_mode():
            StreamingS3Gen(s3gen, ref, 2, generator=torch.Generator().manual_seed(1), max_tokens=len(tokens)).push(
                tokens, final=True
            )
    finally:
        del estimator.forward
    # Cloned outside inference mode: tracers refuse inference tensors.
    return {name: seen[name].clone() for name in NAMES if name in seen}


def _best(call: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    out = call()  # warm
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        out = call()
        best = min(best, time.perf_counter() - start)
    return best, out


def _openvino(estimator: Any, inputs: dict[str, torch.Tensor], hint: str, threads: int) -> Callable[[], Any] | str:
    try:
        import openvino as ov
    except ImportError:
        return "openvino not installed"
    model = ov.convert_model(estimator, example_input=inputs)
    compiled = ov.Core().compile_model(
        model, "CPU", {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads}
    )
    feed = {name: value.numpy() for name, value in inputs.items()}
    request = compiled.create_infer_request()

    def call() -> Any:
        return torch.from_numpy(np.array(request.infer(list(feed.values()))[0]))

    return call


def _onnxruntime(
    estimator: Any, inputs: dict[str, torch.Tensor], threads: int, folder: Path
) -> Callable[[], Any] | str:
    try:
        import onnxruntime as ort
    except ImportError:
        return "onnxruntime not installed"
    path = folder / "estimator.onnx"
    torch.onnx.export(
        estimator,
        (),
        str(path),
        kwargs=dict(inputs),
        input_names=list(inputs),
        output_names=["out"],
        dynamo=False,
        opset_version=17,
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {name: value.numpy() for name, value in inputs.items()}

    def call() -> Any:
        return torch.from_numpy(session.run(None, feed)[0])

    return call


def main() -> None:
    from chatterbox_tray.daemon.s3gen_stream import InBFloat16

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=50, help="speech tokens decoded (25 a second)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", default="1,2", help="thread counts to time")
    args = parser.parse_args()
    s3gen, ref = _s3gen("turbo")
    tokens = torch.randint(0, 6561, (args.tokens,), generator=torch.Generator().manual_seed(3)).tolist()
    inputs = _inputs(s3gen, ref, tokens)
    estimator = s3gen.flow.decoder.estimator.eval()
    frames = inputs["x"].shape[-1]
    print(
        f"Turbo's flow estimator, one call over {frames} mel frames "
        f"(prompt + {args.tokens} tokens); best of {args.rounds}"
    )
    print("| runtime | threads | seconds | vs torch float32 | rel. error |")
    print("|---|---|---|---|---|")
    half = InBFloat16(copy.deepcopy(estimator))
    with tempfile.TemporaryDirectory() as tmp:
        for threads in [int(n) for n in args.threads.split(",")]:
            torch.set_num_threads(threads)
            with torch.inference_mode():
                base, reference = _best(lambda: estimator(**inputs), args.rounds)
            candidates: dict[str, Callable[[], Any] | str] = {
                "torch bfloat16 (ours)": lambda: half(**inputs),
                "OpenVINO f32": _openvino(estimator, inputs, "f32", threads),
                "OpenVINO bf16": _openvino(estimator, inputs, "bf16", threads),
                "ONNX Runtime f32": _onnxruntime(estimator, inputs, threads, Path(tmp)),
            }
            print(f"| torch float32 (stock) | {threads} | {base:.3f} | 1.00x | 0 |")
            for name, call in candidates.items():
                if isinstance(call, str):
                    print(f"| {name} | {threads} | skipped: {call} | | |")
                    continue
                with torch.inference_mode():
                    seconds, out = _best(call, args.rounds)
                error = float((out.float() - reference).norm() / reference.norm())
                print(f"| {name} | {threads} | {seconds:.3f} | {base / seconds:.2f}x | {error:.4f} |")


if __name__ == "__main__":
    main()
