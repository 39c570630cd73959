"""Fetch a uv binary for macOS from uv's wheel on PyPI, checked against PyPI's SHA-256.

Standard library only, so any python3 runs it (macOS's own, from the Command
Line Tools, included). build-app.sh calls it; by hand:

    python3 packaging/macos/fetch_uv.py --version 0.13.9 --arch arm64 --dest build/uv
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import stat
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

DEFAULT_VERSION = "0.13.9"
#: PyPI's JSON simple index (PEP 691): every file of every release, with its SHA-256.
INDEX = "https://pypi.org/simple/uv/"
ACCEPT = "application/vnd.pypi.simple.v1+json"


def pick_wheel(files: list[dict], version: str, arch: str) -> dict:
    """The index entry that is uv ``version``'s macOS wheel for ``arch`` (arm64 or x86_64)."""
    pattern = re.compile(rf"^uv-{re.escape(version)}-py3-none-macosx_\d+_\d+_{re.escape(arch)}\.whl$")
    matches = [f for f in files if pattern.match(f["filename"]) and not f.get("yanked")]
    if len(matches) != 1:
        raise SystemExit(f"expected one macOS {arch} wheel of uv {version} on PyPI, found {len(matches)}")
    return matches[0]


def extract_uv(wheel: Path, dest: Path) -> Path:
    """Copy the ``uv`` executable out of a wheel into ``dest``; return its path."""
    with zipfile.ZipFile(wheel) as archive:
        members = [n for n in archive.namelist() if re.fullmatch(r"uv-[^/]+\.data/scripts/uv", n)]
        if len(members) != 1:
            raise SystemExit(f"no single uv executable inside {wheel.name}: {members}")
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / "uv"
        target.write_bytes(archive.read(members[0]))
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return target


def fetch(version: str, arch: str, dest: Path) -> Path:
    """Download, verify and unpack uv ``version`` for macOS ``arch``."""
    request = urllib.request.Request(INDEX, headers={"Accept": ACCEPT})
    with urllib.request.urlopen(request, timeout=60) as response:
        index = json.load(response)
    wheel = pick_wheel(index["files"], version, arch)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / wheel["filename"]
        digest = hashlib.sha256()
        with urllib.request.urlopen(wheel["url"], timeout=300) as response, path.open("wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != wheel["hashes"]["sha256"]:
            raise SystemExit(f"SHA-256 mismatch for {wheel['filename']}")
        return extract_uv(path, dest)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=DEFAULT_VERSION, help=f"uv version (default {DEFAULT_VERSION})")
    parser.add_argument("--arch", default="arm64", choices=("arm64", "x86_64"))
    parser.add_argument("--dest", type=Path, required=True, help="folder to put the uv executable in")
    args = parser.parse_args(argv)
    target = fetch(args.version, args.arch, args.dest)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
