#!/usr/bin/env bash
# NativeQuant build driver (Linux). Mirrors build.ps1.
#   ./build.sh            set up everything (packages, native, managed, assets), then run the main job
#   ./build.sh test       build, then run every test (ctest + dotnet test); last line "N passed, N failed"
#   ./build.sh deps|native|managed|bindings|fetch|bench|demo|asan   individual steps
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$ROOT/build"
CONFIG="${NQ_CONFIG:-Release}"
JOBS="${NQ_JOBS:-$(nproc)}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# The generator needs Debian's python3 (where python3-clang lives), not a pyenv shim.
PY="${NQ_PYTHON:-/usr/bin/python3}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Debian packages this project needs; installed only when missing.
APT_PACKAGES=(cmake g++ make pkg-config libgtest-dev libbenchmark-dev python3 python3-clang-14 libclang-14-dev
              libopenblas-dev libdnnl-dev)
# Tools that may come from outside Debian (e.g. a nodesource node ships its own npm): checked by command.
declare -A APT_FOR_COMMAND=([npm]="nodejs npm")

deps() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  for c in "${!APT_FOR_COMMAND[@]}"; do
    command -v "$c" >/dev/null 2>&1 || missing+=(${APT_FOR_COMMAND[$c]})
  done
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    local SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! command -v dotnet >/dev/null 2>&1; then
    echo "error: the .NET 10 SDK ('dotnet') is not installed. Install it (https://dot.net) and re-run ./build.sh" >&2
    exit 1
  fi
}

native() {
  log "building native ($CONFIG)"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE="$CONFIG" ${NQ_CMAKE_ARGS:-} >/dev/null
  cmake --build "$BUILD" -j "$JOBS"
}

# Extra arguments go to the generator, e.g. `./build.sh bindings --check`.
bindings() {
  log "generating C# bindings from native/include/nativequant.h"
  "$PY" "$ROOT/managed/NativeQuant.Interop/Generator/generate_bindings.py" "$@"
}

managed() {
  bindings
  log "building managed ($CONFIG)"
  dotnet build "$ROOT/NativeQuant.sln" -c "$CONFIG" -nologo -v q
}

nq() { dotnet "$ROOT/managed/NativeQuant.Cli/bin/$CONFIG/net10.0/nq.dll" "$@"; }

fetch() { log "fetching embedded assets"; nq fetch; }

bench() { native; for b in "$BUILD"/bin/nq_bench_*; do "$b" --benchmark_min_time=0.2; done; }

# AddressSanitizer + UBSan build of the kernel tests (separate build dir).
asan() {
  cmake -S "$ROOT" -B "$BUILD-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNQ_SANITIZE=ON -DNQ_BUILD_BENCH=OFF >/dev/null
  cmake --build "$BUILD-asan" -j "$JOBS"
  ASAN_OPTIONS=detect_leaks=1 ctest --test-dir "$BUILD-asan" --output-on-failure -j "$JOBS"
}

demo() { nq demo; }

# Runs ctest and dotnet test, then prints one summary line "N passed, N failed".
test_all() {
  local out passed=0 failed=0 rc=0
  out="$(mktemp -d)"
  log "native tests (ctest)"
  ctest --test-dir "$BUILD" --output-on-failure -j "$JOBS" 2>&1 | tee "$out/ctest.log" || rc=1
  local line; line="$(grep -E '[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$out/ctest.log" | tail -1 || true)"
  if [ -n "$line" ]; then
    local total f; f="$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")"
    total="$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")"
    passed=$((passed + total - f)); failed=$((failed + f))
  else
    failed=$((failed + 1))
  fi
  log "managed tests (dotnet test)"
  dotnet test "$ROOT/NativeQuant.sln" -c "$CONFIG" --no-build -nologo 2>&1 | tee "$out/dotnet.log" || rc=1
  local p f2 any=0
  while read -r l; do
    any=1
    f2="$(sed -E 's/.*Failed: *([0-9]+).*/\1/' <<<"$l")"; p="$(sed -E 's/.*Passed: *([0-9]+).*/\1/' <<<"$l")"
    passed=$((passed + p)); failed=$((failed + f2))
  done < <(grep -E '(Passed|Failed)! +- Failed: +[0-9]+, Passed: +[0-9]+' "$out/dotnet.log" || true)
  ((any)) || failed=$((failed + 1))
  rm -rf "$out"
  echo "$passed passed, $failed failed"
  [ "$rc" = 0 ] && [ "$failed" = 0 ]
}

cmd="${1:-all}"
case "$cmd" in
  deps) deps ;;
  native) native ;;
  bindings) bindings "${@:2}" ;;
  managed) managed ;;
  fetch) fetch ;;
  bench) bench ;;
  asan) deps; asan ;;
  demo) deps; native; managed; fetch; demo ;;
  test) deps; native; managed; fetch; test_all ;;
  all) deps; native; managed; fetch; demo ;;
  *) echo "usage: ./build.sh [all|test|deps|native|managed|bindings|fetch|bench|demo|asan]" >&2; exit 2 ;;
esac
