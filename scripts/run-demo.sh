#!/usr/bin/env bash
# The main job: builds the three executables (not the tests or benchmarks), starts a GPU worker
# with the built-in model and the gateway on loopback ports they choose (port 0, reported in
# their --listening-file / --ready-file), sends real requests through embedctl and shows the
# answers and where the metrics are. Stops both at the end (or keeps them running with --keep).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
EMBED_BUILD_TARGETS="gpu-worker embedd embedctl" scripts/setup.sh
bin=build/bin
keep=0; [[ ${1:-} == --keep ]] && keep=1

logs=$(mktemp -d)
port_of() { sed -E "s/.*\"$2\": *([0-9]+).*/\1/" "$1"; }
# Waits for a ports file; gives up if its process exited.
wait_file() {
  for _ in $(seq 1 1200); do
    [[ -s $1 ]] && return 0
    kill -0 "$2" 2>/dev/null || { echo "process $2 exited; its log:"; cat "$3"; return 1; }
    sleep 0.1
  done
  echo "no $1 after 120 s"; return 1
}
worker= gateway=
stop() { kill -TERM $gateway $worker 2>/dev/null || true; wait $gateway $worker 2>/dev/null || true; }
[[ $keep == 1 ]] && trap '[[ $? == 0 ]] || stop' EXIT || trap stop EXIT
"$bin/gpu-worker" serve --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --listening-file "$logs/worker.json" >"$logs/worker.log" 2>&1 &
worker=$!
wait_file "$logs/worker.json" $worker "$logs/worker.log"
wp=$(port_of "$logs/worker.json" grpc_port); wm=$(port_of "$logs/worker.json" metrics_port)
"$bin/embedd" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --workers 127.0.0.1:$wp \
  --ready-file "$logs/embedd.json" >"$logs/embedd.log" 2>&1 &
gateway=$!
wait_file "$logs/embedd.json" $gateway "$logs/embedd.log"
gp=$(port_of "$logs/embedd.json" grpc_port); gm=$(port_of "$logs/embedd.json" metrics_port)

echo "== waiting for the gateway to report SERVING (worker on :$wp, gateway on :$gp)"
"$bin/embedctl" health --server 127.0.0.1:$gp --wait 120
echo "== embed (the built-in model is UNTRAINED: the numbers carry no meaning)"
"$bin/embedctl" embed --server 127.0.0.1:$gp --dimensions 8 \
  "What is the capital of France?" "Paris is the capital of France."
echo "== the same text again: served from the gateway's cache"
"$bin/embedctl" embed --server 127.0.0.1:$gp --dimensions 8 "What is the capital of France?"
echo "== rerank"
"$bin/embedctl" rerank --server 127.0.0.1:$gp --query "capital of France" \
  "Paris is the capital of France." "Bananas are yellow."
echo "== streaming 100 texts through EmbedStream"
for i in $(seq 1 100); do echo "{\"text\": \"document number $i\"}"; done |
  "$bin/embedctl" embed --server 127.0.0.1:$gp --dimensions 4 | tail -n 2
echo "== info"
"$bin/embedctl" info --server 127.0.0.1:$gp | head -n 20
echo "== metrics: gateway http://127.0.0.1:$gm/metrics, worker http://127.0.0.1:$wm/metrics"
curl -s "http://127.0.0.1:$gm/metrics" | grep -E '^embed_(grpc_server_requests_total|cache_lookups_total)' | head -n 8 || true
echo "== logs in $logs"
if [[ $keep == 1 ]]; then
  echo "worker pid $worker, gateway pid $gateway still running (kill -TERM to stop)"
fi
