"""Why the model failed to load, in our words first (issue 23 §4).

The daemon's reason (``status["error"]``) is exact but written for the log:
a library's own message ("Got: ConnectError: [Errno -2] … try again.."), a
folder path, a list of file names. People see a sentence saying what failed
and what to do; the reason itself stays one click away, behind "Details".
"""

from __future__ import annotations

import re

#: (what the reason says, what people read), first match wins; any case, and ``.`` spans lines.
_RULES = [
    (
        r"checkpoint folder .* lacks ",
        "The chosen folder does not hold all of the model's files. Choose the folder that does, "
        "or set Weights to the Hugging Face hub.",
    ),
    (
        r"the download of the weights failed",
        "The download of the model stopped part way. The files already downloaded are kept: "
        "check the connection and retry.",
    ),
    (
        r"connecterror|connectionerror|connection (?:refused|reset|aborted)|errno -[23]\b|"
        r"name or service not known|name resolution|network is unreachable|no route to host|"
        r"cannot reach the hugging face hub|internet connection|hf_hub_offline|offline mode|"
        r"localentrynotfound|couldn't connect|could not connect|timed? ?out",
        "The model could not be downloaded: there is no connection to the internet (the Hugging Face hub). "
        "Connect once and retry, or use a folder that holds the model's files.",
    ),
    (
        r"out of (?:gpu )?memory",
        "There is not enough memory to load the model. Close other programs, or choose the CPU or a "
        "smaller model (Turbo) in Settings.",
    ),
    (
        r"weights do not fit the model",
        "The files found are not this model's weights (another variant's, or damaged). "
        "Check the variant and the folder in Settings.",
    ),
    (
        r"chatterbox could not be imported",
        "Chatterbox, the speech library, is missing or broken: install Chatterbox Tray again.",
    ),
]
GENERIC = "The model could not be loaded."


def plain_failure(reason: str) -> str:
    """What failed and what to do, in a sentence or two, for the daemon's ``reason``."""
    for pattern, words in _RULES:
        if re.search(pattern, reason or "", re.I | re.S):
            return words
    return GENERIC
