#!/usr/bin/env pwsh
# NativeQuant build driver (Windows; also runs under pwsh on Linux). Mirrors build.sh.
#   ./build.ps1            set up everything (packages, native, managed, assets), then run the main job
#   ./build.ps1 test       build, then run every test (ctest + dotnet test); last line "N passed, N failed"
#   ./build.ps1 deps|native|managed|bindings|fetch|bench|demo|asan   individual steps
# Windows toolchain: CMake + clang-cl (the kernels use GCC-style ISA flags such as -mavx512f, which
# clang-cl accepts and cl.exe does not) with the MSVC libraries, Python with the clang module, .NET 10, npm.
[CmdletBinding()]
param([Parameter(Position = 0)][string]$Command = "all",
      [Parameter(ValueFromRemainingArguments = $true)][string[]]$Rest = @())

Set-StrictMode -Version Latest
$ErrorActionPreference = "Stop"
$Root = $PSScriptRoot
$Build = Join-Path $Root "build"
$Config = if ($env:NQ_CONFIG) { $env:NQ_CONFIG } else { "Release" }
$Jobs = if ($env:NQ_JOBS) { $env:NQ_JOBS } else { [Environment]::ProcessorCount }
$env:DOTNET_CLI_TELEMETRY_OPTOUT = "1"; $env:DOTNET_NOLOGO = "1"; $env:DOTNET_SKIP_FIRST_TIME_EXPERIENCE = "1"
$OnWindows = [System.Runtime.InteropServices.RuntimeInformation]::IsOSPlatform([System.Runtime.InteropServices.OSPlatform]::Windows)
# The generator needs a Python that has the clang module (on Debian: /usr/bin/python3, not a pyenv shim).
$Py = if ($env:NQ_PYTHON) { $env:NQ_PYTHON } elseif ($OnWindows) { "python" } else { "/usr/bin/python3" }

function Log([string]$Message) { [Console]::Error.WriteLine("$([char]27)[1m==> $Message$([char]27)[0m") }

# Runs a native command and stops the script when it fails (PowerShell does not do this by itself).
function Exec([string]$Exe, [string[]]$Arguments) {
  & $Exe @Arguments
  if ($LASTEXITCODE -ne 0) { throw "$Exe $($Arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

function Has([string]$Name) { [bool](Get-Command $Name -ErrorAction SilentlyContinue) }

function AsRoot([string[]]$CommandLine) {
  if ((& id -u) -eq "0") { Exec $CommandLine[0] $CommandLine[1..($CommandLine.Count - 1)] }
  else { Exec "sudo" $CommandLine }
}

# Debian packages this project needs (the same list as build.sh); installed only when missing.
$AptPackages = @("cmake", "g++", "make", "pkg-config", "libgtest-dev", "libbenchmark-dev", "python3", "python3-clang-14",
                 "libclang-14-dev", "libopenblas-dev", "libdnnl-dev")
# Tools that may come from outside Debian (e.g. a nodesource node ships its own npm): checked by command.
$AptForCommand = @{ npm = @("nodejs", "npm") }
# Windows equivalents: tools from winget, C++ libraries from vcpkg (VCPKG_ROOT), libclang for Python from pip.
$WingetPackages = [ordered]@{ cmake = "Kitware.CMake"; "clang-cl" = "LLVM.LLVM"; ninja = "Ninja-build.Ninja";
                             python = "Python.Python.3.12"; npm = "OpenJS.NodeJS.LTS" }
$VcpkgPackages = @("gtest", "benchmark", "openblas")

function Deps {
  if ($OnWindows) {
    $missing = @($WingetPackages.Keys | Where-Object { -not (Has $_) })
    if ($missing.Count -gt 0) {
      if (-not (Has "winget")) { throw "missing tools: $($missing -join ', '); install them (winget is not available)" }
      foreach ($tool in $missing) {
        Log "installing $($WingetPackages[$tool])"
        Exec "winget" @("install", "--silent", "--accept-package-agreements", "--accept-source-agreements", "-e", "--id", $WingetPackages[$tool])
      }
    }
    & $Py -c "import clang.cindex" 2>$null
    if ($LASTEXITCODE -ne 0) {
      Log "installing the Python libclang bindings"
      Exec $Py @("-m", "pip", "install", "--user", "libclang")
    }
    if (-not $env:VCPKG_ROOT) {
      throw "error: set VCPKG_ROOT to a vcpkg checkout; it provides GoogleTest, Google Benchmark and OpenBLAS on Windows"
    }
    Exec (Join-Path $env:VCPKG_ROOT "vcpkg.exe") (@("install", "--triplet", "x64-windows") + $VcpkgPackages)
  } else {
    $missing = @($AptPackages | Where-Object {
      (& dpkg-query -W -f='${Status}' $_ 2>$null) -notmatch "install ok installed" })
    foreach ($c in $AptForCommand.Keys) { if (-not (Has $c)) { $missing += $AptForCommand[$c] } }
    if ($missing.Count -gt 0) {
      Log "installing Debian packages: $($missing -join ' ')"
      AsRoot @("apt-get", "update", "-qq")
      $env:DEBIAN_FRONTEND = "noninteractive"
      AsRoot (@("apt-get", "install", "-y", "-qq") + $missing) | Out-Null
    }
  }
  if (-not (Has "dotnet")) {
    [Console]::Error.WriteLine("error: the .NET 10 SDK ('dotnet') is not installed. Install it (https://dot.net) and re-run ./build.ps1")
    exit 1
  }
}

# CMake configure arguments: on Windows, clang-cl with Ninja when both are on PATH (a developer
# prompt), else Visual Studio's ClangCL toolset; vcpkg's toolchain supplies the libraries.
function CMakeConfigureArgs([string]$Dir, [string[]]$Extra) {
  $a = @("-S", $Root, "-B", $Dir, "-DCMAKE_BUILD_TYPE=$Config")
  if (Has $Py) { $a += "-DNQ_PYTHON=$((Get-Command $Py).Source)" }
  if ($OnWindows) {
    if ((Has "clang-cl") -and (Has "ninja")) {
      $a += @("-G", "Ninja", "-DCMAKE_C_COMPILER=clang-cl", "-DCMAKE_CXX_COMPILER=clang-cl")
    } else {
      $a += @("-T", "ClangCL")
    }
    if ($env:VCPKG_ROOT) { $a += "-DCMAKE_TOOLCHAIN_FILE=$(Join-Path $env:VCPKG_ROOT 'scripts/buildsystems/vcpkg.cmake')" }
  }
  if ($env:NQ_CMAKE_ARGS) { $a += $env:NQ_CMAKE_ARGS -split '\s+' | Where-Object { $_ } }
  return $a + $Extra
}

function Native {
  Log "building native ($Config)"
  Exec "cmake" (CMakeConfigureArgs $Build @()) | Out-Null
  Exec "cmake" @("--build", $Build, "-j", "$Jobs", "--config", $Config)
}

# Extra arguments go to the generator, e.g. `./build.ps1 bindings --check`.
function Bindings([string[]]$GeneratorArgs = @()) {
  Log "generating C# bindings from native/include/nativequant.h"
  Exec $Py (@((Join-Path $Root "managed/NativeQuant.Interop/Generator/generate_bindings.py")) + $GeneratorArgs)
}

function Managed {
  Bindings
  Log "building managed ($Config)"
  Exec "dotnet" @("build", (Join-Path $Root "NativeQuant.sln"), "-c", $Config, "-nologo", "-v", "q")
}

function Nq { Exec "dotnet" (@((Join-Path $Root "managed/NativeQuant.Cli/bin/$Config/net10.0/nq.dll")) + $args) }

function Fetch { Log "fetching embedded assets"; Nq fetch }

# Executables land in build/bin, or build/bin/<Config> with multi-config generators.
function Bench {
  Native
  $exe = if ($OnWindows) { "nq_bench_*.exe" } else { "nq_bench_*" }
  $dirs = @(@((Join-Path $Build "bin"), (Join-Path $Build "bin/$Config")) | Where-Object { Test-Path $_ })
  if ($dirs.Count -eq 0) { return }
  foreach ($b in (Get-ChildItem -Path $dirs -Filter $exe -File | Sort-Object Name)) {
    Exec $b.FullName @("--benchmark_min_time=0.2")
  }
}

# AddressSanitizer + UBSan build of the kernel tests (separate build dir).
function Asan {
  Exec "cmake" (CMakeConfigureArgs "$Build-asan" @("-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DNQ_SANITIZE=ON", "-DNQ_BUILD_BENCH=OFF")) | Out-Null
  Exec "cmake" @("--build", "$Build-asan", "-j", "$Jobs", "--config", "RelWithDebInfo")
  $env:ASAN_OPTIONS = "detect_leaks=1"
  Exec "ctest" @("--test-dir", "$Build-asan", "-C", "RelWithDebInfo", "--output-on-failure", "-j", "$Jobs")
}

function Demo { Nq demo }

# Runs ctest and dotnet test, then prints one summary line "N passed, N failed".
function TestAll {
  $passed = 0; $failed = 0; $rc = 0
  Log "native tests (ctest)"
  $ctest = @(& ctest --test-dir $Build -C $Config --output-on-failure -j $Jobs 2>&1 | ForEach-Object { "$_" })
  $ctest | Write-Host
  if ($LASTEXITCODE -ne 0) { $rc = 1 }
  $line = $ctest | Where-Object { $_ -match '[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' } | Select-Object -Last 1
  if ($line -and $line -match ' ([0-9]+) tests failed out of ([0-9]+)') {
    $passed += [int]$Matches[2] - [int]$Matches[1]; $failed += [int]$Matches[1]
  } else {
    $failed += 1
  }
  Log "managed tests (dotnet test)"
  $dotnet = @(& dotnet test (Join-Path $Root "NativeQuant.sln") -c $Config --no-build -nologo 2>&1 | ForEach-Object { "$_" })
  $dotnet | Write-Host
  if ($LASTEXITCODE -ne 0) { $rc = 1 }
  $any = $false
  foreach ($l in $dotnet) {
    if ($l -match '(Passed|Failed)! +- Failed: +([0-9]+), Passed: +([0-9]+)') {
      $any = $true; $failed += [int]$Matches[2]; $passed += [int]$Matches[3]
    }
  }
  if (-not $any) { $failed += 1 }
  Write-Output "$passed passed, $failed failed"
  if ($rc -ne 0 -or $failed -ne 0) { exit 1 }
}

switch ($Command) {
  "deps" { Deps }
  "native" { Native }
  "bindings" { Bindings $Rest }
  "managed" { Managed }
  "fetch" { Fetch }
  "bench" { Bench }
  "asan" { Deps; Asan }
  "demo" { Deps; Native; Managed; Fetch; Demo }
  "test" { Deps; Native; Managed; Fetch; TestAll }
  "all" { Deps; Native; Managed; Fetch; Demo }
  default { [Console]::Error.WriteLine("usage: ./build.ps1 [all|test|deps|native|managed|bindings|fetch|bench|demo|asan]"); exit 2 }
}
