#!/usr/bin/env bash
# Where one server's CPU goes per webhook request: system calls per request (strace -c) and
# the share of CPU samples per binary/library and kernel (perf), under the same signed load
# as bench/run.sh. Release binaries are stripped, so perf names libraries and kernel
# symbols, not our functions.
#
#   bash bench/profile.sh target/release/webhook          # our function
#   bash bench/profile.sh target/release/bare-verifier    # the floor
#
# Needs node, wrk, strace and perf (Debian: strace, linux-perf). Loads 127.0.0.1 only;
# each phase is bounded (DURATION, default 3 s); every process started is killed on exit.
set -euo pipefail

BIN=$(realpath "${1:?usage: bash bench/profile.sh SERVER_BINARY}")
DURATION=${DURATION:-3s}
WORK=$(mktemp -d /tmp/checkout-profile.XXXXXX)
WHSEC="whsec_profile_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# A 3 KB signed event of a type the shop acknowledges without Stripe or the store.
node -e '
const body = JSON.stringify({ id: "evt_profile", object: "event", type: "customer.created", livemode: false,
  created: 1, data: { object: { id: "cus_1", object: "customer", note: "x".repeat(2900) } } }, null, 2);
require("fs").writeFileSync(process.argv[1], body);' "$WORK/payload.json"
sign() { node -e '
const b = require("fs").readFileSync(process.argv[1]); const t = Math.floor(Date.now() / 1000);
console.log(`t=${t},v1=${require("crypto").createHmac("sha256", process.argv[2]).update(`${t}.`).update(b).digest("hex")}`);' \
  "$WORK/payload.json" "$WHSEC"; }
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
taskset -c 1 env -i PATH="$PATH" VERCEL_DEV_PORT="$PORT" STRIPE_SECRET_KEY=sk_test_profile \
  STRIPE_WEBHOOK_SECRET="$WHSEC" DATABASE_URL="sqlite://$WORK/db.sqlite3" "$BIN" >/dev/null 2>"$WORK/server.log" &
PID=$!
PIDS+=("$PID")
for _ in $(seq 1 100); do
  curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/" && break
  sleep 0.05
done
load() {
  BENCH_PAYLOAD="$WORK/payload.json" BENCH_SIGNATURE="$(sign)" timeout 30 taskset -c 0 \
    wrk -t2 -c32 -d"$1" -s "$(dirname "$0")/post.lua" "http://127.0.0.1:$PORT/api/webhook"
}
requests() { awk '/requests in/{print $1}'; }
load 1s >/dev/null

echo "== $BIN: system calls per request (strace -c -f, $DURATION of wrk -c32)"
timeout 60 strace -c -f -q -p "$PID" -o "$WORK/strace.txt" &
SP=$!
sleep 0.5
N=$(load "$DURATION" | requests)
kill -INT "$SP"; wait "$SP" 2>/dev/null || true
awk -v n="$N" 'NR > 2 && $NF != "total" && $4 ~ /^[0-9]+$/ { printf "  %-16s %6.2f per request\n", $NF, $4 / n }' "$WORK/strace.txt" | sort -k2 -nr
echo "  ($N requests)"

echo "== $BIN: perf samples by binary/library ($DURATION of wrk -c32)"
timeout 60 perf record -q -F 4999 -g -p "$PID" -o "$WORK/perf.data" -- sleep "${DURATION%s}" 2>/dev/null &
PP=$!
load "$DURATION" >/dev/null
wait "$PP" 2>/dev/null || true
perf report -q -i "$WORK/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -v '^$' | grep -v '^#' | head -8 | sed 's/^/  /'
echo "== top symbols (kernel and libraries named; our stripped binary shows as addresses)"
perf report -q -i "$WORK/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -v '^$' | grep -v '^#' | head -25 | sed 's/^/  /'
