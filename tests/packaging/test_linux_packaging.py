"""Linux packaging: the files validate with the freedesktop tools, and install.sh puts them in place.

Every installer run goes into a temporary HOME with no network: ``--python-env``
points the commands at the environment running these tests, and a fake ``uv``
stands in for the real one where the test is about making the environment.
``systemctl``, ``update-desktop-database`` and ``gtk-update-icon-cache`` are fakes
that log their arguments (the real ones stay off the PATH), so a developer's
own session is never touched.

The validators are Debian's ``desktop-file-utils`` (desktop-file-validate),
``appstream`` (appstreamcli), ``systemd`` (systemd-analyze) and ``shellcheck``;
a missing one fails the test rather than skipping it.
"""

from __future__ import annotations

import os

# Before anything imports Qt: no display here.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import configparser
import re
import shlex
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli before 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
LINUX = ROOT / "packaging" / "linux"
INSTALLER = LINUX / "install.sh"
APP = "chatterbox-tray"
APPSTREAM_ID = "io.github.chatterbox_tray.ChatterboxTray"
SERVICE = "chatterbox-tray-daemon.service"
DESKTOP = LINUX / f"{APP}.desktop"
AUTOSTART = LINUX / "autostart" / f"{APP}.desktop"
UNIT = LINUX / SERVICE
METAINFO = LINUX / f"{APPSTREAM_ID}.metainfo.xml"
SVG = LINUX / "icons" / "hicolor" / "scalable" / "apps" / f"{APP}.svg"
COMMANDS = ("chatterbox-tray", "chatterbox-tray-daemon", "chatterbox-tray-gui")
#: The Debian package that provides each tool the tests run.
TOOLS = {
    "desktop-file-validate": "desktop-file-utils",
    "appstreamcli": "appstream",
    "systemd-analyze": "systemd",
    "shellcheck": "shellcheck",
}
#: Tools the installer would use that must come from the test, never from the machine.
SHADOWED = (
    "uv",
    "curl",
    "wget",
    "systemctl",
    "update-desktop-database",
    "gtk-update-icon-cache",
    # How the installer looks for an NVIDIA GPU (it picks the torch build by it).
    "nvidia-smi",
    "lspci",
)
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def tool(name: str) -> str:
    """The path of a validator, or a failure naming the Debian package to install."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install {TOOLS[name]}")
    return path


def this_env() -> Path:
    """The environment running the tests: it has the real console scripts."""
    env = Path(sys.prefix)
    if not (env / "bin" / "chatterbox-tray-gui").exists():
        pytest.fail(f"{env} has no chatterbox-tray-gui: run the tests with `uv run pytest`")
    return env


# --- parsing the files as their consumers do -------------------------------------------------


def desktop_entry(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser


def exec_argv(value: str) -> list[str]:
    """A desktop entry's Exec value as argv, per the Desktop Entry spec's quoting rules."""
    value = re.sub(r"\\(.)", lambda m: {"s": " ", "n": "\n", "t": "\t", "r": "\r"}.get(m[1], m[1]), value)
    args: list[str] = []
    current, quoted, started, i = "", False, False, 0
    while i < len(value):
        c = value[i]
        if quoted:
            if c == "\\" and i + 1 < len(value) and value[i + 1] in '"`$\\':
                current += value[i + 1]
                i += 1
            elif c == '"':
                quoted = False
            else:
                current += c
        elif c == '"':
            quoted = started = True
        elif c == " ":
            if current or started:
                args.append(current)
            current, started = "", False
        else:
            current += c
            started = True
        i += 1
    assert not quoted, f"unbalanced quotes in Exec={value!r}"
    if current or started:
        args.append(current)
    return [a.replace("%%", "%") for a in args]


def unit_entries(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit's sections; each key keeps every value it was given."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def systemd_argv(value: str, home: Path) -> list[str]:
    return [a.replace("%h", str(home)).replace("%%", "%") for a in shlex.split(value)]


# --- running the installer -------------------------------------------------------------------


def make_system_bin(farm: Path) -> Path:
    """Links to the machine's /usr/bin and /bin without uv, curl, systemctl and the cache tools."""
    farm.mkdir(parents=True, exist_ok=True)
    for folder in (Path("/usr/bin"), Path("/bin")):
        for entry in sorted(folder.iterdir()):
            link = farm / entry.name
            if entry.name not in SHADOWED and not link.exists() and os.access(entry, os.X_OK):
                link.symlink_to(entry)
    return farm


@pytest.fixture(scope="session")
def system_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_system_bin(tmp_path_factory.mktemp("system-bin"))


FAKE_TOOL = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
if [ "$(basename "$0") $*" = "systemctl --user show-environment" ] && [ -n "${{FAKE_NO_USER_MANAGER:-}}" ]; then
    exit 1
fi
exit 0
"""


@dataclass
class Sandbox:
    """A temporary HOME and the PATH the installer sees."""

    root: Path
    system_bin: Path
    fakes: Path = field(init=False)
    home: Path = field(init=False)
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.home = self.root / "home"
        self.fakes = self.root / "fake-bin"
        self.log = self.root / "calls.log"
        self.home.mkdir(parents=True)
        self.fakes.mkdir()
        self.log.touch()

    def fake(self, *names: str, script: str | None = None) -> None:
        """Put logging stand-ins for these tools first on the PATH."""
        for name in names:
            path = self.fakes / name
            path.write_text(script or FAKE_TOOL.format(log=self.log), encoding="utf-8")
            path.chmod(0o755)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "HOME": str(self.home),
            "PATH": f"{self.fakes}:{self.system_bin}",
            "LANG": "C.UTF-8",
            # The commands' daemon lives here, never in the tester's session.
            "CHATTERBOX_TRAY_HOME": str(self.root / "chatterbox-home"),
        }
        env.update(extra)
        return env

    def install(
        self, *args: str, check: bool = True, shell: str = "sh", script: Path = INSTALLER, **env: str
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [shell, str(script), *args], env=self.env(**env), capture_output=True, text=True, timeout=180
        )
        if check:
            assert result.returncode == 0, f"install.sh {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def calls(self) -> list[str]:
        return self.log.read_text(encoding="utf-8").splitlines()

    def files(self, base: Path | None = None) -> set[str]:
        base = base or self.home
        return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file() or p.is_symlink()}

    @property
    def bin(self) -> Path:
        return self.home / ".local" / "bin"

    @property
    def share(self) -> Path:
        return self.home / ".local" / "share"


@pytest.fixture
def sandbox(tmp_path: Path, system_bin: Path) -> Sandbox:
    return Sandbox(tmp_path, system_bin)


def icon_files() -> set[str]:
    """The icons the installer ships, as paths inside a hicolor folder."""
    base = LINUX / "icons" / "hicolor"
    return {str(p.relative_to(base)) for p in base.rglob(f"{APP}.*")}


def expected_files(autostart: bool) -> set[str]:
    files = {f".local/bin/{name}" for name in COMMANDS}
    files |= {
        f".local/share/applications/{APP}.desktop",
        f".local/share/metainfo/{APPSTREAM_ID}.metainfo.xml",
        f".local/share/systemd/user/{SERVICE}",
    }
    files |= {f".local/share/icons/hicolor/{icon}" for icon in icon_files()}
    if autostart:
        files.add(f".config/autostart/{APP}.desktop")
    return files


# --- the files themselves --------------------------------------------------------------------


def validate_desktop(*paths: Path) -> None:
    result = subprocess.run(
        [tool("desktop-file-validate"), *map(str, paths)], capture_output=True, text=True, timeout=60
    )
    # Not even hints: the entries should be clean.
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


def test_desktop_entries_validate() -> None:
    validate_desktop(DESKTOP, AUTOSTART)


def test_desktop_entries_agree_with_the_app() -> None:
    entry = desktop_entry(DESKTOP)["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert exec_argv(entry["Exec"]) == ["chatterbox-tray-gui"]
    assert entry["TryExec"] == "chatterbox-tray-gui"
    assert entry["Icon"] == APP
    # Wayland matches windows to entries by this name: gui/app.py calls setDesktopFileName("chatterbox-tray").
    app_source = (ROOT / "gui" / "app.py").read_text(encoding="utf-8")
    assert f'setDesktopFileName("{DESKTOP.stem}")' in app_source
    auto = desktop_entry(AUTOSTART)["Desktop Entry"]
    assert exec_argv(auto["Exec"]) == ["chatterbox-tray-gui", "--minimized"]
    assert auto["X-GNOME-Autostart-enabled"] == "true"
    # The file name the tray app's own "start with the session" setting reads and writes.
    from chatterbox_tray.gui import autostart

    assert AUTOSTART.name == f"{autostart.APP_ID}.desktop"
    assert autostart.command()[-1] == "--minimized"


def test_metainfo_validates() -> None:
    result = subprocess.run(
        [tool("appstreamcli"), "validate", "--no-net", str(METAINFO)], capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    issues = [line.strip() for line in output.splitlines() if re.match(r"\s*[EWI]: ", line)]
    # AppStream before 1.0 (Debian 12) does not know <developer>, which 1.0 asks for instead of <developer_name>.
    tolerated = [i for i in issues if i.startswith("I: ") and i.endswith("unknown-tag developer")]
    assert issues == tolerated, output


def test_metainfo_agrees_with_the_project() -> None:
    root = ET.parse(METAINFO).getroot()
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == APPSTREAM_ID == METAINFO.name.removesuffix(".metainfo.xml")
    launchable = root.find("launchable")
    assert launchable is not None and launchable.get("type") == "desktop-id"
    assert launchable.text == DESKTOP.name
    assert root.findtext("project_license") == PYPROJECT["project"]["license"]
    assert next(r.get("version") for r in root.iter("release")) == PYPROJECT["project"]["version"]
    binaries = {b.text for b in root.iter("binary")}
    assert binaries == set(PYPROJECT["project"]["scripts"]) | set(PYPROJECT["project"]["gui-scripts"]) == set(COMMANDS)
    images = [i.text or "" for i in root.iter("image")]
    assert len(images) >= 4
    prefix = "https://github.com/chatterbox-tray/chatterbox-tray/raw/main/"
    for url in images:
        assert url.startswith(prefix), url
        assert (ROOT / url.removeprefix(prefix)).is_file(), f"{url} names no file in the repo"
    assert images[0].endswith("speak.png")


def test_unit_has_the_agreed_settings() -> None:
    unit = unit_entries(UNIT)
    service = unit["Service"]
    assert service["Type"] == ["simple"]
    assert service["Restart"] == ["on-failure"]
    assert service["ExecStart"] == ["%h/.local/bin/chatterbox-tray-daemon"]
    assert "PYTHONUNBUFFERED=1" in service["Environment"]
    assert {"2", "3"} <= set(service["RestartPreventExitStatus"][0].split())
    # Another daemon serving the user is no failure: the unit ends inactive, not failed.
    assert service["SuccessExitStatus"] == ["3"]
    assert unit["Install"]["WantedBy"] == ["default.target"]


def test_installer_passes_shellcheck() -> None:
    result = subprocess.run(
        [tool("shellcheck"), "--shell=sh", "--severity=style", str(INSTALLER)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.access(INSTALLER, os.X_OK), "install.sh should be executable"


def test_installer_rejects_unknown_options(sandbox: Sandbox) -> None:
    result = sandbox.install("--frobnicate", check=False)
    assert result.returncode != 0 and "unknown option: --frobnicate" in result.stderr
    result = sandbox.install("--purge", check=False)
    assert result.returncode != 0 and "--purge goes with --uninstall" in result.stderr
    assert sandbox.files() == set()
    assert "--enable-service" in sandbox.install("--help").stdout


# --- installing ------------------------------------------------------------------------------


def test_install_puts_every_file_in_place(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    env = this_env()
    sandbox.fake("systemctl", "update-desktop-database", "gtk-update-icon-cache")
    sandbox.install("--python-env", str(env), "--autostart", "--enable-service")
    assert sandbox.files() == expected_files(autostart=True)

    # The commands are small scripts that run the environment's own.
    for name in COMMANDS:
        wrapper = sandbox.bin / name
        assert wrapper.stat().st_mode & stat.S_IXUSR
        assert shlex.split(wrapper.read_text(encoding="utf-8").splitlines()[-1]) == ["exec", f"{env}/bin/{name}", "$@"]
    help_text = subprocess.run(
        [str(sandbox.bin / "chatterbox-tray"), "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "usage: chatterbox-tray" in help_text

    # The menu entry starts the installed command, and its actions name real subcommands.
    installed = sandbox.share / "applications" / f"{APP}.desktop"
    validate_desktop(installed, sandbox.home / ".config" / "autostart" / f"{APP}.desktop")
    entry = desktop_entry(installed)
    assert exec_argv(entry["Desktop Entry"]["Exec"]) == [str(sandbox.bin / "chatterbox-tray-gui")]
    assert entry["Desktop Entry"]["TryExec"] == str(sandbox.bin / "chatterbox-tray-gui")
    actions = [s for s in entry.sections() if s.startswith("Desktop Action ")]
    assert actions
    for section in actions:
        argv = exec_argv(entry[section]["Exec"])
        assert argv[0] == str(sandbox.bin / "chatterbox-tray")
        assert re.search(rf"^\s+{re.escape(argv[1])}\s", help_text, re.M), f"{argv[1]} is not a chatterbox-tray command"
    auto = desktop_entry(sandbox.home / ".config" / "autostart" / f"{APP}.desktop")["Desktop Entry"]
    assert exec_argv(auto["Exec"]) == [str(sandbox.bin / "chatterbox-tray-gui"), "--minimized"]

    # The tray app's Settings page sees the autostart entry as on.
    from chatterbox_tray.gui import autostart

    monkeypatch.setenv("XDG_CONFIG_HOME", str(sandbox.home / ".config"))
    assert autostart.is_enabled()

    # The icon the entry names is in the theme, at the sizes desktops ask for.
    hicolor = sandbox.share / "icons" / "hicolor"
    for size in ("16x16", "24x24", "32x32", "48x48", "64x64", "128x128", "256x256", "scalable"):
        assert list((hicolor / size / "apps").glob(f"{entry['Desktop Entry']['Icon']}.*")), size

    # Installed metainfo is the validated file; the unit starts the installed daemon.
    assert (sandbox.share / "metainfo" / METAINFO.name).read_bytes() == METAINFO.read_bytes()
    unit = unit_entries(sandbox.share / "systemd" / "user" / SERVICE)
    assert systemd_argv(unit["Service"]["ExecStart"][0], sandbox.home) == [str(sandbox.bin / "chatterbox-tray-daemon")]

    calls = sandbox.calls()
    assert f"update-desktop-database -q {sandbox.share}/applications" in calls
    assert f"gtk-update-icon-cache -q -t -f {hicolor}" in calls
    assert "systemctl --user daemon-reload" in calls
    assert f"systemctl --user enable --now {SERVICE}" in calls


def test_install_without_options_leaves_autostart_and_service_off(sandbox: Sandbox) -> None:
    sandbox.fake("systemctl")
    sandbox.install("--python-env", str(this_env()))
    assert sandbox.files() == expected_files(autostart=False)
    assert not any("enable" in call for call in sandbox.calls())
    assert "systemctl --user daemon-reload" in sandbox.calls()


def test_install_works_without_systemctl_or_cache_tools(sandbox: Sandbox) -> None:
    result = sandbox.install("--python-env", str(this_env()))
    assert sandbox.files() == expected_files(autostart=False)
    assert "is not on your PATH" in result.stdout  # ~/.local/bin is not on the test's PATH
    # Asking for the service without a user manager is an error that says what to run later.
    result = sandbox.install("--python-env", str(this_env()), "--enable-service", check=False)
    assert result.returncode != 0 and f"systemctl --user enable --now {SERVICE}" in result.stderr
    sandbox.fake("systemctl")
    result = sandbox.install("--python-env", str(this_env()), "--enable-service", check=False, FAKE_NO_USER_MANAGER="1")
    assert result.returncode != 0 and "cannot reach your systemd user manager" in result.stderr


def test_installed_unit_verifies_and_stops_retrying_on_exit_3(sandbox: Sandbox, tmp_path: Path) -> None:
    """systemd-analyze accepts the unit; the daemon it starts exits 3 beside another, which is not retried."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {"HOME": str(sandbox.home), "XDG_RUNTIME_DIR": str(runtime), "PATH": os.environ["PATH"]}

    def verify(unit: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [tool("systemd-analyze"), "--user", "verify", str(unit)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def complaints(result: subprocess.CompletedProcess) -> list[str]:
        return [line for line in (result.stdout + result.stderr).splitlines() if "chatterbox-tray" in line]

    # Before installing, %h/.local/bin/chatterbox-tray-daemon does not exist: verify must say so.
    before = verify(UNIT)
    assert before.returncode != 0 and complaints(before), before.stderr
    sandbox.install("--python-env", str(this_env()))
    for unit in (UNIT, sandbox.share / "systemd" / "user" / SERVICE):
        result = verify(unit)
        assert result.returncode == 0 and not complaints(result), result.stdout + result.stderr
    # A typo in a copy of the unit is reported: the check above can fail.
    broken = tmp_path / SERVICE
    broken.write_text(UNIT.read_text(encoding="utf-8").replace("Restart=on-failure", "Restrat=on-failure"))
    assert complaints(verify(broken))

    # Another daemon holds the instance lock: the unit's command exits 3, which the unit does not restart.
    import fcntl

    run_dir = Path(sandbox.env()["CHATTERBOX_TRAY_HOME"]) / "run"
    run_dir.mkdir(parents=True, mode=0o700)
    with open(run_dir / "daemon.lock", "a+", encoding="ascii") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("4242")
        lock.flush()
        exec_start = unit_entries(sandbox.share / "systemd" / "user" / SERVICE)["Service"]["ExecStart"][0]
        second = subprocess.run(
            systemd_argv(exec_start, sandbox.home), env=sandbox.env(), capture_output=True, text=True, timeout=180
        )
    assert second.returncode == 3, second.stderr
    assert "already running (pid 4242)" in second.stderr
    # A bad flag on ExecStart exits 2, also not restarted.
    bad = subprocess.run(
        [*systemd_argv(exec_start, sandbox.home), "--max-tokens-per-chunk", "-1"],
        env=sandbox.env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert bad.returncode == 2, bad.stderr
    prevented = unit_entries(UNIT)["Service"]["RestartPreventExitStatus"][0].split()
    assert str(second.returncode) in prevented and str(bad.returncode) in prevented


def test_installed_tree_validates_with_appstream(sandbox: Sandbox, tmp_path: Path) -> None:
    """appstreamcli validate-tree checks that the metainfo's launchable desktop entry is installed beside it."""
    prefix = tmp_path / "prefix" / "usr"
    sandbox.install("--python-env", str(this_env()), "--prefix", str(prefix))
    result = subprocess.run(
        [tool("appstreamcli"), "validate-tree", "--no-net", str(prefix.parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Without the desktop entry the same check fails.
    (prefix / "share" / "applications" / f"{APP}.desktop").unlink()
    result = subprocess.run(
        [tool("appstreamcli"), "validate-tree", "--no-net", str(prefix.parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "desktop-file-not-found" in result.stdout + result.stderr


def test_prefix_with_a_space_and_a_percent_sign(sandbox: Sandbox, tmp_path: Path) -> None:
    prefix = tmp_path / "my apps" / "100%"
    sandbox.install("--python-env", str(this_env()), "--prefix", str(prefix))
    assert sandbox.files() == set()  # nothing in HOME
    desktop = prefix / "share" / "applications" / f"{APP}.desktop"
    validate_desktop(desktop)
    assert exec_argv(desktop_entry(desktop)["Desktop Entry"]["Exec"]) == [str(prefix / "bin" / "chatterbox-tray-gui")]
    unit = prefix / "share" / "systemd" / "user" / SERVICE
    argv = systemd_argv(unit_entries(unit)["Service"]["ExecStart"][0], sandbox.home)
    assert argv == [str(prefix / "bin" / "chatterbox-tray-daemon")]
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    result = subprocess.run(
        [tool("systemd-analyze"), "--user", "verify", str(unit)],
        env={"HOME": str(sandbox.home), "XDG_RUNTIME_DIR": str(runtime), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "chatterbox-tray" not in result.stderr, result.stderr
    out = subprocess.run(
        [str(prefix / "bin" / "chatterbox-tray"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "usage: chatterbox-tray" in out.stdout
    # Characters systemd refuses in a program's path are refused up front.
    result = sandbox.install("--python-env", str(this_env()), "--prefix", str(tmp_path / "it's"), check=False)
    assert result.returncode != 0 and "not supported" in result.stderr
    assert not (tmp_path / "it's").exists()


def test_xdg_base_directories_are_honoured(sandbox: Sandbox, tmp_path: Path) -> None:
    data, config = tmp_path / "xdg-data", tmp_path / "xdg-config"
    sandbox.install(
        "--python-env", str(this_env()), "--autostart", XDG_DATA_HOME=str(data), XDG_CONFIG_HOME=str(config)
    )
    assert (data / "applications" / f"{APP}.desktop").is_file()
    assert (data / "systemd" / "user" / SERVICE).is_file()
    assert (data / "metainfo" / METAINFO.name).is_file()
    assert (config / "autostart" / f"{APP}.desktop").is_file()
    assert sandbox.files() == {f".local/bin/{name}" for name in COMMANDS}
    # A relative XDG value is invalid per the spec and ignored.
    other = Sandbox(tmp_path / "second", sandbox.system_bin)
    other.install("--python-env", str(this_env()), XDG_DATA_HOME="relative/data")
    assert other.files() == expected_files(autostart=False)


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_dry_run_changes_nothing_and_says_everything(sandbox: Sandbox, shell: str) -> None:
    sandbox.fake("systemctl", "update-desktop-database", "gtk-update-icon-cache")
    result = sandbox.install(
        "--python-env", str(this_env()), "--autostart", "--enable-service", "--dry-run", shell=shell
    )
    assert sandbox.files() == set()
    assert "(dry run: nothing was changed)" in result.stdout
    for path in expected_files(autostart=True):
        assert f"+ write {sandbox.home / path}" in result.stdout, path
    assert f"+ systemctl --user enable --now {SERVICE}" in result.stdout
    assert not [c for c in sandbox.calls() if c != "systemctl --user show-environment"]
    # The environment step too: without --python-env it would copy the project and run uv.
    sandbox.fake("uv")
    result = sandbox.install("--dry-run", shell=shell)
    assert "uv sync" in result.stdout and "--frozen --no-dev" in result.stdout
    assert sandbox.files() == set() and not any(c.startswith("uv ") for c in sandbox.calls())


def test_destdir_stages_files_that_name_their_final_paths(sandbox: Sandbox, tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    sandbox.fake("systemctl", "update-desktop-database", "gtk-update-icon-cache")
    sandbox.install("--python-env", str(this_env()), "--enable-service", DESTDIR=str(stage))
    staged_home = stage / str(sandbox.home).lstrip("/")
    assert sandbox.files(staged_home) == expected_files(autostart=False)
    assert sandbox.files() == set()
    entry = desktop_entry(staged_home / ".local/share/applications" / f"{APP}.desktop")["Desktop Entry"]
    assert exec_argv(entry["Exec"]) == [str(sandbox.bin / "chatterbox-tray-gui")]
    # Staging touches no session: no systemctl, no cache updates.
    assert [c for c in sandbox.calls() if "show-environment" not in c] == []
    result = sandbox.install(DESTDIR=str(stage), check=False)
    assert result.returncode != 0 and "DESTDIR needs --no-env or --python-env" in result.stderr


# --- making the environment with uv ----------------------------------------------------------

FAKE_UV = """#!/bin/sh
{{
    echo "uv $*"
    echo "UV_PROJECT_ENVIRONMENT=${{UV_PROJECT_ENVIRONMENT:-}}"
}} >> "{log}"
[ -n "${{UV_PROJECT_ENVIRONMENT:-}}" ] || exit 0  # uv pip install: the environment is there already
for name in chatterbox-tray chatterbox-tray-daemon chatterbox-tray-gui; do
    mkdir -p "$UV_PROJECT_ENVIRONMENT/bin"
    printf '#!/bin/sh\\necho "%s $*"\\n' "$name" > "$UV_PROJECT_ENVIRONMENT/bin/$name"
    chmod 755 "$UV_PROJECT_ENVIRONMENT/bin/$name"
done
"""

#: Stands in for curl: "downloads" an installer that drops the fake uv into UV_INSTALL_DIR.
FAKE_CURL = """#!/bin/sh
echo "curl $*" >> "{log}"
while [ $# -gt 1 ]; do
    if [ "$1" = -o ]; then out=$2; fi
    shift
done
cat > "$out" <<'EOF'
mkdir -p "$UV_INSTALL_DIR"
echo "uv-installer UV_INSTALL_DIR=$UV_INSTALL_DIR UV_NO_MODIFY_PATH=$UV_NO_MODIFY_PATH" >> "{log}"
cp "{uv}" "$UV_INSTALL_DIR/uv"
EOF
"""


def test_environment_is_made_with_uv_installed_on_the_way(sandbox: Sandbox) -> None:
    uv_source = sandbox.root / "fake-uv"
    uv_source.write_text(FAKE_UV.format(log=sandbox.log), encoding="utf-8")
    uv_source.chmod(0o755)
    sandbox.fake("curl", script=FAKE_CURL.format(log=sandbox.log, uv=uv_source))
    sandbox.install("--torch", "cuda")

    app_dir = sandbox.share / APP / "app"
    calls = sandbox.calls()
    assert calls[0] == "curl -LsSf https://astral.sh/uv/install.sh -o " + calls[0].split(" -o ")[1]
    assert f"uv-installer UV_INSTALL_DIR={sandbox.bin} UV_NO_MODIFY_PATH=1" in calls
    sync = [c for c in calls if c.startswith("uv ")]
    assert sync == [f"uv sync --project {app_dir}/src --frozen --no-dev --no-editable --compile-bytecode"]
    assert f"UV_PROJECT_ENVIRONMENT={app_dir}/venv" in calls

    # The project travelled with its lock file and packages, without a checkout's clutter.
    src = app_dir / "src"
    package_dirs = PYPROJECT["tool"]["setuptools"]["package-dir"].values()
    for name in ("pyproject.toml", "uv.lock", "README.md", *package_dirs):
        assert (src / name).exists(), name
    assert (src / "uv.lock").read_bytes() == (ROOT / "uv.lock").read_bytes()
    for name in (".git", ".venv", "tests", ".cache"):
        assert not (src / name).exists(), name
    assert not list(src.rglob("__pycache__"))

    # The commands run the new environment's scripts.
    out = subprocess.run([str(sandbox.bin / "chatterbox-tray-gui"), "--minimized"], capture_output=True, text=True)
    assert out.stdout.strip() == "chatterbox-tray-gui --minimized"

    # An upgrade reuses the uv it installed (no second download) and the environment folder.
    sandbox.install("--python", "3.12", "--torch", "cuda")
    calls = sandbox.calls()
    assert sum(c.startswith("curl ") for c in calls) == 1
    assert calls[-2].endswith("--compile-bytecode --python 3.12")

    # The installed copy of the installer upgrades in place without deleting the copy it runs from.
    result = sandbox.install("--torch", "cuda", script=app_dir / "src" / "packaging" / "linux" / "install.sh")
    assert f"using the installed copy of the project in {app_dir}/src" in result.stdout
    assert (app_dir / "src" / "uv.lock").is_file()

    # Uninstalling removes the environment but not the voices that live beside it.
    voices = sandbox.share / APP / "voices"
    voices.mkdir()
    (voices / "narrator.wav").write_bytes(b"RIFF")
    (sandbox.share / APP / "voices.json").write_text("{}")
    sandbox.install("--uninstall")
    assert not app_dir.exists()
    assert sandbox.files() == {
        f".local/share/{APP}/voices/narrator.wav",
        f".local/share/{APP}/voices.json",
        ".local/bin/uv",
    }


LOCK = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))


def locked(name: str) -> dict:
    return next(p for p in LOCK["package"] if p["name"] == name)


def uv_calls(sandbox: Sandbox) -> list[list[str]]:
    return [shlex.split(c)[1:] for c in sandbox.calls() if c.startswith("uv ")]


def host_has_nvidia_driver() -> bool:
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the torch build is chosen on Linux x86-64 only")
def test_cpu_build_of_torch_without_an_nvidia_gpu(sandbox: Sandbox) -> None:
    """Issue 23: without an NVIDIA GPU the CUDA build (7.8 GB installed) is not installed."""
    sandbox.fake("uv", script=FAKE_UV.format(log=sandbox.log))
    app_dir = sandbox.share / APP / "app"
    env = app_dir / "venv"
    result = sandbox.install("--torch", "cpu")
    assert "torch build: cpu (asked for with --torch cpu)" in result.stdout
    sync, pip = uv_calls(sandbox)
    # The sync installs everything but torch and what only the CUDA build needs; the lock says what that is.
    cuda_only = {
        d["name"] for d in locked("torch")["dependencies"] if "platform_machine == 'x86_64'" in d.get("marker", "")
    }
    assert "triton" in cuda_only and "nvidia-cudnn-cu12" in cuda_only and len(cuda_only) > 10
    skipped = {sync[i + 1] for i, a in enumerate(sync) if a == "--no-install-package"}
    assert skipped == {"torch", "torchaudio"} | cuda_only
    assert sync[:2] == ["sync", "--project"] and "--frozen" in sync
    # Then the same versions' CPU builds from PyTorch's index, without touching the rest.
    torch_v, audio_v = locked("torch")["version"], locked("torchaudio")["version"]
    assert pip == [
        "pip", "install", "--no-config", "--python", f"{env}/bin/python", "--reinstall", "--no-deps",
        "--compile-bytecode", "--index-url", "https://download.pytorch.org/whl/cpu",
        f"torch=={torch_v}+cpu", f"torchaudio=={audio_v}+cpu",
    ]  # fmt: skip
    assert (app_dir / "torch-build.txt").read_text().startswith("build=cpu\n")

    # Asking for the other build makes the environment again: the old one's libraries would stay.
    (env / "leftover").write_text("cpu torch")
    sandbox.log.write_text("")
    result = sandbox.install("--torch", "cuda")
    assert "making it again with the cuda build" in result.stdout
    assert not (env / "leftover").exists()
    (sync,) = uv_calls(sandbox)
    assert "--no-install-package" not in sync
    assert (app_dir / "torch-build.txt").read_text().startswith("build=cuda\n")

    # auto: an NVIDIA GPU gets the CUDA build; nothing to change here, so no second environment.
    sandbox.fake("nvidia-smi", script="#!/bin/sh\necho 'GPU 0: NVIDIA GeForce RTX 5090 (UUID: GPU-1)'\n")
    sandbox.log.write_text("")
    result = sandbox.install()
    assert "torch build: cuda (nvidia-smi lists a GPU)" in result.stdout
    assert "making it again" not in result.stdout
    (sync,) = uv_calls(sandbox)
    assert "--no-install-package" not in sync


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the torch build is chosen on Linux x86-64 only")
@pytest.mark.skipif(host_has_nvidia_driver(), reason="this machine's NVIDIA driver reports a GPU")
def test_auto_picks_the_cpu_build_where_there_is_no_nvidia_gpu(sandbox: Sandbox) -> None:
    sandbox.fake("uv", script=FAKE_UV.format(log=sandbox.log))
    # An environment made before the choice existed had PyPI's CUDA build: it is made again.
    env = sandbox.share / APP / "app" / "venv"
    (env / "lib").mkdir(parents=True)
    (env / "lib" / "nvidia-leftover").write_text("4.3 GB")
    sandbox.fake("lspci", script="#!/bin/sh\necho '00:02.0 0300: 8086:46a6 (rev 0c)'\n")
    result = sandbox.install()
    assert "torch build: cpu (no NVIDIA GPU found" in result.stdout
    assert "has torch's cuda build; making it again" in result.stdout
    assert not (env / "lib" / "nvidia-leftover").exists()
    assert [c[0] for c in uv_calls(sandbox)] == ["sync", "pip"]
    # A card on the PCI bus whose driver is not installed yet still gets the CUDA build.
    sandbox.fake("lspci", script="#!/bin/sh\necho '01:00.0 0300: 10de:2684 (rev a1)'\n")
    result = sandbox.install()
    assert "torch build: cuda (an NVIDIA display controller is on the PCI bus)" in result.stdout
    result = sandbox.install("--torch", "rocm", check=False)
    assert result.returncode != 0 and "--torch is auto, cpu or cuda" in result.stderr


#: curl without a connection, as on a machine that reaches no network.
OFFLINE_CURL = """#!/bin/sh
echo "curl $*" >> "{log}"
echo "curl: (6) Could not resolve host: astral.sh" >&2
exit 6
"""

#: A uv installer that makes its temporary folder (as astral's does) and then cannot download uv.
FAILING_UV_INSTALLER_CURL = """#!/bin/sh
echo "curl $*" >> "{log}"
while [ $# -gt 1 ]; do
    if [ "$1" = -o ]; then out=$2; fi
    shift
done
cat > "$out" <<'EOF'
dir=$(mktemp -d)
echo "uv-installer tmp=$dir" >> "{log}"
echo "error: failed to download uv" >&2
exit 1
EOF
"""


@pytest.mark.parametrize("curl", [OFFLINE_CURL, FAILING_UV_INSTALLER_CURL], ids=["no-connection", "installer-fails"])
def test_a_failed_uv_download_leaves_no_temporary_files(sandbox: Sandbox, curl: str) -> None:
    """Issue 23: without a connection the installer left an empty temporary folder behind."""
    tmp = sandbox.root / "tmp"
    tmp.mkdir()
    sandbox.fake("curl", script=curl.format(log=sandbox.log))
    result = sandbox.install(check=False, TMPDIR=str(tmp))
    assert result.returncode != 0
    assert "install uv yourself" in result.stderr and "https://docs.astral.sh/uv/" in result.stderr
    assert list(tmp.iterdir()) == [], "temporary files were left behind"
    assert not (sandbox.bin / "chatterbox-tray").exists()
    if curl is FAILING_UV_INSTALLER_CURL:
        # The uv installer's own temporary folder was made inside ours, and went with it.
        made = [c for c in sandbox.calls() if c.startswith("uv-installer tmp=")]
        assert made and made[0].removeprefix("uv-installer tmp=").startswith(str(tmp) + "/chatterbox-tray-uv.")


# --- uninstalling ----------------------------------------------------------------------------


def test_uninstall_keeps_the_users_data_and_purge_removes_it(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox.fake("systemctl", "update-desktop-database", "gtk-update-icon-cache")
    sandbox.install("--python-env", str(this_env()), "--autostart", "--enable-service")
    user_data = {
        f".local/share/{APP}/voices/narrator.flac",
        f".local/share/{APP}/voices.json",
        f".config/{APP}/settings.json",
        f".cache/{APP}/conditionals/abc.safetensors",
        f".local/state/{APP}/log/daemon.log",
    }
    unrelated = {".local/bin/some-other-tool", ".local/share/applications/other.desktop"}
    for path in user_data | unrelated:
        (sandbox.home / path).parent.mkdir(parents=True, exist_ok=True)
        (sandbox.home / path).write_text("mine")

    sandbox.install("--uninstall")
    assert sandbox.files() == user_data | unrelated
    assert f"systemctl --user disable --now {SERVICE}" in sandbox.calls()
    from chatterbox_tray.gui import autostart

    monkeypatch.setenv("XDG_CONFIG_HOME", str(sandbox.home / ".config"))
    assert not autostart.is_enabled()

    # Uninstalling twice is fine; --purge then takes the user's data too, and only it.
    sandbox.install("--uninstall", "--purge")
    assert sandbox.files() == unrelated


def test_commands_the_installer_did_not_write_are_left_alone(sandbox: Sandbox) -> None:
    theirs = sandbox.bin / "chatterbox-tray"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("#!/bin/sh\necho pip-installed\n")
    result = sandbox.install("--python-env", str(this_env()), check=False)
    assert result.returncode != 0 and "--force" in result.stderr
    assert theirs.read_text() == "#!/bin/sh\necho pip-installed\n"
    sandbox.install("--python-env", str(this_env()), "--force")
    assert "Chatterbox Tray" in theirs.read_text()
    theirs.write_text("#!/bin/sh\necho pip-installed\n")
    result = sandbox.install("--uninstall")
    assert theirs.exists() and "kept" in result.stdout
    assert not (sandbox.bin / "chatterbox-tray-gui").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a home that root does not own")
def test_root_with_a_users_home_is_refused(sandbox: Sandbox) -> None:
    os.chown(sandbox.home, 65534, 65534)
    result = sandbox.install("--python-env", str(this_env()), check=False)
    assert result.returncode != 0 and "not as root" in result.stderr
    assert sandbox.files() == set()


# --- Speech Dispatcher's module (issue 23) ---------------------------------------------------


def speechd_system(root: Path) -> Path:
    """A system speechd folder as Debian has it: discovery on, a clients/ folder."""
    system = root / "etc-speech-dispatcher"
    (system / "clients").mkdir(parents=True)
    (system / "clients" / "emacs.conf").write_text('BeginClient "emacs:*"\nEndClient\n')
    (system / "speechd.conf").write_text('LogLevel 3\n#AddModule "espeak-ng" "sd_espeak-ng" "espeak-ng.conf"\n')
    return system


def test_uninstall_removes_the_speech_dispatcher_module_and_its_lines(sandbox: Sandbox) -> None:
    """`chatterbox-tray speechd install --default` (no PulseAudio: ALSA too), then the installer's
    --uninstall: nothing of ours is left in ~/.config/speech-dispatcher."""
    from chatterbox_tray.cli import speech_dispatcher

    env = this_env()
    sandbox.install("--python-env", str(env))
    config = sandbox.home / ".config"
    command = [f"{env}/bin/python", "-m", "chatterbox_tray.cli.main"]
    system = speechd_system(sandbox.root)
    report = speech_dispatcher.install(
        ["narrator"], command=command, make_default=True, alsa=True, home=config, system=system
    )
    assert report.created_speechd_conf and (config / "speech-dispatcher" / "clients").is_dir()
    result = sandbox.install("--uninstall")
    assert f"removed {config}/speech-dispatcher/modules/{APP}-generic.conf" in result.stdout
    assert not (config / "speech-dispatcher").exists(), sorted(config.rglob("*"))


def test_uninstall_removes_the_module_when_the_environment_cannot_run(sandbox: Sandbox) -> None:
    """A broken environment: the installer takes the module and our speechd.conf lines out itself."""
    from chatterbox_tray.cli import speech_dispatcher

    broken = sandbox.root / "broken-env"
    (broken / "bin").mkdir(parents=True)
    for name in COMMANDS:
        (broken / "bin" / name).write_text("#!/bin/sh\nexit 1\n")
        (broken / "bin" / name).chmod(0o755)
    sandbox.install("--python-env", str(broken))
    config = sandbox.home / ".config"
    user_conf = config / "speech-dispatcher" / "speechd.conf"
    user_conf.parent.mkdir(parents=True)
    mine = '# mine\nAddModule "espeak-ng" "sd_espeak-ng" "espeak-ng.conf"\nDefaultModule espeak-ng\n'
    user_conf.write_text(mine)
    speech_dispatcher.install(
        ["narrator"], command=[f"{broken}/bin/python", "-m", "x"], make_default=True, home=config,
        system=speechd_system(sandbox.root),
    )  # fmt: skip
    assert "DefaultModule chatterbox-tray-generic" in user_conf.read_text()
    result = sandbox.install("--uninstall")
    assert "removed Chatterbox Tray's lines from" in result.stdout
    assert user_conf.read_text() == mine
    assert not (config / "speech-dispatcher" / "modules").exists()


def test_uninstall_keeps_a_module_that_runs_another_copy(sandbox: Sandbox) -> None:
    from chatterbox_tray.cli import speech_dispatcher

    sandbox.install("--python-env", str(this_env()))
    config = sandbox.home / ".config"
    speech_dispatcher.install(
        ["narrator"], command=["/home/me/src/chatterbox-tray/.venv/bin/python", "-m", "x"], home=config,
        system=speechd_system(sandbox.root),
    )  # fmt: skip
    result = sandbox.install("--uninstall")
    assert "kept" in result.stdout and "runs another copy" in result.stdout
    assert speech_dispatcher.module_conf_path(config).is_file()


# --- the icon --------------------------------------------------------------------------------


def _make_icons():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_icons", LINUX / "make_icons.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pixels(image, size: int):
    import numpy as np
    from PySide6.QtGui import QImage

    image = image.convertToFormat(QImage.Format.Format_RGBA8888)
    return np.frombuffer(bytes(image.constBits()), np.uint8).reshape(size, size, 4).astype(int)


def _differs(a, b) -> float:
    """The share of pixels that differ by more than a quarter of the range in some channel."""
    return float(((abs(a - b)).max(axis=2) > 64).mean())


def test_icons_match_what_the_app_draws(qapp) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    make_icons = _make_icons()
    assert icon_files() == {f"{s}x{s}/apps/{APP}.png" for s in make_icons.SIZES} | {f"scalable/apps/{APP}.svg"}
    for size in make_icons.SIZES:
        drawn = make_icons.render(size)
        committed = QImage(str(make_icons.png_path(LINUX / "icons" / "hicolor", size)))
        assert committed.width() == committed.height() == size
        assert _differs(_pixels(drawn, size), _pixels(committed, size)) < 0.002, f"{size}px: run make_icons.py"

    # The SVG is the same picture: rendered by Qt's SVG renderer it matches the drawing code.
    ET.parse(SVG)  # well-formed
    renderer = QSvgRenderer(str(SVG))
    assert renderer.isValid()
    for size in (48, 256):
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        renderer.render(painter)
        painter.end()
        svg, drawn = _pixels(image, size), _pixels(make_icons.render(size), size)
        assert _differs(svg, drawn) < 0.005, f"the SVG no longer matches gui/icons.py at {size}px"
        assert svg[..., 3].mean() > 100  # not an empty picture that matches an empty drawing


def test_make_icons_writes_every_size(tmp_path: Path, qapp) -> None:
    make_icons = _make_icons()
    written = make_icons.write_pngs(tmp_path)
    assert {str(p.relative_to(tmp_path)) for p in written} == {f"{s}x{s}/apps/{APP}.png" for s in make_icons.SIZES}
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in written)


def test_an_upgrade_points_an_old_speech_dispatcher_module_at_the_moved_cli(sandbox: Sandbox) -> None:
    """A module written before the CLI moved to cli/ runs `-m chatterbox_tray.ipc.cli`, which is gone."""
    from chatterbox_tray.cli import speech_dispatcher

    env = this_env()
    config = sandbox.home / ".config"
    old = [f"{env}/bin/python", "-m", "chatterbox_tray.ipc.cli"]
    speech_dispatcher.install(["narrator"], command=old, home=config, system=speechd_system(sandbox.root))
    module = speech_dispatcher.module_conf_path(config)
    result = sandbox.install("--python-env", str(env))
    assert f"updated {module}" in result.stdout
    text = module.read_text()
    assert "chatterbox_tray.ipc.cli" not in text
    assert text == speech_dispatcher.render(
        ["narrator"], command=[f"{env}/bin/python", "-m", "chatterbox_tray.cli.main"]
    )
    # The module speechd would run now starts the command line.
    out = subprocess.run(
        [f"{env}/bin/python", "-m", "chatterbox_tray.cli.main", "speechd", "speak", "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0 and "--rate" in out.stdout
    # Installing again changes nothing more.
    assert "updated" not in sandbox.install("--python-env", str(env)).stdout
