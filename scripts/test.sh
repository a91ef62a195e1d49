#!/usr/bin/env bash
# The test command: installs what is missing, builds everything into build/, runs every test
# (unit + integration against real processes), then the fuzz targets for a bounded time.
#   scripts/test.sh                 all of it
#   EMBED_TEST_LABELS=unit ...      only tests with this label
#   EMBED_SKIP_FUZZ=1 ...           no fuzz build/run
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

# The main suite last, so that its summary closes the output.
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 900 \
  ${labels:+-L "$labels"} || status=$?
exit $status
