#!/usr/bin/env bash
# Checks docs/metrics.md against what the processes really export. Starts a real gpu-worker (the
# built-in model) and embedd on loopback ports they pick themselves (port 0 + --ready-file), sends
# one embed and one rerank through embedctl, scrapes both /metrics endpoints with curl and fails if
#  - a family either process exposes is not in the doc's family tables (or has another type), or
#  - a family in the tables is exposed by neither, unless it is in CONDITIONAL below and its row
#    says "conditional" (and every row saying "conditional" must be in CONDITIONAL).
# Waits by polling with deadlines; stops both processes on any exit.
#   tests/docs/check_metrics_doc.sh build/bin
set -euo pipefail
bin=$(cd "${1:?usage: check_metrics_doc.sh BIN_DIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
doc=$root/docs/metrics.md

# Families that only appear after an event this check does not cause (a stream, a retry, an
# eviction, a Redis failure).
CONDITIONAL=(
  embed_grpc_server_stream_messages_total
  embed_grpc_client_retries_total
  embed_cache_evictions_total
  embed_cache_errors_total
)

tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# poll SECONDS COMMAND...: runs COMMAND until it succeeds or SECONDS pass.
poll() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}
port_of() { sed -E "s/.*\"$2\": *([0-9]+).*/\1/" "$1"; }
fail() {
  echo "check_metrics_doc: $*" >&2
  for f in "$tmp"/*.log; do [[ -f $f ]] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
  exit 1
}

"$bin/gpu-worker" serve --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --ready-file "$tmp/worker.json" >"$tmp/worker.log" 2>&1 &
pids+=($!)
poll 120 test -s "$tmp/worker.json" || fail "the worker did not start"
wport=$(port_of "$tmp/worker.json" grpc_port)
wmetrics=$(port_of "$tmp/worker.json" metrics_port)

"$bin/embedd" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --workers "127.0.0.1:$wport" \
  --ready-file "$tmp/gateway.json" >"$tmp/gateway.log" 2>&1 &
pids+=($!)
poll 60 test -s "$tmp/gateway.json" || fail "the gateway did not start"
gport=$(port_of "$tmp/gateway.json" grpc_port)
gmetrics=$(port_of "$tmp/gateway.json" metrics_port)
server=127.0.0.1:$gport

"$bin/embedctl" health --server "$server" --wait 120 >/dev/null || fail "the gateway never became SERVING"
"$bin/embedctl" embed --server "$server" "What is the capital of France?" >"$tmp/embed.out" ||
  fail "embed failed"
"$bin/embedctl" rerank --server "$server" --query "capital of France" \
  "Paris is the capital of France." "Bananas are yellow." >"$tmp/rerank.out" || fail "rerank failed"

# Documented families: "| `name` | type |" rows between the families markers.
declare -A doc_type doc_conditional
while IFS='|' read -r _ name type _ _ when _; do
  name=$(tr -d ' `' <<<"$name")
  type=$(tr -d ' ' <<<"$type")
  doc_type[$name]=$type
  [[ $when == *conditional* ]] && doc_conditional[$name]=1
done < <(sed -n '/<!-- families:begin -->/,/<!-- families:end -->/p' "$doc" |
  grep -E '^\| `[A-Za-z_:][A-Za-z0-9_:]*` \|')
((${#doc_type[@]} > 0)) || fail "no family rows found between the families markers of $doc"

status=0
for c in "${CONDITIONAL[@]}"; do
  [[ -n ${doc_type[$c]:-} ]] || { echo "FAIL: $c is in CONDITIONAL but not documented"; status=1; }
  [[ -n ${doc_conditional[$c]:-} ]] ||
    { echo "FAIL: $c is allowed to be absent but its row does not say conditional"; status=1; }
done
for name in "${!doc_conditional[@]}"; do
  [[ " ${CONDITIONAL[*]} " == *" $name "* ]] ||
    { echo "FAIL: $name is documented as conditional but is not in CONDITIONAL"; status=1; }
done

# Exposed families: "# TYPE name type" of both scrapes.
scrape() {
  curl -fsS "http://127.0.0.1:$gmetrics/metrics" >"$tmp/gateway.prom" &&
    curl -fsS "http://127.0.0.1:$wmetrics/metrics" >"$tmp/worker.prom" &&
    cat "$tmp/gateway.prom" "$tmp/worker.prom" | awk '$1 == "#" && $2 == "TYPE" { print $3, $4 }' |
    sort -u >"$tmp/exposed"
}
# Every family documented as always present shows up (gauges some actors report on a timer
# arrive shortly after the requests): scrape until they are all there or the deadline passes.
all_present() {
  scrape || return 1
  local name
  for name in "${!doc_type[@]}"; do
    [[ -n ${doc_conditional[$name]:-} ]] && continue
    grep -q "^$name " "$tmp/exposed" || return 1
  done
}
poll 30 all_present || true
scrape || fail "cannot scrape /metrics"

declare -A exposed
while read -r name type; do
  exposed[$name]=$type
  if [[ -z ${doc_type[$name]:-} ]]; then
    echo "FAIL: $name ($type) is exposed but not documented in docs/metrics.md"
    status=1
  elif [[ ${doc_type[$name]} != "$type" ]]; then
    echo "FAIL: $name is a $type but docs/metrics.md says ${doc_type[$name]}"
    status=1
  fi
done <"$tmp/exposed"
for name in "${!doc_type[@]}"; do
  [[ -n ${exposed[$name]:-} || -n ${doc_conditional[$name]:-} ]] && continue
  echo "FAIL: $name is documented but neither process exposes it"
  status=1
done

if ((status)); then
  echo "check_metrics_doc: FAILED"
  exit 1
fi
echo "check_metrics_doc: OK, ${#exposed[@]} families exposed, ${#doc_type[@]} documented" \
  "(${#doc_conditional[@]} conditional: $(tr ' ' ',' <<<"${!doc_conditional[*]}"))"
