#!/bin/sh
# Create or update Chatterbox Tray's Python environment from the project source
# inside the app bundle. Runs at every launch (cheap when nothing changed: it
# compares BUILD-ID files), from install.sh, and by hand:
#
#   "/Applications/Chatterbox Tray.app/Contents/Resources/setup-env.sh" [--force]
#
# The source is copied out of the bundle first (a bundle may be read-only or
# signed, and building the package writes beside its source), then uv installs
# Python 3.11 and the locked packages. On macOS, PyPI's torch for Apple silicon
# has MPS built in, so there is no build to choose as on Windows.
#
# Environment: CBT_UV (a uv to use), CBT_PYTHON (an existing Python instead of a
# uv-managed one), UV_CACHE_DIR (uv's cache; default inside the runtime folder),
# UV_COMPILE_BYTECODE (default 1).
# shellcheck shell=sh
set -eu

resources=$(cd "$(dirname "$0")" && pwd -P)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$resources/common.sh"

force=0
for arg in "$@"; do
    case $arg in
        --force) force=1 ;;
        -h | --help)
            sed -n '2,15p' "$0"
            exit 0
            ;;
        *)
            echo "setup-env.sh: unknown argument $arg" >&2
            exit 2
            ;;
    esac
done

if [ "$force" = 0 ] && [ -x "$CBT_VENV/bin/chatterbox-tray-gui" ] &&
    cmp -s "$resources/app/BUILD-ID" "$CBT_RUNTIME/BUILD-ID"; then
    exit 0
fi

find_uv() {
    for candidate in "${CBT_UV:-}" "$resources/bin/uv" "$(command -v uv 2>/dev/null || true)" \
        "$HOME/.local/bin/uv" "$HOME/.cargo/bin/uv" /opt/homebrew/bin/uv /usr/local/bin/uv; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if ! uv=$(find_uv); then
    cbt_alert "uv was not found, so the Python environment cannot be set up. Install uv (https://docs.astral.sh/uv/) or use a build of the app that bundles it."
    exit 1
fi

mkdir -p "$CBT_RUNTIME" "$CBT_LOGS"
log="$CBT_LOGS/setup.log"
{
    echo "=== $(date) setting up from $resources/app with $uv"
} >>"$log"

# A fresh copy of the source: never mix two versions' files.
rm -rf "$CBT_SRC.new"
mkdir -p "$CBT_SRC.new"
cp -R "$resources/app/." "$CBT_SRC.new/"
rm -rf "$CBT_SRC"
mv "$CBT_SRC.new" "$CBT_SRC"

UV_PROJECT_ENVIRONMENT="$CBT_VENV"
UV_PYTHON_INSTALL_DIR="$CBT_RUNTIME/python"
UV_CACHE_DIR="${UV_CACHE_DIR:-$CBT_RUNTIME/uv-cache}"
# Compiled bytecode makes every later start faster (torch has thousands of modules).
UV_COMPILE_BYTECODE="${UV_COMPILE_BYTECODE:-1}"
export UV_PROJECT_ENVIRONMENT UV_PYTHON_INSTALL_DIR UV_CACHE_DIR UV_COMPILE_BYTECODE

if [ -n "${CBT_PYTHON:-}" ]; then
    set -- --python "$CBT_PYTHON"
else
    set -- --python "$CBT_PYTHON_VERSION" --managed-python
fi

if [ ! -d "$CBT_VENV" ]; then
    cbt_notify "Setting up for the first time: downloading Python and the speech model's packages (about 1 GB)."
fi
if ! "$uv" sync --project "$CBT_SRC" --frozen --no-dev --no-editable "$@" >>"$log" 2>&1; then
    tail -n 20 "$log" >&2 || true
    cbt_alert "Setting up the Python environment failed. The log is $log."
    exit 1
fi
cp "$resources/app/BUILD-ID" "$CBT_RUNTIME/BUILD-ID"
echo "=== $(date) ready" >>"$log"
