"""Property-based fuzzing of the daemon's argument checks, in process (issue 12, section 6).

The handlers' checks of synthesis options, synthesis and speech requests,
setting values and voice names take any JSON and either accept it (with the
documented types) or raise a `CodedError` with a documented code and a plain
message, which the server answers with. Anything else would be an
``internal`` error: a bug. The daemon around them is fuzzed over a real
socket in tests/protocol/test_fuzz_daemon.py.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chatterbox_tray.daemon.handlers import ReceivedRequest, _new_job, _options
from chatterbox_tray.daemon.settings import Settings
from chatterbox_tray.daemon.voices import VoiceError, VoiceLibrary, check_name
from chatterbox_tray.ipc.limits import OPTION_RANGES
from chatterbox_tray.ipc.messages import REQUESTS
from chatterbox_tray.ipc.protocol import ERROR_CODES, CodedError
from tests.support.fuzz import INTERNALS, SCALARS
from tests.support.fuzz import json_values as fuzz_json

FUZZ = settings(
    max_examples=500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
LANGUAGES = ["en", "fr", "de"]

scalars = SCALARS
json_values = fuzz_json(scalars, 3)
option_names = st.sampled_from([*OPTION_RANGES, "seed", "language", "speed", ""])
options = st.dictionaries(option_names, st.one_of(json_values, st.sampled_from(LANGUAGES)), max_size=4)


def assert_plain(error: CodedError) -> None:
    assert error.code in ERROR_CODES, error.code
    assert isinstance(error.message, str) and error.message
    assert not INTERNALS.search(error.message), error.message


def service(library: VoiceLibrary, variant: str = "multilingual", state: str = "ready") -> SimpleNamespace:
    """What the checks read of the Service: settings, state, the engine's languages, voices, cache."""
    return SimpleNamespace(
        settings=Settings(engine="fake"),
        model=SimpleNamespace(
            state=state,
            error="the model failed" if state == "failed" else "",
            engine=SimpleNamespace(variant=variant, capabilities=lambda: {"languages": LANGUAGES}),
        ),
        voices=library,
        cache_tier=lambda sha: None,
        words=SimpleNamespace(compiled=lambda: []),
    )


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> VoiceLibrary:
    return VoiceLibrary(Path(tmp_path_factory.mktemp("data")))


@FUZZ
@given(raw=options, variant=st.sampled_from(["original", "multilingual", "turbo"]))
@example(raw={"exaggeration": 10**400}, variant="original")  # found by fuzzing, as above
def test_synthesis_options_are_checked(library: VoiceLibrary, raw: dict, variant: str) -> None:
    try:
        opts = _options(service(library, variant), raw)
    except CodedError as exc:
        assert exc.code in ("bad_args", "unknown_language")
        assert_plain(exc)
        return
    for name, (lo, hi, _default) in OPTION_RANGES.items():
        value = getattr(opts, name)
        assert value is None or (math.isfinite(value) and lo <= value <= hi)
    assert opts.seed is None or (isinstance(opts.seed, int) and 0 <= opts.seed < 2**31)
    assert opts.language is None or opts.language in LANGUAGES


request_args = st.fixed_dictionaries(
    {},
    optional={
        "text": st.one_of(st.text(max_size=60), json_values),
        "voice": st.one_of(st.sampled_from(["nobody", "Nobody", ""]), json_values),
        "voice_data": json_values,
        "voice_path": st.one_of(st.sampled_from(["", "/", "/nonexistent/clip.wav", "~"]), json_values),
        "options": st.one_of(options, json_values),
        "priority": json_values,
        "quick": json_values,
    },
)


@FUZZ
@given(
    args=request_args,
    buffers=st.lists(st.binary(max_size=64), max_size=2),
    kind=st.sampled_from(["synthesize", "speak"]),
    state=st.sampled_from(["ready", "loading", "failed"]),
)
def test_speech_requests_are_checked(library: VoiceLibrary, args: dict, buffers: list, kind: str, state: str) -> None:
    try:
        req = ReceivedRequest(b"client", "r1", kind, REQUESTS[kind].from_data(args, buffers))
        job, clip = _new_job(service(library, state=state), req, kind)
    except CodedError as exc:
        assert_plain(exc)
        return
    assert job.chunks and isinstance(job.text, str)
    assert clip is None or isinstance(clip, bytes)


editable = st.sampled_from(list(Settings.editable()))


@FUZZ
@given(values=st.dictionaries(editable, json_values, min_size=1, max_size=3))
@example(values={"volume": 10**400})  # found by fuzzing: it overflowed float() into an internal error
def test_setting_values_are_checked(values: dict) -> None:
    # What settings.set does with them: TypeError and ValueError become bad_args.
    try:
        new = replace(Settings(engine="fake"), **values).validate()
    except (TypeError, ValueError) as exc:
        assert str(exc) and not INTERNALS.search(str(exc))
        return
    assert 0.0 <= new.volume <= 1.0 and math.isfinite(new.volume)
    assert new.to_json()  # JSON-ready, as the reply needs


@FUZZ
@given(name=st.one_of(st.text(max_size=80), json_values))
def test_voice_names_are_checked(name: object) -> None:
    try:
        checked = check_name(name)  # type: ignore[arg-type]
    except VoiceError as exc:
        assert exc.code == "bad_name"
        assert_plain(exc)
        return
    assert len(checked) > 0 and checked == checked.strip() and not checked.startswith(".")
