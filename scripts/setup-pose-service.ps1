<#
The pose-service set-up (Windows): the same steps as setup-pose-service.sh.

Find or make a Python interpreter that can import every module in
pose-service/posepool_worker/python-modules.txt and record it in pose-service/.python-choice.json, which the server, the doctor and the test runner read.

  powershell -NoProfile -ExecutionPolicy Bypass -File scripts\setup-pose-service.ps1 [-Tests] [-Force]
    -Tests   also make sure the tests' modules (pytest) are there (npm test passes it)
    -Force   ignore the recorded choice and search again

Candidates, in order (each checked by importing the modules with it): POSE_PYTHON,
pose-service\.venv, python3 and python on PATH, the py launcher (py -3). If none has them: a new
pose-service\.venv with pip when a package index answers, else a message saying what is missing and
how to fix it. Idempotent: with a recorded choice that still imports everything it takes one check.
POSEPOOL_SETUP_NO_INSTALL=1: only look for an interpreter, never create a venv or install packages.
#>
param([switch]$Tests, [switch]$Force)

Set-StrictMode -Version 2.0
# Native commands report through exit codes; stderr lines must not become terminating errors.
$ErrorActionPreference = 'Continue'

$Root = Split-Path -Parent $PSScriptRoot
$Service = Join-Path $Root 'pose-service'
$Choice = Join-Path $Service '.python-choice.json'
$Candidate = "$Choice.candidate"
$Check = Join-Path $Root 'scripts\check-python.py'
$ModulesFile = Join-Path $Service 'posepool_worker\python-modules.txt'
$Venv = Join-Path $Service '.venv'
$OnWindows = (-not (Test-Path variable:IsWindows)) -or $IsWindows
$VenvPython = if ($OnWindows) { Join-Path $Venv 'Scripts\python.exe' } else { Join-Path $Venv 'bin/python' }
$MayInstall = $env:POSEPOOL_SETUP_NO_INSTALL -ne '1'
$IndexTimeout = if ($env:POSEPOOL_INDEX_TIMEOUT_S) { $env:POSEPOOL_INDEX_TIMEOUT_S } else { '5' }

function Say([string]$Message) { Write-Host "setup: $Message" }
function Fail([string]$Message) {
  Remove-Item -Force -ErrorAction SilentlyContinue $Candidate
  [Console]::Error.WriteLine("setup: FAILED: $Message")
  exit 1
}

# --- the module table ---------------------------------------------------------------------------
$WorkerModules = @(); $WorkerPips = @(); $TestModules = @(); $TestPips = @()
foreach ($line in Get-Content -LiteralPath $ModulesFile) {
  $text = ($line -split '#', 2)[0].Trim()
  if (-not $text) { continue }
  $cols = $text -split '\s+'
  if ($cols[3] -eq 'tests') { $TestModules += $cols[0]; $TestPips += $cols[1] }
  else { $WorkerModules += $cols[0]; $WorkerPips += $cols[1] }
}
if ($WorkerModules.Count -eq 0) { Fail "no modules listed in $ModulesFile" }

# pip's arguments for the worker's packages (and the tests' with -Tests).
function Get-RequirementArgs {
  $dev = Join-Path $Service 'requirements-dev.txt'
  $req = Join-Path $Service 'requirements.txt'
  if ($Tests -and (Test-Path -LiteralPath $dev)) { return @('-r', $dev) }
  $list = @()
  if (Test-Path -LiteralPath $req) { $list += @('-r', $req) } else { $list += $WorkerPips }
  if ($Tests) { $list += $TestPips }
  return $list
}

# A candidate is a command with its leading arguments: @('C:\...\python.exe') or @('py', '-3').
$script:Rejected = @()
$script:CheckLine = ''

# Runs the import check; returns 0 (ok), 1 (a worker module missing / not usable) or 2 (only a tests
# module missing). On 0 the checker has also written the would-be record to $Candidate.
function Invoke-Check([string[]]$Cmd, [string]$How) {
  Remove-Item -Force -ErrorAction SilentlyContinue $Candidate
  $env:POSEPOOL_REJECTED = ($script:Rejected -join "`n")
  $arguments = @()
  if ($Cmd.Count -gt 1) { $arguments += $Cmd[1..($Cmd.Count - 1)] }
  $arguments += @($Check)
  if ($Tests) { $arguments += '--tests' }
  $arguments += @('--write', $Candidate, '--how', $How)
  $out = $null
  $rc = 1
  try {
    $out = & $Cmd[0] @arguments 2>$null
    $rc = $LASTEXITCODE
  } catch {
    $out = $null
    $rc = 1
  }
  $line = @($out | Where-Object { $_ }) | Select-Object -Last 1
  if (-not $line) {
    $line = "$($Cmd -join ' ') is not a usable Python 3 (the check exited with status $rc)"
    if ($rc -eq 0) { $rc = 1 }
  }
  if ($rc -gt 2 -or $rc -lt 0) { $rc = 1 }
  $script:CheckLine = [string]$line
  return [int]$rc
}

function Save-Choice([string]$How) {
  if (-not (Test-Path -LiteralPath $Candidate)) { Fail 'internal: no checked interpreter to record' }
  Move-Item -Force -LiteralPath $Candidate -Destination $Choice
  Say "using $($script:CheckLine)"
  Say "recorded in pose-service\.python-choice.json (how: $How)"
}

function Test-Index([string]$Python) {
  foreach ($pkg in $WorkerPips) {
    & $Python -m pip index versions $pkg --timeout $IndexTimeout --retries 0 --disable-pip-version-check *> $null
    if ($LASTEXITCODE -ne 0) { return $false }
  }
  return $true
}

$script:Chosen = $null; $script:ChosenHow = $null; $script:TestsMissingIn = $null

# --- 1. the recorded choice, still good? ----------------------------------------------------------
if (-not $Force -and (Test-Path -LiteralPath $Choice)) {
  $record = $null
  try { $record = Get-Content -Raw -LiteralPath $Choice | ConvertFrom-Json } catch { $record = $null }
  $recordedPython = if ($record -and $record.PSObject.Properties['python']) { [string]$record.python } else { '' }
  if ($recordedPython -and (Test-Path -LiteralPath $recordedPython) -and
      (-not $env:POSE_PYTHON -or $env:POSE_PYTHON -eq $recordedPython)) {
    $how = if ($record.PSObject.Properties['how']) { [string]$record.how } else { 'found' }
    $rc = Invoke-Check @($recordedPython) $how
    if ($rc -eq 0) { Save-Choice $how; exit 0 }
    if ($rc -eq 2) { $script:Chosen = @($recordedPython); $script:ChosenHow = $how; $script:TestsMissingIn = $script:CheckLine }
    else { Say "the recorded interpreter no longer works: $($script:CheckLine); searching again" }
  }
}

# --- 2. candidates ------------------------------------------------------------------------------------
function Test-Candidate([string[]]$Cmd, [string]$How) {
  $rc = Invoke-Check $Cmd $How
  if ($rc -eq 0 -or $rc -eq 2) {
    $script:Chosen = $Cmd; $script:ChosenHow = $How
    if ($rc -eq 2) { $script:TestsMissingIn = $script:CheckLine }
    return $true
  }
  Say "rejected: $($script:CheckLine)"
  $script:Rejected += "$($Cmd -join ' ')`t$($script:CheckLine)"
  return $false
}

if (-not $script:Chosen -and $env:POSE_PYTHON) {
  $py = $env:POSE_PYTHON
  if (-not (Get-Command $py -ErrorAction SilentlyContinue)) {
    Fail "POSE_PYTHON=$py does not exist. Unset POSE_PYTHON to let the set-up choose, or point it at a Python 3 with: $($WorkerModules -join ' ')"
  }
  if (-not (Test-Candidate @($py) 'env')) {
    Fail "POSE_PYTHON=$py cannot be used by the workers ($($script:CheckLine)). Unset POSE_PYTHON to let the set-up choose, or install the packages into it: $py -m pip install $((Get-RequirementArgs) -join ' ')"
  }
}

$seen = @{}
function Try-Candidate([string[]]$Cmd, [string]$How) {
  if ($script:Chosen) { return }
  $found = Get-Command $Cmd[0] -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
  if (-not $found) { return }
  $resolved = @($found.Path) + @($Cmd | Select-Object -Skip 1)
  $key = $resolved -join ' '
  if ($seen.ContainsKey($key)) { return }
  $seen[$key] = $true
  [void](Test-Candidate $resolved $How)
}

Try-Candidate @($VenvPython) 'venv'
Try-Candidate @('python3') 'path'
Try-Candidate @('python') 'path'
Try-Candidate @('py', '-3') 'py-launcher'

# --- 3. make one: a venv with pip ---------------------------------------------------------------------
if (-not $script:Chosen -and $MayInstall) {
  $base = $null
  foreach ($cmd in @(@($VenvPython), @('python3'), @('python'), @('py', '-3'))) {
    if (-not (Get-Command $cmd[0] -ErrorAction SilentlyContinue)) { continue }
    $rest = @($cmd | Select-Object -Skip 1)
    & $cmd[0] @rest -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 9))' *> $null
    if ($LASTEXITCODE -eq 0) { $base = $cmd; break }
  }
  if ($base) {
    $created = $false
    if (-not (Test-Path -LiteralPath $VenvPython)) {
      Say "creating pose-service\.venv with $($base -join ' ')"
      Remove-Item -Recurse -Force -ErrorAction SilentlyContinue $Venv
      $rest = @($base | Select-Object -Skip 1)
      & $base[0] @rest -m venv $Venv
      if ($LASTEXITCODE -eq 0) { $created = $true }
    }
    if (Test-Path -LiteralPath $VenvPython) {
      Say "is a package index reachable? (pip, ${IndexTimeout}s timeout)"
      if (Test-Index $VenvPython) {
        $reqArgs = Get-RequirementArgs
        & $VenvPython -m pip install --disable-pip-version-check @reqArgs
        if ($LASTEXITCODE -eq 0) { [void](Test-Candidate @($VenvPython) 'pip-venv') }
        else { Say 'pip install into pose-service\.venv failed' }
      } else {
        Say 'no package index answers'
        if ($created) { Remove-Item -Recurse -Force -ErrorAction SilentlyContinue $Venv }
      }
    }
  }
}

if (-not $script:Chosen) {
  $tried = ($script:Rejected | ForEach-Object { '  ' + ($_ -split "`t", 2)[1] } | Select-Object -Unique) -join "`n"
  Fail ("no Python interpreter here can import: $($WorkerModules -join ' ').`nTried:`n$tried`n" +
    "Fix one of these, then run ``npm run setup`` again:`n" +
    "  - install Python 3.11 (winget install Python.Python.3.11, or python.org), then rerun: the set-up makes pose-service\.venv`n" +
    "  - install the packages into a Python 3.9+: py -3 -m pip install $((Get-RequirementArgs) -join ' ')`n" +
    '  - or point POSE_PYTHON at an interpreter that has them')
}

# --- 4. the tests' modules for the chosen interpreter --------------------------------------------------
if ($script:TestsMissingIn) {
  Say "for the tests: $($script:TestsMissingIn)"
  $py = $script:Chosen[0]
  if ($MayInstall -and $py -eq $VenvPython -and (Test-Index $py)) {
    & $py -m pip install --disable-pip-version-check @TestPips
  }
  if ((Invoke-Check $script:Chosen $script:ChosenHow) -ne 0) {
    Fail "the tests need $($TestModules -join ' ') in $($script:Chosen -join ' '): install with $($script:Chosen -join ' ') -m pip install $($TestPips -join ' ')"
  }
}

Save-Choice $script:ChosenHow
exit 0
