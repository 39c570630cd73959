"""``chatterbox-tray``: the command line, a plain client of the daemon.

It imports neither torch nor Qt (the daemon holds the model), nor the
daemon's code: ``chatterbox-tray daemon ...`` runs the daemon's module by
name, as ``python -m`` would, only then. So a command costs a fraction of a
second. When no daemon answers, it starts one, unless ``--no-start`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from ..audio import file_formats
from ..bridges import serve
from ..bridges.serve import EXIT_ERROR, EXIT_UNAVAILABLE, EXIT_USAGE
from ..ipc import messages as m
from ..ipc import requests as rq
from ..ipc.client import Client, DaemonUnavailable, connect
from ..ipc.formatting import human_bytes
from ..ipc.limits import CLIP_MAX_SECONDS, CLIP_MIN_SECONDS, DEFAULT_PRIORITY, OPTION_RANGES, PRIORITIES, RATE_RANGE
from ..ipc.protocol import ProtocolError
from ..ipc.settings_schema import SETTINGS
from . import progress_bar, quickspeak_command, remote_commands, speech_dispatcher, words_commands
from .speak_and_wait import speak_and_wait

EXIT_INTERRUPTED = 130
_human_bytes = partial(human_bytes, missing="-")


def _flag(parser: argparse.ArgumentParser, *names: str, help: str) -> None:
    """An option that is off unless given (``store_true``)."""
    parser.add_argument(*names, action="store_true", help=help)


def _show(args: argparse.Namespace, answer: Any, show: Callable[[Any], None]) -> int:
    """The daemon's ``answer`` as it came with ``--json``, else ``show(answer)`` for people."""
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    else:
        show(answer)
    return 0


def _print_error(code: str, message: str, as_json: bool) -> None:
    """An error for people (the message alone), or for scripts with ``--json`` (code and message)."""
    if as_json:
        print(json.dumps({"error": {"code": code, "message": message}}), file=sys.stderr)
    else:
        print(f"chatterbox-tray: {message}", file=sys.stderr)


_PLAIN_OS_ERRORS = (
    (FileNotFoundError, "there is no such file or folder"),
    (PermissionError, "you are not allowed to open it"),
    (IsADirectoryError, "this is a folder, not a file"),
    (NotADirectoryError, "part of this path is a file, not a folder"),
)


def plain_os_error(exc: OSError) -> str:
    """``[Errno 2] No such file or directory: 'x'`` in plain words."""
    where = f"{exc.filename}: " if exc.filename else ""
    plain = next((text for kind, text in _PLAIN_OS_ERRORS if isinstance(exc, kind)), None)
    return f"{where}{plain or exc.strerror or exc}"


# -- commands ---------------------------------------------------------------------


def _state_line(status: dict[str, Any]) -> str:
    """ "loading (33%: downloading the weights: 1.2 GiB of 3.0 GiB, …)", "ready", "failed: why"."""
    state = m.StateEvent.from_data(status)
    line = state.state
    if state.state in ("loading", "warming_up"):
        line += f" ({state.progress * 100:.0f}%: {state.message})"
    if state.state == "failed":
        line += f": {state.error}"
    if state.state == "sleeping":
        line += f" ({state.message})"
    return line


def cmd_status(client: Client, args: argparse.Namespace) -> int:
    if getattr(args, "watch", False):
        return _watch_status(client, args)
    return _show(args, client.status(), _print_status)


def _print_status(status: dict[str, Any]) -> None:
    print(_state_line(status))
    state = m.StateEvent.from_data(status)
    print(f"model:  {state.variant} ({state.model_id or 'not loaded'}) on {state.device}")
    print(f"queue:  {state.queue} job(s)")
    if state.speaker_paused:
        print("speaker: paused (chatterbox-tray resume)")
    if state.remote is not None:
        serving = f"serving other computers on {state.remote.get('serving')}"
        print(f"remote: {state.remote.get('error') or serving}")


def _watch_status(client: Client, args: argparse.Namespace) -> int:
    """Follow the load (the first run's download, say) until the model is ready (0) or failed (1).

    On a terminal one line is redrawn in place; elsewhere each change is a
    new line (``--json``: one status object a line).
    """
    tty = sys.stdout.isatty() and not args.json
    last = None
    while True:
        status = client.status()
        line = json.dumps(status) if args.json else _state_line(status)
        if line != last:
            print(f"\r\033[K{line}" if tty else line, end="" if tty else "\n", flush=True)
        last = line
        if status["state"] in ("ready", "failed"):
            if tty:
                print()
            return 0 if status["state"] == "ready" else EXIT_ERROR
        time.sleep(0.5)


def cmd_ping(client: Client, args: argparse.Namespace) -> int:
    rtt = min(client.ping() for _ in range(args.count))
    print(f"pong from pid {client.info.pid}: {rtt * 1e6:.0f} µs")
    return 0


def cmd_voices(client: Client, args: argparse.Namespace) -> int:
    action = args.voices_cmd
    if action == "add":
        voice = m.VoiceInfo.from_data(client.voices_add(args.name, path=args.file))
        if args.default:
            client.voices_default(voice.name)
        print(f"added {voice.name} ({voice.duration_s:.1f} s); preparing its conditionals in the background")
    elif action == "list":
        return _show(args, client.voices_list(), _print_voices)
    elif action == "rename":
        print(f"renamed to {m.VoiceInfo.from_data(client.voices_rename(args.name, args.new_name)).name}")
    elif action == "remove":
        client.voices_remove(args.name)
        print(f"removed {args.name}")
    elif action == "default":
        chosen = m.VoicesDefaultResult.from_data(client.voices_default(args.name, clear=args.clear)).default
        print(chosen or "no default voice")
    return 0


def _print_voices(voices: list[dict[str, Any]]) -> None:
    if not voices:
        print("no voices yet: add one with `chatterbox-tray voices add NAME clip.wav`")
    for v in map(m.VoiceInfo.from_data, voices):
        print(f"{'*' if v.default else ' '} {v.name:<24} {v.duration_s:6.1f} s   cache: {v.cache or 'not yet'}")


def _read_text(args: argparse.Namespace) -> str:
    if getattr(args, "selection", False):
        if args.text:
            raise SystemExit("chatterbox-tray say: give either text or --selection, not both")
        return quickspeak_command.selected_text()
    if args.text:
        return " ".join(args.text)
    if sys.stdin.isatty():
        raise SystemExit("chatterbox-tray say: give the text as an argument or on stdin")
    return sys.stdin.read()


def _audio_file(call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args)`` from ``file_formats``; its AudioFileError ends ``say`` with the reason (exit status 1)."""
    try:
        return call(*args)
    except file_formats.AudioFileError as exc:
        raise SystemExit(f"chatterbox-tray say: {exc}") from None


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options = {k: getattr(args, k) for k in ("exaggeration", "cfg_weight", "temperature", "seed", "language")}
    return {k: v for k, v in options.items() if v is not None}


def _rate(value: str) -> float:
    """``--rate``: a number within RATE_RANGE, refused here in plain words rather than by the daemon."""
    lo, hi = RATE_RANGE
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not lo <= rate <= hi:  # NaN too
        raise argparse.ArgumentTypeError(f"the rate must be between {lo:g} and {hi:g} (1 is normal speed), not {value}")
    return rate


def cmd_say(client: Client, args: argparse.Namespace) -> int:
    text = _read_text(args)
    if args.output is None and not args.raw:
        return _speak(client, args, text)
    if args.raw and sys.stdout.isatty():
        print("chatterbox-tray say: --raw writes binary PCM; pipe it somewhere", file=sys.stderr)
        return EXIT_USAGE
    if args.output is not None:  # before synthesizing: a bad path should not cost minutes of work first
        _audio_file(file_formats.check_writable, args.output)
    synthesis = client.synthesize(
        text, voice=args.voice, rate=args.rate, **_voice_source(client, args), **_options(args)
    )
    sink: Any = None
    bar: progress_bar.ExportProgress | None = None
    try:
        if progress_bar.wanted(quiet=args.quiet or args.json):
            synthesis.accepted()  # the total: how many sentences the daemon cut the text into
            bar = progress_bar.ExportProgress(synthesis.chunks or 0, what=Path(args.output).name if args.output else "")
        for chunk in synthesis:
            if args.output is not None:
                if sink is None:
                    sink = _audio_file(file_formats.open_writer, args.output, chunk.sample_rate)
                sink.write(chunk.samples)
            else:
                sys.stdout.buffer.write(chunk.samples.tobytes())
                sys.stdout.buffer.flush()
            if bar is not None:
                bar.add_audio(len(chunk.samples) / chunk.sample_rate, sentence_done=chunk.final)
            if args.verbose and chunk.final:
                line = f"[{chunk.index + 1}] {chunk.text}"
                if bar is not None:
                    bar.write(line)
                else:
                    print(line, file=sys.stderr)
    finally:
        if bar is not None:
            bar.close()
        if sink is not None:
            sink.close()
    summary = synthesis.summary
    if not args.json:
        _print_warnings(summary)
    if (args.verbose or args.output is not None) and not args.quiet:
        cond = summary.get("conditionals", {})
        print(
            f"{summary.get('audio_s', 0):.1f} s of audio in {summary.get('synthesis_s', 0):.1f} s "
            f"(RTF {summary.get('rtf') or 0:.2f}, first chunk after {summary.get('time_to_first_chunk_s', 0):.2f} s, "
            f"conditionals: {cond.get('tier')} {cond.get('seconds', 0):.2f} s)"
            + (f" -> {args.output}" if args.output else ""),
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(summary), file=sys.stderr)
    return 0


def _print_warnings(summary: dict[str, Any] | None) -> None:
    """What the daemon says about how the text was said (tags the model does not know, left out)."""
    for warning in (summary or {}).get("warnings") or []:
        print(f"chatterbox-tray say: {warning}", file=sys.stderr)


def _voice_source(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    """``--voice-file``: a path the local daemon reads, or the clip's bytes for a remote one."""
    if args.voice_file is None:
        return {}
    if client.remote:
        with open(args.voice_file, "rb") as fh:
            return {"voice_data": fh.read()}
    return {"voice_path": args.voice_file}


#: Said when ``say`` queues speech on a paused speaker: else it waits in silence.
PAUSED_LINE = (
    "chatterbox-tray: the speaker is paused, so this will not play until you resume it: "
    "run `chatterbox-tray resume` (or choose Resume in the tray menu). Ctrl-C stops it"
)
PAUSED_QUEUED_LINE = (
    "chatterbox-tray: queued, but the speaker is paused: it plays once you run `chatterbox-tray resume` "
    "(or choose Resume in the tray menu)"
)


def _waiting_line(status: dict[str, Any] | None) -> str:
    """What plain ``say`` waits for, said before it waits (a paused speaker is told apart)."""
    if status is None:
        return "chatterbox-tray: making speech… (Ctrl-C stops it)"
    state = m.StateEvent.from_data(status)
    if state.state in ("loading", "warming_up"):
        pct = round(100 * state.progress)
        doing = f": {state.message}" if state.download else ""
        return (
            f"chatterbox-tray: waiting for the model to load ({pct}%{doing}), then making speech… "
            "(Ctrl-C stops it; chatterbox-tray status --watch follows the load)"
        )
    if state.state == "failed":
        return "chatterbox-tray: the model failed to load; asking the daemon anyway…"
    if state.state == "sleeping":
        return "chatterbox-tray: waking the model (it was unloaded while idle), then making speech… (Ctrl-C stops it)"
    return "chatterbox-tray: making speech; it plays as soon as the first sentence is ready (Ctrl-C stops it)"


def _speak(client: Client, args: argparse.Namespace, text: str) -> int:
    """Play on the daemon's speaker; wait for the end unless --no-wait. Ctrl-C stops the job."""
    source = _voice_source(client, args)  # a remote daemon gets the clip's bytes, not a path
    request = rq.speak(text, voice=args.voice, **source, priority=args.priority, options=_options(args), rate=args.rate)
    if client.remote and args.no_wait:
        print(
            "chatterbox-tray say: --no-wait needs the local daemon (a remote one's speech plays here)", file=sys.stderr
        )
        return EXIT_USAGE
    if client.remote and not args.json and sys.stderr.isatty():
        print(
            f"chatterbox-tray: making speech on {client.daemon_name}; it plays here (Ctrl-C stops it)", file=sys.stderr
        )
    elif not args.json:
        try:
            status: dict[str, Any] | None = client.status()
        except ProtocolError:
            status = None
        if status is not None and status.get("speaker_paused"):
            # Said on a pipe too: a script's `say` would otherwise hang with no reason given.
            print(PAUSED_QUEUED_LINE if args.no_wait else PAUSED_LINE, file=sys.stderr)
        elif not args.no_wait and sys.stderr.isatty():
            print(_waiting_line(status), file=sys.stderr)  # else 20 s of silence on a CPU
    spoken = speak_and_wait(client, request, wait=not args.no_wait)
    if spoken.queued.dropped:
        print("chatterbox-tray say: dropped (a notification is not spoken over other speech)", file=sys.stderr)
        return 0
    if args.no_wait:
        print(json.dumps(spoken.queued.to_data()) if args.json else spoken.queued.job)
        return 0
    if spoken.interrupted or spoken.end is None:
        print("\nstopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    end = spoken.end
    if not args.json:
        _print_warnings(end.summary)
    if args.json:
        print(json.dumps(end.to_data()))
    elif args.verbose and end.summary:
        s, p = end.summary, end.playback or {}
        print(
            f"{s['audio_s']:.1f} s of audio, RTF {s['rtf'] or 0:.2f}, first sound after "
            f"{p.get('first_sample_s') or 0:.2f} s, {p.get('underruns', 0)} underrun(s)",
            file=sys.stderr,
        )
    if end.state == "failed":
        err = end.error or {}
        _print_error(str(err.get("code", "internal")), str(err.get("message", "failed")), args.json)
        return EXIT_ERROR
    if end.state == "cancelled":
        print("chatterbox-tray say: stopped", file=sys.stderr)
    return 0


def cmd_stop(client: Client, args: argparse.Namespace) -> int:
    stopped = m.StopResult.from_data(client.stop(args.job, all=args.all)).stopped
    print(f"stopped {', '.join(stopped)}" if stopped else "nothing was playing")
    return 0


def cmd_control(client: Client, args: argparse.Namespace) -> int:
    return _show(args, getattr(client, args.command)(), partial(_print_control, args.command))


def _print_control(command: str, result: dict[str, Any]) -> None:
    if command == "skip":
        skip = m.SkipResult.from_data(result)
        print(f"skipped to sentence {(skip.sentence or 0) + 1} of {skip.job}" if skip.job else "nothing is playing")
    else:
        job = m.PauseResult.from_data(result).job
        print(f"{command}d" + (f" ({job})" if job else ""))


def _settings_list() -> str:
    """``settings --help``'s list: every setting, what it accepts, its default and what it does."""
    import textwrap

    lines = ["settings (KEY: what it accepts; default):"]
    for s in SETTINGS.values():
        note = "; read-only" if not s.editable else "; needs `chatterbox-tray reload`" if s.needs_reload else ""
        lines.append(f"  {s.name}: {s.accepts()}; default {json.dumps(s.default)}{note}")
        lines += textwrap.wrap(f"{s.label}. {s.help}", 78, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


def cmd_settings(client: Client, args: argparse.Namespace) -> int:
    if args.assignments:
        values = {}
        for item in args.assignments:
            key, sep, value = item.partition("=")
            if not sep:
                raise SystemExit(f"chatterbox-tray settings: expected KEY=VALUE, got {item!r}")
            try:  # JSON when it parses (numbers, true/false), else the string
                values[key.strip()] = json.loads(value.strip())
            except ValueError:
                values[key.strip()] = value.strip()
        saved = m.SettingsSetResult.from_data(client.settings_set(**values))
        if saved.loading:  # the last load had failed: the daemon loads the new settings now
            print("saved; the model had failed to load, so it is loading with them now (chatterbox-tray status)")
        elif saved.reload_required:
            print("saved; run `chatterbox-tray reload` to load the model with them")
        else:
            print("saved")
        return 0
    return _show(args, client.settings_get(), _print_settings)


def _print_settings(result: dict[str, Any]) -> None:
    got = m.SettingsGetResult.from_data(result)
    for key, value in got.settings.items():
        print(f"{key:<22} {json.dumps(value)}{' (reload)' if key in got.needs_reload else ''}")
    print(f"file: {got.file}")


def cmd_reload(client: Client, args: argparse.Namespace) -> int:
    result = m.LoadResult.from_data(client.reload())
    print("reloading the model" if result.started else f"not reloading: the model is {result.state}")
    return 0


def cmd_audio(client: Client, args: argparse.Namespace) -> int:
    if args.audio_cmd == "set":
        chosen = m.AudioSetResult.from_data(client.audio_set(args.device, args.volume))
        print(f"device: {chosen.device or 'system default'}, volume {chosen.volume:.2f}")
        return 0
    return _show(args, client.audio_devices(), _print_devices)


def _print_devices(result: dict[str, Any]) -> None:
    listed = m.AudioDevicesResult.from_data(result)
    for d in listed.devices:
        mark = "*" if (d.name == listed.device or (not listed.device and d.default)) else " "
        print(f"{mark} {d.name:<40} {d.hostapi}, {d.channels} ch, {d.default_samplerate:.0f} Hz")
    if not listed.devices:
        print("no output devices")
    print(f"volume {listed.volume:.2f}")


def cmd_cache(client: Client, args: argparse.Namespace) -> int:
    if args.cache_cmd == "clear":
        removed = m.CacheClearResult.from_data(client.cache_clear(args.voice)).removed
        print(f"removed {removed} cached entr{'y' if removed == 1 else 'ies'}")
        return 0
    return _show(args, client.cache_stats(), _print_cache_stats)


def _print_cache_stats(result: dict[str, Any]) -> None:
    s = m.CacheStatsResult.from_data(result)  # what an older daemon lacks reads as 0
    print(
        f"hits:     memory {s.hits['memory']}, disk {s.hits['disk']}; misses {s.misses}; "
        f"hit rate {s.hit_rate * 100:.0f}% of {s.requests} requests"
    )
    print(f"ahead:    {s.prepared_in_background} voices prepared before anyone asked")
    for tier in ("memory", "disk"):
        print(
            f"{tier + ':':<9} {s.entries[tier]} entries, {_human_bytes(s.bytes[tier])} "
            f"of {_human_bytes(s.budgets[tier + '_bytes'])}"
        )
    print(f"time:     {s.prepare_seconds_total:.1f} s preparing, {s.seconds_saved:.1f} s saved")


def cmd_stats(client: Client, args: argparse.Namespace) -> int:
    return _show(args, client.stats(), _print_stats)


def _print_stats(s: dict[str, Any]) -> None:
    print(f"model:    {s['variant']} {s['model_id'] or '(not loaded)'} on {s['device']} [{s['status']['state']}]")
    if "gpu_memory_total" in s:
        print(
            f"GPU:      {s['gpu_name']}: {_human_bytes(s['gpu_memory_allocated'])} used, "
            f"{_human_bytes(s['gpu_memory_reserved'])} reserved of {_human_bytes(s['gpu_memory_total'])}"
        )
    if "gpu_utilization_pct" in s:
        print(f"          {s['gpu_utilization_pct']}% busy, {s['gpu_temperature_c']} °C")
    print(
        f"process:  {_human_bytes(s['process_rss'])} RAM, {s['process_cpu_pct']:.0f}% CPU, "
        f"{s['threads']} threads, up {s['uptime_s']:.0f} s"
    )
    print(
        f"system:   {_human_bytes(s['system_ram_used'])} of {_human_bytes(s['system_ram_total'])} RAM, "
        f"{s['system_cpu_pct']:.0f}% of {s['cpu_count']} CPUs"
    )
    sleep = s.get("last_sleep")
    if sleep:
        before, after = sleep["memory_before"], sleep["memory_after"]
        gpu = "gpu_memory_reserved" in before
        key = "gpu_memory_reserved" if gpu else "process_rss"
        when = time.strftime("%H:%M", time.localtime(sleep["at"]))
        print(
            f"sleep:    unloaded at {when} ({sleep['why']}): {'GPU' if gpu else 'RAM'} "
            f"{_human_bytes(before[key])} -> {_human_bytes(after[key])}"
        )
    for job in s.get("recent_jobs", [])[-5:]:
        text = " ".join(str(job.get("text") or "").split())
        text = text if len(text) <= 40 else text[:39] + "…"
        if "audio_s" not in job:  # stopped before its first sentence was made
            print(f"job {job['job']}: {job.get('state', 'ended')} before any audio  {text!r}")
            continue
        print(
            f"job {job['job']}: {job['audio_s']:.1f} s audio, RTF {job.get('rtf') or 0:.2f}, "
            f"first chunk {job.get('time_to_first_chunk_s') or 0:.2f} s  {text!r}"
            + ("" if job.get("state", "finished") == "finished" else " (stopped)")
        )


def cmd_shutdown(client: Client, args: argparse.Namespace) -> int:
    client.shutdown()
    print("daemon stopping")
    return 0


def cmd_retry(client: Client, args: argparse.Namespace) -> int:
    result = m.LoadResult.from_data(client.retry_load())
    print("loading again" if result.started else f"nothing to retry: {result.state}")
    return 0


# -- parser -----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Every command with help on every option."""
    parser = argparse.ArgumentParser(prog="chatterbox-tray", description="Talk to the Chatterbox Tray daemon.")
    _flag(parser, "--no-start", help="do not start a daemon when none answers")
    _flag(parser, "--json", help="print results as JSON")
    parser.add_argument(
        "--daemon",
        metavar="NAME",
        help="use the paired remote daemon NAME (`remote add`); 'local' for this computer's. "
        "Default: $CHATTERBOX_TRAY_DAEMON, else local",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # Listed for --help only: main() hands everything after "daemon" to the daemon's own parser.
    sub.add_parser("daemon", help="run the daemon in the foreground (its options: daemon --help)", add_help=False)

    status = sub.add_parser("status", help="daemon state, model and queue")
    _flag(
        status, "--watch", help="follow the model's load (download figures on the first run) until it is ready or fails"
    )
    status.set_defaults(func=cmd_status)
    ping = sub.add_parser("ping", help="measure the round trip to the daemon")
    ping.add_argument("-c", "--count", type=int, default=5, help="pings to send (the best is shown)")
    ping.set_defaults(func=cmd_ping)
    sub.add_parser("retry", help="load the model again after a failure").set_defaults(func=cmd_retry)

    voices = sub.add_parser("voices", help="manage the voice library")
    vsub = voices.add_subparsers(dest="voices_cmd", required=True, metavar="ACTION")
    add = vsub.add_parser(
        "add", help=f"add a voice from an audio clip ({CLIP_MIN_SECONDS:.0f}-{CLIP_MAX_SECONDS:.0f} s of one speaker)"
    )
    add.add_argument("name", help="a name for the voice")
    add.add_argument("file", help="the clip: WAV, FLAC, OGG, MP3, ...")
    _flag(add, "--default", help="also make it the default voice")
    vsub.add_parser("list", help="list voices and their cache state")
    ren = vsub.add_parser("rename", help="rename a voice")
    ren.add_argument("name")
    ren.add_argument("new_name")
    rem = vsub.add_parser("remove", help="remove a voice and its clip")
    rem.add_argument("name")
    dft = vsub.add_parser("default", help="show, set or clear the default voice")
    dft.add_argument("name", nargs="?", help="voice to make the default")
    _flag(dft, "--clear", help="unset the default voice")
    voices.set_defaults(func=cmd_voices)

    say = sub.add_parser("say", help="speak text (argument or stdin), or write it to a file or stdout")
    say.add_argument("text", nargs="*", help="the text; read from stdin when absent")
    say.add_argument("-v", "--voice", help="voice name (default: the default voice)")
    say.add_argument("--voice-file", metavar="CLIP", help="use this clip as the voice, without adding it")
    say.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write audio to a file instead of playing it (.wav, .flac, .ogg, .opus, .mp3)",
    )
    _flag(say, "--raw", help="write raw float32 mono PCM to stdout instead of playing")
    _flag(say, "--selection", help="speak the selected text (PRIMARY selection on X11/Wayland), else the clipboard")
    _flag(say, "--no-wait", help="queue the speech and return at once (prints the job id)")
    say.add_argument(
        "-p",
        "--priority",
        choices=PRIORITIES,
        default=DEFAULT_PRIORITY,
        help=f"where the speech goes in the daemon's queue (default: {DEFAULT_PRIORITY})",
    )
    for option, flag, what in (
        ("exaggeration", "--exaggeration", "emotion intensity"),
        ("cfg_weight", "--cfg-weight", "classifier-free guidance"),
        ("temperature", "--temperature", "sampling temperature"),
    ):
        lo, hi, default = OPTION_RANGES[option]
        say.add_argument(flag, type=float, help=f"{what}, {lo:g}-{hi:g} (default {default:g})")
    say.add_argument(
        "-r",
        "--rate",
        type=_rate,
        help=f"speaking rate, {RATE_RANGE[0]:g}-{RATE_RANGE[1]:g} (2 = twice as fast; default: the daemon's setting)",
    )
    say.add_argument("--seed", type=int, help="seed for repeatable output")
    say.add_argument("--language", help="language id for the multilingual model (e.g. fr)")
    _flag(say, "--verbose", help="print each sentence and the timings")
    _flag(
        say, "-q", "--quiet", help="no progress bar and no summary line when writing a file (errors are still printed)"
    )
    say.set_defaults(func=cmd_say)

    cache = sub.add_parser("cache", help="conditionals cache figures, or clear it")
    csub = cache.add_subparsers(dest="cache_cmd", required=True, metavar="ACTION")
    csub.add_parser("stats", help="hits, misses, sizes and time saved")
    clr = csub.add_parser("clear", help="drop cached conditionals")
    clr.add_argument("voice", nargs="?", help="only this voice")
    cache.set_defaults(func=cmd_cache)

    stop = sub.add_parser("stop", help="stop the speech that is playing")
    stop.add_argument("job", nargs="?", help="stop this job instead")
    _flag(stop, "--all", help="stop everything, queued speech too")
    stop.set_defaults(func=cmd_stop)
    for name, text in (
        ("pause", "pause the speaker"),
        ("resume", "resume the speaker"),
        ("skip", "skip to the next sentence"),
    ):
        sub.add_parser(name, help=text).set_defaults(func=cmd_control)

    audio = sub.add_parser("audio", help="output devices and volume")
    asub = audio.add_subparsers(dest="audio_cmd", required=True, metavar="ACTION")
    asub.add_parser("devices", help="list output devices")
    aset = asub.add_parser("set", help="choose the output device and/or the volume")
    aset.add_argument("--device", help='device name (or part of it); "" for the system default')
    aset.add_argument("--volume", type=float, help="0 to 1")
    audio.set_defaults(func=cmd_audio)

    sett = sub.add_parser("settings", help="show the daemon's settings, or change them with KEY=VALUE")
    sett.epilog, sett.formatter_class = _settings_list(), argparse.RawDescriptionHelpFormatter
    sett.add_argument("assignments", nargs="*", metavar="KEY=VALUE")
    sett.set_defaults(func=cmd_settings)
    sub.add_parser("reload", help="load the model again with the current settings").set_defaults(func=cmd_reload)
    quickspeak_command.add_parser(sub)
    words_commands.add_parsers(sub)
    speech_dispatcher.add_parser(sub)
    remote_commands.add_parser(sub)
    bridge = sub.add_parser("serve", help="serve the daemon to other programs: OpenAI-compatible HTTP, Wyoming, or MCP")
    serve.add_arguments(bridge)
    bridge.set_defaults(offline=serve.run)  # a long-running server: it connects (and reconnects) by itself

    sub.add_parser("stats", help="model, device, GPU, RAM and CPU").set_defaults(func=cmd_stats)
    sub.add_parser("shutdown", help="stop the daemon").set_defaults(func=cmd_shutdown)
    return parser


def _daemon_argv(argv: list[str]) -> list[str] | None:
    """The arguments after ``daemon`` when that is the command, else None.

    The global options before a command are flags without values, so the
    command is the first word that is not an option.
    """
    for index, word in enumerate(argv):
        if not word.startswith("-"):
            return argv[index + 1 :] if word == "daemon" else None
    return None


def run_daemon(argv: list[str]) -> int:
    """``chatterbox-tray daemon ...``: the daemon in the foreground, as its own program.

    Not imported: the command line depends on nothing in ``daemon/``
    (docs/decisions.md, "Folders and who may import whom"). On POSIX this
    process becomes ``python -m chatterbox_tray.daemon`` (the same pid, so
    Ctrl-C and a service manager's signals reach the daemon itself); Windows
    has no such exec, so there the daemon is a child whose exit status is ours.
    The daemon parses its own flags (and prints its own help).
    """
    command = [sys.executable, "-m", "chatterbox_tray.daemon", *argv]
    if sys.platform != "win32":
        sys.stdout.flush()
        os.execv(sys.executable, command)
    child = subprocess.Popen(command)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:  # Ctrl-C reached the daemon too: wait for its shutdown
            continue


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``chatterbox-tray``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    daemon_argv = _daemon_argv(argv)
    if daemon_argv is not None:
        return run_daemon(daemon_argv)
    args = build_parser().parse_args(argv)
    if getattr(args, "offline", None) is not None:  # needs no daemon (speechd uninstall, remote, serve)
        return int(args.offline(args))
    try:
        with connect(autostart=not args.no_start and args.command != "shutdown", daemon=args.daemon) as client:
            return int(args.func(client, args))
    except ProtocolError as exc:
        _print_error(exc.code, exc.message, args.json)
        return EXIT_ERROR
    except DaemonUnavailable as exc:
        print(f"chatterbox-tray: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        print("\ninterrupted; job cancelled", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a clip or file the user named cannot be read or written
        _print_error("io", plain_os_error(exc), args.json)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
