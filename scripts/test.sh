#!/usr/bin/env bash
# The test command: installs what is missing, builds into build/, runs the fuzz targets for a
# bounded time, the unit + integration suites built with ASan + UBSan, then the same suites in the
# normal build. Prints the time of each stage and, last, one line "N passed, N failed".
#   scripts/test.sh                 all of it
#   EMBED_TEST_LABELS=unit ...      only tests with this label (unit, integration)
#   EMBED_SKIP_FUZZ=1 ...           no fuzz build/run
#   EMBED_SKIP_SANITIZE=1 ...       no ASan + UBSan build/run of the suite
#   EMBED_TEST_STRESS=1 ...         the whole run with both cores kept busy by another process
#                                   (stress-ng --cpu N, N = cores): the suite must pass under load.
#                                   Not CI's path; run it before you stop.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# One compiler cache for every build of the test command (setup.sh uses the same default).
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/embed-ccache}
t_start=$(date +%s)
stage_names=()
stage_secs=()
stage_begin=0
begin_stage() { stage_begin=$(date +%s); echo "== stage: $1"; }
end_stage() {
  stage_names+=("$1")
  stage_secs+=($(($(date +%s) - stage_begin)))
}
passed=0
failed=0
# What failed, repeated at the very end (a log shown by its tail still names it): ctest's list of
# failed tests per stage, and the start of every sanitizer report.
failures=$(mktemp)
# Runs ctest, shows its output, and adds its counts to the totals.
run_ctest() {
  local log
  log=$(mktemp)
  local rc=0
  ctest "$@" 2>&1 | tee "$log" || rc=$? # pipefail: ctest's status
  local line total bad
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  if [[ -n $line ]]; then
    bad=$(sed -E 's/^[0-9]+% tests passed, ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/^[0-9]+% tests passed, ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
    passed=$((passed + total - bad))
    failed=$((failed + bad))
  elif [[ $rc != 0 ]]; then
    failed=$((failed + 1)) # ctest itself failed (no summary): count it
  fi
  sed -n '/^The following tests FAILED:/,/^$/p' "$log" | sed "s|^|[$2] |" >>"$failures"
  rm -f "$log"
  return "$rc"
}

stress_pid=
stop_stress() { [[ -n $stress_pid ]] && kill "$stress_pid" 2>/dev/null && wait "$stress_pid" 2>/dev/null; true; }
trap stop_stress EXIT

if [[ ${EMBED_TEST_STRESS:-0} == 1 ]]; then
  command -v stress-ng >/dev/null 2>&1 || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends stress-ng >/dev/null
  }
  stress-ng --cpu "$(nproc)" --timeout 0 --quiet &
  stress_pid=$!
  echo "== stress: stress-ng --cpu $(nproc) (pid $stress_pid) keeps every core busy from here to the end"
fi

begin_stage setup
scripts/setup.sh
end_stage "setup (packages, npm, normal build)"

status=0
labels=${EMBED_TEST_LABELS:-}
if [[ ${EMBED_SKIP_FUZZ:-0} != 1 && -z $labels ]]; then
  begin_stage fuzz
  # libFuzzer needs clang: a separate, small build of the fuzz targets only, run for a bounded time.
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DEMBED_FUZZ=ON -DEMBED_BUILD_PERF=OFF >/dev/null
  fuzz_targets=$(cd build-fuzz && ninja -t targets all | grep -o '^[a-z_]*_fuzz:' | tr -d ':' | sort -u)
  if [[ -n $fuzz_targets ]]; then
    ninja -C build-fuzz $fuzz_targets
    run_ctest --test-dir build-fuzz --output-on-failure -j"$(nproc)" -L fuzz || status=$?
  fi
  end_stage "fuzz (build + 5 targets)"
fi

# The unit and integration suites again, built with AddressSanitizer + UndefinedBehaviorSanitizer
# (tests and the gpu-worker / embedd / embedctl processes they start). Every report of every
# process goes to a file in $san_logs; any file there fails the run, even from a child process
# whose exit code no test looked at.
if [[ ${EMBED_SKIP_SANITIZE:-0} != 1 ]]; then
  begin_stage "sanitized build"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBED_SANITIZE=ON \
    -DEMBED_BUILD_PERF=OFF >/dev/null
  cmake --build build-asan -j"$(nproc)"
  end_stage "sanitized build (ASan + UBSan)"
  begin_stage "sanitized suite"
  san_logs=$root/build-asan/sanitizer-reports
  rm -rf "$san_logs" && mkdir -p "$san_logs"
  ASAN_OPTIONS="log_path=$san_logs/asan:detect_leaks=1:abort_on_error=0" \
  UBSAN_OPTIONS="log_path=$san_logs/ubsan:print_stacktrace=1:halt_on_error=1" \
    run_ctest --test-dir build-asan --output-on-failure -j"$(nproc)" --timeout 1800 \
      -L "${labels:-unit|integration}" || status=$?
  if compgen -G "$san_logs/*" >/dev/null; then
    echo "sanitizer reports:"
    for f in "$san_logs"/*; do echo "== $f"; head -60 "$f"; done
    for f in "$san_logs"/*; do
      echo "sanitizer report $f:"
      grep -m1 -E '^(==[0-9]+==ERROR|SUMMARY)|runtime error' "$f" || head -3 "$f"
      grep -m12 -E '^ +#[0-9]+ ' "$f" || true
    done >>"$failures"
    status=1
    failed=$((failed + 1))
  else
    echo "sanitized suite: no sanitizer report from any process"
  fi
  end_stage "sanitized suite"
fi

# The main suite.
begin_stage "suite"
run_ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 900 \
  ${labels:+-L "$labels"} || status=$?
end_stage "suite (normal build)"

stop_stress
echo
echo "== time per stage$([[ -n $stress_pid ]] && echo " (under stress-ng --cpu $(nproc))")"
for i in "${!stage_names[@]}"; do
  printf '%-40s %5d s  (%d min %02d s)\n' "${stage_names[$i]}" "${stage_secs[$i]}" \
    $((stage_secs[i] / 60)) $((stage_secs[i] % 60))
done
total=$(($(date +%s) - t_start))
if [[ -s $failures ]]; then
  echo "== what failed"
  cat "$failures"
fi
rm -f "$failures"
printf '%-40s %5d s  (%d min %02d s)\n' "total" "$total" $((total / 60)) $((total % 60))
echo "tests: $passed passed, $failed failed"
exit $status
