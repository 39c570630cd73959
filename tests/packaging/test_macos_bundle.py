"""macOS packaging: the app bundle, its scripts and the launchd agents, exercised on Linux.

macOS itself (launchctl, LaunchServices, MPS, codesign, hdiutil, iconutil) is not
here. What a Linux machine can do is done for real:

- build-app.sh builds the bundle into a temporary folder; its layout, Info.plist
  and the files it ships are checked against pyproject.toml and uv.lock;
- install.sh installs it into a temporary HOME (no launchctl) and the launchd
  plists it writes are loaded with plistlib and compared with gui/autostart.py;
- the bundle's own launcher builds a real environment with uv (from uv's cache,
  with this interpreter in place of a downloaded one) and runs the tray app's
  ``--help`` through it; a second launch reuses it;
- daemon-agent.sh runs under /bin/sh with a stand-in daemon to check the exit
  statuses launchd sees, SIGTERM forwarding and the MPS fallback variable;
- uninstall.sh keeps or removes the user's data as asked;
- every script passes ``sh -n`` and shellcheck (Debian's ``shellcheck``).
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import plistlib
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli before 3.11
    import tomli as tomllib

from chatterbox_tray.gui import autostart

ROOT = Path(__file__).resolve().parents[2]
MAC = ROOT / "packaging" / "macos"
BUILD = MAC / "build-app.sh"
APP_NAME = "Chatterbox Tray.app"
SCRIPTS = sorted(MAC.glob("*.sh"))

sys.path.insert(0, str(MAC))
import fetch_uv  # noqa: E402

sys.path.remove(str(MAC))


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


#: The package folders: pyproject.toml's package-dir, which build-app.sh reads too.
PACKAGE_DIRS = tuple(pyproject()["tool"]["setuptools"]["package-dir"].values())


def run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 120, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, **kwargs)


def build_app(out: Path, repo: Path = ROOT, *extra: str) -> Path:
    result = run(["sh", str(repo / "packaging" / "macos" / "build-app.sh"), "--out", str(out), *extra])
    assert result.returncode == 0, result.stdout + result.stderr
    app = out / APP_NAME
    assert f"built {app}" in result.stdout
    return app


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_app(tmp_path_factory.mktemp("dist"))


def home_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CBT_", "UV_", "HF_", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), **extra)
    return env


# --- the bundle ---------------------------------------------------------------------------------


def test_bundle_layout(app: Path) -> None:
    contents = app / "Contents"
    resources = contents / "Resources"
    assert (contents / "PkgInfo").read_text() == "APPL????"
    for path in (contents / "MacOS" / "chatterbox-tray", *(resources / s for s in ("setup-env.sh", "daemon-agent.sh"))):
        assert path.stat().st_mode & stat.S_IXUSR, f"{path} is not executable"
    for name in ("common.sh", "install.sh", "uninstall.sh", "org.chatterbox-tray.daemon.plist.in"):
        assert (resources / name).is_file(), name
    shipped = {p.relative_to(resources / "app").as_posix() for p in (resources / "app").rglob("*") if p.is_file()}
    in_repo = {
        p.relative_to(ROOT).as_posix()
        for d in PACKAGE_DIRS
        for p in (ROOT / d).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    expected = in_repo | {"pyproject.toml", "uv.lock", pyproject()["project"]["readme"], "BUILD-ID"}
    assert shipped == expected
    # Every package setuptools builds has its modules there.
    for package, folder in pyproject()["tool"]["setuptools"]["package-dir"].items():
        assert any(s.startswith(f"{folder}/") for s in shipped), package
    assert not (resources / "bin").exists(), "no uv was asked for"


def test_info_plist(app: Path) -> None:
    info = plistlib.loads((app / "Contents" / "Info.plist").read_bytes())
    assert info["CFBundlePackageType"] == "APPL"
    assert info["LSUIElement"] is True, "a menu-bar app: no Dock icon, no menu bar of its own"
    version = pyproject()["project"]["version"]
    assert info["CFBundleShortVersionString"] == info["CFBundleVersion"] == version
    exe = app / "Contents" / "MacOS" / info["CFBundleExecutable"]
    assert exe.is_file() and os.access(exe, os.X_OK)
    assert (app / "Contents" / "Resources" / info["CFBundleIconFile"]).is_file()
    assert info["CFBundleIdentifier"].startswith("org.chatterbox-tray.")
    assert info["NSMicrophoneUsageDescription"], "the Voices page records from the microphone"
    # What uv.lock can install on a Mac decides the architecture and the minimum macOS.
    lock = (ROOT / "uv.lock").read_text(encoding="utf-8")
    assert re.search(r"/torch-[\d.]+-cp311-none-macosx_\d+_\d+_arm64\.whl", lock)
    assert not re.search(r"/torch-[\d.]+-cp311-none-macosx_\d+_\d+_x86_64\.whl", lock)
    assert info["LSArchitecturePriority"] == ["arm64"]
    qt = re.findall(r"/pyside6_essentials-[\d.]+-cp\d+-abi3-macosx_(\d+)_(\d+)_(?:universal2|arm64)\.whl", lock)
    assert qt, "no macOS wheel of PySide6 in uv.lock"
    needed = max((int(a), int(b)) for a, b in qt)
    have = tuple(int(x) for x in info["LSMinimumSystemVersion"].split("."))
    assert have >= needed, f"PySide6's wheel needs macOS {needed}, Info.plist says {have}"


def test_icns(app: Path, tmp_path: Path) -> None:
    from PIL import Image

    def check(path: Path) -> None:
        with Image.open(path) as image:
            assert image.format == "ICNS"
            assert image.size == (1024, 1024)
            assert {(16, 16, 2), (128, 128, 1), (256, 256, 1), (512, 512, 2)} <= set(image.info["sizes"])

    check(app / "Contents" / "Resources" / "chatterbox-tray.icns")
    out = tmp_path / "icon.icns"
    result = run([sys.executable, str(MAC / "make_icns.py"), "-o", str(out)], env={**os.environ})
    assert result.returncode == 0, result.stderr
    check(out)


def copy_repo(dest: Path) -> Path:
    """The parts of the checkout build-app.sh reads, to build from an edited copy."""
    dest.mkdir()
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for folder in (*PACKAGE_DIRS, "packaging/macos"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_build_id_follows_the_source(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    first = (build_app(tmp_path / "a", repo) / "Contents/Resources/app/BUILD-ID").read_text()
    again = (build_app(tmp_path / "b", repo) / "Contents/Resources/app/BUILD-ID").read_text()
    assert first == again, "the same source must reuse the environment"
    with (repo / "daemon" / "__init__.py").open("a") as f:
        f.write("# edited\n")
    edited = (build_app(tmp_path / "c", repo) / "Contents/Resources/app/BUILD-ID").read_text()
    assert edited != first
    (repo / "daemon" / "__init__.py").write_text((ROOT / "daemon" / "__init__.py").read_text())
    (repo / "gui" / "renamed.py").write_bytes((repo / "gui" / "icons.py").read_bytes())
    (repo / "gui" / "icons.py").unlink()
    renamed = (build_app(tmp_path / "d", repo) / "Contents/Resources/app/BUILD-ID").read_text()
    assert renamed != first, "a renamed module is a different source"
    assert re.fullmatch(rf"{re.escape(pyproject()['project']['version'])} [0-9a-f]{{64}}\n", first)


def test_build_bundles_a_given_uv(tmp_path: Path) -> None:
    fake = tmp_path / "uv"
    fake.write_text("#!/bin/sh\necho fake uv\n")
    app = build_app(tmp_path / "out", ROOT, "--uv", str(fake), "--version", "9.9.9")
    bundled = app / "Contents" / "Resources" / "bin" / "uv"
    assert bundled.read_text() == fake.read_text() and os.access(bundled, os.X_OK)
    assert plistlib.loads((app / "Contents" / "Info.plist").read_bytes())["CFBundleVersion"] == "9.9.9"


# --- install.sh and the launchd agents ----------------------------------------------------------


@pytest.fixture
def installed(app: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The app installed into tmp/Apps for a HOME whose path needs XML escaping."""
    home = tmp_path / "home & <co>"
    home.mkdir()
    install = app / "Contents" / "Resources" / "install.sh"
    flags = ["--no-setup", "--no-launchctl", "--autostart"]
    result = run(["sh", str(install), "--prefix", str(tmp_path / "Apps"), *flags], env=home_env(home))
    assert result.returncode == 0, result.stdout + result.stderr
    return home, tmp_path / "Apps" / APP_NAME


def test_daemon_agent_plist(installed: tuple[Path, Path]) -> None:
    home, app = installed
    path = home / "Library" / "LaunchAgents" / "org.chatterbox-tray.daemon.plist"
    agent = plistlib.loads(path.read_bytes())
    assert agent["Label"] == path.name.removesuffix(".plist")
    program = agent["ProgramArguments"]
    assert program[0] == "/bin/sh" and Path(program[1]) == app / "Contents" / "Resources" / "daemon-agent.sh"
    assert Path(program[1]).is_file(), "the agent must run a file the installed bundle has"
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}, "restart after a crash only"
    assert agent["EnvironmentVariables"]["PYTORCH_ENABLE_MPS_FALLBACK"] == "1"
    assert agent["LimitLoadToSessionType"] == "Aqua"
    logs = home / "Library" / "Logs" / "chatterbox-tray"
    assert Path(agent["StandardOutPath"]).parent == logs == Path(agent["StandardErrorPath"]).parent
    assert logs.is_dir(), "launchd does not create the folder of its log file"
    # The folder the daemon logs to itself, by platformdirs on a Mac.
    import platformdirs.macos

    real_home = os.environ.get("HOME")
    try:
        os.environ["HOME"] = str(home)
        assert Path(platformdirs.macos.MacOS("chatterbox-tray", appauthor=False).user_log_dir) == logs
    finally:
        if real_home is not None:
            os.environ["HOME"] = real_home


def test_gui_agent_is_the_settings_page_one(installed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    home, app = installed
    monkeypatch.setenv("HOME", str(home))
    path = autostart._launch_agent()
    assert path.is_file(), f"install.sh --autostart must write {path}, the file the Settings page looks for"
    agent = plistlib.loads(path.read_bytes())
    assert agent["Label"] == f"org.{autostart.APP_ID}.gui" == path.name.removesuffix(".plist")
    assert agent["RunAtLoad"] is True
    assert agent["ProgramArguments"] == ["/usr/bin/open", "-a", str(app), "--args", "--minimized"]
    assert (app / "Contents" / "Info.plist").is_file()


def test_install_without_autostart_or_agent(app: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    cmd = ["sh", str(app / "Contents/Resources/install.sh"), "--prefix", str(tmp_path / "A"), "--no-setup"]
    result = run([*cmd, "--no-launchctl", "--no-daemon-agent"], env=home_env(home))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "A" / APP_NAME / "Contents" / "MacOS" / "chatterbox-tray").is_file()
    assert not (home / "Library" / "LaunchAgents").exists() or not any((home / "Library" / "LaunchAgents").iterdir())
    bad = run([*cmd, "--frobnicate"], env=home_env(home))
    assert bad.returncode == 2 and "unknown argument" in bad.stderr


# --- the launcher, for real ---------------------------------------------------------------------


def uv_or_skip() -> str:
    uv = shutil.which("uv")
    if not uv:
        pytest.skip("uv is not on the PATH")
    return uv


def test_launcher_builds_the_environment_and_starts_the_app(installed: tuple[Path, Path], tmp_path: Path) -> None:
    """The bundle's executable makes a real environment with uv, then runs chatterbox-tray-gui in it.

    Offline stand-ins: this interpreter instead of a uv-managed Python (whose
    download needs GitHub), and uv's own cache (already full of the locked wheels).
    """
    uv = uv_or_skip()
    home, app = installed
    cache = run([uv, "cache", "dir"]).stdout.strip()
    env = home_env(home, CBT_UV=uv, CBT_PYTHON=sys.executable, UV_CACHE_DIR=cache, UV_COMPILE_BYTECODE="0")
    launcher = app / "Contents" / "MacOS" / "chatterbox-tray"
    result = run([str(launcher), "--help"], env=env, timeout=600)
    support = home / "Library" / "Application Support" / "chatterbox-tray"
    log = home / "Library" / "Logs" / "chatterbox-tray" / "setup.log"
    assert result.returncode == 0, result.stderr + (log.read_text() if log.exists() else "")
    assert "usage: chatterbox-tray-gui" in result.stdout and "--minimized" in result.stdout
    runtime = support / "runtime"
    bundle_id = (app / "Contents" / "Resources" / "app" / "BUILD-ID").read_text()
    assert (runtime / "BUILD-ID").read_text() == bundle_id
    # Installed as a package (not an editable link back into the bundle).
    site = list((runtime / "venv" / "lib").glob("python3.*/site-packages"))
    assert site and (site[0] / "chatterbox_tray" / "gui" / "app.py").is_file()
    assert not list(site[0].glob("__editable__*")), "the environment must not point into the bundle"
    # Only the runtime folder: the app's own data folders are left to the app.
    assert sorted(p.name for p in support.iterdir()) == ["runtime"]

    # A second start with the same bundle does not run uv at all.
    calls = tmp_path / "uv-calls"
    fake_uv = tmp_path / "fake-uv"
    fake_uv.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\nexit 1\n')
    fake_uv.chmod(0o755)
    env_fake = {**env, "CBT_UV": str(fake_uv)}
    again = run([str(launcher), "--help"], env=env_fake)
    assert again.returncode == 0 and not calls.exists()
    # A different bundle (an update) does: here the stand-in fails, and so does the launch, saying why.
    (runtime / "BUILD-ID").write_text("0.0.0 old\n")
    failed = run([str(launcher), "--help"], env=env_fake)
    assert failed.returncode == 1 and "usage:" not in failed.stdout
    assert calls.read_text().startswith(f"sync --project {runtime / 'src'} --frozen --no-dev --no-editable")
    assert "Setting up the Python environment failed" in failed.stderr


def test_launcher_without_uv_says_so(app: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = home_env(home, PATH="/usr/bin:/bin")
    if any(Path(d, "uv").exists() for d in ("/usr/bin", "/bin", "/opt/homebrew/bin", "/usr/local/bin")):
        pytest.skip("a uv is installed system-wide")
    result = run([str(app / "Contents" / "MacOS" / "chatterbox-tray")], env=env)
    assert result.returncode == 1 and "uv was not found" in result.stderr


# --- daemon-agent.sh ----------------------------------------------------------------------------

STAND_IN_DAEMON = """#!/bin/sh
# Stands in for the venv's python: records how it was called, then behaves as told.
{{ echo "args=$*"; echo "mps=${{PYTORCH_ENABLE_MPS_FALLBACK:-}}"; }} > "{record}"
case "${{FAKE_DAEMON:-0}}" in
    wait) trap 'echo term >> "{record}"; exit 0' TERM; echo ready >> "{record}"; while :; do sleep 0.1; done ;;
    *) exit "$FAKE_DAEMON" ;;
esac
"""


@pytest.fixture
def agent_env(app: Path, tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    """A runtime that setup-env.sh finds up to date, whose python is the stand-in daemon."""
    home = tmp_path / "home"
    runtime = home / "Library" / "Application Support" / "chatterbox-tray" / "runtime"
    (runtime / "venv" / "bin").mkdir(parents=True)
    shutil.copy(app / "Contents" / "Resources" / "app" / "BUILD-ID", runtime / "BUILD-ID")
    gui = runtime / "venv" / "bin" / "chatterbox-tray-gui"
    gui.write_text("#!/bin/sh\n")
    record = tmp_path / "record"
    python = runtime / "venv" / "bin" / "python"
    python.write_text(STAND_IN_DAEMON.format(record=record))
    for exe in (gui, python):
        exe.chmod(0o755)
    return app / "Contents" / "Resources" / "daemon-agent.sh", home_env(home), record


@pytest.mark.parametrize(("daemon", "launchd_sees"), [(0, 0), (1, 1), (2, 0), (3, 0), (134, 134)])
def test_agent_exit_statuses(agent_env, daemon: int, launchd_sees: int) -> None:
    """launchd restarts on a non-zero status: "already running" (3) and "bad settings" (2) must not loop."""
    agent, env, record = agent_env
    result = run(["/bin/sh", str(agent), "--variant", "turbo"], env={**env, "FAKE_DAEMON": str(daemon)})
    assert result.returncode == launchd_sees, result.stderr
    assert record.read_text().splitlines() == ["args=-m chatterbox_tray.daemon --variant turbo", "mps=1"]


def test_agent_passes_sigterm_on(agent_env) -> None:
    agent, env, record = agent_env
    proc = subprocess.Popen(
        ["/bin/sh", str(agent)], env={**env, "FAKE_DAEMON": "wait"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while "ready" not in (record.read_text() if record.exists() else ""):
            assert time.monotonic() < deadline, "the stand-in daemon never started"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert record.read_text().splitlines()[-1] == "term", "the daemon must get launchd's SIGTERM"


def test_auto_device_prefers_mps_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent passes no --device: the daemon's "auto" must pick MPS on a Mac (CUDA first, CPU last)."""
    import torch

    from chatterbox_tray.daemon.chatterbox_engine import pick_device
    from chatterbox_tray.daemon.settings import Settings

    assert Settings().device == "auto"
    assert "--device" not in (MAC / "daemon-agent.sh").read_text().split("#")[0]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device("auto") == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto") == "cpu"


# --- uninstall.sh -------------------------------------------------------------------------------


def seed_user_data(home: Path) -> dict[str, Path]:
    lib = home / "Library"
    paths = {
        "voices": lib / "Application Support" / "chatterbox-tray" / "voices.json",
        "settings": lib / "Application Support" / "chatterbox-tray" / "settings.json",
        "cache": lib / "Caches" / "chatterbox-tray" / "conditionals" / "x.safetensors",
        "weights": home / "hf" / "hub" / "models--ResembleAI--chatterbox" / "refs" / "main",
        "turbo": home / "hf" / "hub" / "models--ResembleAI--chatterbox-turbo" / "refs" / "main",
        "other model": home / "hf" / "hub" / "models--someone--else" / "refs" / "main",
        "runtime": lib / "Application Support" / "chatterbox-tray" / "runtime" / "venv" / "bin" / "python",
    }
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    return paths


@pytest.mark.parametrize("how", ["--keep-data", "no terminal", "--purge"])
def test_uninstall(installed: tuple[Path, Path], how: str) -> None:
    home, app = installed
    paths = seed_user_data(home)
    args = [] if how == "no terminal" else [how]
    result = run(
        ["sh", str(app / "Contents/Resources/uninstall.sh"), "--prefix", str(app.parent), "--no-launchctl", *args],
        env=home_env(home, HF_HOME=str(home / "hf")),
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert not app.exists()
    assert not any((home / "Library" / "LaunchAgents").iterdir())
    assert not paths["runtime"].exists() and not paths["runtime"].parents[2].exists()
    assert paths["other model"].exists(), "another model's weights are not ours to remove"
    purged = how == "--purge"
    for name in ("voices", "settings", "cache", "weights", "turbo"):
        assert paths[name].exists() != purged, f"{name} after {how}"


# --- scripts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_as_posix_sh(script: Path) -> None:
    result = run(["sh", "-n", str(script)])
    assert result.returncode == 0, result.stderr


def test_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: apt-get install shellcheck"
    # The checker must see a real mistake before its silence means anything.
    bad = run([shellcheck, "-s", "sh", "-"], input='#!/bin/sh\nrm -rf $1/*\nif [[ -n "$x" ]]; then :; fi\n')
    assert bad.returncode != 0 and "SC2086" in bad.stdout
    result = run([shellcheck, "-x", "-s", "sh", *(s.name for s in SCRIPTS)], cwd=MAC)
    assert result.returncode == 0, result.stdout + result.stderr


def test_scripts_are_executable_in_the_repo() -> None:
    for name in ("build-app.sh", "install.sh", "uninstall.sh", "setup-env.sh", "launcher.sh", "daemon-agent.sh"):
        assert os.access(MAC / name, os.X_OK), name


# --- fetch_uv.py --------------------------------------------------------------------------------


def fake_wheel(path: Path, version: str, payload: bytes) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"uv-{version}.dist-info/METADATA", "Name: uv\n")
        archive.writestr(f"uv-{version}.data/scripts/uv", payload)
        archive.writestr(f"uv-{version}.data/scripts/uvx", b"not this one")


def test_fetch_uv_picks_and_extracts(tmp_path: Path) -> None:
    files = [
        {"filename": "uv-1.2.3-py3-none-macosx_10_12_x86_64.whl"},
        {"filename": "uv-1.2.3-py3-none-macosx_11_0_arm64.whl"},
        {"filename": "uv-1.2.30-py3-none-macosx_11_0_arm64.whl"},
        {"filename": "uv-1.2.3-py3-none-win_amd64.whl"},
        {"filename": "uv-1.2.4-py3-none-macosx_11_0_arm64.whl", "yanked": "broken"},
    ]
    assert fetch_uv.pick_wheel(files, "1.2.3", "arm64")["filename"] == "uv-1.2.3-py3-none-macosx_11_0_arm64.whl"
    assert fetch_uv.pick_wheel(files, "1.2.3", "x86_64")["filename"].endswith("x86_64.whl")
    with pytest.raises(SystemExit):
        fetch_uv.pick_wheel(files, "1.2.4", "arm64")
    wheel = tmp_path / "uv.whl"
    fake_wheel(wheel, "1.2.3", b"\xcf\xfa\xed\xfe binary")
    target = fetch_uv.extract_uv(wheel, tmp_path / "bin")
    assert target.read_bytes() == b"\xcf\xfa\xed\xfe binary" and os.access(target, os.X_OK)


def test_fetch_uv_from_pypi(tmp_path: Path) -> None:
    """The real download build-app.sh --fetch-uv makes: a Mach-O arm64 executable, hash checked."""
    import urllib.request

    try:
        urllib.request.urlopen(urllib.request.Request(fetch_uv.INDEX, method="HEAD"), timeout=20).close()
    except OSError as exc:
        pytest.skip(f"PyPI is not reachable: {exc}")
    result = run([sys.executable, str(MAC / "fetch_uv.py"), "--dest", str(tmp_path)], timeout=300)
    assert result.returncode == 0, result.stderr
    uv = tmp_path / "uv"
    head = uv.read_bytes()[:8]
    assert head[:4] == b"\xcf\xfa\xed\xfe", "not a 64-bit Mach-O"
    assert int.from_bytes(head[4:8], "little") == 0x0100000C, "not arm64 (CPU_TYPE_ARM64)"
    assert os.access(uv, os.X_OK)


def test_one_uv_version_everywhere() -> None:
    """build-app.sh, fetch_uv.py and the Windows build.ps1 bundle the same uv."""
    build_app_default = re.search(r"^default_uv_version=(\S+)$", BUILD.read_text(), flags=re.M).group(1)
    windows = re.search(r"\[string\]\$UvVersion = '([^']+)'", (ROOT / "packaging/windows/build.ps1").read_text())
    assert build_app_default == fetch_uv.DEFAULT_VERSION == windows.group(1)
