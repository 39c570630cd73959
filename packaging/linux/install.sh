#!/bin/sh
# Install Chatterbox Tray for the current user on Linux (or uninstall it).
#
#   packaging/linux/install.sh                    install, or upgrade in place
#   packaging/linux/install.sh --enable-service   ... and run the daemon from login (systemd user unit)
#   packaging/linux/install.sh --autostart        ... and start the tray app with the desktop session
#   packaging/linux/install.sh --torch cpu        torch's CPU-only build (the default without an NVIDIA GPU)
#   packaging/linux/install.sh --uninstall        remove the app, keep voices, settings and cache
#   packaging/linux/install.sh --uninstall --purge   ... and remove those too
#
# Run it from a checkout or an unpacked source tarball: it copies the project
# (pyproject.toml, uv.lock and the packages) to $XDG_DATA_HOME/chatterbox-tray/app
# and runs `uv sync --frozen --no-dev` there, so uv's override-dependencies
# apply (torch 2.9.1: PyPI's build with CUDA 12.8 where there is an NVIDIA GPU,
# else the same version's CPU-only build from PyTorch's index, a tenth of the
# size). See packaging/linux/README.md.
set -eu

APP=chatterbox-tray
APPSTREAM_ID=io.github.chatterbox_tray.ChatterboxTray
SERVICE=chatterbox-tray-daemon.service
COMMANDS="chatterbox-tray chatterbox-tray-daemon chatterbox-tray-gui"
MARKER="# Written by Chatterbox Tray's packaging/linux/install.sh; --uninstall removes it."
UV_INSTALLER_URL=https://astral.sh/uv/install.sh
# PyTorch's own index of CPU-only builds (PyPI's Linux x86-64 torch is the CUDA build).
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

usage() {
    cat <<EOF
Usage: $0 [OPTION]...

Install Chatterbox Tray for the current user: a Python environment made by uv,
the commands ${COMMANDS}, a desktop entry, icons, AppStream metainfo and a
systemd user unit for the daemon.

  --enable-service    enable and start the daemon's systemd user unit
  --autostart         start the tray app (minimized) when you log in
  --uninstall         remove what the installer put in place; voices, settings
                      and the conditionals cache stay
  --purge             with --uninstall: also remove voices, settings, cache and logs
  --prefix DIR        put commands in DIR/bin and shared files in DIR/share
                      (default: ~/.local/bin and \$XDG_DATA_HOME)
  --python-env DIR    use this existing environment (it has bin/chatterbox-tray-gui)
                      instead of making one with uv
  --no-env            do not make the Python environment (the commands will
                      point at where it would be)
  --python VERSION    Python for uv to use (default: uv's choice, 3.10 to 3.13)
  --torch BUILD       auto (default): cuda where an NVIDIA GPU is found, else cpu;
                      cuda: PyPI's torch with CUDA 12.8 (about 4.1 GB to download,
                      7.8 GB installed); cpu: the CPU-only build from
                      $TORCH_CPU_INDEX (about 0.5 GB, 1.9 GB installed).
                      Only Linux on x86-64 has the choice
  --source DIR        the project to install (default: this script's checkout)
  --force             replace commands of the same name that this installer did not write
  -n, --dry-run       print what would be done and change nothing
  -h, --help          show this help

Environment: XDG_DATA_HOME, XDG_CONFIG_HOME, XDG_CACHE_HOME and XDG_STATE_HOME
are honoured; DESTDIR stages every file under another root (for packagers; it
needs --no-env or --python-env, and skips systemctl and the cache updates).
EOF
}

die() {
    echo "install.sh: $*" >&2
    exit 1
}

say() {
    echo "$*"
}

# An absolute XDG base directory, or the default when unset or relative (as the spec says).
xdg() {
    case "${1:-}" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$2" ;;
    esac
}

# --- options -----------------------------------------------------------------

action=install
purge=0
dry=0
autostart=0
enable_service=0
make_env=1
python_env=
python=
torch=auto
prefix=
force=0
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)

while [ $# -gt 0 ]; do
    case "$1" in
        --enable-service) enable_service=1 ;;
        --autostart) autostart=1 ;;
        --uninstall) action=uninstall ;;
        --purge) purge=1 ;;
        --no-env) make_env=0 ;;
        --force) force=1 ;;
        -n | --dry-run) dry=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        --prefix | --python-env | --python | --source | --torch)
            [ $# -ge 2 ] || die "$1 needs a value"
            case "$1" in
                --prefix) prefix=$2 ;;
                --python-env) python_env=$2 ;;
                --python) python=$2 ;;
                --torch) torch=$2 ;;
                --source) source_dir=$2 ;;
            esac
            shift
            ;;
        --prefix=* | --python-env=* | --python=* | --source=* | --torch=*)
            value=${1#*=}
            case "$1" in
                --prefix=*) prefix=$value ;;
                --python-env=*) python_env=$value ;;
                --python=*) python=$value ;;
                --torch=*) torch=$value ;;
                --source=*) source_dir=$value ;;
            esac
            ;;
        *)
            usage >&2
            die "unknown option: $1"
            ;;
    esac
    shift
done

[ "$purge" = 0 ] || [ "$action" = uninstall ] || die "--purge goes with --uninstall"
case "$torch" in
    auto | cpu | cuda) ;;
    *) die "--torch is auto, cpu or cuda, not: $torch" ;;
esac
[ -n "${HOME:-}" ] || die "HOME is not set"
# `sudo install.sh` with the user's HOME would leave root-owned files in it.
if [ "$(id -u)" = 0 ] && [ -z "$prefix" ] && [ -z "${DESTDIR:-}" ] && [ -d "$HOME" ] &&
    [ -z "$(find "$HOME" -maxdepth 0 -uid 0)" ]; then
    die "this installs for one user: run it as the owner of $HOME, not as root"
fi

# --- where things go ---------------------------------------------------------

DATA_HOME=$(xdg "${XDG_DATA_HOME:-}" "$HOME/.local/share")
CONFIG_HOME=$(xdg "${XDG_CONFIG_HOME:-}" "$HOME/.config")
CACHE_HOME=$(xdg "${XDG_CACHE_HOME:-}" "$HOME/.cache")
STATE_HOME=$(xdg "${XDG_STATE_HOME:-}" "$HOME/.local/state")
if [ -n "$prefix" ]; then
    case "$prefix" in /*) ;; *) prefix=$(pwd)/$prefix ;; esac
    BINDIR=$prefix/bin
    SHAREDIR=$prefix/share
else
    BINDIR=$HOME/.local/bin
    SHAREDIR=$DATA_HOME
fi
case "$BINDIR$SHAREDIR$CONFIG_HOME" in
    # systemd refuses them in an executable's path, and they are easy to get wrong in the desktop entry.
    *[\'\"\\\$\`]*) die "paths with quotes, backslashes, dollar signs or backquotes are not supported: $BINDIR" ;;
esac
APPDIR=$SHAREDIR/$APP/app
DESKTOP_FILE=$SHAREDIR/applications/$APP.desktop
METAINFO_FILE=$SHAREDIR/metainfo/$APPSTREAM_ID.metainfo.xml
UNIT_FILE=$SHAREDIR/systemd/user/$SERVICE
ICON_DIR=$SHAREDIR/icons/hicolor
# The same file the tray app's "Start with the session" setting writes (gui/autostart.py).
AUTOSTART_FILE=$CONFIG_HOME/autostart/$APP.desktop
# What `chatterbox-tray speechd install` writes (cli/speech_dispatcher.py); --uninstall takes it away.
SPEECHD_DIR=$CONFIG_HOME/speech-dispatcher
SPEECHD_MODULE=$SPEECHD_DIR/modules/$APP-generic.conf
D=${DESTDIR:-}

if [ -n "$python_env" ]; then
    case "$python_env" in /*) ;; *) python_env=$(pwd)/$python_env ;; esac
    ENVDIR=$python_env
    make_env=0
else
    ENVDIR=$APPDIR/venv
fi

# --- helpers -----------------------------------------------------------------

# Run a command, or print it in a dry run.
run() {
    if [ "$dry" = 1 ]; then
        echo "+ $*"
    else
        "$@"
    fi
}

# Write stdin to a file under DESTDIR with a mode, or name it in a dry run.
put() { # put MODE PATH
    if [ "$dry" = 1 ]; then
        cat >/dev/null
        echo "+ write $2"
        return
    fi
    mkdir -p "$D$(dirname "$2")"
    tmp="$D$2.tmp.$$"
    cat >"$tmp"
    chmod "$1" "$tmp"
    mv -f "$tmp" "$D$2"
    echo "installed $2"
}

remove() { # remove PATH...
    for path in "$@"; do
        if [ -e "$D$path" ] || [ -L "$D$path" ]; then
            run rm -rf "$D$path"
            [ "$dry" = 1 ] || echo "removed $path"
        fi
    done
}

have() {
    command -v "$1" >/dev/null 2>&1
}

# A word for /bin/sh, single-quoted.
sh_quote() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# A path as the program of a desktop entry's Exec key (quoted per the spec when needed).
desktop_exec_path() {
    case "$1" in
        *[!A-Za-z0-9_./+@:-]*)
            printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"`$]/\\&/g; s/\\/\\\\/g; s/%/%%/g')"
            ;;
        *) printf '%s' "$1" ;;
    esac
}

# A path as the program of a systemd Exec line.
systemd_exec_path() {
    escaped=$(printf '%s' "$1" | sed 's/%/%%/g')
    case "$1" in
        *[!A-Za-z0-9_./+@:%-]*) printf '"%s"' "$(printf '%s' "$escaped" | sed 's/[\\"]/\\&/g')" ;;
        *) printf '%s' "$escaped" ;;
    esac
}

# Point a desktop entry's Exec and TryExec lines at the installed commands
# (the EXEC_* variables hold each command's path, quoted for Exec).
render_desktop() { # render_desktop TEMPLATE
    BINDIR=$BINDIR COMMANDS=$COMMANDS awk '
        BEGIN { n = split(ENVIRON["COMMANDS"], names, " "); for (i = 1; i <= n; i++) ours[names[i]] = 1 }
        /^(Try)?Exec=/ {
            eq = index($0, "="); key = substr($0, 1, eq - 1); value = substr($0, eq + 1)
            sp = index(value, " "); program = sp ? substr(value, 1, sp - 1) : value; rest = sp ? substr(value, sp) : ""
            if (program in ours) {
                if (key == "Exec") { var = "EXEC_" program; gsub(/-/, "_", var); path = ENVIRON[var] }
                else path = ENVIRON["BINDIR"] "/" program
                print key "=" path rest
                next
            }
        }
        { print }
    ' "$1"
}

# Whether systemctl can reach this user's service manager.
user_systemd() {
    [ -z "$D" ] && have systemctl && systemctl --user show-environment >/dev/null 2>&1
}

refresh_caches() {
    [ -z "$D" ] || return 0
    if have update-desktop-database; then
        run update-desktop-database -q "$SHAREDIR/applications" || true
    fi
    if have gtk-update-icon-cache && [ -d "$ICON_DIR" ]; then
        run gtk-update-icon-cache -q -t -f "$ICON_DIR" || true
    fi
}

find_uv() {
    for candidate in "$(command -v uv 2>/dev/null || true)" "$HOME/.local/bin/uv" "$HOME/.cargo/bin/uv"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

# The uv installer's temporary folder (its download and whatever the uv installer itself
# makes under TMPDIR); removed on every exit, a failed download included.
uv_tmp=
cleanup_uv_tmp() {
    if [ -n "$uv_tmp" ]; then
        rm -rf "$uv_tmp"
        uv_tmp=
    fi
}

install_uv() {
    say "uv is not installed; installing it from $UV_INSTALLER_URL into ~/.local/bin"
    [ "$dry" = 0 ] || {
        echo "+ download $UV_INSTALLER_URL and run it"
        return 0
    }
    trap cleanup_uv_tmp EXIT
    # sh does not run the EXIT trap when a signal ends it: exit instead, which does.
    trap 'exit 130' INT
    trap 'exit 143' TERM
    uv_tmp=$(mktemp -d "${TMPDIR:-/tmp}/chatterbox-tray-uv.XXXXXX") || die "could not make a temporary folder"
    script=$uv_tmp/uv-installer.sh
    if have curl; then
        curl -LsSf "$UV_INSTALLER_URL" -o "$script" ||
            die "could not download the uv installer from $UV_INSTALLER_URL (no connection?); install uv yourself (https://docs.astral.sh/uv/) and run this again"
    elif have wget; then
        wget -qO "$script" "$UV_INSTALLER_URL" ||
            die "could not download the uv installer from $UV_INSTALLER_URL (no connection?); install uv yourself (https://docs.astral.sh/uv/) and run this again"
    else
        die "uv is missing and neither curl nor wget is installed to fetch it (see https://docs.astral.sh/uv/)"
    fi
    # TMPDIR: the uv installer's own temporary files go in our folder, and go with it.
    TMPDIR=$uv_tmp UV_INSTALL_DIR="$HOME/.local/bin" UV_NO_MODIFY_PATH=1 sh "$script" ||
        die "the uv installer failed (see above); install uv yourself (https://docs.astral.sh/uv/) and run this again"
    cleanup_uv_tmp
    trap - EXIT INT TERM
}

# --- install -----------------------------------------------------------------

make_environment() {
    [ -z "$D" ] || die "DESTDIR needs --no-env or --python-env: a virtual environment cannot be moved"
    if [ ! -f "$source_dir/pyproject.toml" ] || [ ! -f "$source_dir/uv.lock" ]; then
        die "$source_dir has no pyproject.toml and uv.lock; pass --source with the project's folder"
    fi
    uv=$(find_uv) || {
        install_uv
        uv=$(find_uv) || uv="$HOME/.local/bin/uv"
    }
    if [ "$(cd "$source_dir" && pwd -P)" = "$(cd "$APPDIR/src" 2>/dev/null && pwd -P)" ]; then
        say "using the installed copy of the project in $APPDIR/src"
    elif [ "$dry" = 1 ]; then
        echo "+ copy $source_dir -> $APPDIR/src"
    else
        say "copying the project to $APPDIR/src"
        rm -rf "$APPDIR/src"
        mkdir -p "$APPDIR/src"
        # Everything but a checkout's clutter: new top-level packages come along by themselves.
        (cd "$source_dir" && tar -cf - --exclude=./.git --exclude=./.venv --exclude=./.cache \
            --exclude=./tests --exclude=./bench --exclude=./build --exclude=./dist --exclude='*.egg-info' \
            --exclude=__pycache__ --exclude=.pytest_cache --exclude=.ruff_cache .) | (cd "$APPDIR/src" && tar -xf -)
    fi
    choose_torch
    build_file=$APPDIR/torch-build.txt
    if [ -d "$ENVDIR" ]; then
        previous=$(sed -n 's/^build=//p' "$build_file" 2>/dev/null || true)
        if [ -z "$previous" ]; then
            # Made before --torch existed: PyPI's build, which on Linux x86-64 is the CUDA one.
            previous=cuda
            [ "$torch_build" != pypi ] || previous=pypi
        fi
        if [ "$previous" != "$torch_build" ]; then
            # The old build's libraries would stay behind (4.9 GB of them for CUDA).
            say "the environment has torch's $previous build; making it again with the $torch_build build"
            run rm -rf "$ENVDIR"
        fi
    fi
    # --no-install-package: the lock's CUDA torch, its NVIDIA libraries and triton, for the CPU build.
    set --
    if [ "$torch_build" = cpu ]; then
        for package in torch torchaudio $(cuda_packages "$source_dir/uv.lock"); do
            set -- "$@" --no-install-package "$package"
        done
        say "making the Python environment in $ENVDIR with uv, with torch's CPU-only build (the first time downloads about 0.5 GB)"
    elif [ "$torch_build" = cuda ]; then
        say "making the Python environment in $ENVDIR with uv, with torch's CUDA 12.8 build (the first time downloads about 4.1 GB)"
    else
        say "making the Python environment in $ENVDIR with uv"
    fi
    if [ -n "$python" ]; then
        set -- "$@" --python "$python"
    fi
    run env UV_PROJECT_ENVIRONMENT="$ENVDIR" "$uv" sync --project "$APPDIR/src" --frozen --no-dev \
        --no-editable --compile-bytecode "$@"
    if [ "$torch_build" = cpu ]; then
        version=$(locked_version torch "$source_dir/uv.lock")
        audio_version=$(locked_version torchaudio "$source_dir/uv.lock")
        if [ -z "$version" ] || [ -z "$audio_version" ]; then
            die "uv.lock names no torch or torchaudio version"
        fi
        # --no-deps: the sync installed torch's other dependencies from the lock.
        # --no-config: the project's [tool.uv] settings are for the sync, not this step.
        run "$uv" pip install --no-config --python "$ENVDIR/bin/python" --reinstall --no-deps --compile-bytecode \
            --index-url "$TORCH_CPU_INDEX" "torch==$version+cpu" "torchaudio==$audio_version+cpu" ||
            die "could not install torch's CPU-only build from $TORCH_CPU_INDEX (see above); run this again," \
                "or pass --torch cuda for PyPI's build (4.1 GB)"
    fi
    if [ "$dry" = 0 ]; then
        printf 'build=%s\nreason=%s\n' "$torch_build" "$torch_reason" >"$build_file"
    fi
}

# Whether this machine has an NVIDIA GPU: its driver, nvidia-smi, or the PCI bus (a card without its driver yet).
have_nvidia_gpu() {
    if [ -n "$(ls /proc/driver/nvidia/gpus 2>/dev/null)" ]; then
        nvidia_found="the NVIDIA driver reports a GPU"
    elif have nvidia-smi && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
        nvidia_found="nvidia-smi lists a GPU"
    elif have lspci && lspci -n 2>/dev/null | grep -Eq ' 03(00|02): 10de:'; then
        nvidia_found="an NVIDIA display controller is on the PCI bus"
    else
        return 1
    fi
}

# Sets torch_build (cpu, cuda, or pypi where the platform has no choice) and torch_reason.
choose_torch() {
    if [ "$(uname -s)" != Linux ] || [ "$(uname -m)" != x86_64 ]; then
        torch_build=pypi
        torch_reason="PyPI's build is the only one for $(uname -s) $(uname -m)"
        [ "$torch" = auto ] || say "note: --torch $torch is for Linux on x86-64; using PyPI's torch"
    elif [ "$torch" != auto ]; then
        torch_build=$torch
        torch_reason="asked for with --torch $torch"
    elif have_nvidia_gpu; then
        torch_build=cuda
        torch_reason=$nvidia_found
    else
        torch_build=cpu
        torch_reason="no NVIDIA GPU found (--torch cuda installs the CUDA build anyway)"
    fi
    say "torch build: $torch_build ($torch_reason)"
}

# The version of a package in uv.lock (the first entry of that name).
locked_version() { # locked_version NAME LOCK
    awk -v name="$1" '
        /^\[\[package\]\]/ { inside = 0 }
        $0 == "name = \"" name "\"" { inside = 1; next }
        inside && /^version = / { gsub(/"/, "", $3); print $3; exit }
    ' "$2"
}

# The packages torch depends on only on Linux x86-64: its CUDA libraries and triton.
cuda_packages() { # cuda_packages LOCK
    awk '
        /^\[\[package\]\]/ { inside = 0; deps = 0 }
        $0 == "name = \"torch\"" { inside = 1 }
        inside && /^dependencies = \[/ { deps = 1; next }
        inside && deps && /^\]/ { deps = 0 }
        inside && deps && /platform_machine == .x86_64. and sys_platform == .linux./ {
            match($0, /name = "[^"]*"/); print substr($0, RSTART + 8, RLENGTH - 9)
        }
    ' "$1"
}

# A Speech Dispatcher module written before the command line moved to cli/ runs
# `-m chatterbox_tray.ipc.cli`, which no longer exists: every message would fail unheard.
# Point it at the new module (its arguments are the same); `chatterbox-tray speechd
# install` rewrites the whole file (voices added since, the speaking rate).
update_speechd_module() {
    if [ -n "$D" ] || [ "$dry" = 1 ] || [ ! -f "$SPEECHD_MODULE" ]; then
        return 0
    fi
    if grep -qF "$ENVDIR/" "$SPEECHD_MODULE" && grep -qF "chatterbox_tray.ipc.cli" "$SPEECHD_MODULE"; then
        sed 's/chatterbox_tray\.ipc\.cli/chatterbox_tray.cli.main/g' "$SPEECHD_MODULE" >"$SPEECHD_MODULE.tmp.$$" &&
            mv -f "$SPEECHD_MODULE.tmp.$$" "$SPEECHD_MODULE"
        say "updated $SPEECHD_MODULE: it ran chatterbox_tray.ipc.cli, which moved to chatterbox_tray.cli.main" \
            "(run chatterbox-tray speechd install to write it anew)"
    fi
}

install_commands() {
    for name in $COMMANDS; do
        target=$BINDIR/$name
        if [ -e "$D$target" ] && ! grep -qF "$MARKER" "$D$target" 2>/dev/null && [ "$force" = 0 ]; then
            die "$target exists and was not written by this installer; remove it or pass --force"
        fi
        printf '#!/bin/sh\n%s\nexec %s "$@"\n' "$MARKER" "$(sh_quote "$ENVDIR/bin/$name")" | put 755 "$target"
    done
}

do_install() {
    for file in "$APP.desktop" "autostart/$APP.desktop" "$SERVICE" "$APPSTREAM_ID.metainfo.xml" \
        "icons/hicolor/scalable/apps/$APP.svg"; do
        [ -f "$here/$file" ] || die "$here/$file is missing"
    done
    if [ -n "$python_env" ] && [ "$dry" = 0 ]; then
        for name in $COMMANDS; do
            [ -x "$python_env/bin/$name" ] || die "$python_env/bin/$name is missing: is chatterbox-tray installed there?"
        done
    fi
    if [ "$make_env" = 1 ]; then
        make_environment
        if [ "$dry" = 0 ] && [ ! -x "$ENVDIR/bin/chatterbox-tray-gui" ]; then
            die "uv finished but $ENVDIR/bin/chatterbox-tray-gui is missing"
        fi
    fi

    install_commands
    update_speechd_module

    # Handed to awk through the environment, so no character in a path needs escaping twice.
    EXEC_chatterbox_tray=$(desktop_exec_path "$BINDIR/chatterbox-tray")
    EXEC_chatterbox_tray_daemon=$(desktop_exec_path "$BINDIR/chatterbox-tray-daemon")
    EXEC_chatterbox_tray_gui=$(desktop_exec_path "$BINDIR/chatterbox-tray-gui")
    export EXEC_chatterbox_tray EXEC_chatterbox_tray_daemon EXEC_chatterbox_tray_gui
    render_desktop "$here/$APP.desktop" | put 644 "$DESKTOP_FILE"
    if [ "$autostart" = 1 ]; then
        render_desktop "$here/autostart/$APP.desktop" | put 644 "$AUTOSTART_FILE"
    fi

    (cd "$here/icons/hicolor" && find . -type f -name "$APP.*" | sort) | while read -r icon; do
        put 644 "$ICON_DIR/${icon#./}" <"$here/icons/hicolor/$icon"
    done
    put 644 "$METAINFO_FILE" <"$here/$APPSTREAM_ID.metainfo.xml"

    exec_start=$(systemd_exec_path "$BINDIR/chatterbox-tray-daemon")
    EXEC_START=$exec_start awk '/^ExecStart=/ { print "ExecStart=" ENVIRON["EXEC_START"]; next } { print }' \
        "$here/$SERVICE" | put 644 "$UNIT_FILE"

    refresh_caches
    if user_systemd; then
        run systemctl --user daemon-reload
        if [ "$enable_service" = 1 ]; then
            run systemctl --user enable --now "$SERVICE"
        fi
    elif [ "$enable_service" = 1 ]; then
        if [ -n "$D" ]; then
            say "note: DESTDIR is set, so the service was not enabled"
        else
            die "cannot reach your systemd user manager; run later: systemctl --user enable --now $SERVICE"
        fi
    fi

    say "Chatterbox Tray is installed: start it from your applications menu or with chatterbox-tray-gui."
    case ":$PATH:" in
        *":$BINDIR:"*) ;;
        *) say "note: $BINDIR is not on your PATH; add it to use the commands from a terminal." ;;
    esac
}

# --- uninstall ---------------------------------------------------------------

# The environment this installer's chatterbox-tray command runs (install_commands writes its last line).
wrapper_env() {
    grep -qF "$MARKER" "$BINDIR/chatterbox-tray" 2>/dev/null || return 0
    sed -n "s|^exec '\(.*\)/bin/chatterbox-tray' \"\$@\"\$|\1|p" "$BINDIR/chatterbox-tray" | head -n 1
}

# Our lines out of a speechd.conf, as `chatterbox-tray speechd uninstall` takes them out: the block
# between "# >>> chatterbox-tray" and "# <<< chatterbox-tray" (and the blank line before it), and
# the lines it turned off turned on again.
strip_speechd_block() { # strip_speechd_block FILE
    awk '
        index($0, "# >>> chatterbox-tray") == 1 { inside = 1; held = 0; next }
        inside { if ($0 == "# <<< chatterbox-tray") inside = 0; next }
        held { print ""; held = 0 }
        $0 == "" { held = 1; next }
        index($0, "#chatterbox-tray-off# ") == 1 { $0 = substr($0, 23) }
        { print }
        END { if (held) print "" }
    ' "$1"
}

# Speech Dispatcher's module, where it runs this installation's commands: `chatterbox-tray speechd
# uninstall` removes it and our lines in speechd.conf (and reloads a running speech-dispatcher);
# where that command cannot run, the same is done here.
remove_speechd_module() {
    [ -z "$D" ] || return 0
    [ -f "$SPEECHD_MODULE" ] || return 0
    # The environment our commands run: ours, or the --python-env they were installed with.
    module_env=
    for candidate in "$ENVDIR" "$(wrapper_env)"; do
        if [ -n "$candidate" ] && grep -qF "$candidate/" "$SPEECHD_MODULE"; then
            module_env=$candidate
        fi
    done
    if [ -z "$module_env" ]; then
        say "kept $SPEECHD_MODULE: it runs another copy of Chatterbox Tray (its chatterbox-tray speechd uninstall removes it)"
        return 0
    fi
    if [ "$dry" = 1 ]; then
        echo "+ $module_env/bin/chatterbox-tray speechd uninstall"
        return 0
    fi
    if [ -x "$module_env/bin/chatterbox-tray" ]; then
        "$module_env/bin/chatterbox-tray" speechd uninstall || true
    fi
    [ -f "$SPEECHD_MODULE" ] || return 0
    remove "$SPEECHD_MODULE"
    if [ -f "$SPEECHD_DIR/speechd.conf" ] && grep -q '^# >>> chatterbox-tray' "$SPEECHD_DIR/speechd.conf"; then
        strip_speechd_block "$SPEECHD_DIR/speechd.conf" >"$SPEECHD_DIR/speechd.conf.tmp.$$" &&
            mv -f "$SPEECHD_DIR/speechd.conf.tmp.$$" "$SPEECHD_DIR/speechd.conf"
        say "removed Chatterbox Tray's lines from $SPEECHD_DIR/speechd.conf"
    fi
    rmdir "$SPEECHD_DIR/modules" 2>/dev/null || true
}

do_uninstall() {
    if user_systemd; then
        run systemctl --user disable --now "$SERVICE" >/dev/null 2>&1 || true
    fi
    # A daemon the tray app or the CLI started runs outside systemd; ask it to stop.
    if [ -z "$D" ] && [ "$dry" = 0 ] && grep -qF "$MARKER" "$BINDIR/chatterbox-tray" 2>/dev/null; then
        if have timeout; then
            timeout 20 "$BINDIR/chatterbox-tray" --no-start shutdown >/dev/null 2>&1 || true
        else
            "$BINDIR/chatterbox-tray" --no-start shutdown >/dev/null 2>&1 || true
        fi
    fi

    remove_speechd_module

    for name in $COMMANDS; do
        if grep -qF "$MARKER" "$D$BINDIR/$name" 2>/dev/null || [ "$force" = 1 ]; then
            remove "$BINDIR/$name"
        elif [ -e "$D$BINDIR/$name" ]; then
            say "kept $BINDIR/$name: this installer did not write it"
        fi
    done
    remove "$DESKTOP_FILE" "$AUTOSTART_FILE" "$METAINFO_FILE" "$UNIT_FILE"
    for icon in "$D$ICON_DIR"/*/apps/"$APP".png "$D$ICON_DIR"/*/apps/"$APP".svg; do
        if [ -e "$icon" ]; then
            remove "${icon#"$D"}"
        fi
    done
    # The environment and its copy of the source; a --python-env is not ours to remove.
    remove "$APPDIR"
    if [ "$purge" = 1 ]; then
        remove "$DATA_HOME/$APP" "$CONFIG_HOME/$APP" "$CACHE_HOME/$APP" "$STATE_HOME/$APP"
    fi
    [ "$dry" = 1 ] || rmdir "$D$SHAREDIR/$APP" 2>/dev/null || true

    refresh_caches
    if user_systemd; then
        run systemctl --user daemon-reload
    fi
    if [ "$purge" = 1 ]; then
        say "Chatterbox Tray is uninstalled, with its voices, settings, cache and logs."
    else
        say "Chatterbox Tray is uninstalled. Your voices and settings are kept in $DATA_HOME/$APP and" \
            "$CONFIG_HOME/$APP (the cache in $CACHE_HOME/$APP); --uninstall --purge removes them."
    fi
    say "uv's package cache, shared with other projects, stays (the packages it downloaded, up to several GB):" \
        "\`uv cache clean\` empties it."
}

if [ "$action" = install ]; then
    do_install
else
    do_uninstall
fi
if [ "$dry" = 1 ]; then
    say "(dry run: nothing was changed)"
fi
