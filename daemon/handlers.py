"""One function per protocol op, run on the main loop.

A handler gets its request as the op's type (``ipc/messages.py``), whose
fields were checked as the server read it; the handler checks what depends on
the daemon (a voice, the text's length, the model's languages), raising a
coded error the server answers with as it is, does quick work itself and
hands model work to the job queue. It returns the result of a one-shot op,
or ``None`` when the answer will come later from the worker (``synthesize``,
``wait``).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from typing import Any

from .. import __version__
from ..audio.output import find_device, resample
from ..ipc import endpoints
from ..ipc import messages as m
from ..ipc.limits import PRIORITY_RANK as RANK
from ..ipc.markup import MAX_RULES, PAUSE_DEFAULT_S, PAUSE_MAX_S, PAUSE_TOTAL_MAX_S
from ..ipc.protocol import OPS, PROTOCOL_VERSION, ProtocolError, as_coded
from .clip import decode_clip, sha256_bytes, validate_clip
from .engine import SynthOptions
from .jobs import LOCAL_CLIENT, Job
from .model import MODEL_KEYS
from .saytext import Prepared, prepare, resolve_tags
from .service import Service, read_clip_path
from .settings import NEEDS_RELOAD, VARIANTS, Settings, save_changes
from .sysstats import system_stats


@dataclass
class ReceivedRequest:
    """A decoded request and who sent it."""

    identity: bytes
    req_id: str
    op: str
    #: The request as its op's type (``ipc.messages``), its arguments checked.
    args: Any
    #: Who: ``jobs.LOCAL_CLIENT`` (the daemon's own user), or a remote client's public key.
    client: str = LOCAL_CLIENT


Handler = Callable[[Service, ReceivedRequest], "dict[str, Any] | m.Fields | None"]
HANDLERS: dict[str, Handler] = {}


log = logging.getLogger(__name__)

#: Threads for work a request needs but the main loop must never wait on:
#: decoding a clip (a 60 s MP3 takes a while; the first decode of an odd
#: format pays for importing a fallback decoder, seconds).
_OFF_LOOP = ThreadPoolExecutor(max_workers=2, thread_name_prefix="clip")


def off_loop(svc: Service, req: ReceivedRequest, work: Callable[[], dict[str, Any] | m.Fields | None]) -> None:
    """Run ``work`` on a helper thread and answer ``req`` with its result or error when it is done.

    The handler then returns None: the main loop goes on serving everyone
    else meanwhile, and the reply goes out through the Outbox like a job's.
    ``work`` returning None has answered by itself (a job's replies).
    """

    def run() -> None:
        try:
            result = work()
        except Exception as exc:
            svc.out.reply(req.identity, req.req_id, m.ErrorReply.of(as_coded(exc, req.op)))
        else:
            if result is not None:
                svc.out.reply(req.identity, req.req_id, m.Result.of(result))

    _OFF_LOOP.submit(run)


def handler(op: str) -> Callable[[Handler], Handler]:
    """Register a handler; every op in the protocol must have one (a test checks)."""

    def register(fn: Handler) -> Handler:
        assert op in OPS, op  # programming error, caught by the tests
        HANDLERS[op] = fn
        return fn

    return register


@handler("hello")
def hello(svc: Service, req: ReceivedRequest) -> m.HelloResult:
    """Versions and capabilities, so clients never hard-code them."""
    return m.HelloResult(
        protocol=PROTOCOL_VERSION,
        daemon_version=__version__,
        ops=sorted(OPS),
        variants=list(VARIANTS),
        variant=svc.model.engine.variant,
        capabilities=svc.model.engine.capabilities() if svc.model.state == "ready" else None,
        limits={"max_text_chars": svc.settings.max_text_chars},
        pid=os.getpid(),
        platform=sys.platform,
    )


@handler("ping")
def ping(svc: Service, req: ReceivedRequest) -> m.PingResult:
    """Answered from the main loop, whatever the model is doing."""
    return m.PingResult(True, time.time())


@handler("status")
def status(svc: Service, req: ReceivedRequest) -> dict[str, Any]:
    """State, progress and failure reason."""
    return svc.status()


@handler("retry_load")
@handler("reload")
def load(svc: Service, req: ReceivedRequest) -> dict[str, Any]:
    """Load the model: again with the current settings (``reload``), or after a failure (``retry_load``).

    ``retry_load`` is a no-op when loading or ready.
    """
    return {"started": svc.model.reload() if req.op == "reload" else svc.model.load(), **svc.status()}


@handler("settings.get")
def settings_get(svc: Service, req: ReceivedRequest) -> m.SettingsGetResult:
    """Every setting, which of them need a model reload, and the settings file's path."""
    editable, reload, loaded = list(Settings.editable()), list(NEEDS_RELOAD), svc.model.loaded_settings
    return m.SettingsGetResult(svc.settings.to_json(), editable, reload, loaded, str(endpoints.settings_file()))


@handler("settings.set")
def settings_set(svc: Service, req: ReceivedRequest) -> m.SettingsSetResult:
    """Change settings (``values``: name to value); saved, applied at once where possible."""
    values = req.args.values
    unknown = sorted(set(values) - set(Settings.editable()))
    if unknown:
        raise ProtocolError("bad_args", f"unknown or read-only setting(s): {', '.join(unknown)}")
    try:
        new = dc_replace(svc.settings, **values).validate()
    except (TypeError, ValueError) as exc:
        raise ProtocolError("bad_args", str(exc)) from None
    if new.output_device and new.output_device != svc.settings.output_device:
        find_device(new.output_device)
    save_changes(values)  # first: on a full disk nothing changes, saved or applied
    svc.apply_settings(new)
    svc.out.event(m.SettingsEvent(new.to_json(), sorted(values)))
    # After a failed load nothing is loaded to keep serving: a change to what
    # is loaded loads it now, rather than leaving the failure until `reload`.
    loading = svc.model.state == "failed" and any(k in MODEL_KEYS for k in values) and svc.model.load()
    return m.SettingsSetResult(new.to_json(), False if loading else svc.status()["reload_required"], loading)


@handler("voices.list")
def voices_list(svc: Service, req: ReceivedRequest) -> m.VoicesListResult:
    """The library, with cache state."""
    return m.VoicesListResult([svc.voice_info(v.name) for v in svc.voices.list()], svc.voices.default)


@handler("voices.add")
def voices_add(svc: Service, req: ReceivedRequest) -> None:
    """Validate and store a clip, then prepare its conditionals in the background (``check``: only validate)."""
    args: m.VoicesAdd = req.args
    source, path = args.source_name, args.path
    if path is None and args.clip is None:
        raise ProtocolError("bad_args", "send the clip as buffer 0 or give 'path'")

    def clip() -> bytes:
        return read_clip_path(path) if path is not None else args.clip

    def check_clip() -> m.ClipChecked:  # what `add` checks of the clip, before anyone names it
        suffix = os.path.splitext(source or path or "")[1].lower()
        info = validate_clip(*decode_clip(clip(), suffix=suffix))
        return m.ClipChecked(True, round(info.duration_s, 3), info.sample_rate)

    def add() -> m.VoiceInfo:  # reading and decoding the clip: off the main loop
        voice = svc.voices.add(args.name, clip(), source_name=source or os.path.basename(path or ""))
        svc.queue_prepare(voice.name)
        result = svc.voice_info(voice.name)
        svc.out.event(m.VoicesEvent("added", voice=result))
        if result.default:  # the first voice of a library without a default
            svc.out.event(m.VoicesEvent("default", name=voice.name))
        return result

    off_loop(svc, req, check_clip if args.check else add)
    return None


@handler("voices.rename")
def voices_rename(svc: Service, req: ReceivedRequest) -> m.VoiceInfo:
    """Rename a voice; its clip and cache entry stay."""
    voice = svc.voices.rename(req.args.name, req.args.new_name)
    result = svc.voice_info(voice.name)
    svc.out.event(m.VoicesEvent("renamed", voice=result, old_name=req.args.name))
    return result


@handler("voices.remove")
def voices_remove(svc: Service, req: ReceivedRequest) -> m.VoicesRemoveResult:
    """Remove a voice, its clip, and its cached conditionals."""
    voice = svc.voices.get(req.args.name)
    svc.voices.remove(req.args.name)
    if not any(v.sha256 == voice.sha256 for v in svc.voices.list()):
        svc.cache.clear(voice.sha256)
    svc.out.event(m.VoicesEvent("removed", name=voice.name))
    return m.VoicesRemoveResult(voice.name)


@handler("voices.play")
def voices_play(svc: Service, req: ReceivedRequest) -> m.VoicesPlayResult:
    """Play a voice's reference clip on the speaker, as quick-speak (replacing what plays)."""
    voice = svc.voices.get(req.args.name)
    find_device(svc.player.device)
    samples, rate = decode_clip(voice.file)
    samples = resample(samples, rate, svc.player.rate)
    text = f"(reference clip of {voice.name})"
    job = Job("speak", req_id=req.req_id, text=text, voice_name=voice.name, rank=RANK["quick"])
    svc.coordinator.admit_clip(job, samples, text)
    return m.VoicesPlayResult(job.id, voice.name, round(len(samples) / svc.player.rate, 3))


@handler("voices.default")
def voices_default(svc: Service, req: ReceivedRequest) -> m.VoicesDefaultResult:
    """Get, set (``name``) or clear (``clear: true``) the default voice."""
    name = req.args.name
    if req.args.clear:
        svc.voices.set_default(None)
        svc.out.event(m.VoicesEvent("default", name=None))
    elif name is not None:
        svc.voices.set_default(name)
        svc.out.event(m.VoicesEvent("default", name=svc.voices.default))
        svc.queue_prepare(name)  # kept ready in T3 now that it is the default
    return m.VoicesDefaultResult(svc.voices.default)


def _options(svc: Service, raw: dict[str, Any]) -> SynthOptions:
    """The generation options, checked (``SpeechOptions``); the language must be one the loaded model speaks."""
    options = m.SpeechOptions.from_data(raw)
    language = options.language
    if language is None and svc.model.engine.variant == "multilingual":
        language = svc.settings.language  # the user's default language
    if language is not None and svc.model.state == "ready":
        languages = svc.model.engine.capabilities()["languages"]
        if language.lower() not in languages:
            raise ProtocolError(
                "unknown_language",
                f"language {language!r} is not supported by the {svc.model.engine.variant} model "
                f"(supported: {', '.join(languages)})",
            )
    return SynthOptions(
        options.exaggeration,
        options.cfg_weight,
        options.temperature,
        options.seed,
        language.lower() if language else None,
    )


def _new_job(svc: Service, req: ReceivedRequest, kind: str) -> tuple[Job, bytes | None]:
    """Check a synthesize or speak request and make its job (voice resolved).

    Also returns a sent or named clip that must be decoded and checked before
    the job is admitted (None when its voice is cached): ``_admit`` does that
    off the main loop, so a bad clip still fails at once, not in the queue.
    """
    args: m.Synthesize | m.Speak = req.args
    prepared = _prepared(svc, args.text)
    if all(c.pause_s is not None for c in prepared.chunks):
        raise ProtocolError("empty_text", "there is no text to speak")
    options = _options(svc, args.options)
    if svc.model.state == "failed":
        raise ProtocolError("not_ready", f"the model failed to load: {svc.model.error} (send retry_load)")
    job = Job(kind, identity=req.identity, req_id=req.req_id, text=args.text, chunks=prepared.chunks, options=options)
    job.tag_spans = prepared.tags
    job.rate = svc.settings.rate if args.rate is None else args.rate  # else the user's default (a setting)
    if args.voice_data or args.voice_path is not None:
        if args.voice_path is not None:
            clip = read_clip_path(args.voice_path)
            job.voice_name = os.path.basename(args.voice_path)
        elif args.clip is not None:
            clip = args.clip
            job.voice_name = "(sent clip)"
        else:
            raise ProtocolError("bad_args", "voice_data is true but no clip buffer was sent")
        job.clip, job.clip_sha256 = clip, sha256_bytes(clip)
        if svc.cache_tier(job.clip_sha256) is None:
            return job, clip
    else:
        name = args.voice or svc.voices.default
        if name is None:
            raise ProtocolError(
                "unknown_voice",
                "no voice given and no default voice set: add a voice "
                "(chatterbox-tray voices add NAME CLIP, or the Voices page) or name one",
            )
        voice = svc.voices.get(name)
        job.voice_name, job.clip_sha256 = voice.name, voice.sha256
    return job, None


def _prepared(svc: Service, text: str) -> Prepared:
    """Pronunciation rules, pauses and tags (daemon/saytext.py), spans in the user's text; refused over the limit."""
    if len(text) > svc.settings.max_text_chars:
        raise ProtocolError("too_large", f"text is {len(text)} characters; the limit is {svc.settings.max_text_chars}")
    return prepare(text, svc.words.compiled(), svc.settings.max_chunk_chars)


def _admit(svc: Service, req: ReceivedRequest, job: Job, clip: bytes | None, *admit_args: Any) -> m.SpeakResult | None:
    """Admit ``job`` now, or once its clip has been decoded and checked on a helper thread."""
    if clip is None:
        return svc.coordinator.admit(job, *admit_args)

    def check_then_admit() -> m.SpeakResult | None:
        validate_clip(*decode_clip(clip))
        return svc.coordinator.admit(job, *admit_args)

    off_loop(svc, req, check_then_admit)
    return None


@handler("synthesize")
def synthesize(svc: Service, req: ReceivedRequest) -> None:
    """Queue text for the model; chunks and the summary are streamed back."""
    job, clip = _new_job(svc, req, "synthesize")
    _admit(svc, req, job, clip)


@handler("speak")
def speak(svc: Service, req: ReceivedRequest) -> m.SpeakResult | None:
    """Queue text for the speaker; answers at once with the job id."""
    job, clip = _new_job(svc, req, "speak")
    job.identity = None  # speech belongs to the daemon, not to the client that asked
    job.rank = RANK[req.args.priority]
    find_device(svc.player.device)
    return _admit(svc, req, job, clip, req.args.priority, req.args.volume)


def _speech_jobs(svc: Service, req: ReceivedRequest) -> list[Job]:
    job_id = req.args.job
    jobs = svc.player.jobs()
    if req.args.all:
        return jobs
    if job_id is not None:
        found = [j for j in jobs if j.id == job_id]
        if not found:
            raise ProtocolError("no_such_job", f"no speech job {job_id} is playing or queued")
        return found
    return jobs[:1]


@handler("stop")
def stop(svc: Service, req: ReceivedRequest) -> m.StopResult:
    """Stop the playing job (default), one job (``job``) or everything (``all``)."""
    return m.StopResult([job.id for job in _speech_jobs(svc, req) if svc.coordinator.cancel(job, "stopped")])


@handler("pause")
@handler("resume")
def pause(svc: Service, req: ReceivedRequest) -> dict[str, Any]:
    """Pause the speaker (synthesis goes on), or resume it."""
    return svc.player.set_paused(req.op == "pause")


@handler("skip")
def skip(svc: Service, req: ReceivedRequest) -> dict[str, Any]:
    """Skip to the next sentence of the playing job."""
    return svc.player.skip()


@handler("playback")
def playback(svc: Service, req: ReceivedRequest) -> dict[str, Any]:
    """The speaker's state, queue, volume, device and underruns."""
    return svc.player.status()


@handler("wait")
def wait(svc: Service, req: ReceivedRequest) -> dict[str, Any] | None:
    """Answer when a job ends (progress replies meanwhile); at once if it has.

    With ``stop_on_disconnect`` the job is stopped if this client goes away first.
    """
    return svc.coordinator.wait(req.args.job, req.identity, req.req_id, req.args.stop_on_disconnect)


@handler("audio.devices")
def audio_devices(svc: Service, req: ReceivedRequest) -> m.AudioDevicesResult:
    """Output devices (re-read from the system when nothing is playing)."""
    devices = svc.player.devices()  # messages.Device already (audio.output lists them as such)
    return m.AudioDevicesResult(devices, svc.player.device, svc.player.volume)


@handler("audio.set")
def audio_set(svc: Service, req: ReceivedRequest) -> m.AudioSetResult:
    """Choose the output device (by name; "" for the default) and/or the volume; saved."""
    device, volume = req.args.device, req.args.volume
    if device:
        device = find_device(device).name
    changes = {k: v for k, v in (("output_device", device), ("volume", volume)) if v is not None}
    if changes:
        save_changes(changes)  # first: on a full disk nothing changes
        svc.settings = dc_replace(svc.settings, **changes)
        svc.player.set_output(device, volume)
        svc.out.event(m.PlaybackEvent(**svc.player.status()))
    return m.AudioSetResult(svc.player.device, svc.player.volume)


@handler("cancel")
def cancel(svc: Service, req: ReceivedRequest) -> m.CancelResult:
    """Cancel by job id, or by the id of the request that made the job."""
    job_id, request = req.args.job, req.args.request
    jobs = svc.queue.find(job_id=job_id) if job_id else svc.queue.find(identity=req.identity, req_id=request)
    jobs = [j for j in jobs if j.kind != "prepare"]  # background work is the daemon's own
    if not jobs:
        raise ProtocolError("no_such_job", f"no queued or running job {job_id or request}")
    for job in jobs:
        svc.coordinator.cancel(job)
    return m.CancelResult([j.id for j in jobs])


@handler("cache.stats")
def cache_stats(svc: Service, req: ReceivedRequest) -> m.CacheStatsResult:
    """Cache figures."""
    return m.CacheStatsResult(**svc.cache.stats())


@handler("cache.clear")
def cache_clear(svc: Service, req: ReceivedRequest) -> m.CacheClearResult:
    """Clear one voice's conditionals (by voice name) or everything."""
    name = req.args.voice
    sha = None if name is None else svc.voices.get(name).sha256
    removed = svc.cache.clear(sha)
    svc.out.event(m.CacheEvent(sha, name, None, removed))
    return m.CacheClearResult(removed)


@handler("stats")
def stats(svc: Service, req: ReceivedRequest) -> dict[str, Any]:
    """Model, device, memory, process figures and recent jobs."""
    return {
        **system_stats(svc.model.engine),
        "status": svc.status(),
        "uptime_s": round(time.time() - svc.started, 1),
        "recent_jobs": recent_jobs_for(req.client, list(svc.coordinator.recent)),
        "last_sleep": svc.model.last_sleep or None,
        "bridges": svc.bridges.status(),
    }


def recent_jobs_for(client: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last 10 ended jobs ``client`` may see: all for the daemon's own user, its own for a remote client.

    Their texts are what people said: one computer must not read another's
    (docs/security.md). An entry saved before jobs had an owner counts as local.
    """
    if client != LOCAL_CLIENT:
        entries = [e for e in entries if e.get("client") == client]
    return [{k: v for k, v in e.items() if k != "client"} for e in entries[-10:]]


def _words_changed(svc: Service, action: str, word: str | None = None) -> int:
    """Tell every client the dictionary changed; return how many rules it holds."""
    count = len(svc.words.list())
    svc.out.event(m.WordsEvent(action, word, count))
    return count


@handler("words.list")
def words_list(svc: Service, req: ReceivedRequest) -> m.WordsListResult:
    """The pronunciation rules, in the order they were made."""
    return m.WordsListResult([r.to_json() for r in svc.words.list()], MAX_RULES)


@handler("words.add")
def words_add(svc: Service, req: ReceivedRequest) -> m.WordsAddResult:
    """Add a rule, replace the one for the same word, or edit ``old_word``'s; checked before it is saved."""
    raw = req.args.to_data()
    rule, replaced = svc.words.add(raw, old_word=raw.pop("old_word", None))
    count = _words_changed(svc, "changed" if replaced else "added", rule.word)
    return m.WordsAddResult(rule.to_json(), replaced, count)


@handler("words.remove")
def words_remove(svc: Service, req: ReceivedRequest) -> m.WordsRemoveResult:
    """Remove the rule for ``word``."""
    rule = svc.words.remove(req.args.word)
    return m.WordsRemoveResult(rule.to_json(), _words_changed(svc, "removed", rule.word))


@handler("words.import")
def words_import(svc: Service, req: ReceivedRequest) -> m.WordsImportResult:
    """Add many rules at once (all checked first: one bad rule and nothing changes)."""
    result = m.WordsImportResult(**svc.words.replace_all(req.args.rules, merge=req.args.merge))
    _words_changed(svc, "imported")
    return result


@handler("text.preview")
def text_preview(svc: Service, req: ReceivedRequest) -> m.TextPreviewResult:
    """What the model would be given for ``text``: rules applied, pauses and tags found, sentence by sentence."""
    prepared = _prepared(svc, req.args.text)
    ready = svc.model.state == "ready"
    if ready:
        prepared = resolve_tags(prepared, svc.model.engine.tags(), svc.model.engine.variant)
    chunks = [
        {"text": c.text, "span": [c.start, c.end], **({"pause_s": c.pause_s} if c.pause_s is not None else {})}
        for c in prepared.chunks
    ]
    return m.TextPreviewResult(chunks, prepared.warnings, ready)


@handler("tags.list")
def tags_list(svc: Service, req: ReceivedRequest) -> m.TagsListResult:
    """The tags the loaded model's tokenizer knows, and the pause markup's bounds."""
    ready = svc.model.state == "ready"
    pause = {"default_s": PAUSE_DEFAULT_S, "max_s": PAUSE_MAX_S, "total_max_s": PAUSE_TOTAL_MAX_S}
    return m.TagsListResult(svc.model.engine.variant, ready, svc.model.engine.tags() if ready else [], pause)


@handler("shutdown")
def shutdown(svc: Service, req: ReceivedRequest) -> m.ShutdownResult:
    """The server stops after sending this reply."""
    return m.ShutdownResult(True)
