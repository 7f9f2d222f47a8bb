#!/usr/bin/env bash
# Benchmark (not a test): keep-alive throughput and tail latency of GET /healthz on the webapp.
#
# Builds the release binary, starts it on a free loopback port, runs
#   wrk -t2 -c32 -d10s --latency http://127.0.0.1:PORT/healthz
# prints requests/s and p99 latency, and stops the server. Needs wrk
# (apt-get update && apt-get install -y wrk). Access logging is turned down to `warn` so the
# figure measures the HTTP layer, not stderr.
set -euo pipefail

cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 2; }

cargo build --release --quiet --bin webapp

log=$(mktemp)
PORT=0 BIND=127.0.0.1 LOG_LEVEL=info target/release/webapp 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT

addr=""
for _ in $(seq 1 100); do
    addr=$(grep -o 'listening on http://[0-9.:]*' "$log" | head -1 | sed 's|listening on http://||' || true)
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { echo "webapp did not start:" >&2; cat "$log" >&2; exit 1; }

# Stop logging each request: restart with LOG_LEVEL=warn on the same port.
kill "$pid"; wait "$pid" 2>/dev/null || true
port=${addr##*:}
PORT="$port" BIND=127.0.0.1 LOG_LEVEL=warn target/release/webapp 2>"$log" &
pid=$!
for _ in $(seq 1 100); do
    curl -fs "http://$addr/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

out=$(wrk -t2 -c32 -d10s --latency "http://$addr/healthz")
echo "$out"
echo
rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
errors=$(echo "$out" | grep -E 'Non-2xx|Socket errors' || true)
echo "== healthz benchmark: ${rps} requests/s, p99 latency ${p99} (wrk -t2 -c32 -d10s, keep-alive)"
[ -z "$errors" ] || echo "== errors: $errors"
