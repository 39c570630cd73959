"""Speech Dispatcher integration: a generic output module that speaks through the daemon.

Speech Dispatcher (speechd) runs an *output module* per synthesizer. Its
``sd_generic`` module runs a shell command per message, and the command must
stop when speechd kills it. This module renders that configuration for our
daemon, installs it for the user, and is the command speechd runs:

    chatterbox-tray speechd install     # then: spd-say -o chatterbox-tray-generic "hello"
    chatterbox-tray speechd install --markup   # also let [pause 1s] and [laugh] through
    chatterbox-tray speechd print       # the configuration, on stdout
    chatterbox-tray speechd uninstall

What we learnt from speech-dispatcher 0.11.4 (Debian 12) and its source, and
what each choice below is for (docs/speech-dispatcher.md has the long form):

* Registration. speechd discovers ``modules/<name>-generic.conf`` in the
  user's config folder (and the system's) by itself, but only while no
  ``AddModule`` line is active in ``speechd.conf``: one ``AddModule`` turns
  discovery off for *every* module. So the module is named
  ``chatterbox-tray-generic`` and found by discovery; an ``AddModule`` line
  is written only where discovery is already off (the effective
  ``speechd.conf`` has ``AddModule`` lines of its own).
* Stopping, and finishing. ``module_stop`` sends SIGKILL to the command's
  process group, so nothing in it can react; but ``module_close`` does the
  same when the server quits, and an autospawned server quits 5 s after its
  last client left (``spd-say`` without ``-w``): that must not cut the
  message off. So the command leaves the group (``setsid``; it is not the
  leader, the shell is), queues the job, and watches: when its shell dies,
  speechd killed the group; if the module process (``sd_generic``, the
  group leader's parent) then exits too, the server is closing it and the
  job is left to the daemon to finish; if the module lives on, speechd
  stopped the message and the command stops the job. A new message from the
  same module also stops the previous message's job at once (the module runs
  one message at a time, so a job still going was stopped). Run any other
  way (by hand, or a module we cannot identify), the command waits with
  ``stop_on_disconnect`` and dies with its group, as before.
* ``$DATA`` is put in single quotes with its quotes escaped by the module;
  ``$VOICE`` is one of our own names (sanitised here) or our default; but
  ``$LANGUAGE`` is substituted verbatim when the client's language is not in
  the table, so it never appears in our command (it would be a shell
  injection). Only ``$VOLUME``, ``$RATE`` (numbers) and ``$VOICE`` are used.
* Rate. ``$RATE`` is ``rate * GenericRateMultiply + GenericRateAdd``, printed
  with ``%.2f`` (a decimal comma in some locales) unless
  ``GenericRateForceInteger`` is on: so it is forced to an integer, speechd's
  own -100..100, and ``rate_factor`` maps it to the daemon's 0.5..2.0.
* Text. The module strips SSML (and decodes entities), recodes a message
  whose language has no ``GenericLanguage`` entry to ISO-8859-1, cuts
  messages at its delimiters, and (0.11.4) reads past a message's end after a
  blank line: `render`'s configuration, `ISO_639_1` and `clean_text` say how each is undone.
* Brackets. speechd's symbol pre-processing (``SymbolsPreproc``, server-wide,
  on by default since 0.10) turns ``[`` and ``]`` into spaces before any
  module sees the text, so our pause markup and Turbo's tags cannot reach
  us. ``install --markup`` adds ``SymbolsPreproc "no"`` to the user's
  speechd.conf (turning off the file's own line, as for ``DefaultModule``);
  it stays through later installs until ``--no-markup`` or ``uninstall``.

Light: the standard library and ``ipc/`` only (speechd runs a command per message).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ..ipc import endpoints
from ..ipc import requests as rq
from ..ipc.atomic import write_atomic
from ..ipc.limits import DEFAULT_PRIORITY, PRIORITIES
from ..ipc.messages import SettingsGetResult, StateEvent, VoiceInfo
from ..ipc.protocol import ProtocolError

MODULE = "chatterbox-tray-generic"
CONF_NAME = f"{MODULE}.conf"
#: The speechd voice that means "the daemon's default voice, whatever it is then".
DEFAULT_TOKEN = "default"
#: Bytes per command. Under a pipe's 64 KiB so the module's one read gets a whole piece.
MAX_CHUNK = 30_000
#: Lines we add to speechd.conf sit between these markers; a line we turned off starts with OFF.
BEGIN = (
    "# >>> chatterbox-tray: added by `chatterbox-tray speechd install`; removed by"
    " `chatterbox-tray speechd uninstall` and by uninstalling Chatterbox Tray (or delete down to <<<)"
)
#: How every version of our first line starts (the first one named a `speechd uninstall` without the program).
BEGIN_PREFIX = "# >>> chatterbox-tray"
END = "# <<< chatterbox-tray"
OFF = "#chatterbox-tray-off# "
#: In our block: the user's speechd.conf was a copy of this system file made by install (uninstall
#: removes it while it is unchanged); "and clients/" when the system's clients/ folder came along.
COPIED = "# copied from "
SYSTEM_CONFS = (
    Path("/etc/speech-dispatcher"),
    Path("/usr/local/etc/speech-dispatcher"),
    Path("/usr/share/speech-dispatcher/conf"),
)
_ISO_639_1 = (
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy "
    "da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu "
    "hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb "
    "lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om "
    "or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw "
    "ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu"
)
#: Every ISO 639-1 code: declared UTF-8 so the module passes text on unchanged.
ISO_639_1 = tuple(_ISO_639_1.split())
_ACTIVE = re.compile(r"^\s*(addmodule|defaultmodule|symbolspreproc|audiooutputmethod)\b", re.IGNORECASE)
#: What ``install --markup`` adds: speechd then leaves brackets (and all punctuation) to the modules.
MARKUP_LINE = 'SymbolsPreproc "no"'
#: What ``install --markup`` says it changes for the user's other voices.
MARKUP_EFFECT = (
    "Speech Dispatcher then leaves punctuation and symbols to each voice, as before its version 0.10,"
    " so other voices may read some symbols and emoji differently or not at all"
)
_OURS = re.compile(r'^\s*addmodule\s+"?' + re.escape(MODULE) + r'"?(\s|$)', re.IGNORECASE)


# -- paths ---------------------------------------------------------------------------


def _xdg(variable: str, fallback: Path) -> Path:
    """An XDG folder as speechd itself resolves it: the variable when it holds an absolute path, else ``fallback``."""
    xdg = os.environ.get(variable)
    return Path(xdg) if xdg and os.path.isabs(xdg) else fallback


def user_dir(home: Path | None = None) -> Path:
    """The user's Speech Dispatcher folder: ``~/.config/speech-dispatcher``."""
    return (home or _xdg("XDG_CONFIG_HOME", Path.home() / ".config")) / "speech-dispatcher"


def module_conf_path(home: Path | None = None) -> Path:
    """Where the module's configuration goes."""
    return user_dir(home) / "modules" / CONF_NAME


def runtime_home() -> Path:
    """``$XDG_RUNTIME_DIR``, else ``/run/user/UID`` (where speechd 0.11 keeps its socket and logs)."""
    return _xdg("XDG_RUNTIME_DIR", Path(f"/run/user/{os.getuid() if hasattr(os, 'getuid') else 0}"))


def module_log_path() -> Path:
    """The module's log: what our command writes on stderr ends up here (speechd 0.11's ``LogDir default``).

    speech-dispatcher 0.11.4 (Debian 12) logs to ``$XDG_RUNTIME_DIR/speech-dispatcher/log/``,
    one file per module, named after it.
    """
    return runtime_home() / "speech-dispatcher" / "log" / f"{MODULE}.log"


def pulse_server() -> str | None:
    """Where a PulseAudio server (PulseAudio itself, or PipeWire's pulse server) answers, if one runs.

    Both make ``$XDG_RUNTIME_DIR/pulse/native``; ``PULSE_SERVER`` names another.
    speechd's default audio output is PulseAudio: without one it loads no module.
    """
    if os.environ.get("PULSE_SERVER"):
        return os.environ["PULSE_SERVER"]
    for socket_path in (runtime_home() / "pulse" / "native", Path("/var/run/pulse/native")):
        with contextlib.suppress(OSError):
            if socket_path.is_socket():
                return str(socket_path)
    return None


def system_dir() -> Path | None:
    """The system's Speech Dispatcher folder (the one holding speechd.conf), if any."""
    return next((d for d in SYSTEM_CONFS if (d / "speechd.conf").is_file()), None)


# -- voices --------------------------------------------------------------------------


def voice_token(name: str) -> str:
    """A library voice's name as a speechd voice: safe inside the command's single quotes.

    sd_generic pastes ``$VOICE`` into the shell command unescaped, and into the
    config file between double quotes, and looks for ``$DATA`` after the
    substitution: so quotes and ``$`` are replaced by look-alikes.
    """
    return name.replace("'", "\u2019").replace('"', "\u201d").replace("$", "\uff04")


@dataclass
class VoiceMap:
    """speechd voice names and the library voices they stand for."""

    tokens: dict[str, str] = field(default_factory=dict)  # token -> library name
    skipped: list[str] = field(default_factory=list)  # library names left out, and why

    @classmethod
    def build(cls, names: list[str]) -> VoiceMap:
        vm = cls()
        for name in names:
            token = voice_token(name)
            if token.lower() == DEFAULT_TOKEN:
                vm.skipped.append(f"{name} (the name {DEFAULT_TOKEN!r} stands for the default voice)")
            elif token.lower() in (t.lower() for t in vm.tokens):
                vm.skipped.append(f"{name} (looks the same as another voice in Speech Dispatcher)")
            else:
                vm.tokens[token] = name
        return vm


def resolve_voice(token: str, names: list[str]) -> str | None:
    """The library voice for a speechd ``$VOICE``; None for the daemon's default."""
    token = token.strip()
    if not token or token.lower() in (DEFAULT_TOKEN, "no_voice"):
        return None
    if token in names:  # the exact name first, then any case or its look-alike token
        return token
    lowered = token.lower()
    return next((name for name in names if lowered in (voice_token(name).lower(), name.lower())), None)


# -- the module configuration ---------------------------------------------------------


def _dotconf(value: str) -> str:
    """A value for a double-quoted dotconf string (backslash escapes the next character)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("'", "\\'")


def render(
    voices: list[str], language: str = "en", command: list[str] | None = None, priority: str = DEFAULT_PRIORITY
) -> str:
    """The module configuration for sd_generic, with a speechd voice per library voice."""
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}")
    argv = command or [sys.executable, "-m", "chatterbox_tray.cli.main"]  # this Python: no shell's PATH needed
    prefix = shlex.join(argv)
    vm = VoiceMap.build(voices)
    lang = re.sub(r"[^a-z-]", "", language.lower()) or "en"
    synth = (
        f"printf %s '$DATA' | {prefix} speechd speak --voice '$VOICE' --volume $VOLUME --rate $RATE"
        f" --priority {priority}"
    )
    lines = [
        "# Speech Dispatcher output module for Chatterbox Tray (sd_generic).",
        "# Written by `chatterbox-tray speechd install`; run it again after adding or",
        "# renaming voices. Edits here are overwritten. See docs/speech-dispatcher.md.",
        "",
        "Debug 0",
        "",
        "# The message goes to the daemon on stdin; the command waits until it has been",
        "# spoken. Speech Dispatcher stops it with SIGKILL; the command then stops the job,",
        "# unless the module itself is closing (the server quit): then it is spoken to the end.",
        "# Pitch, punctuation and language are not passed on (see the docs).",
        f'GenericExecuteSynth "{_dotconf(synth)}"',
        f'GenericCmdDependency "{_dotconf(shlex.quote(argv[0]))}"',
        "",
        "# One command per message: the daemon splits sentences itself. The delimiter is",
        "# the control character U+001F, which text never holds (the default '.' would",
        "# run one command per sentence).",
        f"GenericMaxChunkLength {MAX_CHUNK}",
        'GenericDelimiters "\x1f"',
        "",
        "# In punctuation mode 'none' (the default) the module makes these characters",
        "# spaces: speechd's own list without [ and ], so that pause markup ([pause 1s])",
        "# and tags ([laugh]) reach the daemon (in single quotes they are plain text),",
        "# and without $, which reached the daemon as written before this list was set.",
        'GenericStripPunctChars "~@#%^&*+=|\\\\/<>_`"',
        "",
        "# speechd volume -100..100 is passed as is; the command maps it to 0..1.",
        "GenericVolumeForceInteger 1",
        "# speechd rate -100..100 is passed as is; the command maps it to 0.5x..2x",
        "# (0: the daemon's own rate setting).",
        "GenericRateForceInteger 1",
        "",
        "# Every language as UTF-8, so that text is never recoded to ISO-8859-1.",
        *(f'GenericLanguage "{code}" "{code}" "utf-8"' for code in ISO_639_1),
        "",
        "# Voices: the daemon's library. The last MALE1 voice of a language is what",
        '# symbolic voice types (male1, female2, ...) get: "default", the daemon\'s',
        "# default voice at the time of speaking.",
        *(f'AddVoice "{lang}" "MALE1" "{token}"' for token in vm.tokens),
        f'AddVoice "{lang}" "MALE1" "{DEFAULT_TOKEN}"',
        f'DefaultVoice "{DEFAULT_TOKEN}"',
        *(f"# not offered: {note}" for note in vm.skipped),
    ]
    return "\n".join(lines) + "\n"


# -- speechd.conf --------------------------------------------------------------------


def _split(text: str) -> tuple[str, list[str]]:
    """speechd.conf without our block (the lines we turned off turned on again), and our block's lines."""
    out, block, inside = [], [], False
    for line in text.splitlines(keepends=True):
        bare = line.rstrip("\r\n")
        if bare.startswith(BEGIN_PREFIX):
            inside = True
            if out and out[-1] in ("\n", "\r\n"):  # the blank line we put before the block
                out.pop()
        elif inside:
            if bare == END:
                inside = False
            else:
                block.append(bare)
        else:
            out.append(line[len(OFF) :] if line.startswith(OFF) else line)
    return "".join(out), block


def _active(text: str, pattern: str) -> list[int]:
    """Indexes of the lines that are active ``pattern`` directives (AddModule, DefaultModule, SymbolsPreproc, ...)."""
    return [
        i
        for i, line in enumerate(text.splitlines())
        if (m := _ACTIVE.match(line)) is not None and m.group(1).lower() == pattern.lower()
    ]


def _copied_note(text: str) -> str | None:
    """Our note that install made this speechd.conf as a copy of the system's, if it did."""
    return next((line for line in _split(text)[1] if line.startswith(COPIED)), None)


def _chosen(text: str, directive: str) -> bool:
    """Whether an earlier install (``--default``, ``--markup``) put ``directive`` in our block of a speechd.conf."""
    return any(line.strip() == directive for line in _split(text)[1])


def edit_speechd_conf(
    text: str,
    conf_path: Path,
    make_default: bool,
    *,
    alsa: bool = False,
    markup: bool = False,
    copied_from: str | None = None,
) -> str:
    """Our lines in a speechd.conf: AddModule only where discovery is off; DefaultModule if asked;
    ``AudioOutputMethod "alsa"`` with ``alsa`` where the file chooses no audio output itself;
    ``SymbolsPreproc "no"`` with ``markup`` (the file's own SymbolsPreproc lines turned off).

    Idempotent, and everything else in the file is left as it was. ``copied_from``
    (or the note an earlier install left) says the file is our copy of the system's.
    """
    note = _copied_note(text)
    base = _split(text)[0]
    lines = base.splitlines(keepends=True)
    block = []
    if _other_addmodules(base):
        block.append(f'AddModule "{MODULE}" "sd_generic" "{_dotconf(str(conf_path))}"\n')
    if make_default:
        for i in _active(base, "defaultmodule"):
            lines[i] = OFF + lines[i]
        block.append(f"DefaultModule {MODULE}\n")
    if alsa and not _active(base, "audiooutputmethod"):  # the file chooses no audio output itself
        block.append("# No PulseAudio (or PipeWire's pulse server) ran at install: without this\n")
        block.append('# speech-dispatcher loads no module ("No speech output modules were loaded").\n')
        block.append('AudioOutputMethod "alsa"\n')
    if markup:
        for i in _active(base, "symbolspreproc"):
            lines[i] = OFF + lines[i]
        block.append("# `speechd install --markup`: [ and ] reach the modules, so [pause 1s] and [laugh] work.\n")
        block.append(f"# {MARKUP_EFFECT}.\n")
        block.append(MARKUP_LINE + "\n")
    if not block:
        return "".join(lines)
    if copied_from is not None:
        block.append(f"{COPIED}{copied_from}\n")
    elif note is not None:
        block.append(note + "\n")
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return "".join(lines) + "\n" + BEGIN + "\n" + "".join(block) + END + "\n"


@dataclass
class InstallReport:
    """What ``install`` or ``uninstall`` did, for the user."""

    module_conf: Path
    speechd_conf: Path | None = None  # the user's speechd.conf, when we wrote it
    created_speechd_conf: bool = False
    discovery: bool = True  # whether speechd finds the module by itself
    alsa: bool = False  # whether install chose speechd's audio output (ALSA: no PulseAudio)
    markup: bool = False  # whether speechd.conf has our SymbolsPreproc "no" (brackets reach us)
    removed_speechd_conf: bool = False  # uninstall removed the copy of the system's that install made
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def install(
    voices: list[str],
    language: str = "en",
    *,
    command: list[str] | None = None,
    priority: str = DEFAULT_PRIORITY,
    make_default: bool | None = None,
    alsa: bool = False,
    markup: bool | None = None,
    home: Path | None = None,
    system: Path | None = None,
) -> InstallReport:
    """Write the module configuration and, where needed, register it in the user's speechd.conf.

    ``alsa``: no PulseAudio runs, so speechd needs ``AudioOutputMethod "alsa"``
    (unless its configuration already chooses an output); see `pulse_server`.
    ``markup``: add ``SymbolsPreproc "no"`` so pauses and tags reach us (True),
    take it away (False), or keep what an earlier install chose (None: running
    install again after adding voices must not undo it). ``make_default``
    (``DefaultModule``) is kept the same way.
    """
    conf = module_conf_path(home)
    conf.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(conf, render(voices, language, command, priority))
    report = InstallReport(conf, skipped=VoiceMap.build(voices).skipped)
    user_conf = user_dir(home) / "speechd.conf"
    system = system if system is not None else system_dir()
    copied_from: str | None = None
    clients: Path | None = None  # as ``spd-conf -u`` does: the system's client settings come along
    if user_conf.is_file():
        current = user_conf.read_text(encoding="utf-8", errors="surrogateescape")
    elif system is not None:
        current = (system / "speechd.conf").read_text(encoding="utf-8", errors="surrogateescape")
        copied_from = str(system / "speechd.conf")
        if (system / "clients").is_dir() and not (user_conf.parent / "clients").exists():
            clients = system / "clients"
            copied_from += " and clients/"
    else:
        current = ""
        report.notes.append("no speechd.conf found: is Speech Dispatcher installed?")
    if markup is None:
        markup = _chosen(current, MARKUP_LINE)
    if make_default is None:
        make_default = _chosen(current, f"DefaultModule {MODULE}")
    wanted = edit_speechd_conf(current, conf, make_default, alsa=alsa, markup=markup, copied_from=copied_from)
    report.discovery = not _other_addmodules(current)
    report.alsa = alsa and "AudioOutputMethod" in "".join(_split(wanted)[1])
    report.markup = markup
    if wanted != current:
        if not user_conf.is_file():
            report.created_speechd_conf = True
            if clients is not None:
                shutil.copytree(clients, user_conf.parent / "clients")
        user_conf.parent.mkdir(parents=True, exist_ok=True)
        user_conf.write_text(wanted, encoding="utf-8", errors="surrogateescape")
        report.speechd_conf = user_conf
    return report


def _other_addmodules(text: str) -> list[str]:
    """Active AddModule lines other than ours: while there are any, speechd discovers nothing."""
    base = _split(text)[0]
    lines = base.splitlines()
    return [lines[i] for i in _active(base, "addmodule") if not _OURS.match(lines[i])]


def uninstall(home: Path | None = None) -> InstallReport:
    """Remove the module configuration and our lines in the user's speechd.conf."""
    conf = module_conf_path(home)
    report = InstallReport(conf)
    conf.unlink(missing_ok=True)
    user_conf = user_dir(home) / "speechd.conf"
    if user_conf.is_file():
        current = user_conf.read_text(encoding="utf-8", errors="surrogateescape")
        cleaned = _split(current)[0]
        note = _copied_note(current)
        if cleaned != current:
            report.speechd_conf = user_conf
            if note is not None and _unchanged_copy(cleaned, note, user_conf.parent):
                user_conf.unlink()
                report.removed_speechd_conf = True
            else:
                user_conf.write_text(cleaned, encoding="utf-8", errors="surrogateescape")
    for folder in (conf.parent, user_conf.parent):  # the folders install made, if nothing else is in them
        with contextlib.suppress(OSError):
            folder.rmdir()
    return report


def _unchanged_copy(cleaned: str, note: str, user: Path) -> bool:
    """Whether the user's speechd.conf (without our lines) is still install's copy of the system's;
    then the copied ``clients/`` folder, if unchanged too, goes as well."""
    source = note[len(COPIED) :]
    with_clients = source.endswith(" and clients/")
    system_conf = Path(source.removesuffix(" and clients/"))
    try:
        if cleaned != system_conf.read_text(encoding="utf-8", errors="surrogateescape"):
            return False
    except OSError:
        return False
    if with_clients and (user / "clients").is_dir() and _same_tree(system_conf.parent / "clients", user / "clients"):
        shutil.rmtree(user / "clients", ignore_errors=True)
    return True


def _same_tree(a: Path, b: Path) -> bool:
    """Whether two folders hold the same files with the same bytes."""
    try:
        files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
        files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
        return files_a == files_b and all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)
    except OSError:
        return False


def reload_speechd() -> int | None:
    """Ask the user's running speech-dispatcher to read its configuration again (SIGHUP).

    It re-reads speechd.conf and reloads its modules on SIGHUP. Returns the pid
    signalled, or None when none runs (the next one started reads the new files).
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    candidates = [Path(runtime) / "speech-dispatcher" / "pid" / "speech-dispatcher.pid"] if runtime else []
    candidates.append(Path.home() / ".cache" / "speech-dispatcher" / "pid" / "speech-dispatcher.pid")
    for pidfile in candidates:
        with contextlib.suppress(OSError, ValueError, IndexError):  # none there, not speechd, or gone
            pid = int(pidfile.read_text().split()[0])
            if Path(f"/proc/{pid}/comm").read_text().startswith("speech-dispatch") and hasattr(signal, "SIGHUP"):
                os.kill(pid, signal.SIGHUP)
                return pid
    return None


# -- the command speechd runs -----------------------------------------------------------

#: sd_generic 0.11.4, given a message with a blank line that speechd did not
#: turn into spaces (it does when it has symbol dictionaries for the message's
#: language, as it has for nearly all), reads past the end of the message: the
#: stale bytes begin with a line holding a lone "." (the end of a message in
#: the module protocol), and the module may cut them into more commands.
_OVERRUN = re.compile(r"\n\.(?:\n|$)")
#: Where a command that met the stale bytes notes its process group: the module
#: runs every command of one message in one process group (it kills the group
#: to stop), so a later command in the same group is more of the stale bytes.
OVERRUN_FILE = "speechd-overrun"


def clean_text(data: bytes) -> tuple[str, bool]:
    """The message as sd_generic hands it over (UTF-8, or ISO-8859-1 where it recoded it),
    without stale bytes; and whether there were any."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    match = _OVERRUN.search(text)
    return (text[: match.start()], True) if match else (text, False)


def _note(name: str, value: object) -> None:
    """Leave a one-line note for a later command in the runtime folder (best effort)."""
    with contextlib.suppress(OSError):
        path = endpoints.runtime_dir() / name
        endpoints.ensure_private_dir(path.parent)
        path.write_text(f"{value}\n", encoding="ascii")


def _read_note(name: str) -> str:
    """What `_note` left; "" when nothing (or nothing readable) is there."""
    try:
        return (endpoints.runtime_dir() / name).read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        return ""


def after_overrun(group: int) -> bool:
    """Whether an earlier command of this process group (this message) met stale bytes."""
    return _read_note(OVERRUN_FILE) == str(group)


def note_overrun(group: int) -> None:
    """Mark this process group's later commands as stale."""
    _note(OVERRUN_FILE, group)


def _number(value: str | None) -> float | None:
    """A speechd figure (``$VOLUME``, ``$RATE``) held to -100..100; None when absent or not a number."""
    try:
        v = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return None if math.isnan(v) else min(100.0, max(-100.0, v))


def volume_gain(value: str | None) -> float:
    """speechd's volume (-100..100, 100 by default in speechd.conf) as a 0..1 gain."""
    v = _number(value)
    return 1.0 if v is None else (v + 100.0) / 200.0


def rate_factor(value: str | None) -> float | None:
    """speechd's rate (-100..100) as the daemon's speaking rate: 2 ** (rate / 100), 0.5x to 2x.

    0 (speechd's ``DefaultRate``, and what a client that never set a rate
    sends) gives None: the daemon's own ``rate`` setting applies, so a user's
    default set in the tray app is not overridden by speechd's neutral value.
    """
    v = _number(value)
    return None if not v else 2.0 ** (v / 100.0)


#: After our shell dies (speechd killed the message's process group), how long
#: to wait for the module to exit too: it does, at once, when the server is
#: closing it (the server sends STOP then QUIT, and kills a module still there
#: after 1 s). A module alive after this stopped the message: the job is stopped.
MODULE_EXIT_GRACE_S = 0.5
#: How often the command looks at its parent and the module.
WATCH_POLL_S = 0.05
#: The program speechd runs for a ``*-generic.conf`` module.
GENERIC_MODULE = "sd_generic"


def _proc_stat(pid: int) -> tuple[str, int, str] | None:
    """(state, parent pid, name) of a process from ``/proc``; None if there is none (or no /proc)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
        fields = data[data.rfind(")") + 2 :].split()  # the name, in parentheses, may hold spaces
        return fields[0], int(fields[1]), data[data.find("(") + 1 : data.rfind(")")]
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has exited: its parent has not read its status yet)."""
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X", "x")


@dataclass(frozen=True)
class ModuleLink:
    """The command, out of the module's process group: what it watches."""

    module: int  # the sd_generic process
    parent: int  # our parent (the shell): its death means speechd killed the message's group


def leave_module_group(group: int) -> ModuleLink | None:
    """Leave the process group that ``sd_generic`` kills, when it runs us; None otherwise.

    ``sd_generic`` forks a process-group leader that runs the command through
    ``system()``: our group leader's parent is the module. Anything else (run
    by hand, no ``/proc``, we lead the group) keeps the old way: die with the group.
    """
    if not group or not hasattr(os, "setsid") or group == os.getpid():
        return None
    leader = _proc_stat(group)
    if leader is None:
        return None
    module = _proc_stat(leader[1])
    if leader[1] <= 1 or module is None or not module[2].startswith(GENERIC_MODULE) or not _alive(leader[1]):
        return None
    parent = os.getppid()
    shared = _shared_fds(group)
    try:
        os.setsid()
    except OSError:
        return None
    _let_go_of(shared)
    return ModuleLink(leader[1], parent)


def _fd_targets(pid: int | str) -> dict[int, str]:
    targets = {}
    with contextlib.suppress(OSError):
        for name in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError, ValueError):
                targets[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
    return targets


def _shared_fds(pid: int) -> list[int]:
    """Our descriptors that ``pid`` has too (same number, same pipe, socket or file): inherited from it."""
    theirs = _fd_targets(pid)
    return [
        fd
        for fd, target in _fd_targets("self").items()
        if fd != 2 and theirs.get(fd) == target and not target.startswith("anon_inode:")
    ]


def _let_go_of(fds: list[int]) -> None:
    """Close what the module's process group handed down (stdout, the module's own pipes).

    sd_generic's pipes are not close-on-exec, so ``system()`` hands them to
    the shell and to us. While we hold them, a module that killed the group
    waits for us on them (for an acknowledgement that never comes), and a
    closing module cannot exit. stdin (read to its end) and stdout (the
    module's line to the server) become /dev/null; stderr, the module's log, stays.
    """
    for fd in sorted(set(fds) | {0}):
        with contextlib.suppress(OSError):
            if fd <= 1:
                null = os.open(os.devnull, os.O_RDWR)
                os.dup2(null, fd)
                os.close(null)
            else:
                os.close(fd)


def _module_job(module: int) -> str:
    """The note that names this module's current job, for its next message (see `_stop_previous`)."""
    return f"speechd-module-{module}"


def _forget_module_job(module: int, job: str) -> None:
    if _read_note(_module_job(module)) == job:
        with contextlib.suppress(OSError):
            (endpoints.runtime_dir() / _module_job(module)).unlink()


def _stop_previous(client: Any, module: int) -> None:
    """Stop the module's previous job if it still goes: speechd stopped that message.

    The module runs one message at a time and starts the next only once the
    previous message's process group has ended: normally (its job ended), or
    killed by a stop or cancel, while its command may still be waiting out
    `MODULE_EXIT_GRACE_S`. So the next message never waits behind a stopped one.
    """
    job = _read_note(_module_job(module))
    if job:
        with contextlib.suppress(ProtocolError, OSError):
            client.stop(job)


def _watch_module(info: Any, job: str, link: ModuleLink, done: threading.Event) -> None:
    """Stop ``job`` when speechd stops the message; leave it to the daemon when the module closes."""
    from ..ipc.client import Client

    while os.getppid() == link.parent:
        if done.wait(WATCH_POLL_S):
            return
    deadline = time.monotonic() + MODULE_EXIT_GRACE_S
    while time.monotonic() < deadline:
        if not _alive(link.module):
            # The server is closing the module (it quit: idle, or stopped). What it
            # handed over is spoken to the end by the daemon, which needs nobody waiting.
            _forget_module_job(link.module, job)
            with contextlib.suppress(OSError, ValueError):
                print(f"chatterbox-tray speechd: the module closed; job {job} plays to its end", file=sys.stderr)
                sys.stderr.flush()
            os._exit(0)
        if done.wait(WATCH_POLL_S):
            return
    if done.is_set():
        return
    with contextlib.suppress(Exception), Client(info) as other:
        other.stop(job)  # the main thread's wait then ends with the job "cancelled"


@contextlib.contextmanager
def _watching(client: Any, link: ModuleLink, job: str) -> Iterator[None]:
    """While the message's job is waited for: stop it only if speechd stopped the message (`_watch_module`)."""
    _note(_module_job(link.module), job)
    done = threading.Event()
    threading.Thread(target=_watch_module, args=(client.info, job, link, done), daemon=True).start()
    try:
        yield
    finally:
        done.set()
        _forget_module_job(link.module, job)


def speak(client: Any, args: argparse.Namespace) -> int:
    """``speechd speak``: say stdin through the daemon and wait; a stop in speechd stops the job.

    See the module's docstring ("Stopping, and finishing"): a message whose
    module is closed (the server quit) is still spoken to its end.
    """
    from .speak_and_wait import speak_and_wait

    data = sys.stdin.buffer.read()  # all of it, always: newer modules fail a pipeline whose printf is cut off
    group = os.getpgrp() if hasattr(os, "getpgrp") else 0
    if group and after_overrun(group):
        return 0  # more of the module's stale bytes, not the message
    text, overran = clean_text(data)
    if overran and group:
        note_overrun(group)
    if not text.strip():
        return 0
    names = [v.name for v in _voices(client)]
    voice = resolve_voice(args.voice or "", names)
    if args.voice and voice is None and args.voice.strip().lower() not in (DEFAULT_TOKEN, "no_voice"):
        print(f"chatterbox-tray speechd: no voice {args.voice!r}; using the default", file=sys.stderr)
    request = rq.speak(
        text, voice=voice, priority=args.priority, volume=volume_gain(args.volume), rate=rate_factor(args.rate)
    )
    # A remote daemon's speech plays in this process (speak_and_wait.play_here): it ends with it.
    link = None if client.remote else leave_module_group(group)
    if link is not None:
        _stop_previous(client, link.module)
    try:
        watch = None if link is None else partial(_watching, client, link)
        spoken = speak_and_wait(client, request, stop_on_disconnect=link is None, watch=watch)
        if spoken.end is not None and spoken.end.state == "failed":  # reported as a refused message is
            err = spoken.end.error or {}
            raise ProtocolError(str(err.get("code")), err.get("message", "failed"))
    except ProtocolError as exc:
        if exc.code == "empty_text":  # punctuation only: nothing to say, not a failure
            return 0
        log_failure(exc.code, exc.message)
        if link is not None:  # run by speechd's module, not by hand
            say_failure_aloud(exc.code)
        return 1
    if spoken.queued.dropped:
        return 0
    return 130 if spoken.interrupted or spoken.end is None else 0


#: What to do about the failures a user can fix, by error code.
FIXES = {
    "unknown_voice": "add a voice (chatterbox-tray voices add NAME CLIP; the first becomes the default) "
    "or choose the default (chatterbox-tray voices default NAME)",
    "not_ready": "see chatterbox-tray status; fix the settings (chatterbox-tray settings), then chatterbox-tray reload",
    "bad_rule": "change or remove the pronunciation rule named (chatterbox-tray words remove WORD, "
    "or the Pronunciation page)",
}
FIXES["model_failed"] = FIXES["not_ready"]  # the same failure, by the code a job's end gives


def log_failure(code: str, message: str) -> None:
    """One line for the module's log (our stderr): when, that nothing was said, why, and what to do.

    sd_generic ignores the command's exit status and has no way to pass an
    error on to the client: ``spd-say -w`` returns 0 either way. This line,
    in `module_log_path`, is where a user finds out.
    """
    fix = FIXES.get(code)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    line = f"{stamp} chatterbox-tray speechd: NOT SPOKEN: {message} [{code}]"
    with contextlib.suppress(OSError, ValueError):
        print(line + (f"; to fix: {fix}" if fix else ""), file=sys.stderr)
        sys.stderr.flush()


#: What a failure sounds like. Said by another of Speech Dispatcher's synthesizers: ours cannot speak.
NOTICES = {
    "unknown_voice": "Chatterbox Tray said nothing: it has no default voice. Choose one on its Voices page.",
    "not_ready": "Chatterbox Tray said nothing: its model failed to load. Its Settings page says why.",
    "bad_rule": "Chatterbox Tray said nothing: one of its pronunciation rules is too slow. "
    "Its Pronunciation page can remove it.",
}
NOTICES["model_failed"] = NOTICES["not_ready"]  # the same failure, by the code a job's end gives
#: At most one spoken notice in this many seconds: a screen reader sends a message for every key.
NOTICE_EVERY_S = 60.0
#: Modules preferred for the notice; never ours (it just failed) nor ``dummy`` (it plays a canned message).
NOTICE_MODULES = ("espeak-ng", "espeak", "espeak-ng-mbrola", "festival", "rhvoice", "pico")
_NOT_FOR_NOTICES = {MODULE, "dummy"}


def say_failure_aloud(code: str) -> str | None:
    """Have another of Speech Dispatcher's output modules say that nothing was spoken, and why.

    sd_generic cannot report a failure to the client, so a screen reader's user
    would hear nothing at all; the reason is in the module's log. This hands a
    short notice to speech-dispatcher with ``spd-say -o MODULE -P important``
    (queued behind this message, which ends when we exit), through one of its
    other synthesizers (espeak-ng first), at most once a minute. Nothing is
    said when there is no other module. Returns the module used, if any.
    """
    text = NOTICES.get(code)
    spd_say = shutil.which("spd-say")
    if text is None or spd_say is None:
        return None
    stamp = endpoints.runtime_dir() / "speechd-notice"
    with contextlib.suppress(OSError):
        if time.time() - stamp.stat().st_mtime < NOTICE_EVERY_S:
            return None
    quiet = {"stdin": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    try:
        listed = subprocess.run([spd_say, "-O"], stdout=subprocess.PIPE, text=True, timeout=5, **quiet)
        modules = [m.strip() for m in listed.stdout.splitlines()[1:] if m.strip()]  # after "OUTPUT MODULES"
        others = [m for m in modules if m not in _NOT_FOR_NOTICES]
        module = next((m for m in NOTICE_MODULES if m in others), others[0] if others else None)
        if module is None:
            return None
        _note(stamp.name, code)
        subprocess.run([spd_say, "-o", module, "-P", "important", text], stdout=subprocess.DEVNULL, timeout=5, **quiet)
    except (OSError, subprocess.SubprocessError):
        return None
    with contextlib.suppress(OSError, ValueError):
        print(f"chatterbox-tray speechd: said so aloud through the {module} module", file=sys.stderr)
    return module


# -- the subcommand ------------------------------------------------------------------------


def _voices(client: Any) -> list[VoiceInfo]:
    """The daemon's voices, each read as its type."""
    return [VoiceInfo.from_data(v) for v in client.voices_list()]


def _library(client: Any) -> tuple[list[str], str]:
    """Voice names, and the language the daemon speaks (for the voices' language)."""
    settings = SettingsGetResult.from_data(client.settings_get()).settings
    language = (settings.get("language") or "en") if settings.get("variant") == "multilingual" else "en"
    return [v.name for v in _voices(client)], language


def readiness(client: Any) -> list[str]:
    """What would keep Speech Dispatcher's messages silent now: no default voice, a model that failed.

    Each is a sentence for people with what to do. Loading, warming up and
    sleeping are fine: a message waits for the model.
    """
    problems = []
    voices = _voices(client)
    if not voices:
        problems.append(
            "there are no voices, so nothing can be spoken: add one with"
            " `chatterbox-tray voices add NAME CLIP` (the first one becomes the default)"
        )
    elif not any(v.default for v in voices):
        problems.append(
            "there is no default voice, and messages that name no voice (most do) will not be spoken:"
            " choose one with `chatterbox-tray voices default NAME`"
        )
    status = StateEvent.from_data(client.status())
    if status.state == "failed":
        problems.append(
            f"the model failed to load ({status.error or 'no reason given'}), so nothing can be spoken:"
            " fix it (`chatterbox-tray status`, `chatterbox-tray settings`) and run `chatterbox-tray reload`"
        )
    return problems


def cmd_speechd(client: Any, args: argparse.Namespace) -> int:
    """``chatterbox-tray speechd ACTION``."""
    action = args.speechd_cmd
    if action == "speak":
        return speak(client, args)
    command = shlex.split(args.command) if args.command else None
    names, language = _library(client)
    if action == "print":
        sys.stdout.write(render(names, language, command, args.priority))
        return 0
    alsa = not args.keep_audio_output and pulse_server() is None
    report = install(
        names,
        language,
        command=command,
        priority=args.priority,
        make_default=args.default,
        alsa=alsa,
        markup=args.markup,
    )
    print(f"wrote {report.module_conf}")
    if report.speechd_conf is not None:
        made = " (a copy of the system's)" if report.created_speechd_conf else ""
        print(f"registered it in {report.speechd_conf}{made}")
    if report.alsa:
        print(
            f'no PulseAudio (or PipeWire\'s pulse server) is running: added AudioOutputMethod "alsa" to'
            f" {report.speechd_conf}, without which speech-dispatcher loads no module"
            " (`speechd install --keep-audio-output` leaves it alone)"
        )
    if report.markup:
        where = report.speechd_conf or user_dir() / "speechd.conf"
        print(f"{MARKUP_LINE} is in {where}: [pause 1s] and tags such as [laugh] reach Chatterbox Tray")
        print(f"  {MARKUP_EFFECT} (`speechd install --no-markup` undoes it)")
    elif args.markup is False:
        print(f"{MARKUP_LINE} is not in the configuration: Speech Dispatcher makes [ and ] spaces again")
    for note in report.skipped:
        print(f"not offered: {note}", file=sys.stderr)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    _tell_reload(args)
    problems = readiness(client)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(f"why a message was not spoken: {module_log_path()}")
    then = "then " if problems else ""
    print(f'{then}try: spd-say -w -o {MODULE} "Hello from Chatterbox."')
    return 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    """``chatterbox-tray speechd uninstall``: needs no daemon."""
    report = uninstall()
    print(f"removed {report.module_conf}")
    if report.removed_speechd_conf:
        print(f"removed {report.speechd_conf}: install made it, a copy of the system's, and it was unchanged")
    elif report.speechd_conf is not None:
        print(f"removed our lines from {report.speechd_conf}")
    _tell_reload(args)
    return 0


def _tell_reload(args: argparse.Namespace) -> None:
    pid = None if args.no_reload else reload_speechd()
    if pid is not None:
        print(f"asked the running speech-dispatcher (pid {pid}) to reload its configuration")
    else:
        print("Speech Dispatcher reads it when it next starts (or on SIGHUP)")


def _on_off(parser: argparse.ArgumentParser, name: str, on: str, off: str) -> None:
    """``--NAME`` (True) or ``--no-NAME`` (False); neither is None: keep what an earlier install chose."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(f"--{name}", action="store_true", default=None, help=on)
    group.add_argument(f"--no-{name}", dest=name, action="store_false", default=None, help=off)


def add_parser(sub: Any) -> None:
    """The ``speechd`` subcommand (called by ``cli.build_parser``)."""
    sd = sub.add_parser("speechd", help="Speech Dispatcher: install the output module, or speak for it")
    ssub = sd.add_subparsers(dest="speechd_cmd", required=True, metavar="ACTION")
    for name, text in (
        ("install", "write the output module for your voices and register it (run again after adding voices)"),
        ("print", "print the output module's configuration"),
    ):
        p = ssub.add_parser(name, help=text)
        p.add_argument(
            "--priority",
            choices=PRIORITIES,
            default=DEFAULT_PRIORITY,
            help=f"queue priority of Speech Dispatcher's speech (default: {DEFAULT_PRIORITY})",
        )
        p.add_argument("--command", help="the command that runs chatterbox-tray (default: this Python, -m)")
        if name == "install":
            _on_off(
                p,
                "default",
                "also make it Speech Dispatcher's default output module (kept by later installs)",
                "no longer Speech Dispatcher's default output module",
            )
            p.add_argument("--no-reload", action="store_true", help="do not signal a running speech-dispatcher")
            p.add_argument(
                "--keep-audio-output",
                action="store_true",
                help='never add AudioOutputMethod "alsa" to speechd.conf (added when no PulseAudio is running)',
            )
            _on_off(
                p,
                "markup",
                'add SymbolsPreproc "no" to speechd.conf, so [pause 1s] and tags such as [laugh] reach us;'
                " Speech Dispatcher then leaves punctuation and symbols to each voice (kept by later installs)",
                "take out what --markup added",
            )
    un = ssub.add_parser("uninstall", help="remove the output module and our lines in speechd.conf")
    un.add_argument("--no-reload", action="store_true", help="do not signal a running speech-dispatcher")
    un.set_defaults(offline=cmd_uninstall)
    sp = ssub.add_parser("speak", help="(run by Speech Dispatcher) speak stdin and wait for the end")
    sp.add_argument("--voice", default="", help="speechd voice name ($VOICE)")
    sp.add_argument("--volume", default=None, help="speechd volume, -100 to 100 ($VOLUME)")
    sp.add_argument("--rate", default=None, help="speechd rate, -100 to 100 ($RATE); 0: the daemon's setting")
    sp.add_argument("--priority", choices=PRIORITIES, default=DEFAULT_PRIORITY)
    sd.set_defaults(func=cmd_speechd)
