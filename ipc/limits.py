"""Numbers the daemon and its clients must agree on, in one place.

The daemon enforces these; clients read them to build their controls (slider
ranges, the recorder's length limits, the priority list) without asking the
daemon first, or to check input before sending it. A client still believes
what the daemon announces (``hello``'s ``limits``, ``capabilities``'s
``options``) over these when they differ: an older daemon may be running.

Pure data, standard library only: every client imports it.
"""

from __future__ import annotations

#: Speech priorities, most urgent first (Speech Dispatcher's names). A queued
#: job plays before every job of a later priority; see ``audio/speaker_rules.py``.
PRIORITIES: tuple[str, ...] = ("urgent", "quick", "text", "notification")
#: Each priority's rank: 0 is the most urgent.
PRIORITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(PRIORITIES)}
#: What ``speak`` uses when the request names no priority.
DEFAULT_PRIORITY = "text"

#: Generation options clients may send, by name: (min, max, default). Variants
#: that ignore an option leave it out of their capabilities.
OPTION_RANGES: dict[str, tuple[float, float, float]] = {
    "exaggeration": (0.0, 2.0, 0.5),
    "cfg_weight": (0.0, 1.0, 0.5),
    "temperature": (0.05, 2.0, 0.8),
}

#: Playback volume: (min, max).
VOLUME_RANGE: tuple[float, float] = (0.0, 1.0)
#: The speaker's pre-buffer: wait until playback will not stall, or start with the first sentence.
PREBUFFER_MODES: tuple[str, ...] = ("adaptive", "off")

#: Speaking rate, a factor on speed (2.0: twice as fast): (min, max). Speech
#: stays clear across this span with WSOLA (daemon/stretch.py); beyond it,
#: frames repeat or drop whole phones.
RATE_RANGE: tuple[float, float] = (0.5, 2.0)

CLIP_MIN_SECONDS = 5.0
"""A voice clip must be longer than this.

Chatterbox Turbo's ``prepare_conditionals`` asserts ``len(wav) / sr > 5.0``
(strictly greater), so we refuse anything not longer than 5 s for every
variant: a voice should work with whichever model is loaded.
"""

CLIP_MAX_SECONDS = 60.0
"""A voice clip must not be longer than this.

Our choice, not the model's. ``prepare_conditionals`` keeps only the first
10 s for S3Gen's reference and the first 6 s (15 s for Turbo) for T3's speech
prompt; only the voice encoder's speaker embedding looks at the whole clip, and
it averages over it, so a minute of speech already gives a stable embedding.
Longer clips just cost decode time, memory and preparation time (and make an
accidental drop of a podcast episode expensive).
"""

CLIP_SILENCE_RMS_DBFS = -50.0
"""A voice clip whose RMS level is below this is refused as silent.

Speech recorded at a sane level sits around -20 to -30 dBFS RMS, and even a
quiet recording with long pauses stays above -45; the noise floor of a quiet
room through a desk microphone is around -60 to -50 dBFS, and digital
silence or dither is far below that. Below -50 dBFS there is nothing worth
cloning (Turbo would normalise the loudness and clone the room noise). RMS
rather than peak: a single click in a silent file has a high peak but no
speech, and a peak threshold adds nothing, since the peak is never below the
RMS.
"""

#: The default of the ``max_text_chars`` setting (the daemon announces the
#: value in force in ``hello``'s ``limits``).
DEFAULT_MAX_TEXT_CHARS = 100_000

#: Longest text a quick-speak sends, from the hotkey or ``chatterbox-tray quick`` (a
#: stray select-all of a huge page should not queue an hour of speech).
MAX_QUICK_CHARS = 20_000

#: A voice name has 1 to this many characters.
VOICE_NAME_MAX_LENGTH = 64
