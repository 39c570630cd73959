#!/bin/sh
# Chatterbox Tray.app's executable (Contents/MacOS/chatterbox-tray): make sure the
# Python environment matches this copy of the app, then run the tray app.
# Arguments go to chatterbox-tray-gui (e.g. --minimized).
# shellcheck shell=sh
set -eu

contents=$(cd "$(dirname "$0")/.." && pwd -P)
resources="$contents/Resources"
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$resources/common.sh"

"$resources/setup-env.sh"
exec "$CBT_VENV/bin/chatterbox-tray-gui" "$@"
