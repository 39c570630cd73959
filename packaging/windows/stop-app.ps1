<#
.SYNOPSIS
    Stops Chatterbox Tray (the tray app and the daemon) running from an install folder.

.DESCRIPTION
    Run by the installer before it replaces files and by the uninstaller before it
    removes them: a running Python holds its DLLs open. First asks the daemon to
    shut down cleanly (it finishes writing its cache), then ends whatever process
    still runs an executable from inside the install folder. Processes started
    from anywhere else (a checkout, another install) are left alone.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)][string]$AppDir
)

$ErrorActionPreference = 'Continue'
$AppDir = $AppDir.TrimEnd('\')
$prefix = $AppDir + '\'

$cli = Join-Path $AppDir '.venv\Scripts\chatterbox-tray.exe'
if (Test-Path -LiteralPath $cli) {
    # --no-start: never start a daemon just to stop it. Gives up after its own timeout.
    $job = Start-Process -FilePath $cli -ArgumentList @('--no-start', 'shutdown') -WindowStyle Hidden -PassThru
    if (-not $job.WaitForExit(15000)) { $job.Kill() }
}

function Get-AppProcesses {
    @(Get-CimInstance -ClassName Win32_Process -ErrorAction SilentlyContinue | Where-Object {
            $_.ExecutablePath -and $_.ExecutablePath.StartsWith($prefix, [System.StringComparison]::OrdinalIgnoreCase)
        })
}

# Give the daemon a few seconds to exit by itself after the shutdown request.
for ($i = 0; $i -lt 10 -and (Get-AppProcesses).Count -gt 0; $i++) { Start-Sleep -Milliseconds 500 }
foreach ($proc in Get-AppProcesses) {
    Write-Host "stopping $($proc.Name) (pid $($proc.ProcessId))"
    Stop-Process -Id $proc.ProcessId -Force -ErrorAction SilentlyContinue
}
exit 0
