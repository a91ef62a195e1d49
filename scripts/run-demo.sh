#!/usr/bin/env bash
# The main job: builds everything, starts a GPU worker with the built-in model and the gateway on
# free loopback ports, sends real requests through embedctl and shows the answers and where the
# metrics are. Stops both at the end (or keeps them running with --keep).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
bin=build/bin
keep=0; [[ ${1:-} == --keep ]] && keep=1

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wp=$(free_port); wm=$(free_port); gp=$(free_port); gm=$(free_port)
logs=$(mktemp -d)
"$bin/gpu-worker" serve --listen 127.0.0.1:$wp --metrics-listen 127.0.0.1:$wm >"$logs/worker.log" 2>&1 &
worker=$!
"$bin/embedd" --listen 127.0.0.1:$gp --metrics-listen 127.0.0.1:$gm --workers 127.0.0.1:$wp \
  >"$logs/embedd.log" 2>&1 &
gateway=$!
stop() { kill -TERM $gateway $worker 2>/dev/null || true; wait $gateway $worker 2>/dev/null || true; }
[[ $keep == 1 ]] || trap stop EXIT

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
