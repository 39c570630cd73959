"""Pure choices of the fast engine path: variant, path, precision, quality, chunk sizes, cache sizes."""

from __future__ import annotations

import threading

import pytest
import torch

from chatterbox_tray.daemon.chatterbox_engine import ChatterboxEngine, resolve_engine_path
from chatterbox_tray.daemon.engine import EngineError, SynthOptions, resolve_variant
from chatterbox_tray.daemon.fake_engine import FakeEngine
from chatterbox_tray.daemon.precision import AUTO_PRECISION, resolve_precision
from chatterbox_tray.daemon.s3gen_stream import QUALITIES, chunk_schedule, steps_for, trim_prompt
from chatterbox_tray.daemon.t3_decode import CACHE_STEP, StaticKV, cache_capacity


def test_auto_variant_is_turbo_without_an_accelerator_and_explicit_wins() -> None:
    assert resolve_variant("auto", accelerator=False) == "turbo"
    assert resolve_variant("auto", accelerator=True) == "original"
    for explicit in ("original", "turbo", "multilingual"):
        assert resolve_variant(explicit, accelerator=False) == explicit
        assert resolve_variant(explicit, accelerator=True) == explicit
    # The fake stands for any machine, so daemon tests exercise every option.
    assert FakeEngine("auto").variant == "original"


def test_engine_path_multilingual_always_stock_others_fast_unless_asked() -> None:
    assert resolve_engine_path("auto", "original") == "fast"
    assert resolve_engine_path("auto", "turbo") == "fast"
    assert resolve_engine_path("fast", "multilingual") == "stock"
    assert resolve_engine_path("stock", "turbo") == "stock"
    with pytest.raises(EngineError, match="engine_path"):
        resolve_engine_path("quick", "original")


def test_precision_auto_follows_the_measured_table_and_int8_is_cpu_only() -> None:
    assert resolve_precision("auto", "cpu") == AUTO_PRECISION["cpu"]
    # unmeasured GPU paths stay float32 under "auto"
    assert resolve_precision("auto", "cuda:0") == "float32"
    assert resolve_precision("bfloat16", "cuda") == "bfloat16"
    with pytest.raises(ValueError, match="CPU only"):
        resolve_precision("int8", "cuda")
    with pytest.raises(ValueError, match="CPU only"):
        resolve_precision("mixed", "mps")
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8", "cpu")


def test_bad_settings_are_refused_in_plain_words_before_any_import() -> None:
    with pytest.raises(EngineError, match="precision must be one of"):
        ChatterboxEngine("original", precision="half")
    with pytest.raises(EngineError, match="quality must be one of"):
        ChatterboxEngine("original", quality="ultra")


def test_best_quality_is_chatterboxs_own_steps_and_whole_prompt() -> None:
    assert steps_for(QUALITIES["best"], meanflow=False) == 10
    assert steps_for(QUALITIES["best"], meanflow=True) == 2
    # Turbo's distilled flow is never given more steps than its own
    assert steps_for(QUALITIES["balanced"], meanflow=True) <= 2
    assert steps_for(QUALITIES["fast"], meanflow=False) < steps_for(QUALITIES["balanced"], meanflow=False) < 10
    ref = {"prompt_token": torch.zeros(1, 150, dtype=torch.long), "prompt_feat": torch.zeros(1, 300, 80)}
    assert trim_prompt(ref, None) is ref


def test_trimmed_prompt_keeps_the_end_and_two_mel_frames_a_token() -> None:
    tokens = torch.arange(375).unsqueeze(0)
    feat = torch.arange(750).float().view(1, 750, 1).expand(1, 750, 80)
    ref = {
        "prompt_token": tokens,
        "prompt_token_len": torch.tensor([375]),
        "prompt_feat": feat,
        "prompt_feat_len": None,
        "embedding": torch.ones(1, 192),
    }
    out = trim_prompt(ref, 3.0)
    assert out["prompt_token"].tolist()[0] == list(range(300, 375))
    assert out["prompt_token_len"].tolist() == [75]
    assert out["prompt_feat"].shape == (1, 150, 80) and out["prompt_feat"][0, 0, 0] == 600
    assert out["embedding"] is ref["embedding"] and ref["prompt_token"].shape[1] == 375  # input untouched
    assert trim_prompt(ref, 30.0) is ref  # shorter than asked: unchanged


def test_chunks_start_small_then_grow_to_a_ceiling() -> None:
    size = chunk_schedule(15, growth=1.6, largest=100)
    sizes = [size(i) for i in range(8)]
    assert sizes[0] == 15
    assert sizes == sorted(sizes)
    assert sizes[-1] == 100 and max(sizes) == 100


def test_kv_cache_capacity_rounds_up_and_buffers_are_reused_only_when_they_fit() -> None:
    assert cache_capacity(1) == CACHE_STEP
    assert cache_capacity(CACHE_STEP) == CACHE_STEP
    assert cache_capacity(CACHE_STEP + 1) == 2 * CACHE_STEP
    like = torch.zeros(1, dtype=torch.float32)
    kv = StaticKV(layers=2, batch=2, heads=4, head_dim=8, capacity=256, like=like)
    assert kv.k.shape == (2, 2, 4, 256, 8)
    assert kv.fits(2, 200, like)
    assert not kv.fits(1, 200, like)  # another batch (Turbo vs CFG)
    assert not kv.fits(2, 300, like)
    assert not kv.fits(2, 200, like.to(torch.bfloat16))


def test_default_stream_yields_the_one_generate_result() -> None:
    engine = FakeEngine("original")
    conds = engine.prepare(b"a clip")
    whole = engine.generate("Hello there.", conds, SynthOptions(seed=3), 40, threading.Event())
    pieces = list(engine.generate_stream("Hello there.", conds, SynthOptions(seed=3), 40, threading.Event()))
    assert len(pieces) == 1
    assert pieces[0].tokens == whole.tokens
    assert (pieces[0].samples == whole.samples).all()


def test_auto_variant_loads_the_model_a_local_folder_holds(tmp_path) -> None:
    from chatterbox_tray.daemon.chatterbox_engine import _REQUIRED_FILES, auto_variant

    assert auto_variant(accelerator=False) == "turbo"
    assert auto_variant(accelerator=True) == "original"
    for name in _REQUIRED_FILES["original"]:
        (tmp_path / name).write_bytes(b"")
    assert auto_variant(accelerator=False, folder=tmp_path) == "original"  # the folder has no Turbo
    for name in _REQUIRED_FILES["turbo"]:
        (tmp_path / name).write_bytes(b"")
    assert auto_variant(accelerator=False, folder=tmp_path) == "turbo"  # both: the device's choice
    assert auto_variant(accelerator=True, folder=tmp_path) == "original"


def test_a_reference_with_an_odd_mel_frame_is_cut_to_whole_tokens() -> None:
    """chatterbox's prompt may hold one mel frame over twice its tokens; the stream needs exact pairs."""
    import torch

    from chatterbox_tray.daemon.s3gen_stream import TOKEN_MEL, aligned_prompt

    ref = {
        "prompt_token": torch.arange(10).unsqueeze(0),
        "prompt_token_len": torch.tensor([10]),
        "prompt_feat": torch.randn(1, 21, 80),
        "prompt_feat_len": None,
        "embedding": torch.randn(1, 192),
    }
    out = aligned_prompt(ref)
    assert out["prompt_feat"].shape[1] == TOKEN_MEL * out["prompt_token"].shape[1] == 20
    assert int(out["prompt_token_len"][0]) == 10
    torch.testing.assert_close(out["prompt_feat"], ref["prompt_feat"][:, :20])
    short = dict(ref, prompt_feat=torch.randn(1, 17, 80))  # fewer frames than tokens need
    cut = aligned_prompt(short)
    assert cut["prompt_token"].shape[1] == 8 and cut["prompt_feat"].shape[1] == 16
    assert aligned_prompt(out) is out  # already aligned: untouched


def test_cuda_graphs_is_an_opt_in_model_setting_carried_to_the_engine() -> None:
    from chatterbox_tray.daemon.model import MODEL_KEYS, make_engine
    from chatterbox_tray.daemon.settings import Settings

    assert Settings().cuda_graphs is False  # off until measured on a GPU
    assert "cuda_graphs" in MODEL_KEYS  # a change asks for a reload
    with pytest.raises(ValueError, match="cuda_graphs"):
        Settings(cuda_graphs="yes").validate()
    engine = make_engine(Settings(cuda_graphs=True, device="cpu"))
    assert engine.wanted_graphs is True and engine.graphs_on is False  # nothing loaded, nothing replayed
    assert make_engine(Settings()).wanted_graphs is False
