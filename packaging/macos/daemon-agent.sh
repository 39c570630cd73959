#!/bin/sh
# What launchd runs for the org.chatterbox-tray.daemon agent: the daemon in the
# foreground, on MPS where there is one (its "auto" device tries CUDA, then MPS,
# then the CPU; settings.json or the Settings page can pin one). Arguments go
# to the daemon (e.g. --variant turbo).
#
# The agent restarts the daemon only after a crash (KeepAlive SuccessfulExit=false),
# so the statuses that a restart cannot fix are reported to launchd as success:
#   2  settings.json or a flag is invalid;
#   3  another daemon already serves this user (the app started one first).
# shellcheck shell=sh
set -u

resources=$(cd "$(dirname "$0")" && pwd -P)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$resources/common.sh"

"$resources/setup-env.sh" || exit 75  # EX_TEMPFAIL: no network yet at login; launchd tries again

"$CBT_VENV/bin/python" -m chatterbox_tray.daemon "$@" &
child=$!
# launchd stops an agent with SIGTERM; pass it on and report the daemon's own status.
trap 'kill -TERM "$child" 2>/dev/null' TERM INT HUP
status=0
wait "$child" || status=$?
while kill -0 "$child" 2>/dev/null; do
    status=0
    wait "$child" || status=$?
done
case $status in
    2 | 3) exit 0 ;;
    *) exit "$status" ;;
esac
