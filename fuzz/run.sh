#!/usr/bin/env bash
# Builds gac's fuzz targets with clang (libFuzzer, AddressSanitizer, UBSan)
# into BUILD_DIR and runs each for SECONDS from its seed corpus in
# fuzz/corpus/. A crash fails the script and leaves the input that caused it
# in BUILD_DIR/artifacts/; reproduce with BUILD_DIR/fuzz_TARGET FILE.
#   fuzz/run.sh [BUILD_DIR [SECONDS [TARGET...]]]   (default: build/fuzz 30 all)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build/fuzz}
seconds=${2:-30}
shift $(( $# < 2 ? $# : 2 ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config idx npy csv cifar)

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not found (scripts/install-deps installs clang and libclang-rt-dev); skipped"
  exit 77
fi
mkdir -p "$build"
cmake -S "$src/fuzz" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; exit 1; }
cmake --build "$build" -j2 >"$build/build.log" 2>&1 || { tail -50 "$build/build.log"; exit 1; }

mkdir -p "$build/artifacts"
status=0
for t in "${targets[@]}"; do
  corpus=$(mktemp -d)  # new inputs go here; the committed seeds stay as they are
  log="$build/fuzz_$t.log"
  if "$build/fuzz_$t" -max_total_time="$seconds" -max_len=16384 -rss_limit_mb=2048 -timeout=10 \
       -artifact_prefix="$build/artifacts/${t}_" "$corpus" "$src/fuzz/corpus/$t" >"$log" 2>&1; then
    echo "fuzz_$t: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log" | tail -1), no crash"
  else
    echo "fuzz_$t: FAILED (input in $build/artifacts/)"
    tail -40 "$log"
    status=1
  fi
  rm -rf "$corpus"
done
exit $status
