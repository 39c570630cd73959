"""Windows packaging: the Inno Setup script, its PowerShell helpers and the icon.

Nothing here runs Windows, Inno Setup or PowerShell itself (none exists on a
Debian machine, and Inno Setup under wine needs downloads this machine cannot
make). What can be checked on Linux is checked for real:

- the .iss is parsed section by section, with its ``#define``s expanded; every
  [Files] source exists and together they ship every module the package needs;
- its autostart value, data folder and shortcuts agree with ``gui/autostart.py``,
  platformdirs and ``pyproject.toml``;
- the uninstaller deletes the user's data only inside the "yes, remove them"
  branch, and its Pascal blocks balance;
- the PowerShell scripts parse (with tree-sitter's PowerShell grammar when it
  is installed, and with PowerShell's own parser when ``pwsh`` is on the PATH);
- setup-env.ps1's uv.lock pattern finds the locked torch versions, and its CUDA
  index is one with RTX 50-series kernels (CUDA 12.8 or newer);
- the committed .ico is a real multi-size icon and the generator rebuilds it.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli before 3.11
    import tomli as tomllib

from chatterbox_tray.gui import autostart

ROOT = Path(__file__).resolve().parents[2]
WIN = ROOT / "packaging" / "windows"
ISS = WIN / "chatterbox-tray.iss"
SETUP_ENV = WIN / "setup-env.ps1"
STOP_APP = WIN / "stop-app.ps1"
BUILD = WIN / "build.ps1"
ICO = WIN / "chatterbox-tray.ico"
POWERSHELL = "{sys}\\WindowsPowerShell\\v1.0\\powershell.exe"


# --- a small Inno Setup reader ------------------------------------------------------------------


@dataclass
class Iss:
    defines: dict[str, str]
    sections: dict[str, list[str]]  # section name (lower case) -> its lines, comments dropped
    code: str  # the [Code] section as written

    def entries(self, section: str) -> list[dict[str, str]]:
        """The ``Name: value; Name: "value"`` entries of a section, keys in lower case."""
        return [parse_entry(line) for line in self.sections[section.lower()]]

    def directives(self) -> dict[str, str]:
        """[Setup]'s ``Key=Value`` lines."""
        out = {}
        for line in self.sections["setup"]:
            key, _, value = line.partition("=")
            out[key.strip().lower()] = value.strip()
        return out


def expand(text: str, defines: dict[str, str]) -> str:
    """Expand ISPP's inline ``{#Name}``."""

    def one(match: re.Match) -> str:
        name = match.group(1)
        if name not in defines:
            raise AssertionError(f"{{#{name}}} is used but never defined")
        return defines[name]

    return re.sub(r"\{#(\w+)\}", one, text)


def read_iss(path: Path = ISS) -> Iss:
    defines: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current = None
    code_lines: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if current == "code" and not re.fullmatch(r"\[\w+\]", line):
            code_lines.append(raw)
            continue
        if not line or line.startswith(";"):
            continue
        if line.startswith("#"):
            match = re.fullmatch(r'#\s*define\s+(\w+)\s+"([^"]*)"', line)
            if match:
                defines[match.group(1)] = expand(match.group(2), defines)
            continue
        header = re.fullmatch(r"\[(\w+)\]", line)
        if header:
            current = header.group(1).lower()
            assert current not in sections, f"section [{current}] appears twice"
            sections[current] = []
            continue
        assert current is not None, f"a line before any section: {line}"
        sections[current].append(expand(line, defines))
    return Iss(defines, sections, expand("\n".join(code_lines), defines))


def parse_entry(line: str) -> dict[str, str]:
    """``Source: "a"; DestDir: "{app}"; Flags: x y`` -> {"source": "a", ...}; "" inside quotes is one "."""
    entry: dict[str, str] = {}
    pos = 0
    pattern = re.compile(r'\s*(\w+)\s*:\s*("(?:[^"]|"")*"|[^;]*?)\s*(?:;|$)')
    while pos < len(line):
        match = pattern.match(line, pos)
        assert match and match.end() > pos, f"cannot parse entry: {line[pos:]}"
        key, value = match.group(1).lower(), match.group(2)
        if value.startswith('"'):
            value = value[1:-1].replace('""', '"')
        assert key not in entry, f"{key} twice in: {line}"
        entry[key] = value
        pos = match.end()
    return entry


def pascal_without_comments_and_strings(code: str) -> str:
    """[Code] with comments and string literals blanked to spaces, so positions still match the source."""

    def blank(match: re.Match) -> str:
        return re.sub(r"[^\n]", " ", match.group(0))

    return re.sub(r"'(?:[^']|'')*'|\{[^}]*\}|\(\*.*?\*\)|//[^\n]*", blank, code, flags=re.S)


def block_after(code: str, opener: str) -> str:
    """The source from ``opener`` to the ``end`` that closes the first block after it."""
    bare = pascal_without_comments_and_strings(code)
    start = code.index(opener)
    depth = 0
    for word in re.finditer(r"\b(begin|end|try|case)\b", bare[start:], flags=re.I):
        depth += 1 if word.group(1).lower() != "end" else -1
        if depth == 0:
            return code[start : start + word.end()]
    raise AssertionError(f"no end for the block after {opener!r}")


@pytest.fixture(scope="module")
def iss() -> Iss:
    return read_iss()


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


# --- the .iss -----------------------------------------------------------------------------------


def test_reader_rejects_what_it_should(tmp_path: Path) -> None:
    """The checks below rest on this reader: it must notice undefined names and unparsable entries."""
    bad = tmp_path / "bad.iss"
    bad.write_text("[Setup]\nAppName={#Missing}\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="never defined"):
        read_iss(bad)
    with pytest.raises(AssertionError, match="cannot parse"):
        parse_entry('Source: "a"; !!')
    assert parse_entry('Parameters: "-File ""x y.ps1"""; Flags: a b') == {
        "parameters": '-File "x y.ps1"',
        "flags": "a b",
    }


def test_sections_and_per_user_setup(iss: Iss) -> None:
    for section in ("setup", "tasks", "files", "icons", "registry", "run", "uninstallrun", "uninstalldelete", "code"):
        assert section in iss.sections, f"[{section}] is missing"
    setup = iss.directives()
    assert setup["privilegesrequired"] == "lowest", "the installer must not need an administrator"
    assert setup["defaultdirname"].startswith("{localappdata}\\Programs\\")
    assert setup["architecturesallowed"] == "x64compatible"  # torch has win_amd64 wheels only
    assert re.fullmatch(r"\{\{[0-9A-F-]{36}\}", setup["appid"]), "AppId must be a fixed GUID ({{ escapes {)"
    assert (WIN / setup["setupiconfile"]).is_file()
    # UninstallDisplayIcon points at the icon [Files] installs.
    dests = {PureWindowsPath(e["destdir"]) / PureWindowsPath(e["source"]).name for e in iss.entries("files")}
    assert PureWindowsPath(setup["uninstalldisplayicon"]) in dests


def test_every_files_source_exists(iss: Iss) -> None:
    for entry in iss.entries("files"):
        source = entry["source"]
        if source == iss.defines["UvExe"]:
            # Made by build.ps1 at build time: check it is where build.ps1 puts it.
            build = BUILD.read_text(encoding="utf-8")
            assert "$buildDir = Join-Path $here 'build'" in build and "$uvDir = Join-Path $buildDir 'uv'" in build
            assert PureWindowsPath(source) == PureWindowsPath("build", "uv", "uv.exe")
            continue
        path = WIN / PureWindowsPath(source).as_posix()
        matches = list(path.parent.glob(path.name)) if "*" in path.name else [path] if path.exists() else []
        assert matches, f"[Files] Source {source} matches nothing"


def shipped_files(iss: Iss) -> set[str]:
    """Repo-relative paths the [Files] section installs under {app}, as they land there."""
    out: set[str] = set()
    for entry in iss.entries("files"):
        dest = PureWindowsPath(entry["destdir"])
        if dest.parts[0] != "{app}":
            continue
        source = (WIN / PureWindowsPath(entry["source"]).as_posix()).resolve()
        recurse = "recursesubdirs" in entry.get("flags", "").split()
        pattern = source.name
        candidates = source.parent.rglob("*") if recurse else source.parent.glob("*")
        for file in candidates:
            if file.is_file() and fnmatch.fnmatch(file.name, pattern) and "__pycache__" not in file.parts:
                rel_src = file.relative_to(source.parent)
                out.add(str(PureWindowsPath(*dest.parts[1:], *rel_src.parts)).replace("\\", "/"))
    return out


def test_files_ship_the_whole_package(iss: Iss) -> None:
    """Every module setuptools builds, and the files it reads, land at the same place under {app}."""
    project = pyproject()
    shipped = shipped_files(iss)
    assert {"pyproject.toml", "uv.lock", project["project"]["readme"]} <= shipped
    package_dir = project["tool"]["setuptools"]["package-dir"]
    for package in project["tool"]["setuptools"]["packages"]:
        top, _, rest = package.partition(".")
        assert top == "chatterbox_tray"
        first = rest.split(".")[0] if rest else ""
        folder = package_dir[f"chatterbox_tray.{first}" if first else "chatterbox_tray"]
        sub = rest.split(".")[1:] if rest else []
        source = ROOT / folder / Path(*sub)
        modules = [p for p in source.glob("*.py")]
        assert modules, f"{package} has no modules in {source}"
        for module in modules:
            rel = module.relative_to(ROOT).as_posix()
            assert rel in shipped, f"{rel} ({package}) is not installed by [Files]"
    # What Python and the package build leave in each package folder (bytecode)
    # goes with the uninstall: every folder of package-dir is named there.
    removed = {e["name"] for e in iss.entries("uninstalldelete") if e["type"] == "filesandordirs"}
    for folder in package_dir.values():
        assert f"{{app}}\\{folder}" in removed, f"[UninstallDelete] forgets {folder}"


def test_autostart_agrees_with_the_settings_page(iss: Iss) -> None:
    """The installer's "start when I sign in" is the very value gui/autostart.py reads and removes."""
    assert iss.defines["AppIdName"] == autostart.APP_ID
    assert iss.defines["RunKey"] == autostart.RUN_KEY
    tasks = {e["name"]: e for e in iss.entries("tasks")}
    values = [e for e in iss.entries("registry") if e.get("valuename") == autostart.APP_ID]
    assert len(values) == 1
    value = values[0]
    assert value["root"] == "HKCU" and value["subkey"] == autostart.RUN_KEY and value["valuetype"] == "string"
    assert value["tasks"] in tasks, "the Run value must hang on a task the user can untick"
    assert "unchecked" in tasks[value["tasks"]].get("flags", "").split(), "autostart is opt-in"
    assert "uninsdeletevalue" in value["flags"].split()
    command = value["valuedata"]
    assert command.startswith('"{app}\\.venv\\Scripts\\pythonw.exe" '), "no console window at sign-in"
    assert command.endswith(" -m chatterbox_tray.gui --minimized"), "the same flag gui/autostart.py writes"
    assert "--minimized" in autostart.command()
    assert (ROOT / "gui" / "__main__.py").is_file(), "-m chatterbox_tray.gui needs gui/__main__.py"
    # The uninstaller also drops a Run value the Settings page wrote, when it starts this install.
    remove = block_after(iss.code, "procedure RemoveAutostartValue;")
    assert f"RegDeleteValue(HKCU, '{autostart.RUN_KEY}', '{autostart.APP_ID}')" in remove
    assert "ExpandConstant('{app}')" in remove


def test_start_menu_entries(iss: Iss) -> None:
    icons = {e["name"]: e for e in iss.entries("icons")}
    app = icons["{group}\\Chatterbox Tray"]
    assert app["filename"] == "{app}\\.venv\\Scripts\\pythonw.exe" and app["parameters"] == "-m chatterbox_tray.gui"
    assert app["appusermodelid"] == autostart.APP_ID
    shipped = {"{app}\\" + p.replace("/", "\\") for p in shipped_files(iss)}
    for entry in icons.values():
        if "iconfilename" in entry:
            assert entry["iconfilename"] in shipped, f"{entry['name']}: its icon is not installed"
    repair = icons["{group}\\Repair Chatterbox Tray"]
    assert repair["filename"] == POWERSHELL, "a shortcut does not search PATH: the full path"
    assert '-File "{app}\\setup\\setup-env.ps1"' in repair["parameters"]
    assert "{app}\\setup\\setup-env.ps1" in shipped
    assert icons["{group}\\Uninstall Chatterbox Tray"]["filename"] == "{uninstallexe}"
    run = iss.entries("run")
    assert [r["filename"] for r in run] == ["{app}\\.venv\\Scripts\\pythonw.exe"]
    assert "postinstall" in run[0]["flags"].split() and run[0]["check"] == "EnvironmentReady"


def windows_data_dirs(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Where platformdirs puts the app's folders on Windows, with %LOCALAPPDATA% as {localappdata}."""
    import platformdirs.windows as pw

    def folder(csidl_name: str) -> str:
        return {"CSIDL_LOCAL_APPDATA": "{localappdata}", "CSIDL_APPDATA": "{userappdata}"}[csidl_name]

    monkeypatch.setattr(pw, "get_win_folder", folder)
    dirs = pw.Windows(appname="chatterbox-tray", appauthor=False)
    return {
        "config": dirs.user_config_dir,
        "data": dirs.user_data_dir,
        "cache": dirs.user_cache_dir,
        "log": dirs.user_log_dir,
        "runtime": dirs.user_runtime_dir,
    }


def test_uninstall_keeps_user_data_unless_asked(iss: Iss, monkeypatch: pytest.MonkeyPatch) -> None:
    dirs = windows_data_dirs(monkeypatch)
    dirs = {kind: path.replace("/", "\\") for kind, path in dirs.items()}  # os.path.join here is posixpath
    data = dirs["data"]
    assert data == "{localappdata}\\chatterbox-tray"
    for kind in ("config", "cache", "log"):
        assert dirs[kind] == data or dirs[kind].startswith(data + "\\"), f"{kind} is outside {data}: {dirs[kind]}"

    code = iss.code
    step = block_after(code, "procedure CurUninstallStepChanged(")
    assert f"DataDir := ExpandConstant('{data}');" in step
    purge = block_after(step, "if PurgeUserData then")
    # The user's things go only in the "yes" branch ...
    assert "DelTree(DataDir, True, True, True);" in purge and "RemoveModelWeights;" in purge
    everywhere_else = code.replace(purge, "")
    assert "DelTree(DataDir" not in everywhere_else and "RemoveModelWeights;" not in everywhere_else.replace(
        "procedure RemoveModelWeights;", ""
    )
    # ... the runtime folder (sockets) is the only other thing removed outside {app} ...
    others = re.findall(r"DelTree\(([^,]+),", everywhere_else)
    assert others == ["Hub + '\\' + Found.Name", f"ExpandConstant('{dirs['runtime']}')"]
    # ... and "yes" is an answer: No is the default button, silent uninstalls keep, /PURGE says yes.
    assert re.search(r"PurgeUserData := HasParam\('/PURGE'\);", step)
    assert re.search(r"MB_YESNO or MB_DEFBUTTON2, IDNO\) = IDYES", step)
    # [UninstallDelete] never reaches outside the program folder, nor wipes a folder the user chose.
    for entry in iss.entries("uninstalldelete"):
        assert entry["name"].startswith("{app}\\") or entry["name"] == "{app}", entry
        if entry["name"] == "{app}":
            assert entry["type"] == "dirifempty"
    # The model weights: only chatterbox's own repos in the hub cache huggingface_hub uses.
    weights = block_after(code, "procedure RemoveModelWeights;")
    assert "'\\models--ResembleAI--chatterbox*'" in weights
    hub = block_after(code, "function HubCacheDir: String;")
    assert "HF_HUB_CACHE" in hub and "HF_HOME" in hub and "\\.cache\\huggingface\\hub" in hub


def test_uninstall_and_upgrade_stop_the_app_first(iss: Iss) -> None:
    (stop,) = iss.entries("uninstallrun")
    assert stop["filename"] == POWERSHELL
    assert '-File "{app}\\setup\\stop-app.ps1" -AppDir "{app}"' in stop["parameters"]
    assert stop["runonceid"] and "waituntilterminated" in stop["flags"].split()
    assert iss.code.count("Exec(ExpandConstant('" + POWERSHELL + "')") == 2, "stop-app and setup-env, by full path"
    prepare = block_after(iss.code, "function PrepareToInstall(")
    assert "ExtractTemporaryFile('stop-app.ps1');" in prepare
    names = {PureWindowsPath(e["source"]).name for e in iss.entries("files")}
    assert "stop-app.ps1" in names  # ExtractTemporaryFile only finds files [Files] lists


def test_pascal_blocks_balance(iss: Iss) -> None:
    bare = pascal_without_comments_and_strings(iss.code).lower()
    opened = len(re.findall(r"\b(begin|try|case)\b", bare))
    closed = len(re.findall(r"\bend\b", bare))
    assert opened == closed, f"{opened} begin/try/case against {closed} end"
    assert len(re.findall(r"\brepeat\b", bare)) == len(re.findall(r"\buntil\b", bare))
    # Every routine the [Setup]/[Run] sections name exists.
    for entry in iss.entries("run"):
        if "check" in entry:
            assert re.search(rf"\bfunction {entry['check']}\b", iss.code)
    for event in ("PrepareToInstall", "CurStepChanged", "CurUninstallStepChanged"):
        assert re.search(rf"\b(function|procedure) {event}\(", iss.code), event


def test_post_install_runs_setup_env(iss: Iss) -> None:
    step = block_after(iss.code, "procedure CurStepChanged(")
    assert "ExpandConstant('{app}\\setup\\setup-env.ps1')" in step and "-NoPause" in step
    assert "(Code = 0)" in step, "a failed environment setup must be noticed"
    torch = block_after(iss.code, "function TorchChoice: String;")
    assert "{param:TORCH|auto}" in torch
    # The -Torch values the installer can pass are the ones setup-env.ps1 accepts.
    accepted = re.search(r"\[ValidateSet\(([^)]*)\)\]\[string\]\$Torch", SETUP_ENV.read_text(encoding="utf-8"))
    assert accepted and set(re.findall(r"'(\w+)'", accepted.group(1))) == {"auto", "cuda", "cpu"}


def test_build_script_passes_the_defines_the_iss_expects(iss: Iss) -> None:
    text = ISS.read_text(encoding="utf-8")
    overridable = set(re.findall(r"^#ifndef (\w+)$", text, flags=re.M))
    build = BUILD.read_text(encoding="utf-8")
    passed = set(re.findall(r'"/D(\w+)=', build))
    assert passed == overridable == {"AppVersion", "UvExe"}
    # The version it passes is pyproject's, read with this pattern.
    pattern = re.search(r"\[regex\]::Match\(\$text, '([^']+)'\)", build).group(1)
    assert re.search(pattern, (ROOT / "pyproject.toml").read_text()).group(1) == pyproject()["project"]["version"]
    # It looks for the installer where ISCC writes it.
    assert iss.directives()["outputdir"] == "..\\..\\dist" and "(Join-Path $repo 'dist')" in build


# --- setup-env.ps1 ------------------------------------------------------------------------------


def test_lock_pattern_finds_the_locked_torch() -> None:
    text = SETUP_ENV.read_text(encoding="utf-8")
    match = re.search(r"LOCK-VERSION-PATTERN \(tests read this line\): '([^']+)'", text)
    assert match, "setup-env.ps1 lost its LOCK-VERSION-PATTERN line"
    pattern = match.group(1)
    assert f"$pattern = '{pattern}' -f" in text, "the comment and the code disagree"
    lock = (ROOT / "uv.lock").read_text(encoding="utf-8")
    versions = {}
    for package in ("torch", "torchaudio"):
        found = re.findall(pattern.replace("{0}", re.escape(package)), lock)
        assert len(found) == 1, f"{package}: {found}"
        versions[package] = found[0]
    # pyproject's bounds, and a plain public version the +cu128 local tag can be added to.
    for package, version in versions.items():
        assert re.fullmatch(r"2\.9\.\d+", version), f"{package} {version}"
    # The lock's Windows torch is PyPI's CPU-only wheel (about 110 MB): the reason for this script.
    windows_wheels = re.findall(r"torch-[\d.]+-cp311-cp311-win_amd64\.whl\", hash = \"[^\"]+\", size = (\d+)", lock)
    assert windows_wheels and int(windows_wheels[0]) < 400_000_000


def test_cuda_build_covers_rtx_50() -> None:
    text = SETUP_ENV.read_text(encoding="utf-8")
    tag = re.search(r"^\$CudaTag = '(cu(\d+))'$", text, flags=re.M)
    url = re.search(r"^\$CudaIndexUrl = '([^']+)'$", text, flags=re.M)
    assert tag and url
    assert int(tag.group(2)) >= 128, "sm_120 (RTX 50-series) kernels start with the CUDA 12.8 builds"
    assert url.group(1) == f"https://download.pytorch.org/whl/{tag.group(1)}"
    install = text[text.index("'pip', 'install'") :]
    install = install[: install.index(")")]
    for needed in ("'--reinstall'", "'--no-deps'", "'--no-config'", "$CudaIndexUrl", '"torch==$torchVersion+$CudaTag"'):
        assert needed in install, needed
    sync = text[text.index("$syncArgs = @(") :]
    for needed in ("'--frozen'", "'--no-dev'", "'--python', $PythonVersion", "'--managed-python'"):
        assert needed in sync[: sync.index("Invoke-Uv $syncArgs")], needed
    assert "'--no-install-package', 'torch', '--no-install-package', 'torchaudio'" in sync
    # Everything uv downloads stays inside the install folder the uninstaller removes.
    for var, sub in (("UV_PYTHON_INSTALL_DIR", "'python'"), ("UV_CACHE_DIR", "'cache\\uv'")):
        assert f"$env:{var} = Join-Path $AppDir {sub}" in text
    iss = read_iss()
    removed = {e["name"] for e in iss.entries("uninstalldelete")}
    assert {"{app}\\.venv", "{app}\\python", "{app}\\cache"} <= removed


def test_gpu_detection_has_both_probes() -> None:
    text = SETUP_ENV.read_text(encoding="utf-8")
    detect = text[text.index("function Get-NvidiaGpu") : text.index("function Invoke-Uv")]
    assert "nvidia-smi.exe" in detect and "--query-gpu=" in detect
    assert "Win32_VideoController" in detect
    # The WMI driver version is converted the way NVIDIA numbers map: 32.0.15.7283 -> 572.83.
    digits = "32.0.15.7283".replace(".", "")
    tail = digits[-5:]
    assert f"{tail[:3]}.{tail[3:]}" == "572.83"
    assert "$digits.Substring($digits.Length - 5)" in detect


# --- PowerShell parses --------------------------------------------------------------------------

PS_SCRIPTS = [SETUP_ENV, STOP_APP, BUILD]


def tree_sitter_errors(source: bytes) -> list[str]:
    tree_sitter = pytest.importorskip("tree_sitter", reason="tree-sitter is not installed")
    grammar = pytest.importorskip("tree_sitter_powershell", reason="tree-sitter-powershell is not installed")
    parser = tree_sitter.Parser(tree_sitter.Language(grammar.language()))
    errors = []

    def walk(node) -> None:
        if node.is_error or node.is_missing:
            row, col = node.start_point
            errors.append(f"{row + 1}:{col + 1} {node.type} {node.text[:40]!r}")
        for child in node.children:
            walk(child)

    walk(parser.parse(source).root_node)
    return errors


@pytest.mark.parametrize("script", PS_SCRIPTS, ids=lambda p: p.name)
def test_powershell_parses_tree_sitter(script: Path) -> None:
    # The checker must see a real mistake before its silence means anything.
    assert tree_sitter_errors(b"function f { if ($x) { Write-Host 'a' }\n")
    assert tree_sitter_errors(script.read_bytes()) == []


@pytest.mark.parametrize("script", PS_SCRIPTS, ids=lambda p: p.name)
def test_powershell_parses_pwsh(script: Path) -> None:
    pwsh = shutil.which("pwsh")
    if not pwsh:
        pytest.skip("pwsh (PowerShell 7) is not installed: Debian does not package it")
    command = (
        "$e = $null; [void][System.Management.Automation.Language.Parser]::ParseFile($args[0], [ref]$null, [ref]$e);"
        " $e | ForEach-Object { $_.ToString() }; exit $e.Count"
    )
    result = subprocess.run(
        [pwsh, "-NoProfile", "-NonInteractive", "-Command", command, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the icon -----------------------------------------------------------------------------------


def check_ico(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "ICO"
        sizes = set(image.info["sizes"])
        assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= sizes
        image.size = (256, 256)
        image.load()
        assert image.getpixel((128, 128))[3] == 255 and image.getpixel((0, 0))[3] == 0  # opaque bubble, clear corner


def test_committed_icon_is_a_real_ico() -> None:
    check_ico(ICO)


def test_icon_generator_rebuilds_it(tmp_path: Path) -> None:
    out = tmp_path / "app.ico"
    result = subprocess.run(
        [sys.executable, str(WIN / "make_icon.py"), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 0, result.stderr
    check_ico(out)


# --- uv for the bundle --------------------------------------------------------------------------


def simple_index(url: str, accept: str) -> dict:
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    except OSError as exc:
        pytest.skip(f"PyPI is not reachable: {exc}")


def test_pypi_has_the_uv_wheel_build_ps1_fetches() -> None:
    """The same query build.ps1 makes (URL, Accept header, file name, hash field), asked of PyPI."""
    build = BUILD.read_text(encoding="utf-8")
    version = re.search(r"\[string\]\$UvVersion = '([^']+)'", build).group(1)
    query = re.search(r"Invoke-RestMethod -Uri '([^']+)' -Headers @\{ Accept = '([^']+)' \}", build)
    name = re.search(r'\$_\.filename -eq "([^"]+)"', build).group(1).replace("$Version", version)
    index = simple_index(query.group(1), query.group(2))
    wheels = [f for f in index["files"] if f["filename"] == name]
    assert len(wheels) == 1 and len(wheels[0]["hashes"]["sha256"]) == 64
    assert "$wheel.hashes.sha256" in build and "$wheel.url" in build
