"""Property-based fuzzing of the wire decoder and the request checks (issue 12, section 6).

Whatever bytes arrive, `decode` returns a message or raises `ProtocolError`
with a documented code, and `check_request` and `Args` turn any JSON header
into (id, op, args) or a `ProtocolError`: no other exception ever reaches the
daemon's loop. A few thousand cases, in a few seconds.
"""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatterbox_tray.ipc.protocol import (
    ERROR_CODES,
    MAX_HEADER_BYTES,
    OPS,
    PROTOCOL_VERSION,
    Args,
    Message,
    ProtocolError,
    check_request,
    decode,
    encode,
    sign,
)
from tests.support.fuzz import INTERNALS, SCALARS
from tests.support.fuzz import json_values as fuzz_json

KEY = b"k" * 32
FUZZ = settings(max_examples=600, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

scalars = SCALARS | st.sampled_from(sorted(OPS))
json_values = fuzz_json(scalars, 4)
#: Headers near a real request: right fields, any values, stray fields.
headers = st.fixed_dictionaries(
    {},
    optional={
        "v": st.one_of(st.just(PROTOCOL_VERSION), json_values),
        "id": st.one_of(st.text(min_size=1, max_size=130), json_values),
        "op": st.one_of(st.sampled_from(sorted(OPS)), json_values),
        "args": st.one_of(st.dictionaries(st.text(max_size=12), json_values, max_size=5), json_values),
    },
).flatmap(lambda h: st.dictionaries(st.text(max_size=8), json_values, max_size=2).map(lambda extra: {**extra, **h}))
#: Header bytes: JSON of a header, JSON of anything, broken JSON, or any bytes.
header_bytes = st.one_of(
    headers.map(lambda h: json.dumps(h).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.text(max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers(1, 3000).map(lambda n: b"[" * n),  # nested too deeply for json
    st.integers(4301, 6000).map(lambda n: b'{"id": "x", "v": ' + b"9" * n + b"}"),  # too many digits
    st.just(b'{"id": "\\ud800", "v": 1, "op": "ping"}'),  # a lone surrogate
)


def assert_plain(error: ProtocolError) -> None:
    """A documented code and a message for people."""
    assert error.code in ERROR_CODES, error.code
    assert isinstance(error.message, str) and error.message
    assert not INTERNALS.search(error.message), error.message


@FUZZ
@given(frames=st.lists(st.binary(max_size=64), max_size=5))
def test_any_frames_decode_or_raise_protocol_error(frames: list[bytes]) -> None:
    try:
        msg = decode(KEY, frames)
    except ProtocolError as exc:
        assert_plain(exc)
    else:  # only with a valid signature, which random bytes never have
        assert isinstance(msg, Message)


@FUZZ
@given(head=header_bytes, buffers=st.lists(st.binary(max_size=32), max_size=3))
def test_signed_headers_decode_or_raise_protocol_error(head: bytes, buffers: list[bytes]) -> None:
    frames = [sign(KEY, [head, *buffers]), head, *buffers]
    try:
        msg = decode(KEY, frames)
    except ProtocolError as exc:
        assert_plain(exc)
        return
    assert isinstance(msg.header, dict)
    assert msg.buffers == tuple(buffers)
    assert len(head) <= MAX_HEADER_BYTES


@FUZZ
@given(header=headers)
def test_any_header_is_a_request_or_a_clear_refusal(header: dict) -> None:
    # Through the wire and back, as the daemon receives it.
    msg = decode(KEY, encode(KEY, header))
    try:
        req_id, op, args = check_request(msg.header)
    except ProtocolError as exc:
        assert_plain(exc)
        return
    assert isinstance(req_id, str) and 0 < len(req_id) <= 128
    assert op in OPS
    assert isinstance(args, dict)


@FUZZ
@given(
    args=st.dictionaries(st.sampled_from(["a", "b", "c"]), json_values, max_size=3),
    name=st.sampled_from(["a", "b", "c"]),
    getter=st.sampled_from(["str", "bool", "int", "float", "dict"]),
    bounds=st.one_of(st.none(), st.tuples(st.integers(-5, 0), st.integers(0, 5))),
    has_default=st.booleans(),
)
def test_typed_arguments_give_the_type_asked_or_bad_args(args, name, getter, bounds, has_default) -> None:
    kwargs = {}
    if has_default:
        kwargs["default"] = None
    if bounds is not None and getter in ("int", "float"):
        kwargs["lo"], kwargs["hi"] = bounds
    try:
        value = Args(args).read(name, getter, **kwargs)
    except ProtocolError as exc:
        assert exc.code == "bad_args"
        assert_plain(exc)
        assert repr(name) in exc.message  # it names the argument
        return
    if value is None:
        assert has_default and args.get(name) is None
        return
    expected = {"str": str, "bool": bool, "int": int, "float": float, "dict": dict}[getter]
    assert isinstance(value, expected)
    if getter in ("int", "float"):
        assert not isinstance(value, bool)
        if getter == "float":
            assert math.isfinite(value)
        if bounds is not None:
            assert bounds[0] <= value <= bounds[1]
