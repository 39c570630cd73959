#!/bin/sh
# Build "Chatterbox Tray.app" (and optionally a .dmg) from this checkout.
#
#   packaging/macos/build-app.sh [--out DIR] [--uv PATH | --fetch-uv [VERSION] | --no-uv]
#                                [--version X.Y.Z] [--sign IDENTITY] [--dmg]
#
#   --out DIR        where the bundle goes (default: <repo>/dist)
#   --uv PATH        bundle this uv executable (an Apple silicon build)
#   --fetch-uv [V]   download uv V (default 0.13.9) for arm64 from PyPI and bundle it
#   --no-uv          bundle no uv: the app then uses the one on the user's PATH
#                    (the default when neither --uv nor --fetch-uv is given)
#   --version V      the bundle's version (default: pyproject.toml's)
#   --sign ID        codesign the bundle with this identity ("-" for ad hoc); macOS only
#   --dmg            also make <out>/chatterbox-tray-<version>.dmg with hdiutil; macOS only
#
# The bundle holds the project source and small shell scripts, no Python: at
# first launch (or from install.sh) the app has uv build its environment under
# ~/Library/Application Support/chatterbox-tray/runtime. Building the bundle
# itself works on Linux too (the tests do it); --sign and --dmg need macOS.
# shellcheck shell=sh
set -eu

here=$(cd "$(dirname "$0")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
out="$repo/dist"
uv_source=""
fetch_version=""
version=""
sign=""
dmg=0
default_uv_version=0.13.9

while [ $# -gt 0 ]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        --uv) uv_source=$2; shift 2 ;;
        --fetch-uv)
            fetch_version=$default_uv_version
            shift
            case ${1:-} in [0-9]*) fetch_version=$1; shift ;; esac
            ;;
        --no-uv) uv_source=""; fetch_version=""; shift ;;
        --version) version=$2; shift 2 ;;
        --sign) sign=$2; shift 2 ;;
        --dmg) dmg=1; shift ;;
        -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "build-app.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

if [ -z "$version" ]; then
    version=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$repo/pyproject.toml" | head -n 1)
fi
[ -n "$version" ] || { echo "build-app.sh: no version in pyproject.toml" >&2; exit 1; }

sha256() {
    if command -v shasum >/dev/null 2>&1; then shasum -a 256; else sha256sum; fi
}

app="$out/Chatterbox Tray.app"
contents="$app/Contents"
resources="$contents/Resources"
rm -rf "$app"
mkdir -p "$contents/MacOS" "$resources/app"

# The project: what `uv sync` needs to build and install chatterbox-tray.
cp "$repo/pyproject.toml" "$repo/uv.lock" "$repo/README.md" "$resources/app/"
# The package folders are pyproject.toml's [tool.setuptools] package-dir, the one
# list of them: a folder added there is shipped without touching this script.
package_dirs=$(sed -n 's/^package-dir = {\(.*\)}$/\1/p' "$repo/pyproject.toml" | grep -o '= "[^"]*"' | sed 's/^= "\(.*\)"$/\1/')
if [ -z "$package_dirs" ]; then
    echo "build-app.sh: no package-dir in $repo/pyproject.toml" >&2
    exit 1
fi
for package in $package_dirs; do
    (cd "$repo" && find "$package" -name '*.py' -not -path '*/__pycache__/*') | while IFS= read -r file; do
        mkdir -p "$resources/app/$(dirname "$file")"
        cp "$repo/$file" "$resources/app/$file"
    done
done
# The environment is rebuilt when this changes: the source's own fingerprint.
build_id=$(cd "$resources/app" && find . -type f | LC_ALL=C sort | while IFS= read -r file; do
    printf '%s  ' "$file"
    sha256 <"$file"
done | sha256 | cut -c1-64)
printf '%s %s\n' "$version" "$build_id" >"$resources/app/BUILD-ID"

# The scripts and the bundle's metadata.
cp "$here/launcher.sh" "$contents/MacOS/chatterbox-tray"
for script in common.sh setup-env.sh daemon-agent.sh install.sh uninstall.sh; do
    cp "$here/$script" "$resources/$script"
done
cp "$here/org.chatterbox-tray.daemon.plist.in" "$here/org.chatterbox-tray.gui.plist.in" "$resources/"
chmod 755 "$contents/MacOS/chatterbox-tray" "$resources/setup-env.sh" "$resources/daemon-agent.sh" \
    "$resources/install.sh" "$resources/uninstall.sh"
sed "s/@VERSION@/$version/g" "$here/Info.plist.in" >"$contents/Info.plist"
printf 'APPL????' >"$contents/PkgInfo"
cp "$here/chatterbox-tray.icns" "$resources/chatterbox-tray.icns"

# uv, if asked for.
if [ -n "$fetch_version" ]; then
    python3 "$here/fetch_uv.py" --version "$fetch_version" --arch arm64 --dest "$resources/bin" >/dev/null
elif [ -n "$uv_source" ]; then
    mkdir -p "$resources/bin"
    cp "$uv_source" "$resources/bin/uv"
    chmod 755 "$resources/bin/uv"
fi

if [ -n "$sign" ]; then
    codesign --force --deep --sign "$sign" "$app"
fi
echo "built $app ($version)"

if [ "$dmg" = 1 ]; then
    staging=$(mktemp -d)
    trap 'rm -rf "$staging"' EXIT
    cp -R "$app" "$staging/"
    ln -s /Applications "$staging/Applications"
    dmg_path="$out/chatterbox-tray-$version.dmg"
    rm -f "$dmg_path"
    hdiutil create -volname "Chatterbox Tray" -srcfolder "$staging" -format UDZO -ov "$dmg_path" >/dev/null
    echo "built $dmg_path"
fi
