; Chatterbox Tray: Inno Setup 6 script for a per-user Windows installer.
;
; Build it with build.ps1 (it fetches uv.exe, then runs ISCC), or by hand:
;   iscc /DAppVersion=0.1.0 /DUvExe=build\uv\uv.exe chatterbox-tray.iss
;
; What it does:
;  - installs the project source (pyproject.toml, uv.lock, _pkg, daemon, ipc, gui)
;    and uv.exe into %LOCALAPPDATA%\Programs\Chatterbox Tray; no administrator needed;
;  - runs setup\setup-env.ps1, which has uv install Python 3.11 and the locked
;    packages into that folder, with torch's CUDA 12.8 build (RTX 50-series
;    included) when there is an NVIDIA GPU and the CPU build otherwise;
;  - Start-menu entries for the app (pythonw, so no console window), for repairing
;    the environment and for uninstalling; an optional desktop shortcut;
;  - an optional "start when I sign in" task: the same HKCU Run value,
;    "chatterbox-tray", that the app's Settings page turns on and off;
;  - uninstalling removes the program folder but keeps the user's voices,
;    settings and cache (%LOCALAPPDATA%\chatterbox-tray) unless the user says
;    otherwise when asked, or passes /PURGE to the uninstaller.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef UvExe
  #define UvExe "build\uv\uv.exe"
#endif
#define AppName "Chatterbox Tray"
; Must match gui/autostart.py's APP_ID: the Run value's name and the data folder's.
#define AppIdName "chatterbox-tray"
#define RunKey "Software\Microsoft\Windows\CurrentVersion\Run"
#define RepoRoot "..\.."
#define GuiArgs "-m chatterbox_tray.gui"
; Windows PowerShell 5.1, on every Windows 10 and 11; the full path, since a shortcut does not search PATH.
#define PowerShell "{sys}\WindowsPowerShell\v1.0\powershell.exe"

[Setup]
AppId={{139A8FA3-B29B-406B-BA82-45D5667ACA82}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=Chatterbox Tray contributors
AppComments=Text to speech with Chatterbox TTS, from the system tray
DefaultDirName={localappdata}\Programs\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
UsedUserAreasWarning=no
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir={#RepoRoot}\dist
OutputBaseFilename=chatterbox-tray-{#AppVersion}-setup
SetupIconFile=chatterbox-tray.ico
UninstallDisplayIcon={app}\chatterbox-tray.ico
UninstallDisplayName={#AppName}
Compression=lzma2
SolidCompression=yes
WizardStyle=modern
; setup-env.ps1 and stop-app.ps1 stop and start the app themselves.
CloseApplications=no
SetupLogging=yes

[Tasks]
Name: "autostart"; Description: "Start {#AppName} when I sign in"; GroupDescription: "Options:"; Flags: unchecked
Name: "desktopicon"; Description: "Create a desktop shortcut"; GroupDescription: "Options:"; Flags: unchecked

[Files]
Source: "{#RepoRoot}\pyproject.toml"; DestDir: "{app}"; Flags: ignoreversion
Source: "{#RepoRoot}\uv.lock"; DestDir: "{app}"; Flags: ignoreversion
; pyproject.toml names README.md as the readme: building the package needs it.
Source: "{#RepoRoot}\README.md"; DestDir: "{app}"; Flags: ignoreversion
; One line per folder of pyproject.toml's [tool.setuptools] package-dir (the one
; list of them; tests/packaging/test_windows_installer.py checks this against it),
; each whole with its subfolders, so a new subpackage ships without an edit here.
Source: "{#RepoRoot}\_pkg\*.py"; DestDir: "{app}\_pkg"; Flags: ignoreversion recursesubdirs createallsubdirs
Source: "{#RepoRoot}\daemon\*.py"; DestDir: "{app}\daemon"; Flags: ignoreversion recursesubdirs createallsubdirs
Source: "{#RepoRoot}\ipc\*.py"; DestDir: "{app}\ipc"; Flags: ignoreversion recursesubdirs createallsubdirs
Source: "{#RepoRoot}\gui\*.py"; DestDir: "{app}\gui"; Flags: ignoreversion recursesubdirs createallsubdirs
Source: "{#RepoRoot}\bridges\*.py"; DestDir: "{app}\bridges"; Flags: ignoreversion recursesubdirs createallsubdirs
Source: "{#RepoRoot}\audio\*.py"; DestDir: "{app}\audio"; Flags: ignoreversion recursesubdirs createallsubdirs
Source: "{#RepoRoot}\cli\*.py"; DestDir: "{app}\cli"; Flags: ignoreversion recursesubdirs createallsubdirs
Source: "{#UvExe}"; DestDir: "{app}"; Flags: ignoreversion
Source: "setup-env.ps1"; DestDir: "{app}\setup"; Flags: ignoreversion
Source: "stop-app.ps1"; DestDir: "{app}\setup"; Flags: ignoreversion
Source: "chatterbox-tray.ico"; DestDir: "{app}"; Flags: ignoreversion

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\.venv\Scripts\pythonw.exe"; Parameters: "{#GuiArgs}"; WorkingDir: "{app}"; IconFilename: "{app}\chatterbox-tray.ico"; Comment: "Text to speech with Chatterbox TTS"; AppUserModelID: "{#AppIdName}"
Name: "{group}\Repair {#AppName}"; Filename: "{#PowerShell}"; Parameters: "-NoProfile -ExecutionPolicy Bypass -File ""{app}\setup\setup-env.ps1"" -AppDir ""{app}"""; WorkingDir: "{app}"; IconFilename: "{app}\chatterbox-tray.ico"; Comment: "Reinstall the Python environment (picks the torch build again)"
Name: "{group}\Uninstall {#AppName}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\.venv\Scripts\pythonw.exe"; Parameters: "{#GuiArgs}"; WorkingDir: "{app}"; IconFilename: "{app}\chatterbox-tray.ico"; Tasks: desktopicon

[Registry]
; The value gui/autostart.py reads and writes: same key, same name; --minimized starts in the tray.
Root: HKCU; Subkey: "{#RunKey}"; ValueType: string; ValueName: "{#AppIdName}"; ValueData: """{app}\.venv\Scripts\pythonw.exe"" {#GuiArgs} --minimized"; Tasks: autostart; Flags: uninsdeletevalue

[Run]
Filename: "{app}\.venv\Scripts\pythonw.exe"; Parameters: "{#GuiArgs}"; WorkingDir: "{app}"; Description: "Start {#AppName} now"; Flags: postinstall nowait skipifsilent; Check: EnvironmentReady

[UninstallRun]
Filename: "{#PowerShell}"; Parameters: "-NoProfile -ExecutionPolicy Bypass -File ""{app}\setup\stop-app.ps1"" -AppDir ""{app}"""; Flags: runhidden waituntilterminated; RunOnceId: "StopApp"

[UninstallDelete]
; What setup-env.ps1 and the package build made inside the program folder. Named
; one by one (not the whole of {app}) so that a folder the user picked is never emptied.
Type: filesandordirs; Name: "{app}\.venv"
Type: filesandordirs; Name: "{app}\python"
Type: filesandordirs; Name: "{app}\cache"
Type: filesandordirs; Name: "{app}\build"
Type: filesandordirs; Name: "{app}\chatterbox_tray.egg-info"
Type: filesandordirs; Name: "{app}\_pkg"
Type: filesandordirs; Name: "{app}\daemon"
Type: filesandordirs; Name: "{app}\ipc"
Type: filesandordirs; Name: "{app}\gui"
Type: filesandordirs; Name: "{app}\bridges"
Type: filesandordirs; Name: "{app}\audio"
Type: filesandordirs; Name: "{app}\cli"
Type: files; Name: "{app}\setup.log"
Type: files; Name: "{app}\torch-build.txt"
Type: dirifempty; Name: "{app}\setup"
Type: dirifempty; Name: "{app}"

[Code]
var
  EnvOk: Boolean;
  PurgeUserData: Boolean;

function HasParam(const Name: String): Boolean;
var
  I: Integer;
begin
  Result := False;
  for I := 1 to ParamCount do
    if CompareText(ParamStr(I), Name) = 0 then
      Result := True;
end;

function PowerShellArgs(const Script, Extra: String): String;
begin
  Result := '-NoProfile -ExecutionPolicy Bypass -File "' + Script + '" ' + Extra;
end;

function TorchChoice: String;
begin
  { setup.exe /TORCH=cpu or /TORCH=cuda overrides the GPU detection. }
  Result := Lowercase(ExpandConstant('{param:TORCH|auto}'));
  if (Result <> 'cpu') and (Result <> 'cuda') then
    Result := 'auto';
end;

function EnvironmentReady: Boolean;
begin
  Result := EnvOk and FileExists(ExpandConstant('{app}\.venv\Scripts\pythonw.exe'));
end;

procedure StopRunningApp(const Script, Dir: String);
var
  Code: Integer;
begin
  if DirExists(Dir) then
    Exec(ExpandConstant('{#PowerShell}'), PowerShellArgs(Script, '-AppDir "' + Dir + '"'), '', SW_HIDE,
      ewWaitUntilTerminated, Code);
end;

function PrepareToInstall(var NeedsRestart: Boolean): String;
begin
  { An older copy may be running: its Python holds the environment's DLLs open. }
  Result := '';
  ExtractTemporaryFile('stop-app.ps1');
  StopRunningApp(ExpandConstant('{tmp}\stop-app.ps1'), WizardDirValue);
end;

procedure CurStepChanged(CurStep: TSetupStep);
var
  Code: Integer;
  Params: String;
begin
  if CurStep <> ssPostInstall then
    exit;
  WizardForm.StatusLabel.Caption :=
    'Installing Python and the speech model''s packages (a few GB the first time; this window shows the progress)...';
  Params := PowerShellArgs(ExpandConstant('{app}\setup\setup-env.ps1'),
    '-AppDir "' + ExpandConstant('{app}') + '" -Torch ' + TorchChoice + ' -NoPause');
  EnvOk := Exec(ExpandConstant('{#PowerShell}'), Params, ExpandConstant('{app}'), SW_SHOWNORMAL, ewWaitUntilTerminated, Code)
    and (Code = 0);
  if not EnvOk then
    SuppressibleMsgBox('Setting up the Python environment failed (see ' + ExpandConstant('{app}\setup.log') + ').' + #13#10 +
      'Check the internet connection, then run "Repair {#AppName}" from the Start menu.',
      mbError, MB_OK, IDOK);
end;

procedure RemoveAutostartValue;
var
  Value: String;
begin
  { Only a value that starts this install: the Settings page may point it elsewhere. }
  if RegQueryStringValue(HKCU, '{#RunKey}', '{#AppIdName}', Value) then
    if Pos(Lowercase(ExpandConstant('{app}')), Lowercase(Value)) > 0 then
      RegDeleteValue(HKCU, '{#RunKey}', '{#AppIdName}');
end;

function HubCacheDir: String;
begin
  { Where huggingface_hub keeps downloaded weights, as it decides. }
  Result := GetEnv('HF_HUB_CACHE');
  if Result = '' then
  begin
    Result := GetEnv('HF_HOME');
    if Result <> '' then
      Result := Result + '\hub'
    else
      Result := ExpandConstant('{%USERPROFILE}') + '\.cache\huggingface\hub';
  end;
end;

procedure RemoveModelWeights;
var
  Hub: String;
  Found: TFindRec;
begin
  Hub := HubCacheDir;
  if FindFirst(Hub + '\models--ResembleAI--chatterbox*', Found) then
  begin
    try
      repeat
        if (Found.Attributes and FILE_ATTRIBUTE_DIRECTORY) <> 0 then
          DelTree(Hub + '\' + Found.Name, True, True, True);
      until not FindNext(Found);
    finally
      FindClose(Found);
    end;
  end;
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  DataDir: String;
begin
  DataDir := ExpandConstant('{localappdata}\{#AppIdName}');
  if CurUninstallStep = usUninstall then
  begin
    { Keep the user's things unless asked: silent uninstalls keep them too, unless /PURGE. }
    PurgeUserData := HasParam('/PURGE');
    if (not PurgeUserData) and DirExists(DataDir) then
      PurgeUserData := SuppressibleMsgBox(
        'Also remove your voices, settings and cache, and the downloaded Chatterbox model weights?' + #13#10 + #13#10 +
        'They are in ' + DataDir + ' and ' + HubCacheDir + '.' + #13#10 +
        'Choose No to keep them for a later install.',
        mbConfirmation, MB_YESNO or MB_DEFBUTTON2, IDNO) = IDYES;
    RemoveAutostartValue;
  end;
  if CurUninstallStep = usPostUninstall then
  begin
    { The daemon's runtime folder (sockets, connection file) is never worth keeping. }
    DelTree(ExpandConstant('{localappdata}\Temp\{#AppIdName}'), True, True, True);
    if PurgeUserData then
    begin
      DelTree(DataDir, True, True, True);
      RemoveModelWeights;
    end;
  end;
end;
