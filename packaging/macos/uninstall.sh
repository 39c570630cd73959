#!/bin/sh
# Uninstall Chatterbox Tray on macOS: the app, its launchd agents and its Python
# environment. Your voices, settings, cache and the downloaded model weights stay
# unless you say otherwise (asked when run in a terminal; --purge says yes,
# --keep-data says no without asking).
#
#   uninstall.sh [--purge | --keep-data] [--prefix DIR]... [--no-launchctl]
#
# shellcheck shell=sh
set -eu

purge=ask
use_launchctl=1
prefixes=""
while [ $# -gt 0 ]; do
    case $1 in
        --purge) purge=yes; shift ;;
        --keep-data) purge=no; shift ;;
        --prefix) prefixes="$prefixes
$2"; shift 2 ;;
        --no-launchctl) use_launchctl=0; shift ;;
        -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "uninstall.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$prefixes" ]; then prefixes="/Applications
$HOME/Applications"; fi
if ! command -v launchctl >/dev/null 2>&1; then use_launchctl=0; fi

support="${CBT_SUPPORT:-$HOME/Library/Application Support/chatterbox-tray}"
runtime="$support/runtime"
hub="${HF_HUB_CACHE:-${HF_HOME:-$HOME/.cache/huggingface}/hub}"
domain="gui/$(id -u)"

if [ "$purge" = ask ]; then
    purge=no
    if [ -t 0 ]; then
        printf 'Also remove your voices, settings and cache, and the downloaded Chatterbox model weights? [y/N] '
        read -r answer || answer=""
        case $answer in [yY]*) purge=yes ;; esac
    fi
fi

# Stop the daemon cleanly (it finishes writing its cache), then the agents.
if [ -x "$runtime/venv/bin/chatterbox-tray" ]; then
    "$runtime/venv/bin/chatterbox-tray" --no-start shutdown >/dev/null 2>&1 || true
fi
for label in org.chatterbox-tray.daemon org.chatterbox-tray.gui; do
    if [ "$use_launchctl" = 1 ]; then launchctl bootout "$domain/$label" 2>/dev/null || true; fi
    rm -f "$HOME/Library/LaunchAgents/$label.plist"
done

printf '%s\n' "$prefixes" | while IFS= read -r prefix; do
    if [ -n "$prefix" ] && [ -d "$prefix/Chatterbox Tray.app" ]; then
        echo "removing $prefix/Chatterbox Tray.app"
        rm -rf "$prefix/Chatterbox Tray.app"
    fi
done
rm -rf "$runtime"
# The daemon's socket folder (see ipc/endpoints.py: $TMPDIR/chatterbox-tray-<uid>).
tmp=${TMPDIR:-$(getconf DARWIN_USER_TEMP_DIR 2>/dev/null || echo /tmp)}
rm -rf "${tmp%/}/chatterbox-tray-$(id -u)"

if [ "$purge" = yes ]; then
    echo "removing your voices, settings, cache, logs and the Chatterbox model weights"
    rm -rf "$support" "$HOME/Library/Caches/chatterbox-tray" "$HOME/Library/Logs/chatterbox-tray"
    for dir in "$hub"/models--ResembleAI--chatterbox*; do
        if [ -d "$dir" ]; then rm -rf "$dir"; fi
    done
else
    echo "kept your voices and settings in $support and the cache in ~/Library/Caches/chatterbox-tray"
fi
echo "Chatterbox Tray is uninstalled."
