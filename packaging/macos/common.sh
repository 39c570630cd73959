# Sourced by the scripts inside Chatterbox Tray.app: where things live.
# POSIX sh (macOS's /bin/sh is bash 3.2 in POSIX mode, or dash): no arrays, no [[ ]].
#
# The app's own data (settings, voices, cache, logs) lives where platformdirs puts
# it, as on a checkout: ~/Library/Application Support/chatterbox-tray,
# ~/Library/Caches/chatterbox-tray and ~/Library/Logs/chatterbox-tray. The Python
# environment the bundle creates lives in its own "runtime" folder beside the
# data, so that uninstalling can remove it and keep the voices.
# shellcheck shell=sh

CBT_APP_ID=chatterbox-tray
CBT_SUPPORT="${CBT_SUPPORT:-$HOME/Library/Application Support/$CBT_APP_ID}"
CBT_RUNTIME="$CBT_SUPPORT/runtime"
CBT_SRC="$CBT_RUNTIME/src"
CBT_VENV="$CBT_RUNTIME/venv"
CBT_LOGS="$HOME/Library/Logs/$CBT_APP_ID"
CBT_PYTHON_VERSION=3.11
export CBT_APP_ID CBT_SUPPORT CBT_RUNTIME CBT_SRC CBT_VENV CBT_LOGS CBT_PYTHON_VERSION

# chatterbox uses a few operators MPS lacks; let torch run those on the CPU
# instead of failing. Harmless on the CPU and with CUDA.
PYTORCH_ENABLE_MPS_FALLBACK=1
export PYTORCH_ENABLE_MPS_FALLBACK

# The daemon's sockets live in $TMPDIR (macOS gives each user a private one).
# launchd agents may start without TMPDIR; ask for the same per-user folder
# the GUI session gets, so the app and the daemon agent meet in one place.
if [ -z "${TMPDIR:-}" ]; then
    TMPDIR=$(getconf DARWIN_USER_TEMP_DIR 2>/dev/null || true)
    if [ -n "$TMPDIR" ]; then export TMPDIR; else unset TMPDIR; fi
fi

# Tell the user something from a script that has no terminal (the Dock, launchd).
cbt_alert() {
    echo "Chatterbox Tray: $1" >&2
    if command -v osascript >/dev/null 2>&1; then
        osascript -e 'on run argv' -e 'display alert "Chatterbox Tray" message (item 1 of argv) as critical' \
            -e 'end run' "$1" >/dev/null 2>&1 || true
    fi
}

cbt_notify() {
    echo "Chatterbox Tray: $1" >&2
    if command -v osascript >/dev/null 2>&1; then
        osascript -e 'on run argv' -e 'display notification (item 1 of argv) with title "Chatterbox Tray"' \
            -e 'end run' "$1" >/dev/null 2>&1 || true
    fi
}
