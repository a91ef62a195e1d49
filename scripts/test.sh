#!/usr/bin/env bash
# The test command: installs what is missing, builds everything into build/, runs every test
# (unit + integration against real processes), then the fuzz targets for a bounded time.
#   scripts/test.sh                 all of it
#   EMBED_TEST_LABELS=unit ...      only tests with this label
#   EMBED_SKIP_FUZZ=1 ...           no fuzz build/run
#   EMBED_SKIP_SANITIZE=1 ...       no ASan + UBSan build/run of the suite
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh

status=0
labels=${EMBED_TEST_LABELS:-}
if [[ ${EMBED_SKIP_FUZZ:-0} != 1 && -z $labels ]]; then
  # libFuzzer needs clang: a separate, small build of the fuzz targets only, run for a bounded time.
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DEMBED_FUZZ=ON -DEMBED_BUILD_PERF=OFF >/dev/null
  fuzz_targets=$(cd build-fuzz && ninja -t targets all | grep -o '^[a-z_]*_fuzz:' | tr -d ':' | sort -u)
  if [[ -n $fuzz_targets ]]; then
    ninja -C build-fuzz $fuzz_targets
    ctest --test-dir build-fuzz --output-on-failure -L fuzz || status=$?
  fi
fi

# The unit and integration suites again, built with AddressSanitizer + UndefinedBehaviorSanitizer
# (tests and the gpu-worker / embedd / embedctl processes they start). Every report of every
# process goes to a file in $san_logs; any file there fails the run, even from a child process
# whose exit code no test looked at.
if [[ ${EMBED_SKIP_SANITIZE:-0} != 1 ]]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBED_SANITIZE=ON \
    -DEMBED_BUILD_PERF=OFF >/dev/null
  cmake --build build-asan -j"$(nproc)"
  san_logs=$root/build-asan/sanitizer-reports
  rm -rf "$san_logs" && mkdir -p "$san_logs"
  ASAN_OPTIONS="log_path=$san_logs/asan:detect_leaks=1:abort_on_error=0" \
  UBSAN_OPTIONS="log_path=$san_logs/ubsan:print_stacktrace=1:halt_on_error=1" \
    ctest --test-dir build-asan --output-on-failure -j"$(nproc)" --timeout 1800 \
      -L "${labels:-unit|integration}" || status=$?
  if compgen -G "$san_logs/*" >/dev/null; then
    echo "sanitizer reports:"
    for f in "$san_logs"/*; do echo "== $f"; head -60 "$f"; done
    status=1
  else
    echo "sanitized suite: no sanitizer report from any process"
  fi
fi

# The main suite last, so that its summary closes the output.
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 900 \
  ${labels:+-L "$labels"} || status=$?
exit $status
