<#
.SYNOPSIS
    Creates (or repairs) Chatterbox Tray's Python environment in the install folder.

.DESCRIPTION
    Run by the installer after it has copied the project source and uv.exe, and by
    the "Repair Chatterbox Tray" Start-menu entry. Everything it downloads stays
    inside the install folder, so uninstalling frees it all:

        <AppDir>\uv.exe          the bundled uv
        <AppDir>\python\         the Python 3.11 that uv installs (UV_PYTHON_INSTALL_DIR)
        <AppDir>\.venv\          the environment (UV_PROJECT_ENVIRONMENT)
        <AppDir>\cache\uv\       uv's download cache (UV_CACHE_DIR)
        <AppDir>\torch-build.txt which torch build was installed, and why
        <AppDir>\setup.log       this script's transcript

    PyPI's torch wheels for Windows are CPU-only. When the machine has an NVIDIA
    GPU (or -Torch cuda is given) the environment gets torch and torchaudio from
    the PyTorch CUDA 12.8 index instead, which has kernels for every card from
    Maxwell up to the RTX 50 series (sm_120). Without one it keeps the CPU build.

.PARAMETER AppDir
    The install folder (the one holding pyproject.toml, uv.lock and uv.exe).

.PARAMETER Torch
    auto (default): CUDA build when an NVIDIA GPU is found, else CPU.
    cuda / cpu: force one.

.EXAMPLE
    powershell -NoProfile -ExecutionPolicy Bypass -File setup-env.ps1 -AppDir "$env:LOCALAPPDATA\Programs\Chatterbox Tray"
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)][string]$AppDir,
    [ValidateSet('auto', 'cuda', 'cpu')][string]$Torch = 'auto',
    [switch]$NoPause
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

# The PyTorch wheel index with CUDA 12.8 builds: the first CUDA line whose
# Windows wheels include Blackwell (RTX 50-series, sm_120) kernels.
$CudaIndexUrl = 'https://download.pytorch.org/whl/cu128'
$CudaTag = 'cu128'
# CUDA 12.8 wants an R570 driver; older R525+ drivers still run it through CUDA
# minor-version compatibility, so an old driver only earns a warning.
$MinDriverForCuda128 = [version]'570.65'
$PythonVersion = '3.11'

function Write-Step([string]$Message) {
    Write-Host ''
    Write-Host "==> $Message" -ForegroundColor Cyan
}

function Get-LockedVersion([string]$LockText, [string]$Package) {
    # The version uv.lock pins for a package (its [[package]] entry: name, then version).
    # LOCK-VERSION-PATTERN (tests read this line): '(?m)^name = "{0}"\r?\nversion = "([^"]+)"'
    $pattern = '(?m)^name = "{0}"\r?\nversion = "([^"]+)"' -f [regex]::Escape($Package)
    $match = [regex]::Match($LockText, $pattern)
    if (-not $match.Success) { throw "uv.lock has no entry for $Package" }
    return $match.Groups[1].Value
}

function Get-NvidiaGpu {
    # Returns @{ Name; Driver; ComputeCap; Source } for the first NVIDIA GPU, or $null.
    # Windows PowerShell 5.1 turns a native command's redirected stderr into errors,
    # which 'Stop' would make fatal: a missing or failing nvidia-smi is an answer here.
    $ErrorActionPreference = 'Continue'
    $smi = Get-Command 'nvidia-smi.exe' -ErrorAction SilentlyContinue
    $smiPath = $null
    if ($smi) { $smiPath = $smi.Source }
    elseif (Test-Path (Join-Path $env:SystemRoot 'System32\nvidia-smi.exe')) {
        $smiPath = Join-Path $env:SystemRoot 'System32\nvidia-smi.exe'
    }
    if ($smiPath) {
        # compute_cap is a query field from driver R510 on; ask without it if it is refused.
        foreach ($fields in @('name,driver_version,compute_cap', 'name,driver_version')) {
            $lines = & $smiPath "--query-gpu=$fields" '--format=csv,noheader' 2>$null
            if ($LASTEXITCODE -eq 0 -and $lines) {
                $parts = @(([string]@($lines)[0]).Split(',') | ForEach-Object { $_.Trim() })
                $cap = ''
                if ($parts.Count -ge 3) { $cap = $parts[2] }
                return @{ Name = $parts[0]; Driver = $parts[1]; ComputeCap = $cap; Source = 'nvidia-smi' }
            }
        }
    }
    # No usable nvidia-smi: ask WMI for a display adapter made by NVIDIA.
    $adapters = @(Get-CimInstance -ClassName Win32_VideoController -ErrorAction SilentlyContinue |
        Where-Object { ($_.Name -match 'NVIDIA') -or ($_.AdapterCompatibility -match 'NVIDIA') })
    if ($adapters.Count -gt 0) {
        # WMI's DriverVersion is the Windows one, e.g. 32.0.15.7283 for NVIDIA 572.83.
        $driver = ''
        $digits = ($adapters[0].DriverVersion -replace '\.', '')
        if ($digits.Length -ge 5) {
            $tail = $digits.Substring($digits.Length - 5)
            $driver = '{0}.{1}' -f $tail.Substring(0, 3), $tail.Substring(3)
        }
        return @{ Name = $adapters[0].Name; Driver = $driver; ComputeCap = ''; Source = 'WMI' }
    }
    return $null
}

function Invoke-Uv([string[]]$UvArgs) {
    Write-Host "uv $($UvArgs -join ' ')"
    # uv reports on stderr. Through the pipeline (as text) it reaches both the
    # console and the transcript; 'Continue' keeps 5.1 from treating it as an error.
    $ErrorActionPreference = 'Continue'
    & $script:Uv @UvArgs 2>&1 | ForEach-Object { "$_" } | Out-Host
    if ($LASTEXITCODE -ne 0) { throw "uv $($UvArgs[0]) failed with exit code $LASTEXITCODE" }
}

$AppDir = (Resolve-Path -LiteralPath $AppDir).Path.TrimEnd('\')
$logFile = Join-Path $AppDir 'setup.log'
Start-Transcript -LiteralPath $logFile -Force | Out-Null
$status = 0
try {
    $script:Uv = Join-Path $AppDir 'uv.exe'
    if (-not (Test-Path -LiteralPath $script:Uv)) { throw "uv.exe is missing from $AppDir; reinstall Chatterbox Tray" }
    foreach ($needed in @('pyproject.toml', 'uv.lock')) {
        if (-not (Test-Path -LiteralPath (Join-Path $AppDir $needed))) { throw "$needed is missing from $AppDir" }
    }
    $venv = Join-Path $AppDir '.venv'
    $env:UV_PROJECT_ENVIRONMENT = $venv
    $env:UV_PYTHON_INSTALL_DIR = Join-Path $AppDir 'python'
    $env:UV_CACHE_DIR = Join-Path $AppDir 'cache\uv'
    # uv's own bin folder for tools is never used; keep it out of the user's PATH.
    $env:UV_NO_MODIFY_PATH = '1'

    $lockText = Get-Content -LiteralPath (Join-Path $AppDir 'uv.lock') -Raw
    $torchVersion = Get-LockedVersion $lockText 'torch'
    $torchaudioVersion = Get-LockedVersion $lockText 'torchaudio'

    Write-Step 'Looking for an NVIDIA GPU'
    $gpu = Get-NvidiaGpu
    $build = $Torch
    $reason = "asked for with -Torch $Torch"
    if ($Torch -eq 'auto') {
        if ($gpu) {
            $build = 'cuda'
            $reason = "found $($gpu.Name) (driver $($gpu.Driver), via $($gpu.Source))"
        }
        else {
            $build = 'cpu'
            $reason = 'no NVIDIA GPU found'
        }
    }
    Write-Host "torch build: $build ($reason)"
    if ($build -eq 'cuda' -and $gpu -and $gpu.Driver) {
        try {
            if ([version]$gpu.Driver -lt $MinDriverForCuda128) {
                Write-Warning ("NVIDIA driver $($gpu.Driver) is older than $MinDriverForCuda128, which CUDA 12.8 wants; " +
                    'update the driver if the GPU is not used (RTX 50-series cards need R570 or newer).')
            }
        }
        catch { Write-Host "could not read the driver version '$($gpu.Driver)'" }
    }

    Write-Step "Installing Python $PythonVersion and the locked packages (several minutes the first time)"
    $syncArgs = @('sync', '--project', $AppDir, '--frozen', '--no-dev', '--no-editable', '--compile-bytecode',
        '--python', $PythonVersion, '--managed-python')
    if ($build -eq 'cuda') {
        # Do not fetch PyPI's CPU wheels only to replace them: the CUDA ones come next.
        $syncArgs += @('--no-install-package', 'torch', '--no-install-package', 'torchaudio')
    }
    Invoke-Uv $syncArgs

    $python = Join-Path $venv 'Scripts\python.exe'
    if ($build -eq 'cuda') {
        Write-Step "Installing torch $torchVersion+$CudaTag and torchaudio $torchaudioVersion+$CudaTag (about 2.5 GB)"
        # --no-deps: the sync above already installed torch's dependencies from the lock.
        # --no-config: the project's [tool.uv] settings are for the sync, not this step.
        Invoke-Uv @('pip', 'install', '--no-config', '--python', $python, '--reinstall', '--no-deps',
            '--compile-bytecode', '--index-url', $CudaIndexUrl,
            "torch==$torchVersion+$CudaTag", "torchaudio==$torchaudioVersion+$CudaTag")
    }

    Write-Step 'Checking the environment'
    # No double quotes in the code: Windows PowerShell 5.1 mangles them in native arguments.
    $check = 'import torch, torchaudio, chatterbox_tray.gui.app; ' +
        'print(torch.__version__, torch.version.cuda, torch.cuda.is_available(), ' +
        '(torch.cuda.get_device_name(0) if torch.cuda.is_available() else ''-''))'
    $report = (& $python -c $check) -join ' '
    if ($LASTEXITCODE -ne 0) { throw 'the new environment cannot import torch or the app' }
    Write-Host "torch, CUDA, GPU usable, GPU: $report"
    if ($build -eq 'cuda' -and ($report -notmatch ' True ')) {
        Write-Warning ('torch was installed with CUDA but sees no usable GPU; the daemon will run on the CPU. ' +
            'Updating the NVIDIA driver usually fixes this; then run "Repair Chatterbox Tray".')
    }
    $longPaths = Get-ItemProperty -Path 'HKLM:\SYSTEM\CurrentControlSet\Control\FileSystem' -Name LongPathsEnabled `
        -ErrorAction SilentlyContinue
    if (-not $longPaths -or $longPaths.LongPathsEnabled -ne 1) {
        Write-Host 'note: Windows long paths are off; that is fine for this install folder.'
    }
    Set-Content -LiteralPath (Join-Path $AppDir 'torch-build.txt') -Encoding UTF8 -Value @(
        "build=$build", "reason=$reason", "torch=$report", "date=$(Get-Date -Format o)")
    Write-Step 'Chatterbox Tray is ready'
}
catch {
    $status = 1
    Write-Host ''
    Write-Host "Setting up Chatterbox Tray failed: $($_.Exception.Message)" -ForegroundColor Red
    Write-Host "The log is $logFile. Run 'Repair Chatterbox Tray' from the Start menu to try again."
}
finally {
    Stop-Transcript | Out-Null
}
if (-not $NoPause) { Read-Host 'Press Enter to close this window' | Out-Null }
exit $status
