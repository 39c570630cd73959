"""Our T3 decode loop against chatterbox's own, on the random-weight checkpoints.

With float32 weights on the CPU and the same seed, ``daemon/t3_decode.py``
must draw exactly the speech tokens chatterbox's ``T3.inference`` (original,
CFG batch of two) and ``T3.inference_turbo`` draw, and the engine's whole
pipeline must give the same samples on both paths. Token counts stay small:
T3 costs about 0.3 s a token on two cores.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from chatterbox_tray.daemon.chatterbox_engine import ChatterboxEngine
from chatterbox_tray.daemon.engine import Cancelled, SynthOptions
from chatterbox_tray.daemon.t3_decode import FastT3, Sampling
from tests.support.checkpoint import ensure_checkpoint, loader_env

pytestmark = pytest.mark.integration

TOKENS = 8
TEXT = "Hello there, this is a test."


def tone_clip(seconds: float = 6.0, f0: float = 140.0) -> bytes:
    """A voiced-sounding tone: enough for ``prepare_conditionals``."""
    rate = 24_000
    t = np.arange(int(seconds * rate)) / rate
    clip = 0.3 * np.sin(2 * np.pi * (f0 + 30 * np.sin(2 * np.pi * 0.5 * t)) * t)
    clip *= 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2
    buf = io.BytesIO()
    sf.write(buf, clip.astype(np.float32), rate, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def load(variant: str, monkeypatch: pytest.MonkeyPatch) -> ChatterboxEngine:
    ckpt = ensure_checkpoint(variant)
    for key, value in loader_env(ckpt, variant).items():
        monkeypatch.setenv(key, value)
    # float32: the precision in which our loop must match stock exactly
    engine = ChatterboxEngine(variant, str(ckpt), "cpu", engine_path="fast", precision="float32")
    engine.load(lambda _f, _m: None)
    return engine


@pytest.fixture(scope="module", params=["original", "turbo"])
def engine(request: pytest.FixtureRequest) -> Iterator[ChatterboxEngine]:
    with pytest.MonkeyPatch.context() as mp:
        eng = load(request.param, mp)
        yield eng
        eng.unload()


def text_tokens(engine: ChatterboxEngine) -> Any:
    """Text tokens exactly as chatterbox's ``generate`` builds them."""
    from chatterbox.tts import punc_norm

    model = engine.model
    text = punc_norm(TEXT)
    if engine.variant == "turbo":
        return model.tokenizer(text, return_tensors="pt", padding=True, truncation=True).input_ids
    tokens = model.tokenizer.text_to_tokens(text)
    tokens = torch.cat([tokens, tokens])
    tokens = F.pad(tokens, (1, 0), value=model.t3.hp.start_text_token)
    return F.pad(tokens, (0, 1), value=model.t3.hp.stop_text_token)


@pytest.mark.parametrize("seed", [1, 7])
def test_same_seed_gives_exactly_the_stock_speech_tokens(engine: ChatterboxEngine, seed: int) -> None:
    conds = engine._conditionals(engine.prepare(tone_clip()))
    t3 = engine.model.t3
    tokens = text_tokens(engine)
    fast = FastT3(t3)
    engine.engine_path = "stock"
    torch.manual_seed(seed)
    if engine.variant == "turbo":
        # the wrapper sets chatterbox's max_gen_len from the budget
        engine._budget = TOKENS
        stock = t3.inference_turbo(conds.t3, tokens, temperature=0.8, top_k=1000, top_p=0.95, repetition_penalty=1.2)
        torch.manual_seed(seed)
        ours = list(fast.turbo(conds.t3, tokens, Sampling(top_p=0.95), TOKENS))
        if ours and ours[-1] == t3.hp.stop_speech_token:
            ours.pop()
    else:
        engine._budget = TOKENS
        stock = t3.inference(
            t3_cond=conds.t3, text_tokens=tokens, temperature=0.8, cfg_weight=0.5, min_p=0.05, top_p=1.0
        )
        torch.manual_seed(seed)
        ours = list(fast.original(conds.t3, tokens, Sampling(), TOKENS))
    assert stock.shape[0] == 1 and stock.shape[1] > 0
    assert ours == stock[0].tolist()
    # and the random stream is left where stock leaves it (S3Gen draws from it next)
    after_ours = torch.rand(4)
    torch.manual_seed(seed)
    if engine.variant == "turbo":
        t3.inference_turbo(conds.t3, tokens, temperature=0.8, top_k=1000, top_p=0.95, repetition_penalty=1.2)
    else:
        t3.inference(t3_cond=conds.t3, text_tokens=tokens, temperature=0.8, cfg_weight=0.5, min_p=0.05, top_p=1.0)
    assert torch.equal(after_ours, torch.rand(4))
    engine.engine_path = "fast"


@pytest.mark.timeout(1800)  # three whole S3Gen runs (10 flow steps for the original) on a busy CPU
def test_fast_and_stock_paths_give_identical_samples_fresh_or_cached(engine: ChatterboxEngine) -> None:
    flat = engine.prepare(tone_clip(f0=120.0))
    # what the cache hands back: the same tensors after a round trip
    cached = {k: torch.load(_saved(v)) for k, v in flat.items()}
    options = SynthOptions(seed=1234)
    results = {}
    for path, conds in (("stock", flat), ("fast", flat), ("fast", cached)):
        engine.engine_path = path
        results[path, "fresh" if conds is flat else "cached"] = engine.generate(
            TEXT, conds, options, 3, threading.Event()
        )
    engine.engine_path = "fast"
    reference = results["stock", "fresh"].samples
    assert len(reference) > 0 and results["stock", "fresh"].tokens > 0
    for key, result in results.items():
        np.testing.assert_array_equal(result.samples, reference, err_msg=str(key))
        assert result.tokens == results["stock", "fresh"].tokens


def _saved(tensor: torch.Tensor) -> io.BytesIO:
    buf = io.BytesIO()
    torch.save(tensor, buf)
    buf.seek(0)
    return buf


@pytest.mark.timeout(1800)
def test_stream_gives_several_watermarked_pieces_that_add_up(engine: ChatterboxEngine) -> None:
    if engine.variant != "turbo":
        pytest.skip("one variant is enough for the engine's streaming plumbing (the joins have their own test)")
    flat = engine.prepare(tone_clip(f0=130.0))
    budget = 15 + 3 + 5  # one early piece after 18 tokens, the rest at the end
    waiting = lambda: True  # noqa: E731 - a listener waits: pieces
    engine.piece_rtf = None  # whatever earlier tests measured: this machine's pieces are not the point here
    pieces = list(engine.generate_stream(TEXT, flat, SynthOptions(seed=3), budget, threading.Event(), hurry=waiting))
    assert len(pieces) == 2
    assert all(len(p.samples) > 0 and np.isfinite(p.samples).all() for p in pieces)
    assert sum(p.tokens for p in pieces) == budget
    # 18 tokens drawn -> 15 tokens of audio less the 20 ms held for the cross-fade
    assert len(pieces[0].samples) == 15 * 960 - 480
    # all 23 tokens plus Turbo's 3 silence tokens, 40 ms each
    assert sum(len(p.samples) for p in pieces) == (budget + 3) * 960
    # No one waiting: the sentence in one piece (S3Gen reads the voice's reference once), same length.
    whole = list(engine.generate_stream(TEXT, flat, SynthOptions(seed=3), budget, threading.Event()))
    assert len(whole) == 1 and whole[0].final
    assert len(whole[0].samples) == (budget + 3) * 960
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        list(engine.generate_stream(TEXT, flat, SynthOptions(seed=3), budget, cancel))


def test_the_warm_up_measures_a_paragraph_s_steady_pace_and_leaves_nothing_running(engine: ChatterboxEngine) -> None:
    """The speaker plans a fresh daemon's first paragraph by this figure (``Engine.steady_pace``)."""
    if engine.variant != "turbo":
        pytest.skip("one variant is enough: the measurement is the engine's, not the model's (the original's is slow)")
    engine.steady_pace = None
    engine.warmup()
    assert engine.steady_pace is not None and 0 < engine.steady_pace < 100
    assert not engine._ahead and not engine._made  # the third sentence only kept T3 busy
    engine.engine_path = "stock"
    engine.steady_pace = None
    try:
        engine.warmup()
        assert engine.steady_pace is None  # the stock path makes no paragraph ahead: nothing measured
    finally:
        engine.engine_path = "fast"


def _threads_of_this_process() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts the process's threads in /proc (Linux)")
def test_a_long_lived_thread_keeps_no_openmp_team_after_the_engine_s_work(
    engine: ChatterboxEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon's worker thread lives for ever: a team of OpenMP threads it kept would push libgomp
    past one thread a core once a T3 thread makes its own, and libgomp then stops spinning (T3 alone
    40 ms a token instead of 29). So the engine's multi-threaded work runs on threads that end with it."""
    if engine.variant != "turbo":
        pytest.skip("one variant is enough: the threads are the engine's, not the model's")
    monkeypatch.setattr(engine, "_cpu_share", None)  # whatever else this machine is doing
    # Two threads even where the suite gives each of its processes one core (OMP_NUM_THREADS):
    # a team is what this is about.
    monkeypatch.setattr(engine, "_default_threads", 2)
    clip = tone_clip(f0=150.0)
    counts: dict[str, int] = {}

    def work() -> None:
        conds = engine.prepare(clip)
        list(engine.generate_stream(TEXT, conds, SynthOptions(seed=1), 6, threading.Event()))
        engine.generate(TEXT, conds, SynthOptions(seed=1), 3, threading.Event())

    def settled() -> int:
        deadline = time.monotonic() + 5
        while _threads_of_this_process() > counts.get("before", 0) and time.monotonic() < deadline:
            time.sleep(0.05)  # a helper thread's team leaves as that thread ends
        return _threads_of_this_process()

    # Once on a thread that ends, so the process-wide pools (the tokenizer's) exist before counting.
    primer = threading.Thread(target=work)
    primer.start()
    primer.join()

    def worker() -> None:
        counts["before"] = _threads_of_this_process()
        work()
        counts["after"] = settled()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert counts["after"] == counts["before"]


def test_s3gen_never_sees_a_token_it_cannot_embed(engine: ChatterboxEngine) -> None:
    """chatterbox's multilingual ``generate`` passes T3's ids >= 6561 on to S3Gen, which then fails
    with "index out of range" (seen with the random-weight checkpoint, depending on the clip). Our
    S3Gen wrapper drops them as chatterbox's original and Turbo do: the result is that of the valid ids."""
    gen = engine._conditionals(engine.prepare(tone_clip())).gen
    s3gen = engine.model.s3gen
    valid = torch.tensor([[11, 22, 33, 44, 55, 66]])
    mixed = torch.tensor([[11, 22, 6561, 33, 44, 8000, 55, 66, 6562]])
    with torch.inference_mode():
        torch.manual_seed(3)
        expected, _ = s3gen.inference(speech_tokens=valid, ref_dict=dict(gen))
        torch.manual_seed(3)
        got, _ = s3gen.inference(speech_tokens=mixed, ref_dict=dict(gen))
    assert expected.numel() > 0
    assert torch.equal(got, expected)


def test_keep_voice_prefills_the_voice_so_its_next_sentence_runs_only_its_text(engine: ChatterboxEngine) -> None:
    """The default voice is made ready after a load (``keep_voice``): its first sentence reuses it."""
    assert engine.keeps_voice
    flat = engine.prepare(tone_clip(f0=150.0))
    fast = engine.fast_t3
    assert fast is not None
    fast._prefix = None
    engine.keep_voice(flat)
    assert fast._prefix is not None
    kept = fast._prefix[0].shape[1]
    prefilled: list[int] = []

    def count(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        prefilled.append(int(kwargs["inputs_embeds"].shape[1]))

    hook = fast.tfmr.register_forward_pre_hook(count, with_kwargs=True)
    try:
        pieces = list(engine.generate_stream(TEXT, flat, SynthOptions(seed=5), TOKENS, threading.Event()))
    finally:
        hook.remove()
    assert pieces and len(pieces[-1].samples) > 0
    # one prefill, of the sentence's own positions only (the voice's were kept)
    assert len(prefilled) == 1 and 0 < prefilled[0] < kept
