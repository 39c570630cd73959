"""One type per message: every request, reply and event docs/protocol.md defines.

Each message is a frozen dataclass whose fields are the message's fields, as
wyoming declares its messages. The field types drive the checks: reading a
message (``from_header``, ``from_data``) checks each field with
``protocol.Args`` (the same plain words and ``bad_args`` code the daemon has
always answered with), so no handler checks an argument by hand. Writing one
(``to_header``, ``to_data``) gives the wire format of docs/protocol.md:

- a field without a default is always sent (``null`` when it may be None);
- a field whose default is None is left out while it is None (an optional
  argument, or a field only some events carry);
- ``sent()`` keeps an optional field that the daemon always sent (as null);
  ``flag()`` and ``ranged(..., quiet=True)`` send a field only when it is not
  its default;
- a ``buffer()`` field travels as buffer 0, never in the header.

Requests ignore fields they do not know, and so do events and replies (the
protocol lets either side add fields); generation options refuse unknown
names. What the daemon sends (replies, events, typed results) may also lack a
field an older daemon did not have: it reads as its type's zero value.
docs/protocol.md's agreement test checks these types against the document.
Light: the standard library only.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

from .limits import DEFAULT_PRIORITY, OPTION_RANGES, PRIORITIES, RATE_RANGE, VOLUME_RANGE
from .protocol import OPS, Args, ProtocolError, check_request, event_header, reply_header, request_header


def ranged(lo: float, hi: float, default: Any = None, *, quiet: bool = False) -> Any:
    """A number field allowed only within [lo, hi] (``quiet``: sent only when not its default)."""
    return field(default=default, metadata={"lo": lo, "hi": hi, "quiet": quiet})


def buffer() -> Any:
    """A field that travels as buffer 0 rather than in the header."""
    return field(default=None, metadata={"buffer": True})


def sent() -> Any:
    """An optional field that is still sent when None (``null``), as the daemon always has."""
    return field(default=None, metadata={"sent": True})


def flag() -> Any:
    """A boolean argument, false by default, sent only when true."""
    return field(default=False, metadata={"quiet": True})


@dataclass(frozen=True)
class FieldSpec:
    """How one field is read and written, from its declaration."""

    name: str
    #: The kind ``Args.read`` reads it as (from its type: "str", "int", "dict"...).
    reader: str
    nullable: bool
    default: Any
    lo: Any = None
    hi: Any = None
    buffer: bool = False
    sent: bool = False
    quiet: bool = False
    #: A message type this field holds (``VoiceInfo``), or holds a list of (``list[VoiceInfo]``).
    nested: Any = None

    @property
    def required(self) -> bool:
        """No default: always sent, and missing (or null, unless nullable) is refused."""
        return self.default is MISSING


@functools.cache
def specs(cls: type) -> tuple[FieldSpec, ...]:
    """The fields of a message type, as ``from_data`` and ``to_data`` use them."""
    out = []
    for f in fields(cls):
        parts = [p.strip() for p in str(f.type).split("|")]
        reader, _, inner = next(p for p in parts if p != "None").rstrip("]").partition("[")
        nested = globals().get(inner if reader == "list" else reader)
        nested = nested if isinstance(nested, type) and issubclass(nested, Fields) else None
        reader = "dict" if nested is not None and reader != "list" else reader
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        out.append(FieldSpec(f.name, reader, "None" in parts, default, nested=nested, **f.metadata))
    return tuple(out)


def _declaring(registry: dict[str, type], attr: str = "") -> Any:
    """A class decorator: a frozen slotted dataclass, listed in ``registry`` under each of its names.

    With ``attr``, it has one name, its name on the wire, also set as ``attr``.
    """

    def with_names(*names: str, **flags: Any) -> Any:
        def declare(cls: type) -> type:
            for key, value in ({attr: names[0], **flags} if attr else flags).items():
                setattr(cls, key, value)
            typed = dataclass(frozen=True, slots=True)(cls)
            registry.update(dict.fromkeys(names, typed))
            return typed

        return declare

    return with_names


#: Each op's, reply kind's and event topic's type, by its name on the wire.
REQUESTS: dict[str, type[Request]] = {}
REPLIES: dict[str, type[Reply]] = {}
EVENTS: dict[str, type[Event]] = {}
#: ``@_request("op", stream=True)``, ``@_reply("kind")``, ``@_event("topic")``.
_request, _reply, _event = _declaring(REQUESTS, "op"), _declaring(REPLIES, "kind"), _declaring(EVENTS, "topic")


#: A missing field of something the daemon sent, as clients have always read it (``.get(name) or zero``).
_ZERO = {"str": str, "bool": bool, "int": int, "float": float, "dict": dict, "list": list}


class Fields:
    """What every message type shares: reading and writing its fields as a JSON object."""

    __slots__ = ()
    #: Refuse names the type does not declare (generation options), with this word for them.
    CLOSED: ClassVar[str] = ""
    #: Read a required field that is missing as its zero value (what the daemon sends: see ``_ZERO``).
    TOLERANT: ClassVar[bool] = False

    @classmethod
    def from_data(cls, data: Mapping[str, Any], buffers: tuple[bytes, ...] | list = ()) -> Any:
        """The message from its JSON object; ProtocolError (``bad_args``) names a wrong field."""
        if not isinstance(data, Mapping):
            raise ProtocolError("bad_args", "expected a JSON object")
        data = cls._waive(data)
        values: dict[str, Any] = {}
        args = Args(dict(data))
        for spec in specs(cls):
            if spec.buffer:
                values[spec.name] = bytes(buffers[0]) if buffers else None
                continue
            if data.get(spec.name) is None and spec.required and (spec.nullable or cls.TOLERANT):
                # What the daemon sends a client may lack a field an older daemon did not have yet.
                value = None if spec.nullable else _ZERO[spec.reader]()
            else:
                default = Args._MISSING if spec.required else spec.default
                value = args.read(spec.name, spec.reader, default, spec.lo, spec.hi)
            if spec.nested is not None and value is not None:
                read = spec.nested.from_data
                value = [read(item) for item in value] if spec.reader == "list" else read(value)
            values[spec.name] = value
        unknown = sorted(set(data) - {spec.name for spec in specs(cls)})
        if cls.CLOSED and unknown:
            raise ProtocolError("bad_args", f"unknown {cls.CLOSED}(s): {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def _waive(cls, data: Mapping[str, Any]) -> Mapping[str, Any]:
        """The object as read; a type whose required fields depend on another field fills them in here."""
        return data

    @property
    def buffers(self) -> tuple[bytes, ...]:
        """The frames after the header."""
        return tuple(getattr(self, s.name) for s in specs(type(self)) if s.buffer and getattr(self, s.name) is not None)

    def to_data(self) -> dict[str, Any]:
        """The JSON object: optional fields left out while None, buffers never."""
        out = {}
        for spec in specs(type(self)):
            value = getattr(self, spec.name)
            shown = value is not None or spec.sent or spec.required
            if shown and not spec.buffer and not (spec.quiet and value == spec.default):
                out[spec.name] = _plain(value)
        return out


def _plain(value: Any) -> Any:
    """A field's value as JSON: a message type as its object, a list of them as a list of objects."""
    if isinstance(value, Fields):
        return value.to_data()
    return [_plain(item) for item in value] if isinstance(value, list) else value


@dataclass(frozen=True, slots=True)
class SpeechOptions(Fields):
    """The generation options of ``synthesize`` and ``speak`` (None: the variant's default)."""

    CLOSED: ClassVar[str] = "option"

    exaggeration: float | None = ranged(*OPTION_RANGES["exaggeration"][:2])
    cfg_weight: float | None = ranged(*OPTION_RANGES["cfg_weight"][:2])
    temperature: float | None = ranged(*OPTION_RANGES["temperature"][:2])
    seed: int | None = ranged(0, 2**31 - 1)
    language: str | None = None


# -- requests ----------------------------------------------------------------------------------


class Request(Fields):
    """A request: ``op`` and the op's arguments as fields, buffer 0 as a ``buffer()`` field.

    ``timeout`` overrides the client's default wait (None: the default).
    ``stream`` marks ops that answer with non-final replies (accepted,
    progress, chunk) before the final one: clients bound the gap between
    replies rather than the whole request. ``slow`` marks ops the daemon may
    spend seconds on in its socket loop (decoding a clip), so a client does
    not take a late heartbeat meanwhile for a dead daemon.
    """

    __slots__ = ()
    op: ClassVar[str] = ""
    timeout: ClassVar[float | None] = None
    stream: ClassVar[bool] = False
    slow: ClassVar[bool] = False

    @property
    def args(self) -> dict[str, Any]:
        """The header's ``args``."""
        return self.to_data()

    def to_header(self, req_id: str) -> dict[str, Any]:
        """The request's header under id ``req_id``."""
        return request_header(req_id, self.op, self.args)

    def read_result(self, data: dict[str, Any]) -> Any:
        """This request's ``Result.result`` as its op's type (``RESULTS``); an op without one keeps the object.

        So a client that keeps the request reads its answer by type without
        naming the type again; ProtocolError (``bad_args``) names a wrong field.
        """
        kind = RESULTS.get(self.op)
        return data if kind is None else kind.from_data(data)

    @classmethod
    def from_header(cls, header: dict[str, Any], buffers: tuple[bytes, ...] | list = ()) -> Request:
        """The typed request a header holds (its op's type); ProtocolError as the daemon answers it."""
        _, op, args = check_request(header)
        return REQUESTS[op].from_data(args, buffers)


@dataclass(frozen=True, slots=True)
class RawRequest(Request):
    """Any op with any arguments, unchecked: for tools and tests that send what no type would build."""

    name: str
    raw_args: dict[str, Any] = field(default_factory=dict)
    raw_buffers: tuple[bytes, ...] = ()

    @property
    def op(self) -> str:  # type: ignore[override]
        """The op, as given."""
        return self.name

    def to_data(self) -> dict[str, Any]:
        return dict(self.raw_args)

    @property
    def buffers(self) -> tuple[bytes, ...]:
        return tuple(bytes(b) for b in self.raw_buffers)

    def read_result(self, data: dict[str, Any]) -> Any:
        return data  # unchecked both ways


#: Adding a voice sends the clip in the message and the daemon decodes it in
#: its socket loop: allow longer than a control request.
VOICES_ADD_TIMEOUT = 60.0


def _no_args(name: str, op: str) -> Any:
    """The type of an op that takes no arguments; its docstring is the op's summary in ``protocol.OPS``."""
    return _request(op)(type(name, (Request,), {"__doc__": OPS[op], "__module__": __name__, "__qualname__": name}))


# The ops without arguments: one line each.
Hello = _no_args("Hello", "hello")
Ping = _no_args("Ping", "ping")
Status = _no_args("Status", "status")
RetryLoad = _no_args("RetryLoad", "retry_load")
Reload = _no_args("Reload", "reload")
Stats = _no_args("Stats", "stats")
Shutdown = _no_args("Shutdown", "shutdown")
VoicesList = _no_args("VoicesList", "voices.list")
Pause = _no_args("Pause", "pause")
Resume = _no_args("Resume", "resume")
Skip = _no_args("Skip", "skip")
Playback = _no_args("Playback", "playback")
AudioDevices = _no_args("AudioDevices", "audio.devices")
SettingsGet = _no_args("SettingsGet", "settings.get")
CacheStats = _no_args("CacheStats", "cache.stats")
WordsList = _no_args("WordsList", "words.list")
TagsList = _no_args("TagsList", "tags.list")


@_request("voices.add", timeout=VOICES_ADD_TIMEOUT, slow=True)
class VoicesAdd(Request):
    """Add a voice from a clip (buffer 0, or ``path`` on the daemon's machine); ``check``: only check the clip."""

    name: str
    clip: bytes | None = buffer()
    source_name: str = ""
    path: str | None = None
    check: bool = flag()

    @classmethod
    def _waive(cls, data: Mapping[str, Any]) -> Mapping[str, Any]:
        # A check needs no name: the client asks for one once the clip is known to be fit.
        return {**data, "name": ""} if Args(dict(data)).read("check", "bool", False) else data

    def to_data(self) -> dict[str, Any]:
        data = Fields.to_data(self)
        if self.check:
            del data["name"]
        return data

    def read_result(self, data: dict[str, Any]) -> Any:
        # A check answers with the clip's figures, not a voice of the library.
        return ClipChecked.from_data(data) if self.check else VoiceInfo.from_data(data)


@_request("voices.rename")
class VoicesRename(Request):
    """Rename a voice."""

    name: str
    new_name: str


@_request("voices.remove")
class VoicesRemove(Request):
    """Remove a voice and its clip."""

    name: str


@_request("voices.default")
class VoicesDefault(Request):
    """Get the default voice, set it with ``name``, or unset it with ``clear``."""

    name: str | None = None
    clear: bool = flag()


@_request("voices.play")
class VoicesPlay(Request):
    """Play a voice's reference clip on the daemon's speaker."""

    name: str


@_request("synthesize", stream=True)
class Synthesize(Request):
    """Make audio and stream it back as chunks.

    The voice: ``voice_path`` (a clip on the daemon's machine), else ``clip``
    (sent as buffer 0, with ``voice_data``), else ``voice`` (a library name),
    else the default voice. ``rate`` (0.5-2.0): None leaves it to the
    daemon's ``rate`` setting.
    """

    text: str
    voice: str | None = None
    voice_path: str | None = None
    voice_data: bool = flag()
    clip: bytes | None = buffer()
    options: dict[str, Any] = field(default_factory=dict)
    rate: float | None = ranged(*RATE_RANGE)


@_request("speak", stream=False)
class Speak(Synthesize):
    """Queue text on the daemon's speaker: ``synthesize``'s arguments, ``priority`` and this job's ``volume``."""

    priority: str = DEFAULT_PRIORITY
    volume: float = ranged(*VOLUME_RANGE, default=1.0, quiet=True)

    def __post_init__(self) -> None:
        if self.priority not in PRIORITIES:
            raise ProtocolError("bad_args", f"priority must be one of {', '.join(PRIORITIES)}, not {self.priority!r}")


@_request("cancel")
class Cancel(Request):
    """Cancel a job by its id, or by the id of the request that made it."""

    job: str | None = None
    request: str | None = None

    def __post_init__(self) -> None:
        if self.job is None and self.request is None:
            raise ProtocolError("bad_args", "give 'job' or 'request'")


@_request("wait", stream=True)
class Wait(Request):
    """Answer when a job ends; with ``stop_on_disconnect`` the job stops if this client goes."""

    job: str
    stop_on_disconnect: bool = flag()


@_request("stop")
class Stop(Request):
    """Stop the playing job, one job, or (``all``) everything queued too."""

    job: str | None = None
    all: bool = False


@_request("audio.set")
class AudioSet(Request):
    """Choose the output device ("" for the system default) and/or the volume (0-1)."""

    device: str | None = None
    volume: float | None = ranged(*VOLUME_RANGE)


@_request("settings.set")
class SettingsSet(Request):
    """Change settings (name to value)."""

    values: dict[str, Any]


@_request("cache.clear")
class CacheClear(Request):
    """Drop cached conditionals of one voice, or all."""

    voice: str | None = None


@_request("words.add")
class WordsAdd(Request):
    """Add a rule, replace the one for the same word, or (``old_word``) edit that one."""

    word: str
    say: str
    regex: bool = False
    case_sensitive: bool = False
    old_word: str | None = None


@_request("words.remove")
class WordsRemove(Request):
    """Remove the rule for ``word``."""

    word: str


@_request("words.import")
class WordsImport(Request):
    """Add many rules at once (all or nothing); ``merge=False`` makes them the whole dictionary."""

    rules: list[dict[str, Any]]
    merge: bool = True


@_request("text.preview")
class TextPreview(Request):
    """What the model would be given for ``text`` (rules, pauses, tags)."""

    text: str


# -- replies -----------------------------------------------------------------------------------


class Reply(Fields):
    """A reply to a request: its ``kind`` and that kind's fields (docs/protocol.md, Replies)."""

    __slots__ = ()
    kind: ClassVar[str] = ""
    TOLERANT: ClassVar[bool] = True

    def to_header(self, req_id: str) -> dict[str, Any]:
        """The reply's header for request ``req_id``."""
        return reply_header(req_id, self.kind, **self.to_data())

    @classmethod
    def from_header(cls, header: dict[str, Any], buffers: tuple[bytes, ...] | list = ()) -> Reply:
        """The typed reply a header holds (its kind's type)."""
        kind = REPLIES.get(header.get("kind"))  # type: ignore[arg-type]
        if kind is None:
            raise ProtocolError("bad_message", f"unknown reply kind {header.get('kind')!r}")
        return kind.from_data(header, buffers)


@_reply("accepted")
class Accepted(Reply):
    """``synthesize``'s job is queued: its id, the jobs ahead of it, how many chunks it has."""

    job: str
    position: int
    chunks: int


@_reply("progress")
class Progress(Reply):
    """The once-a-second keepalive of ``synthesize`` and ``wait``: the job as it stands."""

    progress: dict[str, Any]


@_reply("chunk")
class ChunkReply(Reply):
    """One sentence's audio, or one piece of it (float32 samples in buffer 0)."""

    index: int
    sample_rate: int
    samples: int
    text: str
    span: list[int]
    tokens: int
    budget: int
    piece: int = 0
    final: bool = True
    audio: bytes | None = buffer()


@_reply("result")
class Result(Reply):
    """The op succeeded: its result object."""

    result: dict[str, Any]

    @classmethod
    def of(cls, result: dict[str, Any] | Fields) -> Result:
        """The reply of an op's result, typed (``RESULTS``) or a plain object."""
        return cls(result if isinstance(result, dict) else result.to_data())


@_reply("error")
class ErrorReply(Reply):
    """The op failed: ``{"code", "message"}``."""

    error: dict[str, Any]

    @classmethod
    def of(cls, error: Any) -> ErrorReply:
        """The reply of a ``CodedError``."""
        return cls(error.to_json())

    def raised(self) -> ProtocolError:
        """The ``ProtocolError`` it carries (``internal`` when the daemon gave no code)."""
        return ProtocolError(str(self.error.get("code", "internal")), str(self.error.get("message", "")))


# -- events ------------------------------------------------------------------------------------


class Event(Fields):
    """An event on the broadcast socket: its ``topic`` and its ``data`` as fields."""

    __slots__ = ()
    topic: ClassVar[str] = ""
    TOLERANT: ClassVar[bool] = True

    def to_header(self, seq: int) -> dict[str, Any]:
        """The event's header, ``seq``-th of the daemon's run."""
        return event_header(self.topic, seq, self.to_data())

    @classmethod
    def from_header(cls, header: dict[str, Any]) -> Event:
        """The typed event a header holds (its topic's type)."""
        topic = EVENTS.get(header.get("event"))  # type: ignore[arg-type]
        if topic is None:
            raise ProtocolError("bad_message", f"unknown event topic {header.get('event')!r}")
        return topic.from_data(header.get("data") or {})


@_event("state")
class StateEvent(Event):
    """The daemon's state changed, or loading moved on; also ``status``'s result."""

    state: str
    progress: float
    message: str
    error: str
    variant: str
    model_id: str
    device: str
    queue: int
    reload_required: bool
    speaker_paused: bool
    download: dict[str, Any] | None
    remote: dict[str, Any] | None = None


@_event("job")
class JobEvent(Event):
    """A job moved (``event`` says how); the job's fields are absent when the speaker itself paused or resumed."""

    event: str
    job: str | None = None
    request: str | None = sent()
    kind: str | None = None
    state: str | None = None
    voice: str | None = sent()
    chunks: int | None = None
    chunks_done: int | None = None
    priority: str | None = None
    text: str | None = None
    index: int | None = None
    span: list[int] | None = None
    sentence: int | None = None
    seconds: float | None = None
    first_sample_s: float | None = None
    reason: str | None = None
    summary: dict[str, Any] | None = None
    playback: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    def to_data(self) -> dict[str, Any]:
        data = Fields.to_data(self)
        if self.job is None:  # the speaker's own pause or resume: no job fields at all
            data.pop("request"), data.pop("voice")
        return data


@_event("voices")
class VoicesEvent(Event):
    """The voice library changed: ``added``, ``renamed``, ``removed`` or ``default``."""

    action: str
    voice: VoiceInfo | None = None
    old_name: str | None = None
    name: str | None = None

    def to_data(self) -> dict[str, Any]:
        data = Fields.to_data(self)
        if self.action in ("removed", "default"):
            data["name"] = self.name  # null: no default now
        return data


@_event("cache")
class CacheEvent(Event):
    """A voice's conditionals entered the cache (``tier``), or ``cache.clear`` removed ``cleared`` entries."""

    sha256: str | None
    voice: str | None
    tier: str | None
    cleared: int | None = None


@_event("playback")
class PlaybackEvent(Event):
    """The output device or the volume changed; also ``playback``'s result."""

    state: str
    job: str | None
    queue: list[str]
    volume: float
    device: str
    underruns: int
    prebuffer: str
    recent_rtf: float | None = sent()
    last_stop_latency_ms: float | None = sent()
    device_latency_ms: float | None = sent()


@_event("settings")
class SettingsEvent(Event):
    """A client changed the daemon's settings: all of them after the change, and the names it gave."""

    settings: dict[str, Any]
    changed: list[str]


@_event("words")
class WordsEvent(Event):
    """The pronunciation rules changed; ``count`` rules now."""

    action: str
    word: str | None
    count: int


# -- results ------------------------------------------------------------------------------------
# An op's ``Result.result`` as a type, for the ops whose result a client reads field by field
# (``RESULTS``). The daemon builds them in the documented order; a client reads one with
# ``Request.read_result`` (or ``X.from_data``), while the ``Client`` methods hand on the object.

#: The ops whose ``result`` has a type, by op (``status`` and ``playback`` are also events).
RESULTS: dict[str, type[Fields]] = {"status": StateEvent, "playback": PlaybackEvent}
#: ``@_result(*ops)``: the result type of ``ops`` (none: a type that another result holds).
_result = _declaring(RESULTS)


class OpResult(Fields):
    """An op's result: like a reply, it may lack a field an older daemon did not send (its zero value)."""

    __slots__ = ()
    TOLERANT: ClassVar[bool] = True


@_result("speak")
class SpeakResult(OpResult):
    """``speak``'s answer: the job, its priority, whether it was dropped, and (unless dropped) where it stands."""

    job: str
    dropped: bool
    position: int | None
    priority: str | None = None
    chunks: int | None = None
    replaced: list[str] | None = None


@_result("wait")
class WaitResult(OpResult):
    """``wait``'s answer, a job's end: how it ended, its summary, its playback record (speech), its error."""

    job: str
    kind: str
    state: str
    summary: dict[str, Any] | None
    playback: dict[str, Any] | None
    error: dict[str, Any] | None


@_result("hello")
class HelloResult(OpResult):
    """``hello``: versions, ops, variants and (once loaded) what the model supports."""

    protocol: int
    daemon_version: str
    ops: list[str]
    variants: list[str]
    variant: str
    capabilities: dict[str, Any] | None
    limits: dict[str, Any]
    pid: int
    platform: str


@_result("retry_load", "reload")
class LoadResult(StateEvent):
    """``reload`` and ``retry_load``: ``status``'s fields after the call, and whether a load began."""

    started: bool = False


@_result("voices.add", "voices.rename")
class VoiceInfo(OpResult):
    """A voice of the library: ``voices.list``'s items, ``voices.add``'s and ``voices.rename``'s result."""

    name: str
    sha256: str
    duration_s: float
    sample_rate: int
    added_at: str
    source_name: str
    cache: str | None
    default: bool


@_result()
class ClipChecked(OpResult):
    """``voices.add`` with ``check``: the clip is fit; its length and rate."""

    checked: bool
    duration_s: float
    sample_rate: int


@_result("voices.list")
class VoicesListResult(OpResult):
    """``voices.list``: the voices, sorted by name, and the default's name."""

    voices: list[VoiceInfo]
    default: str | None


@_result("voices.default")
class VoicesDefaultResult(OpResult):
    """``voices.default``: the default voice after the call (None: none)."""

    default: str | None


@_result("voices.play")
class VoicesPlayResult(OpResult):
    """``voices.play``: the job that plays the clip, and its length."""

    job: str
    voice: str
    seconds: float


@_result("stop")
class StopResult(OpResult):
    """``stop``: the jobs it stopped."""

    stopped: list[str]


@_result("pause", "resume")
class PauseResult(OpResult):
    """``pause`` and ``resume``: the speaker's state now, and the job it holds."""

    paused: bool
    job: str | None


@_result("skip")
class SkipResult(OpResult):
    """``skip``: the job it skipped in, and the sentence it skipped to (None: nothing played)."""

    job: str | None
    sentence: int | None


@_result()
class Device(OpResult):
    """An output device, as ``audio.devices`` lists it (``audio.output.list_devices`` makes these)."""

    index: int
    name: str
    hostapi: str
    channels: int
    default_samplerate: float
    default: bool


@_result("audio.set")
class AudioSetResult(OpResult):
    """``audio.set``: the output device now (\"\": the system's default) and the volume."""

    device: str
    volume: float


@_result("audio.devices")
class AudioDevicesResult(OpResult):
    """``audio.devices``: the output devices, the chosen one and the volume."""

    devices: list[Device]
    device: str
    volume: float


@_result("settings.get")
class SettingsGetResult(OpResult):
    """``settings.get``: every setting, which are editable and need a reload, what is loaded, the file."""

    settings: dict[str, Any]
    editable: list[str]
    needs_reload: list[str]
    loaded: dict[str, Any]
    file: str


@_result("settings.set")
class SettingsSetResult(OpResult):
    """``settings.set``: every setting after the change, whether a reload is due, whether loading began."""

    settings: dict[str, Any]
    reload_required: bool
    loading: bool


@_result("cache.stats")
class CacheStatsResult(OpResult):
    """``cache.stats``: hits by tier, misses, entries and bytes by tier, time spent and saved, budgets."""

    hits: dict[str, int]
    misses: int
    requests: int
    hit_rate: float
    entries: dict[str, int]
    bytes: dict[str, int]
    prepared_in_background: int
    prepare_seconds_total: float
    prepare_failures: int
    seconds_saved: float
    disk_errors: dict[str, int]
    budgets: dict[str, int]
    directory: str


@_result("cache.clear")
class CacheClearResult(OpResult):
    """``cache.clear``: how many cache entries it removed."""

    removed: int


@_result("words.list")
class WordsListResult(OpResult):
    """``words.list``: the rules (``markup.Rule``'s objects) and the most the dictionary may hold."""

    rules: list[dict[str, Any]]
    limit: int


@_result("words.add")
class WordsAddResult(OpResult):
    """``words.add``: the rule as stored, whether it replaced one, how many rules there are now."""

    rule: dict[str, Any]
    replaced: bool
    count: int


@_result("words.remove")
class WordsRemoveResult(OpResult):
    """``words.remove``: the rule removed and how many are left."""

    removed: dict[str, Any]
    count: int


@_result("words.import")
class WordsImportResult(OpResult):
    """``words.import``: how many rules were new, replaced and removed, and how many there are now."""

    added: int
    replaced: int
    removed: int
    count: int


@_result("text.preview")
class TextPreviewResult(OpResult):
    """``text.preview``: each chunk for the model (``text``, ``span``, a pause's ``pause_s``), warnings."""

    chunks: list[dict[str, Any]]
    warnings: list[str]
    tags_checked: bool


@_result("ping")
class PingResult(OpResult):
    """``ping``: a pong, and the daemon's clock (Unix time, seconds)."""

    pong: bool
    time: float


@_result("voices.remove")
class VoicesRemoveResult(OpResult):
    """``voices.remove``: the removed voice's name, as the library spelt it."""

    removed: str


@_result("cancel")
class CancelResult(OpResult):
    """``cancel``: the jobs it cancelled."""

    cancelled: list[str]


@_result("shutdown")
class ShutdownResult(OpResult):
    """``shutdown``: the daemon is stopping (it answers first)."""

    stopping: bool


@_result("tags.list")
class TagsListResult(OpResult):
    """``tags.list``: the loaded model's tags and the pause markup's bounds."""

    variant: str
    loaded: bool
    tags: list[str]
    pause: dict[str, float]
