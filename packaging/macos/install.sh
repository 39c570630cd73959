#!/bin/sh
# Install Chatterbox Tray on macOS: copy the app, set up its Python environment,
# and register the daemon as a launchd agent so it is ready at login.
#
#   install.sh [--app PATH] [--prefix DIR] [--autostart] [--no-daemon-agent]
#              [--no-setup] [--no-launchctl]
#
#   --app PATH         the Chatterbox Tray.app to install (default: the bundle this
#                      script is in, or the one beside it, or <repo>/dist's)
#   --prefix DIR       where to put it (default: /Applications when writable,
#                      else ~/Applications)
#   --autostart        also start the tray app at login (the Settings page's switch)
#   --no-daemon-agent  do not register the daemon agent (the app still starts a
#                      daemon when it needs one)
#   --no-setup         do not build the Python environment now (the first launch will)
#   --no-launchctl     write the agents' plists but do not load them
#
# Nothing here needs administrator rights. Run uninstall.sh to undo.
# shellcheck shell=sh
set -eu

here=$(cd "$(dirname "$0")" && pwd -P)
app_src=""
prefix=""
autostart=0
daemon_agent=1
setup=1
use_launchctl=1

while [ $# -gt 0 ]; do
    case $1 in
        --app) app_src=$2; shift 2 ;;
        --prefix) prefix=$2; shift 2 ;;
        --autostart) autostart=1; shift ;;
        --no-daemon-agent) daemon_agent=0; shift ;;
        --no-setup) setup=0; shift ;;
        --no-launchctl) use_launchctl=0; shift ;;
        -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

if [ -z "$app_src" ]; then
    case $here in
        *.app/Contents/Resources) app_src=$(cd "$here/../.." && pwd -P) ;;
        *)
            for candidate in "$here/Chatterbox Tray.app" "$here/../../dist/Chatterbox Tray.app"; do
                if [ -d "$candidate" ]; then app_src=$(cd "$candidate" && pwd -P); break; fi
            done
            ;;
    esac
fi
if [ -z "$app_src" ] || [ ! -f "$app_src/Contents/Info.plist" ]; then
    echo "install.sh: no Chatterbox Tray.app found; build one with build-app.sh or pass --app" >&2
    exit 1
fi
if [ -z "$prefix" ]; then
    if [ -w /Applications ]; then prefix=/Applications; else prefix="$HOME/Applications"; fi
fi
mkdir -p "$prefix"
app="$(cd "$prefix" && pwd -P)/Chatterbox Tray.app"
agents="$HOME/Library/LaunchAgents"
logs="$HOME/Library/Logs/chatterbox-tray"
domain="gui/$(id -u)"
if ! command -v launchctl >/dev/null 2>&1; then use_launchctl=0; fi

# Escape a value for the inside of an XML <string> (a sed replacement too).
xml_escape() {
    printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/[|\\&]/\\&/g'
}

write_agent() {  # template, destination, then KEY=VALUE pairs for @KEY@
    template=$1
    dest=$2
    shift 2
    script=""
    for pair in "$@"; do
        script="$script;s|@${pair%%=*}@|$(xml_escape "${pair#*=}")|g"
    done
    sed -e "${script#;}" "$template" >"$dest.tmp"
    mv "$dest.tmp" "$dest"
}

# Stop the agent of an older install before its files change.
if [ "$use_launchctl" = 1 ]; then
    launchctl bootout "$domain/org.chatterbox-tray.daemon" 2>/dev/null || true
fi

if [ "$app_src" != "$app" ]; then
    echo "installing $app"
    rm -rf "$app"
    if command -v ditto >/dev/null 2>&1; then ditto "$app_src" "$app"; else cp -R "$app_src" "$app"; fi
fi
# An unsigned app copied from a download is quarantined; this user asked to install it.
if command -v xattr >/dev/null 2>&1; then xattr -dr com.apple.quarantine "$app" 2>/dev/null || true; fi

resources="$app/Contents/Resources"
if [ "$setup" = 1 ]; then
    echo "setting up the Python environment (a few minutes the first time; log: $logs/setup.log)"
    "$resources/setup-env.sh"
fi

mkdir -p "$agents" "$logs"
if [ "$daemon_agent" = 1 ]; then
    plist="$agents/org.chatterbox-tray.daemon.plist"
    write_agent "$resources/org.chatterbox-tray.daemon.plist.in" "$plist" "RESOURCES=$resources" "LOGS=$logs"
    echo "wrote $plist"
    if [ "$use_launchctl" = 1 ]; then launchctl bootstrap "$domain" "$plist"; fi
fi
if [ "$autostart" = 1 ]; then
    plist="$agents/org.chatterbox-tray.gui.plist"
    write_agent "$resources/org.chatterbox-tray.gui.plist.in" "$plist" "APP=$app"
    echo "wrote $plist"
fi
echo "Chatterbox Tray is installed: open it from $prefix or Spotlight."
