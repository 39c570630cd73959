<#
.SYNOPSIS
    Builds the Chatterbox Tray installer: fetches uv.exe, then compiles chatterbox-tray.iss.

.DESCRIPTION
    Needs Windows, PowerShell 5.1 or 7, Inno Setup 6 (ISCC.exe) and the internet.
    uv.exe comes from uv's win_amd64 wheel on PyPI, checked against the SHA-256
    PyPI's simple index publishes for it. The version of the app comes from pyproject.toml.
    The installer lands in <repo>\dist\chatterbox-tray-<version>-setup.exe.

.PARAMETER UvVersion
    Which uv to bundle (default: the one this was tested with).

.PARAMETER Iscc
    Path to ISCC.exe; default: found on PATH or in Inno Setup 6's usual folders.

.PARAMETER UvExe
    Use this uv.exe instead of downloading one (offline builds).

.EXAMPLE
    powershell -NoProfile -ExecutionPolicy Bypass -File packaging\windows\build.ps1
#>
[CmdletBinding()]
param(
    [string]$UvVersion = '0.13.9',
    [string]$Iscc = '',
    [string]$UvExe = ''
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
$ProgressPreference = 'SilentlyContinue'  # Invoke-WebRequest is many times slower with the progress bar

$here = $PSScriptRoot
$repo = (Resolve-Path (Join-Path $here '..\..')).Path
$buildDir = Join-Path $here 'build'
$uvDir = Join-Path $buildDir 'uv'

function Get-ProjectVersion {
    $text = Get-Content -LiteralPath (Join-Path $repo 'pyproject.toml') -Raw
    $match = [regex]::Match($text, '(?m)^version\s*=\s*"([^"]+)"')
    if (-not $match.Success) { throw 'no version in pyproject.toml' }
    return $match.Groups[1].Value
}

function Find-Iscc {
    if ($Iscc) { return $Iscc }
    $onPath = Get-Command 'ISCC.exe' -ErrorAction SilentlyContinue
    if ($onPath) { return $onPath.Source }
    $candidates = @(
        (Join-Path ${env:ProgramFiles(x86)} 'Inno Setup 6\ISCC.exe'),
        (Join-Path $env:ProgramFiles 'Inno Setup 6\ISCC.exe'),
        (Join-Path $env:LOCALAPPDATA 'Programs\Inno Setup 6\ISCC.exe')
    )
    foreach ($candidate in $candidates) { if (Test-Path -LiteralPath $candidate) { return $candidate } }
    throw 'ISCC.exe not found: install Inno Setup 6 (winget install JRSoftware.InnoSetup) or pass -Iscc'
}

function Get-UvFromPyPI([string]$Version, [string]$Destination) {
    # PyPI's JSON simple index (PEP 691) lists every file of uv with its SHA-256.
    $index = Invoke-RestMethod -Uri 'https://pypi.org/simple/uv/' -Headers @{ Accept = 'application/vnd.pypi.simple.v1+json' }
    $wheel = @($index.files | Where-Object { $_.filename -eq "uv-$Version-py3-none-win_amd64.whl" })
    if ($wheel.Count -ne 1) { throw "uv $Version has no win_amd64 wheel on PyPI" }
    $wheel = $wheel[0]
    New-Item -ItemType Directory -Force -Path $buildDir | Out-Null
    $zip = Join-Path $buildDir "uv-$Version-win_amd64.zip"  # a wheel is a zip; Expand-Archive wants the name
    Write-Host "downloading $($wheel.filename)"
    Invoke-WebRequest -Uri $wheel.url -OutFile $zip
    $hash = (Get-FileHash -LiteralPath $zip -Algorithm SHA256).Hash.ToLowerInvariant()
    if ($hash -ne $wheel.hashes.sha256) { throw "SHA-256 mismatch for $($wheel.filename): $hash" }
    $unpacked = Join-Path $buildDir 'uv-wheel'
    if (Test-Path -LiteralPath $unpacked) { Remove-Item -Recurse -Force -LiteralPath $unpacked }
    Expand-Archive -LiteralPath $zip -DestinationPath $unpacked
    $exe = Get-ChildItem -LiteralPath $unpacked -Recurse -Filter 'uv.exe' | Select-Object -First 1
    if (-not $exe) { throw "no uv.exe inside $($wheel.filename)" }
    New-Item -ItemType Directory -Force -Path $Destination | Out-Null
    Copy-Item -LiteralPath $exe.FullName -Destination (Join-Path $Destination 'uv.exe') -Force
}

$version = Get-ProjectVersion
$target = Join-Path $uvDir 'uv.exe'
if ($UvExe) {
    New-Item -ItemType Directory -Force -Path $uvDir | Out-Null
    Copy-Item -LiteralPath $UvExe -Destination $target -Force
}
else {
    Get-UvFromPyPI $UvVersion $uvDir
}
$uvReports = & $target --version
Write-Host "bundling $uvReports"

$compiler = Find-Iscc
Write-Host "compiling the installer for Chatterbox Tray $version with $compiler"
& $compiler "/DAppVersion=$version" "/DUvExe=$target" (Join-Path $here 'chatterbox-tray.iss')
if ($LASTEXITCODE -ne 0) { throw "ISCC failed with exit code $LASTEXITCODE" }
Get-ChildItem -LiteralPath (Join-Path $repo 'dist') -Filter "chatterbox-tray-$version-setup.exe" | ForEach-Object {
    Write-Host "built $($_.FullName) ($([math]::Round($_.Length / 1048576, 1)) MB)"
}
